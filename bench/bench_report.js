#!/usr/bin/env node
'use strict';
// bench_report.js: the report of one `make bench` run (bench/run.sh): issue 17's target table,
// kefu's figure, Nchan's from the same run, the ratio, the target and whether it is met; every
// run's figures; the history table; and the charts (latency against rate for both servers,
// memory per connection, cost against history size) as SVG. No dependencies.
//
//   node bench/bench_report.js --dir DIR [--charts DIR]
//
// DIR is run.sh's output directory: config.json (what the suite ran), NAME.json (the last line of
// each kf_load run: kefu-connect-ws, kefu-full-chat-ws-1000, kefu-normal-chat-sse-5000,
// nchan-chat-ws-20000, kefu-peak-ws, ...), fsync-NAME.json (kf_fsync in that kefu run's data
// directory) and history.md (kf_history_bench --compare's output). Prints Markdown on stdout,
// ready for docs/PERFORMANCE.md; writes bench-latency.svg, bench-memory.svg and bench-history.svg
// into --charts.

const fs = require('node:fs');
const path = require('node:path');
const { esc, logTicks, ticks, fmtTick, fmtNum, document } = require('./svg.js');

// A rate counts as sustained when the server acknowledged at least this share of what was due.
const SUSTAINED = 0.95;
// The durable peak's bound on p99 (issue 17).
const PEAK_P99_MS = 10;

// ---------------------------------------------------------------------------------------------
// Reading a run

// Every NAME.json in dir as {NAME: object}; a file whose last line is not JSON (a run that failed
// before its report) is left out, so that its rows read "-" and not met.
function readRuns(dir) {
  const runs = {};
  for (const file of fs.readdirSync(dir)) {
    if (!file.endsWith('.json') || file === 'config.json') continue;
    const lines = fs.readFileSync(path.join(dir, file), 'utf8').trim().split('\n');
    try {
      runs[file.slice(0, -5)] = JSON.parse(lines[lines.length - 1]);
    } catch {
      // a failed run: its rows stay empty
    }
  }
  return runs;
}

// The 1-minute load average as each run started ({NAME: number}), from load.txt: the machine is
// shared, and a run under a neighbour's build is told apart by it.
function readLoad(dir) {
  const file = path.join(dir, 'load.txt');
  const load = {};
  if (fs.existsSync(file)) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const [name, value] = line.trim().split(/\s+/);
      if (name && Number.isFinite(Number(value))) load[name] = Number(value);
    }
  }
  return load;
}

function readConfig(dir) {
  const config = { lowRates: [1000, 5000], highRate: 20000, cpuRate: 10000, connectN: 10000, chatN: 10000, seconds: 10, peakRate: 50000 };
  const file = path.join(dir, 'config.json');
  return fs.existsSync(file) ? { ...config, ...JSON.parse(fs.readFileSync(file, 'utf8')) } : config;
}

// The history table kf_history_bench --compare printed: its sizes and rows {name, small, large,
// ratio, compared} (compared: the ratio is one the 2× target judges, not a size in brackets).
function parseHistory(text) {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  if (lines.length < 3) return null;
  const cells = (l) => l.split('|').slice(1, -1).map((c) => c.trim());
  const head = cells(lines[0]);
  const rows = lines.slice(2).map((l) => {
    const [name, small, large, ratio = ''] = cells(l);
    const compared = /^[0-9.]+/.test(ratio);
    return { name, small: Number(small), large: Number(large), cells: [name, small, large, ratio], ratio: compared ? parseFloat(ratio) : null, compared };
  });
  return { small: head[1], large: head[2], rows };
}

// ---------------------------------------------------------------------------------------------
// The figures

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// The run sustained the rate it was asked for (a server that falls behind is sent less).
const sustained = (r) => !!r && r.complete === true && num(r.rate_achieved) !== null && r.rate_achieved >= SUSTAINED * r.rate_target;

// A point of the durable-peak sweep: sustained, nothing lost or failed, p99 under the bound.
const durable = (r) => sustained(r) && r.lost === 0 && r.send_failed === 0 && num(r.lat_p99_ms) !== null && r.lat_p99_ms < PEAK_P99_MS;

// Server CPU per acknowledged message, in µs (every thread of kefu, every nginx worker: kf_load
// adds the children's CPU to the server's).
function cpuPerMessageUs(r) {
  if (!r || !(r.acked > 0) || num(r.server_cpu_pct) === null) return null;
  return ((r.server_cpu_pct / 100) * r.duration_s * 1e6) / r.acked;
}

// The same split by kefu's threads: {loops, writer, others} µs per acknowledged message, the
// writer's as {user, sys} too (kf_load's server_threads: CPU seconds by thread name over the
// run). The loops are "kefu" (the first) and "kefu-loop-N": HTTP, JSON, the hub and the push
// transports; the writer is SQLite, its WAL writes and fdatasync. null when not measured.
function cpuByThreadUs(r) {
  if (!r || !(r.acked > 0) || !r.server_threads) return null;
  const us = (s) => (s * 1e6) / r.acked;
  const out = { loops: 0, writer: 0, writerUser: 0, writerSys: 0, others: 0 };
  for (const [name, [user, sys]] of Object.entries(r.server_threads)) {
    if (name === 'kefu' || name.startsWith('kefu-loop')) out.loops += us(user + sys);
    else if (name === 'kefu-writer') {
      out.writer += us(user + sys);
      out.writerUser += us(user);
      out.writerSys += us(sys);
    } else out.others += us(user + sys);
  }
  return out;
}

// The chat runs of one server's series over one transport: [{rate, run}] by asked rate. prefix:
// "kefu-full", "kefu-normal" or "nchan"; the peak run (far above what either sustains) is in the
// ws series of FULL and of Nchan.
function series(runs, prefix, transport) {
  const out = [];
  const re = new RegExp(`^${prefix}-chat-${transport}-(\\d+)$`);
  for (const [name, run] of Object.entries(runs)) {
    const m = name.match(re);
    if (m) out.push({ rate: Number(m[1]), run });
  }
  const peak = runs[`${prefix === 'kefu-full' ? 'kefu' : prefix}-peak-${transport}`];
  if (peak && prefix !== 'kefu-normal') out.push({ rate: peak.rate_target, run: peak });
  return out.sort((a, b) => a.rate - b.rate);
}

// The highest achieved rate among the sweep's durable points, and the asked rate it came from.
function durablePeak(runs, prefix) {
  let best = null;
  for (const { rate, run } of series(runs, prefix, 'ws')) {
    if (durable(run) && (best === null || run.rate_achieved > best.achieved)) best = { asked: rate, achieved: run.rate_achieved };
  }
  return best;
}

const fmtMs = (v) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const fmtRatio = (k, n) => (k === null || n === null || n === 0 ? '-' : `${(k / n).toFixed(2)}×`);

// Issue 17's table: [{figure, kefu, nchan, ratio, target, met}] as display strings.
function targetRows(runs, config) {
  const rows = [];
  // shown: cells written otherwise than format gives them ({kefu, nchan}).
  const add = (figure, k, n, format, target, met, shown = {}) => rows.push({ figure, kefu: shown.kefu ?? format(k), nchan: shown.nchan ?? format(n), ratio: fmtRatio(k, n), target, met });
  const verdict = (ok, have) => (!have ? 'not measured' : ok ? '**met**' : 'not met');
  const rateNote = (r) => (r && !sustained(r) ? ` (kefu achieved ${fmtNum(r.rate_achieved)}/s)` : '') + (r && r.lost > 0 ? ` (kefu lost ${r.lost})` : '');

  for (const transport of ['ws', 'sse']) {
    for (const rate of config.lowRates) {
      const kr = runs[`kefu-full-chat-${transport}-${rate}`];
      const nr = runs[`nchan-chat-${transport}-${rate}`];
      const fr = runs[`fsync-kefu-full-chat-${transport}-${rate}`];
      const k = num(kr && kr.lat_p99_ms);
      const n = num(nr && nr.lat_p99_ms);
      const f = num(fr && fr.fsync_p99_ms);
      const bound = n !== null && f !== null ? n + f : null;
      add(`p99 ms, ${fmtNum(rate)} msg/s, ${transport}, FULL`, k, n, fmtMs, bound === null ? '≤ Nchan + fsync p99' : `≤ ${fmtMs(n)} + ${fmtMs(f)} (fsync p99) = ${fmtMs(bound)}${rateNote(kr)}`, verdict(k !== null && bound !== null && k <= bound && sustained(kr) && kr.lost === 0, k !== null && bound !== null));
    }
  }
  for (const transport of ['ws', 'sse']) {
    for (const rate of config.lowRates) {
      const kr = runs[`kefu-normal-chat-${transport}-${rate}`];
      const k = num(kr && kr.lat_p99_ms);
      const n = num(runs[`nchan-chat-${transport}-${rate}`] && runs[`nchan-chat-${transport}-${rate}`].lat_p99_ms);
      add(`p99 ms, ${fmtNum(rate)} msg/s, ${transport}, NORMAL`, k, n, fmtMs, n === null ? '≤ 1.5 × Nchan' : `≤ 1.5 × Nchan = ${fmtMs(1.5 * n)}${rateNote(kr)}`, verdict(k !== null && n !== null && k <= 1.5 * n && sustained(kr) && kr.lost === 0, k !== null && n !== null));
    }
  }
  for (const transport of ['ws', 'sse']) {
    const rate = config.highRate;
    const kr = runs[`kefu-full-chat-${transport}-${rate}`];
    const k = num(kr && kr.lat_p99_ms);
    const n = num(runs[`nchan-chat-${transport}-${rate}`] && runs[`nchan-chat-${transport}-${rate}`].lat_p99_ms);
    add(`p99 ms, ${fmtNum(rate)} msg/s, ${transport}, FULL`, k, n, fmtMs, n === null ? '≤ 2 × Nchan' : `≤ 2 × Nchan = ${fmtMs(2 * n)}${rateNote(kr)}`, verdict(k !== null && n !== null && k <= 2 * n && sustained(kr) && kr.lost === 0, k !== null && n !== null));
  }
  {
    const kp = durablePeak(runs, 'kefu-full');
    const np = durablePeak(runs, 'nchan');
    const k = kp && kp.achieved;
    const n = np && np.achieved;
    const haveNchan = series(runs, 'nchan', 'ws').length > 0;
    add(`durable peak msg/s (ws, FULL; p99 < ${PEAK_P99_MS} ms, nothing lost)`, k, n, (v) => (v === null ? 'none' : fmtNum(v)), haveNchan ? `≥ Nchan (2 workers) = ${n === null ? 'none' : fmtNum(n)}` : '≥ Nchan', verdict(k !== null && (n === null || k >= n), haveNchan && series(runs, 'kefu-full', 'ws').length > 0));
  }
  {
    const kr = runs[`kefu-full-chat-ws-${config.cpuRate}`];
    const nr = runs[`nchan-chat-ws-${config.cpuRate}`];
    const k = cpuPerMessageUs(kr);
    const n = cpuPerMessageUs(nr);
    add(`server CPU µs per message, ${fmtNum(config.cpuRate)} msg/s, ws (all threads / workers)`, k, n, (v) => (v === null ? '-' : v.toFixed(1)), `≤ Nchan${rateNote(kr)}`, verdict(k !== null && n !== null && k <= n && sustained(kr), k !== null && n !== null));
    // Where kefu's goes: what serves the push (against all of Nchan's), and what makes it durable.
    const split = cpuByThreadUs(kr);
    if (split) {
      const us = (v) => (v === null ? '-' : v.toFixed(1));
      add('… of it, kefu\'s event loops (HTTP, JSON, hub, push)', split.loops, n, us, 'none of its own: shows the push side alone', '-');
      add('… of it, kefu\'s store writer (SQLite; WAL writes and fdatasync): user + system', split.writer, null, us, 'none of its own', '-', { kefu: `${us(split.writerUser)} + ${us(split.writerSys)}`, nchan: '- (keeps nothing)' });
    }
  }
  for (const transport of ['ws', 'sse']) {
    const kr = runs[`kefu-connect-${transport}`];
    const nr = runs[`nchan-connect-${transport}`];
    const k = num(kr && kr.connect_s);
    const n = num(nr && nr.connect_s);
    const all = kr && kr.established === kr.connections;
    add(`${fmtNum(config.connectN)} connections: time s, ${transport}`, k, n, (v) => (v === null ? '-' : v.toFixed(2)), `≤ Nchan${kr && !all ? ` (kefu established ${kr.established})` : ''}`, verdict(k !== null && n !== null && k <= n && all, k !== null && n !== null));
  }
  {
    const chat = (prefix) => Object.entries(runs).filter(([name]) => name.startsWith(`${prefix}-`) && /-(chat|peak)-/.test(name));
    const lost = (prefix) => chat(prefix).reduce((sum, [, r]) => sum + (r.lost || 0) + (r.duplicates || 0) + (r.misdelivered || 0), 0);
    const kruns = chat('kefu');
    const k = kruns.length ? lost('kefu') : null;
    const n = chat('nchan').length ? lost('nchan') : null;
    add('messages lost, doubled or misdelivered (every chat run)', k, n, (v) => (v === null ? '-' : String(v)), '0', verdict(k === 0, k !== null));
  }
  return rows;
}

function markdownTable(head, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

// Every run's figures, for the record.
function detailTables(runs, load = {}) {
  const names = Object.keys(runs).filter((n) => !n.startsWith('fsync-'));
  const order = (n) => [n.startsWith('nchan') ? 1 : 0, n.includes('normal') ? 1 : 0, n.includes('sse') ? 1 : 0, n.includes('peak') ? 1 : 0, Number((n.match(/-(\d+)$/) || [0, 0])[1])];
  const cmp = (a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return a < b ? -1 : 1;
  };
  const fixed = (v, d) => (num(v) === null ? '-' : v.toFixed(d));
  const idle = names.filter((n) => n.includes('-connect-')).sort(cmp).map((n) => {
    const r = runs[n];
    return [n, `${r.established}/${r.connections}`, fixed(r.connect_s, 2), fixed(r.server_connect_cpu_s, 2), fmtNum(r.server_bytes_per_conn), fmtNum(r.server_rss_connected_kb), fixed(r.server_cpu_pct, 1), fixed(load[n], 1)];
  });
  const chat = names.filter((n) => /-(chat|peak)-/.test(n)).sort(cmp).map((n) => {
    const r = runs[n];
    return [n, fmtNum(r.rate_target), fmtNum(r.rate_achieved), `${r.lost}/${r.duplicates}`, fmtMs(num(r.lat_p50_ms)), fmtMs(num(r.lat_p99_ms)), fmtMs(num(r.lat_p999_ms)), fmtMs(num(r.lat_max_ms)), fixed(r.server_cpu_pct, 1), fixed(cpuPerMessageUs(r), 1), fixed(r.self_cpu_pct, 1), fixed(load[n], 1)];
  });
  const fsync = names.length === 0 ? [] : Object.keys(runs).filter((n) => n.startsWith('fsync-')).sort().map((n) => [n.slice(6), fixed(runs[n].fsync_p50_ms, 3), fixed(runs[n].fsync_p99_ms, 3), fixed(runs[n].fsync_max_ms, 3)]);
  const parts = [];
  if (idle.length) parts.push(markdownTable(['idle run', 'established', 'connect s', 'server CPU s to connect', 'server bytes/connection', 'server RSS connected KiB', 'idle server CPU %', 'load average'], idle));
  if (chat.length) parts.push(markdownTable(['chat run', 'asked msg/s', 'achieved msg/s', 'lost/doubled', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'server CPU %', 'server CPU µs/msg', 'kf_load CPU %', 'load average'], chat));
  if (fsync.length) parts.push(markdownTable(['write 4 KiB + fdatasync, in the data directory of', 'p50 ms', 'p99 ms', 'max ms'], fsync));
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// The charts

const KEFU = '#1f5fa8';
const KEFU_NORMAL = '#5aa0d8';
const NCHAN = '#d35400';

// A panel of lines on logarithmic axes: series [{label, color, dash, points: [[x, y]]}], refs
// [{y, label}] as dashed horizontal lines. Returns the SVG of the panel.
function logPanel({ left, top, width, height, title, xLabel, yLabel, series: lines, refs = [] }) {
  const xs = lines.flatMap((s) => s.points.map((p) => p[0])).filter((v) => v > 0);
  const ys = lines.flatMap((s) => s.points.map((p) => p[1])).concat(refs.map((r) => r.y)).filter((v) => v > 0);
  const xt = logTicks(Math.min(...xs, 1000), Math.max(...xs, 1000));
  const yt = logTicks(Math.min(...ys, 1), Math.max(...ys, 1));
  const lx = (v) => Math.log10(v);
  const x = (v) => left + (width * (lx(v) - lx(xt[0]))) / (lx(xt[xt.length - 1]) - lx(xt[0]));
  const y = (v) => top + height - (height * (lx(v) - lx(yt[0]))) / (lx(yt[yt.length - 1]) - lx(yt[0]));
  let s = `<text x="${left}" y="${top - 10}" font-size="13" font-weight="bold">${esc(title)}</text>`;
  for (const v of yt) {
    s += `<line x1="${left}" x2="${left + width}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`;
    s += `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmtTick(v)}</text>`;
  }
  for (const v of xt) {
    s += `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top}" y2="${top + height}" stroke="#eee"/>`;
    s += `<text x="${x(v).toFixed(1)}" y="${top + height + 16}" text-anchor="middle" font-size="11">${fmtNum(v)}</text>`;
  }
  s += `<text x="${left + width / 2}" y="${top + height + 34}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`;
  s += `<text x="${left - 44}" y="${top + height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 ${left - 44} ${top + height / 2})">${esc(yLabel)}</text>`;
  for (const r of refs) {
    s += `<line x1="${left}" x2="${left + width}" y1="${y(r.y).toFixed(1)}" y2="${y(r.y).toFixed(1)}" stroke="#888" stroke-dasharray="6 4"/>`;
    s += `<text x="${left + 6}" y="${(y(r.y) - 4).toFixed(1)}" font-size="10" fill="#555">${esc(r.label)}</text>`;
  }
  for (const line of lines) {
    const pts = line.points.filter((p) => p[0] > 0 && p[1] > 0);
    if (pts.length === 0) continue;
    const dash = line.dash ? ` stroke-dasharray="${line.dash}"` : '';
    s += `<polyline fill="none" stroke="${line.color}" stroke-width="1.8"${dash} points="${pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>`;
    for (const p of pts) s += `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="2.5" fill="${line.color}"/>`;
  }
  s += `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#999"/>`;
  return s;
}

// The legend as one row per entry at (x, y): [{label, color, dash}].
function legend(entries, x, y) {
  return entries.map((e, i) => {
    const yy = y + i * 16;
    const dash = e.dash ? ` stroke-dasharray="${e.dash}"` : '';
    return `<line x1="${x}" x2="${x + 24}" y1="${yy}" y2="${yy}" stroke="${e.color}" stroke-width="2"${dash}/><text x="${x + 30}" y="${yy + 4}" font-size="11">${esc(e.label)}</text>`;
  }).join('');
}

// Latency percentiles against the achieved rate, ws and sse, for kefu (FULL and NORMAL) and Nchan.
function latencyChart(runs, config) {
  const width = 920;
  const panelW = 340;
  const height = 300;
  const top = 100;
  const kinds = [
    { key: 'lat_p50_ms', name: 'p50', dash: '2 3' },
    { key: 'lat_p99_ms', name: 'p99', dash: '' },
    { key: 'lat_p999_ms', name: 'p99.9', dash: '8 3 2 3' },
  ];
  const servers = [
    { prefix: 'kefu-full', name: 'kefu FULL', color: KEFU, kinds },
    { prefix: 'kefu-normal', name: 'kefu NORMAL', color: KEFU_NORMAL, kinds: [kinds[1]] },
    { prefix: 'nchan', name: 'Nchan', color: NCHAN, kinds },
  ];
  let body = '';
  ['ws', 'sse'].forEach((transport, i) => {
    const lines = servers.flatMap((srv) => srv.kinds.map((k) => ({
      color: srv.color,
      dash: k.dash,
      points: series(runs, srv.prefix, transport).filter(({ run }) => num(run.rate_achieved) > 0 && num(run[k.key]) > 0).map(({ run }) => [run.rate_achieved, run[k.key]]).sort((a, b) => a[0] - b[0]),
    })));
    body += logPanel({ left: 90 + i * (panelW + 110), top, width: panelW, height, title: `${transport}, ${fmtNum(config.chatN)} visitors`, xLabel: 'messages a second achieved', yLabel: 'delivery latency, ms', series: lines, refs: [{ y: PEAK_P99_MS, label: `${PEAK_P99_MS} ms: the durable peak's bound on p99` }] });
  });
  servers.forEach((srv, i) => {
    body += legend(srv.kinds.map((k) => ({ label: `${srv.name} ${k.name}`, color: srv.color, dash: k.dash })), 90 + i * 260, top + height + 64);
  });
  const head = `<text x="20" y="26" font-size="15" font-weight="bold">${esc(`Delivery latency against rate, kefu and Nchan${config.date ? `, ${config.date}` : ''}`)}</text>`;
  const sub = `<text x="20" y="46" font-size="12">${esc('kefu FULL: every message synced before it is acknowledged and pushed; NORMAL: synced at checkpoints; Nchan: in memory, 2 workers.')}</text>`
    + `<text x="20" y="64" font-size="12">${esc(`bench/run.sh: one kf_load run of ${config.seconds} s per point, each on a fresh server; logarithmic axes; ${config.cores || '?'} cores shared with the load generator.`)}</text>`;
  return document(width, top + height + 120, head + sub + body);
}

// Horizontal bars: [{label, value, color}], a linear axis from 0, values written at the bars' ends.
function barChart({ title, subtitle, unit, bars, refs = [], log = false, width = 900 }) {
  const left = 300;
  const right = 200; // room for the figures written after the longest bar
  const barH = 20;
  const gap = 8;
  const top = 70;
  const plotW = width - left - right;
  const values = bars.map((b) => b.value).filter((v) => num(v) !== null && v > 0);
  let x;
  let tickValues;
  if (log) {
    tickValues = logTicks(Math.min(...values, ...refs.map((r) => r.value), 1), Math.max(...values, ...refs.map((r) => r.value), 1));
    const l0 = Math.log10(tickValues[0]);
    const l1 = Math.log10(tickValues[tickValues.length - 1]);
    x = (v) => left + (plotW * (Math.log10(v) - l0)) / (l1 - l0);
  } else {
    tickValues = ticks(Math.max(...values, 1) * 1.05);
    x = (v) => left + (plotW * v) / tickValues[tickValues.length - 1];
  }
  const height = bars.length * (barH + gap);
  let s = `<text x="20" y="28" font-size="15" font-weight="bold">${esc(title)}</text><text x="20" y="48" font-size="12">${esc(subtitle)}</text>`;
  for (const v of tickValues) {
    s += `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top}" y2="${top + height}" stroke="#e4e4e4"/>`;
    s += `<text x="${x(v).toFixed(1)}" y="${top + height + 16}" text-anchor="middle" font-size="11">${fmtNum(v, 2)}</text>`;
  }
  // On a ratio's logarithmic axis the bars start at 1 (flat), left for cheaper, right for dearer.
  const base = log ? x(1) : left;
  bars.forEach((b, i) => {
    const yy = top + i * (barH + gap);
    s += `<text x="${left - 8}" y="${yy + barH / 2 + 4}" text-anchor="end" font-size="11">${esc(b.label)}</text>`;
    if (num(b.value) === null || b.value <= 0) {
      s += `<text x="${base + 4}" y="${yy + barH / 2 + 4}" font-size="11" fill="#888">not measured</text>`;
      return;
    }
    const from = Math.min(base, x(b.value));
    const to = Math.max(base, x(b.value));
    s += `<rect x="${from.toFixed(1)}" y="${yy}" width="${Math.max(1, to - from).toFixed(1)}" height="${barH}" fill="${b.color}"/>`;
    s += `<text x="${(to + 4).toFixed(1)}" y="${yy + barH / 2 + 4}" font-size="11">${esc(b.text || fmtNum(b.value, 2))}</text>`;
  });
  for (const r of refs) {
    s += `<line x1="${x(r.value).toFixed(1)}" x2="${x(r.value).toFixed(1)}" y1="${top - 6}" y2="${top + height}" stroke="#c33" stroke-dasharray="6 4"/>`;
    s += `<text x="${(x(r.value) + 4).toFixed(1)}" y="${top - 8}" font-size="10" fill="#c33">${esc(r.label)}</text>`;
  }
  s += `<text x="${left + plotW / 2}" y="${top + height + 34}" text-anchor="middle" font-size="12">${esc(unit)}</text>`;
  return document(width, top + height + 50, s);
}

// Server memory per idle connection (user space: RSS after connecting less before, per connection).
function memoryChart(runs, config) {
  const bars = [];
  for (const transport of ['ws', 'sse']) {
    for (const [prefix, name, color] of [['kefu', 'kefu', KEFU], ['nchan', 'Nchan (2 workers)', NCHAN]]) {
      const r = runs[`${prefix}-connect-${transport}`];
      bars.push({ label: `${name}, ${transport}`, value: r ? num(r.server_bytes_per_conn) : null, color, text: r ? `${fmtNum(r.server_bytes_per_conn)} bytes` : undefined });
    }
  }
  return barChart({ title: `Server memory per idle push connection, ${fmtNum(config.connectN)} connections`, subtitle: `bench/run.sh ${config.date || ''}: (RSS connected − RSS before) / connections; kernel socket buffers are not in it`, unit: 'bytes per connection', bars });
}

// Every compared history figure: the large store's cost over the small one's, against the 2× target.
function historyChart(history, config) {
  const rows = history.rows.filter((r) => r.compared && r.ratio > 0);
  const bars = rows.map((r) => ({ label: r.name.length > 46 ? `${r.name.slice(0, 45)}…` : r.name, value: r.ratio, color: r.ratio > 2 ? '#c0392b' : '#2c8c3c', text: `${r.ratio.toFixed(2)}× (${r.cells[1]} → ${r.cells[2]})` }));
  return barChart({ title: `Cost against history size: ${history.large} against ${history.small}`, subtitle: `kf_history_bench --compare in bench/run.sh ${config.date || ''}; red: over the 2× target; logarithmic axis`, unit: 'large store ÷ small store', bars, refs: [{ value: 1, label: 'flat' }, { value: 2, label: 'target: ≤ 2×' }], log: true, width: 1100 });
}

// ---------------------------------------------------------------------------------------------

function report(dir) {
  const runs = readRuns(dir);
  const config = readConfig(dir);
  const load = readLoad(dir);
  const historyFile = path.join(dir, 'history.md');
  const history = fs.existsSync(historyFile) ? parseHistory(fs.readFileSync(historyFile, 'utf8')) : null;
  return { runs, config, history, load, targets: targetRows(runs, config) };
}

function markdown({ runs, config, history, targets, load }) {
  const out = [];
  const loadText = config.loadStart !== undefined ? `; load average ${config.loadStart} at the start, ${config.loadEnd} at the end` : '';
  out.push(`kefu vs Nchan, ${config.date || ''}, ${config.cores || '?'} cores (${config.cpu || '?'}), suite ${config.tookS || '?'} s${loadText}`);
  out.push('');
  out.push(markdownTable(['figure', 'kefu', 'Nchan', 'kefu/Nchan', 'target', 'met?'], targets.map((r) => [r.figure, r.kefu, r.nchan, r.ratio, r.target, r.met])));
  const met = targets.filter((r) => r.met === '**met**').length;
  out.push('');
  out.push(`${met} of ${targets.length} targets met. A latency or CPU target counts as met only when kefu also sustained the rate (at least ${SUSTAINED * 100} % of it acknowledged) and lost nothing; the durable peak is the highest rate achieved with p99 < ${PEAK_P99_MS} ms, nothing lost and the rate sustained, over the ws sweep (${(config.sweepRates || []).map((r) => fmtNum(r)).join(', ')} msg/s, and the peak run).`);
  out.push('');
  out.push(detailTables(runs, load));
  if (history) {
    out.push('');
    out.push(`History (kf_history_bench ${config.historyArgs || '--compare'}):`);
    out.push('');
    out.push(markdownTable(['figure', history.small, history.large, 'large / small'], history.rows.map((r) => r.cells)));
    out.push('');
    out.push(`${history.rows.filter((r) => r.compared && r.ratio > 2).length} history figures over the 2× target`);
  }
  return `${out.join('\n')}\n`;
}

function charts(rep, dir) {
  const written = [];
  const write = (name, svg) => {
    fs.writeFileSync(path.join(dir, name), svg);
    written.push(path.join(dir, name));
  };
  write('bench-latency.svg', latencyChart(rep.runs, rep.config));
  write('bench-memory.svg', memoryChart(rep.runs, rep.config));
  if (rep.history) write('bench-history.svg', historyChart(rep.history, rep.config));
  return written;
}

function main(argv) {
  const args = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!['--dir', '--charts'].includes(argv[i]) || argv[i + 1] === undefined) throw new Error(`bench_report.js: unknown or incomplete option ${argv[i]} (--dir DIR [--charts DIR])`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  if (!args.dir) throw new Error('bench_report.js: --dir is required');
  const rep = report(args.dir);
  process.stdout.write(markdown(rep));
  if (args.charts) {
    fs.mkdirSync(args.charts, { recursive: true });
    for (const file of charts(rep, args.charts)) process.stderr.write(`bench_report.js: wrote ${file}\n`);
  }
}

if (require.main === module) main(process.argv);

module.exports = { readRuns, readLoad, readConfig, parseHistory, sustained, durable, cpuPerMessageUs, cpuByThreadUs, series, durablePeak, targetRows, markdown, latencyChart, memoryChart, historyChart, report, charts };
