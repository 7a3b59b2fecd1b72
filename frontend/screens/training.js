import { notBuiltYet } from "../js/dom.js";

export function render({ root, t }) {
  root.append(...notBuiltYet(t, "training.title", "training.what"));
}
