import { notBuiltYet } from "../js/dom.js";

export function render({ root, t }) {
  root.append(...notBuiltYet(t, "network.title", "network.what"));
}
