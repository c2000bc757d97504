'use strict';
// zoom.test.js: the pages at 200 % zoom (issue 14, "Accessibility": "the pages usable at 200 %
// zoom"). A 1280×800 window zoomed to 200 % lays a page out in 640×400 CSS pixels at two device
// pixels each, which is what the context here gives Chromium. On that the visitor page and the
// console must need no sideways scrolling (WCAG 1.4.10, reflow), and a whole exchange must be
// possible: the visitor writes, the agent logs in, opens the conversation and answers with the
// reply box in view, and every dialog of the console fits the width with its close button in
// reach.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, browser } = require('./harness');
const { T, ANA, trackDialogs, assertNoPageProblems, waitConnected, waitMsg, visitorSay, agentSay, conversationOf, visitorToken } = require('./pages');

after(closeBrowser);

const W = 640;
const H = 400;

// What sticks out sideways: the page's own scroll width, and any visible element wider than the
// window or reaching past its right edge (the first few, by selector).
function overflow(page) {
  return page.evaluate((w) => {
    const out = [];
    const doc = document.scrollingElement || document.documentElement;
    if (doc.scrollWidth > w + 1) out.push(`the page scrolls sideways: ${doc.scrollWidth} px wide`);
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
      // Content inside its own scrolling box (a long list, a table in a dialog) may be wider: a
      // person scrolls that box. Content cut off by a box that hides its overflow may not.
      let clipped = false;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (/(auto|scroll)/.test(s.overflowX)) { clipped = true; break; }
      }
      if (!clipped && (r.right > w + 1 || r.left < -1)) {
        out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''}: ${Math.round(r.left)}..${Math.round(r.right)}`);
        if (out.length > 5) break;
      }
    }
    return out;
  }, W);
}

// The element is on screen, whole, after being scrolled to (what a person zoomed in does).
async function assertReachable(page, selector, what) {
  const el = page.locator(selector).first();
  await el.scrollIntoViewIfNeeded({ timeout: T });
  const box = await el.boundingBox();
  assert.ok(box, `${what}: ${selector} has a box`);
  assert.ok(box.x >= -1 && box.x + box.width <= W + 1, `${what}: ${selector} fits the width: ${JSON.stringify(box)}`);
  assert.ok(box.y >= -1 && box.y + box.height <= H + 1, `${what}: ${selector} is in view after scrolling to it: ${JSON.stringify(box)}`);
}

test('200 % zoom: the visitor page and the console reflow into 640×400 CSS pixels, and a whole exchange works there', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const b = await browser();
    const ctx = await b.newContext({ viewport: { width: W, height: H }, deviceScaleFactor: 2 });
    t.after(() => ctx.close());

    const v = { page: await ctx.newPage(), label: 'visitor' };
    v.dialogs = trackDialogs(v.page);
    await v.page.goto(`${srv.base}/chat`);
    await waitConnected(v.page);
    assert.deepEqual(await overflow(v.page), [], 'visitor page, empty');
    await assertReachable(v.page, '#message-input', 'visitor page');
    await assertReachable(v.page, '#lang-select', 'visitor page');
    await visitorSay(v, 'Zoomed in: can you read me?');
    assert.deepEqual(await overflow(v.page), [], 'visitor page, with a message');
    const id = await conversationOf(srv, await visitorToken(v));

    const a = { page: await ctx.newPage(), label: 'agent' };
    a.dialogs = trackDialogs(a.page);
    await a.page.goto(`${srv.base}/agent`);
    await a.page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    assert.deepEqual(await overflow(a.page), [], 'login');
    await assertReachable(a.page, '#login-submit', 'login');
    await a.page.fill('#login-email', ANA.email);
    await a.page.fill('#login-password', ANA.password);
    await a.page.click('#login-submit');
    await waitConnected(a.page);
    assert.deepEqual(await overflow(a.page), [], 'console, the list');
    const item = `#conversation-list .conv-item[data-id="${id}"]`;
    await assertReachable(a.page, item, 'console, the list');
    await a.page.click(item);
    await a.page.waitForSelector('#thread .msg', { timeout: T });
    assert.deepEqual(await overflow(a.page), [], 'console, a conversation open');
    await assertReachable(a.page, '#reply-input', 'console, a conversation open');
    await assertReachable(a.page, '#reply-send', 'console, a conversation open');
    await agentSay(a, 'Loud and clear, even at 200 %.');
    await waitMsg(v.page, '#messages', 'Loud and clear, even at 200 %.', 'agent');

    // Every dialog of the desk bar and the list pane: as wide as the window at most, its close
    // button reachable, closed again with Escape.
    if (await a.page.isVisible('#back-button')) await a.page.click('#back-button');
    for (const [button, dialog] of [['#notify-button', '#notify-dialog'], ['#team-settings-button', '#team-dialog'], ['#canned-button', '#canned-dialog'], ['#teams-button', '#teams-dialog'], ['#settings-button', '#settings-dialog'], ['#reports-button', '#reports-dialog'], ['#visitors-button', '#visitors-dialog']]) {
      await assertReachable(a.page, button, `console, ${button}`);
      await a.page.click(button);
      await a.page.waitForSelector(`${dialog}[open]`, { timeout: T });
      const box = await a.page.locator(dialog).boundingBox();
      assert.ok(box.x >= -1 && box.x + box.width <= W + 1, `${dialog} fits the width: ${JSON.stringify(box)}`);
      assert.ok(box.height <= H + 1, `${dialog} fits the height (its body scrolls): ${JSON.stringify(box)}`);
      await assertReachable(a.page, `${dialog} button[aria-label="Close"]`, dialog);
      await a.page.keyboard.press('Escape');
      await a.page.waitForSelector(`${dialog}:not([open])`, { state: 'attached', timeout: T });
    }
    assert.deepEqual(v.dialogs, []);
    assert.deepEqual(a.dialogs, []);
    assertNoPageProblems(v, a);
  }),
);
