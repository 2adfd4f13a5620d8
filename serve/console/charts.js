// Hand-drawn SVG charts: lines over time (prices, spreads) and candles with volume.

import { replace, svg } from "./dom.js";

const MARGIN = { left: 70, right: 14, top: 22, bottom: 24 };
const MIN_SLOTS = 40;
export const PALETTE = ["#7aa2f7", "#f7b955", "#9ece6a", "#f7768e", "#bb9af7", "#2ac3de", "#e0af68", "#73daca"];

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit >= 5 ? 10 : unit >= 2 ? 5 : unit >= 1 ? 2 : 1) * power;
}

function ticks(low, high, count) {
  const step = niceStep(high - low, count);
  const out = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) out.push(value);
  return out;
}

function padded(low, high) {
  if (!(high > low)) {
    const pad = Math.abs(low) * 0.001 || 1;
    return [low - pad, high + pad];
  }
  const pad = (high - low) * 0.08;
  return [low - pad, high + pad];
}

function timeLabel(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function frame(container, height) {
  const width = Math.max(container.clientWidth || 0, 320);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  return { root, width, height, plotW: width - MARGIN.left - MARGIN.right, plotH: height - MARGIN.top - MARGIN.bottom };
}

function axes(f, { x, y, xDomain, yDomain, yFormat, xFormat = timeLabel, yTicks = 4 }) {
  const group = svg("g", { class: "axes" });
  for (const value of ticks(yDomain[0], yDomain[1], yTicks)) {
    const py = y(value);
    group.append(svg("line", { x1: MARGIN.left, x2: f.width - MARGIN.right, y1: py, y2: py, class: "grid" }),
      svg("text", { x: MARGIN.left - 6, y: py + 4, "text-anchor": "end", class: "tick" }, yFormat(value)));
  }
  const [t0, t1] = xDomain;
  const count = Math.max(2, Math.min(6, Math.floor(f.plotW / 110)));
  let previous = null;
  for (let i = 0; i <= count; i += 1) {
    const t = t0 + ((t1 - t0) * i) / count;
    const label = xFormat(t);
    if (label === previous) continue; // a short range: fewer, distinct labels
    previous = label;
    group.append(svg("text", { x: x(t), y: f.height - 6, "text-anchor": i === 0 ? "start" : i === count ? "end" : "middle", class: "tick" }, label));
  }
  return group;
}

function empty(f, text) {
  f.root.append(svg("text", { x: f.width / 2, y: f.height / 2, "text-anchor": "middle", class: "empty-chart" }, text));
  return f.root;
}

// series: [{label, color, points: [[timeMs, value], ...]}]
export function lineChart(container, { series, height = 220, yFormat = String, emptyText = "waiting for data" }) {
  const f = frame(container, height);
  const points = series.flatMap((s) => s.points);
  if (points.length < 1) return replace(container, empty(f, emptyText));
  const ts = points.map((p) => p[0]);
  const vs = points.map((p) => p[1]);
  let xDomain = [Math.min(...ts), Math.max(...ts)];
  if (xDomain[1] === xDomain[0]) xDomain = [xDomain[0] - 1000, xDomain[0] + 1000];
  const yDomain = padded(Math.min(...vs), Math.max(...vs));
  const x = (t) => MARGIN.left + ((t - xDomain[0]) / (xDomain[1] - xDomain[0])) * f.plotW;
  const y = (v) => MARGIN.top + (1 - (v - yDomain[0]) / (yDomain[1] - yDomain[0])) * f.plotH;
  f.root.append(axes(f, { x, y, xDomain, yDomain, yFormat }));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    const last = s.points[s.points.length - 1];
    f.root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8, class: "series" }),
      svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.8, fill: s.color },
        svg("title", {}, `${s.label}: ${yFormat(last[1])}`)));
    const lx = MARGIN.left + 6 + i * 190;
    f.root.append(svg("rect", { x: lx, y: 6, width: 10, height: 10, fill: s.color }),
      svg("text", { x: lx + 14, y: 15, class: "legend" }, `${s.label} ${yFormat(last[1])}`));
  });
  return replace(container, f.root);
}

// candles: [{time, open, high, low, close, volumeQuote, trades}], intervalMs
export function candleChart(container, { candles, intervalMs, height = 260, yFormat = String, quote = "", emptyText }) {
  const f = frame(container, height);
  if (!candles.length) return replace(container, empty(f, emptyText || "no trades in this range"));
  const starts = candles.map((c) => Date.parse(c.time));
  const end = Math.max(...starts) + intervalMs;
  // At least MIN_SLOTS candles wide, the latest on the right: a few candles do not fill the chart.
  const xDomain = [Math.min(Math.min(...starts), end - MIN_SLOTS * intervalMs), end];
  const priceH = f.plotH * 0.74;
  const volTop = MARGIN.top + priceH + 8;
  const volH = f.plotH - priceH - 8;
  const yDomain = padded(Math.min(...candles.map((c) => c.low)), Math.max(...candles.map((c) => c.high)));
  const x = (t) => MARGIN.left + ((t - xDomain[0]) / (xDomain[1] - xDomain[0])) * f.plotW;
  const y = (v) => MARGIN.top + (1 - (v - yDomain[0]) / (yDomain[1] - yDomain[0])) * priceH;
  const maxVolume = Math.max(...candles.map((c) => Number(c.volumeQuote))) || 1;
  const slot = (f.plotW * intervalMs) / (xDomain[1] - xDomain[0]);
  const body = Math.max(1, Math.min(slot * 0.7, 18));
  f.root.append(axes(f, {
    x, y: (v) => y(v), xDomain, yDomain, yFormat,
    xFormat: (t) => new Date(t).toLocaleString([], intervalMs >= 86400000
      ? { month: "short", day: "numeric" } : { hour12: false, hour: "2-digit", minute: "2-digit" }),
  }));
  candles.forEach((c, i) => {
    const mid = x(starts[i]) + slot / 2;
    const up = c.close >= c.open;
    const color = up ? "#9ece6a" : "#f7768e";
    const top = y(Math.max(c.open, c.close));
    const bottom = y(Math.min(c.open, c.close));
    const vh = (Number(c.volumeQuote) / maxVolume) * volH;
    const tip = `${c.time}\nopen ${yFormat(c.open)}  high ${yFormat(c.high)}\nlow ${yFormat(c.low)}  close ${yFormat(c.close)}\n` +
      `volume ${c.volumeBase} base, ${c.volumeQuote} ${quote}\n${c.trades} trades`;
    f.root.append(svg("g", { class: `candle ${up ? "up" : "down"}` },
      svg("title", {}, tip),
      svg("line", { x1: mid, x2: mid, y1: y(c.high), y2: y(c.low), stroke: color, "stroke-width": 1 }),
      svg("rect", { x: mid - body / 2, y: top, width: body, height: Math.max(1, bottom - top), fill: color }),
      svg("rect", { x: mid - body / 2, y: volTop + volH - vh, width: body, height: Math.max(0.5, vh), fill: color, opacity: 0.45 })));
  });
  f.root.append(svg("text", { x: MARGIN.left - 6, y: volTop + 10, "text-anchor": "end", class: "tick" }, "volume"));
  return replace(container, f.root);
}
