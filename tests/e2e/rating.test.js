'use strict';
// rating.test.js: a visitor rates a resolved conversation (issue 15; docs/API.md, "Ratings";
// docs/UI-CONTRACT.md, "Ratings"). Vera chats, Ana resolves from her console, Vera's page asks
// "How did we do?", she rates Bad with a comment; Ana (SSE) and Bo (long polling) see the 👎 in
// the list and Ana the comment in the thread without a reload; Vera changes it to Good and both
// follow; the Reports dialog counts one good rating, 100 %; Vera writes again and the question
// goes while Ana still sees the last rating; consoles on the other three transports (WebSocket,
// forever iframe, short polling) see it too. The widget on another site's page asks as well. A
// zh-CN visitor is asked in Chinese. Through the API: 409 before the resolution, 422 for a bad rating or too long a comment, 401 for an agent.
// Screenshots at 1280×800 and 390×844 go to $KEFU_SHOTS (default: a temporary directory).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { scenario, closeBrowser, browser, newVisitor, visitorSend, agentLogin, assertError, DEFAULT_AGENTS } = require('./harness');
const http = require('node:http');
const { openVisitor, openAgent, selectConv, visitorSay, visitorToken, conversationOf, waitMsg, waitConnected, pageUrl, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;
const SHOTS = process.env.KEFU_SHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-rating-'));

// The list item's rating badge: its accessible name, or null while it is hidden.
function listBadge(page, id) {
  return page.$eval(`#conversation-list .conv-item[data-id="${id}"] .conv-rating`, (b) => (b.hidden ? null : `${b.getAttribute('aria-label')} ${b.textContent}`)).catch(() => undefined);
}

async function waitListBadge(page, id, want) {
  await page.waitForFunction(([id, want]) => {
    const b = document.querySelector(`#conversation-list .conv-item[data-id="${id}"] .conv-rating`);
    return b && (want === null ? b.hidden : !b.hidden && `${b.getAttribute('aria-label')} ${b.textContent}` === want);
  }, [id, want], { timeout: T }).catch(async (e) => {
    throw new Error(`list badge of ${id}: want ${want}, have ${await listBadge(page, id)} (${e.message})`);
  });
}

test('a visitor rates a resolved conversation, changes it; every console follows live; reports count it', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, 'ws', 'visitor Vera');
    await v.page.setViewportSize({ width: 1280, height: 800 });
    await visitorSay(v, 'My parcel never came');
    const token = await visitorToken(v);
    const conv = await conversationOf(srv, token);
    const rating = v.page.locator('#rating');
    assert.ok(await rating.isHidden(), 'nothing to rate while it is open');

    const A = await openAgent(env, srv, 'sse', ANA);
    await A.page.setViewportSize({ width: 1280, height: 800 });
    const B = await openAgent(env, srv, 'longpoll', BO);
    // Ana's console on the other transports: every one carries the rating live.
    const others = [];
    for (const transport of ['ws', 'iframe', 'poll']) others.push(await openAgent(env, srv, transport, ANA));
    await selectConv(A, conv);
    await A.page.fill('#reply-input', 'A new one is on its way.');
    await A.page.press('#reply-input', 'Enter');
    await waitMsg(v.page, '#messages', 'A new one is on its way.', 'agent');
    await A.page.getByRole('button', { name: 'Resolve', exact: true }).click();

    // The visitor is asked; a choice opens the comment box.
    await rating.waitFor({ state: 'visible', timeout: T });
    assert.equal(await v.page.locator('#rating-title').textContent(), 'How did we do?');
    const good = v.page.getByRole('button', { name: 'Good', exact: true });
    const bad = v.page.getByRole('button', { name: 'Bad', exact: true });
    assert.equal(await good.getAttribute('aria-pressed'), 'false');
    await bad.click();
    assert.equal(await bad.getAttribute('aria-pressed'), 'true');
    const comment = v.page.getByLabel('Anything you would like to add? (optional)');
    await comment.fill('It took <b>a week</b> to hear back.');
    await v.page.screenshot({ path: path.join(SHOTS, 'rating-visitor-desktop-choosing.png') });
    await v.page.getByRole('button', { name: 'Send feedback' }).click();
    await v.page.locator('#rating-thanks', { hasText: 'Thanks for your feedback: you rated this conversation Bad.' }).waitFor({ timeout: T });
    assert.ok(await v.page.locator('#rating-form').isHidden(), 'the form goes once it is sent');
    assert.equal(await bad.getAttribute('aria-pressed'), 'true', 'the choice stays shown');

    // Both consoles: the badge in the list; Ana's open thread: the rating and its comment.
    await waitListBadge(A.page, conv, 'Rated bad by the visitor 👎');
    await waitListBadge(B.page, conv, 'Rated bad by the visitor 👎');
    const header = A.page.locator('#thread-rating');
    await header.waitFor({ state: 'visible', timeout: T });
    assert.equal(await A.page.locator('#thread-rating-badge').textContent(), '👎 Bad');
    // The visitor's text as text: no markup of theirs becomes an element.
    assert.equal(await A.page.locator('#thread-rating-comment').textContent(), '\u201cIt took <b>a week</b> to hear back.\u201d');
    assert.equal(await A.page.locator('#thread-rating-comment b').count(), 0);
    await A.page.screenshot({ path: path.join(SHOTS, 'rating-agent-desktop.png') });

    // Changed to Good, without a comment: the consoles follow.
    await good.click();
    await comment.fill('');
    await v.page.getByRole('button', { name: 'Send again' }).click();
    await v.page.locator('#rating-thanks', { hasText: 'you rated this conversation Good' }).waitFor({ timeout: T });
    await v.page.screenshot({ path: path.join(SHOTS, 'rating-visitor-desktop-thanks.png') });
    await waitListBadge(A.page, conv, 'Rated good by the visitor 👍');
    await waitListBadge(B.page, conv, 'Rated good by the visitor 👍');
    for (const o of others) await waitListBadge(o.page, conv, 'Rated good by the visitor 👍');
    await A.page.locator('#thread-rating-badge', { hasText: '👍 Good' }).waitFor({ timeout: T });
    assert.equal(await A.page.locator('#thread-rating-comment').textContent(), 'No comment');

    // Reports: one rating, good.
    await A.page.getByRole('button', { name: 'Reports' }).click();
    await A.page.waitForSelector('#reports-dialog[open]', { timeout: T });
    const satisfaction = A.page.locator('#reports-cards .report-card', { has: A.page.locator('.rc-label', { hasText: /^Satisfaction$/ }) });
    await satisfaction.locator('.rc-value', { hasText: '100%' }).waitFor({ timeout: T });
    assert.equal(await satisfaction.locator('.rc-sub').textContent(), '1 good, 0 bad');
    assert.equal(await A.page.locator('#reports-table tfoot td').last().textContent(), '100% (1 good, 0 bad)');
    await A.page.keyboard.press('Escape');

    // The phone: the thanks and the choice, in one column.
    await v.page.setViewportSize({ width: 390, height: 844 });
    await v.page.screenshot({ path: path.join(SHOTS, 'rating-visitor-phone.png') });

    // Vera writes again: the question goes (the conversation is open), Ana still sees how the
    // last resolution went.
    await visitorSay(v, 'One more thing');
    await rating.waitFor({ state: 'hidden', timeout: T });
    await waitMsg(A.page, '#thread', 'One more thing', 'visitor');
    assert.equal(await A.page.locator('#thread-rating-badge').textContent(), '👍 Good');
    const r = await srv.api('POST', '/api/visitor/rating', { token, body: { rating: 'bad' } });
    assertError(r, 409, 'conflict', 'a reopened conversation');
    assertNoPageProblems(v, A, B, ...others);
  }),
);

test('the widget on another site asks too: a rating from the framed chat reaches the agents', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    // A customer's page on another origin (localhost, while kefu is 127.0.0.1), with the one tag.
    const site = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body><p>Shop</p><script src="${srv.base}/widget.js" async></script></body></html>`);
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    env.defer(() => new Promise((resolve) => site.close(resolve)));
    const ctx = await env.context('host');
    const p = await ctx.newPage();
    await p.setViewportSize({ width: 390, height: 844 });
    await p.goto(`http://localhost:${site.address().port}/`);
    await p.getByRole('button', { name: 'Open chat' }).click();
    const frame = await (await p.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T })).contentFrame();
    await waitConnected(frame);
    await frame.fill('#message-input', 'Is the blue one in stock?');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'Is the blue one in stock?', 'visitor');
    const list = await srv.api('GET', '/api/conversations', { cookie: ana.cookie });
    const conv = list.json.conversations[0].id;
    const r = await srv.api('POST', `/api/conversations/${conv}/status`, { cookie: ana.cookie, csrf: ana.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    await frame.locator('#rating').waitFor({ state: 'visible', timeout: T });
    await frame.getByRole('button', { name: 'Good', exact: true }).click();
    await frame.getByLabel('Anything you would like to add? (optional)').fill('Fast answer');
    await frame.getByRole('button', { name: 'Send feedback' }).click();
    await frame.locator('#rating-thanks', { hasText: 'you rated this conversation Good' }).waitFor({ timeout: T });
    await p.screenshot({ path: path.join(SHOTS, 'rating-widget-phone.png') });
    const got = await srv.api('GET', `/api/conversations/${conv}`, { cookie: ana.cookie });
    assert.equal(got.json.conversation.rating.rating, 'good');
    assert.equal(got.json.conversation.rating.comment, 'Fast answer');
  }),
);

test('ratings through the API: 409 before the resolution, 422 for bad input, 401 for an agent, the conversation carries it', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const fresh = await newVisitor(srv, 'Nobody yet');
    assertError(await srv.api('POST', '/api/visitor/rating', { token: fresh.token, body: { rating: 'good' } }), 409, 'conflict', 'no conversation');
    const v = await newVisitor(srv, 'Wu');
    const m = await visitorSend(srv, v.token, 'Hi');
    assertError(await srv.api('POST', '/api/visitor/rating', { token: v.token, body: { rating: 'good' } }), 409, 'conflict', 'an open conversation');
    let r = await srv.api('POST', `/api/conversations/${m.conversation_id}/status`, { cookie: ana.cookie, csrf: ana.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    for (const body of [{}, { rating: 'excellent' }, { rating: 5 }, { rating: 'good', comment: 7 }, { rating: 'bad', comment: 'x'.repeat(1001) }]) {
      assertError(await srv.api('POST', '/api/visitor/rating', { token: v.token, body }), 422, 'invalid', JSON.stringify(body).slice(0, 60));
    }
    assertError(await srv.api('POST', '/api/visitor/rating', { cookie: ana.cookie, csrf: ana.csrf, body: { rating: 'good' } }), 401, 'unauthorized', 'an agent');
    r = await srv.api('GET', `/api/conversations/${m.conversation_id}`, { cookie: ana.cookie });
    assert.equal(r.json.conversation.rating, null, 'nothing stored by the refused ones');

    r = await srv.api('POST', '/api/visitor/rating', { token: v.token, body: { rating: 'good', comment: ' Quick, thanks! ' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversation.rating.rating, 'good');
    assert.equal(r.json.conversation.rating.comment, 'Quick, thanks!');
    r = await srv.api('GET', `/api/conversations/${m.conversation_id}`, { cookie: ana.cookie });
    assert.deepEqual(Object.keys(r.json.conversation.rating).sort(), ['comment', 'rated_at', 'rating']);
    assert.equal(r.json.conversation.rating.comment, 'Quick, thanks!');
    const now = Date.now();
    r = await srv.api('GET', `/api/reports?from=${now - 86400000}&to=${now + 86400000}`, { cookie: ana.cookie });
    assert.deepEqual(r.json.totals.satisfaction, { good: 1, bad: 0, share_good: 1 });
  }),
);

test('a zh-CN visitor is asked in Chinese', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const b = await browser();
    const ctx = await b.newContext({ locale: 'zh-CN', viewport: { width: 390, height: 844 } });
    env.contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(pageUrl(srv, '/chat', 'sse'));
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    await page.fill('#message-input', '你好');
    await page.press('#message-input', 'Enter');
    await waitMsg(page, '#messages', '你好', 'visitor');
    const token = await page.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    const conv = await conversationOf(srv, token);
    const r = await srv.api('POST', `/api/conversations/${conv}/status`, { cookie: ana.cookie, csrf: ana.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    await page.locator('#rating').waitFor({ state: 'visible', timeout: T });
    assert.equal(await page.locator('#rating-title').textContent(), '我们的服务怎么样？');
    await page.getByRole('button', { name: '不满意' }).click();
    await page.getByLabel('还有什么想告诉我们的吗？（可选）').fill('等太久了');
    await page.getByRole('button', { name: '提交评价' }).click();
    await page.locator('#rating-thanks', { hasText: '感谢您的评价' }).waitFor({ timeout: T });
    assert.match(await page.locator('#rating-thanks').textContent(), /不满意/);
    await page.screenshot({ path: path.join(SHOTS, 'rating-visitor-phone-zh.png') });
    // Switched to English on the page: the rating's words follow at once.
    await page.selectOption('#lang-select', 'en');
    await page.locator('#rating-title', { hasText: 'How did we do?' }).waitFor({ timeout: T });
    assert.match(await page.locator('#rating-thanks').textContent(), /you rated this conversation Bad/);
  }),
);
