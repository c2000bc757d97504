'use strict';
// http.test.js: the HTTP server as an attacker and a strict client see it, over raw sockets:
// a partial request behind an answered one still times out; a held request does not stop a
// connection from reading; unread responses do not pile up in the server; HEAD never carries a
// body; Expect: 100-continue is answered; Host is required once in HTTP/1.1, and must be a host;
// an absolute-form target names the host; a client that half-closes still gets its answers;
// 405 carries Allow, and an unknown method gets 501.

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

// Sends data, ends the client's side (a TCP half-close) and resolves with everything received
// once the server closes.
function halfClosed(port, data) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close within 5 s; got ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`));
    }, 5000);
    sock.on('connect', () => sock.end(data));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

// Sends data and resolves with the first answer's head (for answers that do not end, a 101).
function firstHead(port, data) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within 3 s; got ${text.slice(0, 300)}`));
    }, 3000);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (c) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      sock.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)[1]), head: text.slice(0, end) });
    });
    sock.on('error', reject);
  });
}

test('a client that half-closes after its requests gets every answer, in order; its message is stored once', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const auth = `Authorization: Bearer ${v.token}\r\n`;
    const N = 15;
    // Each sends a message (held until its commit) and a request behind it, then ends its side.
    const texts = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const body = JSON.stringify({ body: `half-closed ${i}` });
        return halfClosed(
          srv.port,
          `POST /api/visitor/messages HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
            `GET /api/visitor/session HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        );
      }),
    );
    texts.forEach((text, i) => {
      const stored = text.indexOf('HTTP/1.1 201 ');
      const next = text.indexOf('HTTP/1.1 200 ');
      assert.ok(stored === 0, `connection ${i}: the message's answer first: ${text.slice(0, 300)}`);
      assert.ok(next > stored, `connection ${i}: then the request behind it: ${text.slice(0, 600)}`);
      assert.match(text, new RegExp(`"half-closed ${i}"`));
      assert.equal(count(text, 'HTTP/1.1 '), 2, `connection ${i}: two answers`);
    });
    const all = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.equal(all.status, 200);
    const bodies = all.json.messages.map((m) => m.body).sort();
    assert.deepEqual(bodies, Array.from({ length: N }, (_, i) => `half-closed ${i}`).sort(), 'each message stored once');
    // An incomplete request behind a complete one is dropped at the half-close, without a 400.
    const text = await halfClosed(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo');
    assert.equal(count(text, 'HTTP/1.1 '), 1, text);
    assert.match(text, /^HTTP\/1\.1 200 /);
  });
});

test('Host must be uri-host [":" port]; an absolute-form target names the host, and the WebSocket Origin check uses it', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    for (const host of ['user@kefu.test', 'kefu.test/healthz', 'kefu.test:http', 'kefu test', 'kefu.test, other.test']) {
      const r = await raw(srv.port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`, { untilClose: true, timeout: 3000 });
      assert.equal(r.status, 400, `Host: ${host}: ${r.head}`);
      assert.match(r.body, /"bad_request"/);
      assert.match(r.body, /Host/);
    }
    // The absolute-form: served, its authority winning over Host (RFC 9112 §3.2.2, §3.3).
    for (const target of ['http://kefu.test/healthz', 'https://kefu.test/healthz?x=1', 'HTTP://other.test:8080/healthz']) {
      const r = await raw(srv.port, `GET ${target} HTTP/1.1\r\nHost: kefu.test\r\n\r\n`);
      assert.equal(r.status, 200, `${target}: ${r.head}`);
      assert.match(r.body, /"ok"/);
    }
    const userinfo = await raw(srv.port, 'GET http://u:p@kefu.test/healthz HTTP/1.1\r\nHost: kefu.test\r\n\r\n', { untilClose: true, timeout: 3000 });
    assert.equal(userinfo.status, 400, userinfo.head);
    const handshake = (target, host, origin, { version = '1.1', upgrade = 'websocket' } = {}) =>
      firstHead(
        srv.port,
        `GET ${target} HTTP/${version}\r\nHost: ${host}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: ${upgrade}\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${v.token}\r\nOrigin: ${origin}\r\n\r\n`,
      );
    assert.equal((await handshake('/push/ws?after=0', 'kefu.test', 'http://kefu.test')).status, 101, 'the Origin of the Host');
    assert.equal((await handshake('http://kefu.test/push/ws?after=0', 'other.test', 'http://kefu.test')).status, 101, 'the Origin of the target');
    assert.equal((await handshake('http://other.test/push/ws?after=0', 'kefu.test', 'http://kefu.test')).status, 403, 'Host does not count beside an absolute-form target');
    assert.equal((await handshake('/push/ws?after=0', 'kefu.test', 'http://kefu.test', { upgrade: 'websocket, h2c' })).status, 101, 'Upgrade is a list');
    assert.equal((await handshake('/push/ws?after=0', 'kefu.test', 'http://kefu.test', { version: '1.0' })).status, 426, 'HTTP/1.0 Upgrade is ignored');
  });
});

test('405 says what the resource allows; a method the server does not know gets 501', async (t) => {
  await scenario(t, async (env) => {
    const srv = await env.server();
    for (const [request, allow] of [
      ['DELETE /healthz', 'GET, HEAD'],
      ['PUT /api/visitor/messages', 'POST, GET, HEAD'],
      ['OPTIONS /api/agent/login', 'POST'],
      ['POST /static/kefu.css', 'GET, HEAD'],
    ]) {
      const r = await raw(srv.port, `${request} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(r.status, 405, `${request}: ${r.head}`);
      assert.match(r.head, new RegExp(`\r\nAllow: ${allow}\r\n`), `${request}: ${r.head}`);
    }
    for (const request of ['FOO /healthz', 'get /healthz', 'FOO /nowhere', 'FOO /static/kefu.css']) {
      const r = await raw(srv.port, `${request} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(r.status, 501, `${request}: ${r.head}`);
      assert.match(r.body, /"method_not_implemented"/);
      assert.doesNotMatch(r.head, /Connection: close/i, 'the connection goes on');
    }
  });
});
