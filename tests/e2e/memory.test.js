'use strict';
// memory.test.js: what a peer can make the server hold is bounded per connection, whatever it
// does. Many connections each drive one way of making a server keep bytes — pipelining without
// reading the answers, a held long poll with requests piled behind it, a WebSocket message left
// unfinished in huge fragments, an event stream that is never read while events flow — and the
// server's resident memory may grow by at most BOUND_KIB per connection (docs/SECURITY.md).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { scenario, newVisitor, RAISED_LIMITS, eventually, sleep } = require('./harness');
const { RawWs, OP, frame } = require('./wsraw');

// The bound, averaged over the connections below: a stream's reader may leave max_output (1 MiB)
// unread before it is dropped; every other way holds at most 64 KiB of answers, a request head
// and body and a read (about 200 KiB). The 3,000 messages of the last phase, ASan's 8 MiB
// quarantine and the allocator's slack count against it too. Measured: about 500 KiB.
const BOUND_KIB = 1024;

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

test('memory is bounded per connection whatever the peer does', { timeout: 240000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const pid = srv.proc.pid;
    const streamer = await newVisitor(srv);
    const waiter = await newVisitor(srv);
    const socks = [];
    env.defer(() => socks.forEach((s) => s.destroy()));
    // Warm up what every later request touches (the static table, the store, the hub).
    await srv.api('POST', '/api/visitor/messages', { token: streamer.token, body: { body: 'hello' } });
    await srv.api('GET', '/static/kefu.css');
    const rss0 = vmRssKiB(pid);
    const figures = [];
    let conns = 0;
    const phase = (name, count) => {
      conns += count;
      figures.push(`${name}: ${vmRssKiB(pid) - rss0} KiB over ${conns} connections`);
    };

    // 1. Pipelining without reading: 1,000 requests for a 23 KB file on each connection.
    const PIPELINERS = 40;
    for (let i = 0; i < PIPELINERS; i++) {
      const sock = await connect(srv.port);
      socks.push(sock);
      sock.on('error', () => {});
      sock.pause();
      sock.write('GET /static/kefu.css HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000));
    }
    await sleep(2000);
    phase('pipelining without reading', PIPELINERS);

    // 2. A held long poll with 200 KB of requests piled behind it.
    const HOLDERS = 40;
    const behind = `GET /static/favicon.svg HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(900)}\r\n\r\n`.repeat(200);
    for (let i = 0; i < HOLDERS; i++) {
      const sock = await connect(srv.port);
      socks.push(sock);
      sock.on('error', () => {});
      sock.write(`GET /push/longpoll?after=0&timeout=55 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${waiter.token}\r\n\r\n${behind}`);
    }
    await sleep(2000);
    phase('held requests with pipelining behind', HOLDERS);

    // 3. WebSocket messages left unfinished: 60 KB of fragments (the cap is 64 KiB), then a frame
    //    announcing 5,000 bytes of which 2,000 come.
    const SOCKETS = 40;
    for (let i = 0; i < SOCKETS; i++) {
      const ws = await RawWs.open(srv.port, { headers: { Authorization: `Bearer ${waiter.token}` } });
      socks.push(ws.sock);
      await ws.send({ fin: false, opcode: OP.TEXT, payload: Buffer.alloc(30000, 'a') });
      await ws.send({ fin: false, opcode: OP.CONT, payload: Buffer.alloc(30000, 'b') });
      const partial = frame({ fin: false, opcode: OP.CONT, payload: Buffer.alloc(5000, 'c') });
      await ws.write(partial.subarray(0, partial.length - 3000));
    }
    await sleep(1000);
    phase('unfinished WebSocket messages', SOCKETS);

    // 4. Event streams that are never read while 3,000 events of 3 KB flow: each is dropped past
    //    1 MiB of unread output, after the kernel's buffers fill.
    const STREAMS = 20;
    const ticket = async () => (await srv.api('POST', '/api/visitor/push-ticket', { token: streamer.token })).json.ticket;
    for (let i = 0; i < STREAMS; i++) {
      const sock = await connect(srv.port);
      socks.push(sock);
      sock.on('error', () => {});
      sock.write(`GET /push/sse?after=0&ticket=${encodeURIComponent(await ticket())} HTTP/1.1\r\nHost: x\r\n\r\n`);
      sock.once('data', () => sock.pause());
    }
    const sender = await connect(srv.port);
    socks.push(sender);
    let answered = 0;
    sender.on('data', (c) => {
      answered += (c.toString('latin1').match(/HTTP\/1\.1 201 /g) || []).length;
    });
    const body = JSON.stringify({ body: 'x'.repeat(3000) });
    const post = `POST /api/visitor/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${streamer.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const MESSAGES = 3000;
    for (let i = 0; i < MESSAGES; i += 100) sender.write(post.repeat(100));
    await eventually(() => answered >= MESSAGES, { timeout: 120000, what: `${MESSAGES} messages stored (${answered})` });
    await sleep(1000);
    phase('unread event streams', STREAMS);

    const growth = vmRssKiB(pid) - rss0;
    const perConnection = growth / conns;
    t.diagnostic(figures.join('; '));
    t.diagnostic(`VmRSS grew ${growth} KiB over ${conns} connections: ${perConnection.toFixed(0)} KiB each (bound ${BOUND_KIB} KiB)`);
    assert.ok(perConnection < BOUND_KIB, `${perConnection.toFixed(0)} KiB per connection (< ${BOUND_KIB} KiB): ${figures.join('; ')}`);
    // Still serving.
    const r = await srv.api('GET', '/static/favicon.svg');
    assert.equal(r.status, 200);
  }));
