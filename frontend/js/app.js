// The app shell: connects the bridge, routes between screens, shows errors as toasts.

import { connectBridge } from "./bridge.js";
import { clear, h } from "./dom.js";
import { setLanguage, t } from "./i18n.js";
import { SCREENS } from "../screens/index.js";

const state = { bridge: null, current: null, listeners: new Set() };

export function showError(error) {
  const toast = document.getElementById("toast");
  toast.textContent = error && error.message ? error.message : String(error);
  toast.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { toast.hidden = true; }, 6000);
}

/** "system" follows the OS (prefers-color-scheme); "light" and "dark" fix the theme. */
export function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function onEvent(event) { state.listeners.forEach((listener) => listener(event)); }

// After a move between screens, focus goes to the new screen (its heading, or the chat input), so a
// keyboard or screen-reader user continues there instead of at the navigation.
function focusScreen(root) {
  const target = root.querySelector("[data-testid=chat-input]") || root.querySelector("h1");
  if (!target) return;
  if (target.tagName === "H1") target.tabIndex = -1;
  target.focus({ preventScroll: true });
}

async function show(name, { focus = false } = {}) {
  const screen = SCREENS[name] || SCREENS.chat;
  document.querySelectorAll("#nav button").forEach((b) => b.classList.toggle("active", b.dataset.screen === name));
  if (state.current && state.current.leave) state.current.leave();
  const root = clear(document.getElementById("screen"));
  root.dataset.screen = name;
  const context = {
    bridge: state.bridge, t, showError, root,
    onEvent: (listener) => { state.listeners.add(listener); return () => state.listeners.delete(listener); },
    relabel: () => setLanguage(document.documentElement.lang),
    rerender: () => show(name),
    applyTheme,
  };
  state.current = { name, leave: null };
  try {
    state.current.leave = (await screen.render(context)) || null;
    if (focus) focusScreen(root);
  } catch (error) { showError(error); }
}

async function start() {
  const status = document.getElementById("bridge-status");
  try {
    state.bridge = await connectBridge();
    await state.bridge.call("ping", "ui");
    const settings = await state.bridge.call("get_settings");
    setLanguage(settings.values.language);
    applyTheme(settings.values.theme);
    status.dataset.state = "ok";
    // Labelled by key, so a language change relabels it with the rest of the shell.
    status.replaceChildren(h("span", { "data-i18n": "bridge.ok" }, t("bridge.ok")), " · ",
      h("span", { "data-i18n": `bridge.mode_${state.bridge.mode}` }, t(`bridge.mode_${state.bridge.mode}`)));
    state.bridge.subscribe(onEvent);
  } catch (error) {
    status.dataset.state = "error";
    status.textContent = t("bridge.error");
    showError(error);
  }
  document.querySelectorAll("#nav button").forEach((button) => {
    button.addEventListener("click", () => { location.hash = button.dataset.screen; });
  });
  window.addEventListener("hashchange", () => show(location.hash.slice(1), { focus: true }));
  await show(location.hash.slice(1) || "chat");
  document.body.dataset.ready = "true";
}

start();
