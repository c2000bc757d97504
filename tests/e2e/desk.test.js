'use strict';
// desk.test.js: the team desk's first part (docs/API.md, "Views", "The desk"): a conversation's
// status and assignee, the views of the list with their counts, claims, assignments and status
// changes, over the API and in the console; a visitor keeps one thread, is told when it is
// resolved, and reopens it by writing again. Every change is live in every console, over every
// push transport, without a reload.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, eventually, heldLongPoll, DEFAULT_AGENTS,
} = require('./harness');
const {
  T, ANA, openAgent, openVisitor, visitorSay, waitConv, selectConv, conversationOf, convSel, assertNoPageProblems,
} = require('./pages');

after(closeBrowser);

const BO = DEFAULT_AGENTS[1];

function post(srv, who, path, body) {
  return srv.api('POST', path, { cookie: who.cookie, csrf: who.csrf, body });
}

async function counts(srv, who) {
  const r = await srv.api('GET', '/api/conversations/counts', { cookie: who.cookie });
  assert.equal(r.status, 200, r.text);
  return r.json.counts;
}

// Every conversation of a view, page after page (limit a page).
async function wholeView(srv, who, view, limit) {
  const ids = [];
  let next = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = `view=${view}&limit=${limit}${next ? `&before=${next}` : ''}`;
    const r = await srv.api('GET', `/api/conversations?${q}`, { cookie: who.cookie });
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    assert.ok(r.json.conversations.length <= limit);
    ids.push(...r.json.conversations.map((c) => c.id));
    next = r.json.next;
    if (!next) return ids;
  }
  throw new Error(`view ${view}: no end of pages`);
}

test('desk: twenty agents claim one conversation at once, each over its own connection: exactly one gets 200, the others 409 conflict; it is the winner\'s, in their Mine only', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const team = Array.from({ length: 20 }, (_, i) => ({
      email: `agent${i}@example.com`, name: `Agent ${i}`, password: `passphrase number ${i}`, role: i === 0 ? 'admin' : 'agent',
    }));
    const srv = await env.server({ agents: team });
    const agents = [];
    for (const a of team) agents.push(await agentLogin(srv, a.email, a.password));
    const v = await newVisitor(srv, 'Race');
    const m = await visitorSend(srv, v.token, 'who takes this?');
    const conv = m.conversation_id;

    // A listener on the agents' topic: it hears of the claim that won.
    const held = await heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=5`, { cookie: agents[0].cookie });
    const answers = await Promise.all(agents.map((a) => post(srv, a, `/api/conversations/${conv}/claim`)));
    const won = answers.map((r, i) => [r, i]).filter(([r]) => r.status === 200);
    assert.equal(won.length, 1, `one claim won: ${answers.map((r) => r.status).join(' ')}`);
    const [winAnswer, winner] = won[0];
    assert.equal(winAnswer.json.conversation.assignee.id, agents[winner].agent.id);
    assert.deepEqual(Object.keys(winAnswer.json.conversation.assignee).sort(), ['email', 'id', 'name', 'role']);
    for (const [i, r] of answers.entries()) {
      if (i !== winner) assertError(r, 409, 'conflict', `claim by agent ${i}`);
    }
    assert.ok(answers.filter((r) => r.status === 409).every((r) => /another agent/.test(r.json.error.message)));
    const c = await srv.api('GET', `/api/conversations/${conv}`, { cookie: agents[3].cookie });
    assert.equal(c.json.conversation.assignee.id, agents[winner].agent.id);
    for (const [i, a] of agents.entries()) assert.equal((await counts(srv, a)).mine, i === winner ? 1 : 0, `agent ${i}'s Mine`);
    // The one who holds it claims it again: 200; anyone else still 409.
    assert.equal((await post(srv, agents[winner], `/api/conversations/${conv}/claim`)).status, 200);
    assertError(await post(srv, agents[(winner + 1) % 20], `/api/conversations/${conv}/claim`), 409, 'conflict');
    const events = (await held.result).json.events;
    assert.ok(events.some((e) => e.type === 'conversation' && e.conversation.assignee && e.conversation.assignee.id === agents[winner].agent.id),
      `the agents heard of the claim: ${JSON.stringify(events).slice(0, 500)}`);
  }),
);

test('desk: the views over the API list what they say, page after page with no cap; counts agree; bad views, statuses and assignments are refused; a resolved conversation is not claimed', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    // A visitor's session names their conversation once they have written, as they see it.
    const first = await newVisitor(srv, 'V');
    let session = await srv.api('GET', '/api/visitor/session', { token: first.token });
    assert.deepEqual(session.json, { visitor: first.visitor, conversation: null });
    const ids = [(await visitorSend(srv, first.token, 'question 0')).conversation_id];
    session = await srv.api('GET', '/api/visitor/session', { token: first.token });
    assert.deepEqual(session.json.conversation, { id: ids[0], status: 'open', seen_up_to: 0, rating: null });
    for (let i = 1; i < 12; i++) {
      const v = await newVisitor(srv, `V${i}`);
      ids.push((await visitorSend(srv, v.token, `question ${i}`)).conversation_id);
    }
    // 0-3 Ana's, 4-5 Bo's, 6-7 pending, 8-9 resolved, 10 snoozed, 11 untouched.
    for (const i of [0, 1, 2, 3]) assert.equal((await post(srv, ana, `/api/conversations/${ids[i]}/claim`)).status, 200);
    for (const i of [4, 5]) assert.equal((await post(srv, ana, `/api/conversations/${ids[i]}/assign`, { agent_id: bo.agent.id })).status, 200);
    for (const i of [6, 7]) assert.equal((await post(srv, bo, `/api/conversations/${ids[i]}/status`, { status: 'pending' })).status, 200);
    for (const i of [8, 9, 3]) assert.equal((await post(srv, bo, `/api/conversations/${ids[i]}/status`, { status: 'resolved' })).status, 200);
    const r = await post(srv, bo, `/api/conversations/${ids[10]}/status`, { status: 'snoozed', snooze_until: Date.now() + 3600e3 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversation.status, 'snoozed');

    const newest = (list) => [...list].reverse();
    const expected = {
      all: newest(ids),
      unassigned: newest([ids[11]]),
      mine: newest([ids[0], ids[1], ids[2]]),
      open: newest([ids[0], ids[1], ids[2], ids[4], ids[5], ids[11]]),
      pending: newest([ids[6], ids[7]]),
      resolved: newest([ids[3], ids[8], ids[9]]),
      snoozed: [ids[10]],
    };
    for (const [view, want] of Object.entries(expected)) {
      assert.deepEqual(await wholeView(srv, ana, view, 2), want, `view ${view}`);
    }
    assert.deepEqual(await wholeView(srv, bo, 'mine', 1), newest([ids[4], ids[5]]), "Bo's Mine");
    const n = await counts(srv, ana);
    assert.deepEqual(n, Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, v.length])));
    // Without a view: all, as before views existed.
    const plain = await srv.api('GET', '/api/conversations', { cookie: ana.cookie });
    assert.deepEqual(plain.json.conversations.map((c) => c.id), expected.all);

    const A = (p) => `/api/conversations/${ids[11]}${p}`;
    for (const q of ['view=closed', 'view=', 'view=ALL', 'view=mine,open', 'view=open%00', 'view=unassigned-and-more']) {
      const e = await srv.api('GET', `/api/conversations?${q}`, { cookie: ana.cookie });
      assertError(e, 400, 'bad_request', q);
      assert.match(e.json.error.message, /unassigned, mine, open, pending, resolved, snoozed, all/);
    }
    for (const status of ['closed', 'Open', '', 3]) {
      const e = await post(srv, ana, A('/status'), { status });
      assertError(e, 400, 'bad_request', `status ${JSON.stringify(status)}`);
      assert.match(e.json.error.message, /open, pending, resolved, snoozed/);
    }
    assertError(await post(srv, ana, A('/status'), { status: 'snoozed' }), 422, 'invalid', 'a snooze without its end');
    assertError(await post(srv, ana, A('/status'), { status: 'snoozed', snooze_until: Date.now() - 1000 }), 422, 'invalid', 'a snooze in the past');
    assertError(await post(srv, ana, A('/status'), { status: 'open', snooze_until: Date.now() + 1000 }), 422, 'invalid', 'an end without a snooze');
    assertError(await post(srv, ana, A('/assign'), { agent_id: bo.agent.id, colour: 'red' }), 400, 'bad_request', 'an unknown field');
    assertError(await post(srv, ana, A('/assign'), { agent_id: bo.agent.id, note: 42 }), 422, 'invalid', 'a note that is no text');
    assertError(await post(srv, ana, A('/assign'), { agent_id: 9999 }), 422, 'invalid', 'an unknown agent');
    assertError(await post(srv, ana, '/api/conversations/9999/claim'), 404, 'not_found', 'an unknown conversation');
    assert.equal((await counts(srv, ana)).unassigned, 1, 'nothing changed');
    // A disabled agent cannot be given anything (and what Bo held is nobody's now: teams.test.js).
    assert.equal((await srv.api('PATCH', `/api/agents/${bo.agent.id}`, { cookie: ana.cookie, csrf: ana.csrf, body: { disabled: true } })).status, 200);
    const disabled = await post(srv, ana, A('/assign'), { agent_id: bo.agent.id });
    assertError(disabled, 422, 'invalid', 'a disabled agent');
    assert.match(disabled.json.error.message, /disabled/);
    // Resolved: 409 to a claim, whoever asks.
    const resolved = await post(srv, ana, `/api/conversations/${ids[8]}/claim`);
    assertError(resolved, 409, 'conflict', 'claiming a resolved conversation');
    assert.match(resolved.json.error.message, /resolved/);
  }),
);

// The console's desk bar and list item of the selected or given conversation.
function deskOf(page) {
  return page.evaluate(() => ({
    status: document.querySelector('#status-select').value,
    assignee: document.querySelector('#assignee-label').textContent,
    claim: document.querySelector('#claim-button').hidden ? null : document.querySelector('#claim-button').textContent,
    resolveButton: document.querySelector('#status-button').textContent,
  }));
}

function tabCount(page, view) {
  return page.$eval(`#view-tabs .view-tab[data-view="${view}"]`, (el) => el.dataset.count);
}

async function waitTabCount(page, view, n, what) {
  await eventually(async () => (await tabCount(page, view)) === String(n), { timeout: T, what: `${what}: ${view} count ${n}` });
}

test('desk in the browser: a visitor writes; Ana claims it from Unassigned and Bo sees who holds it, live; Ana resolves it and the visitor is told; the visitor writes again and the same conversation is open again everywhere', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, null);
    await visitorSay(v, 'My parcel is late');
    const token = await v.page.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    const id = await conversationOf(srv, token);

    const ana = await openAgent(env, srv, null);
    const bo = await openAgent(env, srv, 'sse', BO);
    // Ana works from Unassigned (remembered), Bo from All.
    await ana.page.click('#view-tabs .view-tab[data-view="unassigned"]');
    await waitConv(ana, id, () => true, 'in Unassigned');
    await waitTabCount(ana.page, 'unassigned', 1, 'Ana');
    await waitTabCount(bo.page, 'unassigned', 1, 'Bo');
    await waitTabCount(bo.page, 'mine', 0, 'Bo');
    assert.equal(await ana.page.$eval('#view-tabs .view-tab[data-view="unassigned"]', (el) => el.getAttribute('aria-pressed')), 'true');

    await selectConv(ana, id);
    assert.deepEqual(await deskOf(ana.page), { status: 'open', assignee: 'Unassigned', claim: 'Claim', resolveButton: 'Resolve' });
    await ana.page.click('#claim-button');
    await ana.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to you', null, { timeout: T });
    assert.equal(await ana.page.$eval('#claim-button', (el) => el.hidden), true);
    // Bo's list says who holds it, without a reload; the counts follow in both consoles.
    await waitConv(bo, id, () => true, 'in All');
    await bo.page.waitForFunction((sel) => {
      const a = document.querySelector(`${sel} .conv-assignee`);
      return a && !a.hidden && a.textContent === 'Ana';
    }, convSel(id), { timeout: T });
    await waitTabCount(bo.page, 'unassigned', 0, 'Bo after the claim');
    await waitTabCount(ana.page, 'mine', 1, 'Ana after the claim');
    // Still in Ana's list while she has it open, though it left Unassigned.
    assert.ok(await ana.page.$(convSel(id)));
    await selectConv(bo, id);
    assert.deepEqual(await deskOf(bo.page), { status: 'open', assignee: 'Assigned to Ana', claim: 'Assign to me', resolveButton: 'Resolve' });

    // Ana resolves it: the visitor is told; Bo's header and list follow.
    await ana.page.click('#status-button');
    await v.page.waitForSelector('#resolved-notice', { state: 'visible', timeout: T });
    assert.match(await v.page.$eval('#resolved-notice', (el) => el.textContent), /This conversation has been resolved/);
    // Opened again later, the page still says so.
    await v.page.reload();
    await v.page.waitForSelector('#resolved-notice', { state: 'visible', timeout: T });
    await bo.page.waitForFunction(() => document.querySelector('#status-select').value === 'resolved', null, { timeout: T });
    assert.deepEqual(await deskOf(bo.page), { status: 'resolved', assignee: 'Assigned to Ana', claim: 'Assign to me', resolveButton: 'Reopen' });
    await bo.page.waitForFunction((sel) => document.querySelector(`${sel} .conv-tag`).textContent === 'Resolved', convSel(id), { timeout: T });
    await waitTabCount(ana.page, 'resolved', 1, 'Ana');
    await waitTabCount(ana.page, 'mine', 0, 'Ana: resolved is not Mine');

    // The visitor writes again: the notice goes, the same conversation is open again.
    await visitorSay(v, 'Still nothing arrived');
    assert.equal(await v.page.$eval('#resolved-notice', (el) => el.hidden), true);
    assert.equal(await conversationOf(srv, token), id);
    await bo.page.waitForFunction(() => document.querySelector('#status-select').value === 'open', null, { timeout: T });
    await ana.page.waitForFunction(() => document.querySelector('#status-button').textContent === 'Resolve', null, { timeout: T });
    await waitTabCount(ana.page, 'resolved', 0, 'Ana after the reopen');
    await waitTabCount(ana.page, 'mine', 1, 'Ana after the reopen');
    assert.equal(await bo.page.$$eval('#conversation-list .conv-item', (els) => els.length), 1, 'one conversation: one thread per visitor');

    // Bo takes it over; then the status control sets it pending.
    await bo.page.click('#claim-button');
    await bo.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to you', null, { timeout: T });
    await ana.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to Bo', null, { timeout: T });
    await bo.page.selectOption('#status-select', 'pending');
    await ana.page.waitForFunction(() => document.querySelector('#status-select').value === 'pending', null, { timeout: T });
    await waitTabCount(ana.page, 'pending', 1, 'Ana');
    // "Transfer to…" lists the team (not the one who holds it) with their presence: Bo hands it to
    // Ana, then to nobody, then takes it again.
    const transfer = bo.page.getByLabel('Transfer to');
    assert.deepEqual(await bo.page.$$eval('#assign-select option', (os) => os.map((o) => o.textContent)), ['Transfer to…', 'Ana · Online', 'Nobody (unassign)']);
    await transfer.selectOption({ label: 'Ana · Online' });
    await bo.page.getByRole('dialog', { name: 'Transfer this conversation to Ana' }).getByRole('button', { name: 'Transfer' }).click();
    await ana.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to you', null, { timeout: T });
    await bo.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to Ana', null, { timeout: T });
    assert.equal(await bo.page.inputValue('#assign-select'), '', 'the control is ready for the next transfer');
    await transfer.selectOption({ label: 'Nobody (unassign)' });
    await ana.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Unassigned', null, { timeout: T });
    await bo.page.click('#claim-button');
    await ana.page.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to Bo', null, { timeout: T });
    // Ana's Mine, remembered across a reload: Bo holds it now, so it is not there.
    await ana.page.click('#view-tabs .view-tab[data-view="mine"]');
    await ana.page.reload();
    await ana.page.waitForSelector('#view-tabs .view-tab[data-view="mine"][aria-pressed="true"]', { timeout: T });
    await eventually(async () => (await ana.page.$$('#conversation-list .conv-item')).length === 0, { timeout: T, what: "Ana's Mine is empty" });
    assertNoPageProblems(v, ana, bo);
  }),
);

test('desk: every console, over every push transport, sees a claim and a status change without a reload', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const visitor = await newVisitor(srv, 'Lin');
    const id = (await visitorSend(srv, visitor.token, 'hello')).conversation_id;
    const consoles = [];
    for (const transport of ['ws', 'sse', 'longpoll', 'iframe', 'poll']) {
      const c = await openAgent(env, srv, transport, BO);
      await waitConv(c, id, () => true, `${transport}: listed`);
      consoles.push([transport, c]);
    }
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    assert.equal((await post(srv, ana, `/api/conversations/${id}/claim`)).status, 200);
    assert.equal((await post(srv, ana, `/api/conversations/${id}/status`, { status: 'pending' })).status, 200);
    for (const [transport, c] of consoles) {
      await c.page.waitForFunction((sel) => {
        const item = document.querySelector(sel);
        return item && item.querySelector('.conv-assignee').textContent === 'Ana' && item.querySelector('.conv-tag').textContent === 'Pending';
      }, convSel(id), { timeout: T }).catch((e) => {
        throw new Error(`${transport}: the claim and status did not show: ${e.message}`);
      });
      await waitTabCount(c.page, 'pending', 1, transport);
    }
    assertNoPageProblems(...consoles.map(([, c]) => c));
  }),
);

test('desk: a snooze ends by itself: the conversation is open again, and the agents and the visitor hear it', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv, 'Sleepy');
    const m = await visitorSend(srv, v.token, 'call me back in a moment');
    const id = m.conversation_id;
    const r = await post(srv, ana, `/api/conversations/${id}/status`, { status: 'snoozed', snooze_until: Date.now() + 1500 });
    assert.equal(r.status, 200, r.text);
    assert.equal((await counts(srv, ana)).snoozed, 1);
    // Both sides wait for news; the server looks for ended snoozes every few seconds.
    const [visitorHeld, agentHeld] = await Promise.all([
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=20`, { token: v.token, timeout: 25000 }),
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=20`, { cookie: ana.cookie, timeout: 25000 }),
    ]);
    const heard = (await visitorHeld.result).json.events;
    assert.deepEqual(heard.map((e) => e.conversation), [{ id, status: 'open', seen_up_to: 0, rating: null }], `the visitor heard: ${JSON.stringify(heard)}`);
    const agents = (await agentHeld.result).json.events.filter((e) => e.type === 'conversation');
    assert.ok(agents.some((e) => e.conversation.id === id && e.conversation.status === 'open' && e.conversation.snoozed_until === null),
      `the agents heard: ${JSON.stringify(agents)}`);
    const c = await srv.api('GET', `/api/conversations/${id}`, { cookie: ana.cookie });
    assert.equal(c.json.conversation.status, 'open');
    assert.deepEqual(await counts(srv, ana), { unassigned: 1, mine: 0, open: 1, pending: 0, resolved: 0, snoozed: 0, all: 1 });
    assert.match(srv.log, /its snooze has ended/);
  }),
);
