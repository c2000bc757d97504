'use strict';
// invite.test.js: proactive invitations (issue 15; docs/API.md, "Visitors online and
// invitations"). A visitor browses a customer's site (a plain page on http://localhost:PORT with
// the loader's data-proactive, kefu on http://127.0.0.1:PORT): they appear in the agents'
// "Visitors online" list live, in two consoles over two transports; an agent invites them, the
// widget opens with the message without a reload, the visitor answers and the agent sees it; they
// leave and the list says so. An admin's rule fires after a few seconds on a matching path, while
// the host tab is hidden: the host page's title blinks until the tab is shown again, and the rule
// does not invite the same visitor twice.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, openVisitor, selectConv, waitMsg, waitConnected, assertNoPageProblems, trackDialogs } = require('./pages');

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

// A customer's site: each path is a page, on http://localhost:PORT.
async function hostSite(env, pages) {
  const server = http.createServer((req, res) => {
    const body = pages[req.url.split('?')[0]];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://localhost:${server.address().port}`;
}

const sitePage = (srv, title) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><script src="${srv.base}/widget.js" data-proactive async></script></body></html>`;

async function hostPage(env, url, label) {
  const ctx = await env.context(label);
  const p = await ctx.newPage();
  await p.setViewportSize({ width: 1280, height: 800 });
  trackDialogs(p);
  await p.goto(url);
  return { page: p, label, context: ctx };
}

async function widgetFrame(p) {
  const handle = await p.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T });
  return handle.contentFrame();
}

function widgetOpen(p) {
  return p.evaluate(() => {
    const box = document.querySelector('kefu-widget').shadowRoot.querySelector('.f');
    return getComputedStyle(box).visibility === 'visible';
  });
}

// The rows of the console's "Visitors online" list: name, title, url.
function visitorRows(a) {
  return a.page.$$eval('#visitors-rows .visitor-row', (els) => els.map((e) => ({
    id: Number(e.dataset.visitorId),
    name: e.querySelector('.visitor-name').textContent,
    title: e.querySelector('.visitor-title').textContent,
    url: e.querySelector('.visitor-url').textContent,
    times: e.querySelector('.visitor-times').textContent,
    invited: !!e.querySelector('.visitor-invited'),
  })));
}

async function waitRows(a, pred, what, timeout = T) {
  let last = null;
  try {
    return await eventually(async () => {
      last = await visitorRows(a);
      return pred(last) && last;
    }, { timeout, what });
  } catch (e) {
    throw new Error(`${what}: rows ${JSON.stringify(last)}`);
  }
}

const count = (a) => a.page.$eval('#visitors-count', (e) => e.textContent);

test('visitors online: a visitor on a host page appears live in two consoles, an agent invites them, the widget opens with the message, the reply reaches the agent, and the visitor leaves the list', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const site = await hostSite(env, { '/': sitePage(srv, 'Running shoes – Shop'), '/pricing': sitePage(srv, 'Pricing – Shop') });
    const ana = await openAgent(env, srv, 'sse', ANA);
    const bo = await openAgent(env, srv, 'longpoll', BO);
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    await ana.page.getByRole('button', { name: /Visitors online/ }).click();
    await ana.page.getByText('Nobody is browsing the site right now.', { exact: false }).waitFor({ timeout: T });

    // The visitor opens a page of the site: the frame loads hidden and reports the host page.
    const host = await hostPage(env, `${site}/`, 'host');
    const p = host.page;
    const frame = await widgetFrame(p);
    await waitConnected(frame);
    assert.equal(await widgetOpen(p), false, 'the chat stays closed');
    let rows = await waitRows(ana, (r) => r.length === 1 && r[0].title === 'Running shoes – Shop', 'the visitor in Ana\'s list');
    assert.match(rows[0].url, /^localhost:\d+\/$/);
    assert.match(rows[0].times, /On the site \d+ s/);
    await eventually(async () => (await count(bo)) === '1', { timeout: T, what: 'Bo\'s count, with the dialog closed' });
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const listed = await srv.api('GET', '/api/visitors/online', { cookie: agent.cookie });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.visitors.length, 1);
    assert.equal(listed.json.visitors[0].url, `${site}/`);

    // They move to another page: the list follows.
    await p.goto(`${site}/pricing`);
    await waitConnected(await widgetFrame(p));
    rows = await waitRows(ana, (r) => r.length === 1 && r[0].title === 'Pricing – Shop', 'the new page in the list');
    await screenshot(ana.page, 'invite-visitors-desktop');

    // Ana invites them: the widget opens with the message, without a reload.
    await ana.page.getByRole('button', { name: /^Invite .* to chat$/ }).click();
    const message = ana.page.getByLabel(/^Invitation to /);
    await message.fill('Hi! Any questions about our plans?');
    await screenshot(ana.page, 'invite-form-desktop');
    await ana.page.getByRole('button', { name: 'Send invitation' }).click();
    await ana.page.getByText(/Invitation sent to/).waitFor({ timeout: T });
    const invitedFrame = await widgetFrame(p);
    await waitMsg(invitedFrame, '#messages', 'Hi! Any questions about our plans?', 'agent');
    await eventually(() => widgetOpen(p), { timeout: T, what: 'the widget opened by the invitation' });
    await screenshot(p, 'invite-widget-open-desktop');
    await waitRows(ana, (r) => r.length === 1 && r[0].invited, 'marked invited');
    await bo.page.getByRole('button', { name: /Visitors online/ }).click();
    await waitRows(bo, (r) => r.length === 1 && r[0].invited, 'marked invited in Bo\'s console too');
    await bo.page.keyboard.press('Escape');

    // The visitor answers; the agent sees it, after the invitation, in one conversation.
    await invitedFrame.fill('#message-input', 'Yes: is there a yearly plan?');
    await invitedFrame.press('#message-input', 'Enter');
    await waitMsg(invitedFrame, '#messages', 'Yes: is there a yearly plan?', 'visitor');
    await ana.page.keyboard.press('Escape');
    const convs = (await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations;
    assert.equal(convs.length, 1, 'one conversation');
    const msgs = (await srv.api('GET', `/api/conversations/${convs[0].id}/messages?after=0`, { cookie: agent.cookie })).json.messages;
    assert.deepEqual(msgs.map((m) => [m.sender, m.body]), [['agent', 'Hi! Any questions about our plans?'], ['visitor', 'Yes: is there a yearly plan?']]);
    await selectConv(ana, convs[0].id);
    await waitMsg(ana.page, '#thread', 'Yes: is there a yearly plan?', 'visitor');

    // Bad input: an empty invitation, a visitor who is not browsing.
    let r = await srv.api('POST', `/api/visitors/${rows[0].id}/invite`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: '  ' } });
    assert.equal(r.status, 422, r.text);
    r = await srv.api('POST', '/api/visitors/999999/invite', { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Hello?' } });
    assert.equal(r.status, 404, r.text);
    r = await srv.api('POST', `/api/visitors/${rows[0].id}/invite`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 5 } });
    assert.equal(r.status, 422, r.text);

    // The phone: the dialog still reads.
    await ana.page.setViewportSize({ width: 390, height: 844 });
    await ana.page.evaluate(() => document.getElementById('visitors-button').click());
    await waitRows(ana, (r) => r.length === 1, 'the list on a phone');
    await screenshot(ana.page, 'invite-visitors-phone');
    await ana.page.keyboard.press('Escape');

    // They leave: gone from the list (no push connection, nothing heard for 30 s).
    assertNoPageProblems(host);
    await host.context.close();
    await eventually(async () => (await count(bo)) === '0', { timeout: 60000, what: 'gone from Bo\'s count' });
    r = await srv.api('GET', '/api/visitors/online', { cookie: agent.cookie });
    assert.deepEqual(r.json.visitors, []);
    assertNoPageProblems(ana, bo);
  }));

test('invitation rules: an admin adds one in the console, every console sees it, it fires after its seconds on a matching path while the host tab is hidden (the title blinks until the tab is shown), and not twice', { timeout: 150000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const site = await hostSite(env, { '/': sitePage(srv, 'Home – Shop'), '/pricing/team': sitePage(srv, 'Team plans – Shop') });
    const ana = await openAgent(env, srv, 'ws', ANA);
    const bo = await openAgent(env, srv, 'poll', BO);
    await ana.page.getByRole('button', { name: /Visitors online/ }).click();
    await bo.page.getByRole('button', { name: /Visitors online/ }).click();
    await bo.page.getByText('Only admins add and delete rules.').waitFor({ timeout: T });
    assert.equal(await bo.page.isVisible('#invite-rule-form'), false, 'no form for an agent');

    await ana.page.getByLabel('Page path').fill('/pricing');
    await ana.page.getByLabel('Seconds on the page').fill('3');
    await ana.page.getByRole('textbox', { name: 'Invitation message' }).last().fill('Comparing plans? I can help.');
    await ana.page.getByRole('button', { name: 'Add rule' }).click();
    await ana.page.getByText('Rule for /pricing added.').waitFor({ timeout: T });
    await bo.page.locator('#invite-rules-rows .invite-rule-path', { hasText: '/pricing' }).waitFor({ timeout: T });
    await screenshot(ana.page, 'invite-rules-desktop');
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const bad = [
      [{ path: 'pricing', seconds: 3, body: 'x' }, 'no leading slash'],
      [{ path: '/p', seconds: -1, body: 'x' }, 'negative seconds'],
      [{ path: '/p', seconds: 1.5, body: 'x' }, 'fractional seconds'],
      [{ path: '/p', seconds: 3, body: '' }, 'an empty message'],
      [{ path: '/p?x=1', seconds: 3, body: 'x' }, 'a query'],
    ];
    for (const [body, what] of bad) {
      const r = await srv.api('POST', '/api/invite-rules', { cookie: agent.cookie, csrf: agent.csrf, body });
      assert.equal(r.status, 422, `${what}: ${r.text}`);
    }
    const boApi = await agentLogin(srv, BO.email, BO.password);
    let r = await srv.api('POST', '/api/invite-rules', { cookie: boApi.cookie, csrf: boApi.csrf, body: { path: '/x', seconds: 1, body: 'x' } });
    assert.equal(r.status, 403, r.text);
    r = await srv.api('GET', '/api/invite-rules', { cookie: boApi.cookie });
    assert.equal(r.json.rules.length, 1, 'only the good rule');
    // Durable: a restart keeps it, and the consoles read it again when they reconnect.
    await srv.restart();
    r = await srv.api('GET', '/api/invite-rules', { cookie: boApi.cookie });
    assert.deepEqual(r.json.rules.map((x) => [x.path, x.seconds, x.body]), [['/pricing', 3, 'Comparing plans? I can help.']], 'kept across a restart');
    await waitConnected(ana.page, 30000);
    await waitConnected(bo.page, 30000);

    // A visitor on a page the rule is not for: nothing.
    const host = await hostPage(env, `${site}/`, 'host');
    const p = host.page;
    await waitConnected(await widgetFrame(p));
    await p.waitForTimeout(4500);
    assert.equal(await widgetOpen(p), false, 'not on /pricing: no invitation');

    // On /pricing/team with the tab hidden: after 3 s the widget opens with the rule's message,
    // and the title takes turns with "New message".
    await p.goto(`${site}/pricing/team`);
    await p.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const frame = await widgetFrame(p);
    await waitMsg(frame, '#messages', 'Comparing plans? I can help.', 'agent', 20000);
    await eventually(() => widgetOpen(p), { timeout: T, what: 'opened by the rule' });
    const titles = new Set();
    await eventually(async () => {
      titles.add(await p.title());
      return titles.has('New message') && titles.has('Team plans – Shop');
    }, { timeout: T, interval: 200, what: 'the title blinks' });
    await p.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    assert.equal(await p.title(), 'Team plans – Shop', 'the title is back');
    await p.waitForTimeout(2500);
    assert.equal(await p.title(), 'Team plans – Shop', 'and stays');
    const conversations = (await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations;
    assert.equal(conversations.length, 1);
    const first = (await srv.api('GET', `/api/conversations/${conversations[0].id}/messages?after=0`, { cookie: agent.cookie })).json.messages;
    assert.deepEqual(first.map((m) => [m.sender, m.agent_name, m.body]), [['agent', 'Ana', 'Comparing plans? I can help.']]);

    // Closed by the visitor, then the page again: the same rule does not invite them again.
    await frame.getByRole('button', { name: 'Close chat' }).click();
    await p.reload();
    await waitConnected(await widgetFrame(p));
    await p.waitForTimeout(5000);
    assert.equal(await widgetOpen(p), false, 'not invited again');
    const token = await (await widgetFrame(p)).evaluate(() => {
      try {
        return localStorage.getItem('kefu.visitor.token');
      } catch (e) {
        return null;
      }
    }) || await p.evaluate(() => JSON.parse(localStorage.getItem('kefu.widget.kept') || '{}')['kefu.visitor.token']);
    const rule = (await srv.api('GET', '/api/invite-rules', { cookie: agent.cookie })).json.rules[0];
    r = await srv.api('POST', `/api/visitor/invite-rules/${rule.id}/fire`, { token });
    assert.equal(r.status, 409, `the server refuses a second firing too: ${r.text}`);
    r = await srv.api('POST', '/api/visitor/invite-rules/9999/fire', { token });
    assert.equal(r.status, 404, r.text);
    const again = (await srv.api('GET', `/api/conversations/${conversations[0].id}/messages?after=0`, { cookie: agent.cookie })).json.messages;
    assert.equal(again.length, 1, 'one invitation');

    // The admin deletes the rule: gone from every console.
    await ana.page.getByRole('button', { name: 'Delete the rule for /pricing' }).click();
    await ana.page.getByText('Rule for /pricing deleted.').waitFor({ timeout: T });
    await bo.page.getByText('No rules yet.').waitFor({ timeout: T });
    assertNoPageProblems(ana, bo, host);
  }));

test('a visitor on the chat page itself is online too, and an invitation shows there at once', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, 'poll');
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const online = await eventually(async () => {
      const r = await srv.api('GET', '/api/visitors/online', { cookie: agent.cookie });
      return r.json.visitors.length === 1 && r.json.visitors[0];
    }, { timeout: T, what: 'the /chat visitor online' });
    assert.match(online.url, /\/chat\?transport=poll$/);
    const r = await srv.api('POST', `/api/visitors/${online.visitor_id}/invite`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Welcome! Ask me anything.' } });
    assert.equal(r.status, 201, r.text);
    await waitMsg(v.page, '#messages', 'Welcome! Ask me anything.', 'agent');
    assertNoPageProblems(v);
  }));
