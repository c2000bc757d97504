'use strict';
// presence.test.js: the team's presence in the console (docs/UI-CONTRACT.md, "Team"; docs/API.md,
// POST /api/agent/status): an agent whose console is open is online to everyone, live, over
// whatever transport each console uses; one who chooses Away shows as away at once in the other
// consoles; one who logs out shows as offline within seconds, without anyone reloading.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, agentLogin, DEFAULT_AGENTS } = require('./harness');
const { openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

// What a console's team panel says of one agent: {status, label}, or null when not listed.
function member(page, name) {
  return page.evaluate((name) => {
    for (const li of document.querySelectorAll('#team-list .team-member')) {
      const n = li.querySelector('.team-name').textContent;
      if (n === name || n === `${name} (you)`) return { status: li.dataset.status, label: li.querySelector('.team-status').textContent };
    }
    return null;
  }, name);
}

async function waitMember(page, name, status, what) {
  await page.waitForFunction(({ name, status }) => [...document.querySelectorAll('#team-list .team-member')]
    .some((li) => li.dataset.status === status && li.querySelector('.team-name').textContent.startsWith(name)), { name, status }, { timeout: T })
    .catch(async () => assert.fail(`${what}: ${name} is ${JSON.stringify(await member(page, name))}, not ${status}`));
}

for (const [anaTransport, boTransport] of [['ws', 'poll'], ['sse', 'longpoll'], ['iframe', 'ws']]) {
  test(`presence: Ana (${anaTransport}) sees Bo (${boTransport}) come online, go away and come back, then go offline when he logs out`, { timeout: 90000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const ana = await openAgent(env, srv, anaTransport, ANA);
      await waitMember(ana.page, 'Ana', 'online', 'Ana sees herself');
      assert.equal(await ana.page.$eval('#agent-presence', (e) => e.dataset.status), 'online');
      assert.equal(await ana.page.inputValue('#agent-status'), 'online');
      const before = await member(ana.page, 'Bo');
      assert.equal(before && before.status, 'offline', 'Bo has no console open yet');

      const bo = await openAgent(env, srv, boTransport, BO);
      await waitMember(ana.page, 'Bo', 'online', "Bo's console opened");
      await waitMember(bo.page, 'Ana', 'online', 'Bo sees Ana');

      // Bo steps away: his own dot and every console say so at once.
      await bo.page.getByLabel('Your status').selectOption('away');
      await waitMember(ana.page, 'Bo', 'away', 'Bo chose Away');
      assert.equal((await member(ana.page, 'Bo')).label, 'Away');
      await bo.page.waitForFunction(() => document.querySelector('#agent-presence').dataset.status === 'away', null, { timeout: T });
      // The API says the same to a script.
      const admin = await agentLogin(srv, ANA.email, ANA.password);
      const listed = await srv.api('GET', '/api/agents', { cookie: admin.cookie });
      assert.equal(listed.json.agents.find((a) => a.name === 'Bo').status, 'away');

      await bo.page.getByLabel('Your status').selectOption('online');
      await waitMember(ana.page, 'Bo', 'online', 'Bo is back');
      assert.match(await ana.page.$eval('#team-count', (e) => e.textContent), /^2 online$/);

      // Bo logs out: offline for Ana within seconds (the server checks every 5 s).
      await bo.page.click('#logout-button');
      await bo.page.waitForSelector('#login-form', { state: 'visible', timeout: T });
      await waitMember(ana.page, 'Bo', 'offline', 'Bo logged out');
      assert.match(await ana.page.$eval('#team-count', (e) => e.textContent), /^1 online$/);
      assertNoPageProblems(ana, bo);
    }));
}

test('presence: a bad choice is 400 naming the allowed values; an agent who chooses away through the API is away', { timeout: 30000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const bo = await agentLogin(srv, BO.email, BO.password);
    for (const body of [{ status: 'offline' }, { status: 'busy' }, {}, { status: 'away', extra: 1 }]) {
      const r = await srv.api('POST', '/api/agent/status', { cookie: bo.cookie, csrf: bo.csrf, body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'bad_request');
      assert.match(r.json.error.message, /"online" or "away"/);
    }
    const r = await srv.api('POST', '/api/agent/status', { cookie: bo.cookie, csrf: bo.csrf, body: { status: 'away' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.status, 'away');
    assert.equal(r.json.agent.name, 'Bo');
    const nocsrf = await srv.api('POST', '/api/agent/status', { cookie: bo.cookie, body: { status: 'online' } });
    assert.equal(nocsrf.status, 403);
  }));
