'use strict';
// abuse.test.js: the abuse limits of docs/SECURITY.md, each set low by its flag and met the way a
// misbehaving client would meet it, with the check that everyone else is unaffected and that the
// counts recover once the abuser lets go:
//  - connections per client address (closed at accept), over raw sockets from 127.0.0.x;
//  - push connections per visitor and per agent (429 JSON, before a WebSocket upgrade), over SSE,
//    long poll, iframe and WebSocket;
//  - requests and messages per visitor per minute (429, Retry-After, JSON error; over WebSocket
//    an error reply with retry_after); new visitor sessions per address;
//  - slowloris: 5,000 connections from 20 addresses trickling a header byte a second (and some
//    sending nothing) are cut off within the header timeout while a visitor and an agent chat at
//    normal latency;
//  - the browser client (web/kefu.js) meeting them: after a 429 on a push request it waits at
//    least Retry-After, and a 429 never demotes its transport.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const WebSocket = require('ws');
const { scenario, newVisitor, visitorSend, agentLogin, agentSend, assertError, eventually, sleep, closeBrowser, DEFAULT_AGENTS } = require('./harness');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];

// Opens a connection (from localAddress when given) and sends request. Resolves once the response
// head — and the body, when it has a Content-Length — is in, or the server closed or reset the
// connection: {sock, status, head, body, closed}. The socket stays open (destroy it); a stream's
// later bytes keep coming into .data.
function exchange(port, request, { localAddress, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    const res = { sock, status: null, head: '', body: '', closed: false, data: '' };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(res);
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      sock.destroy();
      reject(new Error(`no answer within ${timeout} ms to ${request.split('\r\n')[0]}`));
    }, timeout);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (chunk) => {
      res.data += chunk.toString('latin1');
      const idx = res.data.indexOf('\r\n\r\n');
      if (idx < 0) return;
      res.head = res.data.slice(0, idx);
      res.body = res.data.slice(idx + 4);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(res.head);
      res.status = m ? Number(m[1]) : null;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(res.head);
      if (!cl || Buffer.byteLength(res.body, 'latin1') >= Number(cl[1])) finish();
    });
    sock.on('error', () => {
      res.closed = true;
      finish();
    });
    sock.on('close', () => {
      res.closed = true;
      finish();
    });
  });
}

const get = (path, headers = {}) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

const bearer = (token) => ({ Authorization: `Bearer ${token}` });

// Parses the JSON body of an exchange and checks it is an API error with code.
function assertJsonError(res, status, code, what) {
  assert.equal(res.status, status, `${what}: status, got ${res.head.split('\r\n')[0]}`);
  assert.match(res.head, /\r\ncontent-type: application\/json/i, `${what}: JSON`);
  const json = JSON.parse(res.body);
  assert.equal(json.error.code, code, `${what}: error code in ${res.body}`);
  assert.equal(typeof json.error.message, 'string', `${what}: error message in ${res.body}`);
  return json;
}

// A long poll either answers at once (refused, or events) or is held: resolves the exchange, or
// {held: true, sock} when nothing came within ms.
async function longpoll(port, path, headers, ms = 400) {
  const sock = net.connect({ port, host: '127.0.0.1' });
  let data = '';
  sock.on('data', (c) => (data += c.toString('latin1')));
  sock.on('error', () => {});
  sock.on('connect', () => sock.write(get(path, headers)));
  await sleep(ms);
  if (data === '') return { held: true, sock, text: () => data };
  sock.destroy();
  const idx = data.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
  return { held: false, status: m ? Number(m[1]) : null, head: data.slice(0, idx), body: data.slice(idx + 4) };
}

// Opens a WebSocket; resolves {ws} when open, or {status, body} when the handshake is refused.
function openWs(port, path, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, handshakeTimeout: 5000 });
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    ws.on('error', reject);
  });
}

// Sends a WebSocket action and resolves the reply with the same ref.
function wsAction(ws, action, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(action)}`)), timeout);
    const onMessage = (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.ref !== action.ref || (msg.type !== 'ack' && msg.type !== 'error')) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(msg);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify(action));
  });
}

const closeWs = (ws) =>
  new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.on('close', resolve);
    ws.close(1000);
  });

// ---------------------------------------------------------------------------------------------

test('connections per address: past the limit a connection is closed at accept; other addresses are served; the count recovers after a close', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--max-connections-per-address', '5'] });
    const healthz = get('/healthz');
    const held = [];
    env.defer(() => held.forEach((h) => h.sock.destroy()));
    for (let i = 0; i < 5; i++) {
      const r = await exchange(srv.port, healthz);
      assert.equal(r.status, 200, `connection ${i + 1} of 5 is served`);
      held.push(r); // kept open (keep-alive)
    }
    const t0 = Date.now();
    const sixth = await exchange(srv.port, healthz);
    assert.ok(sixth.closed, 'the sixth connection from 127.0.0.1 is closed');
    assert.equal(sixth.status, null, `closed without an answer, got ${sixth.data.slice(0, 100)}`);
    assert.ok(Date.now() - t0 < 2000, 'at once, not after a timeout');

    const other = await exchange(srv.port, healthz, { localAddress: '127.0.0.2' });
    assert.equal(other.status, 200, '127.0.0.2 is served meanwhile');
    other.sock.destroy();
    for (const h of held) assert.ok(!h.closed, 'the five held connections stay open');

    held.shift().sock.destroy();
    const again = await eventually(async () => {
      const r = await exchange(srv.port, healthz);
      if (r.status === 200) return r;
      r.sock.destroy();
      return null;
    }, { timeout: 5000, what: 'a connection from 127.0.0.1 after one of five closed' });
    held.push(again);
    held.splice(0).forEach((h) => h.sock.destroy());
    // All five slots come back.
    await eventually(async () => {
      const rs = [];
      for (let i = 0; i < 5; i++) rs.push(await exchange(srv.port, healthz));
      rs.forEach((r) => r.sock.destroy());
      return rs.every((r) => r.status === 200);
    }, { timeout: 5000, what: 'five connections from 127.0.0.1 after all closed' });
  }));

test('push connections per visitor and per agent: 429 JSON past the limit on every held transport (WebSocket before the upgrade); polls, other visitors unaffected; counts recover after close, abort and answer', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--max-push-per-visitor', '2', '--max-push-per-agent', '3'] });
    const port = srv.port;
    const open = [];
    env.defer(() => open.forEach((c) => (c.sock ? c.sock.destroy() : c.terminate())));
    const v = await newVisitor(srv, 'Vera');
    const w = await newVisitor(srv, 'Walt');
    const first = await visitorSend(srv, v.token, 'hello');
    const vh = bearer(v.token);

    const sse1 = await exchange(port, get('/push/sse?after=0', vh));
    assert.equal(sse1.status, 200, 'first SSE stream');
    open.push(sse1);
    const ws1 = await openWs(port, '/push/ws?after=0', vh);
    assert.ok(ws1.ws, `a WebSocket as the second, got ${ws1.status} ${ws1.body}`);
    open.push(ws1.ws);

    // The third of any held kind is refused with a JSON error.
    const sse3 = await exchange(port, get('/push/sse?after=0', vh));
    assertJsonError(sse3, 429, 'too_many_connections', 'third SSE');
    sse3.sock.destroy();
    const iframe3 = await exchange(port, get(`/push/iframe?after=0`, vh));
    assertJsonError(iframe3, 429, 'too_many_connections', 'third (iframe)');
    iframe3.sock.destroy();
    const lp3 = await longpoll(port, `/push/longpoll?after=${first.id}`, vh);
    assert.ok(!lp3.held, 'a third long poll is not held');
    assert.equal(lp3.status, 429, 'third long poll');
    const wsUpgrade = get('/push/ws?after=0', { ...vh, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' });
    const ws3 = await exchange(port, wsUpgrade);
    assertJsonError(ws3, 429, 'too_many_connections', 'third (WebSocket)');
    assert.doesNotMatch(ws3.head, /sec-websocket-accept/i, 'refused before the upgrade');
    ws3.sock.destroy();
    // A short poll is answered at once and not counted; another visitor is not affected.
    const poll = await exchange(port, get('/push/poll?after=0', vh));
    assert.equal(poll.status, 200, 'short poll');
    poll.sock.destroy();
    const wSse = await exchange(port, get('/push/sse?after=0', bearer(w.token)));
    assert.equal(wSse.status, 200, 'another visitor opens a stream');
    wSse.sock.destroy();

    // A WebSocket closed by its client frees its slot: a long poll takes it and is held.
    await closeWs(ws1.ws);
    const lp = await eventually(async () => {
      const r = await longpoll(port, `/push/longpoll?after=${first.id}&timeout=30`, vh);
      return r.held ? r : null;
    }, { timeout: 5000, what: 'a held long poll after the WebSocket closed' });
    open.push(lp);
    const sse4 = await exchange(port, get('/push/sse?after=0', vh));
    assert.equal(sse4.status, 429, 'still two held (SSE + long poll)');
    sse4.sock.destroy();
    // The long poll answered by an event frees its slot.
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    await agentSend(srv, ag, first.conversation_id, 'an answer');
    await eventually(() => /^HTTP\/1\.1 200/.test(lp.text()) && lp.text().includes('an answer'), { timeout: 5000, what: 'the long poll answered' });
    const sse5 = await eventually(async () => {
      const r = await exchange(port, get('/push/sse?after=0', vh));
      if (r.status === 200) return r;
      r.sock.destroy();
      return null;
    }, { timeout: 5000, what: 'an SSE stream after the long poll was answered' });
    open.push(sse5);
    // A stream whose client vanishes frees its slot too.
    sse1.sock.destroy();
    sse5.sock.destroy();
    await eventually(async () => {
      const a = await exchange(port, get('/push/sse?after=0', vh));
      const b = await exchange(port, get('/push/sse?after=0', vh));
      a.sock.destroy();
      b.sock.destroy();
      return a.status === 200 && b.status === 200;
    }, { timeout: 5000, what: 'two streams again after both were dropped' });

    // Agents: three, then 429 (the cookie is the agent's, whichever page sent it).
    const ah = { Cookie: ag.cookie };
    for (let i = 0; i < 3; i++) {
      const r = await exchange(port, get('/push/sse?after=0', ah));
      assert.equal(r.status, 200, `agent stream ${i + 1}`);
      open.push(r);
    }
    const a4 = await exchange(port, get('/push/sse?after=0', ah));
    const json = assertJsonError(a4, 429, 'too_many_connections', 'fourth agent stream');
    assert.match(json.error.message, /agent/);
    a4.sock.destroy();
    const aws = await openWs(port, '/push/ws?after=0', ah);
    assert.equal(aws.status, 429, 'fourth agent connection as a WebSocket');
    // Another agent is not affected.
    const bo = await agentLogin(srv, DEFAULT_AGENTS[1].email, DEFAULT_AGENTS[1].password);
    const boSse = await exchange(port, get('/push/sse?after=0', { Cookie: bo.cookie }));
    assert.equal(boSse.status, 200, 'another agent opens a stream');
    boSse.sock.destroy();
  }));

test('push connections opened all at once, over the loops: never more than the limit at a time, for an agent and for a visitor', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    // Each loop checked a request and counted it after serving it: two loops admitting one
    // person at the same instant, or a client opening its next stream on the other loop as soon
    // as the last one's head came, passed the limit (a fourth agent stream in CI).
    const srv = await env.server({ args: ['--loops', '2', '--max-push-per-visitor', '2', '--max-push-per-agent', '3', '--visitor-requests-per-minute', '6000', '--visitor-request-burst', '1000'] });
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv, 'Vera');
    const open = [];
    env.defer(() => open.forEach((c) => c.sock.destroy()));
    const who = [
      { headers: { Cookie: ag.cookie }, max: 3, what: 'agent' },
      { headers: bearer(v.token), max: 2, what: 'visitor' },
    ];
    for (const { headers, max, what } of who) {
      for (let round = 0; round < 25; round++) {
        const got = await Promise.all(Array.from({ length: 10 }, () => exchange(srv.port, get('/push/sse?after=0', headers))));
        open.push(...got);
        const held = got.filter((r) => r.status === 200).length;
        assert.ok(held <= max, `round ${round}: ${held} ${what} streams held at once, the limit is ${max}`);
        for (const r of got) if (r.status !== 200) assertJsonError(r, 429, 'too_many_connections', `${what}, round ${round}`);
        got.forEach((r) => r.sock.destroy());
        // Closed streams free their places: the next round starts from none held.
        await eventually(async () => {
          const probe = await exchange(srv.port, get('/push/sse?after=0', headers));
          probe.sock.destroy();
          return probe.status === 200;
        }, { timeout: 5000, what: `a ${what} stream after the round's were closed` });
        await sleep(50);
      }
    }
  }));

test('requests and messages per visitor: 429 with Retry-After and a JSON error over HTTP, an error with retry_after over WebSocket; others unaffected; allowed again after the wait', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({
      args: ['--visitor-messages-per-minute', '30', '--visitor-message-burst', '3', '--visitor-requests-per-minute', '20', '--visitor-request-burst', '10'],
    });
    // Messages over HTTP: a burst of 3, then one every 2 s.
    const v = await newVisitor(srv, 'Vera');
    const w = await newVisitor(srv, 'Walt');
    let last;
    for (let i = 0; i < 3; i++) last = await visitorSend(srv, v.token, `m${i}`);
    const r = await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'one too many' } });
    assertError(r, 429, 'rate_limited', 'fourth message');
    assert.match(r.headers['retry-after'] || '', /^[12]$/, `Retry-After in whole seconds (2 s a message), got ${r.headers['retry-after']}`);
    assert.match(r.json.error.message, /message/);
    await visitorSend(srv, w.token, 'another visitor is not limited');
    // Agents are not limited.
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    for (let i = 0; i < 10; i++) await agentSend(srv, ag, last.conversation_id, `reply ${i}`);
    await sleep(Number(r.headers['retry-after']) * 1000 + 100);
    await visitorSend(srv, v.token, 'after the wait');

    // Messages over WebSocket share the limit and say how long to wait.
    const x = await newVisitor(srv, 'Xena');
    const opened = await openWs(srv.port, '/push/ws?after=0', bearer(x.token));
    assert.ok(opened.ws, `WebSocket for the third visitor: ${opened.status}`);
    env.defer(() => opened.ws.terminate());
    for (let i = 0; i < 3; i++) {
      const ack = await wsAction(opened.ws, { type: 'send', ref: `s${i}`, body: `ws ${i}` });
      assert.equal(ack.type, 'ack', `send ${i}: ${JSON.stringify(ack)}`);
    }
    const refused = await wsAction(opened.ws, { type: 'send', ref: 's3', body: 'one too many' });
    assert.equal(refused.type, 'error');
    assert.equal(refused.error.code, 'rate_limited');
    assert.ok(Number.isInteger(refused.error.retry_after) && refused.error.retry_after >= 1 && refused.error.retry_after <= 2, `retry_after in ${JSON.stringify(refused)}`);
    const ping = await new Promise((resolve) => {
      opened.ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      opened.ws.send(JSON.stringify({ type: 'ping', ref: 'p' }));
    });
    assert.equal(ping.type, 'pong', 'the WebSocket stays open');
    // Every action costs a request too (as over HTTP): typing and pings cannot flood the agents.
    let limited = null;
    for (let i = 0; i < 20 && !limited; i++) {
      const answer = await new Promise((resolve) => {
        const onMessage = (d) => {
          const msg = JSON.parse(d.toString());
          if (msg.ref !== `t${i}`) return;
          opened.ws.off('message', onMessage);
          resolve(msg);
        };
        opened.ws.on('message', onMessage);
        opened.ws.send(JSON.stringify({ type: 'typing', typing: true, ref: `t${i}` }));
        opened.ws.send(JSON.stringify({ type: 'ping', ref: `t${i}` }));
      });
      if (answer.type === 'error') limited = answer;
      else assert.equal(answer.type, 'pong', `action ${i}: ${JSON.stringify(answer)}`);
    }
    assert.ok(limited, 'actions past the request burst are refused');
    assert.equal(limited.error.code, 'rate_limited');
    assert.ok(Number.isInteger(limited.error.retry_after) && limited.error.retry_after >= 1, JSON.stringify(limited));

    // Requests: a burst of 10 (any visitor endpoint or push request), then one every 3 s.
    const y = await newVisitor(srv, 'Yuri');
    for (let i = 0; i < 10; i++) {
      const ok = await srv.api('GET', '/api/visitor/session', { token: y.token });
      assert.equal(ok.status, 200, `request ${i + 1}`);
    }
    const over = await srv.api('GET', '/api/visitor/session', { token: y.token });
    assertError(over, 429, 'rate_limited', 'eleventh request');
    assert.match(over.headers['retry-after'] || '', /^[123]$/, `Retry-After, got ${over.headers['retry-after']}`);
    assert.match(over.json.error.message, /request/);
    const poll = await srv.api('GET', '/push/poll?after=0', { token: y.token });
    assertError(poll, 429, 'rate_limited', 'a push poll counts too');
    const send = await srv.api('POST', '/api/visitor/messages', { token: y.token, body: { body: 'hi' } });
    assertError(send, 429, 'rate_limited', 'and a message post');
    const wOk = await srv.api('GET', '/api/visitor/session', { token: w.token });
    assert.equal(wOk.status, 200, 'another visitor is not limited');
    // An unknown token is 401, not 429.
    const unknown = await srv.api('GET', '/api/visitor/session', { token: 'x'.repeat(43) });
    assert.equal(unknown.status, 401);
    await sleep(Number(over.headers['retry-after']) * 1000 + 100);
    const after = await srv.api('GET', '/api/visitor/session', { token: y.token });
    assert.equal(after.status, 200, 'allowed again after Retry-After');
  }));

test('new visitor sessions per address: past the burst 429 with Retry-After and a JSON error; another address is unaffected; the visitors already made keep working', { timeout: 30000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--visitor-sessions-per-minute', '60', '--visitor-session-burst', '3'] });
    const post = (extra = {}) => `POST /api/visitor/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n{}`;
    const made = [];
    for (let i = 0; i < 3; i++) {
      const r = await exchange(srv.port, post());
      r.sock.destroy();
      assert.equal(r.status, 201, `visitor ${i + 1}: ${r.head.split('\r\n')[0]}`);
      made.push(JSON.parse(r.body).token);
    }
    const fourth = await exchange(srv.port, post());
    fourth.sock.destroy();
    const json = assertJsonError(fourth, 429, 'rate_limited', 'a fourth new visitor from the same address');
    assert.match(json.error.message, /new visitors/);
    assert.match(fourth.head, /\r\nretry-after: 1\r\n/i, 'Retry-After: one new visitor a second');
    // Another address starts its own bucket; existing visitors are not affected.
    const other = await exchange(srv.port, post(), { localAddress: '127.0.0.2' });
    other.sock.destroy();
    assert.equal(other.status, 201, 'from 127.0.0.2');
    await visitorSend(srv, made[0], 'an existing visitor still chats');
    await sleep(1100);
    const again = await exchange(srv.port, post());
    again.sock.destroy();
    assert.equal(again.status, 201, 'allowed again after Retry-After');
  }));

test('behind a trusted proxy, per-address limits count the client X-Forwarded-For names; from anyone else the header is ignored', { timeout: 30000 }, (t) =>
  scenario(t, async (env) => {
    const post = (xff) => `POST /api/visitor/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${xff ? `X-Forwarded-For: ${xff}\r\n` : ''}\r\n{}`;
    let srv;
    const statuses = async (xffs, opts) => {
      const out = [];
      for (const xff of xffs) {
        const r = await exchange(srv.port, post(xff), opts);
        r.sock.destroy();
        out.push(r.status);
      }
      return out;
    };
    const LIMITS = ['--visitor-sessions-per-minute', '60', '--visitor-session-burst', '3'];
    // 127.0.0.1 is the proxy (as nginx on the same host); 127.0.0.2 a client reaching kefu directly.
    srv = await env.server({ args: ['--trusted-proxy', '127.0.0.1', ...LIMITS] });
    // The client is the rightmost address that is not a trusted proxy: what a client wrote to the
    // left of it does not matter.
    assert.deepEqual(await statuses(['192.0.2.1', '10.9.9.9, 192.0.2.1', '192.0.2.1, 127.0.0.1', ' 192.0.2.1 ']), [201, 201, 201, 429],
      'a fourth new visitor from 192.0.2.1 through the proxy, whatever it wrote before its address');
    assert.deepEqual(await statuses(['198.51.100.7']), [201], 'another client behind the same proxy has its own budget');
    assert.deepEqual(await statuses(['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4']), [201, 201, 201, 429], 'an IPv6 /64 is one client');
    // A header that names no address leaves the proxy itself as the client.
    assert.deepEqual(await statuses(['not-an-address', 'unknown', 'garbage, ,', null]), [201, 201, 201, 429], 'no address named: counted as the proxy');
    // From an address that is no trusted proxy, X-Forwarded-For changes nothing.
    assert.deepEqual(await statuses(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'], { localAddress: '127.0.0.2' }), [201, 201, 201, 429],
      'a header sent by a client that is not a trusted proxy is not believed');
    // /metrics (loopback only) refuses a remote client through the loopback proxy, and the log names it.
    const m = await srv.api('GET', '/metrics', { headers: { 'X-Forwarded-For': '192.0.2.50' } });
    assert.equal(m.status, 403, 'a remote client through a loopback proxy is not loopback');
    assert.equal((await srv.api('GET', '/metrics')).status, 200, 'the proxy host itself (no header) may read /metrics');
    assert.match(srv.tail(), /GET \/metrics from 192\.0\.2\.50/, 'the log line names the client, not the proxy');
    await srv.stop();

    // Without --trusted-proxy nobody is trusted: the header is ignored even from loopback.
    srv = await env.server({ args: LIMITS });
    assert.deepEqual(await statuses(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']), [201, 201, 201, 429],
      'without a trusted proxy every header names the same client: the peer');
  }));

test('slowloris: 5,000 connections from 20 addresses trickling a header byte a second (and silent ones) are cut off within the header timeout, over and over; a visitor and an agent chat meanwhile at normal latency', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const HEADER_TIMEOUT_MS = 3000;
    const SWEEP_MS = 1000; // the server checks timeouts once a second
    const N = 5000;
    const SILENT_EVERY = 10; // one connection in ten sends nothing at all
    const ATTACK_MS = 12000;
    const srv = await env.server({
      // 250 slow connections per address, and as many more reconnecting at the moment the sweep
      // cuts the old ones off: 600 leaves room for both, not for counts that leak.
      args: ['--header-timeout', String(HEADER_TIMEOUT_MS / 1000), '--max-connections-per-address', '600'],
    });
    const port = srv.port;

    // The chat, timed: a visitor posts, the agent reads and replies, the visitor's SSE stream and
    // its GET see the reply.
    const v = await newVisitor(srv, 'Vera');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const opening = await visitorSend(srv, v.token, 'hello before the attack');
    const conv = opening.conversation_id;
    const stream = await exchange(port, get(`/push/sse?after=${opening.id}`, bearer(v.token)));
    assert.equal(stream.status, 200);
    env.defer(() => stream.sock.destroy());
    const latencies = [];
    const timed = async (what, fn) => {
      const t0 = Date.now();
      const r = await fn();
      latencies.push({ what, ms: Date.now() - t0 });
      return r;
    };
    const chatRound = async (i) => {
      await timed('visitor send', () => visitorSend(srv, v.token, `question ${i}`));
      await timed('agent list', () => srv.api('GET', `/api/conversations/${conv}/messages?after=0`, { cookie: ag.cookie }));
      const reply = await timed('agent reply', () => agentSend(srv, ag, conv, `answer ${i}`));
      const t0 = Date.now();
      await eventually(() => stream.sock.readable && streamText().includes(`"id":${reply.id},`), { timeout: 5000, interval: 20, what: `answer ${i} on the visitor's SSE stream` });
      latencies.push({ what: 'push to visitor', ms: Date.now() - t0 });
      const got = await timed('visitor get', () => srv.api('GET', `/api/visitor/messages?after=${reply.id - 1}`, { token: v.token }));
      assert.equal(got.json.messages[0].id, reply.id);
    };
    let streamData = '';
    stream.sock.on('data', (c) => (streamData += c.toString('utf8')));
    const streamText = () => streamData;
    for (let i = 0; i < 3; i++) await chatRound(`before ${i}`);
    const baseline = latencies.splice(0);

    // The attack: each slot keeps one slow connection open, reconnecting when cut off.
    const ended = []; // {silent, lifetime, status}
    const live = new Set();
    let attacking = true;
    const connectSlot = (slot) =>
      new Promise((resolve) => {
        const silent = slot % SILENT_EVERY === 0;
        const sock = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (slot % 20)}` });
        const c = { sock, slot, silent, startedAt: 0, data: '' };
        sock.on('connect', () => {
          c.startedAt = Date.now();
          live.add(c);
          if (!silent) sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
          resolve();
        });
        sock.on('data', (d) => (c.data += d.toString('latin1')));
        sock.on('error', () => {});
        sock.on('close', () => {
          if (!c.startedAt) {
            ended.push({ silent, lifetime: -1, status: 'connect failed' });
            resolve();
          } else {
            live.delete(c);
            const m = /^HTTP\/1\.1 (\d{3})/.exec(c.data);
            ended.push({ silent, lifetime: Date.now() - c.startedAt, status: m ? Number(m[1]) : 'closed' });
          }
          if (attacking) setImmediate(() => connectSlot(slot));
        });
      });
    env.defer(() => {
      attacking = false;
      for (const c of live) c.sock.destroy();
    });
    const t0 = Date.now();
    for (let base = 0; base < N; base += 500) {
      const batch = [];
      for (let slot = base; slot < base + 500; slot++) batch.push(connectSlot(slot));
      await Promise.all(batch);
    }
    const openedMs = Date.now() - t0;
    // A byte a second on each, spread over ten ticks so that the test's own loop stays responsive.
    let tick = 0;
    const trickle = setInterval(() => {
      tick = (tick + 1) % 10;
      for (const c of live) if (!c.silent && c.slot % 10 === tick && !c.sock.destroyed) c.sock.write('a');
    }, 100);
    env.defer(() => clearInterval(trickle));
    const peak = live.size;

    // Chat while the attack goes on, a round a second (as people do: the default limits apply).
    let round = 0;
    while (Date.now() - t0 < ATTACK_MS) {
      const started = Date.now();
      await chatRound(`during ${round++}`);
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
    attacking = false;
    const during = latencies.splice(0);
    // Every slow connection is cut off by the server (the test never closes them).
    await eventually(() => live.size === 0, { timeout: HEADER_TIMEOUT_MS + SWEEP_MS + 5000, interval: 200, what: `slow connections cut off (${live.size} left)` });
    clearInterval(trickle);

    const trickled = ended.filter((e) => !e.silent);
    const silent = ended.filter((e) => e.silent);
    const maxLife = Math.max(...ended.map((e) => e.lifetime));
    const minLife = Math.min(...ended.map((e) => e.lifetime));
    const got408 = trickled.filter((e) => e.status === 408).length;
    const pct = (list, p) => list.map((l) => l.ms).sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor(list.length * p))];
    t.diagnostic(`${peak} slow connections open at once (opened in ${openedMs} ms), ${ended.length} cut off in all (${trickled.length} trickling: ${got408} answered 408; ${silent.length} silent), lifetimes ${minLife}-${maxLife} ms`);
    t.diagnostic(`chat latency before: p50 ${pct(baseline, 0.5)} ms, max ${pct(baseline, 1)} ms; during (${round} rounds, ${during.length} steps): p50 ${pct(during, 0.5)} ms, p90 ${pct(during, 0.9)} ms, max ${pct(during, 1)} ms`);

    assert.ok(peak >= N * 0.98, `the attack held ${peak} of ${N} connections open at once`);
    assert.ok(ended.length >= N * 2, `slow connections were cut off and came back (${ended.length} ended)`);
    assert.equal(ended.filter((e) => e.lifetime < 0).length, 0, 'no connection attempt failed');
    // Cut off by the timeout: not refused early (the per-address counts recover as they close),
    // never held past the timeout and the sweep's period, with slack for a loaded machine.
    const early = ended.filter((e) => e.lifetime < HEADER_TIMEOUT_MS - 250);
    assert.equal(early.length, 0, `no connection was cut off before the timeout: ${JSON.stringify(early.slice(0, 5))} (${early.length})`);
    assert.ok(maxLife <= HEADER_TIMEOUT_MS + SWEEP_MS + 1500, `every connection was cut off within the timeout (longest ${maxLife} ms)`);
    assert.ok(trickled.every((e) => e.status === 408 || e.status === 'closed'), 'trickling connections get 408 or a close');
    assert.ok(got408 >= trickled.length * 0.9, `trickling connections are told 408 (${got408} of ${trickled.length})`);
    assert.ok(silent.every((e) => e.status === 'closed'), 'silent connections are closed without an answer');
    // The chat went on at normal latency: a median step as before the attack, the slowest well
    // under the time a person notices (an ASan build, on 2 cores shared with the attackers), and
    // the push to the visitor as fast.
    assert.ok(round >= 5, `the chat went on during the attack (${round} rounds)`);
    assert.ok(pct(during, 0.5) <= Math.max(100, 5 * pct(baseline, 0.5)), `median chat step during the attack ${pct(during, 0.5)} ms (before: ${pct(baseline, 0.5)} ms)`);
    assert.ok(pct(during, 1) < 1500, `slowest chat step during the attack ${pct(during, 1)} ms`);
    // And the server is whole afterwards: every address may connect again.
    for (let i = 0; i < 20; i++) {
      const r = await exchange(port, get('/healthz'), { localAddress: `127.0.0.${2 + i}` });
      assert.equal(r.status, 200, `127.0.0.${2 + i} is served after the attack`);
      r.sock.destroy();
    }
  }));

// ---------------------------------------------------------------------------------------------
// The browser client and the limits

// Requests of the push client: the push endpoints and the visitor's push ticket.
const PUSH_REQUEST = /\/push\/|\/api\/visitor\/push-ticket/;

// Records a page's push requests ({at, url}) and the 429s they were answered ({at, url,
// retryAfterMs}), and its WebSocket attempts.
function watchPush(page) {
  const seen = { requests: [], refusals: [], sockets: [] };
  page.on('request', (r) => {
    if (PUSH_REQUEST.test(r.url())) seen.requests.push({ at: Date.now(), url: r.url() });
  });
  page.on('response', (r) => {
    if (!PUSH_REQUEST.test(r.url()) || r.status() !== 429) return;
    const retryAfter = r.headers()['retry-after'];
    seen.refusals.push({ at: Date.now(), url: r.url(), retryAfterMs: retryAfter ? Number(retryAfter) * 1000 : 0 });
  });
  page.on('websocket', (ws) => seen.sockets.push({ at: Date.now(), url: ws.url() }));
  return seen;
}

async function connState(page) {
  return page.$eval('#conn-state', (el) => ({ state: el.getAttribute('data-state'), transport: el.getAttribute('data-transport') }));
}

function waitConnected(page, timeout = 10000) {
  return page.waitForSelector('#conn-state[data-state="connected"]', { timeout });
}

test('browser client: after a 429 with Retry-After on a push request, the next push request waits at least that long; then it connects', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    // One request every 3 s once the burst is spent: Retry-After 1 to 3 s.
    const srv = await env.server({ args: ['--visitor-requests-per-minute', '20', '--visitor-request-burst', '8'] });
    const page = await env.page('visitor');
    await page.goto(`${srv.base}/chat?transport=longpoll`);
    await waitConnected(page);
    const seen = watchPush(page);
    const token = await page.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    assert.ok(token, 'the page holds a visitor token');
    // Spend what is left of the visitor's requests, then cut the page's connection: it comes back
    // to a server that refuses it for a while.
    let spent = false;
    for (let i = 0; i < 30 && !spent; i++) spent = (await srv.api('GET', '/api/visitor/session', { token })).status === 429;
    assert.ok(spent, 'the visitor ran out of requests');
    await page.context().setOffline(true);
    await sleep(300);
    await page.context().setOffline(false);
    await eventually(() => seen.refusals.length > 0, { timeout: 10000, what: 'a push request refused with 429' });
    await waitConnected(page, 40000);
    for (const r of seen.refusals) {
      assert.ok(r.retryAfterMs >= 1000, `Retry-After on ${r.url}`);
      const next = seen.requests.find((q) => q.at > r.at);
      if (!next) continue;
      assert.ok(next.at - r.at >= r.retryAfterMs - 250,
        `the push request after a 429 (Retry-After ${r.retryAfterMs} ms) came ${next.at - r.at} ms later: ${next.url}`);
    }
    assert.equal((await connState(page)).transport, 'longpoll');
  }));

test('browser client: a 429 for too many push connections (other tabs) does not demote the transport: it keeps trying WebSocket, and connects over it once a tab closes', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({
      args: ['--max-push-per-visitor', '1', '--visitor-requests-per-minute', '100000', '--visitor-request-burst', '10000'],
    });
    const ctx = await env.context('visitor');
    const first = await ctx.newPage();
    await first.goto(`${srv.base}/chat`);
    await waitConnected(first);
    assert.equal((await connState(first)).transport, 'ws', 'the first tab is on WebSocket');
    // A second tab of the same visitor: its WebSocket is refused (429 instead of the 101).
    const second = await ctx.newPage();
    const seen = watchPush(second);
    await second.goto(`${srv.base}/chat`);
    await eventually(() => seen.sockets.length >= 3, { timeout: 20000, what: 'three WebSocket attempts from the second tab' });
    const st = await connState(second);
    assert.notEqual(st.state, 'connected');
    assert.equal(st.transport, 'ws', 'still on WebSocket');
    const lesser = seen.requests.filter((q) => /\/push\/(sse|longpoll|iframe)/.test(q.url));
    assert.deepEqual(lesser, [], 'no fallback to a lesser transport');
    assert.ok(seen.refusals.some((r) => /\/push\/ws/.test(r.url)), 'the probe saw the 429');
    for (let i = 1; i < seen.sockets.length; i++) {
      const gap = seen.sockets[i].at - seen.sockets[i - 1].at;
      assert.ok(gap >= 900, `WebSocket attempts ${gap} ms apart: the client waits at least 1 s after a 429`);
    }
    // Once the first tab lets go of the connection, the second gets it, over WebSocket.
    await first.close();
    await waitConnected(second, 30000);
    assert.equal((await connState(second)).transport, 'ws');
    assert.equal(await second.evaluate(() => sessionStorage.getItem('kefu.push.transport')), 'ws');
  }));
