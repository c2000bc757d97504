'use strict';
// notifications.test.js: telling agents and visitors what happened while they looked elsewhere
// (docs/UI-CONTRACT.md, "Notifications"): sounds and desktop notifications in the console, with
// their settings; the unread count on the tab's icon on both pages; and a browser that holds
// sound back until a click, which the console says instead of failing silently.
//
// Headless Chromium has no window focus to lose and never hides a tab, so "the agent is in
// another window" is made by document.hasFocus answering false, and the visitor's hidden tab by
// visibilityState answering 'hidden' (with its event); everything else is the real browser: the
// real Notification API (permission granted to the origin, each notification recorded on its way
// to the real constructor), real Web Audio.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, newVisitor, visitorSend, agentLogin, agentSend, eventually, sleep, DEFAULT_AGENTS } = require('./harness');
const { T, openAgent, openVisitor, visitorSay, conversationOf, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];

// Records every notification the page shows, then shows it for real.
function spyOnNotifications() {
  const Real = window.Notification;
  window.__shown = [];
  window.Notification = function (title, opts) {
    window.__shown.push({ title, body: opts && opts.body, tag: opts && opts.tag });
    return new Real(title, opts);
  };
  Object.defineProperty(window.Notification, 'permission', { get: () => Real.permission });
  window.Notification.requestPermission = (...a) => Real.requestPermission(...a);
}

const shown = (page) => page.evaluate(() => window.__shown.slice());
const played = (page) => page.$eval('#notify-button', (b) => Number(b.dataset.played || 0));
const icon = (page) => page.$eval('link[rel="icon"]', (l) => ({ count: l.dataset.count || '0', data: l.href.startsWith('data:image/svg+xml') }));

test('notifications in the console: a new conversation and a new message sound and show a desktop notification while the agent is elsewhere, not while in front (unless chosen); the tab icon counts unread; settings are kept', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ctx = await env.context('agent Ana');
    await ctx.grantPermissions(['notifications'], { origin: srv.base });
    await ctx.addInitScript(spyOnNotifications);
    const page = await ctx.newPage();
    await page.goto(`${srv.base}/agent`);
    await page.fill('#login-email', ANA.email);
    await page.fill('#login-password', ANA.password);
    await page.click('#login-submit');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });

    // The settings: sounds on, only while elsewhere; desktop notifications allowed here.
    await page.getByRole('button', { name: 'Notifications' }).click();
    const dialog = page.getByRole('dialog', { name: 'Notifications' });
    await dialog.waitFor({ timeout: T });
    assert.equal(await dialog.getByLabel('Play a sound for a new conversation').isChecked(), true);
    assert.equal(await dialog.getByLabel('Play a sound for a new message').isChecked(), true);
    assert.equal(await dialog.getByLabel('Also while this tab is in front').isChecked(), false);
    assert.match(await page.textContent('#notify-desktop-state'), /allowed/);
    assert.equal(await dialog.getByRole('button', { name: 'Turn on desktop notifications' }).isVisible(), false);
    assert.equal(await dialog.getByLabel('Show them while this tab is in the background').isChecked(), true);
    await dialog.getByRole('button', { name: 'Close' }).click();
    assert.equal(await page.isVisible('#sound-banner'), false, 'this browser plays sound: nothing to ask');

    // Ana is in another window.
    await page.evaluate(() => { document.hasFocus = () => false; });
    const v = await newVisitor(srv, 'Mei');
    await visitorSend(srv, v.token, 'Where is my order?');
    await eventually(async () => (await shown(page)).some((n) => n.title === 'New conversation: Mei'), { timeout: T, what: 'a desktop notification for the new conversation' });
    await eventually(async () => (await played(page)) === 1, { timeout: T, what: 'one sound for it (not one more for its first message)' });
    await sleep(3100); // past the new conversation's own news
    await visitorSend(srv, v.token, 'It was due yesterday');
    await eventually(async () => (await shown(page)).some((n) => n.title === 'Mei' && n.body === 'It was due yesterday'), { timeout: T, what: 'a notification for the message' });
    await eventually(async () => (await played(page)) === 2, { timeout: T, what: 'a sound for the message' });
    await eventually(async () => (await icon(page)).count === '2', { timeout: T, what: 'the tab icon counts 2 unread' });
    assert.equal((await icon(page)).data, true, 'the icon is drawn with its count');
    assert.match(await page.title(), /^\(2\) /);

    // Back in front: silence, unless chosen.
    await page.evaluate(() => { document.hasFocus = () => true; });
    const before = (await shown(page)).length;
    await visitorSend(srv, v.token, 'Hello?');
    await eventually(async () => (await icon(page)).count === '3', { timeout: T, what: '3 unread' });
    await sleep(300);
    assert.equal(await played(page), 2, 'no sound while in front');
    assert.equal((await shown(page)).length, before, 'no desktop notification while in front');
    await page.getByRole('button', { name: 'Notifications' }).click();
    await dialog.getByLabel('Also while this tab is in front').check();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await visitorSend(srv, v.token, 'Anyone?');
    await eventually(async () => (await played(page)) === 3, { timeout: T, what: 'a sound while in front, as chosen' });
    assert.equal((await shown(page)).length, before, 'desktop notifications stay for the background');

    // Read: the icon is plain again. Kept across a reload.
    await page.click('#conversation-list .conv-item');
    await eventually(async () => (await icon(page)).count === '0', { timeout: T, what: 'the icon without a count once read' });
    assert.equal(await page.$eval('link[rel="icon"]', (l) => l.getAttribute('href')), '/static/favicon.svg');
    await page.reload();
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    await page.getByRole('button', { name: 'Notifications' }).click();
    assert.equal(await dialog.getByLabel('Also while this tab is in front').isChecked(), true, 'the choice is kept');
  }),
);

test('notifications: the browser holds sound back until a click (a console opened with no click, signed in from an earlier visit): the console says "Click to enable sound", and the click enables it', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // Chromium's own policy: no sound before the page has had a click or a key. A browser of its
    // own: the shared one lets an origin that has played sound before (the tests above) play
    // again without a click.
    const { chromium } = require('playwright-core');
    const own = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    t.after(() => own.close());
    const ctx = await own.newContext();
    // Signed in already (the cookie of an earlier visit): the console opens with no click at all.
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const [name, value] = ana.cookie.split('=');
    await ctx.addCookies([{ name, value, url: srv.base }]);
    const page = await ctx.newPage();
    await page.goto(`${srv.base}/agent`);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    const banner = page.getByRole('status').filter({ hasText: 'holds back sound' });
    await banner.waitFor({ timeout: T });
    await banner.getByRole('button', { name: 'Click to enable sound' }).click();
    await banner.waitFor({ state: 'hidden', timeout: T });
    // It plays now: a test sound from the settings counts as played.
    await page.getByRole('button', { name: 'Notifications' }).click();
    const n = Number(await page.$eval('#notify-button', (b) => b.dataset.played || 0));
    await page.getByRole('button', { name: 'Play a test sound' }).click();
    await eventually(async () => Number(await page.$eval('#notify-button', (b) => b.dataset.played || 0)) === n + 1, { timeout: T, what: 'the test sound played' });
  }),
);

test('notifications: the first click on a console that holds sound back lands where it was aimed (the banner goes after the click, not under the pointer)', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Lena');
    const m = await visitorSend(srv, v.token, 'Is anyone there?');
    // As above: a browser of its own, the console opened with no click, so sound is held back.
    const { chromium } = require('playwright-core');
    const own = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    t.after(() => own.close());
    const ctx = await own.newContext({ viewport: { width: 1280, height: 800 } });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const [name, value] = ana.cookie.split('=');
    await ctx.addCookies([{ name, value, url: srv.base }]);
    const page = await ctx.newPage();
    await page.goto(`${srv.base}/agent`);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    await page.waitForSelector('#sound-banner:not([hidden])', { timeout: T });
    // A person's click: press, a moment (the press unlocks sound meanwhile), release.
    const item = page.locator(`#conversation-list .conv-item[data-id="${m.conversation_id}"]`);
    const box = await item.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.waitForTimeout(300);
    await page.mouse.up();
    await page.waitForSelector(`#conversation-list .conv-item.selected[data-id="${m.conversation_id}"]`, { timeout: T });
    await page.waitForSelector('#thread .msg', { timeout: T });
    await page.waitForSelector('#sound-banner', { state: 'hidden', timeout: T });
  }),
);

test('notifications on the visitor page: an agent\'s reply while the tab is hidden counts in the title and on the tab icon; back in front, both clear', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, null);
    await visitorSay(v, 'Hi there');
    const conv = await conversationOf(srv, await v.page.evaluate(() => localStorage.getItem('kefu.visitor.token')));
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    await v.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await agentSend(srv, ana, conv, 'Hello! How can I help?');
    await agentSend(srv, ana, conv, 'Are you still there?');
    await eventually(async () => (await v.page.$eval('link[rel="icon"]', (l) => l.dataset.count)) === '2', { timeout: T, what: 'the icon counts 2' });
    assert.match(await v.page.title(), /^\(2\) /);
    await v.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await eventually(async () => (await v.page.$eval('link[rel="icon"]', (l) => l.dataset.count)) === '0', { timeout: T, what: 'the icon plain again' });
    assert.doesNotMatch(await v.page.title(), /^\(/);
    assertNoPageProblems(v);
  }),
);

test('notifications: a visitor waiting for a reply: the list counts the wait live; past the reminder it turns red, the sound plays again, then a desktop notification; a reply ends it', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ctx = await env.context('agent Ana');
    await ctx.grantPermissions(['notifications'], { origin: srv.base });
    await ctx.addInitScript(spyOnNotifications);
    const page = await ctx.newPage();
    // The page's clock, so that minutes pass in a moment (the server's stays real).
    await page.clock.install();
    await page.goto(`${srv.base}/agent`);
    await page.fill('#login-email', ANA.email);
    await page.fill('#login-password', ANA.password);
    await page.click('#login-submit');
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    await page.getByRole('button', { name: 'Notifications' }).click();
    const dialog = page.getByRole('dialog', { name: 'Notifications' });
    await dialog.getByLabel('Remind me when a visitor waits for a reply longer than').selectOption({ label: '1 minute' });
    await dialog.getByRole('button', { name: 'Close' }).click();

    const v = await newVisitor(srv, 'Lin');
    const m = await visitorSend(srv, v.token, 'Is my refund through?');
    const item = page.locator(`#conversation-list .conv-item[data-id="${m.conversation_id}"]`);
    await item.locator('.conv-wait').waitFor({ timeout: T });
    assert.equal(await item.locator('.conv-wait').textContent(), 'Waiting <1 min');
    const sounds = await played(page);
    await page.clock.fastForward('01:05');
    await eventually(async () => (await item.locator('.conv-wait').textContent()) === 'Waiting 1 min', { timeout: T, what: 'the wait counts on' });
    assert.equal(await item.locator('.conv-wait.long').count(), 1, 'past the reminder: marked');
    await eventually(async () => (await played(page)) === sounds + 1, { timeout: T, what: 'the sound again at the reminder' });
    assert.equal((await shown(page)).filter((n) => /has waited/.test(n.title)).length, 0, 'no desktop notification yet');
    await page.clock.fastForward('01:05');
    await eventually(async () => (await shown(page)).some((n) => n.title === 'Lin has waited 2 min'), { timeout: T, what: 'the desktop notification at twice the limit' });

    // A reply ends the wait.
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    await agentSend(srv, ana, m.conversation_id, 'Yes, it went out today.');
    await eventually(async () => (await item.locator('.conv-wait').isHidden()), { timeout: T, what: 'no wait after the reply' });
  }),
);
