// A small Markdown renderer that builds DOM nodes: fenced code, inline code, bold, italics,
// headings, lists, paragraphs. Raw HTML in the text stays text; links are shown, never followed.

import { h } from "./dom.js";

function inline(text) {
  const nodes = [];
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*|\[[^\]]+\]\([^)]+\))/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    const token = match[0];
    if (token.startsWith("`")) nodes.push(h("code", {}, token.slice(1, -1)));
    else if (token.startsWith("**")) nodes.push(h("strong", {}, token.slice(2, -2)));
    else if (token.startsWith("[")) {
      const [, label, url] = /^\[([^\]]+)\]\(([^)]+)\)$/.exec(token);
      nodes.push(h("span", { class: "link", title: url }, label));
    } else nodes.push(h("em", {}, token.slice(1, -1)));
    last = match.index + token.length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

export function renderMarkdown(source) {
  const root = h("div", { class: "markdown" });
  const lines = String(source).split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].startsWith("```")) { body.push(lines[i]); i += 1; }
      i += 1;
      root.append(h("pre", {}, h("code", {}, body.join("\n"))));
      continue;
    }
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    if (heading) { root.append(h(`h${heading[1].length + 2}`, {}, ...inline(heading[2]))); i += 1; continue; }
    if (/^\s*([-*]|\d+\.)\s+/.test(line)) {
      const ordered = /^\s*\d+\./.test(line);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*]|\d+\.)\s+/.test(lines[i])) {
        list.append(h("li", {}, ...inline(lines[i].replace(/^\s*([-*]|\d+\.)\s+/, ""))));
        i += 1;
      }
      root.append(list);
      continue;
    }
    if (!line.trim()) { i += 1; continue; }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !lines[i].startsWith("```") && !/^(#{1,3})\s/.test(lines[i])) {
      paragraph.push(lines[i]); i += 1;
    }
    root.append(h("p", {}, ...inline(paragraph.join("\n"))));
  }
  return root;
}
