import { notBuiltYet } from "../js/dom.js";

export function render({ root, t }) {
  root.append(...notBuiltYet(t, "models.title", "models.what"));
}
