'use strict';
// ops.test.js: what operators' tools see (docs/API.md, "Operations"): /readyz ready while
// serving and 503 `shutting_down` through --drain-delay after SIGTERM, while the server still
// serves; /metrics scraped with curl in the Prometheus text format (every family with # HELP and
// # TYPE, histograms with cumulative _bucket{le=...} up to +Inf, _sum and _count) whose figures
// move as a message is stored and delivered over SSE and a request is refused; and who may read
// the metrics: allow-listed addresses, or anyone with the bearer token, 403 for the rest.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { scenario, newVisitor, visitorSend, agentLogin, eventually, curl, CurlStream, assertError, DEFAULT_AGENTS } = require('./harness');

const ANA = DEFAULT_AGENTS[0];

test('ops: /readyz answers 503 shutting_down through --drain-delay after SIGTERM while the server still serves, then it stops', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--drain-delay', '2'] });
    const ready = await srv.api('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.json, { status: 'ready' });
    const v = await newVisitor(srv);
    const stopped = srv.stop();
    const notReady = await eventually(async () => {
      const r = await srv.api('GET', '/readyz');
      return r.status === 503 && r;
    }, { timeout: 1500, interval: 50, what: '/readyz 503 after SIGTERM' });
    assert.deepEqual(notReady.json, { status: 'not_ready', reason: 'shutting_down', writable: true, bus_connected: true, shutting_down: true });
    assert.equal(notReady.headers['retry-after'], '5');
    // Alive, and serving everyone already here until the delay is over.
    assert.equal((await srv.api('GET', '/healthz')).status, 200);
    await visitorSend(srv, v.token, 'sent while draining');
    await stopped;
    assert.ok(srv.lastStopMs >= 1800, `stopped after the delay, not before: ${srv.lastStopMs} ms`);
    assert.match(srv.log, /received SIGTERM; not ready, shutting down in 2 s/);
  }),
);

// The exposition's text as families: name -> { help, type, samples: [{ name, labels, value }] }.
// Fails on a line that is none of # HELP, # TYPE or a sample, or a sample before its family's
// # HELP and # TYPE.
function parseExposition(text) {
  assert.ok(text.endsWith('\n'), 'the text ends with a line end');
  const families = new Map();
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line))) {
      assert.ok(!families.has(m[1]), `one # HELP for ${m[1]}`);
      families.set(m[1], { help: m[2], type: null, samples: [] });
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line))) {
      assert.ok(families.has(m[1]), `# HELP before # TYPE for ${m[1]}`);
      families.get(m[1]).type = m[2];
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$/.exec(line))) {
      const [, name, labelText, valueText] = m;
      const family = families.get(name) || families.get(name.replace(/_(bucket|sum|count)$/, ''));
      assert.ok(family && family.type, `a # HELP and # TYPE before ${line}`);
      const labels = Object.fromEntries([...(labelText || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
      const value = valueText === '+Inf' ? Infinity : Number(valueText);
      assert.ok(!Number.isNaN(value), `a number in ${line}`);
      family.samples.push({ name, labels, value });
    } else {
      assert.fail(`not a line of the text format: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, family] of families) {
    assert.ok(family.type, `${name} has a # TYPE`);
    if (family.type !== 'histogram') continue;
    const buckets = family.samples.filter((s) => s.name === `${name}_bucket`);
    assert.ok(buckets.length >= 2, `${name} has buckets`);
    assert.equal(buckets[buckets.length - 1].labels.le, '+Inf', `${name}'s last bucket is +Inf`);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(Number(buckets[i].labels.le) > Number(buckets[i - 1].labels.le) || buckets[i].labels.le === '+Inf', `${name}: bounds rise`);
      assert.ok(buckets[i].value >= buckets[i - 1].value, `${name}: buckets are cumulative`);
    }
    const count = family.samples.find((s) => s.name === `${name}_count`);
    const sum = family.samples.find((s) => s.name === `${name}_sum`);
    assert.ok(count && sum, `${name} has _count and _sum`);
    assert.equal(count.value, buckets[buckets.length - 1].value, `${name}: _count is the +Inf bucket`);
  }
  return families;
}

// The value of one sample (name and labels), or undefined.
function value(families, name, labels = {}) {
  const family = families.get(name) || families.get(name.replace(/_(bucket|sum|count)$/, ''));
  if (!family) return undefined;
  const s = family.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s && s.value;
}

async function scrape(srv) {
  const r = await curl(['-sS', '-i', `${srv.base}/metrics`]);
  const [head, body] = r.stdout.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200 /, r.stdout.slice(0, 300));
  assert.match(head, /\r\nContent-Type: text\/plain; version=0\.0\.4; charset=utf-8\r\n/i);
  return parseExposition(body);
}

test('ops: /metrics, scraped with curl, is the Prometheus text format, and its figures move with a message and a refusal', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const sse = new CurlStream(['-sN', '--max-time', '30', '-H', `Cookie: ${ana.cookie}`, `${srv.base}/push/sse?after=0`]);
    env.defer(() => sse.close());
    await sse.until((out) => out.includes('heartbeat'), 10000, 'the stream opens');

    const before = await scrape(srv);
    for (const name of ['kefu_ready', 'kefu_store_writable', 'kefu_push_connections', 'kefu_messages_stored_total',
      'kefu_push_delivery_seconds', 'kefu_store_write_seconds', 'kefu_sqlite_wal_bytes', 'kefu_sqlite_checkpoints_total',
      'kefu_http_rejected_total']) {
      assert.ok(before.has(name), `${name} is there`);
    }
    assert.equal(before.get('kefu_push_delivery_seconds').type, 'histogram');
    assert.equal(before.get('kefu_messages_stored_total').type, 'counter');
    assert.equal(value(before, 'kefu_ready'), 1);
    assert.equal(value(before, 'kefu_push_connections', { transport: 'sse' }), 1);
    assert.equal(value(before, 'kefu_push_connections', { transport: 'websocket' }), 0);
    assert.ok(value(before, 'kefu_sqlite_wal_bytes') > 0, 'the WAL holds the session just made');

    const m = await visitorSend(srv, v.token, 'count me');
    await sse.until((out) => out.includes('count me'), 10000, 'the agent\'s stream delivers it');
    assertError(await srv.api('GET', '/api/no-such-thing'), 404, 'not_found', 'an unknown path');

    const after = await scrape(srv);
    assert.equal(value(after, 'kefu_messages_stored_total'), value(before, 'kefu_messages_stored_total') + 1);
    const delivered = value(after, 'kefu_push_delivery_seconds_count') - value(before, 'kefu_push_delivery_seconds_count');
    assert.ok(delivered >= 1, `the SSE delivery is measured (${delivered})`);
    assert.ok(value(after, 'kefu_push_delivery_seconds_bucket', { le: '10' }) > value(before, 'kefu_push_delivery_seconds_bucket', { le: '10' }),
      'a delivery on loopback takes under 10 s');
    assert.ok(value(after, 'kefu_store_write_seconds_count') > value(before, 'kefu_store_write_seconds_count'), 'the send\'s batch is measured');
    assert.ok(value(after, 'kefu_store_write_seconds_sum') > value(before, 'kefu_store_write_seconds_sum'));
    const rejected = (f) => value(f, 'kefu_http_rejected_total', { status: '404', code: 'not_found' }) || 0;
    assert.equal(rejected(after), rejected(before) + 1);
    assert.ok(m.id > 0);
  }),
);

// GET /metrics from a given local address (127.0.0.x), with headers; resolves { status, body }.
function metricsFrom(srv, localAddress, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/metrics', localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

test('ops: /metrics is for allow-listed addresses or the bearer token; anyone else gets 403', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const token = 'scrape-token-0123456789';
    const srv = await env.server({ args: ['--metrics-allow', '127.0.0.2', '--metrics-allow', '10.0.0.0/8', '--metrics-token', token] });
    assert.equal((await metricsFrom(srv, '127.0.0.2')).status, 200, 'an allow-listed address');
    const refused = await metricsFrom(srv, '127.0.0.1');
    assert.equal(refused.status, 403, 'loopback is no longer allowed once the list is given');
    assert.equal(JSON.parse(refused.body).error.code, 'forbidden');
    assert.equal((await metricsFrom(srv, '127.0.0.3', { Authorization: `Bearer ${token}` })).status, 200, 'the token, from anywhere');
    assert.equal((await metricsFrom(srv, '127.0.0.3', { Authorization: `Bearer ${token}x` })).status, 403, 'a wrong token');
    assert.equal((await metricsFrom(srv, '127.0.0.3', { Authorization: `Basic ${token}` })).status, 403, 'another scheme');
    // The refusals are counted too (read with the token).
    const ok = await metricsFrom(srv, '127.0.0.2');
    const families = parseExposition(ok.body);
    assert.ok(value(families, 'kefu_http_rejected_total', { status: '403', code: 'forbidden' }) >= 3);
  }),
);

test('ops: --log-format json writes one JSON object a line, and a request\'s lines and answer carry its X-Request-Id', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--log-format', 'json', '--metrics-allow', '10.0.0.0/8'] });
    // A sane id sent is the one used: in the answer and in the log line of the refusal.
    const refused = await metricsFrom(srv, '127.0.0.1', { 'X-Request-Id': 'e2e-req-1' });
    assert.equal(refused.status, 403);
    const r = await srv.api('GET', '/metrics', { headers: { 'X-Request-Id': 'e2e-req-2' } });
    assert.equal(r.headers['x-request-id'], 'e2e-req-2');
    // None sent, or one that is not sane: one made here, 16 hex digits, different each time.
    const made = [];
    for (const headers of [{}, { 'X-Request-Id': 'has spaces and <angles>' }, { 'X-Request-Id': 'x'.repeat(65) }]) {
      const a = await srv.api('GET', '/healthz', { headers });
      assert.match(a.headers['x-request-id'], /^[0-9a-f]{16}$/, JSON.stringify(headers));
      made.push(a.headers['x-request-id']);
    }
    assert.equal(new Set(made).size, 3);
    // An error the parser answers has one too.
    const bad = await new Promise((resolve, reject) => {
      const sock = require('node:net').connect(srv.port, '127.0.0.1', () => sock.end('GARBAGE\r\n\r\n'));
      let data = '';
      sock.on('data', (c) => (data += c));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    assert.match(bad, /^HTTP\/1\.1 400 [^]*\r\nX-Request-Id: [0-9a-f]{16}\r\n/);

    const lines = await eventually(() => {
      const all = srv.log.split('\n').filter((l) => l.startsWith('{'));
      return all.some((l) => l.includes('e2e-req-1')) && all;
    }, { what: 'the refusal\'s log line' });
    const records = lines.map((l) => JSON.parse(l));
    for (const rec of records) {
      assert.equal(typeof rec.time, 'string');
      assert.match(rec.level, /^(debug|info|warn|error)$/);
      assert.equal(typeof rec.msg, 'string');
    }
    const refusal = records.find((rec) => rec.request_id === 'e2e-req-1');
    assert.match(refusal.msg, /GET \/metrics from 127\.0\.0\.1: metrics from an address not allowed/);
    assert.ok(records.some((rec) => /^agent console: /.test(rec.msg)), 'the start-up words are records too');
    // Every line kefu wrote on stderr is JSON (the harness's own banner aside).
    const own = srv.log.split('\n').filter((l) => l !== '' && !l.startsWith('=====') && !l.startsWith('{'));
    assert.deepEqual(own, [], 'no plain lines');
  }),
);
