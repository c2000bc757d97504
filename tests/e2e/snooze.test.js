'use strict';
// snooze.test.js: snoozing from the console (docs/UI-CONTRACT.md, the desk bar): "Snoozed…" in
// the status control, or the key s, asks until when; a quick choice or a picked time snoozes it,
// live in every console; cancelling changes nothing; a time in the past is refused in the dialog;
// the visitor writing wakes it.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, eventually, DEFAULT_AGENTS } = require('./harness');
const {
  T, openAgent, openVisitor, visitorSay, selectConv, conversationOf, assertNoPageProblems,
} = require('./pages');

after(closeBrowser);

const BO = DEFAULT_AGENTS[1];

function statusOf(page) {
  return page.$eval('#status-select', (el) => el.value);
}

function tabCount(page, view) {
  return page.$eval(`#view-tabs .view-tab[data-view="${view}"]`, (el) => el.dataset.count);
}

test('snooze in the console: cancel changes nothing; "For 1 hour" snoozes it for everyone live, with its time; a past time is refused; s opens the dialog; the visitor writing opens it again', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, null);
    await visitorSay(v, 'Call me back next week please');
    const id = await conversationOf(srv, await v.page.evaluate(() => localStorage.getItem('kefu.visitor.token')));
    const ana = await openAgent(env, srv, null);
    const bo = await openAgent(env, srv, 'longpoll', BO);
    await selectConv(ana, id);
    await selectConv(bo, id);

    // Chosen, then closed: nothing changed, the control shows Open again.
    await ana.page.getByLabel('Status', { exact: true }).selectOption('snoozed');
    const dialog = ana.page.getByRole('dialog', { name: 'Snooze the conversation' });
    await dialog.waitFor({ timeout: T });
    assert.equal(await statusOf(ana.page), 'open', 'the control keeps the old status while the dialog asks');
    const choices = await dialog.getByRole('list', { name: 'Snooze for' }).getByRole('button').allTextContents();
    assert.equal(choices.length, 4);
    assert.match(choices[0], /^For 1 hour/);
    assert.match(choices[2], /^Until tomorrow/);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: T });
    assert.equal(await statusOf(ana.page), 'open');
    const r = await srv.api('GET', `/api/conversations/${id}`, { cookie: (await ana.page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ') });
    assert.equal(r.json.conversation.status, 'open', 'cancelled: the server was not asked');

    // A time in the past is refused in the dialog, which stays open.
    await ana.page.getByLabel('Status', { exact: true }).selectOption('snoozed');
    await dialog.waitFor({ timeout: T });
    await dialog.getByLabel('Until').fill('2020-01-01T09:00');
    await dialog.getByRole('button', { name: 'Snooze', exact: true }).click();
    await eventually(async () => (await dialog.getByRole('alert').textContent()) === 'Pick a time in the future.', { timeout: T, what: 'the past is refused' });
    assert.equal(await dialog.isVisible(), true);

    // "For 1 hour": snoozed, with its time, in both consoles; counted in Snoozed.
    const before = Date.now();
    await dialog.getByRole('button', { name: /^For 1 hour/ }).click();
    await dialog.waitFor({ state: 'hidden', timeout: T });
    for (const a of [ana, bo]) {
      await a.page.waitForFunction(() => document.querySelector('#status-select').value === 'snoozed', null, { timeout: T });
      await a.page.waitForFunction(() => /Snoozed until /.test(document.querySelector('#thread-sub').textContent), null, { timeout: T });
      await eventually(async () => (await tabCount(a.page, 'snoozed')) === '1', { timeout: T, what: 'the Snoozed count' });
    }
    const cookie = (await bo.page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const snoozed = (await srv.api('GET', `/api/conversations/${id}`, { cookie })).json.conversation;
    assert.equal(snoozed.status, 'snoozed');
    assert.ok(snoozed.snoozed_until >= before + 3600e3 - 5000 && snoozed.snoozed_until <= Date.now() + 3600e3 + 5000,
      `about an hour from now: ${snoozed.snoozed_until - before} ms`);

    // The visitor writes: open again, everywhere.
    await visitorSay(v, 'Actually, today works');
    for (const a of [ana, bo]) {
      await a.page.waitForFunction(() => document.querySelector('#status-select').value === 'open', null, { timeout: T });
    }

    // The key s (outside a text field) asks the same; a picked time snoozes it.
    await bo.page.locator('#conversation-list .conv-item.selected').focus();
    await bo.page.keyboard.press('s');
    const boDialog = bo.page.getByRole('dialog', { name: 'Snooze the conversation' });
    await boDialog.waitFor({ timeout: T });
    const until = new Date(Date.now() + 3 * 24 * 3600e3);
    until.setHours(14, 30, 0, 0);
    const local = `${until.getFullYear()}-${String(until.getMonth() + 1).padStart(2, '0')}-${String(until.getDate()).padStart(2, '0')}T14:30`;
    await boDialog.getByLabel('Until').fill(local);
    await boDialog.getByRole('button', { name: 'Snooze', exact: true }).click();
    await ana.page.waitForFunction(() => document.querySelector('#status-select').value === 'snoozed', null, { timeout: T });
    const picked = (await srv.api('GET', `/api/conversations/${id}`, { cookie })).json.conversation;
    // The page's time zone is the browser's, the same as this process's.
    assert.equal(picked.snoozed_until, until.getTime());
    assertNoPageProblems(v, ana, bo);
  }),
);

test('console: the empty thread pane\'s advice follows the list: "Nothing to answer yet" while the list is empty, "Choose a conversation" once one arrives live', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await openAgent(env, srv, null);
    const text = () => ana.page.$eval('#thread-empty-text', (el) => el.textContent);
    await eventually(async () => /Nothing to answer yet/.test(await text()), { timeout: T, what: 'empty advice' });
    const v = await openVisitor(env, srv, null);
    await visitorSay(v, 'Hello?');
    await eventually(async () => /Choose a conversation on the left/.test(await text()), { timeout: T, what: 'advice after a conversation arrived' });
    await ana.page.click('#view-tabs .view-tab[data-view="resolved"]');
    await eventually(async () => /Nothing in this view/.test(await text()), { timeout: T, what: 'advice in an empty view' });
    assertNoPageProblems(v, ana);
  }),
);
