'use strict';
// teams.test.js: teams, capacity and automatic assignment (docs/API.md, "Teams";
// docs/UI-CONTRACT.md). Over the API: who may make and change teams, the answers to bad input
// (400, 403, 409, 422), a conversation moved to a team, a team's view and counts, capacity on
// the agents, round-robin among the online members only and never over capacity, a disabled
// agent's conversations let go, and a silent assignee's conversation passed on. In the console:
// Ana makes a team in the Teams dialog, adds Bo and herself, turns round-robin on, moves
// visitors' conversations to it with the Team select; they go to Ana and Bo in turn, and Bo's
// console, open beside hers, shows his team, its count and his assignments live; and a console on
// each of the five push transports sees a team made, renamed and given a conversation.

const fs = require('node:fs');
const path = require('node:path');
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

test('teams over the API: who may change them, bad input, views and counts of a team, capacity, round-robin among online members, release on disable, reassignment', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password); // an admin
    const bo = await agentLogin(srv, BO.email, BO.password);
    const as = (who) => (method, path, body) => srv.api(method, path, { cookie: who.cookie, csrf: who.csrf, body });
    const A = as(ana);
    const B = as(bo);
    const anaId = ana.agent.id;
    const boId = bo.agent.id;

    // Making and changing teams is an admin's.
    let r = await A('POST', '/api/teams', { name: ' Billing ' });
    assert.equal(r.status, 201, r.text);
    const billing = r.json.team;
    assert.deepEqual({ ...billing, created_at: 0 }, { id: billing.id, name: 'Billing', auto_assign: 'off', reassign_after: 0, members: [], created_at: 0 });
    assertError(await B('POST', '/api/teams', { name: 'Sales' }), 403, 'forbidden', 'an agent makes a team');
    assertError(await B('PATCH', `/api/teams/${billing.id}`, { name: 'Sales' }), 403, 'forbidden', 'an agent renames one');
    assertError(await B('PUT', `/api/teams/${billing.id}/members`, { agent_ids: [boId] }), 403, 'forbidden', 'an agent sets members');
    r = await A('POST', '/api/teams', { name: 'BILLING' });
    assertError(r, 409, 'conflict', 'a taken name in another case');
    assert.match(r.json.error.message, /BILLING/);
    r = await A('POST', '/api/teams', { name: 'Sales', auto_assign: 'random' });
    assertError(r, 400, 'bad_request', 'an unknown mode');
    assert.match(r.json.error.message, /off, round_robin, least_busy/, 'the 400 names the modes');
    assertError(await A('POST', '/api/teams', { name: 'Sales', reassign_after: -1 }), 400, 'bad_request', 'a negative reassign_after');
    assertError(await A('POST', '/api/teams', { name: 'Sales', colour: 'red' }), 400, 'bad_request', 'an unknown field');
    for (const name of ['', '   ', 'x'.repeat(81), 7]) assertError(await A('POST', '/api/teams', { name }), 422, 'invalid', `name ${JSON.stringify(name)}`);
    assertError(await A('PATCH', `/api/teams/${billing.id}`, {}), 422, 'invalid', 'a change of nothing');
    assertError(await A('PATCH', '/api/teams/999', { name: 'Sales' }), 404, 'not_found', 'an unknown team');
    assertError(await A('PUT', `/api/teams/${billing.id}/members`, { agent_ids: [anaId, 999] }), 422, 'invalid', 'an unknown agent');
    assertError(await A('PUT', `/api/teams/${billing.id}/members`, { agent_ids: ['1'] }), 400, 'bad_request', 'ids that are not numbers');
    assertError(await A('PUT', '/api/teams/999/members', { agent_ids: [] }), 404, 'not_found', 'members of an unknown team');
    r = await A('POST', '/api/teams', { name: 'Sales', auto_assign: 'least_busy', reassign_after: 1 });
    assert.equal(r.status, 201, r.text);
    const sales = r.json.team;
    r = await A('PATCH', `/api/teams/${sales.id}`, { name: 'Sales EU' });
    assert.equal(r.json.team.name, 'Sales EU');
    assert.equal(r.json.team.auto_assign, 'least_busy', 'what is not given stays');
    r = await A('PUT', `/api/teams/${billing.id}/members`, { agent_ids: [boId, anaId, boId] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.team.members, [anaId, boId].sort((a, b) => a - b), 'ascending, each once');
    r = await B('GET', '/api/teams');
    assert.deepEqual(r.json.teams.map((x) => x.name), ['Billing', 'Sales EU'], 'every agent reads them, by name');

    // Capacity: an admin's to set; 400 for a bad one.
    assertError(await A('PATCH', `/api/agents/${anaId}`, { capacity: -1 }), 400, 'bad_request', 'a negative capacity');
    assertError(await A('PATCH', `/api/agents/${anaId}`, { capacity: 1.5 }), 400, 'bad_request', 'a fraction');
    assertError(await B('PATCH', `/api/agents/${boId}`, { capacity: 9 }), 403, 'forbidden', 'an agent sets its own');
    r = await A('PATCH', `/api/agents/${anaId}`, { capacity: 2 });
    assert.equal(r.json.agent.capacity, 2, r.text);

    // A conversation moves to a team (and to nobody's), and shows it.
    const visitors = [];
    for (let i = 0; i < 5; i++) {
      const v = await newVisitor(srv, `Visitor ${i}`);
      const m = await visitorSend(srv, v.token, `hello ${i}`);
      visitors.push({ ...v, conversation: m.conversation_id });
    }
    const [c0, c1, c2, c3, c4] = visitors.map((v) => v.conversation);
    assertError(await A('POST', `/api/conversations/${c0}/assign`, { team_id: 999 }), 422, 'invalid', 'a missing team');
    assert.match((await A('POST', `/api/conversations/${c0}/assign`, { team_id: 999 })).json.error.message, /team/);
    assertError(await A('POST', `/api/conversations/${c0}/assign`, { team_id: 'x' }), 422, 'invalid', 'a team id that is not one');
    assertError(await A('POST', `/api/conversations/${c0}/assign`, {}), 422, 'invalid', 'nothing to assign');
    r = await A('POST', `/api/conversations/${c0}/assign`, { team_id: billing.id });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.conversation.team, { id: billing.id, name: 'Billing' });
    assert.equal(r.json.conversation.assignee, null, 'nobody is online yet: it waits');
    r = await A('GET', `/api/conversations?view=unassigned&team=${billing.id}`);
    assert.deepEqual(r.json.conversations.map((c) => c.id), [c0], 'the team view');
    assertError(await A('GET', '/api/conversations?team=x'), 400, 'bad_request', 'a bad team');
    r = await A('GET', '/api/conversations/counts');
    assert.equal(r.json.teams[billing.id].unassigned, 1, r.text);
    assert.equal(r.json.teams[billing.id].all, 1);
    assert.equal(r.json.teams[sales.id], undefined, 'a team without conversations is left out');

    // Round-robin among the online members: Ana and Bo in turn.
    assert.equal((await A('PATCH', `/api/teams/${billing.id}`, { auto_assign: 'round_robin' })).status, 200);
    assert.equal((await A('POST', '/api/agent/status', { status: 'online' })).status, 200);
    assert.equal((await B('POST', '/api/agent/status', { status: 'online' })).status, 200);
    const holder = async (id) => {
      const x = await A('GET', `/api/conversations/${id}`);
      return x.json.conversation.assignee ? x.json.conversation.assignee.id : null;
    };
    await eventually(async () => (await holder(c0)) !== null, { timeout: T, what: 'the waiting conversation is assigned once members are online' });
    const first = await holder(c0);
    assert.equal((await A('POST', `/api/conversations/${c1}/assign`, { team_id: billing.id })).status, 200);
    await eventually(async () => (await holder(c1)) !== null, { timeout: T, what: 'the second is assigned' });
    assert.notEqual(await holder(c1), first, 'the other member gets the next one');
    assert.deepEqual([first, await holder(c1)].sort(), [anaId, boId].sort());

    // An away agent gets none.
    assert.equal((await B('POST', '/api/agent/status', { status: 'away' })).status, 200);
    assert.equal((await A('POST', `/api/conversations/${c2}/assign`, { team_id: billing.id })).status, 200);
    await eventually(async () => (await holder(c2)) === anaId, { timeout: T, what: 'Ana gets it while Bo is away' });
    // Ana is at her capacity of 2 now: the next waits, then goes to Bo when he is back.
    r = await A('GET', '/api/agents');
    const anaRow = r.json.agents.find((a) => a.id === anaId);
    assert.deepEqual([anaRow.open_conversations, anaRow.capacity], [2, 2], r.text);
    assert.equal((await A('POST', `/api/conversations/${c3}/assign`, { team_id: billing.id })).status, 200);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(await holder(c3), null, 'never over capacity, never to an away agent');
    assert.equal((await B('POST', '/api/agent/status', { status: 'online' })).status, 200);
    await eventually(async () => (await holder(c3)) === boId, { timeout: T, what: 'Bo gets it once he is online' });

    // Disabling Bo lets go of his conversations in the same write.
    const bos = [];
    for (const c of [c0, c1, c3]) if ((await holder(c)) === boId) bos.push(c);
    r = await A('PATCH', `/api/agents/${boId}`, { disabled: true });
    assert.equal(r.status, 200, r.text);
    for (const c of bos) assert.equal(await holder(c), null, `conversation ${c} is unassigned`);
    r = await A('GET', '/api/agents');
    assert.equal(r.json.agents.find((a) => a.id === boId).open_conversations, 0);

    // Sales: least busy with a one-second answer time. Ana holds two (at capacity 2): raised, so
    // that she may take one; with nobody else online it stays hers even past the time.
    assert.equal((await A('PATCH', `/api/agents/${anaId}`, { capacity: 0 })).status, 200);
    assert.equal((await A('PUT', `/api/teams/${sales.id}/members`, { agent_ids: [anaId] })).status, 200);
    assert.equal((await A('POST', `/api/conversations/${c4}/assign`, { team_id: sales.id })).status, 200);
    await eventually(async () => (await holder(c4)) === anaId, { timeout: T, what: 'the only online member gets it' });
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(await holder(c4), anaId, 'nobody else is eligible: it stays');
  }),
);

test('an assignee who does not answer in time loses the conversation to the next member', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const A = (method, path, body) => srv.api(method, path, { cookie: ana.cookie, csrf: ana.csrf, body });
    const B = (method, path, body) => srv.api(method, path, { cookie: bo.cookie, csrf: bo.csrf, body });
    let r = await A('POST', '/api/teams', { name: 'Night', auto_assign: 'round_robin', reassign_after: 2 });
    const team = r.json.team;
    await A('PUT', `/api/teams/${team.id}/members`, { agent_ids: [ana.agent.id, bo.agent.id] });
    await A('POST', '/api/agent/status', { status: 'online' });
    await B('POST', '/api/agent/status', { status: 'online' });
    const holder = async (id) => {
      const x = await A('GET', `/api/conversations/${id}`);
      return x.json.conversation.assignee ? x.json.conversation.assignee.id : null;
    };
    const v = await newVisitor(srv, 'Night owl');
    const m = await visitorSend(srv, v.token, 'anyone there?');
    await A('POST', `/api/conversations/${m.conversation_id}/assign`, { team_id: team.id });
    await eventually(async () => (await holder(m.conversation_id)) !== null, { timeout: T, what: 'assigned' });
    const first = await holder(m.conversation_id);
    await eventually(async () => ![null, first].includes(await holder(m.conversation_id)), { timeout: T, what: 'passed on after two silent seconds' });
    const second = await holder(m.conversation_id);
    // The second answers: it stays theirs.
    const answerer = second === ana.agent.id ? A : B;
    r = await answerer('POST', `/api/conversations/${m.conversation_id}/messages`, { body: 'Here!' });
    assert.equal(r.status, 201, r.text);
    await new Promise((res) => setTimeout(res, 3500));
    assert.equal(await holder(m.conversation_id), second, 'an assignee who answered keeps it');
  }),
);

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

for (const [label, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
  test(`teams in the console (${label}): Ana makes a team with round-robin, moves conversations to it, they go to Ana and Bo in turn, an away Bo gets none, capacity holds, and Bo's console follows live`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const api = await agentLogin(srv, ANA.email, ANA.password);
      const A = (method, p, body) => srv.api(method, p, { cookie: api.cookie, csrf: api.csrf, body });
      const holder = async (id) => {
        const x = await A('GET', `/api/conversations/${id}`);
        return x.json.conversation.assignee ? x.json.conversation.assignee.name : null;
      };
      const convs = [];
      for (let i = 1; i <= 5; i++) {
        const v = await newVisitor(srv, `Visitor ${i}`);
        convs.push((await visitorSend(srv, v.token, `question ${i}`)).conversation_id);
      }
      const ana = await openAgent(env, srv, null, ANA);
      const bo = await openAgent(env, srv, 'sse', BO); // the team event over SSE too
      await ana.page.setViewportSize(viewport);
      await bo.page.setViewportSize(viewport);
      const phone = label === 'phone';
      const back = async (a) => {
        if (phone) await a.page.getByRole('button', { name: 'Back to conversations' }).click();
      };

      // Bo is no admin: no Teams button.
      assert.equal(await bo.page.getByRole('button', { name: 'Teams', exact: true }).isVisible(), false);
      // Ana makes the team in the Teams dialog.
      await ana.page.getByRole('button', { name: 'Teams', exact: true }).click();
      const dlg = ana.page.locator('#teams-dialog');
      await dlg.getByLabel('Team name').fill('Billing');
      await dlg.getByRole('button', { name: 'Add team' }).click();
      await dlg.getByText('Billing is added').waitFor({ timeout: T });
      await dlg.getByRole('checkbox', { name: 'Ana (you) in Billing' }).check();
      await dlg.getByRole('checkbox', { name: 'Bo in Billing' }).check();
      await dlg.getByLabel('Automatic assignment of Billing').selectOption('round_robin');
      await screenshot(ana.page, `teams-dialog-${label}`);
      await dlg.getByRole('button', { name: 'Save Billing' }).click();
      await dlg.getByText('Billing is saved: 2 members, automatic assignment round-robin.').waitFor({ timeout: T });
      await dlg.getByRole('button', { name: 'Close' }).click();

      // Bo's console shows the team under the views at once.
      const boFilter = bo.page.locator('#team-filters').getByRole('button', { name: /Billing/ });
      await boFilter.waitFor({ timeout: T });

      // Ana moves three conversations to Billing with the Team select: Ana, Bo, Ana in turn.
      const moveToBilling = async (id) => {
        await selectConv(ana, id);
        await ana.page.getByRole('combobox', { name: 'Team', exact: true }).selectOption({ label: 'Billing' });
        await eventually(async () => (await holder(id)) !== null, { timeout: T, what: `conversation ${id} assigned` });
        await back(ana);
      };
      for (const id of convs.slice(0, 3)) await moveToBilling(id);
      assert.deepEqual([await holder(convs[0]), await holder(convs[1]), await holder(convs[2])], ['Ana', 'Bo', 'Ana'], 'round-robin');
      // Bo's console: the team's count, and its filter narrows his list to it.
      await eventually(async () => (await boFilter.locator('.view-count').textContent()) === '3', { timeout: T, what: "Billing's count in Bo's console" });
      await boFilter.click();
      await eventually(async () => (await bo.page.locator('#conversation-list .conv-item').count()) === 3, { timeout: T, what: "Bo's list narrowed to Billing" });
      assert.equal(await boFilter.getAttribute('aria-pressed'), 'true');
      // The team panel says what each holds.
      await eventually(async () => /2 open/.test(await bo.page.locator('#team-list .team-member', { hasText: 'Ana' }).textContent()), { timeout: T, what: "Ana's load in Bo's team panel" });

      // Bo goes away: the next goes to Ana.
      await bo.page.getByLabel('Your status').selectOption('away');
      await eventually(async () => (await A('GET', '/api/agents')).json.agents.find((a) => a.name === 'Bo').status === 'away', { timeout: T, what: 'Bo away' });
      await moveToBilling(convs[3]);
      assert.equal(await holder(convs[3]), 'Ana', 'an away agent gets none');

      // Ana's capacity is 3, as many as she holds: the next waits, for Bo.
      await ana.page.getByRole('button', { name: 'Team settings' }).click();
      const capacity = ana.page.getByLabel('Capacity of Ana');
      await capacity.fill('3');
      await capacity.press('Tab');
      await ana.page.locator('#team-dialog').getByText('Ana takes up to 3 conversations now.').waitFor({ timeout: T });
      await screenshot(ana.page, `teams-capacity-${label}`);
      await ana.page.locator('#team-admin-close').click();
      await selectConv(ana, convs[4]);
      await ana.page.getByRole('combobox', { name: 'Team', exact: true }).selectOption({ label: 'Billing' });
      await ana.page.waitForTimeout(1500);
      assert.equal(await holder(convs[4]), null, 'never over capacity, never to an away agent');
      await eventually(async () => /3 \/ 3 open/.test(await bo.page.locator('#team-list .team-member', { hasText: 'Ana' }).textContent()), { timeout: T, what: '3 / 3 in the team panel' });
      await bo.page.getByLabel('Your status').selectOption('online');
      await eventually(async () => (await holder(convs[4])) === 'Bo', { timeout: T, what: 'Bo gets it once online' });
      // Bo's console shows it his, live.
      await eventually(async () => /Bo|you/i.test(await bo.page.locator(`#conversation-list .conv-item[data-id="${convs[4]}"]`).textContent()), { timeout: T, what: "Bo's list shows him holding it" });
      // The counts and the team panel follow too.
      await eventually(async () => (await bo.page.locator('#view-tabs [data-view="unassigned"]').getAttribute('data-count')) === '0', { timeout: T, what: "Bo's Unassigned count" });
      await eventually(async () => /2 open/.test(await bo.page.locator('#team-list .team-member', { hasText: 'Bo' }).textContent()), { timeout: T, what: "Bo's load in his team panel" });
      await screenshot(ana.page, `teams-console-ana-${label}`);
      await screenshot(bo.page, `teams-console-bo-${label}`);
      assertNoPageProblems(ana, bo);
    }),
  );
}

test('teams: every console, over every push transport, sees a new team, its rename and a conversation moved to it, without a reload', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Lin');
    const id = (await visitorSend(srv, v.token, 'hello')).conversation_id;
    const consoles = [];
    for (const transport of ['ws', 'sse', 'longpoll', 'iframe', 'poll']) consoles.push([transport, await openAgent(env, srv, transport, BO)]);
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const A = (method, p, body) => srv.api(method, p, { cookie: ana.cookie, csrf: ana.csrf, body });
    const team = (await A('POST', '/api/teams', { name: 'Returns' })).json.team;
    const filter = (c) => c.page.locator(`#team-filters .team-filter[data-team="${team.id}"]`);
    for (const [transport, c] of consoles) {
      await filter(c).waitFor({ timeout: T }).catch((e) => {
        throw new Error(`${transport}: the new team did not show: ${e.message}`);
      });
    }
    assert.equal((await A('PATCH', `/api/teams/${team.id}`, { name: 'Returns EU' })).status, 200);
    assert.equal((await A('POST', `/api/conversations/${id}/assign`, { team_id: team.id })).status, 200);
    for (const [transport, c] of consoles) {
      await eventually(async () => (await filter(c).locator('.team-filter-name').textContent()) === 'Returns EU' && (await filter(c).getAttribute('data-count')) === '1', {
        timeout: T,
        what: `${transport}: the rename and the team's count`,
      });
    }
    assertNoPageProblems(...consoles.map(([, c]) => c));
  }),
);
