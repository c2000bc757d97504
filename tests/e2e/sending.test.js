'use strict';
// sending.test.js: exactly-once sending from the visitor page and the agent console, over every
// push transport, while the connection is cut in the middle of sends: (a) the server stops while
// both sides send three messages each, and comes back; (b) a proxy forwards each send to kefu but
// loses its answer (over HTTP it destroys the connection once kefu has answered; over the
// WebSocket it closes the socket once kefu has acknowledged the `send` frame, before the ack or
// the message event reaches the page); (c) the pages are reloaded while messages are pending. The
// pages must deliver everything by themselves, each message stored once, shown once on both sides
// in the server's order, with no error left. Then: a message the server refuses for good is shown
// as failed, with Retry and Delete; and the console reaches conversations beyond the first page.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { scenario, closeBrowser, eventually, newVisitor, visitorSend, RAISED_LIMITS } = require('./harness');
const { OP, frame, FrameParser } = require('./wsraw');
const {
  T, ANA, waitState, waitConnected, openVisitor, openAgent, readMsgs, visitorSay, visitorToken, conversationOf,
  convSel, waitConv, selectConv, assertNoPageProblems,
} = require('./pages');

after(closeBrowser);

const T_BACK = 45000; // delivery after the way is clear again: push backoff (up to 15 s) + outbox backoff
const SEND_PATH = /^\/api\/(visitor|conversations\/\d+)\/messages$/;

// A forwarding proxy in front of kefu that can lose the answers to message sends, after kefu has
// stored them. mode 'open' forwards everything; 'lose-first' loses the answer to the first attempt
// of each idempotency key (the retry goes through); 'lose-all' loses every answer. Everything
// else (pages, history, push streams) is forwarded as it is. Counts each key's attempts, and sends
// that came without a key.
class CutProxy {
  constructor(target) {
    this.target = target;
    this.mode = 'open';
    this.attempts = new Map(); // key -> sends seen
    this.modeAtFirst = new Map(); // key -> the mode when it was first seen
    this.lost = 0; // answers lost
    this.lostOnSocket = 0; // ...of them, acks on a WebSocket
    this.unkeyed = 0; // sends without a key
    this.sockets = new Set();
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
  }

  // Is the answer to this attempt of `key` to be lost?
  cut(key) {
    if (!key) {
      this.unkeyed++;
      return false;
    }
    const n = (this.attempts.get(key) || 0) + 1;
    this.attempts.set(key, n);
    if (n === 1) this.modeAtFirst.set(key, this.mode);
    return this.mode === 'lose-all' || (this.mode === 'lose-first' && n === 1);
  }

  keysFirstSeenIn(mode) {
    return [...this.modeAtFirst].filter(([, m]) => m === mode).map(([k]) => k);
  }

  forward(req, res) {
    const send = req.method === 'POST' && SEND_PATH.test(req.url.split('?')[0]);
    const lose = send && this.cut(req.headers['idempotency-key']);
    const up = http.request({ host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      if (!lose) {
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
        return;
      }
      // kefu has answered, so the message is stored: the page never hears of it.
      upRes.resume();
      upRes.on('end', () => {
        this.lost++;
        res.socket.destroy();
      });
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }

  // A WebSocket, frame by frame both ways. After a `send` whose answer is to be lost: nothing more
  // goes either way, and once kefu acknowledges it both sockets close.
  upgrade(req, socket, head) {
    const up = net.connect(this.target, '127.0.0.1');
    this.sockets.add(socket);
    const both = () => {
      up.destroy();
      socket.destroy();
      this.sockets.delete(socket);
    };
    up.on('error', both);
    socket.on('error', both);
    up.on('close', both);
    socket.on('close', both);
    const fromPage = new FrameParser();
    const fromKefu = new FrameParser();
    let cutRef = null;
    let answerHead = Buffer.alloc(0);
    let passRaw = false; // the handshake was refused: forward its answer as it is
    let upgraded = false;
    const onPage = (chunk) => {
      for (const f of fromPage.push(chunk)) {
        if (cutRef !== null) return;
        const action = f.opcode === OP.TEXT && f.json && typeof f.json === 'object' ? f.json : null;
        const lose = !!action && action.type === 'send' && this.cut(action.key);
        up.write(frame({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, payload: f.payload, mask: true }));
        if (lose) cutRef = String(action.ref);
      }
    };
    const onKefu = (chunk) => {
      if (passRaw) {
        socket.write(chunk);
        return;
      }
      if (!upgraded) {
        answerHead = Buffer.concat([answerHead, chunk]);
        const end = answerHead.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.write(answerHead.subarray(0, end + 4));
        chunk = answerHead.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(answerHead.toString('latin1'))) {
          passRaw = true;
          socket.write(chunk);
          return;
        }
        upgraded = true;
      }
      for (const f of fromKefu.push(chunk)) {
        if (cutRef !== null) {
          const reply = f.opcode === OP.TEXT && f.json;
          if (reply && (reply.type === 'ack' || reply.type === 'error') && String(reply.ref) === cutRef) {
            this.lost++;
            this.lostOnSocket++;
            both();
            return;
          }
          continue; // the message event, heartbeats: held back, then dropped with the socket
        }
        socket.write(frame({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, payload: f.payload, mask: false }));
      }
    };
    up.on('connect', () => {
      let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(lines + '\r\n');
      up.on('data', onKefu);
      socket.on('data', onPage);
      if (head.length) onPage(head);
    });
  }

  close() {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(resolve);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Page helpers

// Types each message into the composer and presses Enter: each shows at once, pending.
async function typeAll(p, input, bodies) {
  for (const body of bodies) {
    await p.page.fill(input, body);
    await p.page.press(input, 'Enter');
    await p.page.waitForFunction(({ input, body }) => {
      const shown = [...document.querySelectorAll('.msg .msg-body')].some((b) => b.textContent === body);
      return shown && document.querySelector(input).value === '';
    }, { input, body }, { timeout: T, polling: 50 });
  }
}

// The unsent bubbles in a thread: their text, key and state, and how they say it.
function pendingOf(page, container) {
  return page.$$eval(`${container} .msg.pending`, (els) => els.map((e) => ({
    body: e.querySelector('.msg-body').textContent,
    key: e.getAttribute('data-key'),
    state: e.getAttribute('data-state'),
    label: e.getAttribute('aria-label'),
    status: e.querySelector('.msg-meta') ? e.querySelector('.msg-meta').textContent : '',
    hasId: e.hasAttribute('data-id'),
  })));
}

async function expectPending(page, container, bodies) {
  const got = await pendingOf(page, container);
  assert.deepEqual(got.map((p) => p.body), bodies, `${container}: pending bubbles in the order written: ${JSON.stringify(got)}`);
  for (const p of got) {
    assert.match(p.key, /^[0-9a-f-]{36}$/, `${container}: a pending bubble carries its key (a UUID): ${JSON.stringify(p)}`);
    assert.ok(!p.hasId, `${container}: no data-id before the server has it`);
    assert.ok(['sending', 'waiting'].includes(p.state), `${container}: state of ${JSON.stringify(p)}`);
    assert.match(p.label, /not sent yet/i, `${container}: an accessible label says it is not sent: ${JSON.stringify(p)}`);
    assert.match(p.status, /Sending|Waiting|Retrying/, `${container}: the bubble says so: ${JSON.stringify(p)}`);
  }
}

async function errorShown(page, selector) {
  return page.$eval(selector, (e) => !e.hidden && e.textContent.trim() !== '').catch(() => false);
}

// Waits until both pages have delivered everything (nothing pending, every body shown), then
// checks exactly once: the server stored each body once, each side's messages in the order they
// were written, and both pages show exactly the server's messages (ids and text) in its order.
async function expectDelivered(srv, token, visitor, agent, sent, what) {
  const all = [...sent.visitor, ...sent.agent];
  // The outboxes empty: the server has answered for every message (a bubble may show the message
  // before that, from the push stream, once the server has it).
  for (const [p, key] of [[visitor, 'kefu.outbox.visitor'], [agent, agent.outboxKey]]) {
    await eventually(async () => (await outboxStored(p.page, key)).length === 0, { timeout: T_BACK, what: `${what}: ${p.label}'s outbox empty` });
  }
  for (const [p, container] of [[visitor, '#messages'], [agent, '#thread']]) {
    await eventually(async () => {
      const got = await readMsgs(p.page, container);
      const pending = got.filter((m) => m.state);
      const shown = got.map((m) => m.body);
      return pending.length === 0 && all.every((b) => shown.includes(b));
    }, { timeout: T_BACK, what: `${what}: ${p.label} shows every message, none pending` }).catch(async (e) => {
      e.message += `; shown: ${JSON.stringify(await readMsgs(p.page, container))}`;
      throw e;
    });
  }
  const r = await srv.api('GET', '/api/visitor/messages?after=0', { token });
  assert.equal(r.status, 200, r.text);
  const stored = r.json.messages;
  for (const b of all) assert.equal(stored.filter((m) => m.body === b).length, 1, `${what}: ${JSON.stringify(b)} stored exactly once: ${JSON.stringify(stored.map((m) => m.body))}`);
  assert.deepEqual(stored.filter((m) => m.sender === 'visitor').map((m) => m.body), sent.visitor, `${what}: the visitor's messages in the order written`);
  assert.deepEqual(stored.filter((m) => m.sender === 'agent').map((m) => m.body), sent.agent, `${what}: the agent's messages in the order written`);
  const server = stored.map((m) => ({ id: String(m.id), body: m.body }));
  for (const [p, container] of [[visitor, '#messages'], [agent, '#thread']]) {
    const got = (await readMsgs(p.page, container)).map((m) => ({ id: m.id, body: m.body }));
    assert.deepEqual(got, server, `${what}: ${p.label} shows the server's messages, once each, in its order`);
  }
  assert.ok(!(await errorShown(visitor.page, '#chat-error')), `${what}: no error left on the visitor page`);
  assert.ok(!(await errorShown(agent.page, '#reply-error')), `${what}: no error left in the console`);
}

async function outboxStored(page, key) {
  return page.evaluate((k) => JSON.parse(localStorage.getItem(k) || '[]'), key);
}

async function agentId(a) {
  return a.page.evaluate(() => fetch('/api/agent/me').then((r) => r.json()).then((d) => d.agent.id));
}

async function agentReady(a, convId) {
  await a.page.waitForFunction((name) => {
    const el = document.querySelector('#agent-name');
    return el && el.offsetParent !== null && el.textContent.includes(name);
  }, ANA.name, { timeout: T });
  await waitConnected(a.page);
  await waitConv(a, convId, () => true, 'listed');
  await selectConv(a, convId);
}

// ---------------------------------------------------------------------------------------------

for (const transport of ['ws', 'sse', 'longpoll', 'poll', 'iframe']) {
  test(`sending over ${transport}: a server restart, lost answers and a reload in the middle of sends; every message stored and shown exactly once, in order`, { timeout: 150000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server({ args: RAISED_LIMITS });
      const proxy = new CutProxy(srv.port);
      await proxy.listen();
      env.defer(() => proxy.close());
      const agent = await openAgent(env, proxy, transport);
      const visitor = await openVisitor(env, proxy, transport);
      const sent = { visitor: [], agent: [] };
      await visitorSay(visitor, `hello (${transport})`);
      sent.visitor.push(`hello (${transport})`);
      const token = await visitorToken(visitor);
      const convId = await conversationOf(srv, token);
      await waitConv(agent, convId, (s) => s.unread === '1', 'the new conversation');
      await selectConv(agent, convId);
      const agentOutbox = `kefu.outbox.agent.${await agentId(agent)}`;
      agent.outboxKey = agentOutbox;

      // (a) The server stops while both sides write three messages: each shows at once as
      // pending, in order, with no error; once the server is back they go by themselves.
      await srv.stop();
      await waitState(visitor.page, ['reconnecting', 'offline'], 15000);
      await waitState(agent.page, ['reconnecting', 'offline'], 15000);
      const a = [1, 2, 3].map((i) => `visitor, while the server is down ${i}`);
      const b = [1, 2, 3].map((i) => `agent, while the server is down ${i}`);
      await typeAll(visitor, '#message-input', a);
      await typeAll(agent, '#reply-input', b);
      await expectPending(visitor.page, '#messages', a);
      await expectPending(agent.page, '#thread', b);
      assert.ok(!(await errorShown(visitor.page, '#chat-error')), 'no "not sent" error while they wait');
      assert.equal((await outboxStored(visitor.page, 'kefu.outbox.visitor')).length, 3, 'the visitor\'s outbox is stored');
      assert.deepEqual((await outboxStored(agent.page, agentOutbox)).map((e) => [e.body, e.conversation_id]), b.map((x) => [x, convId]), 'the agent\'s outbox is stored, per conversation');
      await srv.start();
      sent.visitor.push(...a);
      sent.agent.push(...b);
      await expectDelivered(srv, token, visitor, agent, sent, '(a) server restart');

      // (b) The proxy loses the answer to the first attempt of every send, after kefu stored it:
      // the retry, with the same key, must not store a second copy.
      await waitConnected(visitor.page, T_BACK);
      await waitConnected(agent.page, T_BACK);
      proxy.mode = 'lose-first';
      const c = [1, 2, 3].map((i) => `visitor, answer lost ${i}`);
      const d = [1, 2, 3].map((i) => `agent, answer lost ${i}`);
      await typeAll(visitor, '#message-input', c);
      await typeAll(agent, '#reply-input', d);
      sent.visitor.push(...c);
      sent.agent.push(...d);
      await expectDelivered(srv, token, visitor, agent, sent, '(b) lost answers');
      const lostKeys = proxy.keysFirstSeenIn('lose-first');
      assert.equal(lostKeys.length, 6, `six keys went through the proxy: ${JSON.stringify([...proxy.modeAtFirst])}`);
      for (const k of lostKeys) assert.ok(proxy.attempts.get(k) >= 2, `key ${k}: its answer was lost and it was sent again (${proxy.attempts.get(k)} attempts)`);
      assert.ok(proxy.lost >= 6, `answers lost: ${proxy.lost}`);
      if (transport === 'ws') assert.ok(proxy.lostOnSocket >= 2, `sends went over the WebSocket, and acks were lost there: ${proxy.lostOnSocket}`);

      // (c) Every answer is lost; the pages are reloaded with messages pending. After the
      // reload they are still there (the first one, stored already, shown once: from the
      // history), and they go once the answers come through again.
      proxy.mode = 'open';
      await waitConnected(visitor.page, T_BACK);
      await waitConnected(agent.page, T_BACK);
      proxy.mode = 'lose-all';
      const e = [1, 2].map((i) => `visitor, pending over a reload ${i}`);
      const f = [1, 2].map((i) => `agent, pending over a reload ${i}`);
      await typeAll(visitor, '#message-input', e);
      await typeAll(agent, '#reply-input', f);
      await eventually(() => proxy.keysFirstSeenIn('lose-all').length === 2 && proxy.lost >= 2, { timeout: T, what: 'the first of each side was stored, its answer lost' });
      await visitor.page.reload();
      await agent.page.reload();
      await waitConnected(visitor.page, T_BACK);
      await agentReady(agent, convId);
      await eventually(async () => {
        const pv = await pendingOf(visitor.page, '#messages');
        const pa = await pendingOf(agent.page, '#thread');
        return pv.some((p) => p.body === e[1]) && pa.some((p) => p.body === f[1]);
      }, { timeout: T, what: 'after the reload, the unsent messages are still shown, pending' });
      for (const [p, container, bodies] of [[visitor, '#messages', e], [agent, '#thread', f]]) {
        const got = await readMsgs(p.page, container);
        for (const body of bodies) assert.equal(got.filter((m) => m.body === body).length, 1, `${p.label}: ${body} shown once after the reload: ${JSON.stringify(got)}`);
      }
      assert.equal((await outboxStored(visitor.page, 'kefu.outbox.visitor')).length, 2, 'both kept in storage over the reload');
      proxy.mode = 'open';
      sent.visitor.push(...e);
      sent.agent.push(...f);
      await expectDelivered(srv, token, visitor, agent, sent, '(c) reload');
      assert.deepEqual(await outboxStored(visitor.page, 'kefu.outbox.visitor'), [], 'the visitor\'s outbox is empty');
      assert.deepEqual(await outboxStored(agent.page, agentOutbox), [], 'the agent\'s outbox is empty');
      assert.equal(proxy.unkeyed, 0, 'every send carried an idempotency key');
      assertNoPageProblems(visitor, agent);
    }),
  );
}

test('a message the server refuses for good is shown as failed, with Retry and Delete; the messages after it still go', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const visitor = await openVisitor(env, srv, null);
    await visitorSay(visitor, 'first');
    const token = await visitorToken(visitor);
    const convId = await conversationOf(srv, token);
    // A message longer than the server takes (4000 characters), as a page of another version
    // might have queued: 422, for good.
    const tooLong = 'x'.repeat(4001);
    const seed = (key, extra) => [{ key, body: tooLong, created_at: Date.now(), after: 0, attempts: 0, ...extra }];
    await visitor.page.evaluate((v) => localStorage.setItem('kefu.outbox.visitor', JSON.stringify(v)), seed('test-too-long-visitor'));
    await visitor.page.reload();
    await waitConnected(visitor.page);
    const failed = '#messages .msg.pending.failed[data-key="test-too-long-visitor"]';
    await visitor.page.waitForSelector(failed, { timeout: T });
    const shown = await visitor.page.$eval(failed, (e) => ({
      state: e.getAttribute('data-state'),
      label: e.getAttribute('aria-label'),
      text: e.textContent,
      retry: !!e.querySelector('button.msg-retry'),
      discard: !!e.querySelector('button.msg-discard'),
    }));
    assert.equal(shown.state, 'failed');
    assert.match(shown.label, /not sent/i, 'its label says so');
    assert.match(shown.text, /Not sent/, 'the bubble says so');
    assert.match(shown.text, /4000/, 'with the server\'s reason');
    assert.ok(shown.retry && shown.discard, 'Retry and Delete buttons');
    // The next message goes past it.
    await visitorSay(visitor, 'second');
    assert.ok(await visitor.page.$(failed), 'the failed one stays');
    // Retry: refused again, failed again.
    await visitor.page.click(`${failed} .msg-retry`);
    await visitor.page.waitForSelector(`${failed}`, { timeout: T });
    await eventually(async () => (await outboxStored(visitor.page, 'kefu.outbox.visitor'))[0].attempts >= 2, { what: 'retried' });
    await visitor.page.waitForSelector(failed, { timeout: T });
    // Delete: gone from the page and from storage.
    await visitor.page.click(`${failed} .msg-discard`);
    await visitor.page.waitForSelector(failed, { state: 'detached', timeout: T });
    assert.deepEqual(await outboxStored(visitor.page, 'kefu.outbox.visitor'), []);
    const r = await srv.api('GET', '/api/visitor/messages?after=0', { token });
    assert.deepEqual(r.json.messages.map((m) => m.body), ['first', 'second']);

    // The console: the list says "Not sent" on the conversation; its thread has the bubble.
    const agent = await openAgent(env, srv, null);
    const k = `kefu.outbox.agent.${await agentId(agent)}`;
    await agent.page.evaluate(({ k, v }) => localStorage.setItem(k, JSON.stringify(v)), { k, v: seed('test-too-long-agent', { conversation_id: convId }) });
    await agent.page.reload();
    await agentReady(agent, convId);
    await agent.page.waitForSelector('#thread .msg.pending.failed[data-key="test-too-long-agent"] .msg-retry', { timeout: T });
    await agent.page.waitForFunction((sel) => {
      const mark = document.querySelector(sel + ' .conv-outbox');
      return mark && !mark.hidden && /Not sent/.test(mark.textContent);
    }, convSel(convId), { timeout: T });
    await agent.page.click('#thread .msg.pending.failed .msg-discard');
    await agent.page.waitForSelector('#thread .msg.pending', { state: 'detached', timeout: T });
    await agent.page.waitForFunction((sel) => document.querySelector(sel + ' .conv-outbox').hidden, convSel(convId), { timeout: T });
    assertNoPageProblems(visitor, agent);
  }),
);

test('the console reaches every conversation: the next page when the list is scrolled to its end or "Load older conversations" is pressed, merged with live events, no duplicates', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    // 205 conversations, the oldest first: more than one page (200) of the list.
    const visitors = [];
    for (let i = 0; i < 205; i += 15) {
      const batch = await Promise.all(Array.from({ length: Math.min(15, 205 - i) }, async (_, j) => {
        const v = await newVisitor(srv, `Paged ${String(i + j).padStart(3, '0')}`);
        const m = await visitorSend(srv, v.token, `question ${i + j}`);
        return { ...v, convId: m.conversation_id };
      }));
      visitors.push(...batch);
    }
    const ids = visitors.map((v) => v.convId);
    assert.equal(new Set(ids).size, 205);
    const agent = await openAgent(env, srv, null);
    const listed = () => agent.page.$$eval('#conversation-list .conv-item', (els) => els.map((e) => Number(e.getAttribute('data-id'))));
    await eventually(async () => (await listed()).length === 200, { what: 'the first page: 200' });
    assert.ok(await agent.page.isVisible('#load-older'), '"Load older conversations" is shown while pages remain');

    // The oldest conversation (on the second page) gets a message: it comes live, to the top.
    const oldest = visitors[0];
    await visitorSend(srv, oldest.token, 'back again');
    await waitConv(agent, oldest.convId, (s) => s.preview === 'back again', 'the oldest conversation, live');
    assert.equal((await listed())[0], oldest.convId, 'most recently active first');

    // Scrolled to the end: the next page comes, merged: every conversation once.
    await agent.page.$eval('#list-scroll', (el) => { el.scrollTop = el.scrollHeight; });
    await eventually(async () => (await listed()).length === 205, { what: 'all 205 after scrolling to the end' });
    const all = await listed();
    assert.equal(new Set(all).size, all.length, 'no conversation twice');
    assert.deepEqual([...all].sort((x, y) => x - y), [...ids].sort((x, y) => x - y), 'every conversation listed');
    assert.ok(!(await agent.page.isVisible('#load-older')), 'no button once everything is loaded');

    // From the keyboard, with a smaller page (?page_size=, for tests): the button loads the next
    // page and focus goes on to the first conversation it brought.
    const small = await openAgent(env, srv, null, ANA, { page_size: '60' });
    const smallListed = () => small.page.$$eval('#conversation-list .conv-item', (els) => els.length);
    await eventually(async () => (await smallListed()) === 60, { what: 'a page of 60' });
    await small.page.focus('#load-older');
    await small.page.keyboard.press('Enter');
    await eventually(async () => (await smallListed()) >= 120, { what: 'the next page' });
    await eventually(() => small.page.evaluate(() => document.activeElement && document.activeElement.classList.contains('conv-item')), { what: 'focus on the first new conversation' });
    await eventually(async () => {
      if (await small.page.isVisible('#load-older')) await small.page.click('#load-older');
      return (await smallListed()) === 205;
    }, { timeout: 20000, what: 'every page' });
    assertNoPageProblems(agent, small);
  }),
);
