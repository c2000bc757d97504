'use strict';
// typing_preview.test.js: the typing preview (docs/API.md, "Settings"; docs/SECURITY.md). Off (the
// default): the visitor's page sends no draft at all, over HTTP or its WebSocket, says nothing,
// and a draft sent to the server anyway reaches no console. An admin turns it on in the Settings
// dialog (an agent has no such button): every visitor's page says so at once, and the agents see
// the visitor's draft live under the thread, gone when it is sent. Turned off again, live: the
// notice goes and the drafts stop.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, assertError, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, pageUrl, waitConnected, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// Every typing action the page sends, over HTTP or its WebSocket, as parsed JSON.
function recordTyping(page) {
  const sent = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/api/visitor/typing')) sent.push(JSON.parse(req.postData() || '{}'));
  });
  page.on('websocket', (ws) => ws.on('framesent', (frame) => {
    try {
      const action = JSON.parse(frame.payload);
      if (action.type === 'typing') sent.push(action);
    } catch (e) { /* not JSON */ }
  }));
  return sent;
}

test('typing preview: off by default and silent, on with notice and live drafts, toggled live', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const bo = await agentLogin(srv, BO.email, BO.password);
    assertError(await srv.api('PATCH', '/api/settings', { cookie: bo.cookie, csrf: bo.csrf, body: { typing_preview: true } }), 403, 'forbidden', 'an agent');
    assert.deepEqual((await srv.api('GET', '/api/settings', { cookie: bo.cookie })).json.settings.typing_preview, false);

    for (const transport of ['ws', 'sse']) {
      const visitorPage = await env.page('visitor ' + transport);
      const sent = recordTyping(visitorPage);
      await visitorPage.goto(pageUrl(srv, '/chat', transport));
      await waitConnected(visitorPage);
      await visitorPage.fill('#message-input', 'First question');
      await visitorPage.keyboard.press('Enter');
      await waitMsg(visitorPage, '#messages', 'First question', 'visitor');
      visitorPage.sent = sent;
      env[transport] = visitorPage;
    }
    const visitorPage = env.ws;
    const token = await visitorPage.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    const convId = (await srv.api('GET', '/api/visitor/session', { token })).json.conversation.id;

    const ana = await openAgent(env, srv, 'sse', ANA);
    const boPage = await openAgent(env, srv, 'ws', BO);
    for (const a of [ana, boPage]) await selectConv(a, convId);
    assert.ok(await boPage.page.locator('#settings-button').isHidden(), 'an agent has no Settings button');

    // Off: the page says nothing and sends no draft; typing is still told.
    assert.ok(await visitorPage.locator('#typing-preview-notice').isHidden());
    await visitorPage.locator('#message-input').pressSequentially('my secret draft', { delay: 30 });
    await boPage.page.locator('#thread-typing:not([hidden])').waitFor({ timeout: T });
    await visitorPage.waitForTimeout(500);
    assert.ok(visitorPage.sent.length > 0, 'typing was told');
    assert.ok(visitorPage.sent.every((a) => !('text' in a)), 'no draft left the page: ' + JSON.stringify(visitorPage.sent));
    // A draft sent anyway is dropped by the server.
    assert.equal((await srv.api('POST', '/api/visitor/typing', { token, body: { typing: true, text: 'forced draft' } })).status, 200);
    await boPage.page.waitForTimeout(500);
    assert.ok(await boPage.page.locator('#typing-preview').isHidden());
    assert.equal(await boPage.page.locator('#typing-preview-text').textContent(), '');
    await visitorPage.fill('#message-input', '');

    // Ana turns it on in Settings: every visitor's page says so at once.
    await ana.page.getByRole('button', { name: 'Settings', exact: true }).click();
    await ana.page.waitForSelector('#settings-dialog[open]', { timeout: T });
    const box = ana.page.getByLabel('Show agents what visitors type before they send it');
    assert.equal(await box.isChecked(), false);
    await box.check();
    await ana.page.getByText('Typing preview is on.').waitFor({ timeout: T });
    await screenshot(ana.page, 'settings-dialog');
    await ana.page.keyboard.press('Escape');
    for (const page of [env.ws, env.sse]) {
      await page.locator('#typing-preview-notice:not([hidden])').waitFor({ timeout: T });
      assert.equal(await page.locator('#typing-preview-notice').textContent(), 'Agents can see what you type before you send it.');
    }
    await screenshot(visitorPage, 'typing-preview-visitor');

    // The drafts show live in both consoles, at most every 300 ms, the latest text.
    const before = visitorPage.sent.length;
    await visitorPage.locator('#message-input').pressSequentially('Where is my order', { delay: 40 });
    for (const a of [ana, boPage]) {
      await a.page.waitForFunction(() => document.querySelector('#typing-preview-text')?.textContent === 'Where is my order', null, { timeout: T });
      assert.ok(await a.page.locator('#typing-preview').isVisible());
      assert.match(await a.page.locator('#typing-preview').textContent(), /^Visitor is typing: Where is my order$/);
    }
    const drafts = visitorPage.sent.slice(before).filter((a) => 'text' in a);
    assert.ok(drafts.length >= 1 && drafts.length <= 6, `throttled: ${drafts.length} drafts for 17 keys`);
    await screenshot(ana.page, 'typing-preview-agent');
    // The SSE visitor's drafts go over HTTP.
    await env.sse.locator('#message-input').pressSequentially('hello', { delay: 30 });
    await env.sse.waitForTimeout(600);
    assert.ok(env.sse.sent.some((a) => a.text === 'hello'), 'the draft over HTTP');
    // Sent: the preview goes.
    await visitorPage.keyboard.press('Enter');
    await waitMsg(boPage.page, '#thread', 'Where is my order', 'visitor');
    await boPage.page.locator('#typing-preview').waitFor({ state: 'hidden', timeout: T });

    // Off again, live: the notice goes, and the page stops sending drafts.
    await ana.page.getByRole('button', { name: 'Settings', exact: true }).click();
    await box.uncheck();
    await ana.page.getByText('Typing preview is off.').waitFor({ timeout: T });
    await visitorPage.locator('#typing-preview-notice').waitFor({ state: 'hidden', timeout: T });
    const afterOff = visitorPage.sent.length;
    await visitorPage.locator('#message-input').pressSequentially('nothing shown', { delay: 30 });
    await visitorPage.waitForTimeout(600);
    assert.ok(visitorPage.sent.slice(afterOff).every((a) => !('text' in a)), 'no draft after it was turned off');
    assert.ok(await boPage.page.locator('#typing-preview').isHidden());
    assertNoPageProblems(ana, boPage);

    // The setting is stored: a restart keeps it.
    const admin = await agentLogin(srv, ANA.email, ANA.password);
    assert.equal((await srv.api('PATCH', '/api/settings', { cookie: admin.cookie, csrf: admin.csrf, body: { typing_preview: true } })).status, 200);
    await srv.restart();
    const again = await agentLogin(srv, BO.email, BO.password);
    assert.deepEqual((await srv.api('GET', '/api/settings', { cookie: again.cookie })).json.settings.typing_preview, true);
  }));
