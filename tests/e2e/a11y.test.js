'use strict';
// a11y.test.js: an automated accessibility check with axe-core (issue 14, "Accessibility"): no
// serious or critical violation of WCAG 2.1 A/AA rules on the visitor page (in English and in
// Chinese), the login and the console (a conversation open, with a note, the visitor panel, and
// each dialog) and the connection check (/diag), at desktop and phone sizes. axe is read from node_modules and run in the page; the
// context bypasses the CSP for that script only (the pages' own scripts are unchanged).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { scenario, closeBrowser, browser, newVisitor, visitorSend, agentLogin, agentSend, DEFAULT_AGENTS } = require('./harness');
const { T, visitorSay } = require('./pages');

after(closeBrowser);

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ANA = DEFAULT_AGENTS[0];

// The serious and critical violations on the page as it is now, one line each.
async function violations(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${what}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' [' + ((n.any[0] && n.any[0].message) || '').slice(0, 160) + ']').join(', ')}`);
}

for (const [w, h, size] of [[1280, 800, 'desktop'], [390, 844, 'phone']]) {
  test(`accessibility (${size}): no serious or critical axe violation on the visitor page, the login, the console and its dialogs`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const ana = await agentLogin(srv, ANA.email, ANA.password);
      const v = await newVisitor(srv, 'Mei Chen');
      const m = await visitorSend(srv, v.token, '我的退款什么时候到账？');
      await agentSend(srv, ana, m.conversation_id, 'Let me check that for you.');
      await srv.api('POST', `/api/conversations/${m.conversation_id}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: { body: 'Refund went out Monday', private: true } });
      const b = await browser();
      // Reduced motion: axe measures colours at one instant, and a bubble fading in is pale.
      const ctx = await b.newContext({ viewport: { width: w, height: h }, bypassCSP: true, reducedMotion: 'reduce' });
      t.after(() => ctx.close());
      const found = [];

      const visitor = await ctx.newPage();
      await visitor.goto(`${srv.base}/chat`);
      await visitor.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
      await visitorSay({ page: visitor }, 'Hello, is anyone there?');
      found.push(...await violations(visitor, 'visitor page'));
      // And in Chinese (issue 14: both languages), chosen in the page's own switcher.
      await visitor.selectOption('#lang-select', 'zh-CN');
      await visitor.waitForFunction(() => document.documentElement.lang === 'zh-CN');
      found.push(...await violations(visitor, 'visitor page in Chinese'));

      const page = await ctx.newPage();
      await page.goto(`${srv.base}/agent`);
      await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
      found.push(...await violations(page, 'login'));
      await page.fill('#login-email', ANA.email);
      await page.fill('#login-password', 'not the password');
      await page.click('#login-submit');
      await page.waitForSelector('#login-error', { state: 'visible', timeout: T });
      found.push(...await violations(page, 'login with an error'));
      await page.fill('#login-password', ANA.password);
      await page.click('#login-submit');
      await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
      found.push(...await violations(page, 'console'));
      await page.click(`#conversation-list .conv-item[data-id="${m.conversation_id}"]`);
      await page.waitForSelector('#thread .msg', { timeout: T });
      found.push(...await violations(page, 'console, a conversation open'));
      // On a phone the list (with the team panel's buttons) is behind the open conversation.
      if (await page.isVisible('#back-button')) await page.click('#back-button');
      for (const [button, dialog] of [['#notify-button', '#notify-dialog'], ['#team-settings-button', '#team-dialog'], ['#canned-button', '#canned-dialog'], ['#teams-button', '#teams-dialog'], ['#settings-button', '#settings-dialog'], ['#reports-button', '#reports-dialog'], ['#visitors-button', '#visitors-dialog']]) {
        await page.click(button);
        await page.waitForSelector(`${dialog}[open]`, { timeout: T });
        found.push(...await violations(page, `console, ${dialog}`));
        await page.keyboard.press('Escape');
        await page.waitForSelector(`${dialog}:not([open])`, { state: 'attached', timeout: T });
      }
      // The connection check, once its checks have run.
      const diag = await ctx.newPage();
      await diag.goto(`${srv.base}/diag`);
      await diag.waitForSelector('#diag-run:not([disabled])', { timeout: 60000 });
      found.push(...await violations(diag, 'connection check'));
      assert.deepEqual(found, [], found.join('\n'));
    }),
  );
}
