'use strict';
// nodes.test.js: three kefu nodes on loopback ports sharing one store and one Redis (issue 16's
// multi-node test; on PostgreSQL with KEFU_STORE, see nodes_harness.js). Over each transport, a
// visitor whose page came through a load balancer to node 1 and an agent on
// node 2 hold a conversation (messages, typing and read receipts crossing both ways); node 1 is
// killed with SIGKILL mid-conversation and the visitor carries on through node 3 (the balancer's
// next node) from its cursor; Redis is restarted mid-conversation and both carry on; both pages
// end with every message once, in order. Presence and assignment cross nodes too, and a client
// whose every request lands on another node (round robin, no sticky sessions) misses nothing.
// bus.test.js has the rest of what crosses (Redis outages in detail, caches, ordering).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, api, newVisitor, visitorSend, agentLogin, agentSend, eventually, DEFAULT_AGENTS } = require('./harness');
const {
  T, T_RESTART, assertNoPageProblems, assertConnected, openVisitor, openAgent, waitMsg, expectThread, visitorSay, agentSay,
  visitorToken, conversationOf, waitConv, selectConv, convSel, V, A,
} = require('./pages');
const { cluster, balancer, killHard, waitReady, waitTyping } = require('./nodes_harness');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
// A forever frame cut off mid-response fires no event in the page (Chromium leaves its document
// loading), so the client hears of a dead node only when its silence watchdog fires (45 s, two
// heartbeats missed: web/kefu.js), then reconnects after its backoff.
const T_IFRAME_CUT = 80000;

// Waits until the visitor page marks the message with this text "Seen" (the agents read it).
async function waitSeen(page, body, timeout = T) {
  await page.waitForFunction(
    (body) => [...document.querySelectorAll('#messages .msg.seen[data-id]')].some((m) => m.querySelector('.msg-body').textContent === body),
    body,
    { timeout, polling: 100 },
  );
}

// Typing crosses both ways, then both boxes are empty again.
async function typingBothWays(visitor, agent) {
  await agent.page.type('#reply-input', 'Let me see', { delay: 20 });
  await waitTyping(visitor.page, '#typing-indicator', /Agent is typing/, T_RESTART);
  await visitor.page.type('#message-input', 'And', { delay: 20 });
  await waitTyping(agent.page, '#thread-typing', /Visitor is typing/, T_RESTART);
  await visitor.page.fill('#message-input', '');
  await agent.page.fill('#reply-input', '');
}

for (const transport of ['poll', 'longpoll', 'sse', 'iframe', 'ws']) {
  test(`three nodes over ${transport}: node 1 is killed and the visitor carries on through node 3; Redis restarts; nothing lost or doubled`, { timeout: 240000 }, (t) =>
    scenario(t, async (env) => {
      const { redis, nodes } = await cluster(env, { count: 3 });
      const [node1, node2, node3] = nodes;
      // The visitor's page comes through a balancer: node 1 while it lives, then node 3.
      const lb = await balancer(env, [node1, node3]);
      const visitor = await openVisitor(env, lb, transport);
      const agent = await openAgent(env, node2, transport);
      assert.equal(lb.connections.get(node3), 0, 'the visitor came to node 1');

      const q1 = `Hello from node 1 (${transport})`;
      await visitorSay(visitor, q1);
      const convId = await conversationOf(node1, await visitorToken(visitor));
      await waitConv(agent, convId, (s) => s.unread === '1', 'listed with 1 unread on node 2');
      // The agent opens it on node 2: the read crosses to the visitor on node 1.
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', q1, 'visitor');
      await waitSeen(visitor.page, q1);
      await typingBothWays(visitor, agent);
      const r1 = `Hello from node 2 (${transport})`;
      await agentSay(agent, r1);
      await waitMsg(visitor.page, '#messages', r1, 'agent');

      // Node 1 dies without a word. The visitor's next requests reach node 3 through the
      // balancer with the token and cursor they had; what the agent writes meanwhile arrives.
      await killHard(node1);
      const r2 = `While node 1 is dead (${transport})`;
      await agentSay(agent, r2);
      await waitMsg(visitor.page, '#messages', r2, 'agent', transport === 'iframe' ? T_IFRAME_CUT : T_RESTART);
      assert.ok(lb.connections.get(node3) > 0, 'the visitor came back through node 3');
      const q2 = `On node 3 now (${transport})`;
      await visitorSay(visitor, q2);
      await waitMsg(agent.page, '#thread', q2, 'visitor');
      await waitSeen(visitor.page, q2);
      await typingBothWays(visitor, agent);

      // Redis restarts mid-conversation: each side writes while it is away, and each gets the
      // other's message once it is back (the nodes resync their clients from the store).
      await redis.stop();
      await waitReady(node2, 503);
      await waitReady(node3, 503);
      const q3 = `While Redis is down, visitor (${transport})`;
      await visitorSay(visitor, q3);
      const r3 = `While Redis is down, agent (${transport})`;
      await agentSay(agent, r3);
      await redis.start();
      await waitReady(node2, 200, T_RESTART);
      await waitReady(node3, 200, T_RESTART);
      await waitMsg(agent.page, '#thread', q3, 'visitor', T_RESTART);
      await waitMsg(visitor.page, '#messages', r3, 'agent', T_RESTART);

      // And live again, both ways.
      const q4 = `After the restart, visitor (${transport})`;
      await visitorSay(visitor, q4);
      await waitMsg(agent.page, '#thread', q4, 'visitor', T_RESTART);
      const r4 = `After the restart, agent (${transport})`;
      await agentSay(agent, r4);
      await waitMsg(visitor.page, '#messages', r4, 'agent', T_RESTART);
      await typingBothWays(visitor, agent);

      // Both pages: every message once, in order, the same list on both sides and in the store.
      const all = [V(q1), A(r1), A(r2), V(q2), V(q3), A(r3), V(q4), A(r4)];
      const shownToVisitor = await expectThread(visitor.page, '#messages', all, T_RESTART);
      const shownToAgent = await expectThread(agent.page, '#thread', all, T_RESTART);
      assert.deepEqual(shownToVisitor.map((m) => m.id), shownToAgent.map((m) => m.id), 'the same message ids on both sides');
      const stored = await api(node3.base, 'GET', '/api/visitor/messages?after=0', { token: await visitorToken(visitor) });
      assert.equal(stored.status, 200, stored.text);
      assert.deepEqual(stored.json.messages.map((m) => String(m.id)), shownToVisitor.map((m) => m.id), 'the pages show what the store holds');
      await assertConnected(visitor, agent);
      assertNoPageProblems(visitor, agent);
    }),
  );
}

// Presence and assignment are told across nodes: Bo's console on node 3 sees Ana (node 2) come
// and go away, and node 1 lists both as their consoles show them; Ana transfers the visitor's
// conversation (node 1) to Bo with a note, and Bo's console shows it as his at once, with the
// note; the visitor sees Bo's reply, not the note.
test('three nodes: presence and assignment cross nodes', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const { nodes } = await cluster(env, { count: 3 });
    const [node1, node2, node3] = nodes;
    const visitor = await openVisitor(env, node1, 'sse');
    const ana = await openAgent(env, node2, 'ws', ANA);
    const bo = await openAgent(env, node3, 'sse', BO);
    const teamStatus = (page, name) =>
      page.evaluate((name) => {
        for (const li of document.querySelectorAll('#team-list .team-member')) {
          if (li.querySelector('.team-name').textContent.startsWith(name)) return li.dataset.status;
        }
        return null;
      }, name);
    const waitStatus = (page, name, status, what) =>
      eventually(async () => (await teamStatus(page, name)) === status, { timeout: T, what: `${what}: ${name} ${status}` });
    await waitStatus(bo.page, 'Ana', 'online', 'Bo (node 3) sees Ana (node 2)');
    await waitStatus(ana.page, 'Bo', 'online', 'Ana (node 2) sees Bo (node 3)');
    await ana.page.getByLabel('Your status').selectOption('away');
    await waitStatus(bo.page, 'Ana', 'away', 'Ana chose Away on node 2');
    // Every node answers the same for the API (a console that reconnects reads it there).
    const admin1 = await agentLogin(node1, ANA.email, ANA.password);
    await eventually(async () => {
      const r = await api(node1.base, 'GET', '/api/agents', { cookie: admin1.cookie });
      return r.json.agents.find((a) => a.name === 'Ana').status === 'away' && r.json.agents.find((a) => a.name === 'Bo').status === 'online';
    }, { timeout: T, what: 'node 1 lists Ana away and Bo online' });
    await ana.page.getByLabel('Your status').selectOption('online');
    await waitStatus(bo.page, 'Ana', 'online', 'Ana is back');

    const q = 'Who can help me?';
    await visitorSay(visitor, q);
    const convId = await conversationOf(node1, await visitorToken(visitor));
    await waitConv(ana, convId, () => true, 'listed on node 2');
    await selectConv(ana, convId);
    // Ana transfers it to Bo, whom her transfer list (node 2) shows online (his console is on
    // node 3), with a note for him.
    const boAgent = (await api(node1.base, 'GET', '/api/agents', { cookie: admin1.cookie })).json.agents.find((a) => a.name === 'Bo');
    await eventually(async () => (await ana.page.$$eval('#assign-select option', (os) => os.map((o) => o.textContent))).some((text) => /^Bo · Online/.test(text)), {
      timeout: T,
      what: 'Bo online in the transfer list on node 2',
    });
    await ana.page.selectOption('#assign-select', String(boAgent.id));
    await ana.page.waitForSelector('#transfer-dialog', { state: 'visible', timeout: T });
    await ana.page.fill('#transfer-note', 'Bo, this one is yours');
    await ana.page.click('#transfer-confirm');
    await ana.page.waitForSelector('#transfer-dialog', { state: 'hidden', timeout: T });
    await bo.page.waitForFunction(
      ({ sel, id }) => document.querySelector(sel) && document.querySelector(sel).getAttribute('data-assignee') === String(id),
      { sel: convSel(convId), id: boAgent.id },
      { timeout: T },
    );
    await waitConv(ana, convId, () => true, 'still listed on node 2');
    assert.equal(await ana.page.$eval(convSel(convId), (el) => el.getAttribute('data-assignee')), String(boAgent.id));
    await selectConv(bo, convId);
    await bo.page.waitForFunction(
      () => [...document.querySelectorAll('#thread .msg.note .msg-body')].some((m) => m.textContent === 'Bo, this one is yours'),
      null,
      { timeout: T },
    );
    await agentSay(bo, 'Bo here, on node 3');
    await waitMsg(visitor.page, '#messages', 'Bo here, on node 3', 'agent');
    await expectThread(visitor.page, '#messages', [V(q), A('Bo here, on node 3')]);
    assertNoPageProblems(visitor, ana, bo);
  }),
);

// No sticky sessions: every request of a visitor's long poll lands on the next node in turn,
// while the agent writes on one node; the visitor gets every message once, in order.
test('three nodes behind a round-robin balancer: a long-polling client whose requests land anywhere misses nothing', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const { nodes } = await cluster(env, { count: 3 });
    const lb = await balancer(env, nodes, { mode: 'roundrobin' });
    const v = await newVisitor(lb);
    const first = await visitorSend(lb, v.token, 'first');
    const ana = await agentLogin(nodes[1], ANA.email, ANA.password);
    const N = 30;
    const sent = [];
    const writer = (async () => {
      for (let i = 0; i < N; i++) sent.push((await agentSend(nodes[i % 3], ana, first.conversation_id, `reply ${i}`)).id);
    })();
    const got = [];
    let cursor = first.id;
    const deadline = Date.now() + 60000;
    while (got.length < N && Date.now() < deadline) {
      const r = await api(lb.base, 'GET', `/push/longpoll?after=${cursor}&timeout=5`, { token: v.token });
      assert.equal(r.status, 200, r.text);
      for (const e of r.json.events) if (e.type === 'message') got.push(e.message);
      cursor = r.json.cursor;
    }
    await writer;
    assert.deepEqual(got.map((m) => m.body), sent.map((_, i) => `reply ${i}`), 'every reply once, in order');
    assert.deepEqual(got.map((m) => m.id), sent);
    for (const node of nodes) assert.ok(lb.connections.get(node) > 0, `${node.name} served some of the requests`);
  }),
);
