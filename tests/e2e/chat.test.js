'use strict';
// chat.test.js: the visitor page and the agent console in a real browser, for each push transport.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { TRANSPORTS, scenario, closeBrowser, DEFAULT_AGENTS, eventually } = require('./harness');
const {
  T, T_RESTART, ANA, assertNoPageProblems, waitState, waitConnected, assertConnected, openVisitor, openAgent,
  waitMsg, expectThread, visitorSay, agentSay, visitorToken, conversationOf, waitConv, selectConv, agentCookie, readMsgs, convSel, V, A,
} = require('./pages');

after(closeBrowser);

// ---------------------------------------------------------------------------------------------
// Page checks of this file

function assertNoXss(pages) {
  return Promise.all(
    pages.map(async (p) => {
      assert.deepEqual(p.dialogs, [], `${p.label}: no dialog fired`);
      for (const f of p.page.frames()) {
        const x = await f.evaluate(() => [window.__xss, window.parent && window.parent.__xss]).catch(() => [undefined, undefined]);
        assert.deepEqual(x, [undefined, undefined], `${p.label}: window.__xss set in frame ${f.url()}`);
      }
      const bad = await p.page.$$eval('.msg-body img, .msg-body script, .msg-body svg, .conv-preview *', (els) => els.map((e) => e.outerHTML));
      assert.deepEqual(bad, [], `${p.label}: elements injected inside message bodies/previews`);
    }),
  );
}


// ---------------------------------------------------------------------------------------------

// Every transport a browser can be forced to (the curl-based protocol tests cover the first three).
for (const transport of [...TRANSPORTS, 'sse', 'ws']) {
  test(`chat over ${transport}: live exchange, unread badge, visitor reload, server restart`, { timeout: 240000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const agent = await openAgent(env, srv, transport);
      assert.equal(await agent.page.$$eval('#conversation-list .conv-item', (e) => e.length), 0, 'no conversations yet');
      assert.ok(await agent.page.isDisabled('#reply-input'), '#reply-input disabled until a conversation is selected');

      const visitor = await openVisitor(env, srv, transport);
      const tag = `${transport}-${Date.now() % 100000}`;
      const q1 = `Hello, is anyone there? (${tag} q1)`;
      await visitorSay(visitor, q1);
      const token = await visitorToken(visitor);
      const convId = await conversationOf(srv, token);

      // The conversation appears live in the console with badge 1.
      const st = await waitConv(agent, convId, (s) => s.unread === '1', 'data-unread="1"');
      assert.equal(st.badgeText, '1', 'badge shows 1');
      assert.ok(st.badgeVisible, 'badge visible when unread > 0');
      assert.ok(st.preview && st.preview.includes(q1), `preview shows the last message: ${st.preview}`);
      assert.equal(st.previewChildren, 0, 'preview is text only');
      assert.ok(st.hasTime, '.conv-time present');
      assert.ok(st.name !== null, '.conv-name present');

      // Selecting it marks it read.
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', q1, 'visitor');
      const st0 = await waitConv(agent, convId, (s) => s.unread === '0', 'data-unread="0" after selecting');
      assert.ok(!st0.badgeVisible, 'badge hidden when 0');
      await agent.page.waitForSelector('#thread-title', { state: 'attached', timeout: T });
      // The read mark reached the server (asked with the console's own cookie).
      const cookie = await agentCookie(agent);
      await eventually(async () => {
        const rc = await srv.api('GET', `/api/conversations/${convId}`, { cookie });
        assert.equal(rc.status, 200, rc.text);
        assert.equal(rc.json.conversation.unread, 0, `server unread after selecting: ${rc.text}`);
        return true;
      }, { what: 'GET /api/conversations/{id} unread 0' });

      const r1 = `We are here, how can I help? (${tag} r1)`;
      await agentSay(agent, r1, { click: true });
      await waitMsg(visitor.page, '#messages', r1, 'agent');

      const q2 = `My order has not arrived (${tag} q2)`;
      await visitorSay(visitor, q2);
      await waitMsg(agent.page, '#thread', q2, 'visitor');
      await waitConv(agent, convId, (s) => s.unread === '0' && s.preview.includes(q2), 'selected conversation stays read, preview updated');
      const r2 = `Let me check that for you (${tag} r2)`;
      await agentSay(agent, r2);
      await waitMsg(visitor.page, '#messages', r2, 'agent');

      let expected = [V(q1), A(r1), V(q2), A(r2)];
      await expectThread(visitor.page, '#messages', expected);
      await expectThread(agent.page, '#thread', expected);
      const author = await visitor.page.$eval('#messages .msg[data-sender="agent"] .msg-author', (e) => e.textContent);
      assert.ok(author.includes(ANA.name), `.msg-author shows the agent's name: ${author}`);

      // A reload of the visitor page in the middle: every message exactly once, same identity.
      await visitor.page.reload();
      await waitConnected(visitor.page);
      await expectThread(visitor.page, '#messages', expected);
      assert.equal(await visitorToken(visitor), token, 'same visitor token after reload');
      const q3 = `Order number 12345 (${tag} q3)`;
      await visitorSay(visitor, q3);
      await waitMsg(agent.page, '#thread', q3, 'visitor');
      const r3 = `Found it, it ships tomorrow (${tag} r3)`;
      await agentSay(agent, r3);
      await waitMsg(visitor.page, '#messages', r3, 'agent');
      expected = [...expected, V(q3), A(r3)];
      await expectThread(visitor.page, '#messages', expected);
      await expectThread(agent.page, '#thread', expected);

      // A server restart in the middle: both pages reconnect by themselves.
      // While it is down, both pages say so; once it is back they reconnect by themselves.
      await srv.stop();
      await waitState(visitor.page, ['reconnecting', 'offline'], 15000);
      await waitState(agent.page, ['reconnecting', 'offline'], 15000);
      await srv.start();
      await waitConnected(visitor.page, T_RESTART);
      await waitConnected(agent.page, T_RESTART);
      const q4 = `Thanks! One more thing (${tag} q4)`;
      await visitorSay(visitor, q4);
      await waitMsg(agent.page, '#thread', q4, 'visitor', T_RESTART);
      const r4 = `Sure, go ahead (${tag} r4)`;
      await agentSay(agent, r4);
      await waitMsg(visitor.page, '#messages', r4, 'agent', T_RESTART);
      const q5 = `Can I change the address? (${tag} q5)`;
      await visitorSay(visitor, q5);
      await waitMsg(agent.page, '#thread', q5, 'visitor');
      const r5 = `Yes, done (${tag} r5)`;
      await agentSay(agent, r5);
      await waitMsg(visitor.page, '#messages', r5, 'agent');
      expected = [...expected, V(q4), A(r4), V(q5), A(r5)];
      const vis = await expectThread(visitor.page, '#messages', expected);
      const ag = await expectThread(agent.page, '#thread', expected);
      assert.deepEqual(vis.map((m) => m.id), ag.map((m) => m.id), 'same message ids on both pages');

      // The server's record agrees with both pages.
      const all = await srv.api('GET', '/api/visitor/messages?after=0', { token });
      assert.equal(all.status, 200);
      assert.deepEqual(all.json.messages.map((m) => String(m.id)), vis.map((m) => m.id), 'server messages = page messages');
      assert.deepEqual(all.json.messages.map((m) => m.body), expected.map((e) => e.body));

      // New messages in the selected, visible conversation were marked read on the server.
      await eventually(async () => {
        const rc = await srv.api('GET', `/api/conversations/${convId}`, { cookie });
        assert.equal(rc.status, 200, rc.text);
        assert.equal(rc.json.conversation.unread, 0, `server unread after q5 arrived in the selected thread: ${rc.text}`);
        return true;
      }, { what: 'unread 0 on the server' });

      // The console survives a reload (GET /api/agent/me), still logged in, conversation read.
      await agent.page.reload();
      await agent.page.waitForFunction((name) => {
        const el = document.querySelector('#agent-name');
        return el && el.offsetParent !== null && el.textContent.includes(name);
      }, ANA.name, { timeout: T });
      await waitConnected(agent.page);
      await waitConv(agent, convId, (s) => s.unread === '0' && s.preview.includes(r5), 'after console reload: read, preview = last message');
      await assertConnected(visitor, agent);
      assert.deepEqual(visitor.dialogs.concat(agent.dialogs), [], 'no dialogs');
      assertNoPageProblems(visitor, agent);
    }),
  );

  test(`chat over ${transport}: two visitors never see each other's messages`, { timeout: 180000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const agent = await openAgent(env, srv, transport);
      const va = await openVisitor(env, srv, transport, 'visitor A');
      const vb = await openVisitor(env, srv, transport, 'visitor B');
      const a1 = `A: my password reset mail never came (${transport})`;
      const b1 = `B: I want a refund (${transport})`;
      await visitorSay(va, a1);
      await visitorSay(vb, b1);
      const ta = await visitorToken(va);
      const tb = await visitorToken(vb);
      assert.notEqual(ta, tb, 'two contexts, two visitor tokens');
      const ca = await conversationOf(srv, ta);
      const cb = await conversationOf(srv, tb);
      assert.notEqual(ca, cb, 'two conversations');

      await waitConv(agent, ca, (s) => s.unread === '1', 'A unread 1');
      await waitConv(agent, cb, (s) => s.unread === '1', 'B unread 1');
      const order = await agent.page.$$eval('#conversation-list .conv-item', (els) => els.map((e) => e.getAttribute('data-id')));
      assert.deepEqual(order.slice(0, 2), [String(cb), String(ca)], 'most recently active first');

      await selectConv(agent, ca);
      await expectThread(agent.page, '#thread', [V(a1)]);
      const toA = `Reply for A only (${transport})`;
      await agentSay(agent, toA);
      await selectConv(agent, cb);
      await expectThread(agent.page, '#thread', [V(b1)]);
      const toB = `Reply for B only (${transport})`;
      await agentSay(agent, toB);
      await waitMsg(va.page, '#messages', toA, 'agent');
      await waitMsg(vb.page, '#messages', toB, 'agent');

      // A writes again while B's conversation is selected: A's badge goes to 1, B's thread unchanged.
      const a2 = `A again (${transport})`;
      await visitorSay(va, a2);
      await waitConv(agent, ca, (s) => s.unread === '1', 'A unread 1 while B selected');
      await expectThread(agent.page, '#thread', [V(b1), A(toB)]);
      // B writes; once the agent has it, everything has been pushed: check both DOMs.
      const b2 = `B again (${transport})`;
      await visitorSay(vb, b2);
      await waitMsg(agent.page, '#thread', b2, 'visitor');

      await expectThread(va.page, '#messages', [V(a1), A(toA), V(a2)]);
      await expectThread(vb.page, '#messages', [V(b1), A(toB), V(b2)]);

      // And through the API: B's token cannot read A's messages.
      const mb = await srv.api('GET', '/api/visitor/messages?after=0', { token: tb });
      assert.equal(mb.status, 200);
      assert.deepEqual(mb.json.messages.map((m) => m.body), [b1, toB, b2]);
      assert.ok(mb.json.messages.every((m) => m.conversation_id === cb));
      const pb = await srv.api('GET', '/push/poll?after=0', { token: tb });
      assert.equal(pb.status, 200, pb.text);
      const leaked = pb.json.events.filter((e) => e.type === 'message' && e.message.conversation_id !== cb);
      assert.deepEqual(leaked, [], "B's poll has no message of another conversation");
      for (const p of [`/api/conversations/${ca}/messages?after=0`, `/api/conversations/${ca}`]) {
        const r = await srv.api('GET', p, { token: tb });
        assert.ok(r.status === 401 || r.status === 403, `GET ${p} with visitor B's bearer: expected 401/403, got ${r.status} ${r.text}`);
      }
      await assertNoXss([va, vb, agent]);
      await assertConnected(va, vb, agent);
      assertNoPageProblems(va, vb, agent);
    }),
  );

  test(`chat over ${transport}: HTML in messages shows as literal text`, { timeout: 180000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const agent = await openAgent(env, srv, transport);
      const visitor = await openVisitor(env, srv, transport);
      const p1 = '<img src=x onerror=alert(1)>';
      const p2 = '<script>window.__xss=1</script>';
      const p3 = '</script><script>parent.__xss=2;alert(3)</script>';
      const p4 = '"><svg onload=alert(4)> &amp; &lt;b&gt;';
      await visitorSay(visitor, p1);
      const token = await visitorToken(visitor);
      const convId = await conversationOf(srv, token);
      await visitorSay(visitor, p2);
      await waitConv(agent, convId, (s) => s.unread === '2' && s.preview.includes(p2), 'unread 2, preview = script payload as text');
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', p2, 'visitor');
      await agentSay(agent, p3);
      await agentSay(agent, p4);
      await visitorSay(visitor, p3);
      await waitMsg(visitor.page, '#messages', p4, 'agent');
      await waitMsg(agent.page, '#thread', p3, 'visitor');
      // Shift+Enter is a newline, the send button sends.
      await visitor.page.fill('#message-input', '');
      await visitor.page.type('#message-input', 'line one');
      await visitor.page.keyboard.press('Shift+Enter');
      await visitor.page.type('#message-input', 'line two');
      assert.equal(await visitor.page.inputValue('#message-input'), 'line one\nline two', 'Shift+Enter inserts a newline, does not send');
      await visitor.page.click('#send-button');
      const p5 = 'line one\nline two';
      await waitMsg(visitor.page, '#messages', p5, 'visitor');
      await waitMsg(agent.page, '#thread', p5, 'visitor');
      assert.equal(await visitor.page.inputValue('#message-input'), '', 'the composer is cleared after sending');
      const expected = [V(p1), V(p2), A(p3), A(p4), V(p3), V(p5)];
      await expectThread(visitor.page, '#messages', expected);
      await expectThread(agent.page, '#thread', expected);
      await assertNoXss([visitor, agent]);
      await assertConnected(visitor, agent);

      // From history too (reload both).
      await visitor.page.reload();
      await agent.page.reload();
      await waitConnected(visitor.page);
      await waitConnected(agent.page);
      await expectThread(visitor.page, '#messages', expected);
      await waitConv(agent, convId, (s) => s.preview.includes('line two'), 'preview after reload');
      await selectConv(agent, convId);
      await expectThread(agent.page, '#thread', expected);
      await assertNoXss([visitor, agent]);
      assertNoPageProblems(visitor, agent);
    }),
  );
}

test('agent console: wrong password shows #login-error', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const page = await env.page('agent');
    await page.goto(`${srv.base}/agent`);
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    await page.fill('#login-email', ANA.email);
    await page.fill('#login-password', 'wrong password');
    const fieldAt = async () => (await page.getByRole('textbox', { name: 'Password' }).boundingBox()).y;
    const before = await fieldAt();
    await page.click('#login-submit');
    await page.waitForSelector('#login-error', { state: 'visible', timeout: T });
    const msg = (await page.textContent('#login-error')).trim();
    assert.equal(msg, 'Wrong e-mail or password. Check both and try again.', 'our words, not the server\'s');
    assert.equal(await fieldAt(), before, 'the fields do not move when the error appears');
    assert.ok(!(await page.isVisible('#agent-name')) || !(await page.textContent('#agent-name')).includes(ANA.name), 'not logged in');
    await page.fill('#login-password', ANA.password);
    await page.click('#login-submit');
    await page.waitForFunction((name) => {
      const el = document.querySelector('#agent-name');
      return el && el.offsetParent !== null && el.textContent.includes(name);
    }, ANA.name, { timeout: T });
    // Logout returns to the login form; a reload stays logged out.
    await page.click('#logout-button');
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    await page.reload();
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
  }),
);

test('two agents at once, transport chosen by the page: both see new questions and each other\'s replies live', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await openAgent(env, srv, null, DEFAULT_AGENTS[0]);
    const bo = await openAgent(env, srv, null, DEFAULT_AGENTS[1]);
    for (const a of [ana, bo]) {
      const chosen = await a.page.$eval('#conn-state', (el) => el.getAttribute('data-transport'));
      assert.equal(chosen, 'ws', `${a.label}: the best transport that works here is WebSocket`);
    }
    const v1 = await openVisitor(env, srv, null, 'visitor 1');
    const v2 = await openVisitor(env, srv, null, 'visitor 2');
    await visitorSay(v1, 'Question one');
    await visitorSay(v2, 'Question two');
    const c1 = await conversationOf(srv, await visitorToken(v1));
    const c2 = await conversationOf(srv, await visitorToken(v2));
    for (const a of [ana, bo]) {
      await waitConv(a, c1, (st) => st.unread === '1', 'unread 1 (conversation 1)');
      await waitConv(a, c2, (st) => st.unread === '1', 'unread 1 (conversation 2)');
    }
    // Ana answers the first visitor; Bo sees the reply in that thread without a reload.
    await selectConv(ana, c1);
    await agentSay(ana, 'Ana here, on it');
    await waitMsg(v1.page, '#messages', 'Ana here, on it', 'agent');
    await selectConv(bo, c1);
    await expectThread(bo.page, '#thread', [V('Question one'), A('Ana here, on it')]);
    // Ana read conversation 1, so it is read for the team; conversation 2 is still unread for both.
    await waitConv(bo, c1, (st) => st.unread === '0', 'unread 0 after Ana read it');
    await waitConv(ana, c2, (st) => st.unread === '1', 'still unread 1');
    // Bo answers the second visitor while Ana watches the list.
    await selectConv(bo, c2);
    await agentSay(bo, 'Bo here, hello');
    await waitMsg(v2.page, '#messages', 'Bo here, hello', 'agent');
    await waitConv(ana, c2, (st) => st.preview !== null && st.preview.includes('Bo here, hello'), 'preview of Bo\'s reply');
    // Neither visitor sees the other's conversation.
    await expectThread(v1.page, '#messages', [V('Question one'), A('Ana here, on it')]);
    await expectThread(v2.page, '#messages', [V('Question two'), A('Bo here, hello')]);
    assertNoPageProblems(ana, bo, v1, v2);
  }),
);

// ---------------------------------------------------------------------------------------------
// Typing indicators and the "Seen" mark are ephemeral events (no id, never replayed). A page on
// poll or long poll is between two requests most of the time (poll) or now and then (long poll):
// it gets the ones sent meanwhile from the server's window of recent ones, with its next request
// (PROTOCOL.md, "Ephemeral events between requests").

// Waits until selector is shown and its text matches re.
async function waitShown(page, selector, re, timeout = T) {
  try {
    await page.waitForSelector(selector, { state: 'visible', timeout });
    await page.waitForFunction(({ selector, source }) => new RegExp(source).test(document.querySelector(selector).textContent), { selector, source: re.source }, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`${page.url()}: ${selector} not shown with ${re} within ${timeout} ms`);
  }
}

for (const transport of ['poll', 'longpoll']) {
  test(`chat over ${transport}: typing indicators and the "Seen" mark reach both pages`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const agent = await openAgent(env, srv, transport);
      const visitor = await openVisitor(env, srv, transport);
      const q1 = `Is anyone there? (${transport})`;
      await visitorSay(visitor, q1);
      const convId = await conversationOf(srv, await visitorToken(visitor));
      await waitConv(agent, convId, (s) => s.unread === '1', 'data-unread="1"');
      await selectConv(agent, convId);
      await waitMsg(agent.page, '#thread', q1, 'visitor');

      // The agent types: the visitor sees "Agent is typing…".
      assert.ok(await visitor.page.isHidden('#typing-indicator'), '#typing-indicator hidden at first');
      await agent.page.type('#reply-input', 'Let me check', { delay: 20 });
      await waitShown(visitor.page, '#typing-indicator', /Agent is typing/);
      // The visitor types: the console shows "Visitor is typing…" in the thread and in the list.
      await visitor.page.type('#message-input', 'And also', { delay: 20 });
      await waitShown(agent.page, '#thread-typing', /Visitor is typing/);
      await waitShown(agent.page, `${convSel(convId)}.typing .conv-typing`, /Visitor is typing/);

      // The agent answers; the visitor's page (visible) reads it; the console marks it "Seen".
      await agent.page.fill('#reply-input', '');
      const r1 = `Here I am (${transport})`;
      await agentSay(agent, r1);
      await waitMsg(visitor.page, '#messages', r1, 'agent');
      const reply = (await readMsgs(agent.page, '#thread')).find((m) => m.body === r1);
      await waitShown(agent.page, `#thread .msg[data-id="${reply.id}"] .msg-status`, /^Seen$/);
      // The agent read the visitor's question: "Seen" under it, and still there after a reload.
      const question = (await readMsgs(agent.page, '#thread')).find((m) => m.body === q1);
      await waitShown(visitor.page, `#messages .msg[data-id="${question.id}"] .msg-status`, /^Seen$/);
      await visitor.page.reload();
      await waitShown(visitor.page, `#messages .msg[data-id="${question.id}"] .msg-status`, /^Seen$/);
      await assertConnected(visitor, agent);
      assertNoPageProblems(visitor, agent);
    }),
  );
}
