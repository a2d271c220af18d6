// A small inline SVG bar chart of a series over time: bar heights are proportions for the eye;
// the numbers shown (titles, the table beside it) are the API's exact strings.
const SVG = "http://www.w3.org/2000/svg";

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** points: [{label, value (number, for height), text (shown)}] */
export function barChart(points, title) {
  const width = 640, height = 200, left = 8, bottom = 24, top = 12;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title });
  svg.appendChild(node("title", {}, title));
  const largest = Math.max(0, ...points.map(p => p.value));
  const step = points.length ? (width - left * 2) / points.length : 0;
  points.forEach((p, i) => {
    const h = largest > 0 ? (height - bottom - top) * (p.value / largest) : 0;
    const x = left + i * step;
    const bar = node("rect", { x: x + step * 0.1, y: height - bottom - h, width: Math.max(step * 0.8, 1), height: Math.max(h, 0.5), class: "bar" });
    bar.appendChild(node("title", {}, `${p.label}: ${p.text}`));
    svg.appendChild(bar);
    if (points.length <= 16 || i % Math.ceil(points.length / 8) === 0) {
      svg.appendChild(node("text", { x: x + step / 2, y: height - 8, "text-anchor": "middle", class: "axis" }, p.label));
    }
  });
  svg.appendChild(node("line", { x1: left, x2: width - left, y1: height - bottom, y2: height - bottom, class: "baseline" }));
  return svg;
}
