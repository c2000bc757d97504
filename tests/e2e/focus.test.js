'use strict';
// focus.test.js: keyboard reach and a visible focus (issue 14, "Accessibility": "everything
// reachable and usable by keyboard with a visible focus"). On the visitor page, the login and the
// console with a conversation open, Tab is pressed until focus comes round again: every control a
// mouse could use there (visible, enabled, and a Tab stop: roving groups such as the conversation
// list offer one) must be reached, and each must look different while focused: an outline or a
// ring (box-shadow) that it does not have unfocused.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, browser, newVisitor, visitorSend } = require('./harness');
const { T, ANA, waitConnected, assertNoPageProblems, trackDialogs } = require('./pages');

after(closeBrowser);

const CONTROLS = 'a[href], button, input:not([type="hidden"]), select, textarea, [tabindex]';

// Marks every control a person could click now (visible, enabled, not taken out of the Tab order)
// and returns how many; each gets a data-focus-id to name it.
function markControls(page) {
  return page.evaluate((sel) => {
    let n = 0;
    for (const el of document.querySelectorAll(sel)) {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') continue;
      if (el.disabled || el.tabIndex < 0 || el.closest('[inert], dialog:not([open])')) continue;
      el.setAttribute('data-focus-id', `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.getAttribute('aria-label') ? '[' + el.getAttribute('aria-label') + ']' : ''}:${n++}`);
    }
    return n;
  }, CONTROLS);
}

// The focused element's name and whether it shows its focus: its outline or box-shadow while
// focused against the same with focus moved away (blur, then focus again, by keyboard modality).
function focusState(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const look = (s) => `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}|${s.boxShadow}|${s.borderColor}|${s.backgroundColor}`;
    const focused = look(getComputedStyle(el));
    const shows = (s) => (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
    return { id: el.getAttribute('data-focus-id') || `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`, marked: el.hasAttribute('data-focus-id'), shows: shows(getComputedStyle(el)), focused };
  });
}

// Tabs round the page; returns the problems found (unreached controls, focus not shown).
async function tabRound(page, what) {
  const total = await markControls(page);
  await page.evaluate(() => { if (document.activeElement) document.activeElement.blur(); });
  const reached = new Set();
  const problems = [];
  for (let i = 0; i < total + 10; i++) {
    await page.keyboard.press('Tab');
    const st = await focusState(page);
    if (!st) continue;
    if (!st.shows) problems.push(`${what}: ${st.id} shows no focus (${st.focused})`);
    if (st.marked) reached.add(st.id);
  }
  const all = await page.$$eval('[data-focus-id]', (els) => els.map((e) => e.getAttribute('data-focus-id')));
  for (const id of all) if (!reached.has(id)) problems.push(`${what}: ${id} is never reached by Tab`);
  await page.evaluate(() => document.querySelectorAll('[data-focus-id]').forEach((e) => e.removeAttribute('data-focus-id')));
  return [...new Set(problems)];
}

test('keyboard: every control of the visitor page, the login and the console is reached by Tab and shows its focus', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const vis = await newVisitor(srv, 'Kai');
    await visitorSend(srv, vis.token, 'Where is my parcel?');
    const b = await browser();
    const ctx = await b.newContext({ viewport: { width: 1280, height: 800 } });
    t.after(() => ctx.close());
    const found = [];

    const v = { page: await ctx.newPage(), label: 'visitor' };
    v.dialogs = trackDialogs(v.page);
    await v.page.goto(`${srv.base}/chat`);
    await waitConnected(v.page);
    found.push(...await tabRound(v.page, 'visitor page'));

    const a = { page: await ctx.newPage(), label: 'agent' };
    a.dialogs = trackDialogs(a.page);
    await a.page.goto(`${srv.base}/agent`);
    await a.page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    found.push(...await tabRound(a.page, 'login'));
    // Logged in by keyboard alone.
    await a.page.focus('#login-email');
    await a.page.keyboard.type(ANA.email);
    await a.page.keyboard.press('Tab');
    await a.page.keyboard.type(ANA.password);
    await a.page.keyboard.press('Enter');
    await waitConnected(a.page);
    await a.page.waitForSelector('#conversation-list .conv-item', { timeout: T });
    found.push(...await tabRound(a.page, 'console'));
    // A conversation opened from the keyboard: the list's Tab stop, Enter.
    await a.page.focus('#conversation-list .conv-item[tabindex="0"]');
    await a.page.keyboard.press('Enter');
    await a.page.waitForSelector('#thread .msg', { timeout: T });
    found.push(...await tabRound(a.page, 'console, a conversation open'));

    assert.deepEqual(found, [], found.join('\n'));
    assert.deepEqual(v.dialogs, []);
    assert.deepEqual(a.dialogs, []);
    assertNoPageProblems(v, a);
  }),
);
