// Small SVG charts drawn with DOM calls (no library, no innerHTML).

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export function barChart(points, { height = 160, label = (p) => p.label, value = (p) => p.value } = {}) {
  const width = Math.max(320, points.length * 22);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const max = Math.max(1, ...points.map(value));
  const barWidth = width / Math.max(points.length, 1);
  points.forEach((point, i) => {
    const h = Math.max(1, (value(point) / max) * (height - 24));
    const rect = el("rect", { x: i * barWidth + 2, y: height - 18 - h, width: Math.max(2, barWidth - 4), height: h, fill: "#7c9cff", rx: 2 });
    const title = el("title", {});
    title.textContent = `${label(point)}: ${value(point)}`;
    rect.append(title);
    svg.append(rect);
    if (points.length <= 24 || i % Math.ceil(points.length / 12) === 0) {
      const text = el("text", { x: i * barWidth + barWidth / 2, y: height - 4, "text-anchor": "middle", "font-size": 9, fill: "#9aa3b2" });
      text.textContent = label(point);
      svg.append(text);
    }
  });
  return svg;
}

export function lineChart(series, { height = 180, width = 560 } = {}) {
  // series: [{name, color, points: [[x, y], ...]}]
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const all = series.flatMap((s) => s.points);
  if (!all.length) return svg;
  const [minX, maxX] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [minY, maxY] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const sx = (x) => 30 + ((x - minX) / Math.max(maxX - minX, 1e-9)) * (width - 40);
  const sy = (y) => height - 20 - ((y - minY) / Math.max(maxY - minY, 1e-9)) * (height - 30);
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    svg.append(el("path", { d, fill: "none", stroke: s.color, "stroke-width": 2 }));
  }
  series.forEach((s, i) => {
    const legend = el("text", { x: width - 110, y: 14 + i * 14, "font-size": 11, fill: s.color });
    legend.textContent = `— ${s.name}`;
    svg.append(legend);
  });
  const top = el("text", { x: 2, y: 12, "font-size": 10, fill: "#9aa3b2" }); top.textContent = maxY.toFixed(2);
  const bottom = el("text", { x: 2, y: height - 20, "font-size": 10, fill: "#9aa3b2" }); bottom.textContent = minY.toFixed(2);
  svg.append(top, bottom);
  return svg;
}
