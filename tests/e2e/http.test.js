'use strict';
// http.test.js: the HTTP server as an attacker and a strict client see it, over raw sockets:
// a partial request behind an answered one still times out; a held request does not stop a
// connection from reading; unread responses do not pile up in the server; HEAD never carries a
// body; Expect: 100-continue is answered; Host is required once in HTTP/1.1.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { scenario, newVisitor, raw, eventually, sleep } = require('./harness');

// A raw connection that keeps what it received, and says when it closed.
function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const conn = { sock, chunks: [], bytes: 0, closed: false, text: () => Buffer.concat(conn.chunks).toString('latin1') };
    sock.on('data', (c) => {
      conn.chunks.push(c);
      conn.bytes += c.length;
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      conn.closed = true;
    });
    sock.on('connect', () => resolve(conn));
    sock.once('error', reject);
  });
}

function count(text, needle) {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) n++;
  return n;
}

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

const CSS = 'GET /static/kefu.css HTTP/1.1\r\nHost: x\r\n\r\n';

test('a partial request behind an answered one still gets its 408', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server({ args: ['--header-timeout', '1'] });
    const conn = await connect(srv.port);
    env.defer(() => conn.sock.destroy());
    const t0 = Date.now();
    conn.sock.write('GET /static/kefu.css HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nX-Slow: ');
    await eventually(() => conn.closed, { timeout: 6000, what: 'the server closes the slow request' });
    const text = conn.text();
    assert.equal(count(text, 'HTTP/1.1 200 OK'), 1, 'the first request is answered');
    assert.match(text, /HTTP\/1\.1 408 /, 'the partial one times out');
    assert.ok(Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms (timeout 1 s, sweep 1 s)`);
  });
});

test('pipelined requests behind a held long poll are all answered, however many', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    const { token } = await newVisitor(srv);
    const conn = await connect(srv.port);
    env.defer(() => conn.sock.destroy());
    // The long poll is held for a second; behind it, far more than the server buffers for a held
    // request (its head and body limits and a read chunk, about 150 KB).
    const N = 400;
    const pad = 'x'.repeat(900);
    let data = `GET /push/longpoll?after=0&timeout=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    for (let i = 0; i < N; i++) data += `GET /static/favicon.svg HTTP/1.1\r\nHost: x\r\nX-Pad: ${pad}\r\n\r\n`;
    conn.sock.write(data);
    await eventually(() => count(conn.text(), 'HTTP/1.1 200 OK') === N + 1, {
      timeout: 15000,
      what: `${N + 1} answers (got ${count(conn.text(), 'HTTP/1.1 200 OK')})`,
    });
    assert.equal(conn.closed, false);
  });
});

test('a client that pipelines without reading does not make the server queue its answers', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    // Warm up (the static table, the allocator's arenas) before the baseline.
    for (let i = 0; i < 3; i++) assert.equal((await raw(srv.port, CSS)).status, 200);
    const rss0 = vmRssKiB(srv.proc.pid);
    const N = 4000; // 4000 x 23 KB = 92 MB of answers for 168 KB of requests
    const conn = await connect(srv.port);
    env.defer(() => conn.sock.destroy());
    conn.sock.pause(); // read nothing
    conn.sock.write(CSS.repeat(N));
    await sleep(3000);
    const rss1 = vmRssKiB(srv.proc.pid);
    t.diagnostic(`VmRSS ${rss0} -> ${rss1} KiB with ${N} unread answers`);
    assert.ok(rss1 - rss0 < 16 * 1024, `server VmRSS grew ${(rss1 - rss0) / 1024} MiB (< 16 MiB)`);
    // Paused, not dropped: once the client reads, every answer comes.
    conn.sock.resume();
    await eventually(() => count(conn.text(), 'HTTP/1.1 200 OK') === N, {
      timeout: 30000,
      what: `${N} answers (got ${count(conn.text(), 'HTTP/1.1 200 OK')})`,
    });
  });
});

for (const path of ['/push/sse', '/push/iframe']) {
  test(`HEAD ${path} sends the head alone, and the connection goes on`, async (t) => {
    await scenario(t, async (env) => {
      const srv = await env.server();
      const { token } = await newVisitor(srv);
      const conn = await connect(srv.port);
      env.defer(() => conn.sock.destroy());
      conn.sock.write(`HEAD ${path}?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n` + 'GET /static/favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(() => conn.text().includes('</svg>'), { timeout: 5000, what: 'the answer to the request behind the HEAD' });
      const text = conn.text();
      const first = text.indexOf('\r\n\r\n');
      assert.match(text.slice(0, first), /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(text.slice(first + 4).startsWith('HTTP/1.1 200 OK\r\n'), `nothing between the HEAD's head and the next answer: ${JSON.stringify(text.slice(first + 4, first + 80))}`);
    });
  });
}

test('Expect: 100-continue gets its 100 before the body, and unknown expectations a 417', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    const conn = await connect(srv.port);
    env.defer(() => conn.sock.destroy());
    conn.sock.write('POST /api/visitor/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n');
    await eventually(() => conn.text().includes('\r\n\r\n'), { timeout: 3000, what: 'an interim answer' });
    assert.equal(conn.text(), 'HTTP/1.1 100 Continue\r\n\r\n');
    conn.sock.write('{}');
    await eventually(() => /HTTP\/1\.1 201 /.test(conn.text()), { timeout: 3000, what: 'the final answer' });
    // The body already there: no 100.
    const whole = await raw(srv.port, 'POST /api/visitor/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}');
    assert.equal(whole.status, 201, whole.text);
    // A body too large for the server: the final status at once, no 100.
    const big = await raw(srv.port, 'POST /api/visitor/session HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n');
    assert.equal(big.status, 413, big.text);
    const odd = await raw(srv.port, 'GET /static/favicon.svg HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\n\r\n');
    assert.equal(odd.status, 417, odd.text);
    assert.match(odd.body, /"expectation_failed"/);
  });
});

test('HTTP/1.1 needs exactly one Host; HTTP/1.0 may leave it out', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    const none = await raw(srv.port, 'GET /static/favicon.svg HTTP/1.1\r\n\r\n');
    assert.equal(none.status, 400, none.text);
    assert.match(none.body, /"bad_request"/);
    const two = await raw(srv.port, 'GET /static/favicon.svg HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.equal(two.status, 400, two.text);
    const old = await raw(srv.port, 'GET /static/favicon.svg HTTP/1.0\r\n\r\n', { untilClose: true });
    assert.equal(old.status, 200, old.text);
    const one = await raw(srv.port, 'GET /static/favicon.svg HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(one.status, 200, one.text);
  });
});
