import { notBuiltYet } from "../js/dom.js";

export function render({ root, t }) {
  root.append(...notBuiltYet(t, "memory.title", "memory.what"));
}
