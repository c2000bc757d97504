'use strict';
// canned.test.js: canned replies (docs/API.md, "Canned replies"; docs/UI-CONTRACT.md). Over the
// API: who sees, adds, changes and deletes which (team ones are an admin's, personal ones their
// owner's alone: 404 to anyone else), the answers to bad input (400, 403, 404, 409, 422), and two
// creates of one shortcut at once (one 201, one 409). In the console: Ana adds a team reply with
// placeholders in the Canned replies dialog; Bo types "/ref" in the reply box, picks it with the
// keyboard, finds the visitor's name and his own in it, sends it, and the visitor sees it; Ana
// picks it with the mouse.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, pageUrl, waitConnected, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

test('canned replies over the API: scopes, who may change what, bad input, and one of two creates of a shortcut at once', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password); // an admin
    const bo = await agentLogin(srv, BO.email, BO.password);
    const as = (who) => (method, path, body) => srv.api(method, path, { cookie: who.cookie, csrf: who.csrf, body });
    const A = as(ana);
    const B = as(bo);

    let r = await A('POST', '/api/canned', { shortcut: 'refund', body: 'Hi {visitor.name}, your refund is on its way. {agent.name}', scope: 'team' });
    assert.equal(r.status, 201, r.text);
    const team = r.json.canned;
    assert.equal(team.scope, 'team');
    assert.equal(team.shortcut, 'refund');
    assert.ok(team.created_at > 0 && team.updated_at === team.created_at);
    r = await B('POST', '/api/canned', { shortcut: 'Bye', body: 'Bye from Bo' }); // personal by default
    assert.equal(r.status, 201, r.text);
    const bos = r.json.canned;
    assert.equal(bos.scope, 'personal');
    assert.equal((await A('POST', '/api/canned', { shortcut: 'bye', body: "Ana's own bye", scope: 'personal' })).status, 201, 'another agent may have the same personal shortcut');

    // Each sees the team's and their own, by shortcut.
    r = await B('GET', '/api/canned');
    assert.deepEqual(r.json.canned.map((c) => [c.shortcut, c.scope]), [['Bye', 'personal'], ['refund', 'team']]);
    r = await A('GET', '/api/canned');
    assert.deepEqual(r.json.canned.map((c) => [c.shortcut, c.body]), [['bye', "Ana's own bye"], ['refund', team.body]]);

    // Bad input.
    assertError(await B('POST', '/api/canned', { shortcut: 'x', body: 'x', scope: 'everyone' }), 400, 'bad_request', 'an unknown scope');
    assert.match((await B('POST', '/api/canned', { shortcut: 'x', body: 'x', scope: 'everyone' })).json.error.message, /"team" or "personal"/, 'the 400 names the scopes');
    assertError(await B('POST', '/api/canned', { shortcut: 'x', body: 'x', team: true }), 400, 'bad_request', 'an unknown field');
    assertError(await B('POST', '/api/canned', { shortcut: 'x', body: 'x', scope: 'team' }), 403, 'forbidden', 'a team reply from an agent');
    for (const shortcut of ['', '/x', 'two words', 'x'.repeat(33), 7]) {
      assertError(await B('POST', '/api/canned', { shortcut, body: 'x' }), 422, 'invalid', `shortcut ${JSON.stringify(shortcut)}`);
    }
    for (const body of ['', '   ', 'x'.repeat(4001), null]) {
      assertError(await B('POST', '/api/canned', { shortcut: 'x', body }), 422, 'invalid', `body of ${String(body).length}`);
    }
    r = await B('POST', '/api/canned', { shortcut: 'REFUND', body: 'mine' });
    assertError(r, 409, 'conflict', 'a team shortcut in another case');
    assert.match(r.json.error.message, /REFUND/, 'the 409 names the shortcut');
    assertError(await B('PATCH', `/api/canned/${bos.id}`, { scope: 'team' }), 400, 'bad_request', 'a change of scope');
    assertError(await B('PATCH', `/api/canned/${bos.id}`, { shortcut: 'refund' }), 409, 'conflict', 'a change to a taken shortcut');

    // Team ones are an admin's to change; personal ones nobody's but their owner's.
    assertError(await B('PATCH', `/api/canned/${team.id}`, { body: 'changed' }), 403, 'forbidden', 'Bo changing a team reply');
    assertError(await B('DELETE', `/api/canned/${team.id}`), 403, 'forbidden', 'Bo deleting a team reply');
    assertError(await A('PATCH', `/api/canned/${bos.id}`, { body: 'changed' }), 404, 'not_found', "Ana changing Bo's own");
    assertError(await A('DELETE', `/api/canned/${bos.id}`), 404, 'not_found', "Ana deleting Bo's own");
    assertError(await A('DELETE', '/api/canned/999999'), 404, 'not_found', 'an unknown reply');
    r = await B('PATCH', `/api/canned/${bos.id}`, { shortcut: 'bye-bye', body: 'Bye, {visitor.name}!' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.canned.shortcut, r.json.canned.body, r.json.canned.scope], ['bye-bye', 'Bye, {visitor.name}!', 'personal']);
    assert.ok(r.json.canned.updated_at >= bos.updated_at);
    r = await B('DELETE', `/api/canned/${bos.id}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true });
    assertError(await B('DELETE', `/api/canned/${bos.id}`), 404, 'not_found', 'deleted already');
    // Without the CSRF token, and for a visitor: refused before anything happens.
    assertError(await srv.api('DELETE', `/api/canned/${team.id}`, { cookie: ana.cookie }), 403, 'csrf', 'no token');
    const v = await newVisitor(srv, 'Vera');
    assertError(await srv.api('GET', '/api/canned', { token: v.token }), 401, 'unauthorized', 'a visitor');

    // Two creates of one shortcut at the same moment, Ana's team one and her own personal one,
    // each of which refuses the other whichever comes first (docs/API.md): one of them. (A team
    // one and another agent's personal one may both stand when the personal one came first.)
    const both = await Promise.all([
      A('POST', '/api/canned', { shortcut: 'ship', body: 'Shipped.', scope: 'team' }),
      A('POST', '/api/canned', { shortcut: 'SHIP', body: 'Mine shipped.' }),
    ]);
    assert.deepEqual(both.map((x) => x.status).sort(), [201, 409], both.map((x) => x.text).join(' / '));
    r = await A('GET', '/api/canned');
    assert.equal(r.json.canned.filter((c) => c.shortcut.toLowerCase() === 'ship').length, 1);
  }));

test('canned replies in the console: Ana adds a team reply; Bo inserts it with "/ref" and the keyboard, names filled in, and the visitor sees it', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // A visitor with a name, whose page is open.
    const v = await newVisitor(srv, 'Wang Lei');
    const first = await visitorSend(srv, v.token, 'Where is my refund?');
    const visitorPage = await env.page('visitor');
    await visitorPage.addInitScript((token) => localStorage.setItem('kefu.visitor.token', token), v.token);
    await visitorPage.goto(pageUrl(srv, '/chat', 'sse'));
    await waitConnected(visitorPage);
    await waitMsg(visitorPage, '#messages', 'Where is my refund?', 'visitor');

    // Ana adds it in the dialog.
    const ana = await openAgent(env, srv, 'ws', ANA);
    await ana.page.getByRole('button', { name: 'Canned replies' }).click();
    const dlg = ana.page.locator('#canned-dialog');
    await ana.page.waitForSelector('#canned-dialog[open]', { timeout: T });
    await dlg.locator('#canned-empty:not([hidden])').waitFor({ timeout: T });
    await dlg.getByLabel('Shortcut').fill('refund');
    await dlg.getByLabel('Who uses it').selectOption('team');
    await dlg.getByLabel('Reply', { exact: true }).fill('Hi {visitor.name}, your refund left today. {agent.name}');
    await dlg.getByRole('button', { name: 'Add reply' }).click();
    await dlg.locator('.canned-row[data-scope="team"]').waitFor({ timeout: T });
    assert.equal(await dlg.locator('.canned-row-shortcut').first().textContent(), '/refund');
    assert.match(await dlg.locator('#canned-status').textContent(), /\/refund is added/);
    await ana.page.keyboard.press('Escape');
    await ana.page.waitForFunction(() => !document.querySelector('#canned-dialog').open, null, { timeout: T });

    // Bo sees it, without Edit or Delete (a team reply is an admin's to change).
    const bo = await openAgent(env, srv, 'sse', BO);
    await bo.page.getByRole('button', { name: 'Canned replies' }).click();
    const boDlg = bo.page.locator('#canned-dialog');
    await boDlg.locator('.canned-row[data-scope="team"]').waitFor({ timeout: T });
    assert.equal(await boDlg.getByRole('button', { name: 'Edit /refund' }).count(), 0);
    assert.ok(await boDlg.locator('#canned-scope-field').isHidden(), 'an agent adds personal replies only');
    await bo.page.keyboard.press('Escape');
    await bo.page.waitForFunction(() => !document.querySelector('#canned-dialog').open, null, { timeout: T });

    // Bo types "/ref" in the reply box: the picker offers it.
    await selectConv(bo, first.conversation_id);
    const input = bo.page.locator('#reply-input');
    await input.click();
    await bo.page.keyboard.type('Hello! /ref');
    const picker = bo.page.locator('#canned-picker');
    await picker.locator('[role="option"]').first().waitFor({ timeout: T });
    assert.equal(await picker.getAttribute('role'), 'listbox');
    const option = picker.locator('[role="option"][aria-selected="true"]');
    assert.equal(await option.locator('.canned-option-shortcut').textContent(), '/refund');
    assert.equal(await input.getAttribute('aria-activedescendant'), await option.getAttribute('id'));
    // Escape closes the picker only: the focus stays in the box.
    await bo.page.keyboard.press('Escape');
    await picker.waitFor({ state: 'hidden', timeout: T });
    assert.equal(await bo.page.evaluate(() => document.activeElement.id), 'reply-input', 'Escape closed the picker, not the box');
    // Typing on opens it again; Enter inserts the reply in place of "/ref", and does not send.
    await bo.page.keyboard.type('u');
    await picker.locator('[role="option"]').first().waitFor({ timeout: T });
    await bo.page.keyboard.press('ArrowDown'); // one option: it comes round to itself
    await bo.page.keyboard.press('Enter');
    await picker.waitFor({ state: 'hidden', timeout: T });
    const text = 'Hello! Hi Wang Lei, your refund left today. Bo';
    assert.equal(await input.inputValue(), text);
    assert.equal(await bo.page.locator('#thread .msg[data-sender="agent"]').count(), 0, 'nothing sent yet');
    // Then Enter sends it, and the visitor sees it.
    await bo.page.keyboard.press('Enter');
    await waitMsg(bo.page, '#thread', text, 'agent');
    await waitMsg(visitorPage, '#messages', text, 'agent');

    // Ana picks it with the mouse, its shortcut typed in capitals: her own name goes in.
    await selectConv(ana, first.conversation_id);
    await ana.page.locator('#reply-input').click();
    await ana.page.keyboard.type('/REF');
    await ana.page.locator('#canned-picker [role="option"][data-shortcut="refund"]').click();
    assert.equal(await ana.page.locator('#reply-input').inputValue(), 'Hi Wang Lei, your refund left today. Ana');
    assert.ok(await ana.page.locator('#canned-picker').isHidden());
    assertNoPageProblems(ana, bo);
  }));
