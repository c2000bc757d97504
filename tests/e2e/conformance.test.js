'use strict';
// conformance.test.js: the push protocol (docs/PROTOCOL.md) over all five transports with real
// clients: poll and long poll with curl, the forever iframe with curl (the <script> lines parsed),
// Server-Sent Events with curl -N (id:/event:/data: parsed), WebSocket with the `ws` package, and
// raw sockets where a client must misbehave. One client abstraction (PushClient) per transport:
// connect(after) / waitFor / nextMessages / close / kill / cursor.
//
// Every client checks what it receives as it goes and records protocol violations:
//  - a message event is {"type":"message","id":"<digits>","message":{…}} with id = message.id;
//  - within one connection (or one poll answer) message ids strictly increase and are all greater
//    than the cursor the connection started from (so a resume never repeats what the cursor has);
//  - poll/longpoll answers are {"events":[…],"cursor":"C2"} with C2 = the last message id or C;
//  - SSE streams start with retry:, ": connected" and a heartbeat event; event: names the JSON
//    type; id: appears on message events only and equals the message id;
//  - iframe streams start with >= 4 KiB of padding and a heartbeat event;
//  - WebSocket streams start with a heartbeat text frame, no extension is negotiated, no binary.
// Delivery is then asserted exactly: the ids a client saw (dropping ids it already had, as the
// protocol asks) equal the ids sent, in id order.
// Servers run with RAISED_LIMITS: one visitor's burst of 1,000 messages, a crowd of streams and
// fast reconnects are what the abuse limits stop (abuse.test.js tests those).
//
// Run directly, the cases test kefu itself. nginx.test.js runs them again through a proxy:
// conformance({ start, label }) registers them with `start(env)` giving the server to test (an
// object whose base and port are the proxy's, for every client here) and `label` added to their
// names.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const { scenario, raw, curl, CurlStream, newVisitor, visitorSend, agentLogin, agentSend, sleep, DEFAULT_AGENTS, RAISED_LIMITS } = require('./harness');
const { OP, frame, RawWs } = require('./wsraw');

const ALL = ['poll', 'longpoll', 'iframe', 'sse', 'ws'];

// The cases, collected as they are declared and registered by conformance().
const CASES = [];
const test = (name, opts, fn) => CASES.push({ name, opts, fn });
let start = (env) => env.server({ args: RAISED_LIMITS });

function conformance({ start: startServer = start, label = '' } = {}) {
  start = startServer;
  for (const c of CASES) nodeTest.test(`${c.name}${label}`, c.opts, c.fn);
}

const ANA = DEFAULT_AGENTS[0];

// ---------------------------------------------------------------------------------------------
// Who listens: a visitor (bearer token; tickets for iframe/SSE/WebSocket, as browsers must) or an
// agent (session cookie everywhere, as a browser sends it; Origin = the server on WebSocket).

async function visitorWho(srv, name = 'Visitor') {
  const v = await newVisitor(srv, name);
  return { kind: 'visitor', label: 'visitor', token: v.token, visitor: v.visitor };
}

async function agentWho(srv, a = ANA) {
  const ag = await agentLogin(srv, a.email, a.password);
  return { kind: 'agent', label: 'agent', cookie: ag.cookie, csrf: ag.csrf, agent: ag.agent, name: a.name };
}

async function getTicket(srv, who) {
  const r =
    who.kind === 'visitor'
      ? await srv.api('POST', '/api/visitor/push-ticket', { token: who.token, timeout: 5000 })
      : await srv.api('POST', '/api/agent/push-ticket', { cookie: who.cookie, csrf: who.csrf, timeout: 5000 });
  if (r.status !== 201) throw new Error(`push-ticket: ${r.status} ${r.text}`);
  return r.json.ticket;
}

const useTicket = (who, transport) => who.kind === 'visitor' && ['iframe', 'sse', 'ws'].includes(transport);

function authHeaders(who) {
  if (who.kind === 'visitor') return { Authorization: `Bearer ${who.token}` };
  return { Cookie: who.cookie };
}
const curlHeaders = (h) => Object.entries(h).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);

// Senders. visitor: POST /api/visitor/messages; agent: POST /api/conversations/{id}/messages.
async function say(srv, who, conv, body) {
  return who.kind === 'visitor' ? visitorSend(srv, who.token, body) : agentSend(srv, who, conv, body);
}

// HTTP keep-alive client for bursts: many requests over `sockets` persistent connections.
class KeepAlive {
  constructor(srv, sockets = 1) {
    this.srv = srv;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  }
  post(path, body, headers) {
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.srv.port, path, method: 'POST', agent: this.agent, headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, ...headers } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json;
            try {
              json = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode, json, text, at: Date.now() });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
  agentSend(who, conv, body) {
    return this.post(`/api/conversations/${conv}/messages`, { body }, { Cookie: who.cookie, 'X-CSRF-Token': who.csrf }).then((r) => {
      if (r.status !== 201) throw new Error(`POST /api/conversations/${conv}/messages: ${r.status} ${r.text.slice(0, 300)}`);
      return r;
    });
  }
  close() {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Incremental parsers for the streaming wire formats.

// SSE: lines, fields, blank-line dispatch (the HTML standard's rules, enough of them).
class SseParser {
  constructor(onEvent, onComment, onRetry) {
    this.buf = '';
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.onRetry = onRetry;
    this.reset();
  }
  reset() {
    this.id = undefined;
    this.event = undefined;
    this.data = [];
  }
  push(s) {
    const parts = (this.buf + s).split('\n');
    this.buf = parts.pop();
    for (let line of parts) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length) this.onEvent({ id: this.id, event: this.event, data: this.data.join('\n') });
        this.reset();
        continue;
      }
      if (line[0] === ':') {
        this.onComment(line.slice(1).trim());
        continue;
      }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'data') this.data.push(value);
      else if (field === 'id') this.id = value;
      else if (field === 'event') this.event = value;
      else if (field === 'retry') this.onRetry(value);
    }
  }
}

// Forever iframe: `<script>parent.kefuPush({…});</script>` calls after the padding.
const IFRAME_OPEN = '<script>parent.kefuPush(';
const IFRAME_CLOSE = ');</script>';
class IframeParser {
  constructor(onEvent) {
    this.buf = '';
    this.total = 0;
    this.paddingBytes = null; // bytes before the first <script>
    this.onEvent = onEvent;
  }
  push(s) {
    this.total += s.length;
    let text = this.buf + s;
    if (this.paddingBytes === null) {
      const i = text.indexOf(IFRAME_OPEN);
      if (i < 0) {
        this.buf = text.slice(-IFRAME_OPEN.length);
        this.paddingSoFar = this.total;
        return;
      }
      this.paddingBytes = this.total - (text.length - i);
      text = text.slice(i);
    }
    let pos = 0;
    for (;;) {
      const a = text.indexOf(IFRAME_OPEN, pos);
      if (a < 0) break;
      const b = text.indexOf(IFRAME_CLOSE, a);
      if (b < 0) {
        pos = a;
        break;
      }
      this.onEvent(text.slice(a + IFRAME_OPEN.length, b));
      pos = b + IFRAME_CLOSE.length;
    }
    this.buf = text.slice(pos);
  }
}

// ---------------------------------------------------------------------------------------------
// PushClient: one subscriber over one transport.

class PushClient {
  // opts: name, reconnect (reopen from the cursor when a connection ends, with backoff, as the
  // browser client does), longpollTimeout (seconds), pollInterval (ms).
  constructor(srv, transport, who, opts = {}) {
    assert.ok(ALL.includes(transport), transport);
    this.srv = srv;
    this.transport = transport;
    this.who = who;
    this.name = opts.name || `${who.label}/${transport}`;
    this.reconnect = !!opts.reconnect;
    this.longpollTimeout = opts.longpollTimeout;
    this.pollInterval = opts.pollInterval ?? 100;
    this.cursor = '0';
    this.ids = []; // message ids, each once, in arrival order
    this.msgs = []; // their events
    this.arrivals = new Map(); // id -> ms
    this.seen = new Set();
    this.dups = 0;
    this.events = []; // every event (ephemeral ones too)
    this.violations = [];
    this.replies = []; // WebSocket: ack / pong / error
    this.heartbeats = 0; // heartbeat events
    this.sseComments = [];
    this.sseRetry = [];
    this.pings = 0; // WebSocket pings from the server
    this.requests = []; // poll/longpoll answers: {kind, after, ms, count}
    this.ends = []; // how connections ended
    this.errors = [];
    this.opened = 0; // connections confirmed open (first event / first poll answer)
    this.conns = 0;
    this.gen = 0;
    this.state = 'idle';
    this.readPos = 0;
    this.waiters = [];
    this.proc = null;
    this.ws = null;
  }

  toString() {
    return `${this.name} [state ${this.state}, cursor ${this.cursor}, ${this.ids.length} messages (last ${this.ids.slice(-3).join(',')}), opened ${this.opened}, ends ${JSON.stringify(this.ends.slice(-5))}, errors ${JSON.stringify(this.errors.slice(-3))}, violations ${JSON.stringify(this.violations.slice(0, 3))}]`;
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _violation(s) {
    if (this.violations.length < 50) this.violations.push(s);
  }

  async waitFor(pred, timeout = 10000, what = 'condition') {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (pred(this)) return;
      if (this.state === 'ended' || this.state === 'failed') throw new Error(`${this.name}: connection over (${this.state}) while waiting for ${what}: ${this}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: not within ${timeout} ms: ${what}: ${this}`);
      await new Promise((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  waitIds(ids, timeout = 15000, what = '') {
    return this.waitFor(() => ids.every((id) => this.seen.has(id)), timeout, `${ids.length} message ids ${what} (missing ${ids.filter((id) => !this.seen.has(id)).slice(0, 5).join(',')}…)`);
  }

  // The next `count` message events not yet returned by nextMessages.
  async nextMessages(count, timeout = 10000) {
    await this.waitFor(() => this.msgs.length >= this.readPos + count, timeout, `${count} more message events`);
    const out = this.msgs.slice(this.readPos, this.readPos + count);
    this.readPos += count;
    return out;
  }

  // ---- events ----

  _event(e, conn) {
    this.events.push(e);
    if (!e || typeof e !== 'object' || typeof e.type !== 'string') {
      this._violation(`conn ${conn.n}: event without a type: ${JSON.stringify(e)}`);
      return;
    }
    if (e.type === 'message') {
      if (typeof e.id !== 'string' || !/^\d+$/.test(e.id) || !e.message || typeof e.message.id !== 'number' || e.id !== String(e.message.id)) {
        this._violation(`conn ${conn.n}: bad message event ${JSON.stringify(e).slice(0, 300)}`);
        return;
      }
      const id = e.message.id;
      if (id <= conn.last) this._violation(`conn ${conn.n} (after=${conn.after}): message ${id} arrived after ${conn.last}: ids must grow and exceed the cursor`);
      conn.last = Math.max(conn.last, id);
      if (this.seen.has(id)) this.dups++;
      else {
        this.seen.add(id);
        this.ids.push(id);
        this.msgs.push(e);
        this.arrivals.set(id, Date.now());
      }
      if (id > Number(this.cursor)) this.cursor = e.id;
    } else if (e.type === 'heartbeat') {
      this.heartbeats++;
    }
    if (!conn.open) {
      conn.open = true;
      this.opened++;
      if (e.type !== 'heartbeat' && this.transport !== 'poll' && this.transport !== 'longpoll') this._violation(`conn ${conn.n}: the first event is not a heartbeat: ${JSON.stringify(e).slice(0, 200)}`);
    }
    this._wake();
  }

  _newConn(after) {
    return { n: ++this.conns, after: Number(after), last: Number(after), open: false };
  }

  // ---- connecting ----

  // Opens the transport from `after` (default: the cursor); resolves once the connection is
  // confirmed (streams: the first event; poll/longpoll: the first answer).
  async connect(after = this.cursor, { lastEventId, timeout = 10000 } = {}) {
    this.cursor = String(after);
    const gen = ++this.gen;
    this.state = 'open';
    const before = this.opened;
    if (this.transport === 'poll' || this.transport === 'longpoll') this._runPoll(gen);
    else this._runStream(gen, lastEventId);
    await this.waitFor(() => this.opened > before, timeout, 'the connection to open');
    return this;
  }

  async _backoff(n) {
    await sleep(Math.min(1000, 50 * 2 ** Math.min(n, 5)));
  }

  async _url(path, gen) {
    let url = `${this.srv.base}${path}`;
    if (useTicket(this.who, this.transport)) url += `&ticket=${encodeURIComponent(await getTicket(this.srv, this.who))}`;
    return url;
  }

  // poll / longpoll loop: (longpoll: one /push/poll first, as the browser client does)
  async _runPoll(gen) {
    let failures = 0;
    let first = true;
    while (gen === this.gen) {
      const long = this.transport === 'longpoll' && !first;
      const after = this.cursor;
      const path = long ? `/push/longpoll?after=${after}${this.longpollTimeout ? `&timeout=${this.longpollTimeout}` : ''}` : `/push/poll?after=${after}`;
      const t0 = Date.now();
      let r;
      try {
        const url = await this._url(path, gen);
        r = await this._curlOnce(['-s', '--max-time', '70', '-w', '\n%{http_code}', ...curlHeaders(authHeaders(this.who)), url], gen);
      } catch (e) {
        r = { code: -1, stdout: '', stderr: e.message };
      }
      if (gen !== this.gen) return;
      const nl = r.stdout.lastIndexOf('\n');
      const status = Number(r.stdout.slice(nl + 1));
      const body = r.stdout.slice(0, Math.max(0, nl));
      if (r.code !== 0 || status !== 200) {
        this.errors.push(`${path}: curl ${r.code} status ${status} ${body.slice(0, 200)} ${r.stderr.slice(0, 200)}`);
        this.ends.push({ conn: this.conns, reason: `curl ${r.code} / HTTP ${status}` });
        if (!this.reconnect) {
          this.state = status >= 400 ? 'failed' : 'ended';
          this._wake();
          return;
        }
        await this._backoff(++failures);
        first = true;
        continue;
      }
      failures = 0;
      let j;
      try {
        j = JSON.parse(body);
      } catch {
        this._violation(`${path}: not JSON: ${body.slice(0, 200)}`);
        this.state = 'failed';
        this._wake();
        return;
      }
      if (!Array.isArray(j.events) || typeof j.cursor !== 'string' || !/^\d+$/.test(j.cursor)) this._violation(`${path}: answer shape ${body.slice(0, 200)}`);
      const conn = this._newConn(after);
      let last = after;
      for (const e of j.events || []) {
        this._event(e, conn);
        if (e && e.type === 'message') last = e.id;
      }
      if (j.cursor !== last) this._violation(`${path}: cursor ${j.cursor}, expected the last message id ${last}`);
      if (!conn.open) {
        conn.open = true;
        this.opened++;
      }
      this.requests.push({ kind: long ? 'longpoll' : 'poll', after, ms: Date.now() - t0, count: (j.events || []).length });
      this._wake();
      first = false;
      if (this.transport === 'poll') await sleep(this.pollInterval);
    }
  }

  _curlOnce(args, gen) {
    return new Promise((resolve, reject) => {
      const p = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = p;
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8');
      p.stdout.on('data', (c) => (out += c));
      p.stderr.on('data', (c) => (err += c));
      p.on('error', reject);
      p.on('close', (code, signal) => {
        if (this.proc === p) this.proc = null;
        resolve({ code: code === null ? `signal ${signal}` : code, stdout: out, stderr: err });
      });
    });
  }

  // Streams: reopen while reconnecting (and always after an iframe `reconnect` event).
  async _runStream(gen, lastEventId) {
    let failures = 0;
    while (gen === this.gen) {
      const conn = this._newConn(lastEventId !== undefined ? lastEventId : this.cursor);
      let r;
      try {
        r = this.transport === 'ws' ? await this._wsOnce(gen, conn) : await this._curlStream(gen, conn, lastEventId);
      } catch (e) {
        r = { opened: false, reason: e.message };
      }
      lastEventId = undefined;
      if (gen !== this.gen) return;
      this.ends.push({ conn: conn.n, ...r });
      if (r.reconnectEvent) continue; // iframe: reopen at once with the cursor
      if (!this.reconnect) {
        this.state = r.httpError ? 'failed' : 'ended';
        this._wake();
        return;
      }
      failures = conn.open ? 0 : failures + 1;
      await this._backoff(failures);
    }
  }

  async _curlStream(gen, conn, lastEventId) {
    const path = `/push/${this.transport}?after=${this.cursor}`;
    const url = await this._url(path, gen);
    const h = useTicket(this.who, this.transport) ? {} : authHeaders(this.who);
    if (this.transport === 'sse') h.Accept = 'text/event-stream';
    if (lastEventId !== undefined) h['Last-Event-ID'] = String(lastEventId);
    const args = ['-sN', '--fail-with-body', '--max-time', '600', ...curlHeaders(h), url];
    return new Promise((resolve) => {
      const p = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = p;
      let reconnectEvent = false;
      let bytes = 0;
      let raw = '';
      let err = '';
      const started = { retry: false, connected: false };
      const onJson = (text, sse) => {
        let e;
        try {
          e = JSON.parse(text);
        } catch {
          this._violation(`conn ${conn.n}: event data is not JSON: ${text.slice(0, 200)}`);
          return;
        }
        if (sse) {
          if (sse.event !== undefined && sse.event !== e.type) this._violation(`conn ${conn.n}: SSE event: ${sse.event} but type ${e.type}`);
          if (e.type === 'message' && sse.id !== e.id) this._violation(`conn ${conn.n}: SSE id: ${sse.id} but message id ${e.id}`);
          if (e.type !== 'message' && sse.id !== undefined) this._violation(`conn ${conn.n}: SSE id: on a ${e.type} event`);
          if (!conn.open && !(started.retry && started.connected)) this._violation(`conn ${conn.n}: SSE stream did not start with retry: and ": connected" (${JSON.stringify(raw.slice(0, 80))})`);
        } else if (!conn.open && parser.paddingBytes < 4096) this._violation(`conn ${conn.n}: iframe padding ${parser.paddingBytes} bytes < 4096`);
        if (e.type === 'reconnect') reconnectEvent = true;
        this._event(e, conn);
      };
      const parser =
        this.transport === 'sse'
          ? new SseParser(
              (ev) => onJson(ev.data, ev),
              (c) => {
                if (c === 'connected') started.connected = true;
                this.sseComments.push({ conn: conn.n, text: c, at: Date.now() });
              },
              (v) => {
                started.retry = true;
                this.sseRetry.push(v);
              },
            )
          : new IframeParser((json) => onJson(json, null));
      p.stdout.setEncoding('utf8');
      p.stdout.on('data', (s) => {
        if (gen !== this.gen) return;
        bytes += Buffer.byteLength(s);
        if (raw.length < 4096) raw += s.slice(0, 4096);
        parser.push(s);
      });
      p.stderr.on('data', (c) => (err += c));
      p.on('close', (code, signal) => {
        if (this.proc === p) this.proc = null;
        const httpError = code === 22;
        if (httpError) this.errors.push(`${path}: HTTP error: ${raw.slice(0, 300)}`);
        resolve({ reason: `curl exit ${code === null ? signal : code}${err ? ' ' + err.trim().slice(0, 100) : ''}`, opened: conn.open, reconnectEvent, httpError, bytes });
      });
    });
  }

  async _wsOnce(gen, conn) {
    const url = (await this._url(`/push/ws?after=${this.cursor}`, gen)).replace(/^http/, 'ws');
    const opts = { handshakeTimeout: 5000 };
    if (!useTicket(this.who, 'ws')) opts.headers = authHeaders(this.who);
    if (this.who.kind === 'agent') opts.origin = this.srv.base; // a browser page on our origin
    return new Promise((resolve) => {
      const ws = new WebSocket(url, opts); // offers permessage-deflate: the server must decline
      this.ws = ws;
      let httpError = false;
      ws.on('upgrade', () => {
        if (ws.extensions) this._violation(`conn ${conn.n}: extension negotiated: ${ws.extensions}`);
      });
      ws.on('message', (data, isBinary) => {
        if (gen !== this.gen) return;
        if (isBinary) {
          this._violation(`conn ${conn.n}: binary frame from the server`);
          return;
        }
        let e;
        try {
          e = JSON.parse(data.toString('utf8'));
        } catch {
          this._violation(`conn ${conn.n}: text frame is not JSON: ${data.toString('utf8').slice(0, 200)}`);
          return;
        }
        if (e && (e.type === 'ack' || e.type === 'pong' || e.type === 'error')) {
          this.replies.push(e);
          this._wake();
          return;
        }
        this._event(e, conn);
      });
      ws.on('ping', () => {
        this.pings++;
        this._wake();
      });
      ws.on('error', (e) => {
        if (/Unexpected server response/.test(e.message)) httpError = true;
        this.errors.push(`ws: ${e.message}`);
      });
      ws.on('close', (code, reason) => {
        if (this.ws === ws) this.ws = null;
        resolve({ reason: 'ws close', code, closeReason: reason.toString(), opened: conn.open, httpError });
      });
    });
  }

  // ---- WebSocket actions ----

  // Sends an action; resolves with its reply (ack/error), or at once for `typing`.
  async act(action, timeout = 5000) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new Error(`${this.name}: no open WebSocket`);
    const ref = action.ref !== undefined ? action.ref : `r${Math.random().toString(36).slice(2)}`;
    const a = { ...action, ref };
    ws.send(JSON.stringify(a));
    if (a.type === 'typing') return null;
    let found;
    await this.waitFor(() => (found = this.replies.find((r) => r.ref === ref)), timeout, `the reply to ${JSON.stringify(a).slice(0, 100)}`);
    return found;
  }

  // ---- ending ----

  // Graceful: WebSocket close 1000 (and the echoed close awaited), curl SIGTERM, loops stopped.
  async close() {
    this.gen++;
    this.state = 'closed';
    const ws = this.ws;
    const p = this.proc;
    if (ws) {
      const closed = new Promise((r) => ws.once('close', (code) => r(code)));
      ws.close(1000);
      const code = await Promise.race([closed, sleep(3000).then(() => 'timeout')]);
      if (code === 'timeout') ws.terminate();
      this.closeEcho = code;
    }
    if (p) {
      const done = new Promise((r) => p.once('close', r));
      p.kill('SIGTERM');
      await Promise.race([done, sleep(3000)]);
      p.kill('SIGKILL');
    }
    this._wake();
  }

  // Abrupt: the connection is cut (curl SIGKILL, socket destroyed); nothing more is processed.
  kill() {
    this.gen++;
    this.state = 'killed';
    if (this.ws) this.ws.terminate();
    if (this.proc) this.proc.kill('SIGKILL');
    this._wake();
  }
}

// Opens clients and registers their cleanup with the test's env.
async function open(env, srv, transport, who, after = 0, opts = {}) {
  const c = new PushClient(srv, transport, who, opts);
  env.defer(() => c.close());
  await c.connect(after);
  return c;
}

function assertClean(c) {
  assert.deepEqual(c.violations, [], `${c.name}: protocol violations`);
}
function assertDelivered(c, expected, what = '') {
  assertClean(c);
  assert.deepEqual(c.ids, expected, `${c.name}: ${what} every message once, in id order`);
}

// ---------------------------------------------------------------------------------------------
// A conversation with a visitor and an agent, and a stream of alternating messages.

async function conversation(srv) {
  const visitor = await visitorWho(srv);
  const first = await visitorSend(srv, visitor.token, 'hello, I need help');
  const agent = await agentWho(srv);
  return { visitor, agent, conv: first.conversation_id, ids: [first.id] };
}

async function alternate(srv, c, n, tag) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const who = i % 2 === 0 ? c.visitor : c.agent;
    const m = await say(srv, who, c.conv, `${tag} ${i} from ${who.kind}`);
    ids.push(m.id);
    c.ids.push(m.id);
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// 1. Order within a conversation.

for (const t of ALL) {
  test(`order: 50 alternating visitor/agent messages arrive in id order at a visitor and an agent (${t})`, { timeout: 60000 }, (tt) =>
    scenario(tt, async (env) => {
      const srv = await start(env);
      const c = await conversation(srv);
      const vs = await open(env, srv, t, c.visitor, 0);
      const as = await open(env, srv, t, c.agent, 0);
      await alternate(srv, c, 50, 'order');
      await vs.waitIds(c.ids);
      await as.waitIds(c.ids);
      assertDelivered(vs, c.ids);
      assertDelivered(as, c.ids);
      // Every transport carries the same events: compare with a poll answer.
      const ref = await srv.api('GET', '/push/poll?after=0', { token: c.visitor.token });
      const polled = ref.json.events.filter((e) => e.type === 'message');
      assert.deepEqual(vs.msgs, polled, `${t}: the same message events as /push/poll`);
      assert.equal(vs.cursor, String(c.ids.at(-1)));
      await vs.close();
      await as.close();
      if (t === 'ws') {
        assert.equal(vs.closeEcho, 1000, 'ws: our close 1000 is echoed');
        assert.equal(as.closeEcho, 1000, 'ws: our close 1000 is echoed');
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 1b. Live: a message is pushed when it is stored, not when a buffer fills or a hold times out
// (what a buffering proxy in front would do).

for (const t of ALL) {
  test(`live: each of 10 messages reaches a waiting visitor and agent within a second (${t})`, { timeout: 60000 }, (tt) =>
    scenario(tt, async (env) => {
      const srv = await start(env);
      const c = await conversation(srv);
      const vs = await open(env, srv, t, c.visitor, c.ids.at(-1));
      const as = await open(env, srv, t, c.agent, c.ids.at(-1));
      const lags = [];
      const sent = [];
      for (let i = 0; i < 10; i++) {
        // Some into a quiet connection (a held long poll, a stream idle since its last event),
        // some right behind the one before.
        await sleep(i % 3 === 0 ? 1500 : 50);
        const m = await say(srv, i % 2 ? c.agent : c.visitor, c.conv, `live ${i}`);
        const at = Date.now();
        sent.push(m.id);
        for (const cl of [vs, as]) {
          await cl.waitIds([m.id], 1000, `message ${i} within a second of its send`);
          lags.push(cl.arrivals.get(m.id) - at);
        }
      }
      assertDelivered(vs, sent);
      assertDelivered(as, sent);
      tt.diagnostic(`${t}: ms from each send's answer to the message's arrival (negative: before it): max ${Math.max(...lags)}`);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Nothing lost, nothing doubled: a dropped connection.

for (const t of ALL) {
  test(`drop: a client killed mid-stream resumes from its cursor with nothing lost or doubled (${t})`, { timeout: 60000 }, (tt) =>
    scenario(tt, async (env) => {
      const srv = await start(env);
      const c = await conversation(srv);
      const vc = await open(env, srv, t, c.visitor, 0);
      // Messages flow while the client dies.
      const sending = alternate(srv, c, 60, 'flow');
      await vc.waitFor(() => vc.ids.length >= 20, 15000, '20 messages before the kill');
      vc.kill();
      const cursorAtKill = vc.cursor;
      const idsAtKill = vc.ids.length;
      await sending;
      await alternate(srv, c, 10, 'while away');
      assert.ok(idsAtKill < c.ids.length, `killed mid-stream (${idsAtKill} of ${c.ids.length})`);
      // Resume on the same client object: a new connection from the cursor.
      await vc.connect(cursorAtKill);
      await alternate(srv, c, 5, 'after resume');
      await vc.waitIds(c.ids);
      assertDelivered(vc, c.ids, 'across the drop:');
      assert.equal(vc.dups, 0, 'no message delivered twice (the resumed connection starts after the cursor)');
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Nothing lost, nothing doubled: a server restart.

for (const t of ALL) {
  test(`restart: visitor and agent clients reconnect after a server restart, nothing lost or doubled (${t})`, { timeout: 90000 }, (tt) =>
    scenario(tt, async (env) => {
      const srv = await start(env);
      const c = await conversation(srv);
      const vc = await open(env, srv, t, c.visitor, 0, { reconnect: true, longpollTimeout: 20 });
      const ac = await open(env, srv, t, c.agent, 0, { reconnect: true, longpollTimeout: 20 });
      await alternate(srv, c, 10, 'before restart');
      await vc.waitIds(c.ids);
      await ac.waitIds(c.ids);
      const opened = [vc.opened, ac.opened];
      const lastBefore = c.ids.at(-1);
      await srv.restart(); // SIGTERM with the clients connected: exit 0 (asserted by stop())
      await alternate(srv, c, 10, 'after restart');
      await vc.waitIds(c.ids, 20000);
      await ac.waitIds(c.ids, 20000);
      assert.ok(c.ids.at(-1) > lastBefore, 'ids keep growing across the restart');
      assertDelivered(vc, c.ids, 'across the restart:');
      assertDelivered(ac, c.ids, 'across the restart:');
      if (t !== 'poll' && t !== 'longpoll') {
        assert.ok(vc.opened > opened[0] && ac.opened > opened[1], `streams reopened (${vc.opened}, ${ac.opened})`);
      }
      tt.diagnostic(`${t}: connection ends: visitor ${JSON.stringify(vc.ends)}; agent ${JSON.stringify(ac.ends)}`);
      if (t === 'sse') {
        for (const cl of [vc, ac]) assert.equal(cl.ends[0].reason, 'curl exit 0', `${cl.name}: at shutdown the response ends (cleanly): ${JSON.stringify(cl.ends)}`);
      }
      if (t === 'iframe') {
        for (const cl of [vc, ac]) assert.ok(cl.ends[0].reconnectEvent && cl.ends[0].reason === 'curl exit 0', `${cl.name}: at shutdown a reconnect event, then the response ends: ${JSON.stringify(cl.ends)}`);
      }
      if (t === 'ws') {
        for (const cl of [vc, ac]) {
          const codes = cl.ends.map((e) => e.code);
          assert.ok(codes.includes(1001), `${cl.name}: close 1001 (going away) at shutdown, got ${JSON.stringify(cl.ends)}`);
        }
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 4. Nothing lost, nothing doubled: switching transports mid-conversation.

// An Eulerian circuit of the complete directed graph on the transports: every ordered pair once.
function everyOrderedPair(nodes) {
  const adj = new Map(nodes.map((n) => [n, nodes.filter((m) => m !== n)]));
  const stack = [nodes[0]];
  const path = [];
  while (stack.length) {
    const v = stack.at(-1);
    const a = adj.get(v);
    if (a.length) stack.push(a.shift());
    else path.push(stack.pop());
  }
  return path.reverse();
}

async function switchTransports(env, srv, c, who, sequence, { abrupt }) {
  const pairs = new Set();
  const got = [];
  let cursor = '0';
  let prev = null;
  for (const [i, t] of sequence.entries()) {
    if (prev) pairs.add(`${prev.transport}->${t}`);
    const cl = new PushClient(srv, t, who, { name: `${who.label}/${t}#${i}` });
    env.defer(() => cl.close());
    await cl.connect(cursor);
    // Messages sent while switching (before this client opened) come with its replay; then live ones.
    const live = await alternate(srv, c, 3, `step ${i} over ${t}`);
    await cl.waitIds(live, 10000, `live on ${t} (step ${i})`);
    assertClean(cl);
    got.push(...cl.ids);
    cursor = cl.cursor;
    if (abrupt) cl.kill();
    else await cl.close();
    await alternate(srv, c, 2, `between ${t} and the next`);
    prev = cl;
  }
  // The last gap: read it over the first transport again.
  const last = new PushClient(srv, sequence[0], who, { name: `${who.label}/${sequence[0]}#end` });
  env.defer(() => last.close());
  await last.connect(cursor);
  await last.waitIds(c.ids.slice(-2));
  got.push(...last.ids);
  assertClean(last);
  assert.deepEqual(got, c.ids, `${who.label}: across ${sequence.join('→')}: every message once, in id order`);
  return pairs;
}

test('switch: a visitor resumes over every ordered pair of transports from the previous cursor', { timeout: 120000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    const seq = everyOrderedPair(ALL);
    const pairs = await switchTransports(env, srv, c, c.visitor, seq, { abrupt: false });
    assert.equal(pairs.size, 20, `all 20 ordered pairs covered: ${[...pairs].join(' ')}`);
  }),
);

test('switch: an agent cycles ws→sse→longpoll→iframe→poll→ws, each connection cut abruptly', { timeout: 120000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    await switchTransports(env, srv, c, c.agent, ['ws', 'sse', 'longpoll', 'iframe', 'poll', 'ws'], { abrupt: true });
  }),
);

// ---------------------------------------------------------------------------------------------
// 5. A burst of 1,000 messages.

for (const t of ALL) {
  test(`burst: 1,000 messages (500 WebSocket send actions + 500 keep-alive HTTP posts, concurrently) arrive complete and in order (${t})`, { timeout: 90000 }, (tt) =>
    scenario(tt, async (env) => {
      const srv = await start(env);
      const c = await conversation(srv);
      const vs = await open(env, srv, t, c.visitor, 0, { reconnect: true });
      const as = await open(env, srv, t, c.agent, 0, { reconnect: true });
      // The visitor's sender: a WebSocket, 500 pipelined send actions.
      const sender = await open(env, srv, 'ws', c.visitor, c.ids.at(-1), { name: 'visitor/ws sender' });
      const ka = new KeepAlive(srv, 2);
      env.defer(() => ka.close());
      const t0 = Date.now();
      const refs = [];
      for (let i = 0; i < 500; i++) {
        refs.push(`b${i}`);
        sender.ws.send(JSON.stringify({ type: 'send', body: `ws burst ${i}`, ref: `b${i}` }));
      }
      const posts = [];
      for (let i = 0; i < 500; i++) posts.push(ka.agentSend(c.agent, c.conv, `http burst ${i}`));
      const httpIds = (await Promise.all(posts)).map((r) => r.json.message.id);
      await sender.waitFor(() => sender.replies.length >= 500, 30000, '500 acks');
      const acks = sender.replies;
      assert.deepEqual(acks.map((r) => r.ref), refs, 'acks in the order of the send actions');
      for (const a of acks) assert.equal(a.type, 'ack', `send action acknowledged: ${JSON.stringify(a).slice(0, 200)}`);
      const wsIds = acks.map((r) => r.message.id);
      const sendMs = Date.now() - t0;
      const all = [...c.ids, ...wsIds, ...httpIds].sort((a, b) => a - b);
      assert.equal(new Set(all).size, 1001, 'distinct ids');
      await vs.waitIds(all, 30000);
      await as.waitIds(all, 30000);
      const recvMs = Date.now() - t0;
      assertDelivered(vs, all);
      assertDelivered(as, all);
      tt.diagnostic(`${t}: 1000 messages sent in ${sendMs} ms, received by both in ${recvMs} ms (connections/answers: ${vs.opened}+${as.opened})`);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 6. A slow reader does not stall anyone else.

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// What the kernel can hold of output a client does not read: the server's send buffer (it grows
// to tcp_wmem's maximum) and the client's receive buffer (it stays at tcp_rmem's default while
// the client reads nothing). Behind a proxy (srv.proxied) there are two such pairs, and the
// proxy's receive buffer from the server grows towards tcp_rmem's maximum (32 MiB on the 6.18
// kernel of the CI's machines, 6 MiB on older ones) while the proxy is still reading, before its
// own client stalls it.
function kernelBufferBytes(proxied) {
  let w;
  let r;
  try {
    w = fs.readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/).map(Number);
    r = fs.readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    w = [0, 0, 4 * 1024 * 1024];
    r = [0, 128 * 1024, 32 * 1024 * 1024];
  }
  return proxied ? 2 * w[2] + r[2] + r[1] : w[2] + r[1];
}

// A raw SSE request that reads the response head and the first event, then stops reading.
function slowSse(srv, ticket) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const s = { sock, chunks: [], bytes: 0, closed: false, ended: false, error: null };
    let head = '';
    const timer = setTimeout(() => reject(new Error(`slow SSE: no heartbeat within 5 s: ${head.slice(0, 300)}`)), 5000);
    sock.on('data', (c) => {
      s.chunks.push(c);
      s.bytes += c.length;
      if (!s.paused) {
        head += c.toString('latin1');
        if (head.includes('event: heartbeat')) {
          s.paused = true;
          sock.pause(); // never read again (until the test resumes it to see how it ended)
          clearTimeout(timer);
          resolve(s);
        }
      }
    });
    sock.on('end', () => (s.ended = true));
    sock.on('close', () => (s.closed = true));
    sock.on('error', (e) => (s.error = e));
    sock.on('connect', () => sock.write(`GET /push/sse?after=0&ticket=${encodeURIComponent(ticket)} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nAccept: text/event-stream\r\n\r\n`));
  });
}

function dechunk(buf) {
  // HTTP/1.1 chunked body -> bytes (stops at a truncated chunk).
  const out = [];
  let pos = 0;
  for (;;) {
    const crlf = buf.indexOf('\r\n', pos);
    if (crlf < 0) break;
    const size = parseInt(buf.subarray(pos, crlf).toString('latin1'), 16);
    if (!(size > 0)) break;
    const start = crlf + 2;
    out.push(buf.subarray(start, Math.min(start + size, buf.length)));
    if (start + size + 2 > buf.length) break;
    pos = start + size + 2;
  }
  return Buffer.concat(out);
}

test('slow reader: SSE and WebSocket clients that never read are dropped past 1 MiB; others keep receiving promptly; memory stays bounded; the slow ones resume from their cursor', { timeout: 180000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    // Enough that the unread output passes what the kernel buffers plus the 1 MiB cap: at least
    // 3,000 messages of 3,000 chars. Behind a proxy the buffers are several times larger, so each
    // message is 4,000 Chinese characters (12 KB) there, and fewer are sent.
    const [fill, chars] = srv.proxied ? ['汉', 3994] : ['x', 2994];
    const BODY = (i) => `${String(i).padStart(5, '0')} ` + fill.repeat(chars);
    const bytesPerMessage = Buffer.byteLength(BODY(0)) + 200; // and the event's JSON around it
    const N = Math.max(3000, Math.ceil((kernelBufferBytes(srv.proxied) + 3 * 1024 * 1024) / bytesPerMessage));
    // Fast clients on every transport (following iframe reconnects past 1 MiB).
    const fast = [];
    for (const t of ALL) fast.push(await open(env, srv, t, c.visitor, 0, { reconnect: true }));
    // Slow clients: raw sockets that stop reading after the first event.
    const slowS = await slowSse(srv, await getTicket(srv, c.visitor));
    env.defer(() => slowS.sock.destroy());
    const slowW = await RawWs.open(srv.port, { path: `/push/ws?after=0&ticket=${encodeURIComponent(await getTicket(srv, c.visitor))}` });
    env.defer(() => slowW.destroy());
    slowW.sock.pause();
    const rss0 = vmRssKiB(srv.proc.pid);

    const ka = new KeepAlive(srv, 1);
    env.defer(() => ka.close());
    const sentAt = new Map();
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const r = await ka.agentSend(c.agent, c.conv, BODY(i));
      sentAt.set(r.json.message.id, r.at);
      c.ids.push(r.json.message.id);
    }
    const sendMs = Date.now() - t0;
    for (const f of fast) await f.waitIds(c.ids, 60000, `all ${c.ids.length} messages`);
    const recvMs = Date.now() - t0;
    const rss1 = vmRssKiB(srv.proc.pid);
    const lat = {};
    for (const f of fast) {
      assertDelivered(f, c.ids);
      let max = 0;
      for (const [id, at] of sentAt) max = Math.max(max, f.arrivals.get(id) - at);
      lat[f.transport] = max;
    }
    tt.diagnostic(`sent ${N} x ${chars + 6} chars (${fill}) in ${sendMs} ms; every fast client had all in ${recvMs} ms; max lag per transport (ms): ${JSON.stringify(lat)}; VmRSS ${rss0} -> ${rss1} KiB`);
    for (const f of fast) {
      if (f.transport === 'poll' || f.transport === 'longpoll') continue;
      assert.ok(lat[f.transport] < 5000, `${f.name}: each message arrived within 5 s of being stored (max ${lat[f.transport]} ms)`);
    }
    // The iframe client went through its 1 MiB reconnects on the way.
    const iframe = fast.find((f) => f.transport === 'iframe');
    const reopened = iframe.ends.filter((e) => e.reconnectEvent);
    assert.ok(reopened.length >= 5, `iframe: reconnect events past 1 MiB (${reopened.length} in ${iframe.ends.length} ends)`);
    for (const e of reopened) assert.ok(e.bytes >= 1024 * 1024 && e.bytes <= 1024 * 1024 + 64 * 1024, `iframe: a reconnect event after ~1 MiB, got ${e.bytes} bytes`);
    assert.ok(rss1 - rss0 < 64 * 1024, `server VmRSS grew ${(rss1 - rss0) / 1024} MiB (< 64 MiB)`);

    // The slow clients: read what was buffered for them; the server must have closed them.
    slowS.sock.resume();
    slowW.sock.resume();
    const deadline = Date.now() + 30000;
    while (!(slowS.closed || slowS.ended) || !(slowW.tcpClosed || slowW.tcpEnded)) {
      if (Date.now() > deadline) {
        throw new Error(`slow clients not disconnected within 30 s after the burst: SSE closed=${slowS.closed || slowS.ended} (${slowS.bytes} bytes read), WebSocket closed=${slowW.tcpClosed || slowW.tcpEnded} (${slowW.bytesIn} bytes read)`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // SSE: parse the events that arrived whole.
    const all = Buffer.concat(slowS.chunks);
    const bodyStart = all.indexOf('\r\n\r\n') + 4;
    const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(all.subarray(0, bodyStart).toString('latin1'));
    const sseText = (chunked ? dechunk(all.subarray(bodyStart)) : all.subarray(bodyStart)).toString('utf8');
    const sseIds = [];
    new SseParser((ev) => {
      const e = JSON.parse(ev.data);
      if (e.type === 'message') sseIds.push(e.message.id);
    }, () => {}, () => {}).push(sseText);
    const wsIds = slowW.all.filter((f) => f.opcode === OP.TEXT && f.json && f.json.type === 'message').map((f) => f.json.message.id);
    tt.diagnostic(`slow SSE got ${sseIds.length} messages (${slowS.bytes} bytes) before the drop; slow WebSocket ${wsIds.length} (${slowW.bytesIn} bytes)`);
    for (const [name, ids] of [['SSE', sseIds], ['WebSocket', wsIds]]) {
      assert.ok(ids.length < c.ids.length, `slow ${name} was cut off before the end (${ids.length} of ${c.ids.length})`);
      assert.deepEqual(ids, c.ids.slice(0, ids.length), `slow ${name}: what it got is a prefix, in order`);
    }
    // They resume from their cursors and get the rest exactly once.
    for (const [t, ids] of [['sse', sseIds], ['ws', wsIds]]) {
      const cursor = ids.length ? ids.at(-1) : 0;
      const r = await open(env, srv, t, c.visitor, cursor, { name: `slow ${t} resumed` });
      const rest = c.ids.filter((id) => id > cursor);
      await r.waitIds(rest, 30000);
      assertDelivered(r, rest, 'after resuming:');
      await r.close();
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// 7. Heartbeats keep idle connections alive (60 s of silence, all transports at once).

test('heartbeats: 62 s of silence on every transport; long polls re-poll, streams see heartbeats, all still deliver; a WebSocket that never answers pings is dropped after ~45 s', { timeout: 120000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    const clients = {};
    for (const t of ALL) clients[t] = await open(env, srv, t, c.visitor, c.ids.at(-1), { pollInterval: 2000 });
    const silent = await RawWs.open(srv.port, { path: `/push/ws?after=${c.ids.at(-1)}`, headers: { Authorization: `Bearer ${c.visitor.token}` } });
    env.defer(() => silent.destroy());
    const silentOpened = Date.now();
    let silentClosedAt = null;
    silent.sock.on('close', () => (silentClosedAt = Date.now()));
    const base = { iframe: clients.iframe.heartbeats, sse: clients.sse.sseComments.length };
    const t0 = Date.now();
    await sleep(62000); // this test is about time
    const lp = clients.longpoll.requests.filter((r) => r.kind === 'longpoll');
    const hbIframe = clients.iframe.heartbeats - base.iframe;
    const hbSse = clients.sse.sseComments.slice(base.sse).filter((x) => x.text === 'heartbeat');
    tt.diagnostic(`after ${Date.now() - t0} ms: long polls answered ${JSON.stringify(lp)}; iframe heartbeats ${hbIframe}; SSE heartbeat comments ${hbSse.length}; WebSocket pings ${clients.ws.pings}; polls ${clients.poll.requests.length}; silent ws closed after ${silentClosedAt ? silentClosedAt - silentOpened : 'never'} ms (frames: ${silent.all.map((f) => f.opcode).join(',')})`);
    for (const t of ALL) {
      assert.equal(clients[t].state, 'open', `${t}: still open: ${clients[t]}`);
      assert.deepEqual(clients[t].ends, [], `${t}: no connection ended during the silence`);
    }
    assert.ok(lp.length >= 2, `long poll re-polled (answers: ${JSON.stringify(lp)})`);
    for (const r of lp) {
      assert.equal(r.count, 0, 'an empty answer after the hold');
      assert.ok(r.ms >= 20000 && r.ms <= 30000, `held ~25 s (default), got ${r.ms} ms`);
    }
    assert.ok(hbIframe >= 2, `iframe: a heartbeat event every 20 s of silence (got ${hbIframe} in 62 s)`);
    assert.ok(hbSse.length >= 2, `SSE: a ": heartbeat" comment every 20 s (got ${hbSse.length})`);
    assert.ok(clients.ws.pings >= 2, `WebSocket: a ping after 20 s without traffic (got ${clients.ws.pings})`);
    assert.ok(silent.all.some((f) => f.opcode === OP.PING), 'the silent WebSocket was pinged');
    assert.ok(silentClosedAt !== null, 'a WebSocket client that never answers is dropped (silent for 45 s)');
    const silentMs = silentClosedAt - silentOpened;
    assert.ok(silentMs >= 40000 && silentMs <= 55000, `dropped after ~45 s of silence, got ${silentMs} ms`);
    // Everyone still delivers.
    const m = await agentSend(srv, c.agent, c.conv, 'still there?');
    for (const t of ALL) {
      await clients[t].waitIds([m.id], 5000, 'the message after the silence');
      assertDelivered(clients[t], [m.id]);
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// 8. Bad input is answered properly.

function parseHead(text) {
  const headers = {};
  for (const line of text.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

// A fresh WebSocket client (the `ws` package) opens and answers a ping action.
async function freshClientWorks(env, srv, who, what) {
  const cl = new PushClient(srv, 'ws', who, { name: `fresh ws after ${what}` });
  try {
    await cl.connect(0);
    const r = await cl.act({ type: 'ping' });
    assert.equal(r.type, 'pong', `after ${what}: a fresh client gets a pong: ${JSON.stringify(r)}`);
  } finally {
    await cl.close();
  }
}

test('bad input: WebSocket handshakes (426 wrong/missing version, 400 bad key, 426 not an upgrade, 403 foreign Origin, 401 no credentials)', { timeout: 60000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const req = (lines) => `GET /push/ws?after=0 HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n${lines.filter(Boolean).join('\r\n')}${lines.length ? '\r\n' : ''}\r\n`;
    const bearer = `Authorization: Bearer ${c.visitor.token}`;
    const cookie = `Cookie: ${c.agent.cookie}`;
    const cases = [
      ['wrong version 8', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 8'], 426, true],
      ['missing version', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`], 426, true],
      ['missing key', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13'], 400],
      ['a key that is not 16 bytes of base64', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: abc', 'Sec-WebSocket-Version: 13'], 400],
      ['not an upgrade (plain GET)', [bearer], 426],
      ['Upgrade: h2c', [bearer, 'Upgrade: h2c', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'], 426],
      ['a foreign Origin with the agent cookie', [cookie, 'Origin: http://evil.example', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'], 403],
      ['our host on another port as Origin', [cookie, `Origin: http://127.0.0.1:${srv.port + 1}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'], 403],
      ['a foreign Origin with a visitor bearer', [bearer, 'Origin: https://evil.example', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'], 403],
      ['no credentials', ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'], 401],
    ];
    for (const [what, lines, status, versionHeader] of cases) {
      const r = await raw(srv.port, req(lines), { timeout: 5000 });
      assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 400)}`);
      const h = parseHead(r.head);
      if (versionHeader) assert.equal(h['sec-websocket-version'], '13', `${what}: Sec-WebSocket-Version: 13 in ${r.head}`);
      assert.ok(!/\r\nsec-websocket-accept:/i.test(r.head), `${what}: no accept header`);
      let j;
      try {
        j = JSON.parse(r.body);
      } catch {}
      assert.ok(j && j.error && typeof j.error.code === 'string', `${what}: a JSON error body, got ${r.body.slice(0, 200)}`);
      await freshClientWorks(env, srv, c.visitor, what);
    }
    // Our own origin is fine for the agent (what the console does); no extension, no subprotocol.
    const ok = await RawWs.open(srv.port, { path: `/push/ws?after=${c.ids.at(-1)}`, headers: { Cookie: c.agent.cookie, Origin: srv.base, 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits', 'Sec-WebSocket-Protocol': 'chat' } });
    env.defer(() => ok.destroy());
    const h = parseHead(ok.head);
    assert.equal((h.upgrade || '').toLowerCase(), 'websocket');
    assert.match(h.connection || '', /upgrade/i);
    assert.equal(h['sec-websocket-extensions'], undefined, 'no extension negotiated');
    assert.equal(h['sec-websocket-protocol'], undefined, 'no subprotocol selected');
    await ok.pingAction('same origin');
    ok.destroy();
    await freshClientWorks(env, srv, c.agent, 'the handshake cases');
  }),
);

test('bad input: WebSocket frames (unmasked 1002, over 64 KiB 1009, bad UTF-8 1007, binary 1003), the server serves others after each', { timeout: 60000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    // A bystander stream stays up through all of it.
    const bystander = await open(env, srv, 'ws', c.agent, 0);
    const cases = [
      ['an unmasked text frame', frame({ opcode: OP.TEXT, payload: '{"type":"ping","ref":"x"}', mask: false }), [1002]],
      ['a message over 64 KiB', frame({ opcode: OP.TEXT, payload: Buffer.alloc(64 * 1024 + 1, 0x61) }), [1009]],
      ['a 64 KiB + 1 message in fragments', Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: Buffer.alloc(40000, 0x61) }), frame({ opcode: OP.CONT, payload: Buffer.alloc(25537, 0x61) })]), [1009]],
      ['invalid UTF-8', frame({ opcode: OP.TEXT, payload: Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]) }), [1007]],
      ['invalid UTF-8 across fragments', Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: Buffer.from([0x22, 0xe2, 0x82]) }), frame({ opcode: OP.CONT, payload: Buffer.from([0x28, 0x22]) })]), [1007]],
      ['a binary frame', frame({ opcode: OP.BINARY, payload: Buffer.from('{"type":"ping"}') }), [1003]],
    ];
    for (const [what, bytes, codes] of cases) {
      const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${c.ids.at(-1)}`, headers: { Authorization: `Bearer ${c.visitor.token}` } });
      try {
        await ws.write(bytes);
        await ws.expectClose(codes, { what: `for ${what}` });
      } finally {
        ws.destroy();
      }
      await freshClientWorks(env, srv, c.visitor, what);
    }
    const m = await visitorSend(srv, c.visitor.token, 'after the bad frames');
    await bystander.waitIds([...c.ids, m.id]);
    assertDelivered(bystander, [...c.ids, m.id]);
    assert.deepEqual(bystander.ends, [], 'the bystander was never disconnected');
  }),
);

test('bad input: bad cursors are answered 400 with a JSON error on every transport', { timeout: 60000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    const bad = ['abc', '-1', '1.5', '12abc', '0x10', '1e3', '99999999999999999999999'];
    const failures = [];
    for (const t of ALL) {
      for (const b of bad) {
        const q = `after=${encodeURIComponent(b)}`;
        let status;
        let body;
        if (t === 'ws') {
          const url = `ws://127.0.0.1:${srv.port}/push/ws?${q}`;
          ({ status, body } = await new Promise((resolve) => {
            const ws = new WebSocket(url, { headers: authHeaders(c.visitor), handshakeTimeout: 5000 });
            ws.on('unexpected-response', (req, res) => {
              let text = '';
              res.on('data', (d) => (text += d));
              res.on('end', () => {
                resolve({ status: res.statusCode, body: text });
                req.destroy();
              });
            });
            ws.on('open', () => {
              resolve({ status: 101, body: '' });
              ws.terminate();
            });
            ws.on('error', (e) => resolve({ status: null, body: e.message }));
          }));
        } else {
          const r = await curl(['-s', '--max-time', '5', '-w', '\n%{http_code}', ...curlHeaders(authHeaders(c.visitor)), `${srv.base}/push/${t}?${q}`]);
          const nl = r.stdout.lastIndexOf('\n');
          status = Number(r.stdout.slice(nl + 1));
          body = r.stdout.slice(0, nl);
        }
        let j;
        try {
          j = JSON.parse(body);
        } catch {}
        if (status !== 400 || !j || !j.error || j.error.code !== 'bad_request') failures.push(`${t} after=${b}: expected 400 bad_request, got ${status} ${String(body).slice(0, 120)}`);
      }
    }
    assert.deepEqual(failures, []);
    await freshClientWorks(env, srv, c.visitor, 'the bad cursors');
  }),
);

// ---------------------------------------------------------------------------------------------
// 9. WebSocket actions: send, read, typing, ping; errors keep the connection open.

test('WebSocket actions: send/read/typing/ping from a visitor and an agent; acks; the other side sees messages, typing and read receipts', { timeout: 60000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    const vw = await open(env, srv, 'ws', c.visitor, 0);
    const aw = await open(env, srv, 'ws', c.agent, 0);
    const asse = await open(env, srv, 'sse', c.agent, 0); // another transport sees it too
    const evs = (cl, pred) => cl.events.filter((e) => e && pred(e));

    // Visitor: send.
    let r = await vw.act({ type: 'send', body: '  sent over the socket  ', ref: 'v-1' });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    assert.equal(r.ref, 'v-1');
    assert.equal(r.message.body, 'sent over the socket', 'trimmed, as over HTTP');
    assert.equal(r.message.sender, 'visitor');
    assert.equal(r.message.conversation_id, c.conv);
    const vm = r.message;
    c.ids.push(vm.id);
    for (const cl of [vw, aw, asse]) await cl.waitIds(c.ids, 5000, 'the WebSocket-sent message');
    assert.deepEqual(aw.msgs.at(-1).message, vm, 'the message event carries the acked message');
    const h = await srv.api('GET', '/api/visitor/messages?after=0', { token: c.visitor.token });
    assert.deepEqual(h.json.messages.at(-1), vm, 'stored: the REST API has it');

    // Visitor: ping, typing (no reply: the next reply is the pong).
    r = await vw.act({ type: 'ping', ref: 'vp' });
    assert.deepEqual(r, { type: 'pong', ref: 'vp' });
    await vw.act({ type: 'typing', typing: true });
    await aw.waitFor(() => evs(aw, (e) => e.type === 'typing' && e.sender === 'visitor' && e.typing === true).length > 0, 5000, 'visitor typing on the agent socket');
    const te = evs(aw, (e) => e.type === 'typing')[0];
    assert.equal(te.conversation_id, c.conv);
    const nRepliesBefore = vw.replies.length;
    r = await vw.act({ type: 'ping', ref: 'vp2' });
    assert.equal(vw.replies.length, nRepliesBefore + 1, `typing got no reply: ${JSON.stringify(vw.replies.slice(nRepliesBefore))}`);

    // Agent: send into the conversation; the visitor sees it with the agent's name.
    r = await aw.act({ type: 'send', conversation_id: c.conv, body: 'answer over the socket', ref: 'a-1' });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    assert.equal(r.ref, 'a-1');
    assert.equal(r.message.sender, 'agent');
    assert.equal(r.message.agent_name, ANA.name);
    const am = r.message;
    c.ids.push(am.id);
    for (const cl of [vw, aw, asse]) await cl.waitIds(c.ids, 5000, "the agent's WebSocket-sent message");

    // Agent: typing; the visitor sees it with agent_name.
    await aw.act({ type: 'typing', conversation_id: c.conv, typing: true });
    await vw.waitFor(() => evs(vw, (e) => e.type === 'typing' && e.sender === 'agent').length > 0, 5000, 'agent typing on the visitor socket');
    const vt = evs(vw, (e) => e.type === 'typing' && e.sender === 'agent')[0];
    assert.equal(vt.typing, true);
    assert.equal(vt.conversation_id, c.conv);
    assert.equal(vt.agent_name, ANA.name);
    await aw.act({ type: 'typing', conversation_id: c.conv, typing: false });
    await vw.waitFor(() => evs(vw, (e) => e.type === 'typing' && e.sender === 'agent' && e.typing === false).length > 0, 5000, 'typing false');

    // Read receipts both ways.
    r = await vw.act({ type: 'read', up_to: am.id, ref: 'vr' });
    assert.deepEqual(r, { type: 'ack', ref: 'vr' });
    await aw.waitFor(() => evs(aw, (e) => e.type === 'read' && e.reader === 'visitor' && Number(e.up_to) === am.id).length > 0, 5000, 'visitor read receipt at the agent');
    r = await aw.act({ type: 'read', conversation_id: c.conv, up_to: vm.id, ref: 'ar' });
    assert.deepEqual(r, { type: 'ack', ref: 'ar' });
    await vw.waitFor(() => evs(vw, (e) => e.type === 'read' && e.reader === 'agent' && Number(e.up_to) === vm.id).length > 0, 5000, 'agent read receipt at the visitor');
    await aw.waitFor(() => evs(aw, (e) => e.type === 'conversation' && e.conversation.id === c.conv && e.conversation.unread === 0).length > 0, 5000, 'conversation event with unread 0');

    // Errors: a reply with the API code; the connection stays open.
    const errs = [
      [vw, { type: 'send', body: '   ', ref: 'e1' }, 'invalid'],
      [vw, { type: 'send', body: 'y'.repeat(4001), ref: 'e2' }, 'invalid'],
      [aw, { type: 'send', body: 'no conversation', ref: 'e3' }, 'not_found'],
      [aw, { type: 'send', conversation_id: 999999, body: 'x', ref: 'e4' }, 'not_found'],
      [vw, { type: 'read', up_to: 'x', ref: 'e5' }, 'invalid'],
      [vw, { type: 'frobnicate', ref: 'e6' }, 'bad_request'],
    ];
    for (const [cl, action, code] of errs) {
      r = await cl.act(action);
      assert.equal(r.type, 'error', `${JSON.stringify(action).slice(0, 80)}: ${JSON.stringify(r)}`);
      assert.equal(r.ref, action.ref);
      assert.equal(r.error && r.error.code, code, `${JSON.stringify(action).slice(0, 80)}: ${JSON.stringify(r)}`);
      assert.equal(typeof r.error.message, 'string');
    }
    vw.ws.send('this is not JSON');
    await vw.waitFor(() => vw.replies.some((x) => x.type === 'error' && x.error && x.error.code === 'bad_json'), 5000, 'bad_json error');
    r = await vw.act({ type: 'ping', ref: 'alive' });
    assert.deepEqual(r, { type: 'pong', ref: 'alive' }, 'still open after errors');
    r = await aw.act({ type: 'ping', ref: 'alive' });
    assert.deepEqual(r, { type: 'pong', ref: 'alive' });
    // Nothing was stored by the failed sends.
    const after = await srv.api('GET', `/api/conversations/${c.conv}/messages?after=0`, { cookie: c.agent.cookie });
    assert.deepEqual(after.json.messages.map((m) => m.id), c.ids);
    for (const cl of [vw, aw, asse]) assertDelivered(cl, c.ids);
  }),
);

// ---------------------------------------------------------------------------------------------
// 10. SSE wire format details.

test('SSE wire format: headers, retry/connected/heartbeat preamble, Last-Event-ID takes precedence over after=', { timeout: 30000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await start(env);
    const c = await conversation(srv);
    await alternate(srv, c, 3, 'sse');
    const tk = await getTicket(srv, c.visitor);
    const cs = new CurlStream(['-sN', '-i', '--max-time', '20', '-H', 'Accept: text/event-stream', `${srv.base}/push/sse?after=0&ticket=${encodeURIComponent(tk)}`]);
    env.defer(() => cs.close());
    await cs.until((o) => o.includes(`id: ${c.ids.at(-1)}\n`) && o.endsWith('\n\n'), 5000, 'the replay of 4 messages');
    const out = cs.out;
    const i = out.indexOf('\r\n\r\n');
    const head = out.slice(0, i);
    const h = parseHead(head);
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(h['content-type'] || '', /^text\/event-stream/);
    assert.match(h['cache-control'] || '', /no-cache/);
    assert.equal(h['x-accel-buffering'], 'no');
    const body = out.slice(i + 4);
    assert.ok(body.startsWith('retry: 2000\n'), `starts with retry: 2000: ${JSON.stringify(body.slice(0, 120))}`);
    const hb = body.indexOf('event: heartbeat\ndata: {"type":"heartbeat"}\n\n');
    assert.ok(body.indexOf(': connected') > 0 && body.indexOf(': connected') < hb, `": connected" then a heartbeat event: ${JSON.stringify(body.slice(0, 200))}`);
    const ids = [];
    new SseParser((ev) => {
      const e = JSON.parse(ev.data);
      if (e.type === 'message') ids.push(e.message.id);
    }, () => {}, () => {}).push(body);
    assert.deepEqual(ids, c.ids, 'replayed from 0');
    // Last-Event-ID beats after=.
    const cl = new PushClient(srv, 'sse', c.visitor, { name: 'sse with Last-Event-ID' });
    env.defer(() => cl.close());
    await cl.connect(0, { lastEventId: c.ids[1] });
    await cl.waitIds(c.ids.slice(2));
    assertDelivered(cl, c.ids.slice(2), 'from Last-Event-ID, not after=0:');
  }),
);

if (require.main === module) conformance();
module.exports = { conformance };
