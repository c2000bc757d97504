'use strict';
// keyboard.test.js: the console's keyboard shortcuts (docs/UI-CONTRACT.md, "Keyboard"): j and k
// move through the list, r goes to the reply box and Escape out of it, c claims, e resolves and
// reopens, ? lists them all; none fires while typing.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, newVisitor, visitorSend, DEFAULT_AGENTS } = require('./harness');
const { openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const T = 10000;

test('keyboard: j/k, r and Escape, c, e, s, and ? with its list; keys typed into the reply are text', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const older = await newVisitor(srv, 'Older');
    const olderId = Number((await visitorSend(srv, older.token, 'first question')).conversation_id);
    const newer = await newVisitor(srv, 'Newer');
    const newerId = Number((await visitorSend(srv, newer.token, 'second question')).conversation_id);
    const name = (id) => (id === olderId ? 'Older' : id === newerId ? 'Newer' : String(id));
    const a = await openAgent(env, srv, 'ws', DEFAULT_AGENTS[0]);
    const p = a.page;
    await p.waitForFunction(() => document.querySelectorAll('#conversation-list .conv-item').length === 2, null, { timeout: T });
    const selectedId = () => p.evaluate(() => { const el = document.querySelector('#conversation-list .conv-item.selected'); return el ? Number(el.dataset.id) : null; });
    const selected = async () => name(await selectedId());
    const waitSelected = async (want) => {
      const id = want === 'Older' ? olderId : newerId;
      await p.waitForFunction((id) => { const el = document.querySelector('#conversation-list .conv-item.selected'); return el && Number(el.dataset.id) === id; }, id, { timeout: T })
        .catch(async () => assert.fail(`${want} is not selected: ${await selected()}`));
    };

    await p.evaluate(() => document.activeElement && document.activeElement.blur());
    await p.keyboard.press('j');
    await waitSelected('Newer'); // most recently active first
    await p.keyboard.press('j');
    await waitSelected('Older');
    await p.keyboard.press('j'); // the end of the list: stays
    await waitSelected('Older');
    await p.keyboard.press('k');
    await waitSelected('Newer');

    await p.keyboard.press('r');
    await p.waitForFunction(() => document.activeElement && document.activeElement.id === 'reply-input', null, { timeout: T });
    await p.keyboard.type('jk rec?');
    assert.equal(await p.inputValue('#reply-input'), 'jk rec?', 'keys typed into the reply are text');
    assert.equal(await selected(), 'Newer');
    await p.keyboard.press('Escape');
    await p.waitForFunction(() => document.activeElement && document.activeElement.id !== 'reply-input', null, { timeout: T });

    await p.keyboard.press('c');
    await p.waitForFunction(() => document.querySelector('#assignee-label').textContent === 'Assigned to you', null, { timeout: T });
    await p.keyboard.press('e');
    // The pushed event can show the new status before the POST's answer re-enables the button, and
    // 'e' does nothing while it is disabled (as a click would not): wait for both.
    await p.waitForFunction(() => document.querySelector('#status-select').value === 'resolved' && !document.querySelector('#status-button').disabled, null, { timeout: T });
    await p.keyboard.press('e');
    await p.waitForFunction(() => document.querySelector('#status-select').value === 'open', null, { timeout: T });

    await p.keyboard.press('?');
    await p.waitForSelector('#shortcuts-dialog[open]', { timeout: T });
    const keys = await p.$$eval('#shortcuts-dialog kbd', (els) => els.map((e) => e.textContent));
    assert.deepEqual(keys, ['j', 'k', 'r', 'n', 'e', 'c', 's', '?', 'Esc']);
    await p.keyboard.press('j'); // the dialog has the keys
    assert.equal(await selected(), 'Newer');
    await p.keyboard.press('Escape');
    await p.waitForFunction(() => !document.querySelector('#shortcuts-dialog').open, null, { timeout: T });
    // The button opens it too.
    await p.getByRole('button', { name: 'Keyboard shortcuts' }).click();
    await p.waitForSelector('#shortcuts-dialog[open]', { timeout: T });
    await p.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
    assertNoPageProblems(a);
  }));

test('keyboard: the conversation list is one Tab stop, arrows and Home/End move within it; a conversation that opens is announced', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    for (const name of ['Ann', 'Ben', 'Cai']) await visitorSend(srv, (await newVisitor(srv, name)).token, `hello from ${name}`);
    const a = await openAgent(env, srv, null);
    const p = a.page;
    await p.waitForFunction(() => document.querySelectorAll('#conversation-list .conv-item').length === 3, null, { timeout: T });
    const stops = await p.$$eval('#conversation-list .conv-item', (els) => els.map((e) => e.tabIndex));
    assert.deepEqual(stops.sort(), [-1, -1, 0], 'one item is tabbable');
    const focusedName = () => p.evaluate(() => document.activeElement.closest('.conv-item')?.querySelector('.conv-name').textContent || null);
    await p.focus('#search-input');
    // Tab from the search box reaches the list (through the view tabs) exactly once.
    let reached = 0;
    for (let i = 0; i < 20; i++) {
      await p.keyboard.press('Tab');
      if (await focusedName()) reached++;
    }
    assert.equal(reached, 1, 'twenty Tabs pass through the list once');
    await p.focus('#conversation-list .conv-item[tabindex="0"]');
    assert.equal(await focusedName(), 'Cai', 'the newest first');
    await p.keyboard.press('End');
    assert.equal(await focusedName(), 'Ann');
    await p.keyboard.press('ArrowUp');
    assert.equal(await focusedName(), 'Ben');
    await p.keyboard.press('Home');
    assert.equal(await focusedName(), 'Cai');
    await p.keyboard.press('ArrowDown');
    assert.equal(await p.$eval('#conversation-list .conv-item[tabindex="0"] .conv-name', (e) => e.textContent), 'Ben', 'the last focused is the Tab stop');

    const v = await newVisitor(srv, 'Dana');
    await visitorSend(srv, v.token, 'a new question');
    await p.waitForFunction(() => document.querySelector('#list-announcer').textContent === 'New conversation from Dana', null, { timeout: T });
    assert.equal(await p.$eval('#list-announcer', (e) => e.getAttribute('role')), 'status');
  }),
);
