import { notBuiltYet } from "../js/dom.js";

export function render({ root, t }) {
  root.append(...notBuiltYet(t, "chat.title", "chat.what"));
}
