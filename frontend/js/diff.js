// Word-level differences between two replies, drawn as text nodes and <mark>s (never as HTML).

import { h } from "./dom.js";

const MAX_WORDS = 400; // replies are short; past this the quadratic table is not worth it

function words(text) { return (text || "").split(/(\s+)/).filter((w) => w !== ""); }

// Longest common subsequence over words: what both replies share. Each side's other words changed.
export function diffWords(before, after) {
  const a = words(before).slice(0, MAX_WORDS);
  const b = words(after).slice(0, MAX_WORDS);
  const table = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const left = [];
  const right = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) { left.push([a[i], false]); right.push([b[j], false]); i++; j++; }
    else if (j < b.length && (i === a.length || table[i][j + 1] >= table[i + 1][j])) { right.push([b[j], !/^\s+$/.test(b[j])]); j++; }
    else { left.push([a[i], !/^\s+$/.test(a[i])]); i++; }
  }
  return { before: left, after: right, same: a.join("") === b.join("") };
}

// One reply with its changed words marked; ``kind`` is "added" (fine-tuned) or "removed" (base).
export function markedText(parts, kind) {
  const node = h("div", { class: "reply" });
  let run = "";
  let changed = false;
  const flush = () => {
    if (!run) return;
    node.append(changed ? h("mark", { class: kind }, run) : document.createTextNode(run));
    run = "";
  };
  for (const [word, isChanged] of parts) {
    if (isChanged !== changed && !/^\s+$/.test(word)) { flush(); changed = isChanged; }
    run += word;
  }
  flush();
  return node;
}
