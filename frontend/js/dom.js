// Build DOM nodes without ever parsing strings as HTML: imported and peer-supplied text is data.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fields = 0;
/** A label tied to its control (``for`` = the control's id), so screen readers name the control and a
 * click on the label reaches it. Returns [label, control] to spread into a parent. */
export function field(text, control) {
  if (!control.id) control.id = `field-${++fields}`;
  return [h("label", { for: control.id }, text), control];
}

/** One of the vendored Lucide icons (frontend/icons), drawn in the text colour; decorative only. */
export function icon(name) { return h("span", { class: `icon icon-${name}`, "aria-hidden": "true" }); }

/** A destructive action asks first, in place: the button turns into the question with two answers,
 * and focus goes to the safe one. ``run`` happens only on Yes. */
export function confirmInPlace(button, { question, yes, no, run }) {
  const keep = h("button", { class: "secondary", "data-testid": "confirm-no", onclick: () => box.replaceWith(button) }, no);
  const box = h("span", { class: "confirm", role: "group", "data-testid": "confirm" }, question, " ",
    h("button", { class: "danger", "data-testid": "confirm-yes", onclick: async () => { box.replaceWith(button); await run(); } }, yes), " ", keep);
  button.replaceWith(box);
  keep.focus();
}

export function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

const drawn = new WeakMap();

// Replace a container's children only when the data behind them changed. Screens refresh on every
// background event; redrawing unchanged lists would reset what the user is doing (a ticked box, a
// chosen option, a button under the pointer) for nothing.
export function redraw(node, data, build) {
  const key = JSON.stringify(data);
  if (drawn.get(node) === key) return node;
  drawn.set(node, key);
  clear(node).append(...build(data));
  return node;
}
