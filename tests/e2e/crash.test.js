'use strict';
// crash.test.js: crash safety. Twenty visitors and an agent send messages as fast as they can —
// over keep-alive HTTP connections and over WebSockets — and the server is killed with SIGKILL in
// the middle of it, then restarted on the same data directory. After each of several rounds:
//  - every message that was acknowledged (HTTP 201, WebSocket ack) is stored exactly once, with
//    the id and body the acknowledgement gave, in both the visitor's and the agents' views;
//  - nothing is stored that no one sent, and at most the requests in flight at the kill are
//    stored without an acknowledgement;
//  - every stored message reaches its readers over a push transport from cursor 0, once, in id
//    order (poll, long poll and WebSocket, one per round);
//  - `PRAGMA integrity_check` on the database says ok.
// This is the test of "a message is committed before the API answers 2xx" (docs/ARCHITECTURE.md),
// whether commits are one per message or grouped.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const WebSocket = require('ws');
const { KEFU_BIN, Kefu, scenario, addAgent, newVisitor, visitorSend, agentLogin, sleep, DEFAULT_AGENTS, RAISED_LIMITS = [] } = require('./harness');

const ANA = DEFAULT_AGENTS[0];
const VISITORS = 20;
const WS_VISITORS = 4; // the last four visitors send over WebSocket, the others over HTTP
const AGENT_HTTP_LOOPS = 3;
const AGENT_WS_LOOPS = 1;
const DB_FILE = 'kefu.db'; // src/main.c: <data dir>/kefu.db

// ---------------------------------------------------------------------------------------------
// Helpers

// SIGKILL, and the harness's bookkeeping so that start() works again on the same port and dir.
async function crash(srv) {
  const proc = srv.proc;
  assert.ok(proc, 'the server runs');
  srv.log += `\n===== ${srv.name}: SIGKILL =====\n`;
  proc.kill('SIGKILL');
  const res = await proc.exitPromise;
  srv.proc = null;
  assert.equal(res.signal, 'SIGKILL', `killed by SIGKILL: ${JSON.stringify(res)}`);
}

function sqlite(srv, sql) {
  const r = spawnSync('sqlite3', [path.join(srv.dataDir, DB_FILE), sql], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

// One POST over a keep-alive agent; resolves {status, json}, rejects when the connection dies.
function post(agent, srv, p, { token, cookie, csrf, body }) {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (cookie) headers.Cookie = cookie;
  if (csrf) headers['X-CSRF-Token'] = csrf;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: p, method: 'POST', headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (!res.complete) return reject(new Error('incomplete response'));
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          return reject(new Error(`not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
        }
        resolve({ status: res.statusCode, json });
      });
    });
    req.setTimeout(20000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

// An answer from a live server that is not the acknowledgement: a failure of the test, not an
// effect of the kill.
function refused(what) {
  const e = new Error(what);
  e.refused = true;
  return e;
}

// A WebSocket sender: send() resolves with the acknowledged message or rejects when the
// connection dies (or, marked refused, when the server answers an error).
async function wsSender(srv, headers) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/push/ws?after=999999999`, { headers });
  const pending = new Map();
  let dead = null;
  const failAll = (e) => {
    dead = dead || e;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  ws.on('message', (data) => {
    const j = JSON.parse(data.toString('utf8'));
    if ((j.type === 'ack' || j.type === 'error') && pending.has(j.ref)) {
      const p = pending.get(j.ref);
      pending.delete(j.ref);
      if (j.type === 'ack') p.resolve(j.message);
      else p.reject(refused(`WebSocket error reply: ${JSON.stringify(j)}`));
    }
  });
  ws.on('close', (code) => failAll(new Error(`WebSocket closed (${code})`)));
  ws.on('error', (e) => failAll(e));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let refs = 0;
  return {
    send(action) {
      if (dead) return Promise.reject(dead);
      const ref = `r${++refs}`;
      return new Promise((resolve, reject) => {
        pending.set(ref, { resolve, reject });
        ws.send(JSON.stringify({ ...action, ref }));
      });
    },
    close() {
      ws.terminate();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The world that survives the rounds

class World {
  constructor(srv) {
    this.srv = srv;
    this.visitors = []; // {token, id, conversation_id}
    this.agent = null; // {cookie, csrf}
    this.acked = new Map(); // message id -> message as acknowledged
    this.ackedBodies = new Set();
    this.attempted = new Set(); // every body ever sent, acknowledged or not
    this.unsure = new Set(); // bodies whose request died with the server
  }

  async setUp() {
    for (let i = 0; i < VISITORS; i++) {
      const v = await newVisitor(this.srv, `Visitor ${i}`);
      const body = `hello from visitor ${i}`;
      this.attempted.add(body);
      const m = await visitorSend(this.srv, v.token, body);
      this.record(m, 'setup');
      this.visitors.push({ token: v.token, id: v.visitor.id, conversation_id: m.conversation_id });
    }
    this.agent = await agentLogin(this.srv, ANA.email, ANA.password);
  }

  record(m, loop) {
    assert.ok(!this.acked.has(m.id), `${loop}: id ${m.id} acknowledged twice (${JSON.stringify(this.acked.get(m.id))} and ${JSON.stringify(m)})`);
    assert.ok(!this.ackedBodies.has(m.body), `${loop}: body ${JSON.stringify(m.body)} acknowledged twice`);
    this.acked.set(m.id, m);
    this.ackedBodies.add(m.body);
  }

  // Every sender in a loop, each with one request in flight, until the server dies. Kills the
  // server after `ms`. Returns how many messages were acknowledged in this round.
  async loadAndCrash(round, ms) {
    const srv = this.srv;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const conversations = this.visitors.map((v) => v.conversation_id);
    const before = this.acked.size;
    const loops = [];
    const wsClients = [];
    // A loop that fails (an answer other than the acknowledgement) stops; the test fails after
    // the kill. Handled at once, so that no rejection goes unhandled while the load runs.
    let failure = null;
    let killed = false; // a request that fails before the kill fails the test
    const guard = (p) => p.catch((e) => {
      failure = failure || e;
      return { name: 'failed', error: e.message };
    });

    // loop(name, send(body, seq) -> Promise<message>, check(message))
    const loop = async (name, send, check) => {
      let lastId = 0;
      for (let seq = 0; ; seq++) {
        const body = `round ${round} ${name} #${seq}`;
        this.attempted.add(body);
        let m;
        try {
          m = await send(body, seq);
        } catch (e) {
          if (e.refused || !killed) throw e;
          // The server died with this request in flight (or before it was sent): it may or may
          // not be stored, but only once.
          this.unsure.add(body);
          return { name, sent: seq, error: e.message };
        }
        assert.equal(m.body, body, `${name}: the acknowledged body`);
        check(m, seq);
        assert.ok(m.id > lastId, `${name}: ids of one sender increase (${lastId} then ${m.id})`);
        lastId = m.id;
        this.record(m, name);
      }
    };
    const httpSend = (target, auth) => async (body) => {
      const p = typeof target === 'function' ? target() : target;
      const r = await post(agent, srv, p, { ...auth, body: { body } });
      if (r.status !== 201) throw refused(`POST ${p}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json.message;
    };

    this.visitors.forEach((v, i) => {
      const check = (m) => {
        assert.equal(m.sender, 'visitor');
        assert.equal(m.conversation_id, v.conversation_id, `visitor ${i}: the same open conversation`);
      };
      if (i < VISITORS - WS_VISITORS) {
        loops.push(loop(`visitor ${i} http`, httpSend('/api/visitor/messages', { token: v.token }), check));
      } else {
        loops.push(
          wsSender(srv, { Authorization: `Bearer ${v.token}` }).then((ws) => {
            wsClients.push(ws);
            return loop(`visitor ${i} ws`, (body) => ws.send({ type: 'send', body }), check);
          }),
        );
      }
    });
    const agentCheck = (m) => {
      assert.equal(m.sender, 'agent');
      assert.equal(m.agent_name, ANA.name);
    };
    for (let k = 0; k < AGENT_HTTP_LOOPS; k++) {
      let n = k;
      const target = () => `/api/conversations/${conversations[(n += AGENT_HTTP_LOOPS + AGENT_WS_LOOPS) % conversations.length]}/messages`;
      loops.push(loop(`agent http ${k}`, httpSend(target, { cookie: this.agent.cookie, csrf: this.agent.csrf }), agentCheck));
    }
    for (let k = 0; k < AGENT_WS_LOOPS; k++) {
      loops.push(
        wsSender(srv, { Cookie: this.agent.cookie }).then((ws) => {
          wsClients.push(ws);
          return loop(`agent ws ${k}`, (body, seq) => ws.send({ type: 'send', conversation_id: conversations[(seq * 7 + k) % conversations.length], body }), agentCheck);
        }),
      );
    }

    const guarded = loops.map(guard);
    await sleep(ms);
    killed = true;
    await crash(srv);
    const results = await Promise.all(guarded);
    for (const ws of wsClients) ws.close();
    agent.destroy();
    if (failure) throw failure;
    const acked = this.acked.size - before;
    srv.log += `\n===== round ${round}: ${acked} messages acknowledged before the kill; loops: ${JSON.stringify(results.map((r) => [r.name, r.sent]))} =====\n`;
    return { acked, results };
  }

  // Everything stored, as seen by each visitor and by the agents; checks it against what was
  // acknowledged and sent. Returns {byVisitor: Map(visitor id -> [message...]), all: [message...]}.
  async checkStored() {
    const srv = this.srv;
    const byVisitor = new Map();
    const seenBodies = new Map();
    let total = 0;
    for (const v of this.visitors) {
      const list = [];
      for (let after = 0; ; ) {
        const r = await srv.api('GET', `/api/visitor/messages?after=${after}`, { token: v.token });
        assert.equal(r.status, 200, r.text);
        list.push(...r.json.messages);
        if (!r.json.more) break;
        after = r.json.messages.at(-1).id;
      }
      const ids = list.map((m) => m.id);
      assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), `visitor ${v.id}: ids unique and increasing`);
      // The agents' view of the conversation is the same list.
      const agentList = [];
      for (let after = 0; ; ) {
        const r = await srv.api('GET', `/api/conversations/${v.conversation_id}/messages?after=${after}`, { cookie: this.agent.cookie });
        assert.equal(r.status, 200, r.text);
        agentList.push(...r.json.messages);
        if (!r.json.more) break;
        after = r.json.messages.at(-1).id;
      }
      assert.deepEqual(agentList, list, `conversation ${v.conversation_id}: the agents see what the visitor sees`);
      for (const m of list) {
        assert.equal(m.visitor_id, v.id);
        assert.equal(m.conversation_id, v.conversation_id);
        assert.ok(this.attempted.has(m.body), `stored message ${JSON.stringify(m)} was never sent`);
        assert.ok(!seenBodies.has(m.body), `body stored twice: ${JSON.stringify(seenBodies.get(m.body))} and ${JSON.stringify(m)}`);
        seenBodies.set(m.body, m);
      }
      byVisitor.set(v.id, list);
      total += list.length;
    }
    // Every acknowledged message is there, as acknowledged.
    const stored = new Map([...seenBodies.values()].map((m) => [m.id, m]));
    const missing = [...this.acked.values()].filter((m) => !stored.has(m.id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged messages lost`);
    for (const m of this.acked.values()) assert.deepEqual(stored.get(m.id), m, `message ${m.id} as acknowledged`);
    // Stored without an acknowledgement: only requests that were in flight when the server died.
    const extra = [...stored.values()].filter((m) => !this.acked.has(m.id));
    for (const m of extra) assert.ok(this.unsure.has(m.body), `stored but neither acknowledged nor in flight at a kill: ${JSON.stringify(m)}`);
    const all = [...stored.values()].sort((a, b) => a.id - b.id);
    assert.equal(all.length, total);
    assert.equal(Number(sqlite(srv, 'SELECT count(*) FROM messages')), total, 'the messages table holds exactly these');
    return { byVisitor, all, extra: extra.length };
  }
}

// Message ids a reader gets over `transport` from cursor 0, until it has every id in `expected`
// (or the time is up); the list is checked by the caller (no duplicate, nothing more).
async function readFromZero(srv, transport, auth, expected) {
  const want = new Set(expected);
  const got = [];
  let missing = want.size;
  const take = (id) => {
    got.push(id);
    if (want.delete(id)) missing--;
  };
  const has = () => missing === 0;
  const deadline = Date.now() + 60000;
  if (transport === 'ws') {
    const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : { Cookie: auth.cookie };
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/push/ws?after=0`, { headers });
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`ws: ${got.length} messages, ${missing} missing after 60 s`)), 60000);
        ws.on('message', (data) => {
          const j = JSON.parse(data.toString('utf8'));
          if (j.type === 'message') take(j.message.id);
          if (has()) {
            clearTimeout(timer);
            resolve();
          }
        });
        ws.on('error', reject);
        ws.on('close', (code) => reject(new Error(`ws closed (${code}) after ${got.length} messages`)));
      });
    } finally {
      ws.terminate();
    }
    return got;
  }
  let cursor = '0';
  while (!has()) {
    assert.ok(Date.now() < deadline, `${transport}: ${got.length} messages, ${missing} missing after 60 s`);
    const q = transport === 'poll' ? `after=${cursor}` : `after=${cursor}&timeout=1`;
    const r = await srv.api('GET', `/push/${transport}?${q}`, auth.token ? { token: auth.token } : { cookie: auth.cookie });
    assert.equal(r.status, 200, r.text);
    for (const e of r.json.events) if (e.type === 'message') take(e.message.id);
    cursor = r.json.cursor;
  }
  return got;
}

async function checkDelivery(world, transport, stored) {
  for (const v of world.visitors) {
    const ids = stored.byVisitor.get(v.id).map((m) => m.id);
    const got = await readFromZero(world.srv, transport, { token: v.token }, ids);
    assert.deepEqual(got, ids, `visitor ${v.id} over ${transport} from 0: every stored message once, in order`);
  }
  const ids = stored.all.map((m) => m.id);
  const got = await readFromZero(world.srv, transport, { cookie: world.agent.cookie }, ids);
  assert.deepEqual(got, ids, `the agents over ${transport} from 0: every stored message once, in order`);
}

function checkIntegrity(srv) {
  assert.equal(sqlite(srv, 'PRAGMA integrity_check'), 'ok', 'PRAGMA integrity_check');
}

// args: extra flags. The abuse limits are raised: twenty visitors sending as fast as they can are
// what they are meant to stop.
async function crashRounds(t, env, { args = [], rounds, transports }) {
  const srv = new Kefu({ name: 'kefu-crash', logLevel: 'info', args: [...args, ...RAISED_LIMITS] });
  env.servers.push(srv);
  const r = addAgent(srv.dataDir, ANA);
  assert.equal(r.status, 0, r.stderr);
  await srv.start();
  const world = new World(srv);
  await world.setUp();
  for (let round = 1; round <= rounds; round++) {
    const { acked } = await world.loadAndCrash(round, 1000 + Math.floor(Math.random() * 800));
    assert.ok(acked >= 50, `round ${round}: the load ran (${acked} messages acknowledged before the kill)`);
    await srv.start();
    checkIntegrity(srv);
    const stored = await world.checkStored();
    await checkDelivery(world, transports[(round - 1) % transports.length], stored);
    // The server goes on normally after the crash: new messages get new, larger ids.
    const v = world.visitors[round % VISITORS];
    const m = await visitorSend(srv, v.token, `after crash ${round}`);
    world.attempted.add(m.body);
    world.record(m, 'after crash');
    assert.ok(m.id > stored.all.at(-1).id, 'ids keep growing after a crash');
    const summary = `round ${round}: ${acked} acknowledged before the kill; ${stored.all.length} stored in all, ${stored.extra} of them without an acknowledgement`;
    srv.log += `\n===== ${summary} =====\n`;
    t.diagnostic(summary);
  }
  checkIntegrity(srv);
}

// ---------------------------------------------------------------------------------------------

test('crash safety: SIGKILL under load, three rounds — every acknowledged message stored once and delivered; the database is intact', { timeout: 300000 }, (t) =>
  scenario(t, async (env) => {
    await crashRounds(t, env, { rounds: 3, transports: ['poll', 'longpoll', 'ws'] });
  }),
);

test('crash safety with --synchronous NORMAL (survives a process crash): one round', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    await crashRounds(t, env, { args: ['--synchronous', 'NORMAL'], rounds: 1, transports: ['poll'] });
  }),
);

test('--help documents --synchronous (FULL by default, NORMAL) and a bad mode is refused', { timeout: 30000 }, () => {
  const r = spawnSync(KEFU_BIN, ['--help'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, `kefu --help exits 0: ${r.stderr}`);
  const line = r.stdout.split('\n').findIndex((l) => /^\s*--synchronous\b/.test(l));
  assert.ok(line >= 0, `--synchronous in --help:\n${r.stdout}`);
  const text = r.stdout.split('\n').slice(line, line + 3).join('\n');
  assert.match(text, /FULL/, `FULL described: ${text}`);
  assert.match(text, /default/i, `the default named: ${text}`);
  assert.match(text, /NORMAL/, `NORMAL described: ${text}`);
  const bad = spawnSync(KEFU_BIN, ['--synchronous', 'SOMETIMES', '--listen', '127.0.0.1:0', '--data', '/nonexistent/kefu-crash-test'], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(bad.status, 0, 'an unknown mode is refused');
  assert.match(bad.stderr, /synchronous/, `the error names the option: ${bad.stderr}`);
});
