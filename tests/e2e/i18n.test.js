'use strict';
// i18n.test.js: the visitor page in Simplified Chinese (issue 14, "Languages"; docs/UI-CONTRACT.md,
// "Languages"). A browser whose language is zh-CN gets the page in Chinese from the first paint:
// title, placeholder, the send button's name, the connection state, the "Your details" form and
// its error, a message waiting for the network and one the server refused (the page's words for
// the server's error code, not the server's English), the agent's typing, the reply, "Seen", the
// resolved notice. Ana answers from the console in an English browser (the console in Chinese:
// tests/e2e/i18n_console.test.js). The visitor switches to English in the page's own switcher:
// every text changes at once, and the choice outlives a reload. A browser that prefers Chinese of
// Taiwan, or English, gets English.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { scenario, closeBrowser, browser, eventually } = require('./harness');
const { openAgent, selectConv, waitMsg, pageUrl, waitConnected, assertNoPageProblems, agentSay, visitorToken, conversationOf, T } = require('./pages');

after(closeBrowser);

// The tables themselves, so that the test says which text it expects by key.
function table(code, file) {
  const tables = {};
  vm.runInNewContext(fs.readFileSync(path.join(__dirname, '..', '..', 'web', file), 'utf8'),
    { window: { KefuI18n: { add: (c, t) => { tables[c] = t; } } } });
  return tables[code];
}
const ZH = table('zh-CN', 'i18n_zh-CN.js');
const EN = table('en', 'i18n_en.js');
const fill = (text, params) => text.replace(/\{(\w+)\}/g, (m, k) => String(params[k]));

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

async function visitorIn(env, srv, locale, transport, viewport = { width: 390, height: 844 }) {
  const b = await browser();
  const ctx = await b.newContext({ locale, viewport });
  env.contexts.push(ctx);
  const page = await ctx.newPage();
  page.kefuProblems = [];
  page.on('pageerror', (e) => page.kefuProblems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (execute|load|apply)/i.test(m.text())) page.kefuProblems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    page.kefuProblems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto(pageUrl(srv, '/chat', transport));
  return { page, ctx, label: `visitor ${locale}` };
}

const text = (page, selector) => page.$eval(selector, (el) => el.textContent.trim());
const attr = (page, selector, name) => page.$eval(selector, (el, name) => el.getAttribute(name), name);

async function waitText(page, selector, expected, timeout = T) {
  try {
    await page.waitForFunction(({ selector, expected }) => {
      const el = document.querySelector(selector);
      return !!el && !el.closest('[hidden]') && el.textContent.trim() === expected;
    }, { selector, expected }, { timeout, polling: 100 });
  } catch (e) {
    const got = await text(page, selector).catch(() => '(none)');
    throw new Error(`${selector}: not ${JSON.stringify(expected)} within ${timeout} ms (shows ${JSON.stringify(got)})`);
  }
}

// Every text the visitor can see (and the labels a screen reader reads) outside their messages.
function pageTexts(page) {
  return page.evaluate(() => {
    const out = [document.title];
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) {
        const s = node.textContent.trim();
        if (s && !node.parentElement.closest('.msg-body, [hidden], option:not(:checked)')) out.push(s);
        return;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) return;
      for (const a of ['aria-label', 'title', 'placeholder']) if (node.getAttribute(a) && !node.closest('[hidden]')) out.push(node.getAttribute(a));
      for (const c of node.childNodes) walk(c);
    };
    walk(document.body);
    return out;
  });
}

// Words of English a Chinese page must not show (Latin letters are allowed for what is not
// English: the agent's name, the example address, key names, "HTTP").
const ALLOWED_LATIN = /^(Ana|Enter|Shift|HTTP|ana|example|com|English|WebSocket|SSE)$/;
function englishWords(texts) {
  return texts.flatMap((s) => (s.match(/[A-Za-z]{2,}/g) || []).filter((w) => !ALLOWED_LATIN.test(w)).map((w) => `${w} (in ${JSON.stringify(s)})`));
}

test('a visitor reading Chinese has the whole conversation in Chinese, switches to English at once and keeps it after a reload', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // SSE: the visitor's actions go over HTTP, where the test can stand in for a refusing server.
    const v = await visitorIn(env, srv, 'zh-CN', 'sse');
    const page = v.page;
    await waitConnected(page);

    // Chinese from the start, with <html lang> to say so.
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    assert.equal(await page.title(), ZH['chat.pageTitle']);
    assert.equal(await text(page, '#chat-title'), ZH['chat.title']);
    assert.equal(await attr(page, '#message-input', 'placeholder'), ZH['chat.placeholder']);
    assert.equal(await attr(page, '#send-button', 'aria-label'), ZH['chat.send']);
    assert.ok(await page.getByRole('button', { name: ZH['chat.send'] }).isVisible(), 'the send button is found by its Chinese name');
    await waitText(page, '#conn-state .conn-label', ZH['conn.connected']);
    assert.equal(await attr(page, '#conn-state', 'title'), fill(ZH['conn.titleConnectedVia'], { via: ZH['transport.sse'] }));
    assert.equal(await text(page, '.empty-title'), ZH['chat.emptyTitle']);
    // The switcher: labelled, showing the language in use.
    const switcher = page.getByLabel(ZH['chat.language']);
    assert.equal(await switcher.inputValue(), 'zh-CN');
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English on the Chinese page');
    await screenshot(page, 'i18n-zh-empty-phone');

    // "Your details": the form in Chinese, and an e-mail the server refuses said in Chinese.
    await page.getByRole('button', { name: ZH['details.toggle'] }).click();
    await page.getByLabel(ZH['details.name']).fill('王芳');
    await page.getByLabel(ZH['details.email']).fill('not-an-address');
    await page.getByRole('button', { name: ZH['details.save'] }).click();
    await waitText(page, '#details-error', ZH['details.emailInvalid']);
    await screenshot(page, 'i18n-zh-details-phone');
    await page.getByLabel(ZH['details.email']).fill('wang@example.com');
    await page.getByRole('button', { name: ZH['details.save'] }).click();
    await waitText(page, '#details-status', ZH['details.saved']);
    await page.getByRole('button', { name: ZH['details.close'] }).click();

    // The first message, and the agent's answer.
    const first = '你好，我的订单还没到。';
    await page.fill('#message-input', first);
    await page.press('#message-input', 'Enter');
    await waitMsg(page, '#messages', first, 'visitor');
    const token = await visitorToken(v);
    const convId = await conversationOf(srv, token);
    const ana = await openAgent(env, srv, 'sse');
    await selectConv(ana, convId);
    await waitMsg(ana.page, '#thread', first, 'visitor');

    // The agent types: the visitor reads it in Chinese.
    await ana.page.fill('#reply-input', 'Let me check');
    await ana.page.type('#reply-input', '…');
    await waitText(page, '#typing-indicator .typing-label', ZH['chat.typing']);
    await ana.page.fill('#reply-input', '');
    await agentSay(ana, 'Your parcel leaves today.');
    await waitMsg(page, '#messages', 'Your parcel leaves today.', 'agent');
    // The day separator and the time are written the Chinese way (Intl, in zh-CN).
    const today = new Intl.RelativeTimeFormat('zh-CN', { numeric: 'auto' }).format(0, 'day');
    assert.equal(await text(page, '#messages .day-sep'), today);
    const time = await text(page, '#messages .msg[data-sender="agent"] .msg-time');
    assert.match(time, /^(上午|下午|中午|凌晨|晚上)?\d{1,2}:\d{2}$/, `a Chinese time: ${time}`);
    // The agent has the thread open: the visitor's message is seen.
    await waitText(page, '#messages .msg-status', ZH['msg.seen']);

    // No network: the message waits, and says so in Chinese.
    await v.ctx.setOffline(true);
    const offline = '我等一下再试。';
    await page.fill('#message-input', offline);
    await page.press('#message-input', 'Enter');
    await waitText(page, '#messages .msg.pending .msg-sending', ZH['msg.waitingConnection']);
    await v.ctx.setOffline(false);
    await waitMsg(page, '#messages', offline, 'visitor', 20000);

    // The server refuses one (413 with its English message): the page says why in Chinese.
    await page.route('**/api/visitor/messages', (route) => (route.request().method() === 'POST'
      ? route.fulfill({ status: 413, contentType: 'application/json', body: JSON.stringify({ error: { code: 'too_large', message: 'request body too large' } }) })
      : route.continue()));
    const refused = '这条会被拒绝。';
    await page.fill('#message-input', refused);
    await page.press('#message-input', 'Enter');
    await waitText(page, '#messages .msg.pending.failed .msg-failed', ZH['msg.notSent']);
    assert.equal(await text(page, '#messages .msg.pending.failed .msg-failed-why'), ZH['error.too_large']);
    assert.equal(await attr(page, '#messages .msg.pending.failed', 'aria-label'), fill(ZH['msg.notSentWhyLabel'], { why: ZH['error.too_large'] }));
    await page.unroute('**/api/visitor/messages');
    await page.getByRole('button', { name: ZH['msg.retry'] }).click();
    await waitMsg(page, '#messages', refused, 'visitor');

    // Too long for the page: counted and refused in Chinese.
    await page.fill('#message-input', '字'.repeat(4001));
    await waitText(page, '#char-count', fill(ZH['chat.charsOver'].other, { count: 1 }));
    await page.press('#message-input', 'Enter');
    await waitText(page, '#chat-error', fill(ZH['chat.tooLong'], { max: 4000 }));
    await page.fill('#message-input', '');

    // Resolved: the notice in Chinese.
    await ana.page.click('#status-button');
    await waitText(page, '#resolved-notice strong', ZH['chat.resolvedTitle']);
    assert.equal(await text(page, '#resolved-notice [data-i18n="chat.resolvedText"]'), ZH['chat.resolvedText']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English on the Chinese page, the conversation done');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'i18n-zh-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await screenshot(page, 'i18n-zh-desktop');

    // English, chosen in the page: every text at once, without a reload.
    await switcher.selectOption('en');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.equal(await page.title(), EN['chat.pageTitle']);
    assert.equal(await attr(page, '#message-input', 'placeholder'), EN['chat.placeholder']);
    assert.equal(await attr(page, '#send-button', 'aria-label'), EN['chat.send']);
    assert.equal(await text(page, '#conn-state .conn-label'), EN['conn.connected']);
    assert.equal(await text(page, '#resolved-notice strong'), EN['chat.resolvedTitle']);
    assert.equal(await text(page, '#messages .msg-status'), EN['msg.seen']);
    assert.equal(await text(page, '#messages .day-sep'), 'Today');
    assert.equal(await text(page, '.hint-keys'), EN['chat.hintKeys']);
    assert.equal(await page.getByLabel(EN['chat.language']).inputValue(), 'en');
    await screenshot(page, 'i18n-en-desktop');

    // Remembered: after a reload the page is English from the start, in a Chinese browser.
    await page.reload();
    await waitConnected(page);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.equal(await page.title(), EN['chat.pageTitle']);
    await waitText(page, '#conn-state .conn-label', EN['conn.connected']);
    assert.equal(await text(page, '#resolved-notice strong'), EN['chat.resolvedTitle']);
    await waitMsg(page, '#messages', 'Your parcel leaves today.', 'agent');
    // And back to Chinese.
    await page.getByLabel(EN['chat.language']).selectOption('zh-CN');
    assert.equal(await attr(page, '#message-input', 'placeholder'), ZH['chat.placeholder']);
    assert.equal(await text(page, '#resolved-notice strong'), ZH['chat.resolvedTitle']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English once Chinese is chosen again');

    assertNoPageProblems(v, ana);
  }));

test('the language from the browser: Chinese in simplified characters is zh-CN; Taiwan\'s and others are English', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    for (const [locale, lang] of [['zh', 'zh-CN'], ['zh-SG', 'zh-CN'], ['zh-Hans-CN', 'zh-CN'], ['zh-TW', 'en'], ['en-GB', 'en'], ['fr-FR', 'en']]) {
      const v = await visitorIn(env, srv, locale, null, { width: 1280, height: 800 });
      await waitConnected(v.page);
      assert.equal(await v.page.evaluate(() => document.documentElement.lang), lang, locale);
      const table = lang === 'en' ? EN : ZH;
      assert.equal(await attr(v.page, '#message-input', 'placeholder'), table['chat.placeholder'], locale);
      await eventually(async () => (await text(v.page, '#conn-state .conn-label')) === table['conn.connected'], { what: `${locale}: connected label` });
      assertNoPageProblems(v);
      await v.ctx.close();
    }
  }));
