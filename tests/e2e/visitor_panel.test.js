'use strict';
// visitor_panel.test.js: visitor details (docs/API.md, "Visitor details"; docs/UI-CONTRACT.md,
// "Visitor panel"). Over the API: a page report's checks (400 for a bad URL, scheme or size), the
// name and e-mail's (400 for a bad e-mail), and what the panel's read gives. In the browser: a
// visitor moves through a single-page site with pushState and the panel in two consoles (SSE and
// WebSocket) follows at once; the visitor gives a name and e-mail under "Your details", which
// the consoles show and the search finds; an earlier conversation of the same e-mail is listed
// and opens in the console; an agent corrects the e-mail in the panel.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, pageUrl, waitConnected, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

test('visitor details over the API: page reports, name and e-mail, the panel', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const A = (method, p, body) => srv.api(method, p, { cookie: ana.cookie, csrf: ana.csrf, body });
    const v = await newVisitor(srv);
    const V = (method, p, body) => srv.api(method, p, { token: v.token, body });
    const message = await visitorSend(srv, v.token, 'Hi there');

    for (const body of [{}, { url: 'javascript:alert(1)' }, { url: '/x' }, { url: 'https://x.example/' + 'a'.repeat(2049) },
      { url: 'https://x.example/', title: 'é'.repeat(301) }, { url: 'https://x.example/', utc_offset: 1000 },
      { url: 'https://x.example/', referrer: 'ftp://x.example/' }]) {
      assertError(await V('POST', '/api/visitor/page', body), 400, 'bad_request', JSON.stringify(body).slice(0, 80));
    }
    for (const email of ['nope', 'a@b', 'a@@b.io', '@b.io', 'a b@c.io', 'x'.repeat(250) + '@b.io']) {
      assertError(await V('PATCH', '/api/visitor', { email }), 400, 'bad_request', email.slice(0, 40));
    }
    assertError(await V('PATCH', '/api/visitor', {}), 400, 'bad_request', 'nothing to change');

    let r = await V('POST', '/api/visitor/page', {
      url: 'https://shop.example/', title: 'Shop', referrer: 'https://news.example/article',
      user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
      language: 'fr-FR', timezone: 'Europe/Paris', utc_offset: 60,
    });
    assert.equal(r.status, 200, r.text);
    r = await V('PATCH', '/api/visitor', { name: 'Léa Martin', email: 'lea@shop.example' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.visitor, { id: v.visitor.id, name: 'Léa Martin', email: 'lea@shop.example', verified: false });

    r = await A('GET', `/api/conversations/${message.conversation_id}/visitor`);
    assert.equal(r.status, 200, r.text);
    const d = r.json.visitor;
    assert.equal(d.email, 'lea@shop.example');
    assert.deepEqual(d.page, { url: 'https://shop.example/', title: 'Shop' });
    assert.equal(d.browser, 'Safari 17 on macOS');
    assert.equal(d.language, 'fr-FR');
    assert.equal(d.timezone, 'Europe/Paris');
    assert.equal(d.utc_offset, 60);
    assert.equal(d.referrer, 'https://news.example/article');
    assert.equal(d.pages.length, 1);
    assert.ok(d.last_seen_at >= d.created_at);
    assert.deepEqual(r.json.conversations, []);

    // The search finds the visitor by e-mail.
    r = await A('GET', '/api/search?q=' + encodeURIComponent('lea@shop.example'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((h) => h.conversation_id), [message.conversation_id]);
    // Agents may correct it; visitors may not call the agents' route, nor agents the visitors'.
    assertError(await A('PATCH', `/api/conversations/${message.conversation_id}/visitor`, { email: 'x' }), 400, 'bad_request', 'bad e-mail by an agent');
    assertError(await srv.api('PATCH', `/api/conversations/${message.conversation_id}/visitor`, { token: v.token, body: { name: 'x' } }), 401, 'unauthorized', 'a visitor on the agents\' route');
    r = await A('PATCH', `/api/conversations/${message.conversation_id}/visitor`, { email: 'lea.martin@shop.example' });
    assert.equal(r.status, 200, r.text);
    assert.equal((await A('GET', '/api/search?q=lea.martin')).json.results.length, 1);

    // Page reports have a bucket of their own: 20 at once, then one every 2 s.
    const w = await newVisitor(srv);
    const statuses = [];
    for (let i = 0; i < 21; i++) {
      statuses.push((await srv.api('POST', '/api/visitor/page', { token: w.token, body: { url: `https://shop.example/${i}` } })).status);
    }
    assert.deepEqual(statuses, [...Array(20).fill(200), 429]);
    const refused = await srv.api('POST', '/api/visitor/page', { token: w.token, body: { url: 'https://shop.example/' } });
    assertError(refused, 429, 'rate_limited', 'past the burst');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
  }));

test('the visitor panel: pages live in every console, details given by the visitor, earlier conversations', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // An earlier visit by the same person (another browser), with their e-mail.
    const before = await newVisitor(srv);
    const old = await visitorSend(srv, before.token, 'Last week: my parcel never came');
    assert.equal((await srv.api('PATCH', '/api/visitor', { token: before.token, body: { email: 'mia@shop.example' } })).status, 200);

    const visitorPage = await env.page('visitor');
    await visitorPage.setViewportSize({ width: 390, height: 844 });
    await visitorPage.goto(pageUrl(srv, '/chat', 'ws'));
    await waitConnected(visitorPage);
    await visitorPage.fill('#message-input', 'Hello, is the blue one in stock?');
    await visitorPage.keyboard.press('Enter');
    await waitMsg(visitorPage, '#messages', 'Hello, is the blue one in stock?', 'visitor');
    const token = await visitorPage.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    const convId = (await srv.api('GET', '/api/visitor/session', { token })).json.conversation.id;

    const ana = await openAgent(env, srv, 'sse', ANA);
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    const bo = await openAgent(env, srv, 'ws', BO);
    await bo.page.setViewportSize({ width: 1280, height: 800 });
    for (const a of [ana, bo]) await selectConv(a, convId);
    const panel = ana.page.getByRole('complementary', { name: 'Visitor' });
    await panel.waitFor({ timeout: T });
    // What the page said of itself: its address, browser, language and time zone.
    await ana.page.waitForFunction(() => /\/chat/.test(document.querySelector('#visitor-page a')?.href || ''), null, { timeout: T });
    assert.equal(await panel.locator('#visitor-page a').getAttribute('target'), '_blank');
    assert.match(await panel.locator('#visitor-page a').getAttribute('rel'), /noopener/);
    assert.match(await panel.locator('#visitor-browser').textContent(), /Chrome|Chromium/);
    assert.match(await panel.locator('#visitor-language').textContent(), /^[a-z]{2}/i);
    assert.match(await panel.locator('#visitor-local-time').textContent(), /\d\d:\d\d/);

    // The visitor moves on with pushState: both consoles follow without a reload.
    await visitorPage.evaluate(() => {
      document.title = 'Blue sneakers';
      history.pushState({}, '', '/chat?product=blue-sneakers#reviews');
    });
    for (const a of [ana, bo]) {
      await a.page.waitForFunction(() => /product=blue-sneakers/.test(document.querySelector('#visitor-page a')?.href || ''), null, { timeout: T });
      assert.equal(await a.page.locator('#visitor-page a').textContent(), 'Blue sneakers');
      await a.page.waitForFunction(() => document.querySelectorAll('#visitor-pages li').length >= 2, null, { timeout: T });
    }
    assert.match(await ana.page.locator('#visitor-pages li').first().textContent(), /\d:\d\d.*Blue sneakers/);
    // A title of markup is text in the panel.
    await visitorPage.evaluate(() => {
      document.title = '<img src=x onerror=window.__xss=1>Sale';
      history.pushState({}, '', '/chat?sale=1');
    });
    await ana.page.waitForFunction(() => /sale=1/.test(document.querySelector('#visitor-page a')?.href || ''), null, { timeout: T });
    assert.equal(await ana.page.locator('#visitor-page a').textContent(), '<img src=x onerror=window.__xss=1>Sale');
    assert.equal(await ana.page.locator('#visitor-panel img').count(), 0);
    assert.equal(await ana.page.evaluate(() => window.__xss), undefined);
    // A hash change is a page too.
    await visitorPage.evaluate(() => { location.hash = 'size-guide'; });
    await ana.page.waitForFunction(() => /#size-guide/.test(document.querySelector('#visitor-page a')?.href || ''), null, { timeout: T });

    // The visitor gives their name and e-mail under "Your details".
    await visitorPage.getByRole('button', { name: 'Your details' }).click();
    await visitorPage.getByLabel('Your e-mail').fill('not-an-address');
    await visitorPage.getByRole('button', { name: 'Save details' }).click();
    await visitorPage.locator('#details-error:not([hidden])').waitFor({ timeout: T });
    assert.match(await visitorPage.locator('#details-error').textContent(), /e-mail/);
    await visitorPage.getByLabel('Your name').fill('Mia Wong');
    await visitorPage.getByLabel('Your e-mail').fill('mia@shop.example');
    await visitorPage.getByRole('button', { name: 'Save details' }).click();
    await visitorPage.getByText('Saved. Thank you!').waitFor({ timeout: T });
    await screenshot(visitorPage, 'visitor-details-phone');
    for (const a of [ana, bo]) {
      await a.page.waitForFunction(() => document.querySelector('#visitor-email')?.textContent === 'mia@shop.example', null, { timeout: T });
      assert.equal(await a.page.locator('#visitor-name').textContent(), 'Mia Wong');
      assert.equal(await a.page.locator('#thread-title').textContent(), 'Mia Wong');
    }
    // Now the same person's earlier conversation is listed, and opens in the console.
    const earlier = ana.page.locator('#visitor-conversations .vp-earlier');
    await earlier.first().waitFor({ timeout: T });
    assert.equal(await earlier.count(), 1);
    assert.match(await earlier.first().textContent(), new RegExp(`#${old.conversation_id}.*parcel never came`));
    await screenshot(ana.page, 'visitor-panel-desktop');
    await earlier.first().click();
    await waitMsg(ana.page, '#thread', 'Last week: my parcel never came', 'visitor');
    await ana.page.waitForFunction((id) => document.querySelector(`#visitor-conversations .vp-earlier`)?.textContent.includes('#' + id), convId, { timeout: T });

    // The search finds the visitor by their e-mail.
    await ana.page.fill('#search-input', 'mia@shop.example');
    await ana.page.keyboard.press('Enter');
    await ana.page.waitForFunction(() => document.querySelectorAll('#search-list .search-hit').length === 2, null, { timeout: T });

    // Bo corrects the e-mail in his panel; Ana's follows.
    await bo.page.getByRole('button', { name: 'Edit name and e-mail' }).click();
    await bo.page.getByLabel("Visitor's e-mail").fill('mia.wong@shop.example');
    await bo.page.getByRole('button', { name: 'Save', exact: true }).click();
    await bo.page.waitForFunction(() => document.querySelector('#visitor-email')?.textContent === 'mia.wong@shop.example', null, { timeout: T });

    // On a laptop it sits below the thread, folded to its heading until opened.
    await ana.page.setViewportSize({ width: 1024, height: 768 });
    await ana.page.locator('#visitor-panel-toggle').click();
    await ana.page.locator('#visitor-email').waitFor({ state: 'visible', timeout: T });
    await screenshot(ana.page, 'visitor-panel-laptop');
    // On a phone the panel sits below the thread, folded until opened.
    await bo.page.setViewportSize({ width: 390, height: 844 });
    const toggle = bo.page.locator('#visitor-panel-toggle');
    await toggle.waitFor({ state: 'visible', timeout: T });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.ok(await bo.page.locator('#visitor-panel-body').isHidden());
    await toggle.click();
    assert.ok(await bo.page.locator('#visitor-email').isVisible());
    await screenshot(bo.page, 'visitor-panel-phone');
    assertNoPageProblems(ana, bo);
  }));
