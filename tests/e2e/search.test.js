'use strict';
// search.test.js: the agents' full-text search (docs/API.md, GET /api/search): Chinese words of
// two characters (退款, 物流) and longer, Latin words in any case, visitors' names, newest first,
// pages, a message found as soon as it is acknowledged and after a restart, the bad queries (400)
// and who may search (agents only). Then in a real browser: an agent types 退款 in the console's
// search box, sees the hit with its mark, opens it, and the conversation shows the message in
// view (scrolled to, far above the thread's end) and marked for a moment, also when the list has
// not loaded that conversation yet; on a phone as well.
// Message text shows as text in the results, never as markup.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  scenario, closeBrowser, agentLogin, agentSend, newVisitor, visitorSend, assertError, DEFAULT_AGENTS,
} = require('./harness');
const { T, openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];

function search(srv, who, query, extra = '') {
  return srv.api('GET', `/api/search?q=${encodeURIComponent(query)}${extra}`, { cookie: who.cookie });
}

async function hits(srv, who, query, extra) {
  const r = await search(srv, who, query, extra);
  assert.equal(r.status, 200, `search ${query}: ${r.text}`);
  return r.json.results;
}

// The marked parts of a hit's snippet (its highlights, in code points).
function marked(hit) {
  const chars = Array.from(hit.snippet);
  return hit.highlights.map(([start, length]) => chars.slice(start, start + length).join(''));
}

test('search API: 退款 and 物流 (two characters) and longer words, Latin words in any case, names; newest first; pages; found at once and after a restart; 400 for bad queries; agents only', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const wang = await newVisitor(srv, 'Wang Fang 王芳');
    const refund = await visitorSend(srv, wang.token, '你好，我要退款了');
    const logistics = await visitorSend(srv, wang.token, '物流信息在哪里？');
    const olga = await newVisitor(srv, 'Olga');
    const latin = await visitorSend(srv, olga.token, 'Refund? Please, the café was closed');
    const reply = await agentSend(srv, ana, latin.conversation_id, 'Your REFUND is on its way');

    let r = await hits(srv, ana, '退款');
    assert.deepEqual(r.map((h) => h.message_id), [refund.id]);
    assert.equal(r[0].conversation_id, refund.conversation_id);
    assert.equal(r[0].snippet, '你好，我要退款了');
    assert.deepEqual(marked(r[0]), ['退款']);
    assert.deepEqual(r[0].visitor, { id: wang.visitor.id, name: 'Wang Fang 王芳' });
    assert.equal(r[0].field, 'message');
    assert.deepEqual((await hits(srv, ana, '物流')).map((h) => h.message_id), [logistics.id]);
    assert.deepEqual((await hits(srv, ana, '物流信息')).map((h) => h.message_id), [logistics.id]);
    assert.deepEqual(await hits(srv, ana, '退货'), [], 'one character in common is not a hit');
    assert.deepEqual(await hits(srv, ana, '物流在哪'), [], 'not a substring');

    r = await hits(srv, ana, 'refund');
    assert.deepEqual(r.map((h) => h.message_id), [reply.id, latin.id], 'newest first');
    assert.deepEqual(r.map((h) => h.sender), ['agent', 'visitor']);
    assert.deepEqual(marked(r[0]), ['REFUND']);
    assert.deepEqual((await hits(srv, ana, 'CAFE closed')).map((h) => h.message_id), [latin.id]);

    // A name: one hit per conversation, at its newest message.
    r = await hits(srv, ana, '王芳');
    assert.deepEqual(r.map((h) => [h.field, h.message_id, h.snippet]), [['visitor', logistics.id, 'Wang Fang 王芳']]);
    assert.deepEqual(marked(r[0]), ['王芳']);
    assert.deepEqual((await hits(srv, ana, 'olga')).map((h) => [h.field, h.message_id]), [['visitor', reply.id]]);

    // Found as soon as the send is answered.
    const fresh = await visitorSend(srv, olga.token, '物流怎么样');
    assert.deepEqual((await hits(srv, ana, '物流')).map((h) => h.message_id), [fresh.id, logistics.id]);

    // Pages of 7 reach all 25 (and the two above), each once, newest first.
    for (let i = 0; i < 25; i++) await agentSend(srv, ana, refund.conversation_id, `退款 step ${i}`);
    const seen = [];
    let before = '';
    for (let page = 0; page < 10; page++) {
      const res = await search(srv, ana, '退款', `&limit=7${before}`);
      assert.equal(res.status, 200, res.text);
      seen.push(...res.json.results.map((h) => h.message_id));
      if (res.json.next === null) break;
      assert.match(res.json.next, /^\d+$/);
      before = `&before=${res.json.next}`;
    }
    assert.equal(seen.length, 26);
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a), 'newest first across pages');
    assert.equal(seen[25], refund.id);
    assert.equal(new Set(seen).size, 26, 'none twice');

    // Bad queries are 400 with the usual error; 200 characters are fine.
    for (const q of ['a', ' b ', '退', 'x'.repeat(201), '物'.repeat(201)]) {
      assertError(await search(srv, ana, q), 400, 'bad_request', JSON.stringify(q));
    }
    assertError(await srv.api('GET', '/api/search', { cookie: ana.cookie }), 400, 'bad_request', 'no q');
    assertError(await search(srv, ana, 'refund', '&limit=101'), 400, 'bad_request', 'limit 101');
    assertError(await search(srv, ana, 'refund', '&before=x'), 400, 'bad_request', 'before=x');
    assert.equal((await search(srv, ana, 'x'.repeat(200))).status, 200);
    assert.equal((await search(srv, ana, '物'.repeat(200))).status, 200);

    // Agents only.
    assertError(await srv.api('GET', '/api/search?q=refund', { token: olga.token }), 401, 'unauthorized', 'a visitor');
    assertError(await srv.api('GET', '/api/search?q=refund'), 401, 'unauthorized', 'nobody');

    // The index is in the database: a restart keeps it.
    await srv.restart();
    const again = await agentLogin(srv, ANA.email, ANA.password);
    assert.deepEqual((await hits(srv, again, '物流')).map((h) => h.message_id), [fresh.id, logistics.id]);
  }),
);

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// Whether the message's bubble is inside the thread's visible box.
function inView(page, id) {
  return page.evaluate((mid) => {
    const node = document.querySelector(`#thread .msg[data-id="${mid}"]`);
    const box = document.querySelector('#thread').getBoundingClientRect();
    if (!node) return false;
    const r = node.getBoundingClientRect();
    return r.top >= box.top && r.bottom <= box.bottom;
  }, id);
}

for (const [label, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
  test(`search in the console (${label}): typing 退款 lists the hit with its mark; opening it shows the conversation at the message, scrolled to and marked; text is never markup`, { timeout: 90000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const ana = await agentLogin(srv, ANA.email, ANA.password);
      const li = await newVisitor(srv, 'Li Na 李娜');
      const asked = await visitorSend(srv, li.token, '你好！我上周买的耳机坏了，我要退款，可以吗？');
      // Enough after it that the message is far above the thread's end.
      for (let i = 0; i < 40; i++) await agentSend(srv, ana, asked.conversation_id, `Checking step ${i + 1} of the order…`);
      const other = await newVisitor(srv, 'Mallory');
      await visitorSend(srv, other.token, '<img src=x onerror="window.pwned=1"> 退款 <b>now</b>');
      for (let i = 0; i < 3; i++) {
        const v = await newVisitor(srv, `Visitor ${i}`);
        await visitorSend(srv, v.token, `物流 question ${i}: where is my parcel?`);
      }

      // On the desktop the list loads two conversations a page, and newer ones fill the screen
      // before the hit's is reached: opening it must fetch it first.
      if (label === 'desktop') {
        for (let i = 0; i < 24; i++) await visitorSend(srv, (await newVisitor(srv, `Newer ${i}`)).token, 'hello');
      }
      const a = await openAgent(env, srv, undefined, ANA, label === 'desktop' ? { page_size: '2' } : {});
      await a.page.setViewportSize(viewport);
      if (label === 'desktop') {
        await a.page.waitForSelector('.conv-item', { timeout: T });
        await a.page.waitForTimeout(500); // the pages that fill the screen
        assert.equal(await a.page.$$eval(`.conv-item[data-id="${asked.conversation_id}"]`, (els) => els.length), 0, 'not loaded yet');
      }
      const box = a.page.getByRole('searchbox', { name: 'Search conversations' });
      await box.fill('退款');
      await a.page.waitForFunction(() => document.querySelectorAll('#search-list .search-hit').length === 2, null, { timeout: T });
      assert.equal(await a.page.isVisible('#list-scroll'), false, 'the results take the list\'s place');
      const results = await a.page.$$eval('#search-list .search-hit', (els) => els.map((e) => ({
        conversation: Number(e.dataset.conversationId),
        message: Number(e.dataset.messageId),
        name: e.querySelector('.search-hit-name').textContent,
        snippet: e.querySelector('.search-hit-snippet').textContent,
        marks: Array.from(e.querySelectorAll('mark')).map((m) => m.textContent),
        elements: e.querySelectorAll('.search-hit-snippet *:not(mark)').length,
      })));
      assert.equal(results[0].name, 'Mallory');
      assert.equal(results[0].snippet, '<img src=x onerror="window.pwned=1"> 退款 <b>now</b>', 'the text as text');
      assert.equal(results[0].elements, 0, 'no element but the marks');
      assert.equal(await a.page.evaluate(() => window.pwned), undefined);
      assert.deepEqual(results[1], {
        conversation: asked.conversation_id, message: asked.id, name: 'Li Na 李娜',
        snippet: '你好！我上周买的耳机坏了，我要退款，可以吗？', marks: ['退款'], elements: 0,
      });
      assert.match(await a.page.textContent('#search-status'), /2 results/);
      await screenshot(a.page, `search-${label}-results`);

      await a.page.click(`#search-list .search-hit[data-message-id="${asked.id}"]`);
      await a.page.waitForSelector(`#thread .msg[data-id="${asked.id}"].search-target`, { timeout: T });
      assert.equal(await a.page.textContent('#thread-title'), 'Li Na 李娜');
      await a.page.waitForFunction((mid) => {
        const node = document.querySelector(`#thread .msg[data-id="${mid}"]`);
        const r = node.getBoundingClientRect();
        const b = document.querySelector('#thread').getBoundingClientRect();
        return r.top >= b.top && r.bottom <= b.bottom;
      }, asked.id, { timeout: T });
      assert.ok(await inView(a.page, asked.id), 'the message is in view');
      const last = await a.page.$$eval('#thread .msg[data-id]', (els) => Number(els[els.length - 1].dataset.id));
      assert.equal(await inView(a.page, last), false, 'scrolled up from the end to it');
      await screenshot(a.page, `search-${label}-opened`);
      // The mark goes after a moment.
      await a.page.waitForSelector('#thread .msg.search-target', { state: 'detached', timeout: T });

      if (label === 'phone') {
        // Back to the list: the results are still there.
        await a.page.click('#back-button');
        await a.page.waitForSelector('#search-list .search-hit', { state: 'visible', timeout: T });
      }
      // A short query says so; clearing the box brings the conversations back.
      await box.fill('物');
      await a.page.waitForFunction(() => /at least 2 characters/.test(document.querySelector('#search-status').textContent), null, { timeout: T });
      await box.fill('物流');
      await a.page.waitForFunction(() => document.querySelectorAll('#search-list .search-hit').length === 3, null, { timeout: T });
      await screenshot(a.page, `search-${label}-logistics`);
      if (label === 'desktop') {
        // Twenty a page: "More results" brings the rest, after them, and then goes.
        await box.fill('hello');
        await a.page.waitForFunction(() => document.querySelectorAll('#search-list .search-hit').length === 20, null, { timeout: T });
        assert.match(await a.page.textContent('#search-status'), /20\+ results/);
        await a.page.click('#search-more');
        await a.page.waitForFunction(() => document.querySelectorAll('#search-list .search-hit').length === 24, null, { timeout: T });
        await a.page.waitForSelector('#search-more', { state: 'hidden', timeout: T });
        const ids = await a.page.$$eval('#search-list .search-hit', (els) => els.map((e) => Number(e.dataset.messageId)));
        assert.deepEqual(ids, [...ids].sort((x, y) => y - x), 'newest first across the two pages');
        assert.equal(new Set(ids).size, 24);
      }
      await box.fill('');
      await a.page.waitForSelector('#list-scroll', { state: 'visible', timeout: T });
      assert.equal(await a.page.isVisible('#search-results'), false);
      assertNoPageProblems(a);
    }),
  );
}
