// Every screen exports render(context) -> optional cleanup function.
import * as chat from "./chat.js";
import * as memory from "./memory.js";
import * as training from "./training.js";
import * as models from "./models.js";
import * as network from "./network.js";
import * as settings from "./settings.js";

export const SCREENS = { chat, memory, training, models, network, settings };
