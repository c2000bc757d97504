'use strict';
// svg.js: what the bench's plots share (soak_report.js, bench_report.js): escaping, round axis
// steps on linear and logarithmic scales, and the SVG document around a plot's body. Plain
// strings, no dependencies, so that a chart is a file any browser and GitHub show as it is.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// About five round steps from 0 to max.
function ticks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

// Steps of 1, 2 and 5 times the powers of ten that cover [min, max] (both > 0): a logarithmic
// axis, from the step at or below min to the one at or above max.
function logTicks(min, max) {
  if (!(min > 0) || !(max >= min)) return [1, 10];
  const out = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const f of [1, 2, 5]) out.push(f * 10 ** e);
  }
  const lo = out.filter((v) => v <= min * (1 + 1e-9)).pop();
  const hi = out.find((v) => v >= max * (1 - 1e-9));
  return out.filter((v) => v >= lo && v <= hi).map((v) => Number(v.toPrecision(3)));
}

const fmtTick = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1));

// A number for a chart's labels: thousands grouped, at most `decimals` decimals.
const fmtNum = (v, decimals = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toLocaleString('en-US', { maximumFractionDigits: decimals }));

// The document around a plot: a white page of width × height, sans-serif.
function document(width, height, body) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${body}
</svg>
`;
}

module.exports = { esc, ticks, logTicks, fmtTick, fmtNum, document };
