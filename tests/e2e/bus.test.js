'use strict';
// bus.test.js: two kefu nodes sharing one data directory and one throw-away Redis (--bus): a
// visitor on node 1 and an agent on node 2 talk over SSE and over WebSocket, with messages and
// typing crossing both ways; Redis is stopped mid-conversation (twice) (both nodes answer /readyz 503 and
// go on storing what their own people write), then started again: both nodes reconnect by
// themselves, and both pages end with every message once, in order. Long poll, the forever iframe
// and poll carry a message and typing each way too.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, eventually, api, sleep, newVisitor, visitorSend, agentLogin, agentSend, DEFAULT_AGENTS } = require('./harness');
const ANA = DEFAULT_AGENTS[0];
const {
  T, T_RESTART, assertNoPageProblems, assertConnected, openVisitor, openAgent, waitMsg, expectThread, visitorSay, agentSay,
  visitorToken, conversationOf, waitConv, selectConv, readMsgs, agentCookie, V, A,
} = require('./pages');
const { Redis, freePort, readyz, waitReady, cluster: startCluster, waitTyping } = require('./nodes_harness');

after(closeBrowser);

// Redis, then node 1 and node 2 on the same store.
async function cluster(env, extra = []) {
  const { redis, nodes } = await startCluster(env, { count: 2, extra });
  return { redis, node1: nodes[0], node2: nodes[1] };
}

for (const transport of ['sse', 'ws']) {
  test(`bus over ${transport}: a visitor on node 1 and an agent on node 2 talk through Redis, across a Redis restart`, { timeout: 180000 }, (t) =>
    scenario(t, async (env) => {
      const { redis, node1, node2 } = await cluster(env);
      const visitor = await openVisitor(env, node1, transport);
      const agent = await openAgent(env, node2, transport);

      // A message crosses from node 1 to node 2: the conversation appears, then the message.
      const q1 = `Hello from node 1 (${transport})`;
      await visitorSay(visitor, q1);
      const convId = await conversationOf(node1, await visitorToken(visitor));
      await waitConv(agent, convId, (s) => s.unread === '1', 'listed with 1 unread on node 2');
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', q1, 'visitor');

      // Typing crosses both ways (ephemeral events: no id, never stored).
      await agent.page.type('#reply-input', 'Let me see', { delay: 20 });
      await waitTyping(visitor.page, '#typing-indicator', /Agent is typing/);
      await visitor.page.type('#message-input', 'And', { delay: 20 });
      await waitTyping(agent.page, '#thread-typing', /Visitor is typing/);
      await visitor.page.fill('#message-input', '');

      // A reply crosses from node 2 to node 1.
      await agent.page.fill('#reply-input', '');
      const r1 = `Hello from node 2 (${transport})`;
      await agentSay(agent, r1);
      await waitMsg(visitor.page, '#messages', r1, 'agent');

      // Redis goes away: neither node is ready, and each still stores what its own person says.
      await redis.stop();
      await waitReady(node1, 503);
      await waitReady(node2, 503);
      const body = (await readyz(node2)).json;
      assert.equal(body.reason, 'bus_unreachable', JSON.stringify(body));
      assert.equal(body.bus_connected, false, JSON.stringify(body));
      const q2 = `While Redis is down, visitor (${transport})`;
      const r2 = `While Redis is down, agent (${transport})`;
      await visitorSay(visitor, q2);
      await agentSay(agent, r2);

      // Redis is back: both nodes reconnect by themselves, and their clients catch up from the
      // store by their cursors: the message each missed shows, nothing twice.
      await redis.start();
      await waitReady(node1, 200, T_RESTART);
      await waitReady(node2, 200, T_RESTART);
      await waitMsg(agent.page, '#thread', q2, 'visitor', T_RESTART);
      await waitMsg(visitor.page, '#messages', r2, 'agent', T_RESTART);

      // And live again, both ways.
      const q3 = `After the restart, visitor (${transport})`;
      await visitorSay(visitor, q3);
      await waitMsg(agent.page, '#thread', q3, 'visitor', T_RESTART);
      const r3 = `After the restart, agent (${transport})`;
      await agentSay(agent, r3);
      await waitMsg(visitor.page, '#messages', r3, 'agent', T_RESTART);

      // Once more, with only the visitor writing while Redis is away: node 2 stored nothing
      // meanwhile, so only a resync that forgets what it knew of the store finds the message.
      await redis.stop();
      await waitReady(node2, 503);
      const q4 = `Second outage, visitor only (${transport})`;
      await visitorSay(visitor, q4);
      await redis.start();
      await waitReady(node1, 200, T_RESTART);
      await waitReady(node2, 200, T_RESTART);
      await waitMsg(agent.page, '#thread', q4, 'visitor', T_RESTART);
      // The console may have read it through the API; the push replay must find it too, for a
      // client that comes to node 2 with the cursor of the last message it had.
      const r3Id = (await readMsgs(agent.page, '#thread')).find((m) => m.body === r3).id;
      const poll = await api(node2.base, 'GET', `/push/poll?after=${r3Id}`, { cookie: await agentCookie(agent) });
      assert.equal(poll.status, 200, poll.text);
      const bodies = poll.json.events.filter((e) => e.type === 'message').map((e) => e.message.body);
      // (From before the outages at most: for a while after one, node 2 replays from where it
      // was when the bus went, and the client drops what it has by id.)
      assert.equal(bodies[bodies.length - 1], q4, `node 2 replays after ${r3Id}: ${poll.text}`);
      assert.ok(!bodies.includes(q1) && !bodies.includes(r1), `no rewind to before the first outage: ${bodies}`);
      const all = [V(q1), A(r1), V(q2), A(r2), V(q3), A(r3), V(q4)];
      await expectThread(visitor.page, '#messages', all);
      await expectThread(agent.page, '#thread', all);
      await assertConnected(visitor, agent);
      assertNoPageProblems(visitor, agent);

      // What the nodes say of it: events crossed both ways, and each saw one reconnect more.
      for (const node of [node1, node2]) {
        const m = await api(node.base, 'GET', '/metrics');
        assert.equal(m.status, 200);
        const value = (name) => Number((new RegExp(`^${name} (\\S+)$`, 'm').exec(m.text) || [])[1]);
        assert.equal(value('kefu_bus_ready'), 1, `${node.name}: kefu_bus_ready`);
        assert.ok(value('kefu_bus_connects_total') >= 3, `${node.name}: kefu_bus_connects_total ${value('kefu_bus_connects_total')}`);
        assert.ok(value('kefu_bus_events_total\\{outcome="received"\\}') > 0, `${node.name}: received events`);
        assert.match(node.log, /bus: redis:\/\/127\.0\.0\.1:\d+ unreachable/, `${node.name} logged the loss`);
      }
    }),
  );
}

// The other transports: a message each way and typing each way, no restart (the restart's
// catch-up is the push layer's, the same for every transport; poll and long poll get typing from
// the ephemeral window, which another node's events reach like any other subscriber).
for (const transport of ['longpoll', 'iframe', 'poll']) {
  test(`bus over ${transport}: messages and typing cross between the nodes`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const { node1, node2 } = await cluster(env);
      const visitor = await openVisitor(env, node1, transport);
      const agent = await openAgent(env, node2, transport);
      const q1 = `From node 1 over ${transport}`;
      await visitorSay(visitor, q1);
      const convId = await conversationOf(node1, await visitorToken(visitor));
      await waitConv(agent, convId, (s) => s.unread === '1', 'listed with 1 unread on node 2');
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', q1, 'visitor');
      await agent.page.type('#reply-input', 'Typing', { delay: 20 });
      await waitTyping(visitor.page, '#typing-indicator', /Agent is typing/);
      await visitor.page.type('#message-input', 'And', { delay: 20 });
      await waitTyping(agent.page, '#thread-typing', /Visitor is typing/);
      await visitor.page.fill('#message-input', '');
      await agent.page.fill('#reply-input', '');
      const r1 = `From node 2 over ${transport}`;
      await agentSay(agent, r1);
      await waitMsg(visitor.page, '#messages', r1, 'agent');
      await expectThread(visitor.page, '#messages', [V(q1), A(r1)]);
      await expectThread(agent.page, '#thread', [V(q1), A(r1)]);
      assertNoPageProblems(visitor, agent);
    }),
  );
}

// A node dies: its visitor goes on through the other node with the cursor it had, and loses
// nothing (the store is shared; the token and the cursor mean the same on both).
test('bus: a node is killed mid-conversation; its visitor resumes on the other node from its cursor', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const { node1, node2 } = await cluster(env);
    const v = await newVisitor(node1);
    const first = await visitorSend(node1, v.token, 'On node 1');
    const ana = await agentLogin(node2, ANA.email, ANA.password);
    await agentSend(node2, ana, first.conversation_id, 'Answered on node 2');
    // The visitor's long poll on node 1 has both (one crossed from node 2).
    const held = await api(node1.base, 'GET', `/push/longpoll?after=${first.id}&timeout=10`, { token: v.token });
    assert.equal(held.status, 200, held.text);
    const got = held.json.events.filter((e) => e.type === 'message');
    assert.deepEqual(got.map((e) => e.message.body), ['Answered on node 2']);
    const cursor = held.json.cursor;
    await node1.kill();
    await agentSend(node2, ana, first.conversation_id, 'While node 1 is gone');
    await visitorSend(node2, v.token, 'Now on node 2');
    const resumed = await api(node2.base, 'GET', `/push/poll?after=${cursor}`, { token: v.token });
    assert.equal(resumed.status, 200, resumed.text);
    assert.deepEqual(
      resumed.json.events.filter((e) => e.type === 'message').map((e) => e.message.body),
      ['While node 1 is gone', 'Now on node 2'],
    );
  }),
);

// A node that has delivered no message since it started stands where the store did then: losing
// Redis rewinds its clients to there, not to 0 (every agent would replay the whole history).
test('bus: a node restarted on a store with history and cut off from Redis before any message rewinds its clients to where the store stood, not to the start', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const { redis, node1, node2 } = await cluster(env);
    const v = await newVisitor(node1);
    let last = null;
    for (const body of ['History one', 'History two', 'History three']) last = await visitorSend(node1, v.token, body);
    const ana = await agentLogin(node1, ANA.email, ANA.password);
    await node2.restart();
    await waitReady(node2, 200);
    await redis.stop();
    await waitReady(node2, 503);
    await redis.start();
    await waitReady(node2, 200, T_RESTART);
    assert.match(node2.log, /bus: redis:\/\/127\.0\.0\.1:\d+ unreachable/, 'node 2 logged the loss');
    for (const [who, auth] of [['the agent', { cookie: ana.cookie }], ['the visitor', { token: v.token }]]) {
      const poll = await api(node2.base, 'GET', `/push/poll?after=${last.id}`, auth);
      assert.equal(poll.status, 200, poll.text);
      const bodies = poll.json.events.filter((e) => e.type === 'message').map((e) => e.message.body);
      assert.deepEqual(bodies, [], `${who}: nothing replayed from before node 2 started: ${poll.text}`);
    }
    // And what comes now reaches node 2's clients as ever.
    const next = await visitorSend(node1, v.token, 'After the outage');
    await eventually(async () => {
      const poll = await api(node2.base, 'GET', `/push/poll?after=${last.id}`, { cookie: ana.cookie });
      return poll.json.events.some((e) => e.type === 'message' && e.message.id === next.id);
    }, { what: 'the new message on node 2' });
  }),
);

// A node started while Redis is away serves its own people alone: a visitor's long poll on it is
// answered with the visitor's own message while an agent's reply on the other node, stored just
// before, cannot cross. When Redis comes, the visitor who comes back with the cursor of its own
// message must still get the reply (before, only a node that had been connected before replayed
// from where it stood; one whose first connection this was let its clients resume from their
// cursors, past the reply, for good).
test('bus: a node started while Redis is away, whose visitor took its own message ahead of a reply from the other node, replays the reply once Redis is back', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const { redis, node1, node2 } = await cluster(env);
    const v = await newVisitor(node2);
    const hello = await visitorSend(node2, v.token, 'Hello, anyone?');
    const ana = await agentLogin(node1, ANA.email, ANA.password);
    await redis.stop();
    await waitReady(node1, 503);
    await node2.restart();
    await waitReady(node2, 503);
    // The visitor's long poll waits on node 2 with the cursor of its first message.
    const held = api(node2.base, 'GET', `/push/longpoll?after=${hello.id}&timeout=20`, { token: v.token });
    await sleep(300);
    const reply = await agentSend(node1, ana, hello.conversation_id, 'Yes, Ana here');
    const second = await visitorSend(node2, v.token, 'Are you there?');
    assert.ok(reply.id < second.id, `the reply (${reply.id}) is stored before the visitor's second message (${second.id})`);
    const answered = await held;
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual(answered.json.events.filter((e) => e.type === 'message').map((e) => e.message.body), ['Are you there?'], 'the reply could not cross');
    assert.equal(String(answered.json.cursor), String(second.id));
    await redis.start();
    await waitReady(node2, 200, T_RESTART);
    await waitReady(node1, 200, T_RESTART);
    const back = await api(node2.base, 'GET', `/push/poll?after=${answered.json.cursor}`, { token: v.token });
    assert.equal(back.status, 200, back.text);
    const bodies = back.json.events.filter((e) => e.type === 'message').map((e) => e.message.body);
    assert.ok(bodies.includes('Yes, Ana here'), `the reply reaches the visitor on node 2: ${back.text}`);
    assert.ok(!bodies.includes('Hello, anyone?'), `nothing from before node 2 started: ${bodies}`);
  }),
);

// Each node caches sessions and visitor tokens; a change on one must reach the other's caches.
test('bus: a logout and a disabled account on one node hold on the other (the session caches follow)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const { node1, node2 } = await cluster(env);
    const BO = DEFAULT_AGENTS[1];
    const ana = await agentLogin(node1, ANA.email, ANA.password);
    const bo = await agentLogin(node1, BO.email, BO.password);
    // Node 2 reads the sessions once, and caches them.
    for (const who of [ana, bo]) assert.equal((await api(node2.base, 'GET', '/api/agent/me', { cookie: who.cookie })).status, 200);
    const out = await api(node1.base, 'POST', '/api/agent/logout', { cookie: ana.cookie, csrf: ana.csrf });
    assert.equal(out.status, 200, out.text);
    await eventually(async () => (await api(node2.base, 'GET', '/api/agent/me', { cookie: ana.cookie })).status === 401, {
      what: 'the logged-out session refused on node 2',
    });
    // An admin (Ana, again) disables Bo on node 2: node 1 refuses Bo's session.
    const ana2 = await agentLogin(node2, ANA.email, ANA.password);
    const off = await api(node2.base, 'PATCH', `/api/agents/${bo.agent.id}`, { cookie: ana2.cookie, csrf: ana2.csrf, body: { disabled: true } });
    assert.equal(off.status, 200, off.text);
    await eventually(async () => (await api(node1.base, 'GET', '/api/agent/me', { cookie: bo.cookie })).status !== 200, {
      what: 'the disabled agent refused on node 1',
    });
  }),
);

test('bus: a node started while Redis is down serves, answers /readyz 503, and becomes ready when Redis comes', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const redis = new Redis(await freePort());
    env.defer(() => redis.stop());
    const node = await env.server({ args: ['--bus', `redis://127.0.0.1:${redis.port}`] });
    await waitReady(node, 503);
    const r = await readyz(node);
    assert.equal(r.json.reason, 'bus_unreachable', r.text);
    assert.equal(r.headers['retry-after'], '5');
    assert.equal((await api(node.base, 'GET', '/healthz')).status, 200, '/healthz: alive all the same');
    await sleep(300);
    await redis.start();
    await waitReady(node, 200, T_RESTART);
    assert.match(node.log, /bus: connected to redis:\/\/127\.0\.0\.1:\d+/);
  }),
);

test('bus: a bad --bus address is refused at start with what it takes', () => {
  const r = require('node:child_process').spawnSync(require('./harness').KEFU_BIN, ['--bus', 'redis://host:99999', '--data', '/nonexistent'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--bus takes redis:\/\/\[\[USER\]:PASSWORD@\]HOST\[:PORT\]\[\/DB\], not redis:\/\/host:99999/);
});

// Both nodes write at once: node 1's visitors and node 2's agent reply as fast as they can. Ids
// are given in commit order across the two processes, and each node hears its own messages at
// once and the other's a moment later through Redis; an agent's stream on either node must still
// get every message once, in id order. (Before bus/order.c a node delivered its own id ahead of
// a lower one still on its way, and a client that reconnected in between with the higher cursor
// never got the lower one.)
test('bus: with both nodes writing at once, an agent stream on each node gets every message once, in id order', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const { CurlStream, RAISED_LIMITS } = require('./harness');
    const { node1, node2 } = await cluster(env, RAISED_LIMITS);
    const streams = [];
    for (const node of [node1, node2]) {
      const ag = await agentLogin(node, ANA.email, ANA.password);
      const s = new CurlStream(['-sN', '--max-time', '100', '-H', `Cookie: ${ag.cookie}`, `${node.base}/push/sse?after=0`]);
      env.defer(() => s.close());
      await s.until((o) => o.includes('heartbeat') || o.includes('retry:'), 10000, `${node.name} stream open`);
      streams.push(s);
    }
    const v1 = await newVisitor(node1);
    const v2 = await newVisitor(node1);
    const first = await visitorSend(node1, v1.token, 'start');
    const ag2 = await agentLogin(node2, ANA.email, ANA.password);
    const N = 60;
    const sent = [first.id];
    await Promise.all([
      (async () => { for (let i = 0; i < N; i++) sent.push((await visitorSend(node1, v1.token, `v1 ${i}`)).id); })(),
      (async () => { for (let i = 0; i < N; i++) sent.push((await visitorSend(node1, v2.token, `v2 ${i}`)).id); })(),
      (async () => { for (let i = 0; i < N; i++) sent.push((await agentSend(node2, ag2, first.conversation_id, `a ${i}`)).id); })(),
    ]);
    sent.sort((a, b) => a - b);
    const ids = (out) => [...out.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1])).filter((e) => e.type === 'message').map((e) => e.message.id);
    for (const [i, s] of streams.entries()) {
      await s.until((o) => ids(o).length >= sent.length, 30000, `all ${sent.length} messages on node ${i + 1}'s stream`);
      const got = ids(s.out);
      assert.deepEqual(got, sent, `node ${i + 1}: every message once, in id order; got ${JSON.stringify(got)}`);
    }
    for (const node of [node1, node2]) {
      const m = await api(node.base, 'GET', '/metrics');
      assert.match(m.text, /^kefu_bus_order_holes_total 0$/m, `${node.name}: no id given up for lost`);
    }
  }),
);
