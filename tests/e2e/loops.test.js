'use strict';
// loops.test.js: one kefu serving on two event loops (--loops 2). Connections land on both
// (SO_REUSEPORT; /metrics says which loop answered, kefu_loop); a visitor whose connections are
// all on one loop and an agent whose connections are all on the other talk over SSE: each
// message reaches the other side at once and in id order, typing and read receipts cross too, an
// agent's presence and the desk's settings changed on one loop hold on the other, /metrics sums
// the push connections of both loops, and SIGTERM ends both loops' streams and exits 0. The abuse
// limits are one budget for the process: a visitor's messages and one address's connections
// count the same on either loop; and a second kefu on the same port is refused, as without
// SO_REUSEPORT.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const os = require('node:os');
const { Kefu, scenario, eventually, DEFAULT_AGENTS } = require('./harness');
const { Redis, freePort } = require('./nodes_harness');

const [ANA] = DEFAULT_AGENTS;

// A client with one keep-alive connection: its requests go one after the other on that socket,
// so they are all served by the loop it landed on.
function client(port) {
  return { port, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
}

function request(c, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const h = { ...headers };
    if (data) {
      h['Content-Type'] = 'application/json';
      h['Content-Length'] = data.length;
    }
    const req = http.request({ host: '127.0.0.1', port: c.port, method, path, headers: h, agent: c.agent }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(15000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function metrics(c) {
  const r = await request(c, 'GET', '/metrics');
  assert.equal(r.status, 200, `/metrics: ${r.status} ${r.text}`);
  return r.text;
}

function sample(text, name) {
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

// A client whose connection landed on loop: new connections until one does.
async function clientOn(port, loop, closers) {
  for (let i = 0; i < 200; i++) {
    const c = client(port);
    const at = sample(await metrics(c), 'kefu_loop');
    if (at === loop) {
      closers.push(() => c.agent.destroy());
      return c;
    }
    c.agent.destroy();
  }
  throw new Error(`no connection landed on loop ${loop} in 200 tries`);
}

// An SSE stream on c's connection: its events as they come.
function sse(c, path, headers) {
  const stream = { events: [], ended: false, req: null };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: c.port, method: 'GET', path, headers, agent: c.agent }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode}`));
      let buf = '';
      res.on('data', (d) => {
        buf += d.toString('utf8');
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) stream.events.push(JSON.parse(data));
        }
      });
      res.on('end', () => { stream.ended = true; });
      res.on('error', () => { stream.ended = true; });
      resolve(stream);
    });
    stream.req = req;
    req.on('error', (e) => { stream.ended = true; reject(e); });
    req.end();
  });
}

// Ana logs in through c: her session cookie, and the headers of her writes.
async function loginAna(c) {
  const login = await request(c, 'POST', '/api/agent/login', { body: { email: ANA.email, password: ANA.password } });
  assert.equal(login.status, 200, login.text);
  const cookie = /^(?:__Host-)?kefu_session=[^;]*/.exec(login.headers['set-cookie'][0])[0];
  return { cookie, headers: { Cookie: cookie, 'X-CSRF-Token': login.json.csrf } };
}

function messageIds(stream) {
  return stream.events.filter((e) => e.type === 'message').map((e) => e.message.id);
}

test('loops: a visitor on one loop and an agent on the other talk over SSE, in order, with typing, read receipts and presence; /metrics sums both loops; SIGTERM stops both', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    // The visitor writes 21 messages at once: more than the default burst.
    const srv = await env.server({ args: ['--loops', '2', '--visitor-message-burst', '100'] });
    const closers = [];
    env.defer(() => closers.forEach((f) => f()));
    const first = client(srv.port);
    closers.push(() => first.agent.destroy());
    assert.equal(sample(await metrics(first), 'kefu_loops'), 2, 'kefu_loops');

    const visitorApi = await clientOn(srv.port, 0, closers);
    const visitorPush = await clientOn(srv.port, 0, closers);
    const agentApi = await clientOn(srv.port, 1, closers);
    const agentPush = await clientOn(srv.port, 1, closers);

    const session = await request(visitorApi, 'POST', '/api/visitor/session', { body: { name: 'Wang Lei' } });
    assert.equal(session.status, 201, session.text);
    const bearer = { Authorization: `Bearer ${session.json.token}` };
    const { cookie, headers: agentHeaders } = await loginAna(agentApi);

    const agentStream = await sse(agentPush, '/push/sse?after=0', { Cookie: cookie });
    closers.push(() => agentStream.req.destroy());
    // The agent's console on loop 1 makes Ana online for everyone, loop 0 included.
    await eventually(async () => {
      const r = await request(visitorApi, 'GET', '/api/visitor', { headers: bearer });
      return r.status === 200 && r.json.availability && r.json.availability.online === true;
    }, { what: 'the visitor on loop 0 sees an agent online (presence from loop 1)' });

    const hello = await request(visitorApi, 'POST', '/api/visitor/messages', { headers: bearer, body: { body: 'hello from loop 0' } });
    assert.equal(hello.status, 201, hello.text);
    const conversationId = hello.json.message.conversation_id;
    await eventually(() => messageIds(agentStream).includes(hello.json.message.id), { what: 'the agent on loop 1 hears the visitor on loop 0' });

    const visitorStream = await sse(visitorPush, `/push/sse?after=${hello.json.message.id}`, bearer);
    closers.push(() => visitorStream.req.destroy());
    const reply = await request(agentApi, 'POST', `/api/conversations/${conversationId}/messages`, { headers: agentHeaders, body: { body: 'hello from loop 1' } });
    assert.equal(reply.status, 201, reply.text);
    await eventually(() => messageIds(visitorStream).includes(reply.json.message.id), { what: 'the visitor on loop 0 hears the agent on loop 1' });

    // Both write at once: every id once, in order, on both sides.
    const sent = [hello.json.message.id, reply.json.message.id];
    const writes = [];
    for (let i = 0; i < 20; i++) {
      writes.push(request(visitorApi, 'POST', '/api/visitor/messages', { headers: bearer, body: { body: `v${i}` } }));
      writes.push(request(agentApi, 'POST', `/api/conversations/${conversationId}/messages`, { headers: agentHeaders, body: { body: `a${i}` } }));
    }
    for (const r of await Promise.all(writes)) {
      assert.equal(r.status, 201, r.text);
      sent.push(r.json.message.id);
    }
    sent.sort((a, b) => a - b);
    await eventually(() => messageIds(agentStream).length >= sent.length, { what: 'the agent hears all 42' });
    assert.deepEqual(messageIds(agentStream), sent, 'the agent on loop 1: every id once, in order');
    await eventually(() => messageIds(visitorStream).length >= sent.length - 1, { what: 'the visitor hears the 41 after its cursor' });
    assert.deepEqual(messageIds(visitorStream), sent.slice(1), 'the visitor on loop 0: every id once, in order');

    // Typing and the read mark cross too (not stored: the loops bus alone carries them).
    const typing = await request(visitorApi, 'POST', '/api/visitor/typing', { headers: bearer, body: { typing: true } });
    assert.equal(typing.status, 200, typing.text);
    await eventually(() => agentStream.events.some((e) => e.type === 'typing' && e.typing === true), { what: 'the agent sees the visitor typing' });
    const read = await request(agentApi, 'POST', `/api/conversations/${conversationId}/read`, { headers: agentHeaders, body: { up_to: sent[sent.length - 1] } });
    assert.equal(read.status, 200, read.text);
    await eventually(() => visitorStream.events.some((e) => e.type === 'read'), { what: 'the visitor sees the read receipt' });

    // One scrape on either loop counts both streams (each loop's own SSE stream).
    for (const c of [visitorApi, agentApi]) {
      await eventually(async () => sample(await metrics(c), 'kefu_push_connections{transport="sse"}') === 2, { what: 'kefu_push_connections sums both loops' });
    }

    // The desk's settings changed on loop 1 hold on loop 0 at once (chat/nodes.c tells the loops).
    const preview = await request(agentApi, 'PATCH', '/api/settings', { headers: agentHeaders, body: { typing_preview: true } });
    assert.equal(preview.status, 200, preview.text);
    const greeting = await request(agentApi, 'PATCH', '/api/settings', { headers: agentHeaders, body: { widget: { greeting: 'Hello from loop 1' } } });
    assert.equal(greeting.status, 200, greeting.text);
    await eventually(async () => {
      const r = await request(visitorApi, 'GET', '/api/visitor', { headers: bearer });
      return r.json.settings.typing_preview === true && r.json.settings.widget.greeting === 'Hello from loop 1';
    }, { what: 'the visitor on loop 0 gets the settings changed on loop 1' });

    await srv.stop();
    await eventually(() => agentStream.ended && visitorStream.ended, { what: 'both loops ended their streams' });
    assert.match(srv.log, /listening on http:\/\/127\.0\.0\.1:\d+ \(2 loops\)/);
  }));

// A new connection that sends one request and reads the answer: its status, or 0 when the
// server closed it at accept (over the per-address limit).
function oneRequest(port) {
  return new Promise((resolve) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: '/readyz', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, agent }));
    });
    req.on('error', () => resolve({ status: 0, agent }));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

test('loops: the abuse limits are one budget per client for the whole process, not one per loop (messages, connections per address); a second kefu on the port is refused', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--loops', '2', '--visitor-message-burst', '4', '--visitor-messages-per-minute', '1'] });
    const closers = [];
    env.defer(() => closers.forEach((f) => f()));
    const onLoop0 = await clientOn(srv.port, 0, closers);
    const onLoop1 = await clientOn(srv.port, 1, closers);
    const session = await request(onLoop0, 'POST', '/api/visitor/session', { body: {} });
    assert.equal(session.status, 201, session.text);
    const bearer = { Authorization: `Bearer ${session.json.token}` };
    const statuses = [];
    for (let i = 0; i < 8; i++) {
      const r = await request(i % 2 ? onLoop1 : onLoop0, 'POST', '/api/visitor/messages', { headers: bearer, body: { body: `m${i}` } });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [201, 201, 201, 201, 429, 429, 429, 429], 'a burst of 4 in all, whichever loop takes each');
    await srv.stop();

    // Four connections from one address, wherever they land; the fifth and sixth are closed.
    srv.extraArgs = ['--loops', '2', '--max-connections-per-address', '4'];
    await srv.start();
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await oneRequest(srv.port));
    answers.forEach((a) => a.agent.destroy());
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 0, 0], 'four connections held open, the rest refused');

    // SO_REUSEPORT does not let a second kefu on the same port share its connections.
    const second = new Kefu({ name: 'second', args: ['--loops', '2'] });
    second.port = srv.port;
    env.defer(() => second.kill());
    await assert.rejects(second.start(), /exited before listening/);
    assert.match(second.log, /cannot listen on 127\.0\.0\.1:\d+: address already in use/);
  }));

test('loops: the default (--loops 0) is one per core the process may use (the start-up line and /metrics say how many); one with a Redis bus, unless asked by number', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    // KEFU_LOOPS would give every server a number of its own: without it, kefu's default.
    const saved = process.env.KEFU_LOOPS;
    delete process.env.KEFU_LOOPS;
    env.defer(() => {
      if (saved === undefined) delete process.env.KEFU_LOOPS;
      else process.env.KEFU_LOOPS = saved;
    });
    const cores = os.availableParallelism();
    const closers = [];
    env.defer(() => closers.forEach((f) => f()));
    const loopsOf = async (srv) => {
      const c = client(srv.port);
      closers.push(() => c.agent.destroy());
      return sample(await metrics(c), 'kefu_loops');
    };
    const plain = await env.server();
    assert.equal(await loopsOf(plain), cores, 'one loop per core');
    if (cores > 1) assert.match(plain.log, new RegExp(`listening on \\S+ \\(${cores} loops\\)`));
    await plain.stop();

    const redis = new Redis(await freePort());
    await redis.start();
    env.defer(() => redis.stop());
    const node = await env.server({ args: ['--bus', redis.url] });
    assert.equal(await loopsOf(node), 1, 'one loop with a Redis bus by default');
    await node.stop();
    const zero = await env.server({ args: ['--bus', redis.url, '--loops', '0'] });
    assert.equal(await loopsOf(zero), 1, 'one loop with a Redis bus and --loops 0');
    await zero.stop();
    const asked = await env.server({ args: ['--bus', redis.url, '--loops', '2'] });
    assert.equal(await loopsOf(asked), 2, 'two when asked');
  }));

test('loops: what one loop learns the others answer with: a visitor reported on one loop is online and invited from the other; a rule added on one is what the visitor reads on the other', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--loops', '2'] });
    const closers = [];
    env.defer(() => closers.forEach((f) => f()));
    const onLoop0 = await clientOn(srv.port, 0, closers);
    const onLoop1 = await clientOn(srv.port, 1, closers);
    const session = await request(onLoop0, 'POST', '/api/visitor/session', { body: { name: 'Li Na' } });
    assert.equal(session.status, 201, session.text);
    const bearer = { Authorization: `Bearer ${session.json.token}` };
    const visitorId = session.json.visitor.id;
    const page = await request(onLoop0, 'POST', '/api/visitor/page', { headers: bearer, body: { url: 'https://shop.example/pricing', title: 'Pricing' } });
    assert.equal(page.status, 200, page.text);

    const { headers: agent } = await loginAna(onLoop1);
    const online = await request(onLoop1, 'GET', '/api/visitors/online', { headers: agent });
    assert.equal(online.status, 200, online.text);
    assert.deepEqual(online.json.visitors.map((v) => [v.visitor_id, v.title]), [[visitorId, 'Pricing']], 'listed on the other loop');
    const invite = await request(onLoop1, 'POST', `/api/visitors/${visitorId}/invite`, { headers: agent, body: { body: 'Can I help?' } });
    assert.equal(invite.status, 201, invite.text);
    const marked = await request(onLoop0, 'GET', '/api/visitors/online', { headers: agent });
    assert.ok(marked.json.visitors[0].invited_at > 0, 'marked invited on the loop the visitor reported to');

    const rule = await request(onLoop0, 'POST', '/api/invite-rules', { headers: agent, body: { path: '/pricing', seconds: 0, body: 'Questions about plans?' } });
    assert.equal(rule.status, 201, rule.text);
    await eventually(async () => {
      const rules = await request(onLoop1, 'GET', '/api/visitor/invite-rules', { headers: bearer });
      return rules.status === 200 && rules.json.rules.some((r) => r.id === rule.json.rule.id);
    }, { what: 'the rule added on loop 0 read on loop 1' });
    const fired = await request(onLoop1, 'POST', `/api/visitor/invite-rules/${rule.json.rule.id}/fire`, { headers: bearer });
    assert.equal(fired.status, 201, fired.text);
    const again = await request(onLoop0, 'POST', `/api/visitor/invite-rules/${rule.json.rule.id}/fire`, { headers: bearer });
    assert.equal(again.status, 409, 'a rule fires once in an online stretch, whichever loop is asked');
    const second = await request(onLoop1, 'POST', '/api/invite-rules', { headers: agent, body: { path: '/', seconds: 5, body: 'Hello' } });
    assert.equal(second.status, 201, second.text);
    assert.notEqual(second.json.rule.id, rule.json.rule.id, 'rule ids are not given twice by two loops');
    await eventually(async () => (await request(onLoop0, 'GET', '/api/invite-rules', { headers: agent })).json.rules.length === 2, { what: 'both rules on loop 0' });
  }));

test('loops: after a restart on a store with history, the first messages of both loops go out at once and in order, with no hole given up (each loop\'s order starts at the newest stored id)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ['--loops', '2', '--visitor-message-burst', '100'] });
    const closers = [];
    env.defer(() => closers.forEach((f) => f()));
    const c = client(srv.port);
    const session = await request(c, 'POST', '/api/visitor/session', { body: { name: 'Zhao Min' } });
    assert.equal(session.status, 201, session.text);
    const bearer = { Authorization: `Bearer ${session.json.token}` };
    let last = 0;
    let conversationId = 0;
    for (let i = 0; i < 3; i++) {
      const r = await request(c, 'POST', '/api/visitor/messages', { headers: bearer, body: { body: `before ${i}` } });
      assert.equal(r.status, 201, r.text);
      last = r.json.message.id;
      conversationId = r.json.message.conversation_id;
    }
    c.agent.destroy();
    await srv.restart();

    const visitorApi = await clientOn(srv.port, 0, closers);
    const agentApi = await clientOn(srv.port, 1, closers);
    const agentPush = await clientOn(srv.port, 1, closers);
    const { cookie, headers: agentHeaders } = await loginAna(agentApi);
    const agentStream = await sse(agentPush, `/push/sse?after=${last}`, { Cookie: cookie });
    closers.push(() => agentStream.req.destroy());

    const writes = [];
    for (let i = 0; i < 5; i++) {
      writes.push(request(visitorApi, 'POST', '/api/visitor/messages', { headers: bearer, body: { body: `after ${i}` } }));
      writes.push(request(agentApi, 'POST', `/api/conversations/${conversationId}/messages`, { headers: agentHeaders, body: { body: `reply ${i}` } }));
    }
    const sent = [];
    for (const r of await Promise.all(writes)) {
      assert.equal(r.status, 201, r.text);
      sent.push(r.json.message.id);
    }
    sent.sort((a, b) => a - b);
    assert.equal(sent[0], last + 1, 'ids go on from the stored ones');
    await eventually(() => messageIds(agentStream).length >= sent.length, { what: 'the agent hears the ten' });
    assert.deepEqual(messageIds(agentStream), sent, 'every id once, in order');
    assert.equal(sample(await metrics(agentApi), 'kefu_bus_order_holes_total'), 0, 'no hole given up: the orders started at the newest stored id');
  }));
