'use strict';
// diag.test.js: the connection check (/diag; docs/API.md, "The connection check"). Against a local
// server all five transports work, each with its time to the first event; with the event stream
// refused (a route the browser answers 503 for) or never answered, the page says which failed and
// why, and the others still work. Nothing is written: no visitor, conversation or message. The
// page is linked from the visitor page's footer and from the console.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, openVisitor, assertNoPageProblems, trackDialogs } = require('./pages');

after(closeBrowser);

const [ANA] = DEFAULT_AGENTS;
const T = 30000;

async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

function results(page) {
  return page.$$eval('#diag-rows tr', (rows) => rows.map((r) => ({
    transport: r.dataset.transport,
    name: r.querySelector('th').textContent,
    state: r.querySelector('.diag-state').textContent,
    latency: r.querySelector('.diag-latency').textContent,
    reason: r.querySelector('.diag-reason').textContent,
  })));
}

async function waitSummary(page, re) {
  await page.locator('#diag-summary', { hasText: re }).waitFor({ timeout: T });
}

test('the connection check: all five transports work against a local server, with their times; a refused or silent one says why; nothing is written', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const page = await env.page('diag');
    const dialogs = trackDialogs(page);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${srv.base}/diag`);
    await waitSummary(page, 'All five transports work from here.');
    let rows = await results(page);
    assert.deepEqual(rows.map((r) => r.transport), ['poll', 'longpoll', 'iframe', 'sse', 'ws']);
    assert.deepEqual(rows.map((r) => r.name), ['Polling', 'Long polling', 'Forever iframe', 'Server-Sent Events', 'WebSocket']);
    for (const r of rows) {
      assert.equal(r.state, 'Works', `${r.transport}: ${JSON.stringify(r)}`);
      assert.match(r.latency, /^\d[\d,]* ms$/, `${r.transport}: a time`);
      assert.equal(Number(r.latency.replace(/\D/g, '')) < 5000, true, `${r.transport}: at once, not after a hold: ${r.latency}`);
      assert.equal(r.reason, '');
    }
    await screenshot(page, 'diag-desktop');

    // The event stream refused with 503: it failed, saying the status; the others work.
    await page.route('**/diag/push/sse*', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"x"}}' }));
    await page.getByRole('button', { name: 'Check again' }).click();
    await waitSummary(page, '4 of 5 transports work from here.');
    rows = await results(page);
    const sse = rows.find((r) => r.transport === 'sse');
    assert.deepEqual([sse.state, sse.reason], ['Failed', 'The server answered HTTP 503']);
    assert.deepEqual(rows.filter((r) => r.state === 'Works').map((r) => r.transport), ['poll', 'longpoll', 'iframe', 'ws']);
    await page.unroute('**/diag/push/sse*');

    // A long poll that never comes back: a timeout.
    await page.route('**/diag/push/longpoll*', () => { /* never answered */ });
    await page.getByRole('button', { name: 'Check again' }).click();
    await waitSummary(page, '4 of 5 transports work from here.');
    rows = await results(page);
    const longpoll = rows.find((r) => r.transport === 'longpoll');
    assert.deepEqual([longpoll.state, longpoll.reason], ['Failed', 'No answer within 8 seconds']);
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'diag-phone-failure');
    await page.unroute('**/diag/push/longpoll*');

    // Nothing was written: no conversation, nobody online.
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    assert.deepEqual((await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations, []);
    assert.deepEqual((await srv.api('GET', '/api/visitors/online', { cookie: agent.cookie })).json.visitors, []);

    // The check's endpoints, by hand: a poll has the one event; a WebSocket of the check may only
    // ping (its other actions are refused); a bad cursor is a 400.
    const poll = await srv.api('GET', '/diag/push/poll?after=0');
    assert.equal(poll.status, 200, poll.text);
    assert.deepEqual(poll.json.events.map((e) => e.type), ['diag']);
    assert.equal((await srv.api('GET', '/diag/push/poll?after=x')).status, 400);
    const refused = await page.evaluate(async (base) => {
      const ws = new WebSocket(base.replace('http:', 'ws:') + '/diag/push/ws?after=0');
      const replies = [];
      await new Promise((resolve, reject) => {
        ws.onmessage = (e) => {
          const ev = JSON.parse(e.data);
          if (ev.type === 'diag') ws.send(JSON.stringify({ type: 'send', ref: 's1', body: 'hi' }));
          if (ev.ref === 's1') ws.send(JSON.stringify({ type: 'ping', ref: 'p1' }));
          if (ev.ref) replies.push(ev);
          if (ev.ref === 'p1') resolve();
        };
        ws.onerror = reject;
      });
      ws.close();
      return replies.map((r) => [r.type, r.error ? r.error.code : null]);
    }, srv.base);
    assert.deepEqual(refused, [['error', 'bad_request'], ['pong', null]]);
    assert.deepEqual((await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations, []);
    assertNoPageProblems({ page, label: 'diag' });
    assert.deepEqual(dialogs, []);
  }));

test('the connection check is linked from the visitor page\'s footer and from the console', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await openVisitor(env, srv, 'sse');
    const link = v.page.getByRole('link', { name: 'Connection check' });
    assert.equal(await link.getAttribute('href'), '/diag');
    const ana = await openAgent(env, srv, 'ws', ANA);
    const consoleLink = ana.page.getByRole('link', { name: 'Connection check' });
    assert.equal(await consoleLink.getAttribute('href'), '/diag');
    const [diag] = await Promise.all([ana.page.context().waitForEvent('page'), consoleLink.click()]);
    trackDialogs(diag);
    await diag.locator('#diag-summary', { hasText: 'All five transports work from here.' }).waitFor({ timeout: T });
    await eventually(async () => (await diag.title()) === 'Connection check', { what: 'the page title' });
    assertNoPageProblems(v, ana, { page: diag, label: 'diag' });
  }));
