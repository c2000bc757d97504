#!/usr/bin/env node
'use strict';
// soak_report.js: judges a soak run (bench/soak.sh) from kf_soak's samples (CSV) and summary
// (its JSON line), and draws the samples as an SVG: the server's resident memory, its open files
// and the delivery latency over time. No dependencies.
//
//   node bench/soak_report.js --csv FILE --summary FILE [--svg FILE] [--title TEXT]
//        [--rss-growth PCT] [--fds-growth PCT] [--p99-factor N] [--p99-slack-ms MS]
//        [--late N]
//
// The run passes when kf_soak finished, every acknowledged message reached every listener owed
// it exactly once (lost, duplicates, misdelivered and unknown all 0; a message received again
// below the request's cursor, which a client drops by its id, only when the server gave up
// waiting for a late message: --late, the count of its log's warnings), no send failed or went
// unanswered, every listener connected, and the figures are flat at the end: the medians of the
// last third of the samples against those of the middle third (the first third is warm-up) grow
// by at most --rss-growth % (resident memory) and --fds-growth % (open files); the p99 latency of
// the last third's quietest quarter of samples (its lower quartile: a busy neighbour only adds
// spikes, a server slowing down lifts them all) is at most --p99-factor times the middle third's
// plus --p99-slack-ms. Prints the verdict, exits 1 when it fails.

const fs = require('node:fs');
const { esc, ticks, fmtTick, document } = require('./svg.js');

function parseArgs(argv) {
  const args = { rssGrowth: 10, fdsGrowth: 5, p99Factor: 2, p99SlackMs: 10, late: 0, title: 'kefu soak' };
  const names = { '--csv': 'csv', '--summary': 'summary', '--svg': 'svg', '--title': 'title', '--rss-growth': 'rssGrowth', '--fds-growth': 'fdsGrowth', '--p99-factor': 'p99Factor', '--p99-slack-ms': 'p99SlackMs', '--late': 'late' };
  for (let i = 2; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new Error(`soak_report.js: unknown or incomplete option ${argv[i]}`);
    args[key] = typeof args[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!args.csv || !args.summary) throw new Error('soak_report.js: --csv and --summary are required');
  return args;
}

// The CSV's rows as objects of numbers (null for "-").
function readCsv(file) {
  const [head, ...lines] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((line) => {
    const row = {};
    line.split(',').forEach((v, i) => (row[cols[i]] = v === '-' || v === '' ? null : Number(v)));
    return row;
  });
}

const ms = (v) => (v === null || v === undefined ? '-' : v.toFixed(1));

// The q-quantile (0 to 1) of the numbers among values, interpolated; null when there are none.
function quantile(values, q) {
  const v = values.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  return lo + 1 < v.length ? v[lo] + (v[lo + 1] - v[lo]) * (pos - lo) : v[lo];
}

// The samples of the middle and the last third of the run, by time.
function thirds(rows) {
  const end = rows[rows.length - 1].t_s;
  return {
    middle: rows.filter((r) => r.t_s >= end / 3 && r.t_s < (2 * end) / 3),
    last: rows.filter((r) => r.t_s >= (2 * end) / 3),
  };
}

function judge(rows, summary, args) {
  const checks = [];
  const check = (ok, what) => checks.push({ ok, what });
  check(summary.complete === true, `kf_soak ran to the end${summary.complete ? '' : ' (it stopped early)'}`);
  for (const key of ['lost', 'duplicates', 'misdelivered', 'unknown', 'unacked_delivered']) check(summary[key] === 0, `${key}: ${summary[key]}`);
  // docs/PROTOCOL.md, "Cursor": after the server gives up waiting for a late message, clients
  // that come back replay from below it whatever their cursor, and drop by id what they have.
  const again = summary.again ?? 0;
  check(again === 0 || args.late > 0, `received again below the request's cursor: ${again} (the server gave up waiting for a late message ${args.late} times)`);
  check(summary.send_failed === 0 && summary.unanswered === 0, `sends failed ${summary.send_failed}, unanswered ${summary.unanswered} (of ${summary.messages})`);
  check(summary.never_established === 0, `listeners never established: ${summary.never_established} of ${summary.listeners}`);
  const { middle, last } = thirds(rows);
  check(middle.length >= 2 && last.length >= 2, `samples: ${middle.length} in the middle third, ${last.length} in the last (at least 2 each)`);
  const flat = {};
  if (middle.length >= 1 && last.length >= 1) {
    const m = (rs, key, q = 0.5) => quantile(rs.map((r) => r[key]), q);
    const rss = [m(middle, 'rss_kb'), m(last, 'rss_kb')];
    const fds = [m(middle, 'fds'), m(last, 'fds')];
    const p99 = [m(middle, 'lat_p99_ms', 0.25), m(last, 'lat_p99_ms', 0.25)];
    const reconnects = last[last.length - 1].reconnects - middle[middle.length - 1].reconnects;
    const growth = (a, b) => (100 * (b - a)) / a;
    flat.rss = { middle: rss[0], last: rss[1], growthPct: growth(...rss), limitPct: args.rssGrowth };
    flat.fds = { middle: fds[0], last: fds[1], growthPct: growth(...fds), limitPct: args.fdsGrowth };
    flat.p99 = { middle: p99[0], last: p99[1], limitMs: p99[0] === null ? null : p99[0] * args.p99Factor + args.p99SlackMs };
    // What the checks would catch: the two medians sit about a third of the run apart, so a leak
    // per reconnection grows the last third's by the reconnections of one third times the leak.
    flat.leakBytes = reconnects > 0 ? Math.round((rss[0] * 1024 * args.rssGrowth) / 100 / reconnects) : null;
    flat.fdLeakEvery = reconnects > 0 ? Math.floor(reconnects / ((fds[0] * args.fdsGrowth) / 100)) : null;
    check(flat.rss.growthPct <= args.rssGrowth, `resident memory: median ${(rss[0] / 1024).toFixed(1)} MiB in the middle third, ${(rss[1] / 1024).toFixed(1)} MiB in the last (${flat.rss.growthPct.toFixed(1)} %, at most +${args.rssGrowth} %)`);
    check(flat.fds.growthPct <= args.fdsGrowth, `open files: median ${fds[0]} in the middle third, ${fds[1]} in the last (${flat.fds.growthPct.toFixed(1)} %, at most +${args.fdsGrowth} %)`);
    check(p99[0] === null || p99[1] <= flat.p99.limitMs, `p99 latency, lower quartile of the samples: ${ms(p99[0])} ms in the middle third, ${ms(p99[1])} ms in the last (at most ${ms(flat.p99.limitMs)} ms)`);
    flat.reconnectsLastThird = reconnects;
  }
  return { checks, flat, ok: checks.every((c) => c.ok) };
}

// ---------------------------------------------------------------------------------------------
// The plot

// One panel: series [{key, label, color, scale}], the y axis from 0; the last third shaded, the
// middle third's reference (limit.base) and the limit drawn for `limit` when given.
function panel({ rows, series, title, unit, top, height, width, left, right, xmax, limit }) {
  const ys = rows.flatMap((r) => series.map((s) => (r[s.key] === null ? null : r[s.key] * s.scale))).filter((v) => v !== null);
  const ymaxData = Math.max(...ys, limit ? limit.value : 0, 0);
  const yt = ticks(ymaxData * 1.05);
  const ymax = yt[yt.length - 1];
  const plotW = width - left - right;
  const x = (t) => left + (plotW * t) / xmax;
  const y = (v) => top + height - (height * v) / ymax;
  let s = '';
  s += `<rect x="${x((2 * xmax) / 3)}" y="${top}" width="${plotW / 3}" height="${height}" fill="#f2f2f2"/>`;
  for (const v of yt) {
    s += `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`;
    s += `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${fmtTick(v)}</text>`;
  }
  s += `<text x="${left}" y="${top - 8}" font-size="13" font-weight="bold">${esc(title)}</text>`;
  s += `<text x="${left - 40}" y="${top + height / 2}" font-size="11" transform="rotate(-90 ${left - 40} ${top + height / 2})" text-anchor="middle">${esc(unit)}</text>`;
  if (limit) {
    s += `<line x1="${x(xmax / 3)}" x2="${x(xmax)}" y1="${y(limit.base)}" y2="${y(limit.base)}" stroke="#888" stroke-dasharray="2 3"/>`;
    s += `<line x1="${x((2 * xmax) / 3)}" x2="${x(xmax)}" y1="${y(limit.value)}" y2="${y(limit.value)}" stroke="#c33" stroke-dasharray="6 4"/>`;
    s += `<text x="${x(xmax) - 4}" y="${y(limit.value) - 4}" font-size="10" text-anchor="end" fill="#c33">${esc(limit.label)}</text>`;
  }
  const legendWidth = series.reduce((w, ser) => w + 34 + ser.label.length * 6, 0);
  let legendX = width - right - legendWidth;
  for (const ser of series) {
    const pts = rows.filter((r) => r[ser.key] !== null).map((r) => `${x(r.t_s).toFixed(1)},${y(r[ser.key] * ser.scale).toFixed(1)}`);
    s += `<polyline fill="none" stroke="${ser.color}" stroke-width="1.8" points="${pts.join(' ')}"/>`;
    s += `<line x1="${legendX}" x2="${legendX + 18}" y1="${top - 12}" y2="${top - 12}" stroke="${ser.color}" stroke-width="2"/>`;
    s += `<text x="${legendX + 22}" y="${top - 8}" font-size="11">${esc(ser.label)}</text>`;
    legendX += 34 + ser.label.length * 6;
  }
  s += `<rect x="${left}" y="${top}" width="${plotW}" height="${height}" fill="none" stroke="#999"/>`;
  return s;
}

function svg(rows, summary, verdict, args) {
  const width = 900;
  const left = 70;
  const right = 20;
  const height = 170;
  const gap = 60;
  const top0 = 70;
  const xmax = rows[rows.length - 1].t_s || 1;
  const minutes = xmax >= 600;
  const xs = ticks(minutes ? xmax / 60 : xmax);
  const f = verdict.flat;
  const panels = [
    { series: [{ key: 'rss_kb', label: 'VmRSS', color: '#1f5fa8', scale: 1 / 1024 }], title: 'server resident memory', unit: 'MiB', limit: f.rss && { base: f.rss.middle / 1024, value: (f.rss.middle / 1024) * (1 + args.rssGrowth / 100), label: `middle third's median +${args.rssGrowth} %` } },
    { series: [{ key: 'fds', label: 'open files', color: '#2c8c3c', scale: 1 }], title: 'server open files (/proc/PID/fd)', unit: 'files', limit: f.fds && { base: f.fds.middle, value: f.fds.middle * (1 + args.fdsGrowth / 100), label: `middle third's median +${args.fdsGrowth} %` } },
    {
      series: [
        { key: 'lat_p99_ms', label: 'p99', color: '#c0392b', scale: 1 },
        { key: 'lat_p50_ms', label: 'p50', color: '#e39b3b', scale: 1 },
      ],
      title: 'delivery latency over streams (ws, sse, long poll, iframe), per sample interval',
      unit: 'ms',
      limit: f.p99 && f.p99.middle !== null && { base: f.p99.middle, value: f.p99.limitMs, label: `limit of the lower quartile: ×${args.p99Factor} +${args.p99SlackMs} ms` },
    },
  ];
  let body = '';
  panels.forEach((p, i) => {
    body += panel({ rows, ...p, top: top0 + i * (height + gap), height, width, left, right, xmax });
  });
  const bottom = top0 + panels.length * (height + gap) - gap;
  for (const v of xs) {
    const t = minutes ? v * 60 : v;
    if (t > xmax * 1.0001) continue;
    const px = left + ((width - left - right) * t) / xmax;
    body += `<line x1="${px}" x2="${px}" y1="${bottom}" y2="${bottom + 5}" stroke="#999"/><text x="${px}" y="${bottom + 18}" font-size="11" text-anchor="middle">${fmtTick(v)}</text>`;
  }
  body += `<text x="${left + (width - left - right) / 2}" y="${bottom + 36}" font-size="12" text-anchor="middle">${minutes ? 'minutes' : 'seconds'} of load (the last third shaded)</text>`;
  const h = bottom + 80;
  const line1 = `${args.title}: ${summary.visitors} visitors, ${summary.agents} agents, ${summary.messages} messages, ${summary.reconnects} reconnections`;
  const line2 = `lost ${summary.lost}, duplicates ${summary.duplicates}, again below the cursor ${summary.again ?? 0}; ${verdict.ok ? 'flat at the end: PASS' : 'FAIL'}`;
  const head = `<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(line1)}</text>
<text x="${left}" y="44" font-size="12">${esc(line2)}</text>`;
  const foot = `<text x="${left}" y="${h - 16}" font-size="10" fill="#666">${esc(`bench/soak.sh; samples every ${rows.length > 1 ? Math.round(rows[1].t_s - rows[0].t_s) : '?'} s; short polls (2 s interval) are left out of the latency`)}</text>`;
  return document(width, h, `${head}\n${body}\n${foot}`);
}

function main() {
  const args = parseArgs(process.argv);
  const rows = readCsv(args.csv);
  if (rows.length === 0) throw new Error(`${args.csv}: no samples`);
  const summaryLine = fs.readFileSync(args.summary, 'utf8').trim().split('\n').pop();
  const summary = JSON.parse(summaryLine);
  const verdict = judge(rows, summary, args);
  for (const c of verdict.checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.what}`);
  if (verdict.flat.leakBytes !== null && verdict.flat.leakBytes !== undefined)
    console.log(`     (${verdict.flat.reconnectsLastThird} reconnections in the last third: the checks fail a leak of ${verdict.flat.leakBytes} bytes or more per reconnection, or of one open file every ${verdict.flat.fdLeakEvery} reconnections or more often)`);
  if (args.svg) {
    fs.writeFileSync(args.svg, svg(rows, summary, verdict, args));
    console.log(`plot: ${args.svg}`);
  }
  console.log(verdict.ok ? 'soak: PASS' : 'soak: FAIL');
  process.exitCode = verdict.ok ? 0 : 1;
}

main();
