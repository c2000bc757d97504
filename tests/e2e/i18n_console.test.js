'use strict';
// i18n_console.test.js: the agent console in Simplified Chinese (issue 14, "Languages";
// docs/UI-CONTRACT.md, "Languages"). A visitor and an agent, both with browsers in zh-CN, hold a
// whole conversation: the visitor writes; the agent's login card is Chinese (title, labels, button,
// the language switcher) and so is the console (view tabs, the list's entry with its waiting time,
// the composer's label, placeholder and buttons, Claim, Resolve, the status); the agent claims,
// replies, resolves, and the visitor reads the reply and the resolved notice in Chinese. A wrong
// password is said in the console's words; a search, the transfer dialog, the shortcuts' help and
// the canned replies (with a refusal said by its error code) are Chinese too, and axe finds no
// serious violation in the Chinese login or console. The agent then switches the console to
// English in its switcher: every text changes at once, and the choice outlives a reload.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { scenario, closeBrowser, browser } = require('./harness');
const { ANA, waitMsg, pageUrl, waitConnected, assertNoPageProblems, visitorToken, conversationOf, T } = require('./pages');

after(closeBrowser);

function table(code, file) {
  const tables = {};
  vm.runInNewContext(fs.readFileSync(path.join(__dirname, '..', '..', 'web', file), 'utf8'),
    { window: { KefuI18n: { add: (c, t) => { tables[c] = t; } } } });
  return tables[code];
}
const ZH = table('zh-CN', 'i18n_zh-CN.js');
const EN = table('en', 'i18n_en.js');
const fill = (text, params) => text.replace(/\{(\w+)\}/g, (m, k) => String(params[k]));

async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

async function pageIn(env, locale, viewport, label) {
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
  return { page, ctx, label };
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

// What a person sees (and a screen reader reads) outside the messages: text, labels, titles and
// placeholders of everything shown. Closed dialogs are not shown; what the visitor's browser
// reported (its page's address, user agent, language tag, time zone) is data, not words.
const DATA = '#visitor-page, #visitor-referrer, #visitor-browser, #visitor-language, #visitor-local-time, #visitor-pages';
function pageTexts(page) {
  return page.evaluate((data) => {
    const out = [document.title];
    const skip = (node) => !!node.closest(`.msg-body, .conv-preview, .search-hit-snippet, [hidden], dialog:not([open]), option:not(:checked), ${data}`);
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) {
        const s = node.textContent.trim();
        if (s && !skip(node.parentElement)) out.push(s);
        return;
      }
      if (node.nodeType !== Node.ELEMENT_NODE || skip(node)) return;
      if (getComputedStyle(node).display === 'none') return;
      for (const a of ['aria-label', 'title', 'placeholder']) if (node.getAttribute(a)) out.push(node.getAttribute(a));
      for (const c of node.childNodes) walk(c);
    };
    walk(document.body);
    return out;
  }, DATA);
}

// Latin words a Chinese console may show: the agents' names, the product, key names, "SSE", and
// the pinyin of the example shortcut (tuikuan, 退款).
const ALLOWED_LATIN = /^(Ana|Bo|kefu|Enter|Esc|English|SSE|tuikuan)$/;
// Nor are the canned replies' placeholders ({visitor.name}) and shortcuts (/dizhi) words to translate.
function englishWords(texts) {
  return texts.flatMap((s) => (s.replace(/\{[\w.]+\}|\/\w+/g, '').match(/[A-Za-z]{2,}/g) || []).filter((w) => !ALLOWED_LATIN.test(w)).map((w) => `${w} (in ${JSON.stringify(s)})`));
}

// The serious and critical axe violations on the page as it is now (as tests/e2e/a11y.test.js
// checks the English console): the Chinese one must pass the same check.
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
async function violations(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${what}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

const VIEWS = ['unassigned', 'mine', 'open', 'pending', 'resolved', 'snoozed', 'all'];
const tabTexts = (page) => page.$$eval('#view-tabs .view-tab [data-i18n]', (els) => els.map((e) => e.textContent));

test('an agent reading Chinese answers a Chinese visitor in a Chinese console, switches it to English at once and keeps it after a reload', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await pageIn(env, 'zh-CN', { width: 390, height: 844 }, 'visitor zh-CN');
    await v.page.goto(pageUrl(srv, '/chat', 'sse'));
    await waitConnected(v.page);
    const first = '你好，我想改一下收货地址。';
    await v.page.fill('#message-input', first);
    await v.page.press('#message-input', 'Enter');
    await waitMsg(v.page, '#messages', first, 'visitor');
    const convId = await conversationOf(srv, await visitorToken(v));

    // The login card, in Chinese from the first paint.
    const a = await pageIn(env, 'zh-CN', { width: 1280, height: 800 }, 'agent zh-CN');
    const page = a.page;
    await page.goto(pageUrl(srv, '/agent', 'sse'));
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    assert.equal(await text(page, '#login-form h1'), ZH['login.title']);
    assert.equal(await text(page, '.login-lead'), ZH['login.lead']);
    assert.equal(await page.getByRole('button', { name: ZH['login.submit'] }).count(), 1);
    assert.equal(await page.locator('#login-lang-select').inputValue(), 'zh-CN');
    assert.equal(await page.getByRole('combobox', { name: ZH['console.language'] }).count(), 1, 'the shown switcher is labelled');
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English on the Chinese login card');
    assert.deepEqual(await violations(page, 'login zh-CN'), []);
    await screenshot(page, 'console-zh-login-desktop');
    // The card's switcher: English at once, and back.
    await page.locator('#login-lang-select').selectOption('en');
    assert.equal(await text(page, '#login-form h1'), EN['login.title']);
    assert.equal(await page.locator('#login-form').getByLabel(EN['login.password']).count(), 1);
    await page.locator('#login-lang-select').selectOption('zh-CN');
    assert.equal(await text(page, '#login-form h1'), ZH['login.title']);
    assert.equal(await text(page, '#login-submit'), ZH['login.submit']);

    // A wrong password: the console's own words for it, in Chinese.
    await page.locator('#login-form').getByLabel(ZH['login.email']).fill(ANA.email);
    await page.locator('#login-form').getByLabel(ZH['login.password']).fill('not the password');
    await page.getByRole('button', { name: ZH['login.submit'] }).click();
    await waitText(page, '#login-error', ZH['login.wrong']);
    await page.locator('#login-form').getByLabel(ZH['login.password']).fill(ANA.password);
    await page.getByRole('button', { name: ZH['login.submit'] }).click();
    await waitConnected(page);
    await waitText(page, '#conn-state .conn-label', ZH['conn.connected']);

    // The console: the view tabs, the list's entry (its name, time, waiting time), the empty thread.
    assert.deepEqual(await tabTexts(page), VIEWS.map((view) => ZH[`list.view.${view}`]));
    assert.equal(await page.getByRole('button', { name: new RegExp(`^${ZH['list.view.unassigned']}`) }).count(), 1);
    const item = `#conversation-list .conv-item[data-id="${convId}"]`;
    await page.waitForSelector(item, { timeout: T });
    assert.match(await text(page, `${item} .conv-name`), new RegExp(`^${ZH['visitor.anonymous']} #\\d+$`));
    assert.equal(await text(page, `${item} .conv-time`), ZH['time.now']);
    assert.equal(await text(page, `${item} .conv-wait`), fill(ZH['list.waiting'], { time: ZH['list.waitUnderMinute'] }));
    assert.equal(await attr(page, '#reply-input', 'placeholder'), ZH['composer.select']);
    await waitText(page, '#thread-empty-title', ZH['thread.pick']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English in the Chinese console');
    // The team filters' title is drawn by CSS from the nav's (translated) name.
    assert.equal(await page.$eval('#team-filters', (el) => getComputedStyle(el, '::before').content), JSON.stringify(ZH['list.teams']));

    // The conversation: its header, the desk bar, the composer.
    await page.click(item);
    await waitMsg(page, '#thread', first, 'visitor');
    assert.equal(await text(page, '#assignee-label'), ZH['thread.unassigned']);
    assert.equal(await text(page, '#status-button'), ZH['thread.resolve']);
    assert.equal(await page.locator('#status-select').inputValue(), 'open');
    assert.equal(await text(page, '#status-select option:checked'), ZH['console.status.open']);
    assert.equal(await text(page, '#thread .day-sep'), new Intl.RelativeTimeFormat('zh-CN', { numeric: 'auto' }).format(0, 'day'));
    assert.match(await text(page, '#thread .msg .msg-time'), /^(上午|下午|中午|凌晨|晚上)?\d{1,2}:\d{2}$/);
    assert.equal(await attr(page, '#reply-input', 'placeholder'), ZH['composer.placeholder']);
    assert.equal(await page.getByLabel(ZH['composer.reply'], { exact: true }).count(), 1, 'the reply box by its Chinese label');
    assert.equal(await page.getByRole('button', { name: ZH['composer.send'] }).count(), 1);
    assert.equal(await page.getByRole('button', { name: ZH['composer.note'], exact: true }).count(), 1);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English in the open conversation');
    await screenshot(page, 'console-zh-desktop');

    // Claim, reply: the visitor reads the answer.
    await page.getByRole('button', { name: ZH['thread.claim'], exact: true }).click();
    await waitText(page, '#assignee-label', ZH['thread.assignedToYou']);
    await waitText(page, `${item} .conv-assignee`, ZH['list.you']);
    const reply = '好的，请把新地址发给我。';
    await page.getByLabel(ZH['composer.reply'], { exact: true }).fill(reply);
    await page.getByRole('button', { name: ZH['composer.send'] }).click();
    await waitMsg(page, '#thread', reply, 'agent');
    await waitMsg(v.page, '#messages', reply, 'agent');
    await waitText(page, `${item} .conv-preview-who`, fill(ZH['list.previewWho'], { name: ZH['list.you'] }));

    // Resolve: the button, the status, the placeholder follow; the visitor is told in Chinese.
    await page.getByRole('button', { name: ZH['thread.resolve'], exact: true }).click();
    await waitText(page, '#status-button', ZH['thread.reopen']);
    assert.equal(await text(page, '#status-select option:checked'), ZH['console.status.resolved']);
    assert.equal(await attr(page, '#reply-input', 'placeholder'), ZH['composer.placeholderResolved']);
    await waitText(page, `${item} .conv-tag`, ZH['console.status.resolved']);
    await waitText(v.page, '#resolved-notice strong', ZH['chat.resolvedTitle']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English once resolved');
    await page.emulateMedia({ reducedMotion: 'reduce' }); // axe reads colours at one instant
    assert.deepEqual(await violations(page, 'console zh-CN'), []);
    await screenshot(page, 'console-zh-resolved-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'console-zh-thread-phone');
    await page.click('#back-button');
    await screenshot(page, 'console-zh-list-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click(item);
    await waitText(page, '#status-button', ZH['thread.reopen']);

    // A search, and the transfer dialog (cancelled), in Chinese.
    await page.getByRole('searchbox', { name: ZH['search.label'] }).fill('收');
    await waitText(page, '#search-status', fill(ZH['search.tooShort'], { min: 2 }));
    await page.getByRole('searchbox', { name: ZH['search.label'] }).fill('收货地址');
    await waitText(page, '#search-status', fill(ZH['search.count'].other, { count: 1 }));
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English in the search results');
    await page.getByRole('searchbox', { name: ZH['search.label'] }).press('Escape');
    const bo = await page.$eval('#assign-select', (s) => [...s.options].find((o) => o.textContent.startsWith('Bo')).value);
    assert.equal(await text(page, '#assign-select option:checked'), ZH['thread.transferToPick']);
    await page.selectOption('#assign-select', bo);
    const transfer = page.locator('#transfer-dialog');
    await transfer.waitFor({ state: 'visible', timeout: T });
    assert.equal(await text(page, '#transfer-title'), `${ZH['notes.transferTitle']} Bo`);
    assert.equal(await transfer.getByLabel(ZH['notes.transferNote']).getAttribute('placeholder'), ZH['notes.transferPlaceholder']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English in the transfer dialog');
    await transfer.getByRole('button', { name: ZH['console.cancel'] }).click();

    // The shortcuts' help and the canned replies, in Chinese; a refusal said by its error code.
    await page.getByRole('button', { name: ZH['console.shortcuts'] }).click();
    const help = page.locator('#shortcuts-dialog');
    await help.waitFor({ state: 'visible', timeout: T });
    assert.equal(await help.locator('.shortcuts-list dd').first().textContent(), ZH['shortcuts.next']);
    assert.equal(await help.locator('h2').textContent(), ZH['shortcuts.title']);
    await screenshot(page, 'console-zh-shortcuts-desktop');
    await help.getByRole('button', { name: ZH['console.close'] }).click();
    await page.getByRole('button', { name: ZH['team.cannedButton'] }).click();
    const canned = page.locator('#canned-dialog');
    await canned.waitFor({ state: 'visible', timeout: T });
    await canned.getByLabel(ZH['canned.shortcut']).fill('dizhi');
    await canned.getByLabel(ZH['canned.body'], { exact: true }).fill('请告诉我您的新地址。');
    await canned.getByRole('button', { name: ZH['canned.add'] }).click();
    await waitText(page, '#canned-status', fill(ZH['canned.added'], { shortcut: 'dizhi' }));
    assert.equal(await canned.getByRole('button', { name: fill(ZH['canned.editLabel'], { shortcut: 'dizhi' }) }).count(), 1);
    assert.equal(await text(page, '#canned-rows .canned-row-scope'), ZH['canned.tagPersonal']);
    await canned.getByLabel(ZH['canned.shortcut']).fill('dizhi');
    await canned.getByLabel(ZH['canned.body'], { exact: true }).fill('又一个');
    await canned.getByRole('button', { name: ZH['canned.add'] }).click();
    await waitText(page, '#canned-error', fill(ZH['action.failed'], { what: ZH['canned.whatAdd'], reason: ZH['canned.taken'] }));
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English in the canned replies');
    await screenshot(page, 'console-zh-canned-desktop');
    await canned.getByRole('button', { name: ZH['console.close'] }).click();
    await page.getByRole('button', { name: ZH['team.settingsButton'] }).click();
    const settings = page.locator('#team-dialog');
    await settings.waitFor({ state: 'visible', timeout: T });
    assert.equal(await settings.locator('h2').textContent(), ZH['team.settingsTitle']);
    assert.equal(await settings.getByLabel(ZH['team.yourName']).count(), 1);
    assert.equal(await settings.getByRole('button', { name: ZH['team.changePassword'] }).count(), 1);
    await screenshot(page, 'console-zh-team-settings-desktop');
    await settings.getByRole('button', { name: ZH['console.close'] }).click();

    // English, chosen in the list's head: every text at once, without a reload.
    const switcher = page.getByRole('combobox', { name: ZH['console.language'] });
    assert.equal(await switcher.inputValue(), 'zh-CN');
    await switcher.selectOption('en');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.deepEqual(await tabTexts(page), VIEWS.map((view) => EN[`list.view.${view}`]));
    assert.equal(await text(page, '#conn-state .conn-label'), EN['conn.connected']);
    assert.equal(await text(page, '#status-button'), EN['thread.reopen']);
    assert.equal(await text(page, '#assignee-label'), EN['thread.assignedToYou']);
    assert.equal(await text(page, '#status-select option:checked'), EN['console.status.resolved']);
    assert.equal(await attr(page, '#reply-input', 'placeholder'), EN['composer.placeholderResolved']);
    assert.equal(await attr(page, '#reply-send', 'aria-label'), EN['composer.send']);
    assert.equal(await text(page, '#thread .day-sep'), 'Today');
    assert.match(await text(page, `${item} .conv-name`), /^Visitor #\d+$/);
    assert.equal(await text(page, `${item} .conv-tag`), EN['console.status.resolved']);
    assert.equal(await text(page, `${item} .conv-assignee`), EN['list.you']);
    assert.equal(await text(page, '.brand-sub'), EN['console.brandSub']);
    assert.equal(await page.getByRole('button', { name: EN['console.logout'] }).count(), 1);

    // Remembered: after a reload the console is English from the start, in a Chinese browser.
    await page.reload();
    await waitConnected(page);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.deepEqual(await tabTexts(page), VIEWS.map((view) => EN[`list.view.${view}`]));
    await waitText(page, '#conn-state .conn-label', EN['conn.connected']);
    assert.equal(await page.getByRole('combobox', { name: EN['console.language'] }).inputValue(), 'en');
    await screenshot(page, 'console-en-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'console-en-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    // And back to Chinese, at once.
    await page.getByRole('combobox', { name: EN['console.language'] }).selectOption('zh-CN');
    assert.deepEqual(await tabTexts(page), VIEWS.map((view) => ZH[`list.view.${view}`]));
    assert.equal(await text(page, '#conn-state .conn-label'), ZH['conn.connected']);
    assert.deepEqual(englishWords(await pageTexts(page)), [], 'no English once Chinese is chosen again');

    assertNoPageProblems(v, a);
  }));
