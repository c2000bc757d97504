'use strict';
// widget_settings.test.js: the website widget's settings (issue 15; docs/API.md, "Widget
// settings"). Ana (an admin) changes the colour, title and greeting in the console's Settings
// dialog and a widget open on another site (http://localhost:PORT, while kefu is
// http://127.0.0.1:PORT) changes at once; Bo (an agent) has no such button and gets 403; a page
// rule hides the launcher on the site's other pages; the pre-chat form stands before the message
// box until it is filled, and the agent sees the answers in the visitor panel; with nobody online
// the leave-a-message form makes a conversation the team sees, with the visitor's e-mail.
// KEFU_SCREENSHOTS=dir keeps screenshots of the dialog and the forms at 1280×800 and 390×844.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, assertError, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, waitConnected, assertNoPageProblems, trackDialogs, pageUrl } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// A customer's site: each path is a page with the one tag, on http://localhost:PORT.
async function hostSite(env, srv, paths) {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title></head><body><h1>Shop</h1><script src="${srv.base}/widget.js" async></script></body></html>`;
  const server = http.createServer((req, res) => {
    if (!paths.includes(req.url.split('?')[0])) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://localhost:${server.address().port}`;
}

async function hostPage(env, url, label, viewport = DESKTOP) {
  const ctx = await env.context(label);
  const page = await ctx.newPage();
  await page.setViewportSize(viewport);
  trackDialogs(page);
  await page.goto(url);
  return { page, label, context: ctx };
}

const launcherColor = (p) => p.evaluate(() => {
  const host = document.querySelector('kefu-widget');
  return host && host.isConnected ? getComputedStyle(host.shadowRoot.querySelector('button')).backgroundColor : null;
});

async function openWidget(p) {
  await p.locator('kefu-widget button').first().click();
  const handle = await p.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T });
  const frame = await handle.contentFrame();
  await waitConnected(frame);
  return frame;
}

async function patchWidget(srv, admin, widget) {
  const r = await srv.api('PATCH', '/api/settings', { cookie: admin.cookie, csrf: admin.csrf, body: { widget } });
  assert.equal(r.status, 200, r.text);
  return r.json.settings.widget;
}

test('an admin changes the colour, title and greeting in Settings: an open widget on another site changes at once; an agent may not', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const site = await hostSite(env, srv, ['/']);
    const host = await hostPage(env, `${site}/`, 'host');
    const p = host.page;
    await p.locator('kefu-widget button').first().waitFor({ timeout: T });
    assert.equal(await launcherColor(p), 'rgb(33, 89, 204)', 'the default colour');
    const frame = await openWidget(p);
    assert.equal(await frame.locator('#chat-title').textContent(), 'Support');
    assert.ok(await frame.locator('#widget-greeting').isHidden(), 'no greeting by default');

    // Bo is no admin: no button, and the API says 403.
    const bo = await agentLogin(srv, BO.email, BO.password);
    assertError(await srv.api('PATCH', '/api/settings', { cookie: bo.cookie, csrf: bo.csrf, body: { widget: { color: '#000000' } } }), 403, 'forbidden', "an agent's change");
    const boPage = await openAgent(env, srv, 'ws', BO);
    assert.ok(await boPage.page.locator('#settings-button').isHidden(), 'an agent has no Settings button');

    const ana = await openAgent(env, srv, 'sse', ANA);
    await ana.page.getByRole('button', { name: 'Settings', exact: true }).click();
    await ana.page.waitForSelector('#settings-dialog[open]', { timeout: T });
    const dialog = ana.page.locator('#settings-dialog');
    // A bad time zone is refused, saying which field, and nothing changes.
    await dialog.getByLabel('Time zone').fill('Mars/Olympus');
    await dialog.getByRole('button', { name: 'Save widget settings' }).click();
    await dialog.locator('#widget-settings-error:not([hidden])').waitFor({ timeout: T });
    assert.match(await dialog.locator('#widget-settings-error').textContent(), /time_zone/);
    await dialog.getByLabel('Time zone').fill('Europe/Berlin');
    await dialog.getByLabel('Colour').fill('#0a7d3b');
    await dialog.getByLabel('Title', { exact: true }).fill('Sneaker help');
    await dialog.getByLabel('Greeting (the first message a visitor sees)').fill('Hi! Ask us about sizes.');
    await dialog.getByLabel('Agent avatar (initials or a name)').fill('Mia Lee');
    await dialog.getByRole('button', { name: 'Save widget settings' }).click();
    await ana.page.getByText('Widget settings saved.').waitFor({ timeout: T });
    assert.ok(await dialog.locator('#widget-settings-error').isHidden());
    await ana.page.setViewportSize(DESKTOP);
    await screenshot(ana.page, 'widget-settings-desktop');
    await ana.page.setViewportSize(PHONE);
    await screenshot(ana.page, 'widget-settings-phone');
    await ana.page.setViewportSize(DESKTOP);

    // The open widget, on another origin, with no reload.
    await frame.locator('#chat-title', { hasText: 'Sneaker help' }).waitFor({ timeout: T });
    await frame.locator('#widget-greeting-text', { hasText: 'Hi! Ask us about sizes.' }).waitFor({ timeout: T });
    assert.equal(await frame.locator('#widget-greeting-avatar').textContent(), 'ML');
    await eventually(async () => (await launcherColor(p)) === 'rgb(10, 125, 59)', { timeout: T, what: 'the launcher in the new colour' });
    assert.equal(await frame.locator('.chat-header').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(10, 125, 59)');
    await screenshot(p, 'widget-greeting-desktop');
    // Kept: what a new page reads.
    const r = await srv.api('GET', '/api/widget');
    assert.equal(r.json.widget.title, 'Sneaker help');
    assert.equal(r.json.widget.time_zone, 'Europe/Berlin');

    // Business hours: Monday to Friday offered, Friday closing at 16:00.
    await dialog.getByRole('checkbox', { name: 'Business hours' }).check();
    assert.equal(await dialog.getByRole('checkbox', { name: 'Saturday' }).isChecked(), false);
    await dialog.getByLabel('Friday closes', { exact: true }).fill('16:00');
    await dialog.getByLabel('When no one can answer, ask visitors to leave a message').check();
    await dialog.getByRole('button', { name: 'Save widget settings' }).click();
    await eventually(async () => {
      const w = (await srv.api('GET', '/api/widget')).json.widget;
      return w.offline_form === true && w.hours && w.hours.fri.close === '16:00';
    }, { timeout: T, what: 'the hours stored' });
    const { widget, availability } = (await srv.api('GET', '/api/widget')).json;
    assert.deepEqual(Object.keys(widget.hours), ['mon', 'tue', 'wed', 'thu', 'fri']);
    assert.deepEqual(widget.hours.mon, { open: '09:00', close: '17:00' });
    assert.equal(typeof availability.changes_at, 'number', 'the next opening or closing time');
    await dialog.locator('#widget-hours').scrollIntoViewIfNeeded();
    await screenshot(ana.page, 'widget-settings-hours-desktop');
    await assertNoPageProblems(ana, boPage, host);
  }),
);

test('a page rule: the launcher shows on the pages it names only', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const admin = await agentLogin(srv, ANA.email, ANA.password);
    await patchWidget(srv, admin, { pages: ['/shop/*', '/help'], position: 'bottom-left' });
    const site = await hostSite(env, srv, ['/', '/shop/shoes', '/help/faq']);
    for (const [where, shown] of [['/shop/shoes', true], ['/help/faq', true], ['/', false]]) {
      const { page } = await hostPage(env, `${site}${where}`, `host ${where}`);
      if (shown) {
        await page.locator('kefu-widget button').first().waitFor({ timeout: T });
        const box = await page.locator('kefu-widget button').first().boundingBox();
        assert.ok(box.x < 40, `bottom left on ${where}: ${JSON.stringify(box)}`);
      } else {
        // The settings came (the request is answered) and still no launcher.
        await eventually(() => page.evaluate(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('/api/widget') && e.responseEnd > 0)), { timeout: T, what: 'the settings read' });
        await page.waitForTimeout(300);
        assert.equal(await page.evaluate(() => !!document.querySelector('kefu-widget')), false, `no launcher on ${where}`);
      }
    }
  }),
);

test('the pre-chat form: required fields and consent before the first message; the agent sees the answers', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const admin = await agentLogin(srv, ANA.email, ANA.password);
    await patchWidget(srv, admin, { prechat: { required: true, fields: [{ label: 'Order number', required: true }], consent: 'You may keep my details to answer me.' } });
    const site = await hostSite(env, srv, ['/']);
    const host = await hostPage(env, `${site}/`, 'host', PHONE);
    const frame = await openWidget(host.page);
    const form = frame.locator('#prechat-form');
    await form.waitFor({ timeout: T });
    assert.ok(await frame.locator('#composer').isHidden(), 'no message box before the form');
    await screenshot(host.page, 'widget-prechat-phone');
    // Not filled: it says so.
    await form.getByRole('button', { name: 'Start the chat' }).click();
    assert.equal(await frame.locator('#prechat-error').textContent(), 'Please fill in every required field.');
    await form.getByLabel('Your name').fill('Wang Lei');
    await form.getByLabel('Your e-mail').fill('wang@example.com');
    await form.getByLabel('Order number').fill('A-1042');
    await form.getByRole('button', { name: 'Start the chat' }).click();
    assert.equal(await frame.locator('#prechat-error').textContent(), 'Please tick the box to agree before you start.');
    await form.getByLabel('You may keep my details to answer me.').check();
    await form.getByRole('button', { name: 'Start the chat' }).click();
    await frame.locator('#composer').waitFor({ state: 'visible', timeout: T });
    assert.ok(await form.isHidden());
    await frame.fill('#message-input', 'Where is my order?');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'Where is my order?', 'visitor');

    const ana = await openAgent(env, srv, 'sse', ANA);
    const conv = (await srv.api('GET', '/api/conversations', { cookie: admin.cookie })).json.conversations[0];
    await selectConv(ana, conv.id);
    await ana.page.locator('#visitor-email', { hasText: 'wang@example.com' }).waitFor({ timeout: T });
    assert.equal(await ana.page.locator('#visitor-name').textContent(), 'Wang Lei');
    const answers = ana.page.locator('#visitor-form');
    await answers.getByText('A-1042').waitFor({ timeout: T });
    assert.match(await answers.textContent(), /Order number/);
    assert.match(await answers.textContent(), /You may keep my details to answer me\./);
    await assertNoPageProblems(ana, host);
  }),
);

test('nobody online: the visitor is told and leaves a message; the team sees the conversation with the e-mail', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const admin = await agentLogin(srv, ANA.email, ANA.password);
    await patchWidget(srv, admin, { offline_form: true });
    const visitor = await env.page('visitor');
    trackDialogs(visitor);
    await visitor.setViewportSize(DESKTOP);
    await visitor.goto(pageUrl(srv, '/chat'));
    await waitConnected(visitor);
    const form = visitor.locator('#offline-form');
    await form.waitFor({ timeout: T });
    assert.equal(await visitor.locator('#offline-notice').textContent(), 'No one from our team is online right now. Leave us a message and we will write back.');
    assert.ok(await visitor.locator('#composer').isHidden());
    await screenshot(visitor, 'offline-form-desktop');
    await visitor.setViewportSize(PHONE);
    await screenshot(visitor, 'offline-form-phone');
    await form.getByLabel('Your name').fill('Ola Nordmann');
    await form.getByLabel('Your e-mail').fill('not-an-address');
    await form.getByLabel('Your message').fill('Do you ship to Norway?');
    await form.getByRole('button', { name: 'Send message' }).click();
    assert.equal(await visitor.locator('#offline-error').textContent(), 'That e-mail address does not look right.');
    await form.getByLabel('Your e-mail').fill('ola@example.no');
    await form.getByRole('button', { name: 'Send message' }).click();
    await visitor.locator('#offline-sent', { hasText: 'ola@example.no' }).waitFor({ timeout: T });
    await waitMsg(visitor, '#messages', 'Do you ship to Norway?', 'visitor');
    assert.ok(await form.isHidden());

    // Ana comes online: the conversation is there like any other, the e-mail on the visitor.
    const ana = await openAgent(env, srv, 'sse', ANA);
    const conv = (await srv.api('GET', '/api/conversations', { cookie: admin.cookie })).json.conversations[0];
    assert.ok(conv, 'a conversation');
    await selectConv(ana, conv.id);
    await waitMsg(ana.page, '#thread', 'Do you ship to Norway?', 'visitor');
    await ana.page.locator('#visitor-email', { hasText: 'ola@example.no' }).waitFor({ timeout: T });
    // And the visitor's page hears that someone is here now.
    await visitor.locator('#offline-notice').waitFor({ state: 'hidden', timeout: T });
    await assertNoPageProblems(ana, { page: visitor, label: 'visitor' });
  }),
);

test('the sites an admin lists may show the widget\'s chat; another site\'s frame stays empty, and no list means any site', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const admin = await agentLogin(srv, ANA.email, ANA.password);
    const listed = await hostSite(env, srv, ['/']);
    const other = await hostSite(env, srv, ['/']);
    const frameRenders = async (site, label) => {
      const { page } = await hostPage(env, `${site}/`, label);
      await page.locator('kefu-widget button').first().click();
      const handle = await page.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T });
      const frame = await handle.contentFrame();
      return eventually(() => (frame ? frame.evaluate(() => !!document.querySelector('#message-input')).catch(() => false) : false), { timeout: 3000, what: `the chat in ${label}` })
        .then(() => true, () => false);
    };
    // Refused with a reason naming the field: a path, a scheme kefu cannot frame, a header's punctuation.
    for (const bad of [['https://shop.example/path'], ['ftp://shop.example'], ['https://a.example; script-src *'], 'https://shop.example']) {
      const r = await srv.api('PATCH', '/api/settings', { cookie: admin.cookie, csrf: admin.csrf, body: { widget: { sites: bad } } });
      assertError(r, 400, 'bad_request', `sites ${JSON.stringify(bad)}`);
      assert.match(r.json.error.message, /sites/);
    }
    // Listed in the console, as a person types it (a trailing slash, capitals).
    const ana = await openAgent(env, srv, 'sse', ANA);
    await ana.page.getByRole('button', { name: 'Settings', exact: true }).click();
    const dialog = ana.page.locator('#settings-dialog');
    await dialog.getByLabel(/Sites that may show the chat/).fill(`${listed.replace('localhost', 'LocalHost')}/`);
    await dialog.getByRole('button', { name: 'Save widget settings' }).click();
    await ana.page.getByText('Widget settings saved.').waitFor({ timeout: T });
    const saved = await srv.api('GET', '/api/settings', { cookie: admin.cookie });
    assert.deepEqual(saved.json.settings.widget.sites, [listed]);
    const headers = (await srv.api('GET', '/widget')).headers;
    assert.match(headers['content-security-policy'], new RegExp(`frame-ancestors 'self' ${listed.replace(/[.:/]/g, '\\$&')};`));
    assert.equal(await frameRenders(listed, 'listed site'), true, 'the listed site shows the chat');
    assert.equal(await frameRenders(other, 'other site'), false, 'another site\'s frame is refused by the browser');
    // The list emptied: any site again.
    await patchWidget(srv, admin, { sites: [] });
    assert.match((await srv.api('GET', '/widget')).headers['content-security-policy'], /frame-ancestors \*;/);
    assert.equal(await frameRenders(other, 'other site, no list'), true, 'with no list, any site');
  }),
);

test('nobody online, by default (no leave-a-message form): the visitor is told, still writes in the chat, and the notice goes when an agent answers', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const visitor = await env.page('visitor');
    trackDialogs(visitor);
    await visitor.goto(pageUrl(srv, '/chat'));
    await waitConnected(visitor);
    const notice = visitor.getByRole('status').filter({ hasText: 'No one from our team is online right now' });
    await notice.waitFor({ timeout: T });
    assert.ok(await visitor.locator('#offline-form').isHidden(), 'no form unless the admin turns it on');
    await visitor.getByRole('textbox', { name: /message/i }).fill('Are you there?');
    await visitor.keyboard.press('Enter');
    await waitMsg(visitor, '#messages', 'Are you there?', 'visitor');
    // An agent comes and answers: someone can, and the notice goes with the reply.
    const ana = await openAgent(env, srv, 'ws', ANA);
    const conv = (await srv.api('GET', '/api/conversations', { cookie: (await agentLogin(srv, ANA.email, ANA.password)).cookie })).json.conversations[0];
    await selectConv(ana, conv.id);
    await ana.page.getByRole('textbox', { name: /reply/i }).fill('Yes, here!');
    await ana.page.keyboard.press('Enter');
    await waitMsg(visitor, '#messages', 'Yes, here!', 'agent');
    await notice.waitFor({ state: 'hidden', timeout: T });
    await assertNoPageProblems(ana, { page: visitor, label: 'visitor' });
  }),
);
