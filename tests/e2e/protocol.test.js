'use strict';
// protocol.test.js: the HTTP API and the push transports with real clients (node fetch, node
// http, raw TCP, curl), against a real kefu process.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const {
  TRANSPORTS, scenario, addAgent, raw, curl, CurlStream, parseIframeEvents, newVisitor, visitorSend,
  agentLogin, agentSend, assertError, sleep, eventually, DEFAULT_AGENTS, Kefu, tmpDir,
} = require('./harness');

const ANA = DEFAULT_AGENTS[0];
const BO = DEFAULT_AGENTS[1];

// ---------------------------------------------------------------------------------------------
// Push clients over curl, one per transport, with one interface:
//   collect(srv, transport, auth, after, done(events) -> bool, timeout) -> {events, cursor}
// auth: {token} (visitor bearer), {cookie} (agent), {ticket: async () => string}.

function authArgs(auth) {
  const a = [];
  if (auth.token) a.push('-H', `Authorization: Bearer ${auth.token}`);
  if (auth.cookie) a.push('-H', `Cookie: ${auth.cookie}`);
  return a;
}

async function ticketQuery(auth) {
  return auth.ticket ? `&ticket=${encodeURIComponent(await auth.ticket())}` : '';
}

function lastMessageId(events, fallback) {
  let c = fallback;
  for (const e of events) if (e.type === 'message') c = e.id;
  return c;
}

function checkMessageEvent(e) {
  assert.equal(typeof e.id, 'string', `message event id is a string: ${JSON.stringify(e)}`);
  assert.match(e.id, /^\d+$/);
  assert.ok(e.message && typeof e.message.id === 'number', `message event has a message: ${JSON.stringify(e)}`);
  assert.equal(e.id, String(e.message.id), 'event id = message id');
}

async function collect(srv, transport, auth, after, done, timeout = 10000) {
  const deadline = Date.now() + timeout;
  const events = [];
  let cursor = String(after);
  if (transport === 'poll' || transport === 'longpoll') {
    while (!done(events)) {
      if (Date.now() > deadline) throw new Error(`${transport}: condition not met within ${timeout} ms; events: ${JSON.stringify(events)}`);
      const q = transport === 'poll' ? `after=${cursor}` : `after=${cursor}&timeout=5`;
      const url = `${srv.base}/push/${transport}?${q}${await ticketQuery(auth)}`;
      const r = await curl(['-s', '--max-time', '30', '-w', '\n%{http_code}', ...authArgs(auth), url]);
      const nl = r.stdout.lastIndexOf('\n');
      const status = Number(r.stdout.slice(nl + 1));
      const body = r.stdout.slice(0, nl);
      assert.equal(status, 200, `curl ${url}: ${status} ${body} ${r.stderr}`);
      const j = JSON.parse(body);
      assert.ok(Array.isArray(j.events), `events array in ${body}`);
      assert.equal(typeof j.cursor, 'string', `cursor string in ${body}`);
      assert.match(j.cursor, /^\d+$/);
      assert.equal(j.cursor, lastMessageId(j.events, cursor), `cursor = id of the last message event (or the request's) in ${body}`);
      events.push(...j.events);
      cursor = j.cursor;
      if (transport === 'poll' && !done(events)) await sleep(200); // the poll interval
    }
    return { events, cursor };
  }
  // iframe: one stream until done.
  const url = `${srv.base}/push/iframe?after=${cursor}${await ticketQuery(auth)}`;
  const s = new CurlStream(['-sN', '--max-time', String(Math.ceil(timeout / 1000) + 5), ...authArgs(auth), url]);
  try {
    await s.until((out) => done(parseIframeEvents(out)), timeout, 'iframe events');
    const evs = parseIframeEvents(s.out);
    return { events: evs, cursor: lastMessageId(evs, cursor), raw: s.out };
  } finally {
    await s.close();
  }
}

const msgs = (events) => events.filter((e) => e.type === 'message');
const bodies = (events) => msgs(events).map((e) => e.message.body);
const hasBodies = (list) => (events) => list.every((b) => bodies(events).includes(b));

function visitorAuth(srv, token, transport) {
  if (transport !== 'iframe') return { token };
  return {
    ticket: async () => {
      const r = await srv.api('POST', '/api/visitor/push-ticket', { token });
      assert.equal(r.status, 201, `POST /api/visitor/push-ticket: ${r.status} ${r.text}`);
      assert.equal(typeof r.json.ticket, 'string');
      return r.json.ticket;
    },
  };
}
function agentAuth(srv, ag, transport) {
  if (transport !== 'iframe') return { cookie: ag.cookie };
  return {
    ticket: async () => {
      const r = await srv.api('POST', '/api/agent/push-ticket', { cookie: ag.cookie, csrf: ag.csrf });
      assert.equal(r.status, 201, `POST /api/agent/push-ticket: ${r.status} ${r.text}`);
      return r.json.ticket;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One body for the three transports.

for (const transport of TRANSPORTS) {
  test(`push over ${transport} (curl): replay, live delivery, resume from a cursor, restart`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const v = await newVisitor(srv, 'Mei');
      const vauth = visitorAuth(srv, v.token, transport);
      const m1 = await visitorSend(srv, v.token, `first question over ${transport}`);
      const m2 = await visitorSend(srv, v.token, 'second question');
      const conv = m1.conversation_id;
      const ag = await agentLogin(srv, ANA.email, ANA.password);

      // Replay from 0.
      let r = await collect(srv, transport, vauth, 0, hasBodies([m1.body, m2.body]));
      msgs(r.events).forEach(checkMessageEvent);
      assert.deepEqual(msgs(r.events).map((e) => e.message.id), [m1.id, m2.id], 'replayed once, in order');
      assert.equal(r.cursor, String(m2.id));
      for (const e of r.events) assert.ok(['message', 'read', 'heartbeat', 'reconnect'].includes(e.type), `visitor event types: ${JSON.stringify(e)}`);

      // Live: a client waits from the cursor, the agent replies.
      const live = collect(srv, transport, vauth, r.cursor, hasBodies(['agent reply 1']));
      await sleep(300); // let the request reach the server (order does not matter for correctness)
      const r1 = await agentSend(srv, ag, conv, 'agent reply 1');
      assert.equal(r1.sender, 'agent');
      assert.equal(r1.agent_name, ANA.name);
      r = await live;
      assert.deepEqual(msgs(r.events).map((e) => e.message.id), [r1.id], 'only the new message');
      assert.equal(msgs(r.events)[0].message.agent_name, ANA.name);
      assert.equal(r.cursor, String(r1.id));

      // Resume after a gap: only what came after the cursor.
      const r2 = await agentSend(srv, ag, conv, 'agent reply 2');
      const m3 = await visitorSend(srv, v.token, 'third question');
      r = await collect(srv, transport, vauth, r.cursor, hasBodies([r2.body, m3.body]));
      assert.deepEqual(msgs(r.events).map((e) => e.message.id), [r2.id, m3.id], 'resume returns only newer messages');

      // The agent's view of the same transport: every message of the conversation, plus
      // conversation events.
      const aauth = agentAuth(srv, ag, transport);
      const ar = await collect(srv, transport, aauth, 0, hasBodies([m1.body, m2.body, r1.body, r2.body, m3.body]));
      assert.deepEqual(msgs(ar.events).map((e) => e.message.id), [m1.id, m2.id, r1.id, r2.id, m3.id]);

      // Restart (SIGTERM must exit 0 even with a push request held open).
      let restarted = false;
      const held = transport === 'poll' ? null : collect(srv, transport, vauth, m3.id, () => restarted, 60000).catch((e) => e);
      await sleep(300);
      await srv.restart();
      restarted = true;
      if (held) await held; // ends with an error or nothing: the server went away
      const m4 = await visitorSend(srv, v.token, 'after restart');
      r = await collect(srv, transport, vauth, String(m3.id), hasBodies([m4.body]));
      assert.deepEqual(msgs(r.events).map((e) => e.message.id), [m4.id], 'after restart: only newer');
      r = await collect(srv, transport, vauth, 0, hasBodies([m4.body]));
      assert.deepEqual(msgs(r.events).map((e) => e.message.id), [m1.id, m2.id, r1.id, r2.id, m3.id, m4.id], 'history kept across restart, once each');
      assert.ok(m4.id > m3.id, 'ids keep growing across restart');
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Visitor API

test('visitor session and message round trip (node fetch)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    let res = await fetch(`${srv.base}/api/visitor/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Li Wei 李伟' }) });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('content-type') || '', /^application\/json/);
    const s = await res.json();
    assert.equal(typeof s.token, 'string');
    assert.ok(s.token.length >= 43, 'a 256-bit token');
    assert.equal(typeof s.visitor.id, 'number');
    assert.equal(s.visitor.name, 'Li Wei 李伟');
    const auth = { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' };

    res = await fetch(`${srv.base}/api/visitor/session`, { headers: auth });
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).visitor, s.visitor);
    res = await fetch(`${srv.base}/api/visitor/session`, { headers: { Authorization: 'Bearer ' + 'x'.repeat(43) } });
    assert.equal(res.status, 401);
    assertError({ status: 401, json: await res.json(), text: '' }, 401, 'unauthorized', 'unknown token');

    const before = Date.now();
    res = await fetch(`${srv.base}/api/visitor/messages`, { method: 'POST', headers: auth, body: JSON.stringify({ body: '  你好, where is my parcel? 📦  ' }) });
    assert.equal(res.status, 201);
    const { message: m } = await res.json();
    assert.equal(m.body, '你好, where is my parcel? 📦', 'trimmed, UTF-8 intact');
    assert.equal(m.sender, 'visitor');
    assert.equal(m.visitor_id, s.visitor.id);
    assert.equal(typeof m.conversation_id, 'number');
    assert.ok(m.created_at >= before - 5000 && m.created_at <= Date.now() + 5000, `created_at in ms: ${m.created_at}`);
    assert.equal(m.agent_name, undefined);

    res = await fetch(`${srv.base}/api/visitor/messages?after=0`, { headers: auth });
    assert.equal(res.status, 200);
    const list = await res.json();
    assert.deepEqual(list, { messages: [m], more: false });

    // The agent sees it, answers; the visitor reads the answer.
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    assert.deepEqual(ag.agent, { id: ag.agent.id, email: ANA.email, name: ANA.name, role: 'admin' });
    let r = await srv.api('GET', '/api/conversations', { cookie: ag.cookie });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversations.length, 1);
    const c = r.json.conversations[0];
    assert.equal(c.id, m.conversation_id);
    assert.equal(c.status, 'open');
    assert.equal(c.unread, 1);
    assert.deepEqual(c.visitor, { id: s.visitor.id, name: s.visitor.name }); // an agent's view: API.md, "visitor"
    assert.deepEqual(c.last_message, m);
    assert.equal(r.json.cursor, String(m.id));
    r = await srv.api('GET', `/api/conversations/${c.id}/messages?after=0`, { cookie: ag.cookie });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.messages, [m]);
    const reply = await agentSend(srv, ag, c.id, 'On its way!');
    assert.equal(reply.sender, 'agent');
    assert.equal(reply.agent_name, ANA.name);
    assert.equal(reply.conversation_id, c.id);
    r = await srv.api('POST', `/api/conversations/${c.id}/read`, { cookie: ag.cookie, csrf: ag.csrf, body: { up_to: m.id } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversation.unread, 0);
    res = await fetch(`${srv.base}/api/visitor/messages?after=${m.id}`, { headers: auth });
    assert.deepEqual((await res.json()).messages, [reply]);
    res = await fetch(`${srv.base}/api/visitor/read`, { method: 'POST', headers: auth, body: JSON.stringify({ up_to: reply.id }) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
    // A second visitor message stays in the same open conversation.
    const m2 = await visitorSend(srv, s.token, 'thanks');
    assert.equal(m2.conversation_id, c.id);
    r = await srv.api('GET', `/api/conversations/${c.id}`, { cookie: ag.cookie });
    assert.equal(r.json.conversation.unread, 1);
    // Resolved, it stays the visitor's one thread: their next message opens it again.
    r = await srv.api('POST', `/api/conversations/${c.id}/status`, { cookie: ag.cookie, csrf: ag.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversation.status, 'resolved');
    const m3 = await visitorSend(srv, s.token, 'one more question');
    assert.equal(m3.conversation_id, c.id, 'the same conversation after it was resolved');
    r = await srv.api('GET', `/api/conversations/${c.id}`, { cookie: ag.cookie });
    assert.equal(r.json.conversation.status, 'open');
  }),
);

test('after= semantics and paging', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await visitorSend(srv, v.token, `m${i}`));
    const ids = sent.map((m) => m.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids increase');
    const get = async (after) => {
      const r = await srv.api('GET', `/api/visitor/messages?after=${after}`, { token: v.token });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.more, false);
      return r.json.messages.map((m) => m.id);
    };
    assert.deepEqual(await get(0), ids);
    assert.deepEqual(await get(ids[1]), ids.slice(2), 'strictly greater than after');
    assert.deepEqual(await get(ids[4]), []);
    assert.deepEqual(await get(ids[4] + 1000), []);
    const r = await srv.api('GET', '/api/visitor/messages', { token: v.token });
    assert.equal(r.status, 200, 'after defaults to 0');
    assert.deepEqual(r.json.messages.map((m) => m.id), ids);
    const bad = await srv.api('GET', '/api/visitor/messages?after=abc', { token: v.token });
    assertError(bad, 400, ['bad_request'], 'after=abc');
  }),
);

test('more=true past 500 messages', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const N = 505;
    const first = await visitorSend(srv, v.token, 'n0');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    for (let i = 1; i < N; i++) await agentSend(srv, ag, first.conversation_id, `n${i}`);
    let r = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.equal(r.status, 200);
    assert.equal(r.json.messages.length, 500);
    assert.equal(r.json.more, true);
    const last = r.json.messages[499].id;
    r = await srv.api('GET', `/api/visitor/messages?after=${last}`, { token: v.token });
    assert.equal(r.json.messages.length, N - 500);
    assert.equal(r.json.more, false);
    assert.equal(r.json.messages[N - 501].body, `n${N - 1}`);
  }),
);

// ---------------------------------------------------------------------------------------------
// Push specifics

test('poll answers at once with {events, cursor} (curl)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    let r = await curl(['-s', '--max-time', '10', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/poll?after=0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms < 1500, `poll answered in ${r.ms} ms`);
    let j = JSON.parse(r.stdout);
    assert.match(j.eseq, /^\d+$/, `eseq, the newest ephemeral event's number: ${r.stdout}`);
    assert.deepEqual(j, { events: [], cursor: '0', eseq: j.eseq });
    const m = await visitorSend(srv, v.token, 'hello poll');
    r = await curl(['-s', '--max-time', '10', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/poll?after=0`]);
    assert.ok(r.ms < 1500, `poll answered in ${r.ms} ms`);
    j = JSON.parse(r.stdout);
    assert.equal(j.cursor, String(m.id));
    assert.deepEqual(msgs(j.events), [{ type: 'message', id: String(m.id), message: m }]);
    r = await curl(['-s', '--max-time', '10', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/poll?after=${m.id}`]);
    assert.ok(r.ms < 1500, `poll answered in ${r.ms} ms`);
    j = JSON.parse(r.stdout);
    assert.deepEqual(msgs(j.events), []);
    assert.equal(j.cursor, String(m.id));
    // No credentials at all: 401.
    r = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `${srv.base}/push/poll?after=0`]);
    assert.equal(r.stdout, '401');
  }),
);

test('longpoll holds until an agent replies (curl)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'waiting for an answer');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const lp = new CurlStream(['-s', '--max-time', '40', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/longpoll?after=${m.id}`]);
    env.defer(() => lp.close());
    await sleep(1000); // this test is about time: the request must still be pending after 1 s
    assert.equal(lp.exited, null, `longpoll answered early: ${lp.out}`);
    assert.equal(lp.out, '', 'nothing written while held');
    const t0 = Date.now();
    const reply = await agentSend(srv, ag, m.conversation_id, 'here is your answer');
    const ex = await Promise.race([lp.exit, sleep(3000).then(() => null)]);
    assert.ok(ex, 'longpoll answered within 3 s of the reply');
    assert.equal(ex.code, 0, lp.err);
    const dt = Date.now() - t0;
    assert.ok(dt < 2000, `answered ${dt} ms after the reply`);
    const j = JSON.parse(lp.out);
    assert.equal(j.cursor, String(reply.id));
    const ms = msgs(j.events);
    assert.equal(ms.length, 1, lp.out);
    assert.equal(ms[0].id, String(reply.id));
    assert.deepEqual(ms[0].message, reply);
  }),
);

// PROTOCOL.md, "Ephemeral events between requests".
test('poll and longpoll bring the typing and read events sent between two requests (eseq, curl)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'anyone typing?');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const get = async (transport, query) => {
      const r = await curl(['-s', '--max-time', '20', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/${transport}?${query}`]);
      const nl = r.stdout.lastIndexOf('\n');
      const status = Number(r.stdout.slice(nl + 1));
      const body = r.stdout.slice(0, nl);
      return { status, body, ms: r.ms, json: status === 200 ? JSON.parse(body) : null };
    };
    const ephemeral = (events) => events.filter((e) => e.type !== 'message').map((e) => `${e.type}:${e.typing ?? e.up_to}`);
    let r = await get('poll', `after=${m.id}`);
    assert.equal(r.status, 200, r.body);
    const e0 = r.json.eseq;
    // Sent while the visitor is between two requests.
    const typing = (on) => srv.api('POST', `/api/conversations/${m.conversation_id}/typing`, { cookie: ag.cookie, csrf: ag.csrf, body: { typing: on } });
    assert.equal((await typing(true)).status, 200);
    const reply = await agentSend(srv, ag, m.conversation_id, 'yes, me');
    assert.equal((await srv.api('POST', '/api/visitor/read', { token: v.token, body: { up_to: reply.id } })).status, 200);
    // The next poll has the message first, then the ephemeral events in the order they were sent.
    r = await get('poll', `after=${m.id}&eseq=${e0}`);
    assert.deepEqual(r.json.events.map((e) => e.type), ['message', 'typing', 'read'], r.body);
    assert.deepEqual(ephemeral(r.json.events), ['typing:true', `read:${reply.id}`]);
    assert.equal(r.json.cursor, String(reply.id));
    const e1 = r.json.eseq;
    assert.ok(BigInt(e1) > BigInt(e0), `eseq moved on: ${e0} -> ${e1}`);
    // Coming back with it: nothing twice. Without eseq: from now on only.
    r = await get('poll', `after=${reply.id}&eseq=${e1}`);
    assert.deepEqual(r.json.events, []);
    assert.equal(r.json.eseq, e1);
    r = await get('poll', `after=${reply.id}`);
    assert.deepEqual(r.json.events, []);
    // A long poll after a typing event sent between two requests answers at once.
    assert.equal((await typing(false)).status, 200);
    r = await get('longpoll', `after=${reply.id}&eseq=${e1}`);
    assert.ok(r.ms < 1500, `answered in ${r.ms} ms`);
    assert.deepEqual(ephemeral(r.json.events), ['typing:false'], r.body);
    // An eseq older than the window gets what it still holds; a bad one is a 400.
    r = await get('poll', `after=${reply.id}&eseq=0`);
    assert.deepEqual(ephemeral(r.json.events), ['typing:true', `read:${reply.id}`, 'typing:false'], r.body);
    r = await get('poll', `after=${reply.id}&eseq=x`);
    assert.equal(r.status, 400, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'bad_request');
  }),
);

test('longpoll with timeout=2 answers with no events after ~2 s (curl)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'hello');
    const r = await curl(['-s', '--max-time', '20', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/longpoll?after=${m.id}&timeout=2`]);
    assert.equal(r.code, 0, r.stderr);
    const [body, code] = [r.stdout.slice(0, r.stdout.lastIndexOf('\n')), r.stdout.slice(r.stdout.lastIndexOf('\n') + 1)];
    assert.equal(code, '200');
    assert.ok(r.ms >= 1700 && r.ms <= 4500, `answered after ${r.ms} ms, expected ~2000`);
    const j = JSON.parse(body);
    assert.deepEqual(msgs(j.events), []);
    assert.equal(j.cursor, String(m.id));
    // Pending history answers at once.
    const r2 = await curl(['-s', '--max-time', '20', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/longpoll?after=0&timeout=10`]);
    assert.ok(r2.ms < 1500, `longpoll with history answered in ${r2.ms} ms`);
    assert.deepEqual(msgs(JSON.parse(r2.stdout).events).map((e) => e.message.id), [m.id]);
    // Out-of-range timeout.
    const r3 = await srv.api('GET', `/push/longpoll?after=0&timeout=999`, { token: v.token });
    assert.ok(r3.status === 400 || r3.status === 200, `timeout=999: 400 or clamped, got ${r3.status}`);
  }),
);

test('iframe stream: padding, then <script>parent.kefuPush(...) per event (curl)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const nasty = '</script><script>alert(1)</script><!-- \u2028\u2029 "quotes" \\ backslash';
    const m = await visitorSend(srv, v.token, nasty);
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const tk = await srv.api('POST', '/api/visitor/push-ticket', { token: v.token });
    assert.equal(tk.status, 201, tk.text);
    assert.equal(tk.json.expires_in, 60);
    assert.ok(!tk.json.ticket.includes(v.token), 'the ticket is not the token');
    const s = new CurlStream(['-sN', '-i', '--max-time', '30', `${srv.base}/push/iframe?after=0&ticket=${encodeURIComponent(tk.json.ticket)}`]);
    env.defer(() => s.close());
    const headEnd = await s.until((o) => { const i = o.indexOf('\r\n\r\n'); return i >= 0 ? i : false; }, 5000, 'response head');
    const head = s.out.slice(0, headEnd);
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /\r\ncontent-type: text\/html/i);
    assert.match(head, /\r\ntransfer-encoding: chunked/i);
    const body = () => s.out.slice(headEnd + 4);
    // The heartbeat comes with the padding; the replayed message may arrive in a later read.
    await s.until(() => msgs(parseIframeEvents(body())).length > 0, 5000, 'the replayed message');
    const first = body().indexOf('<script>parent.kefuPush(');
    assert.ok(first >= 4096, `at least 4096 bytes of padding before the first event, got ${first}`);
    let evs = parseIframeEvents(body());
    assert.deepEqual(msgs(evs).map((e) => e.message.body), [nasty], 'the </script> in the body is escaped and round-trips');
    const between = body().slice(first);
    assert.equal((between.match(/<\/script>/gi) || []).length, evs.length, 'exactly one </script> per event: nothing broke out');
    // Live: an agent reply arrives on the open stream.
    const reply = await agentSend(srv, ag, m.conversation_id, 'live on the iframe');
    await s.until(() => bodies(parseIframeEvents(body())).includes(reply.body), 5000, 'the live reply');
    evs = parseIframeEvents(body());
    assert.deepEqual(msgs(evs).map((e) => e.id), [String(m.id), String(reply.id)]);
    assert.equal(s.exited, null, 'the stream stays open');
    // Resume from the cursor: only newer.
    const tk2 = await srv.api('POST', '/api/visitor/push-ticket', { token: v.token });
    const s2 = new CurlStream(['-sN', '--max-time', '30', `${srv.base}/push/iframe?after=${m.id}&ticket=${encodeURIComponent(tk2.json.ticket)}`]);
    env.defer(() => s2.close());
    await s2.until((o) => msgs(parseIframeEvents(o)).length >= 1, 5000, 'resumed event');
    assert.ok(s2.out.indexOf('<script>parent.kefuPush(') >= 4096, 'padding on the resumed stream');
    assert.deepEqual(msgs(parseIframeEvents(s2.out)).map((e) => e.id), [String(reply.id)]);
    // An empty stream still sends its padding at once.
    const v2 = await newVisitor(srv);
    const tk3 = await srv.api('POST', '/api/visitor/push-ticket', { token: v2.token });
    const s3 = new CurlStream(['-sN', '--max-time', '30', `${srv.base}/push/iframe?after=0&ticket=${encodeURIComponent(tk3.json.ticket)}`]);
    env.defer(() => s3.close());
    await s3.until((o) => o.length >= 4096, 3000, '4 KiB of padding on an empty stream');
    assert.equal(parseIframeEvents(s3.out).filter((e) => e.type === 'message').length, 0);
    // No credentials: 401.
    const r = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${srv.base}/push/iframe?after=0`]);
    assert.equal(r.stdout, '401');
  }),
);

test('push tickets: forged, expired-looking or another kind are rejected with 401', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    await visitorSend(srv, v.token, 'x');
    const tk = await srv.api('POST', '/api/visitor/push-ticket', { token: v.token });
    assert.equal(tk.status, 201, tk.text);
    const ticket = tk.json.ticket;
    const ok = await srv.api('GET', `/push/poll?after=0&ticket=${encodeURIComponent(ticket)}`);
    assert.equal(ok.status, 200, `a valid ticket works: ${ok.text}`);
    assert.equal(msgs(ok.json.events).length, 1);
    const parts = ticket.split('.');
    const flip = (s) => s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
    const forged = [
      flip(ticket), // signature changed
      parts.length === 4 ? [parts[0], String(Number(parts[1]) + 1), parts[2], parts[3]].join('.') : ticket + 'x', // other subject
      parts.length === 4 ? [parts[0], parts[1], String(Date.now() - 1000), parts[3]].join('.') : 'v.1.1.AAAA', // expired, same signature
      parts.length === 4 ? [parts[0], parts[1], String(Date.now() + 3600e3), parts[3]].join('.') : 'v.1.99999999999999.AAAA', // extended
      parts.length === 4 ? ['a', parts[1], parts[2], parts[3]].join('.') : 'a.1.1.AAAA', // visitor ticket as agent ticket
      `v.${v.visitor.id}.${Date.now() - 1000}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`,
      'garbage',
      '',
    ];
    for (const f of forged) {
      const r = await srv.api('GET', `/push/poll?after=0&ticket=${encodeURIComponent(f)}`);
      assertError(r, 401, 'unauthorized', `forged ticket ${JSON.stringify(f)}`);
    }
    const r = await curl(['-s', '-w', '\n%{http_code}', '--max-time', '5', `${srv.base}/push/iframe?after=0&ticket=${encodeURIComponent(flip(ticket))}`]);
    assert.ok(r.stdout.endsWith('\n401'), `iframe with a forged ticket: ${r.stdout.slice(-200)}`);
    // A ticket is not a bearer token for the API.
    const b = await srv.api('GET', '/api/visitor/messages?after=0', { token: ticket });
    assert.equal(b.status, 401, 'ticket as bearer on the API');
  }),
);

// ---------------------------------------------------------------------------------------------
// Agent auth and CSRF

test('agent login, cookie attributes, CSRF, logout', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    let r = await srv.api('POST', '/api/agent/login', { body: { email: ANA.email, password: 'wrong' } });
    assertError(r, 401, 'unauthorized', 'wrong password');
    assert.equal(r.headers['set-cookie'], undefined, 'no cookie on a failed login');
    r = await srv.api('POST', '/api/agent/login', { body: { email: 'nobody@example.com', password: 'x' } });
    assertError(r, 401, 'unauthorized', 'unknown e-mail');

    const ag = await agentLogin(srv, ANA.email, ANA.password);
    assert.match(ag.setCookie, /;\s*HttpOnly/i, `HttpOnly: ${ag.setCookie}`);
    assert.match(ag.setCookie, /;\s*SameSite=Strict/i, `SameSite=Strict: ${ag.setCookie}`);
    assert.match(ag.setCookie, /;\s*Path=\//i, `Path=/: ${ag.setCookie}`);
    assert.ok(ag.cookie.length > 'kefu_session='.length + 30, 'a long random session id');

    r = await srv.api('GET', '/api/agent/me', { cookie: ag.cookie });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.email, ANA.email);
    assert.equal(r.json.csrf, ag.csrf, '/me returns the session csrf');

    for (const p of ['/api/agent/me', '/api/conversations', '/api/conversations/1', '/api/conversations/1/messages?after=0']) {
      assertError(await srv.api('GET', p), 401, 'unauthorized', `GET ${p} without cookie`);
      assertError(await srv.api('GET', p, { cookie: 'kefu_session=' + 'A'.repeat(43) }), 401, 'unauthorized', `GET ${p} with a bogus cookie`);
    }
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'hi');
    const conv = m.conversation_id;
    for (const [p, body] of [[`/api/conversations/${conv}/messages`, { body: 'x' }], [`/api/conversations/${conv}/read`, { up_to: m.id }], [`/api/conversations/${conv}/status`, { status: 'resolved' }], ['/api/agent/push-ticket', undefined], ['/api/agent/logout', undefined]]) {
      assertError(await srv.api('POST', p, { cookie: ag.cookie, body }), 403, 'csrf', `POST ${p} without X-CSRF-Token`);
      assertError(await srv.api('POST', p, { cookie: ag.cookie, csrf: ag.csrf.slice(0, -1) + (ag.csrf.endsWith('a') ? 'b' : 'a'), body }), 403, 'csrf', `POST ${p} with a wrong X-CSRF-Token`);
      assertError(await srv.api('POST', p, { body, csrf: ag.csrf }), 401, 'unauthorized', `POST ${p} with a CSRF token but no cookie`);
    }
    // Nothing of it happened.
    r = await srv.api('GET', `/api/conversations/${conv}`, { cookie: ag.cookie });
    assert.equal(r.json.conversation.status, 'open');
    assert.equal(r.json.conversation.unread, 1);

    // A second agent logs in independently; logout ends only that session.
    const bo = await agentLogin(srv, BO.email, BO.password);
    assert.equal(bo.agent.role, 'agent');
    assert.notEqual(bo.cookie, ag.cookie);
    r = await srv.api('POST', '/api/agent/logout', { cookie: ag.cookie, csrf: ag.csrf });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true });
    const cleared = (r.headers['set-cookie'] || []).find((c) => c.startsWith('kefu_session='));
    assert.ok(cleared && /(Max-Age=0|Expires=Thu, 01 Jan 1970)/i.test(cleared), `logout clears the cookie: ${cleared}`);
    assertError(await srv.api('GET', '/api/agent/me', { cookie: ag.cookie }), 401, 'unauthorized', 'old cookie after logout');
    r = await srv.api('GET', '/api/agent/me', { cookie: bo.cookie });
    assert.equal(r.status, 200, 'the other session lives on');

    // Sessions survive a restart.
    await srv.restart();
    r = await srv.api('GET', '/api/agent/me', { cookie: bo.cookie });
    assert.equal(r.status, 200, `session after restart: ${r.text}`);
    r = await srv.api('GET', '/api/visitor/session', { token: v.token });
    assert.equal(r.status, 200, `visitor token after restart: ${r.text}`);
  }),
);

test("a visitor's bearer is not an agent credential; visitors cannot read each other", { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const a = await newVisitor(srv, 'A');
    const b = await newVisitor(srv, 'B');
    const ma = await visitorSend(srv, a.token, 'secret of A');
    const mb = await visitorSend(srv, b.token, 'secret of B');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const ra = await agentSend(srv, ag, ma.conversation_id, 'answer for A');

    for (const [m, p, body] of [
      ['GET', '/api/conversations'],
      ['GET', '/api/agent/me'],
      ['GET', `/api/conversations/${ma.conversation_id}`],
      ['GET', `/api/conversations/${ma.conversation_id}/messages?after=0`],
      ['POST', `/api/conversations/${ma.conversation_id}/messages`, { body: 'I am the agent now' }],
      ['POST', `/api/conversations/${mb.conversation_id}/status`, { status: 'resolved' }],
      ['POST', '/api/agent/push-ticket'],
    ]) {
      const r = await srv.api(m, p, { token: b.token, body });
      assert.ok(r.status === 401 || r.status === 403, `${m} ${p} with a visitor bearer: expected 401/403, got ${r.status} ${r.text}`);
      assertError(r, r.status, null, `${m} ${p} with a visitor bearer`);
    }
    // A visitor cannot post into a conversation that is not theirs and does not see A's messages.
    let r = await srv.api('GET', '/api/visitor/messages?after=0', { token: b.token });
    assert.deepEqual(r.json.messages.map((x) => x.id), [mb.id]);
    r = await srv.api('GET', '/push/poll?after=0', { token: b.token });
    assert.deepEqual(msgs(r.json.events).map((e) => e.message.id), [mb.id]);
    r = await srv.api('GET', '/push/longpoll?after=0&timeout=1', { token: b.token });
    assert.deepEqual(msgs(r.json.events).map((e) => e.message.id), [mb.id]);
    // A message body with a conversation_id is ignored: it lands in B's own conversation.
    r = await srv.api('POST', '/api/visitor/messages', { token: b.token, body: { body: 'sneaky', conversation_id: ma.conversation_id } });
    if (r.status === 201) assert.equal(r.json.message.conversation_id, mb.conversation_id, 'visitor cannot choose the conversation');
    r = await srv.api('GET', '/api/visitor/messages?after=0', { token: a.token });
    assert.deepEqual(r.json.messages.map((x) => x.body), ['secret of A', 'answer for A']);
    assert.equal(ra.visitor_id, a.visitor.id);
    // Identity comes from the token, never from a client-set cookie or header.
    r = await srv.api('GET', '/api/conversations', { headers: { Cookie: 'username=admin; kefu_role=admin' } });
    assert.equal(r.status, 401);
    // And the other way round: an admin's API token (docs/API.md, "API tokens") is no visitor's.
    const made = await srv.api('POST', '/api/tokens', { cookie: ag.cookie, csrf: ag.csrf, body: { name: 'ops', scope: 'admin' } });
    assert.equal(made.status, 201, made.text);
    const apiToken = made.json.token.token;
    assert.equal((await srv.api('GET', '/api/conversations', { token: apiToken })).status, 200, 'the API token works where it belongs');
    for (const [m, p, body] of [
      ['GET', '/api/visitor/messages?after=0'],
      ['GET', '/api/visitor/session'],
      ['POST', '/api/visitor/messages', { body: 'as a visitor' }],
      ['POST', '/api/visitor/push-ticket'],
      ['GET', '/push/poll?after=0'],
    ]) {
      r = await srv.api(m, p, { token: apiToken, body });
      assertError(r, 401, 'unauthorized', `${m} ${p} with an API token`);
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// Input validation and limits

test('validation: bad JSON 400, 64 KiB 413, length 422, 404, 405, 415', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const tok = v.token;

    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: '{"body": "x"' }), 400, ['bad_json', 'bad_request'], 'truncated JSON');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: 'not json' }), 400, ['bad_json', 'bad_request'], 'not JSON');
    assertError(await srv.api('POST', '/api/agent/login', { body: '{"email":' }), 400, ['bad_json', 'bad_request'], 'bad JSON on login');
    const arr = await srv.api('POST', '/api/visitor/messages', { token: tok, body: '["x"]' });
    assert.ok(arr.status === 400 || arr.status === 422, `a JSON array body: 400/422, got ${arr.status}`);
    const notStr = await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: 42 } });
    assert.ok(notStr.status === 400 || notStr.status === 422, `a non-string body: 400/422, got ${notStr.status}`);

    const big = JSON.stringify({ body: 'x'.repeat(70 * 1024) });
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: big }), 413, 'too_large', '70 KiB body');
    const huge = await raw(srv.port, `POST /api/visitor/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{"body":`);
    assert.equal(huge.status, 413, `Content-Length 1e9 without the body: ${huge.text.slice(0, 300)}`);

    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: 'a'.repeat(4001) } }), 422, 'invalid', '4001 chars');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: '' } }), 422, 'invalid', 'empty');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: ' \n\t ' } }), 422, 'invalid', 'whitespace only');
    const missing = await srv.api('POST', '/api/visitor/messages', { token: tok, body: {} });
    assert.ok(missing.status === 400 || missing.status === 422, `missing body field: 400/422, got ${missing.status}`);
    let r = await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: 'a'.repeat(4000) } });
    assert.equal(r.status, 201, '4000 chars is fine');
    r = await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: '😀'.repeat(4000) } });
    assert.equal(r.status, 201, `4000 code points (16000 bytes) is fine: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.message.body, '😀'.repeat(4000));
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: { body: '😀'.repeat(4001) } }), 422, 'invalid', '4001 code points');
    const conv = r.json.message.conversation_id;
    assertError(await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ag.cookie, csrf: ag.csrf, body: { body: 'b'.repeat(4001) } }), 422, 'invalid', 'agent 4001 chars');
    assertError(await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ag.cookie, csrf: ag.csrf, body: { body: '   ' } }), 422, 'invalid', 'agent empty');
    assertError(await srv.api('POST', `/api/conversations/${conv}/status`, { cookie: ag.cookie, csrf: ag.csrf, body: { status: 'deleted' } }), 400, 'bad_request', 'bad status');
    assertError(await srv.api('POST', '/api/visitor/session', { body: { name: 'n'.repeat(81) } }), 422, 'invalid', 'name of 81 chars');

    assertError(await srv.api('GET', '/api/conversations/999999', { cookie: ag.cookie }), 404, 'not_found', 'unknown conversation');
    assertError(await srv.api('GET', '/api/conversations/999999/messages?after=0', { cookie: ag.cookie }), 404, 'not_found', 'unknown conversation messages');
    assertError(await srv.api('POST', '/api/conversations/999999/messages', { cookie: ag.cookie, csrf: ag.csrf, body: { body: 'x' } }), 404, 'not_found', 'post to unknown conversation');
    assertError(await srv.api('POST', '/api/conversations/999999/read', { cookie: ag.cookie, csrf: ag.csrf, body: { up_to: 1 } }), 404, 'not_found', 'read unknown conversation');
    // A read mark names a message of the conversation: past its newest one it is refused (found by fuzz_ws_actions).
    assertError(await srv.api('POST', `/api/conversations/${conv}/read`, { cookie: ag.cookie, csrf: ag.csrf, body: { up_to: 9007199254740991 } }), 404, 'not_found', 'agent read past the newest message');
    assertError(await srv.api('GET', '/api/no-such-thing'), 404, 'not_found', 'unknown API path');
    assertError(await srv.api('PUT', '/api/visitor/messages', { token: tok, body: { body: 'x' } }), 405, 'method_not_allowed', 'PUT on a GET/POST route');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: tok, body: '{"body":"x"}', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type', 'text/plain body');
    r = await srv.api('POST', '/api/visitor/messages', { token: tok, body: '{"body":"charset ok"}', headers: { 'Content-Type': 'application/json; charset=utf-8' } });
    assert.equal(r.status, 201, 'application/json; charset=utf-8 is JSON');
    const uri = await raw(srv.port, `GET /push/poll?after=0&x=${'a'.repeat(10000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(uri.status, 414, `10 KB request line: ${uri.head}`);
  }),
);

test('a 20 KiB header gets 431 and the server keeps serving', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    // A longpoll held across the bad request must be unaffected.
    const held = srv.api('GET', '/push/longpoll?after=0&timeout=5', { token: v.token });
    const r = await raw(srv.port, `GET /api/visitor/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${v.token}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    assert.equal(r.status, 431, `20 KiB header: ${r.head}`);
    const j = JSON.parse(r.body);
    assert.equal(j.error.code, 'headers_too_large');
    const many = await raw(srv.port, `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 200 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}\r\n`);
    assert.equal(many.status, 431, `200 header fields: ${many.head}`);
    const ok = await srv.api('GET', '/api/visitor/session', { token: v.token });
    assert.equal(ok.status, 200, 'the server still serves');
    const m = await visitorSend(srv, v.token, 'still alive');
    const h = await held;
    assert.equal(h.status, 200);
    assert.deepEqual(msgs(h.json.events).map((e) => e.message.id), [m.id], 'the held longpoll got the message');
  }),
);

test('a chunked request body gets 411; malformed requests do not hurt the server', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const body = '{"body":"chunked"}';
    const chunked = `POST /api/visitor/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${v.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    let r = await raw(srv.port, chunked);
    assert.equal(r.status, 411, `chunked body: ${r.head}`);
    assert.equal(JSON.parse(r.body).error.code, 'length_required');
    r = await raw(srv.port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello');
    assert.equal(r.status, 400, `duplicate Content-Length: ${r.head}`);
    r = await raw(srv.port, 'GARBAGE\r\n\r\n');
    assert.equal(r.status, 400, `garbage request line: ${r.head}`);
    r = await raw(srv.port, 'GET / HTTP/2.0\r\nHost: x\r\n\r\n');
    assert.equal(r.status, 505, `HTTP/2.0 request line: ${r.head}`);
    // A client that sends half a request and vanishes.
    await raw(srv.port, 'POST /api/visitor/messages HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"bo', { timeout: 300 });
    const ok = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json.messages, [], 'the chunked message was not stored');
    // Keep-alive: two requests on one connection.
    const two = await raw(srv.port, `GET /api/visitor/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${v.token}\r\n\r\nGET /api/visitor/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${v.token}\r\nConnection: close\r\n\r\n`, { timeout: 5000, untilClose: true });
    assert.equal((two.text.match(/HTTP\/1\.1 200 /g) || []).length, 2, `pipelined keep-alive requests: ${two.text.slice(0, 600)}`);
  }),
);

test('SQL-injection-looking text is stored verbatim', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const name = "Robert'); DROP TABLE visitors;--";
    const v = await newVisitor(srv, name);
    assert.equal(v.visitor.name, name);
    const texts = [
      "'; DROP TABLE messages; --",
      "1' OR '1'='1",
      '" OR ""="',
      "x'); INSERT INTO agents(email) VALUES('evil@x'); --",
      '%_\\%\\_ LIKE \'%\' \u0000 after NUL?'.replace('\u0000', ''),
      'UNION SELECT password_hash FROM agents',
    ];
    const sent = [];
    for (const s of texts) sent.push(await visitorSend(srv, v.token, s));
    const r = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.deepEqual(r.json.messages.map((m) => m.body), texts);
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const c = await srv.api('GET', '/api/conversations', { cookie: ag.cookie });
    assert.equal(c.json.conversations.length, 1);
    assert.equal(c.json.conversations[0].visitor.name, name);
    assert.equal(c.json.conversations[0].last_message.body, texts.at(-1));
    const bad = await srv.api('POST', '/api/agent/login', { body: { email: "' OR 1=1 --", password: "' OR '1'='1" } });
    assert.equal(bad.status, 401);
    const cm = await srv.api('GET', `/api/conversations/${sent[0].conversation_id}%20OR%201=1`, { cookie: ag.cookie });
    assert.ok(cm.status === 404 || cm.status === 400, `conversation id with SQL: 404/400, got ${cm.status}`);
    // And it all survives a restart.
    await srv.restart();
    const r2 = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.deepEqual(r2.json.messages.map((m) => m.body), texts);
  }),
);

// ---------------------------------------------------------------------------------------------
// The command line

test('cli: user add (duplicate fails), first start creates an admin, SIGTERM exits 0', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ start: false });
    const dup = addAgent(srv.dataDir, ANA);
    assert.notEqual(dup.status, 0, 'adding an existing e-mail fails');
    assert.ok((dup.stdout + dup.stderr).trim().length > 0, 'with a message');
    await srv.start();
    assert.ok(!/password/i.test(srv.log), `no admin is created when agents exist:\n${srv.log}`);
    await agentLogin(srv, BO.email, BO.password);

    // A fresh data dir: the first start creates an admin and prints its e-mail and password.
    const fresh = new Kefu({ dataDir: tmpDir(), name: 'kefu-fresh' });
    env.servers.push(fresh);
    await fresh.start();
    const out = fresh.log;
    const email = (/[\w.+-]+@[\w.-]+\.\w+|[\w.+-]+@[\w-]+/.exec(out) || [])[0];
    assert.ok(email, `an admin e-mail printed:\n${out}`);
    const candidates = new Set();
    const lines = out.split('\n');
    lines.forEach((line, i) => {
      if (!/password/i.test(line)) return;
      for (const l of [line, lines[i + 1] || '']) {
        for (let tokn of l.split(/[\s"',;]+/)) {
          tokn = tokn.replace(/^.*?(password)?[:=]/i, '');
          if (tokn.length >= 8 && !/password|@|listening|http/i.test(tokn)) candidates.add(tokn);
        }
      }
    });
    let logged = null;
    for (const pw of candidates) {
      const r = await fresh.api('POST', '/api/agent/login', { body: { email, password: pw } });
      if (r.status === 200) {
        logged = r.json.agent;
        break;
      }
    }
    assert.ok(logged, `log in with the printed admin credentials:\n${out}`);
    assert.equal(logged.role, 'admin');
    const before = fresh.log.length;
    await fresh.stop('SIGINT'); // SIGINT: graceful too, exit 0
    await fresh.start();
    assert.ok(!/password/i.test(fresh.log.slice(before)), 'no second admin on the next start');
  }),
);

test('SIGTERM with open longpoll and iframe streams: exit 0 within 10 s, resume after restart', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'before');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    // The agent's first: the first agent to come online is news for visitors ("availability"),
    // which would answer a visitor's long poll opened before it.
    const alp = new CurlStream(['-s', '--max-time', '60', '-H', `Cookie: ${ag.cookie}`, `${srv.base}/push/longpoll?after=${m.id}&timeout=55`]);
    await sleep(300);
    const lp = new CurlStream(['-s', '--max-time', '60', '-H', `Authorization: Bearer ${v.token}`, `${srv.base}/push/longpoll?after=${m.id}&timeout=55`]);
    const tk = await srv.api('POST', '/api/visitor/push-ticket', { token: v.token });
    const ifr = new CurlStream(['-sN', '--max-time', '60', `${srv.base}/push/iframe?after=${m.id}&ticket=${encodeURIComponent(tk.json.ticket)}`]);
    env.defer(() => Promise.all([lp.close(), ifr.close(), alp.close()]));
    await ifr.until((o) => o.length >= 4096, 5000, 'iframe padding');
    await sleep(300);
    assert.equal(lp.exited, null);
    const t0 = Date.now();
    await srv.stop(); // asserts exit 0 within 10 s
    const stopMs = Date.now() - t0;
    assert.ok(stopMs < 10000, `stopped in ${stopMs} ms`);
    await Promise.race([Promise.all([lp.exit, ifr.exit, alp.exit]), sleep(5000)]);
    assert.ok(lp.exited && ifr.exited && alp.exited, 'held connections were closed');
    await srv.start();
    const r = await agentSend(srv, ag, m.conversation_id, 'after restart');
    const res = await collect(srv, 'longpoll', { token: v.token }, String(m.id), hasBodies([r.body]));
    assert.deepEqual(msgs(res.events).map((e) => e.message.id), [r.id]);
  }),
);

// ---------------------------------------------------------------------------------------------
// Live-only events and the iframe's 1 MiB limit

test('live events: conversation events for agents (to the visitor only its own status), read receipts both ways (iframe streams)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv, 'Reader');
    const as = new CurlStream(['-sN', '--max-time', '50', '-H', `Cookie: ${ag.cookie}`, `${srv.base}/push/iframe?after=0`]);
    env.defer(() => as.close());
    await as.until((o) => o.length >= 4096, 5000, 'agent stream padding');
    const m1 = await visitorSend(srv, v.token, 'is this thing on?');
    const conv = m1.conversation_id;
    const aev = () => parseIframeEvents(as.out);
    await as.until(() => aev().some((e) => e.type === 'message' && e.message.id === m1.id), 5000, 'message on the agent stream');

    const tk = await srv.api('POST', '/api/visitor/push-ticket', { token: v.token });
    const vs = new CurlStream(['-sN', '--max-time', '50', `${srv.base}/push/iframe?after=0&ticket=${encodeURIComponent(tk.json.ticket)}`]);
    env.defer(() => vs.close());
    const vev = () => parseIframeEvents(vs.out);
    await vs.until(() => vev().some((e) => e.type === 'message'), 5000, 'visitor replay');

    // The agent reads: the visitor gets a read receipt, agents a conversation event with unread 0.
    let r = await srv.api('POST', `/api/conversations/${conv}/read`, { cookie: ag.cookie, csrf: ag.csrf, body: { up_to: m1.id } });
    assert.equal(r.status, 200, r.text);
    await vs.until(() => vev().some((e) => e.type === 'read' && e.reader === 'agent'), 5000, 'read receipt on the visitor stream');
    const rv = vev().find((e) => e.type === 'read');
    assert.equal(Number(rv.conversation_id), conv);
    assert.equal(Number(rv.up_to), m1.id);
    await as.until(() => aev().some((e) => e.type === 'conversation' && e.conversation.id === conv && e.conversation.unread === 0), 5000, 'conversation event with unread 0');
    const ce = aev().find((e) => e.type === 'conversation');
    assert.equal(ce.id, undefined, 'conversation events carry no id');
    assert.equal(ce.conversation.status, 'open');

    // The visitor reads the agent's reply: the agent gets the receipt.
    const reply = await agentSend(srv, ag, conv, 'yes it is');
    await vs.until(() => vev().some((e) => e.type === 'message' && e.message.id === reply.id), 5000, 'reply on the visitor stream');
    r = await srv.api('POST', '/api/visitor/read', { token: v.token, body: { up_to: reply.id } });
    assert.equal(r.status, 200, r.text);
    await as.until(() => aev().some((e) => e.type === 'read' && e.reader === 'visitor' && Number(e.up_to) === reply.id), 5000, 'visitor read receipt on the agent stream');

    // Resolving: agents see the whole conversation, the visitor its id, status and read mark only.
    r = await srv.api('POST', `/api/conversations/${conv}/status`, { cookie: ag.cookie, csrf: ag.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    await as.until(() => aev().some((e) => e.type === 'conversation' && e.conversation.status === 'resolved'), 5000, 'resolved conversation event');
    await vs.until(() => vev().some((e) => e.type === 'conversation'), 5000, 'the visitor told it is resolved');
    const told = vev().filter((e) => e.type === 'conversation').map((e) => e.conversation);
    assert.equal(told.length, 1);
    assert.deepEqual(Object.keys(told[0]).sort(), ['id', 'rating', 'seen_up_to', 'status'], 'no assignee, no agents\' details (rating is the visitor\'s own)');
    assert.deepEqual([told[0].id, told[0].status, typeof told[0].seen_up_to], [conv, 'resolved', 'number']);

    // Another visitor's activity never reaches this visitor's stream; nor do the agents' conversation events.
    const other = await newVisitor(srv);
    const om = await visitorSend(srv, other.token, 'someone else');
    await as.until(() => aev().some((e) => e.type === 'message' && e.message.id === om.id), 5000, 'other visitor message on the agent stream');
    const bad = vev().filter((e) => (e.type === 'conversation' && (e.conversation.id !== conv || Object.keys(e.conversation).length !== 4)) || (e.type === 'message' && e.message.conversation_id !== conv) || (e.type === 'read' && Number(e.conversation_id) !== conv));
    assert.deepEqual(bad, [], 'visitor stream: only its own conversation, and of conversation events only its status, read mark and own rating');
  }),
);

test('agents get a conversation event when a conversation opens (iframe stream)', { timeout: 30000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const as = new CurlStream(['-sN', '--max-time', '25', '-H', `Cookie: ${ag.cookie}`, `${srv.base}/push/iframe?after=0`]);
    env.defer(() => as.close());
    await as.until((o) => o.length >= 4096, 5000, 'agent stream padding');
    const v = await newVisitor(srv);
    const m1 = await visitorSend(srv, v.token, 'a new conversation');
    await as.until(() => parseIframeEvents(as.out).some((e) => e.type === 'message' && e.message.id === m1.id), 5000, 'the message');
    await as.until(() => parseIframeEvents(as.out).some((e) => e.type === 'conversation' && e.conversation.id === m1.conversation_id), 5000,
      'a {"type":"conversation"} event for the opened conversation (API.md: "a conversation changed (opened, read mark, status)")');
  }),
);

// Reads iframe streams from `cursor`, reopening after each reconnect event, until `count` message
// events arrived. Returns {ids, reconnects, sizes}.
async function readAllIframe(env, srv, token, cursor, count, { onOpen } = {}) {
  const got = [];
  const sizes = [];
  let reconnects = 0;
  for (let streams = 0; got.length < count && streams < 10; streams++) {
    const tk = await srv.api('POST', '/api/visitor/push-ticket', { token });
    const s = new CurlStream(['-sN', '--max-time', '60', `${srv.base}/push/iframe?after=${cursor}&ticket=${encodeURIComponent(tk.json.ticket)}`]);
    env.defer(() => s.close());
    if (onOpen) {
      await s.until((o) => o.length >= 4096, 5000, 'padding');
      const f = onOpen;
      onOpen = null;
      await f();
    }
    await s.until(() => {
      const evs = parseIframeEvents(s.out);
      // A document past 1 MiB ends with a reconnect event, which may arrive a moment after the
      // last message: wait for it then.
      return evs.some((e) => e.type === 'reconnect') || (msgs(evs).length + got.length >= count && s.out.length < 1024 * 1024);
    }, 30000, `a reconnect event or all ${count} messages`);
    const evs = parseIframeEvents(s.out);
    const ri = evs.findIndex((e) => e.type === 'reconnect');
    sizes.push(s.out.length);
    if (ri >= 0) {
      reconnects++;
      assert.ok(s.out.length >= 1024 * 1024 - 8192, `reconnect only after ~1 MiB, got it after ${s.out.length} bytes`);
      assert.equal(ri, evs.length - 1, 'nothing after the reconnect event');
      const ex = await Promise.race([s.exit, sleep(5000).then(() => null)]);
      assert.ok(ex, 'the response ends after the reconnect event');
    }
    await s.close();
    for (const e of msgs(evs)) got.push(e.message.id);
    cursor = lastMessageId(evs, cursor);
  }
  return { ids: got, reconnects, sizes };
}

const BIG = (i) => `${String(i).padStart(4, '0')} ` + 'z'.repeat(3990);

test('iframe stream: live events past 1 MiB end it with a reconnect event; resuming delivers the rest once', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const first = await visitorSend(srv, v.token, 'start');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const N = 320; // 320 x ~4 KB of JSON > 1 MiB
    const ids = [];
    const r = await readAllIframe(env, srv, v.token, String(first.id), N, {
      onOpen: async () => {
        for (let i = 0; i < N; i++) ids.push((await agentSend(srv, ag, first.conversation_id, BIG(i))).id);
      },
    });
    assert.ok(r.reconnects >= 1, `a reconnect event after 1 MiB of live events (stream sizes ${r.sizes})`);
    for (const size of r.sizes) assert.ok(size <= 1024 * 1024 + 64 * 1024, `a stream stops soon after 1 MiB: ${size} bytes`);
    assert.deepEqual(r.ids, ids, 'every message once, in order, across the reopened streams');
  }),
);

test('iframe stream: a replay of more than 1 MiB of history also ends with a reconnect event', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const first = await visitorSend(srv, v.token, 'start');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const N = 320;
    const ids = [first.id];
    for (let i = 0; i < N; i++) ids.push((await agentSend(srv, ag, first.conversation_id, BIG(i))).id);
    const r = await readAllIframe(env, srv, v.token, '0', ids.length);
    assert.deepEqual(r.ids, ids, 'every message once, in order');
    assert.ok(r.reconnects >= 1, `API.md: "a reconnect event after 1 MiB, after which the response ends" — stream sizes ${r.sizes} bytes, no reconnect`);
    for (const size of r.sizes) assert.ok(size <= 1024 * 1024 + 64 * 1024, `a replayed document also stops soon after 1 MiB: ${size} bytes`);
  }),
);

test('failed logins are limited per account (429 with Retry-After); other accounts are unaffected', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();

    for (let i = 0; i < 5; i++) {
      const r = await srv.api('POST', '/api/agent/login', { body: { email: ANA.email, password: `guess ${i}` } });
      assertError(r, 401, 'unauthorized', `failed login ${i + 1} of 5`);
    }
    // The sixth try is refused before the password is even checked: the right one too.
    for (const password of ['guess 6', ANA.password]) {
      const r = await srv.api('POST', '/api/agent/login', { body: { email: ANA.email.toUpperCase(), password } });
      assertError(r, 429, 'rate_limited', 'login past the limit');
      const retry = Number(r.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 15 * 60, `Retry-After in seconds: ${r.headers['retry-after']}`);
    }
    // Another account from the same address still logs in, and a success resets its own count.
    await agentLogin(srv, BO.email, BO.password);
    const r = await srv.api('POST', '/api/agent/login', { body: { email: BO.email, password: 'wrong' } });
    assertError(r, 401, 'unauthorized', 'a wrong password for another account is still just 401');
  }),
);
