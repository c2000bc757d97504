'use strict';
// soak_report.test.js: the soak's verdict on made-up runs (ctest runs it: `node --test`): what
// counts as a message doubled, and the flat-at-the-end checks.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const script = path.join(__dirname, 'soak_report.js');
const COLUMNS = 't_s,rss_kb,fds,cpu_pct,lat_p50_ms,lat_p99_ms,poll_p99_ms,deliveries,sent,acked,failed,received,duplicates,reconnects,live,self_rss_kb,self_cpu_pct,load1';

// Twelve samples 5 s apart; rss(i) gives each one's resident memory.
function csv(rss = () => 24000) {
  const rows = [];
  for (let i = 0; i < 12; i++) rows.push([i * 5, rss(i), 1044, 2, 1.1, 2.2, 1900, i * 400, i * 90, i * 90, 0, i * 400, 0, i * 450, 1004, 3600, 1.4, 0.6].join(','));
  return `${COLUMNS}\n${rows.join('\n')}\n`;
}

function summary(over = {}) {
  return { tool: 'kf_soak', complete: true, visitors: 1000, agents: 4, messages: 2400, acked: 2400, send_failed: 0, unanswered: 0, received: 12000, lost: 0, duplicates: 0, again: 0, misdelivered: 0, unknown: 0, unacked_delivered: 0, listeners: 1004, never_established: 0, reconnects: 11983, ...over };
}

// Runs the report; its exit status and what it printed.
function judge(sum, extra = [], rows = csv()) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-soak-report-'));
  try {
    fs.writeFileSync(path.join(dir, 'soak.csv'), rows);
    fs.writeFileSync(path.join(dir, 'summary.json'), `${JSON.stringify(sum)}\n`);
    const r = spawnSync(process.execPath, [script, '--csv', path.join(dir, 'soak.csv'), '--summary', path.join(dir, 'summary.json'), ...extra], { encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a run with every message once passes', () => {
  const r = judge(summary());
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /soak: PASS/);
});

test('a message a listener got twice fails the run', () => {
  const r = judge(summary({ duplicates: 1 }));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL duplicates: 1/);
});

test('a message again below the cursor fails unless the server gave up waiting for a late one', () => {
  const without = judge(summary({ again: 2 }));
  assert.equal(without.status, 1, without.out);
  assert.match(without.out, /FAIL received again below the request's cursor: 2 \(the server gave up waiting for a late message 0 times\)/);
  const after = judge(summary({ again: 2 }), ['--late', '1']);
  assert.equal(after.status, 0, after.out);
  assert.match(after.out, /ok {3}received again below the request's cursor: 2/);
});

test('a summary from before the count of messages again reads as none', () => {
  const old = summary();
  delete old.again;
  assert.equal(judge(old).status, 0);
});

test('memory that grows in the last third fails the run', () => {
  const r = judge(summary(), [], csv((i) => (i < 8 ? 24000 : 30000)));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /FAIL resident memory/);
});
