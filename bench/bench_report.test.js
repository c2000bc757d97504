'use strict';
// bench_report.test.js: the target table's arithmetic and verdicts, the history table's parsing
// and the charts of bench_report.js, on made-up runs (ctest runs it: `node --test`).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const report = require('./bench_report.js');
const { logTicks, ticks, esc } = require('./svg.js');

// A kf_load JSON line with what the report reads; rate sustained and nothing lost unless said.
function run(over = {}) {
  const rate = over.rate_target ?? 1000;
  return { tool: 'kf_load', complete: true, connections: 10000, established: 10000, duration_s: 10, rate_target: rate, rate_achieved: rate, acked: rate * 10, send_failed: 0, lost: 0, duplicates: 0, misdelivered: 0, lat_p50_ms: 0.3, lat_p99_ms: 1, lat_p999_ms: 2, lat_max_ms: 3, server_cpu_pct: 20, self_cpu_pct: 10, connect_s: 0.4, server_connect_cpu_s: 0.3, server_bytes_per_conn: 1300, server_rss_connected_kb: 30000, ...over };
}

const HISTORY = `| figure | 10000 conversations | 100000 conversations | large / small |
| --- | --- | --- | --- |
| conversations | 10000 | 100000 | (10.0) |
| bytes on disk per message | 202 | 212 | 1.05 |
| list all p99 ms | 10.00 | 35.00 | 3.50 **over 2×** |
| search, rare, p99 ms | 0.58 | - | |

1 figures over the 2× target
`;

const made = [];
test.after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

// A run directory as run.sh leaves it.
function runDir(runs, { config = {}, history = HISTORY, extra = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-bench-report-'));
  made.push(dir);
  for (const [name, value] of Object.entries(runs)) fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(value)}\n`);
  for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), text);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ date: '2026-12-05', cores: 2, lowRates: [1000], highRate: 20000, cpuRate: 10000, connectN: 10000, chatN: 10000, seconds: 10, sweepRates: [5000, 10000], ...config }));
  if (history !== null) fs.writeFileSync(path.join(dir, 'history.md'), history);
  return dir;
}

// Both servers, every row measured: kefu meets the FULL and NORMAL latency targets at ws, misses
// them at sse, falls behind at 20,000/s, and its peak is below Nchan's.
function fullRuns() {
  return {
    'kefu-full-chat-ws-1000': run({ lat_p99_ms: 1.0 }),
    'fsync-kefu-full-chat-ws-1000': { fsync_p50_ms: 0.2, fsync_p99_ms: 0.6 },
    'nchan-chat-ws-1000': run({ lat_p99_ms: 0.5 }),
    'kefu-full-chat-sse-1000': run({ lat_p99_ms: 1.2 }),
    'fsync-kefu-full-chat-sse-1000': { fsync_p99_ms: 0.6 },
    'nchan-chat-sse-1000': run({ lat_p99_ms: 0.5 }),
    'kefu-normal-chat-ws-1000': run({ lat_p99_ms: 0.7 }),
    'kefu-normal-chat-sse-1000': run({ lat_p99_ms: 0.8 }),
    'kefu-full-chat-ws-20000': run({ rate_target: 20000, rate_achieved: 15000, acked: 150000, lat_p99_ms: 3 }),
    'nchan-chat-ws-20000': run({ rate_target: 20000, lat_p99_ms: 2 }),
    'kefu-full-chat-sse-20000': run({ rate_target: 20000, lat_p99_ms: 3.9 }),
    'nchan-chat-sse-20000': run({ rate_target: 20000, lat_p99_ms: 2 }),
    'kefu-full-chat-ws-5000': run({ rate_target: 5000, lat_p99_ms: 3 }),
    'kefu-full-chat-ws-10000': run({ rate_target: 10000, lat_p99_ms: 12, server_cpu_pct: 100 }),
    'nchan-chat-ws-5000': run({ rate_target: 5000, lat_p99_ms: 1 }),
    'nchan-chat-ws-10000': run({ rate_target: 10000, lat_p99_ms: 2, server_cpu_pct: 60 }),
    'kefu-peak-ws': run({ rate_target: 50000, rate_achieved: 26000, acked: 260000, lat_p99_ms: 15 }),
    'nchan-peak-ws': run({ rate_target: 50000, rate_achieved: 43000, acked: 430000, lat_p99_ms: 30 }),
    'kefu-connect-ws': run({ connect_s: 0.45, server_bytes_per_conn: 1366 }),
    'nchan-connect-ws': run({ connect_s: 0.32, server_bytes_per_conn: 12441 }),
    'kefu-connect-sse': run({ connect_s: 0.3, established: 9990 }),
    'nchan-connect-sse': run({ connect_s: 0.34 }),
  };
}

const byFigure = (rows) => Object.fromEntries(rows.map((r) => [r.figure, r]));

test('the latency targets: Nchan plus the fsync floor, 1.5× and 2× Nchan, the rate sustained', () => {
  const rows = byFigure(report.targetRows(fullRuns(), report.readConfig(runDir({}))));
  const full = rows['p99 ms, 1,000 msg/s, ws, FULL'];
  assert.equal(full.kefu, '1.00');
  assert.equal(full.nchan, '0.50');
  assert.equal(full.ratio, '2.00×');
  assert.match(full.target, /≤ 0\.50 \+ 0\.60 \(fsync p99\) = 1\.10/);
  assert.equal(full.met, '**met**');
  assert.equal(rows['p99 ms, 1,000 msg/s, sse, FULL'].met, 'not met'); // 1.2 > 1.1
  assert.equal(rows['p99 ms, 1,000 msg/s, ws, NORMAL'].met, '**met**'); // 0.7 ≤ 0.75
  assert.equal(rows['p99 ms, 1,000 msg/s, sse, NORMAL'].met, 'not met'); // 0.8 > 0.75
  // 3 ms ≤ 2 × 2 ms, but kefu acknowledged 15,000 of the 20,000 a second asked.
  const behind = rows['p99 ms, 20,000 msg/s, ws, FULL'];
  assert.equal(behind.met, 'not met');
  assert.match(behind.target, /kefu achieved 15,000\/s/);
  assert.equal(rows['p99 ms, 20,000 msg/s, sse, FULL'].met, '**met**');
});

test('a lost message fails a latency target that its p99 meets', () => {
  const runs = fullRuns();
  runs['kefu-full-chat-ws-1000'].lost = 1;
  const rows = byFigure(report.targetRows(runs, report.readConfig(runDir({}))));
  assert.equal(rows['p99 ms, 1,000 msg/s, ws, FULL'].met, 'not met');
  assert.match(rows['p99 ms, 1,000 msg/s, ws, FULL'].target, /kefu lost 1/);
  assert.equal(rows['messages lost, doubled or misdelivered (every chat run)'].kefu, '1');
  assert.equal(rows['messages lost, doubled or misdelivered (every chat run)'].met, 'not met');
});

test('the durable peak is the highest sustained rate with p99 under 10 ms and nothing lost', () => {
  const runs = fullRuns();
  assert.deepEqual(report.durablePeak(runs, 'kefu-full'), { asked: 5000, achieved: 5000 }); // 10,000: p99 12 ms
  assert.deepEqual(report.durablePeak(runs, 'nchan'), { asked: 20000, achieved: 20000 });
  runs['nchan-chat-ws-20000'].lost = 3;
  assert.deepEqual(report.durablePeak(runs, 'nchan'), { asked: 10000, achieved: 10000 });
  const rows = byFigure(report.targetRows(runs, report.readConfig(runDir({}))));
  const peak = rows['durable peak msg/s (ws, FULL; p99 < 10 ms, nothing lost)'];
  assert.equal(peak.kefu, '5,000');
  assert.equal(peak.nchan, '10,000');
  assert.equal(peak.ratio, '0.50×');
  assert.equal(peak.met, 'not met');
  // The peak run is a point of the ws series, at its asked rate, and not of NORMAL's.
  assert.deepEqual(report.series(runs, 'kefu-full', 'ws').map((p) => p.rate), [1000, 5000, 10000, 20000, 50000]);
  assert.deepEqual(report.series(runs, 'kefu-normal', 'ws').map((p) => p.rate), [1000]);
});

test('server CPU per message counts the run\'s CPU over the messages acknowledged', () => {
  assert.equal(report.cpuPerMessageUs(run({ server_cpu_pct: 50, duration_s: 10, acked: 100000 })), 50);
  assert.equal(report.cpuPerMessageUs(run({ acked: 0 })), null);
  const rows = byFigure(report.targetRows(fullRuns(), report.readConfig(runDir({}))));
  const cpu = rows['server CPU µs per message, 10,000 msg/s, ws (all threads / workers)'];
  assert.equal(cpu.kefu, '100.0');
  assert.equal(cpu.nchan, '60.0');
  assert.equal(cpu.met, 'not met');
});

test('server CPU per message by kefu\'s threads: its loops beside all of Nchan\'s, and the writer\'s user and system time', () => {
  const r = run({ acked: 100000, server_threads: { kefu: [1, 2], 'kefu-loop-1': [0.5, 0.5], 'kefu-writer': [4, 3], 'kefu-checkpoint': [0, 0.1] } });
  const split = report.cpuByThreadUs(r);
  assert.equal(split.loops, 40);
  assert.equal(split.writer, 70);
  assert.equal(split.writerUser, 40);
  assert.equal(split.writerSys, 30);
  assert.ok(Math.abs(split.others - 1) < 1e-9);
  assert.equal(report.cpuByThreadUs(run({ acked: 100000 })), null, 'not measured: no row');
  const runs = fullRuns();
  runs['kefu-full-chat-ws-10000'] = { ...runs['kefu-full-chat-ws-10000'], server_threads: { kefu: [1, 2], 'kefu-writer': [4, 3] } };
  const rows = byFigure(report.targetRows(runs, report.readConfig(runDir({}))));
  const loops = rows['… of it, kefu\'s event loops (HTTP, JSON, hub, push)'];
  assert.equal(loops.nchan, '60.0');
  assert.equal(loops.met, '-');
  assert.match(rows['… of it, kefu\'s store writer (SQLite; WAL writes and fdatasync): user + system'].kefu, / \+ /);
});

test('connection time: met only when every connection was established', () => {
  const rows = byFigure(report.targetRows(fullRuns(), report.readConfig(runDir({}))));
  assert.equal(rows['10,000 connections: time s, ws'].met, 'not met'); // 0.45 > 0.32
  const sse = rows['10,000 connections: time s, sse'];
  assert.equal(sse.met, 'not met'); // faster, but 10 never connected
  assert.match(sse.target, /kefu established 9990/);
});

test('without Nchan, or with a run that failed, rows say not measured', () => {
  const runs = Object.fromEntries(Object.entries(fullRuns()).filter(([name]) => !name.startsWith('nchan')));
  const dir = runDir(runs, { extra: { 'kefu-full-chat-sse-1000.json': 'kf_load: could not connect\n' } });
  const rep = report.report(dir);
  const rows = byFigure(rep.targets);
  assert.equal(rows['p99 ms, 1,000 msg/s, ws, FULL'].met, 'not measured');
  assert.equal(rows['p99 ms, 1,000 msg/s, ws, FULL'].nchan, '-');
  assert.equal(rows['p99 ms, 1,000 msg/s, sse, FULL'].kefu, '-');
  assert.equal(rows['durable peak msg/s (ws, FULL; p99 < 10 ms, nothing lost)'].met, 'not measured');
  assert.doesNotMatch(report.markdown(rep), /undefined|NaN/);
});

test('the history table: sizes, figures judged against 2×, sizes in brackets not judged', () => {
  const h = report.parseHistory(HISTORY);
  assert.equal(h.small, '10000 conversations');
  assert.equal(h.large, '100000 conversations');
  assert.deepEqual(h.rows.map((r) => [r.name, r.compared, r.ratio]), [
    ['conversations', false, null],
    ['bytes on disk per message', true, 1.05],
    ['list all p99 ms', true, 3.5],
    ['search, rare, p99 ms', false, null],
  ]);
  assert.equal(report.parseHistory('kf_history_bench failed'), null);
});

test('the report prints the target table, every run and the history', () => {
  const md = report.markdown(report.report(runDir(fullRuns(), { extra: { 'load.txt': 'kefu-peak-ws 3.25\nnot a line\n' } })));
  assert.match(md, /^\| figure \| kefu \| Nchan \| kefu\/Nchan \| target \| met\? \|$/m);
  assert.match(md, /\| p99 ms, 1,000 msg\/s, ws, FULL \| 1\.00 \| 0\.50 \| 2\.00× \|/);
  assert.match(md, /4 of 11 targets met/);
  assert.match(md, /\| kefu-peak-ws \| 50,000 \| 26,000 \| 0\/0 \|.* \| 3\.3 \|$/m);
  assert.match(md, /\| kefu-connect-ws \|.* \| - \|$/m); // no load average noted
  assert.match(md, /\| list all p99 ms \| 10\.00 \| 35\.00 \| 3\.50 \*\*over 2×\*\* \|/);
  assert.match(md, /\| conversations \| 10000 \| 100000 \| \(10\.0\) \|/);
  assert.match(md, /1 history figures over the 2× target/);
});

test('the charts: one line per server and percentile, values on the axes, text escaped', () => {
  const dir = runDir(fullRuns(), { config: { date: '<today>' } });
  const rep = report.report(dir);
  const latency = report.latencyChart(rep.runs, rep.config);
  assert.match(latency, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg /);
  assert.match(latency, /<\/svg>\n$/);
  assert.match(latency, /&lt;today&gt;/);
  assert.doesNotMatch(latency, /NaN|undefined|Infinity/);
  // ws: kefu FULL p50, p99, p99.9 and Nchan's three over 4-5 points each, NORMAL p99 one point;
  // sse: the same over 2 points each.
  assert.equal((latency.match(/<polyline /g) || []).length, 14);
  assert.match(latency, /kefu NORMAL p99/);
  const memory = report.memoryChart(rep.runs, rep.config);
  assert.match(memory, /1,366 bytes/);
  assert.match(memory, /12,441 bytes/);
  assert.equal((memory.match(/<rect x=/g) || []).length, 4);
  const history = report.historyChart(rep.history, rep.config);
  assert.match(history, /3\.50× \(10\.00 → 35\.00\)/);
  assert.match(history, /target: ≤ 2×/);
  assert.doesNotMatch(memory + history, /NaN|undefined|Infinity/);
});

test('the command line prints the table and writes the three charts', () => {
  const dir = runDir(fullRuns());
  const charts = path.join(dir, 'charts');
  const res = spawnSync(process.execPath, [path.join(__dirname, 'bench_report.js'), '--dir', dir, '--charts', charts], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /kefu vs Nchan, 2026-12-05, 2 cores/);
  assert.deepEqual(fs.readdirSync(charts).sort(), ['bench-history.svg', 'bench-latency.svg', 'bench-memory.svg']);
  const bad = spawnSync(process.execPath, [path.join(__dirname, 'bench_report.js'), '--out', dir], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown or incomplete option --out/);
});

test('svg.js: axis steps and escaping', () => {
  assert.deepEqual(logTicks(0.3, 47), [0.2, 0.5, 1, 2, 5, 10, 20, 50]);
  assert.deepEqual(logTicks(1000, 50000), [1000, 2000, 5000, 10000, 20000, 50000]);
  assert.deepEqual(ticks(9), [0, 2, 4, 6, 8, 10]);
  assert.equal(esc('a<b & "c"'), 'a&lt;b &amp; &quot;c&quot;');
});
