'use strict';
// harness.js: shared pieces of the end-to-end tests.
//  - Kefu: one kefu server process (start on 127.0.0.1:0 with a fresh data dir, stop with SIGTERM
//    and check the exit status, restart on the same port and data dir), its stderr kept in memory.
//  - addAgent(): `kefu user add` before the first start.
//  - api(): a small HTTP client returning {status, headers, json, text}.
//  - raw(): a raw TCP request (for malformed/oversized requests).
//  - curl(): curl via child_process; CurlStream for never-ending responses.
//  - Env + scenario(): per-test resources (servers, browser contexts, child processes) that are
//    always cleaned up, and the server logs printed when the test fails.
//  - browser(): one shared headless Chromium per test file (playwright-core).

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const KEFU_BIN = process.env.KEFU_BIN || path.resolve(__dirname, '../../build/kefu');
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;
const TRANSPORTS = ['poll', 'longpoll', 'iframe'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Resolves null after ms without keeping the process alive once everything else is done.
const expire = (ms) => new Promise((r) => setTimeout(() => r(null), ms).unref());

// Expect-style wait: retries fn (which throws or returns falsy) until it passes or timeout.
async function eventually(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false && v !== undefined && v !== null) return v;
      last = new Error(`${what}: got ${JSON.stringify(v)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      last.message = `not within ${timeout} ms: ${last.message}`;
      throw last;
    }
    await sleep(interval);
  }
}

// A long poll (srv.api('GET', path, opts)) that is held once this resolves to {result}, its
// answer's promise (a promise of its own would be awaited here). With
// several loops (the default, one per core) an event of what happened just before the poll (the
// conversation event of the send before it) may reach the poll's loop a moment after the poll
// began, and end it at once; a client polls again, and so does this, until a poll stays held for
// settleMs. Only the events of what the test does next are then the poll's.
async function heldLongPoll(srv, path, opts, settleMs = 300) {
  for (let i = 0; i < 10; i++) {
    let ended = false;
    const poll = srv.api('GET', path, opts).then((r) => {
      ended = true;
      return r;
    });
    await sleep(settleMs);
    if (!ended) return { result: poll };
    await poll;
  }
  throw new Error(`${path}: every long poll ended at once`);
}

// A directory under the system's temporary one, removed when the test file's process exits
// (a run leaves nothing behind in /tmp; KEFU_KEEP_TMP=1 keeps them to look at).
const madeDirs = [];
function tmpDir(prefix = 'kefu-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (madeDirs.length === 0 && !process.env.KEFU_KEEP_TMP) {
    process.on('exit', () => {
      for (const d of madeDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {}
      }
    });
  }
  madeDirs.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// The store: SQLite in each server's data directory, or with KEFU_STORE set to a PostgreSQL
// server's URL without a database (postgres://USER@HOST:PORT, e.g. scripts/pg_cluster.sh's), a
// database of its own on that server for each data directory, made on first use.

const KEFU_STORE = process.env.KEFU_STORE || '';
const madeDatabases = new Set();

function storeArgs(dataDir) {
  if (!KEFU_STORE) return [];
  const name = 'kefu_e2e_' + path.basename(dataDir).toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (!madeDatabases.has(name)) {
    const r = spawnSync('psql', [`${KEFU_STORE}/postgres`, '-qc', `CREATE DATABASE ${name}`], { encoding: 'utf8', timeout: 30000 });
    if (r.status !== 0 && !/already exists/.test(r.stderr || '')) throw new Error(`cannot make database ${name}: ${r.stderr}`);
    madeDatabases.add(name);
  }
  return ['--store', `${KEFU_STORE}/${name}`];
}

// ---------------------------------------------------------------------------------------------
// CLI: kefu user add

function addAgent(dataDir, { email, name, password, role = 'agent' }) {
  const args = ['user', 'add', email, '--name', name, '--role', role, '--data', dataDir, ...storeArgs(dataDir)];
  const r = spawnSync(KEFU_BIN, args, { input: password + '\n', encoding: 'utf8', timeout: 30000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

// ---------------------------------------------------------------------------------------------
// The server process

class Kefu {
  // args: extra command-line flags for every start (limits, origins, ...).
  constructor({ dataDir, logLevel = 'debug', name = 'kefu', args = [] } = {}) {
    this.dataDir = dataDir || tmpDir();
    this.extraArgs = args;
    this.logLevel = logLevel;
    this.name = name;
    this.port = 0;
    this.proc = null;
    this.log = ''; // stderr + stdout of every run, in order
    this.runs = 0;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  _append(prefix, chunk) {
    this.log += chunk.toString('utf8');
    // Keep memory bounded on chatty debug logs.
    if (this.log.length > 4 * 1024 * 1024) this.log = '[...truncated...]\n' + this.log.slice(-2 * 1024 * 1024);
  }

  // Starts the server; on the first start on port 0, later starts reuse the same port.
  async start() {
    if (this.proc) throw new Error('kefu already running');
    this.runs += 1;
    this.log += `\n===== ${this.name} run ${this.runs}: ${KEFU_BIN} --listen 127.0.0.1:${this.port} --data ${this.dataDir} =====\n`;
    // KEFU_LOOPS=N runs every server with --loops N (a test's own --loops comes after and wins).
    const loops = process.env.KEFU_LOOPS ? ['--loops', process.env.KEFU_LOOPS] : [];
    const args = ['--listen', `127.0.0.1:${this.port}`, '--data', this.dataDir, ...storeArgs(this.dataDir), '--log-level', this.logLevel, ...loops, ...this.extraArgs];
    const proc = spawn(KEFU_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => resolve({ code, signal }));
      proc.on('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    proc.exitPromise = exited;
    proc.stdout.on('data', (c) => this._append('out', c));
    let lineBuf = '';
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kefu did not print "listening on" within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      proc.stderr.on('data', (c) => {
        this._append('err', c);
        lineBuf += c.toString('utf8');
        const m = /listening on http:\/\/([^\s:/]+):(\d+)/.exec(lineBuf);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[2]));
        }
        if (lineBuf.length > 65536) lineBuf = lineBuf.slice(-4096);
      });
      exited.then(({ code, signal, error }) => {
        clearTimeout(timer);
        reject(new Error(`kefu exited before listening (code ${code}, signal ${signal}${error ? ', ' + error.message : ''})`));
      });
    });
    try {
      const port = await ready;
      if (this.port && port !== this.port) throw new Error(`kefu listens on ${port}, asked for ${this.port}`);
      this.port = port;
    } catch (err) {
      await this.kill();
      err.message += `\n--- kefu stderr ---\n${this.log}`;
      throw err;
    }
    return this;
  }

  // SIGTERM and wait; asserts exit status 0 within STOP_TIMEOUT_MS (an ASan leak report makes
  // the status non-zero: the captured output is in the error).
  async stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc) return;
    const t0 = Date.now();
    proc.kill(signal);
    const res = await Promise.race([proc.exitPromise, expire(STOP_TIMEOUT_MS)]);
    if (!res) {
      proc.kill('SIGKILL');
      await proc.exitPromise;
      this.proc = null;
      throw new Error(`kefu did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}\n--- kefu output ---\n${this.tail()}`);
    }
    this.proc = null;
    this.lastStopMs = Date.now() - t0;
    if (res.code !== 0) {
      throw new Error(`kefu exited with code ${res.code} signal ${res.signal} after ${signal} (expected 0)\n--- kefu output ---\n${this.tail(64 * 1024)}`);
    }
  }

  // Cleanup without assertions.
  async kill() {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const res = await Promise.race([proc.exitPromise, expire(STOP_TIMEOUT_MS)]);
    if (!res) {
      proc.kill('SIGKILL');
      await proc.exitPromise;
    }
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  get running() {
    return !!this.proc;
  }

  tail(n = 32 * 1024) {
    return this.log.length > n ? '[...]\n' + this.log.slice(-n) : this.log;
  }

  // HTTP helpers bound to this server.
  api(method, p, opts) {
    return api(this.base, method, p, opts);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP: api() over node:http without keep-alive (one connection per request, so nothing stale
// survives a server restart).

function api(base, method, p, { body, token, cookie, csrf, headers = {}, timeout = 15000, signal, localAddress } = {}) {
  const url = new URL(p, base);
  const h = { ...headers };
  let payload;
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    h['Content-Length'] = String(payload.length);
  } else if (method === 'POST') {
    h['Content-Length'] = '0';
  }
  if (token) h['Authorization'] = `Bearer ${token}`;
  if (cookie) h['Cookie'] = cookie;
  if (csrf) h['X-CSRF-Token'] = csrf;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: h, agent: false, signal, localAddress },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${p}: no answer within ${timeout} ms`)), timeout);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (payload) req.write(payload);
    req.end();
  });
}

// Sends raw bytes on a TCP connection; reads until the server closes, a full response with a
// Content-Length has arrived, or timeout. Resolves {status, head, body, text, closed}.
function raw(port, data, { timeout = 10000, host = '127.0.0.1', untilClose = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const idx = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : null, head: idx >= 0 ? text.slice(0, idx) : text, body: idx >= 0 ? text.slice(idx + 4) : '', text, closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    sock.on('connect', () => {
      sock.write(data, () => {});
    });
    sock.on('data', (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      const idx = text.indexOf('\r\n\r\n');
      if (idx >= 0 && !untilClose) {
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, idx));
        if (cl && Buffer.byteLength(text.slice(idx + 4), 'latin1') >= Number(cl[1])) finish(false);
      }
    });
    sock.on('error', (e) => {
      if (chunks.length) finish(true);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
    sock.on('close', () => finish(true));
  });
}

// ---------------------------------------------------------------------------------------------
// curl

// Runs curl to completion; resolves {code, stdout, stderr, ms}.
function curl(args, { timeout = 70000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c.toString('utf8')));
    p.stderr.on('data', (c) => (err += c.toString('utf8')));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: out, stderr: err, ms: Date.now() - t0 });
    });
  });
}

// Runs curl -sN on a never-ending response; collects stdout as it arrives.
class CurlStream {
  constructor(args) {
    this.t0 = Date.now();
    this.out = '';
    this.firstByteAt = null;
    this.proc = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.err = '';
    this.waiters = [];
    this.exit = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.exited = null;
    this.exit.then((r) => {
      this.exited = r;
      this._wake();
    });
    this.proc.stdout.on('data', (c) => {
      if (this.firstByteAt === null) this.firstByteAt = Date.now();
      this.out += c.toString('utf8');
      this._wake();
    });
    this.proc.stderr.on('data', (c) => (this.err += c.toString('utf8')));
  }

  _wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  // Waits until pred(out) is truthy; resolves its value. Rejects on timeout or when curl exits first.
  _tailText() {
    return this.out.slice(-3000).replace(/\s{40,}/g, ' [...whitespace...] ');
  }

  async until(pred, timeout = 10000, what = 'condition') {
    const deadline = Date.now() + timeout;
    for (;;) {
      const v = pred(this.out);
      if (v) return v;
      if (this.exited) throw new Error(`curl exited (${JSON.stringify(this.exited)}) before ${what}; stderr: ${this.err}; got ${this.out.length} bytes: ${this._tailText()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout after ${timeout} ms waiting for ${what}; got ${this.out.length} bytes: ${this._tailText()}`);
      await new Promise((r) => {
        const t = setTimeout(r, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async close() {
    if (!this.exited) {
      this.proc.kill('SIGTERM');
      await Promise.race([this.exit, sleep(3000)]);
      if (!this.exited) this.proc.kill('SIGKILL');
    }
  }
}

// Parses the `<script>parent.kefuPush({...});</script>` chunks of an iframe stream.
const IFRAME_PUSH_RE = /<script>parent\.kefuPush\(([\s\S]*?)\);?<\/script>/g;
function parseIframeEvents(text) {
  const events = [];
  for (const m of text.matchAll(IFRAME_PUSH_RE)) events.push(JSON.parse(m[1]));
  return events;
}

// Flags for tests that load one server like many people at once (bursts of messages from one
// visitor, many streams, fast reconnects): the abuse limits (docs/SECURITY.md) raised far above
// what they do, so that only abuse.test.js meets them.
const RAISED_LIMITS = [
  '--max-connections-per-address', '20000',
  '--max-push-per-visitor', '10000',
  '--max-push-per-agent', '10000',
  '--visitor-requests-per-minute', '1000000',
  '--visitor-request-burst', '100000',
  '--visitor-messages-per-minute', '1000000',
  '--visitor-message-burst', '100000',
  '--visitor-sessions-per-minute', '1000000',
  '--visitor-session-burst', '100000',
];

// ---------------------------------------------------------------------------------------------
// Domain helpers

async function newVisitor(srv, name) {
  const r = await srv.api('POST', '/api/visitor/session', { body: name === undefined ? {} : { name } });
  assert.equal(r.status, 201, `POST /api/visitor/session: ${r.status} ${r.text}`);
  assert.ok(r.json && typeof r.json.token === 'string' && r.json.token.length >= 32, `token in ${r.text}`);
  return { token: r.json.token, visitor: r.json.visitor };
}

async function visitorSend(srv, token, body) {
  const r = await srv.api('POST', '/api/visitor/messages', { token, body: { body } });
  assert.equal(r.status, 201, `POST /api/visitor/messages: ${r.status} ${r.text}`);
  return r.json.message;
}

function sessionCookie(headers) {
  const sc = headers['set-cookie'] || [];
  for (const c of sc) {
    const m = /^((?:__Host-)?kefu_session=[^;]*)/.exec(c);
    if (m) return { cookie: m[1], raw: c };
  }
  return null;
}

async function agentLogin(srv, email, password) {
  const r = await srv.api('POST', '/api/agent/login', { body: { email, password } });
  assert.equal(r.status, 200, `POST /api/agent/login: ${r.status} ${r.text}`);
  const c = sessionCookie(r.headers);
  assert.ok(c, `kefu_session cookie in ${JSON.stringify(r.headers['set-cookie'])}`);
  assert.ok(r.json.csrf, `csrf in ${r.text}`);
  return { cookie: c.cookie, setCookie: c.raw, csrf: r.json.csrf, agent: r.json.agent };
}

async function agentSend(srv, agent, convId, body) {
  const r = await srv.api('POST', `/api/conversations/${convId}/messages`, { cookie: agent.cookie, csrf: agent.csrf, body: { body } });
  assert.equal(r.status, 201, `POST /api/conversations/${convId}/messages: ${r.status} ${r.text}`);
  return r.json.message;
}

function assertError(r, status, codes, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text.slice(0, 500)}`);
  assert.ok(r.json && r.json.error && typeof r.json.error === 'object', `${what}: error JSON shape {error:{code,message}}, got ${r.text.slice(0, 500)}`);
  assert.equal(typeof r.json.error.code, 'string', `${what}: error.code string in ${r.text}`);
  assert.equal(typeof r.json.error.message, 'string', `${what}: error.message string in ${r.text}`);
  if (codes) {
    const list = Array.isArray(codes) ? codes : [codes];
    assert.ok(list.includes(r.json.error.code), `${what}: error.code ${r.json.error.code} not in ${list.join('|')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Browser

let browserPromise = null;
function browser() {
  if (!browserPromise) {
    const { chromium } = require('playwright-core');
    browserPromise = chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }
  return browserPromise;
}
async function closeBrowser() {
  if (browserPromise) {
    const p = browserPromise;
    browserPromise = null;
    try {
      await (await p).close();
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// Per-test environment

const DEFAULT_AGENTS = [
  { email: 'ana@example.com', name: 'Ana', password: 'correct horse battery staple', role: 'admin' },
  { email: 'bo@example.com', name: 'Bo', password: 'another long passphrase', role: 'agent' },
];

class Env {
  constructor(t) {
    this.t = t;
    this.servers = [];
    this.contexts = [];
    this.closers = [];
    this.pageLogs = [];
    this.agents = DEFAULT_AGENTS;
  }

  // A fresh server with agents created by `kefu user add` before its first start; args are extra
  // flags for every start (e.g. RAISED_LIMITS).
  async server({ agents = DEFAULT_AGENTS, start = true, args = [] } = {}) {
    const srv = new Kefu({ name: `kefu#${this.servers.length + 1}`, args });
    this.servers.push(srv);
    this.agents = agents;
    for (const a of agents) {
      const r = addAgent(srv.dataDir, a);
      if (r.status !== 0) {
        throw new Error(`kefu user add ${a.email} failed: status ${r.status} ${r.signal || ''} ${r.error ? r.error.message : ''}\n${r.stdout}${r.stderr}`);
      }
    }
    if (start) await srv.start();
    return srv;
  }

  // A browser context; console errors, page errors and failed requests are logged for failures.
  async context(label) {
    const b = await browser();
    const ctx = await b.newContext();
    this.contexts.push(ctx);
    ctx.on('page', (page) => this._watch(page, label));
    return ctx;
  }

  async page(label) {
    const ctx = await this.context(label);
    const page = await ctx.newPage();
    return page;
  }

  _watch(page, label) {
    const log = (s) => {
      this.pageLogs.push(`[${label}] ${s}`);
      if (this.pageLogs.length > 2000) this.pageLogs.shift();
    };
    page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => log(`requestfailed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
    page.on('dialog', (d) => log(`dialog ${d.type()}: ${d.message()}`));
  }

  defer(fn) {
    this.closers.push(fn);
  }

  dump(err) {
    let s = `\n######## test failed: ${this.t.name}\n${err && err.stack ? err.stack : err}\n`;
    for (const srv of this.servers) s += `\n######## ${srv.name} output (data ${srv.dataDir}, port ${srv.port}):\n${srv.tail(64 * 1024)}\n`;
    if (this.pageLogs.length) s += `\n######## browser logs:\n${this.pageLogs.slice(-300).join('\n')}\n`;
    process.stderr.write(s);
  }

  async cleanup({ strict }) {
    const errors = [];
    for (const fn of this.closers.reverse()) {
      try {
        await fn();
      } catch (e) {
        if (strict) errors.push(e);
      }
    }
    for (const ctx of this.contexts) {
      try {
        await ctx.close();
      } catch {}
    }
    for (const srv of this.servers) {
      try {
        if (strict) await srv.stop();
        else await srv.kill();
      } catch (e) {
        errors.push(e);
      }
    }
    for (const srv of this.servers) {
      try {
        fs.rmSync(srv.dataDir, { recursive: true, force: true });
      } catch {}
    }
    return errors;
  }
}

// Runs fn(env) with guaranteed cleanup. When the test body passes, the servers are stopped with
// SIGTERM and must exit 0 (that is part of every test).
async function scenario(t, fn) {
  const env = new Env(t);
  let failed = null;
  try {
    await fn(env);
  } catch (e) {
    failed = e;
  }
  const errors = await env.cleanup({ strict: !failed });
  if (!failed && errors.length) failed = errors[0];
  if (failed) {
    env.dump(failed);
    throw failed;
  }
}

module.exports = {
  KEFU_BIN,
  TRANSPORTS,
  Kefu,
  Env,
  scenario,
  addAgent,
  api,
  raw,
  curl,
  CurlStream,
  parseIframeEvents,
  newVisitor,
  visitorSend,
  agentLogin,
  agentSend,
  assertError,
  sessionCookie,
  browser,
  closeBrowser,
  tmpDir,
  sleep,
  eventually,
  heldLongPoll,
  DEFAULT_AGENTS,
  RAISED_LIMITS,
};
