// Small SVG charts drawn with DOM calls (no library, no innerHTML). Colours come from the theme through
// CSS classes (.bar, .axis, .tick, .series-accent, .series-ok), never from attributes.

import { localNumber } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Bars with a label under every few (never overlapping: at most one label per 44 px of chart). */
export function barChart(points, { height = 160, label = (p) => p.label, value = (p) => p.value, title = "" } = {}) {
  const width = Math.max(320, points.length * 22);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  const max = Math.max(1, ...points.map(value));
  const barWidth = width / Math.max(points.length, 1);
  const every = Math.max(1, Math.ceil(44 / barWidth));
  points.forEach((point, i) => {
    const h = Math.max(1, (value(point) / max) * (height - 24));
    const rect = el("rect", { x: i * barWidth + 2, y: height - 18 - h, width: Math.max(2, barWidth - 4), height: h, class: "bar", rx: 2 });
    rect.append(el("title", {}, `${label(point)}: ${value(point)}`));
    svg.append(rect);
    if (i % every === 0) {
      svg.append(el("text", { x: i * barWidth + barWidth / 2, y: height - 4, "text-anchor": "middle", class: "tick" }, label(point)));
    }
  });
  return svg;
}

function ticks(min, max, count) {
  if (max - min < 1e-12) return [min];
  return Array.from({ length: count }, (_, i) => min + ((max - min) * i) / (count - 1));
}

/** Lines over a shared x axis: series = [{name, tone: "accent"|"ok", points: [[x, y], ...]}]. Axes with
 * ticks and labels (xLabel, yLabel), a legend, and the data as a <title> for screen readers. */
export function lineChart(series, { height = 200, width = 600, xLabel = "", yLabel = "", title = "" } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart line-chart", role: "img", "aria-label": title });
  const all = series.flatMap((s) => s.points);
  if (!all.length) return svg;
  const left = 48, right = 12, top = 10, bottom = 36;
  const [minX, maxX] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [minY, maxY] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const sx = (x) => left + ((x - minX) / Math.max(maxX - minX, 1e-9)) * (width - left - right);
  const sy = (y) => height - bottom - ((y - minY) / Math.max(maxY - minY, 1e-9)) * (height - top - bottom);
  svg.append(el("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis" }));
  svg.append(el("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" }));
  for (const y of ticks(minY, maxY, 3)) {
    svg.append(el("line", { x1: left - 4, y1: sy(y), x2: width - right, y2: sy(y), class: "grid" }));
    svg.append(el("text", { x: left - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, localNumber(y, 2)));
  }
  const xs = [...new Set(ticks(minX, maxX, Math.min(5, maxX - minX + 1)).map(Math.round))];
  for (const x of xs) {
    svg.append(el("text", { x: sx(x), y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, localNumber(x)));
  }
  if (xLabel) svg.append(el("text", { x: left + (width - left - right) / 2, y: height - 4, "text-anchor": "middle", class: "axis-label" }, xLabel));
  if (yLabel) svg.append(el("text", { x: 12, y: top + (height - top - bottom) / 2, "text-anchor": "middle", class: "axis-label",
    transform: `rotate(-90 12 ${top + (height - top - bottom) / 2})` }, yLabel));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    const path = el("path", { d, class: `series series-${s.tone || "accent"}`, "data-series": s.name });
    path.append(el("title", {}, `${s.name}: ${s.points.map((p) => `${p[0]}→${p[1].toFixed(3)}`).join(", ")}`));
    svg.append(path);
    if (s.points.length === 1) svg.append(el("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 3, class: `dot series-${s.tone || "accent"}` }));
    svg.append(el("text", { x: width - right - 4, y: top + 12 + i * 14, "text-anchor": "end", class: `legend series-${s.tone || "accent"}` }, `— ${s.name}`));
  });
  return svg;
}
