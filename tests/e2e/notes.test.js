'use strict';
// notes.test.js: private notes (docs/API.md, "Private notes"; docs/SECURITY.md, "Private notes
// never reach a visitor"). The rule under test: a visitor never receives a note, on any path.
//  - In browsers: a visitor page over each of the five transports (?transport=); Ana writes a
//    note and then a reply in the console (the Private note switch); every visitor sees the reply
//    and never the note, live, after a reload (a replay from cursor 0), and Bo's console shows
//    the note marked, with the mention of him that opens it.
//  - Raw: poll, long poll, SSE, the forever iframe and WebSocket, opened by hand from cursor 0,
//    from the visitor's message (before the note), from the note's own id and live, carry the
//    reply and never the note; GET /api/visitor/messages likewise. A transfer with a note moves
//    the conversation and stores the note, or (to an unknown agent) does neither.
//  - A note queued in the outbox while the server is down stays a note across a reload.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, curl, CurlStream, sleep, heldLongPoll, assertError, DEFAULT_AGENTS, RAISED_LIMITS } = require('./harness');
const { openAgent, openVisitor, selectConv, waitMsg, visitorSay, visitorToken, conversationOf, waitConv, waitState, waitConnected, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const ALL = ['ws', 'sse', 'longpoll', 'iframe', 'poll'];
const T = 15000;
const SECRET = 'SECRET-NOTE';

// What a visitor page shows: every message body, and the whole text of the page.
async function visitorSees(page) {
  return page.evaluate(() => ({
    bodies: [...document.querySelectorAll('#messages .msg .msg-body')].map((e) => e.textContent),
    text: document.body.innerText,
    notes: document.querySelectorAll('#messages .msg.note, #messages .msg[data-private]').length,
  }));
}

async function assertNoNote(v, what) {
  const seen = await visitorSees(v.page);
  assert.ok(!seen.text.includes(SECRET), `${v.label} ${what}: the note is on the page: ${JSON.stringify(seen.bodies)}`);
  assert.equal(seen.notes, 0, `${v.label} ${what}: a note bubble`);
  return seen;
}

test('a note and a reply in the console: every visitor, over each transport, sees the reply and never the note, also after a reload; the mentioned agent is told', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const visitors = [];
    for (const transport of ALL) {
      const v = await openVisitor(env, srv, transport, `visitor ${transport}`);
      await visitorSay(v, `hello over ${transport}`);
      v.conv = await conversationOf(srv, await visitorToken(v));
      v.transport = transport;
      visitors.push(v);
    }
    const ana = await openAgent(env, srv, null, ANA);
    const bo = await openAgent(env, srv, null, BO);

    for (const v of visitors) {
      await waitConv(ana, v.conv, () => true, 'listed');
      await selectConv(ana, v.conv);
      // The switch: a button with visible text, pressed state, the box turns into a note.
      await ana.page.getByRole('button', { name: 'Private note' }).click();
      assert.equal(await ana.page.getAttribute('#reply-mode-note', 'aria-pressed'), 'true');
      assert.match(await ana.page.getAttribute('#reply-input', 'placeholder'), /visitor will not/);
      assert.ok(await ana.page.$eval('#reply-form', (f) => f.classList.contains('note-mode')), 'the box looks different');
      const note = `${SECRET} ${v.transport}: @bo can you check the refund?`;
      await ana.page.fill('#reply-input', note);
      await ana.page.press('#reply-input', 'Enter');
      await ana.page.waitForSelector(`#thread .msg.note[data-private="true"][data-id]`, { timeout: T });
      await waitMsg(ana.page, '#thread', note, 'agent');
      const label = await ana.page.$eval('#thread .msg.note[data-id] .msg-author', (e) => e.textContent);
      assert.match(label, /Private note/);
      await waitConv(ana, v.conv, (s) => s.preview === note, 'the note as the last message');
      assert.match(await ana.page.$eval(`#conversation-list .conv-item[data-id="${v.conv}"] .conv-preview-who`, (e) => e.textContent), /^Note · /);
      // Back to a reply (by keyboard: the switch is reachable and works with Enter).
      await ana.page.focus('#reply-mode-reply');
      await ana.page.keyboard.press('Enter');
      assert.equal(await ana.page.getAttribute('#reply-mode-reply', 'aria-pressed'), 'true');
      // The shortcuts: n for a note, r for a reply, each into the box.
      await ana.page.focus('#reply-mode-reply');
      await ana.page.keyboard.press('n');
      assert.equal(await ana.page.getAttribute('#reply-mode-note', 'aria-pressed'), 'true');
      assert.equal(await ana.page.evaluate(() => document.activeElement.id), 'reply-input');
      await ana.page.evaluate(() => document.activeElement.blur());
      await ana.page.keyboard.press('r');
      assert.equal(await ana.page.getAttribute('#reply-mode-reply', 'aria-pressed'), 'true');
      assert.equal(await ana.page.evaluate(() => document.activeElement.id), 'reply-input');
      await ana.page.fill('#reply-input', `reply over ${v.transport}`);
      await ana.page.press('#reply-input', 'Enter');
      await waitMsg(ana.page, '#thread', `reply over ${v.transport}`, 'agent');
      assert.ok(!(await ana.page.$eval(`#thread .msg[data-id]:last-child`, (e) => e.classList.contains('note'))), 'a reply is no note');
    }

    for (const v of visitors) {
      await waitMsg(v.page, '#messages', `reply over ${v.transport}`, 'agent');
      await sleep(300); // anything sent after the reply would be here by now
      const seen = await assertNoNote(v, 'live');
      assert.deepEqual(seen.bodies, [`hello over ${v.transport}`, `reply over ${v.transport}`]);
    }
    for (const v of visitors) {
      await v.page.reload();
      await waitMsg(v.page, '#messages', `reply over ${v.transport}`, 'agent');
      const seen = await assertNoNote(v, 'after a reload');
      assert.deepEqual(seen.bodies, [`hello over ${v.transport}`, `reply over ${v.transport}`]);
    }

    // Bo was mentioned in each note: a notice he can click opens the conversation at the note.
    await bo.page.waitForSelector('#mentions:not([hidden]) #mention-list li', { timeout: T });
    await bo.page.waitForFunction((n) => document.querySelectorAll('#mention-list li').length === n, ALL.length, { timeout: T });
    const first = bo.page.getByRole('button', { name: /Ana mentioned you in a note: .*poll: @bo/ }).first();
    await first.click();
    await bo.page.waitForSelector('#thread .msg.note.search-target', { timeout: T });
    const opened = await bo.page.$eval('#thread .msg.note.search-target .msg-body', (e) => e.textContent);
    assert.match(opened, new RegExp(`^${SECRET} (long)?poll: @bo`));
    await bo.page.setViewportSize({ width: 1280, height: 800 });
    await bo.page.screenshot({ path: '/tmp/notes-desktop.png' });
    await ana.page.getByRole('button', { name: 'Private note' }).click();
    await ana.page.fill('#reply-input', 'Writing a note: @Bo');
    await ana.page.setViewportSize({ width: 390, height: 844 });
    await ana.page.screenshot({ path: '/tmp/notes-phone.png' });
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    await ana.page.screenshot({ path: '/tmp/notes-composer-desktop.png' });
    // Typing a note sends no typing notice to the visitor.
    const last = visitors.at(-1);
    await ana.page.fill('#reply-input', 'still writing the note, nobody sees this');
    await sleep(800);
    assert.ok(await last.page.$eval('#typing-indicator', (e) => e.hidden || e.offsetParent === null), 'no "typing" on the visitor page for a note');
    assertNoPageProblems(ana, bo, ...visitors);
  }),
);

// ---------------------------------------------------------------------------------------------
// Raw protocol checks: what each transport sends, as text, from a cursor.

async function ticket(srv, token) {
  const r = await srv.api('POST', '/api/visitor/push-ticket', { token });
  assert.equal(r.status, 201, r.text);
  return r.json.ticket;
}

// The message events a visitor's transport carries from cursor after, and the raw text.
async function collect(srv, token, transport, after, ms = 1200) {
  if (transport === 'poll' || transport === 'longpoll') {
    const path = transport === 'poll' ? `/push/poll?after=${after}` : `/push/longpoll?after=${after}&timeout=1`;
    const r = await srv.api('GET', path, { token, timeout: 10000 });
    assert.equal(r.status, 200, r.text);
    return { text: r.text, ids: r.json.events.filter((e) => e.type === 'message').map((e) => Number(e.id)) };
  }
  if (transport === 'ws') {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/push/ws?after=${after}`, { headers: { Authorization: `Bearer ${token}` } });
    const frames = [];
    ws.on('message', (d) => frames.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('error', reject);
    });
    await sleep(ms);
    ws.close();
    const events = frames.map((f) => JSON.parse(f));
    return { text: frames.join('\n'), ids: events.filter((e) => e.type === 'message').map((e) => Number(e.id)) };
  }
  const path = transport === 'sse' ? '/push/sse' : '/push/iframe';
  const r = await curl(['-sN', '--max-time', String(ms / 1000), '-H', `Accept: ${transport === 'sse' ? 'text/event-stream' : 'text/html'}`, `${srv.base}${path}?after=${after}&ticket=${encodeURIComponent(await ticket(srv, token))}`], { timeout: 10000 });
  const ids = [...r.stdout.matchAll(/"type":"message","id":"(\d+)"/g)].map((m) => Number(m[1]));
  return { text: r.stdout, ids };
}

test('raw: poll, long poll, SSE, iframe and WebSocket from any cursor, and live, never carry a note; nor does the visitor\'s message list', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv, 'Raw');
    const hello = await visitorSend(srv, v.token, 'hello');
    const conv = hello.conversation_id;
    const send = async (body, isPrivate) => {
      const r = await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: isPrivate === undefined ? { body } : { body, private: isPrivate } });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.message.private, isPrivate === true);
      return r.json.message;
    };

    // Live: streams open at the visitor's cursor before the note.
    const liveWs = new WebSocket(`ws://127.0.0.1:${srv.port}/push/ws?after=${hello.id}`, { headers: { Authorization: `Bearer ${v.token}` } });
    const wsFrames = [];
    liveWs.on('message', (d) => wsFrames.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      liveWs.on('open', resolve);
      liveWs.on('error', reject);
    });
    const liveSse = new CurlStream(['-sN', '--max-time', '30', '-H', 'Accept: text/event-stream', `${srv.base}/push/sse?after=${hello.id}&ticket=${encodeURIComponent(await ticket(srv, v.token))}`]);
    const liveIframe = new CurlStream(['-sN', '--max-time', '30', `${srv.base}/push/iframe?after=${hello.id}&ticket=${encodeURIComponent(await ticket(srv, v.token))}`]);
    await liveSse.until((o) => o.includes('heartbeat'), T, 'the SSE stream open');
    await liveIframe.until((o) => o.includes('heartbeat'), T, 'the iframe stream open');
    const longpoll = (await heldLongPoll(srv, `/push/longpoll?after=${hello.id}&timeout=20`, { token: v.token, timeout: 30000 })).result;

    const note = await send(`${SECRET} first`, true);
    const reply = await send('a reply', false);
    const note2 = await send(`${SECRET} second`, true);
    const reply2 = await send('another reply');

    const lp = await longpoll;
    assert.equal(lp.status, 200, lp.text);
    assert.ok(!lp.text.includes(SECRET), `long poll: ${lp.text}`);
    assert.ok(lp.json.events.some((e) => e.type === 'message' && Number(e.id) === reply.id), `long poll has the reply: ${lp.text}`);
    await liveSse.until((o) => o.includes('another reply'), T, 'the second reply over SSE');
    await liveIframe.until((o) => o.includes('another reply'), T, 'the second reply over the iframe');
    const wsDeadline = Date.now() + T;
    while (!wsFrames.some((f) => f.includes('another reply')) && Date.now() < wsDeadline) await sleep(50);
    assert.ok(wsFrames.some((f) => f.includes('another reply')), `ws: ${wsFrames.join('\n')}`);
    for (const [name, text] of [['sse', liveSse.out], ['iframe', liveIframe.out], ['ws', wsFrames.join('\n')]]) {
      assert.ok(!text.includes(SECRET), `${name} live carried a note: ${text.slice(-2000)}`);
      const ids = [...text.matchAll(/"type":"message","id":"(\d+)"/g)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [reply.id, reply2.id], `${name} live: the replies, once each, in order`);
    }
    liveWs.close();
    await liveSse.close();
    await liveIframe.close();

    // Replays from every cursor: 0, the visitor's own message, each note's id, each reply's.
    const cursors = [[0, [hello.id, reply.id, reply2.id]], [hello.id, [reply.id, reply2.id]], [note.id, [reply.id, reply2.id]], [reply.id, [reply2.id]], [note2.id, [reply2.id]], [reply2.id, []]];
    for (const transport of ALL) {
      for (const [after, expected] of cursors) {
        const got = await collect(srv, v.token, transport, after);
        assert.ok(!got.text.includes(SECRET), `${transport} from ${after} carried a note: ${got.text.slice(-2000)}`);
        assert.deepEqual(got.ids, expected, `${transport} from ${after}`);
      }
    }
    for (const [after, expected] of cursors) {
      const r = await srv.api('GET', `/api/visitor/messages?after=${after}`, { token: v.token });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages.map((m) => m.id), expected, `GET /api/visitor/messages?after=${after}`);
      assert.ok(r.json.messages.every((m) => m.private === false));
    }

    // The agents' side has both notes, marked; search finds them, marked; visitors cannot search.
    const r = await srv.api('GET', `/api/conversations/${conv}/messages`, { cookie: ana.cookie });
    assert.deepEqual(r.json.messages.filter((m) => m.private).map((m) => m.id), [note.id, note2.id]);
    const hits = await srv.api('GET', `/api/search?q=${SECRET}`, { cookie: ana.cookie });
    assert.equal(hits.status, 200, hits.text);
    assert.ok(hits.json.results.length >= 2 && hits.json.results.every((h) => h.private === true), hits.text);
    assert.ok([401, 403].includes((await srv.api('GET', `/api/search?q=${SECRET}`, { token: v.token })).status));

    // Bad input changes nothing.
    for (const bad of ['yes', 1, null, {}]) {
      assertError(await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: { body: 'x', private: bad } }), 400, 'bad_request', `private ${JSON.stringify(bad)}`);
    }
    assertError(await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'x', private: true } }), 400, 'bad_request', 'a visitor note');

    // A transfer with a note: both or neither.
    const bo = await agentLogin(srv, BO.email, BO.password);
    const before = (await srv.api('GET', `/api/conversations/${conv}/messages`, { cookie: ana.cookie })).json.messages.length;
    assertError(await srv.api('POST', `/api/conversations/${conv}/assign`, { cookie: ana.cookie, csrf: ana.csrf, body: { agent_id: 99999, note: `${SECRET} lost` } }), 422, 'invalid', 'to nobody known');
    assert.equal((await srv.api('GET', `/api/conversations/${conv}/messages`, { cookie: ana.cookie })).json.messages.length, before, 'no note without the transfer');
    const moved = await srv.api('POST', `/api/conversations/${conv}/assign`, { cookie: ana.cookie, csrf: ana.csrf, body: { agent_id: bo.agent.id, note: `${SECRET} yours, Bo` } });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.json.conversation.assignee.id, bo.agent.id);
    const all = (await srv.api('GET', `/api/conversations/${conv}/messages`, { cookie: ana.cookie })).json.messages;
    assert.equal(all.length, before + 1);
    assert.deepEqual([all.at(-1).body, all.at(-1).private, all.at(-1).agent_id], [`${SECRET} yours, Bo`, true, ana.agent.id]);
    const after = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.ok(!after.text.includes(SECRET), after.text);
  }),
);

test('the console: a transfer with a note in the "Transfer to…" dialog reaches the other console live', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Wen');
    const hello = await visitorSend(srv, v.token, 'my parcel is late');
    const ana = await openAgent(env, srv, null, ANA);
    const bo = await openAgent(env, srv, 'sse', BO);
    await waitConv(ana, hello.conversation_id, () => true, 'listed');
    await selectConv(ana, hello.conversation_id);
    await ana.page.waitForFunction(() => [...document.querySelectorAll('#assign-select option')].some((o) => o.textContent.startsWith('Bo')), null, { timeout: T });
    const value = await ana.page.$eval('#assign-select', (s) => [...s.options].find((o) => o.textContent.startsWith('Bo')).value);
    await ana.page.selectOption('#assign-select', value);
    const dialog = ana.page.getByRole('dialog', { name: 'Transfer this conversation to Bo' });
    await dialog.waitFor({ timeout: T });
    await ana.page.getByLabel(/Note for the team/).fill('Courier claim is open, ask @Bo for the tracking id');
    await ana.page.setViewportSize({ width: 390, height: 844 });
    await ana.page.screenshot({ path: '/tmp/notes-transfer-phone.png' });
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    await dialog.getByRole('button', { name: 'Transfer' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: T });
    await waitMsg(ana.page, '#thread', 'Courier claim is open, ask @Bo for the tracking id', 'agent');
    await selectConv(bo, hello.conversation_id);
    await waitMsg(bo.page, '#thread', 'Courier claim is open, ask @Bo for the tracking id', 'agent');
    assert.ok(await bo.page.$eval('#thread .msg.note[data-private="true"] .msg-body', (e) => e.textContent.startsWith('Courier')));
    assert.match(await bo.page.textContent('#assignee-label'), /Assigned to you/);
    await bo.page.waitForSelector('#mention-list li', { timeout: T });
    const msgs = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.deepEqual(msgs.json.messages.map((m) => m.body), ['my parcel is late']);
    assertNoPageProblems(ana, bo);
  }),
);

test('the outbox keeps a queued note a note: written while the server is down, reloaded, sent once it is back, never to the visitor', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, 'sse');
    await visitorSay(v, 'is anyone there?');
    const conv = await conversationOf(srv, await visitorToken(v));
    const ana = await openAgent(env, srv, 'ws', ANA);
    await waitConv(ana, conv, () => true, 'listed');
    await selectConv(ana, conv);
    const key = `kefu.outbox.agent.${await ana.page.evaluate(() => fetch('/api/agent/me').then((r) => r.json()).then((j) => j.agent.id))}`;

    await srv.stop();
    await waitState(ana.page, ['reconnecting', 'offline'], T);
    await ana.page.getByRole('button', { name: 'Private note' }).click();
    await ana.page.fill('#reply-input', `${SECRET} queued while down`);
    await ana.page.press('#reply-input', 'Enter');
    await ana.page.waitForSelector('#thread .msg.pending.note[data-private="true"]', { timeout: T });
    const stored = await ana.page.evaluate((k) => JSON.parse(localStorage.getItem(k) || '[]'), key);
    assert.equal(stored.length, 1, JSON.stringify(stored));
    assert.equal(stored[0].private, true, 'the stored entry is a note');
    await ana.page.getByRole('button', { name: 'Reply', exact: true }).click();
    await ana.page.fill('#reply-input', 'a reply queued after it');
    await ana.page.press('#reply-input', 'Enter');

    await srv.start();
    await ana.page.reload();
    await waitConnected(ana.page);
    await selectConv(ana, conv);
    await waitMsg(ana.page, '#thread', 'a reply queued after it', 'agent');
    await ana.page.waitForSelector('#thread .msg.note[data-private="true"][data-id]', { timeout: T });
    await waitMsg(v.page, '#messages', 'a reply queued after it', 'agent', 30000);
    await assertNoNote(v, 'after the queued note went');
    const r = await srv.api('GET', '/api/visitor/messages?after=0', { token: await visitorToken(v) });
    assert.deepEqual(r.json.messages.map((m) => m.body), ['is anyone there?', 'a reply queued after it']);
    assertNoPageProblems(ana, v);
  }),
);
