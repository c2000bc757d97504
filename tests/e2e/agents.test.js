'use strict';
// agents.test.js: a team's admin manages its agents (docs/API.md, GET and PATCH /api/agents):
// lists them, renames them and changes their roles, and takes an agent's access away at once
// (someone leaves the team, a laptop is stolen) and gives it back later. Disabling ends, at once,
// the agent's open console in a real browser (it lands on the login page saying why), a stream
// opened with a push ticket, a ticket not yet used, a WebSocket and the session cookie; the
// agent's login is refused as disabled only with the right password; the desk cannot lock itself
// out (no disabling oneself, always one enabled admin); what the agent wrote stays theirs.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  scenario, closeBrowser, agentLogin, agentSend, newVisitor, visitorSend, assertError, CurlStream, eventually, sleep, DEFAULT_AGENTS,
} = require('./harness');
const { RawWs } = require('./wsraw');
const { T, openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0]; // admin
const BO = DEFAULT_AGENTS[1]; // agent
const DISABLED_TEXT = /Your account has been disabled/;

// PATCH /api/agents/<id> as who (an agentLogin result).
function change(srv, who, id, body) {
  return srv.api('PATCH', `/api/agents/${id}`, { cookie: who.cookie, csrf: who.csrf, body });
}

async function listAgents(srv, who) {
  const r = await srv.api('GET', '/api/agents', { cookie: who.cookie });
  assert.equal(r.status, 200, r.text);
  return r.json.agents;
}

test('agents: every agent lists the team; an admin renames agents or changes their role, an agent gets 403 for that, nobody 401; a change is checked (400, 422, 404); disabling oneself or the last enabled admin is 409', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);

    const agents = await listAgents(srv, ana);
    // Logged in through the API, with no console open: offline to the team.
    assert.deepEqual(agents.map((a) => ({ ...a, id: 0, created_at: 0 })), [
      { id: 0, email: ANA.email, name: 'Ana', role: 'admin', created_at: 0, disabled: false, capacity: 0, open_conversations: 0, status: 'offline' },
      { id: 0, email: BO.email, name: 'Bo', role: 'agent', created_at: 0, disabled: false, capacity: 0, open_conversations: 0, status: 'offline' },
    ]);
    for (const a of agents) assert.ok(a.created_at > 1700000000000 && a.created_at <= Date.now(), `created_at ${a.created_at}`);
    const [anaId, boId] = agents.map((a) => a.id);

    // Who may: an admin, with the CSRF token for a change.
    assert.deepEqual(await listAgents(srv, bo), agents, 'any agent lists the team (to see who is there, and to transfer)');
    assertError(await change(srv, bo, anaId, { name: 'Ana the Great' }), 403, 'forbidden', 'an agent renames another');
    assertError(await change(srv, bo, anaId, { disabled: true }), 403, 'forbidden', 'an agent disables an admin');
    assertError(await srv.api('GET', '/api/agents'), 401, 'unauthorized', 'nobody lists');
    assertError(await srv.api('PATCH', `/api/agents/${boId}`, { body: { disabled: true } }), 401, 'unauthorized', 'nobody changes');
    assertError(await srv.api('PATCH', `/api/agents/${boId}`, { cookie: ana.cookie, body: { disabled: true } }), 403, 'csrf', 'no CSRF token');
    const v = await newVisitor(srv);
    assertError(await srv.api('GET', '/api/agents', { token: v.token }), 401, 'unauthorized', 'a visitor lists');

    // What a change may hold.
    const e = await change(srv, ana, boId, { disable: true });
    assertError(e, 400, 'bad_request', 'a misspelt field');
    assert.match(e.json.error.message, /disable/);
    for (const body of [{}, { disabled: 'yes' }, { disabled: 1 }, { role: 'owner' }, { name: 7 }, { name: 'n'.repeat(81) }]) {
      assertError(await change(srv, ana, boId, body), 422, 'invalid', JSON.stringify(body));
    }
    assertError(await change(srv, ana, 987654, { name: 'Nobody' }), 404, 'not_found', 'an unknown agent');
    assertError(await srv.api('PUT', `/api/agents/${boId}`, { cookie: ana.cookie, csrf: ana.csrf, body: { name: 'x' } }), 405, 'method_not_allowed', 'PUT');
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: bo.cookie })).json.agent.name, 'Bo', 'nothing changed');

    // A rename and a role: the agent's own session sees them at once.
    let r = await change(srv, ana, boId, { name: '  Bo Brandt  ', role: 'admin' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual({ ...r.json.agent, created_at: 0 }, { id: boId, email: BO.email, name: 'Bo Brandt', role: 'admin', created_at: 0, disabled: false, capacity: 0, open_conversations: 0 });
    const me = await srv.api('GET', '/api/agent/me', { cookie: bo.cookie });
    assert.deepEqual([me.json.agent.name, me.json.agent.role], ['Bo Brandt', 'admin']);
    assert.equal((await listAgents(srv, bo)).length, 2, 'Bo is an admin now');

    // The desk never locks itself out: no admin disables themselves; the last enabled admin can
    // be neither disabled nor made an agent (a disabled admin does not count).
    r = await change(srv, ana, anaId, { disabled: true });
    assertError(r, 409, 'conflict', 'Ana disables herself');
    assert.match(r.json.error.message, /your own account/);
    assert.equal((await change(srv, ana, boId, { disabled: true })).status, 200, 'Ana disables Bo, an admin');
    r = await change(srv, ana, anaId, { role: 'agent' });
    assertError(r, 409, 'conflict', 'the last enabled admin made an agent');
    assert.match(r.json.error.message, /enabled admin/);
    assert.equal((await change(srv, ana, boId, { disabled: false })).status, 200, 'Bo enabled again');
    assert.equal((await change(srv, ana, anaId, { role: 'agent' })).status, 200, 'with Bo an admin, Ana may step down');
    assertError(await change(srv, ana, boId, { name: 'Bo again' }), 403, 'forbidden', 'Ana is an agent now, in her session too');
    const bo2 = await agentLogin(srv, BO.email, BO.password);
    assertError(await change(srv, bo2, boId, { role: 'agent' }), 409, 'conflict', 'Bo, the last admin, steps down');
    assert.match(srv.log, new RegExp(`agent ${BO.email} disabled by ${ANA.email}`), 'the log says who disabled whom');
  }));

test('agents: disabling ends at once the agent\'s console in a browser (it lands on the login page saying why), a ticket\'s SSE stream, a WebSocket, an unused ticket and the session; the login is 403 only with the right password; enabled again, they are back, their messages theirs all along', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const boId = bo.agent.id;
    const v = await newVisitor(srv, 'Vera');
    const m = await visitorSend(srv, v.token, 'hello?');
    const reply = await agentSend(srv, bo, m.conversation_id, 'Bo here, how can I help?');

    // Bo at work: the console over WebSocket, an SSE stream and a WebSocket with tickets, and a
    // ticket not used yet.
    const consolePage = await openAgent(env, srv, 'ws', BO);
    const ticket = async () => encodeURIComponent((await srv.api('POST', '/api/agent/push-ticket', { cookie: bo.cookie, csrf: bo.csrf })).json.ticket);
    const sse = new CurlStream(['-sN', '--max-time', '60', '-H', 'Accept: text/event-stream', `${srv.base}/push/sse?after=0&ticket=${await ticket()}`]);
    env.defer(() => sse.close());
    await sse.until((out) => out.includes('Bo here'), T, 'the SSE stream\'s replay');
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${reply.id}&ticket=${await ticket()}` });
    env.defer(() => ws.destroy());
    const unused = await ticket();
    // A session not used since its login (a laptop closed for the night): no loop has it cached.
    const idle = await agentLogin(srv, BO.email, BO.password);
    await sleep(5); // the disabling comes after the tickets' millisecond

    const t0 = Date.now();
    const r = await change(srv, ana, boId, { disabled: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.disabled, true);

    // At once: the streams end, the ticket and the cookie open nothing.
    await ws.expectClose(1008, { timeout: 3000, allowOthers: true, what: 'of the disabled agent\'s WebSocket' });
    const ended = await Promise.race([sse.exit, sleep(3000).then(() => null)]);
    assert.ok(ended, `the SSE stream ended: ${sse.out.slice(-200)}`);
    assertError(await srv.api('GET', `/push/poll?after=0&ticket=${unused}`), 401, 'unauthorized', 'the unused ticket');
    // Each request a connection of its own, so that with several loops (SO_REUSEPORT) some land
    // on a loop that never saw the session: every one of them says why too.
    for (let i = 0; i < 8; i++) {
      const cookie = await srv.api('GET', '/api/conversations', { cookie: bo.cookie });
      assertError(cookie, 401, 'disabled', `the session cookie, request ${i + 1}`);
      assert.match(cookie.json.error.message, /disabled/);
    }
    assertError(await srv.api('GET', '/api/agent/me', { cookie: idle.cookie }), 401, 'disabled', 'a session no loop had seen');
    assertError(await srv.api('POST', `/api/conversations/${m.conversation_id}/messages`, { cookie: bo.cookie, csrf: bo.csrf, body: { body: 'one more' } }), 401, 'disabled', 'a reply');
    assertError(await srv.api('GET', `/push/sse?after=0`, { cookie: bo.cookie }), 401, 'disabled', 'a stream with the cookie');

    // The console: its connection ends and it shows the login page, saying why.
    const page = consolePage.page;
    await page.waitForSelector('#login-view', { state: 'visible', timeout: T });
    await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#login-error').textContent), DISABLED_TEXT.source, { timeout: T });
    t.diagnostic(`the console showed the login page ${Date.now() - t0} ms after the change`);
    assert.equal(await page.isVisible('#console-view'), false, 'the console is gone');
    assert.equal(await page.getAttribute('#login-error', 'role'), 'alert', 'the message is announced');

    // Logging in: 403 `disabled` with the right password, and only then (a guesser learns nothing).
    const login = await srv.api('POST', '/api/agent/login', { body: { email: BO.email, password: BO.password } });
    assertError(login, 403, 'disabled', 'the right password');
    assert.equal(login.headers['set-cookie'], undefined, 'no session');
    assertError(await srv.api('POST', '/api/agent/login', { body: { email: BO.email, password: 'a wrong guess' } }), 401, 'unauthorized', 'a wrong password');
    await page.fill('#login-email', BO.email);
    await page.fill('#login-password', BO.password);
    await page.click('#login-submit');
    await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#login-error').textContent) && !document.querySelector('#login-submit').disabled, DISABLED_TEXT.source, { timeout: T });
    assert.equal(await page.isVisible('#login-view'), true, 'still the login page');

    // The admin sees it; the history stays Bo's; the others work on.
    const listed = (await listAgents(srv, ana)).find((a) => a.id === boId);
    assert.equal(listed.disabled, true);
    const messages = await srv.api('GET', `/api/conversations/${m.conversation_id}/messages?after=0`, { cookie: ana.cookie });
    assert.deepEqual(messages.json.messages.map((x) => [x.body, x.agent_id, x.agent_name]), [['hello?', undefined, undefined], [reply.body, boId, 'Bo']]);
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: ana.cookie })).status, 200, 'Ana is still logged in');

    // Enabled again: the old session stays ended; Bo signs in anew, in the same browser page.
    assert.equal((await change(srv, ana, boId, { disabled: false })).status, 200);
    for (let i = 0; i < 4; i++)
      assertError(await srv.api('GET', '/api/agent/me', { cookie: bo.cookie }), 401, 'unauthorized', `the old session, request ${i + 1}`);
    await page.click('#login-submit');
    await page.waitForSelector('#console-view', { state: 'visible', timeout: T });
    await eventually(async () => (await page.getAttribute('#conn-state', 'data-state')) === 'connected', { timeout: T, what: 'the console connects' });
    const fresh = await agentLogin(srv, BO.email, BO.password);
    assert.equal((await srv.api('GET', `/push/poll?after=0&ticket=${encodeURIComponent((await srv.api('POST', '/api/agent/push-ticket', { cookie: fresh.cookie, csrf: fresh.csrf })).json.ticket)}`)).status, 200, 'a new ticket works');
    assertNoPageProblems(consolePage);
  }));

test('agents: an agent renames itself and changes its password with the current one (its other sessions end, this one stays); an admin sets a new password for another agent (all of theirs end); wrong current passwords are limited like failed logins', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const boPhone = await agentLogin(srv, BO.email, BO.password); // a second session of Bo's
    const agents = await listAgents(srv, ana);
    const [anaId, boId] = agents.map((a) => a.id);

    // Bo's own name: his to change; nothing else of his, nothing of Ana's.
    let r = await change(srv, bo, boId, { name: '  Bo Li  ' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.name, 'Bo Li');
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: boPhone.cookie })).json.agent.name, 'Bo Li', 'his other session sees the new name');
    assertError(await change(srv, bo, boId, { role: 'admin' }), 403, 'forbidden', 'Bo makes himself an admin');
    assertError(await change(srv, bo, boId, { disabled: false }), 403, 'forbidden', 'Bo enables himself');
    assertError(await change(srv, bo, anaId, { name: 'Not Ana' }), 403, 'forbidden', "Bo renames Ana");
    assertError(await change(srv, bo, anaId, { password: 'a new long password' }), 403, 'forbidden', "Bo sets Ana's password");

    // His password: with the current one only.
    assertError(await change(srv, bo, boId, { password: 'bo has a new password' }), 422, 'invalid', 'without the current one');
    assertError(await change(srv, bo, boId, { password: 'short', current_password: BO.password }), 422, 'invalid', 'a short new one');
    assertError(await change(srv, bo, boId, { current_password: BO.password }), 422, 'invalid', 'the current one alone');
    assertError(await change(srv, bo, boId, { password: 'bo has a new password', current_password: 'not his password' }), 403, 'forbidden', 'a wrong current one');
    r = await change(srv, bo, boId, { password: 'bo has a new password', current_password: BO.password });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.password, undefined, 'no password (nor its hash) in the answer');
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: bo.cookie })).status, 200, 'the session that changed it stays');
    assertError(await srv.api('GET', '/api/agent/me', { cookie: boPhone.cookie }), 401, 'unauthorized', 'his other session ends');
    assertError(await srv.api('POST', '/api/agent/login', { body: { email: BO.email, password: BO.password } }), 401, 'unauthorized', 'the old password');
    const boAgain = await agentLogin(srv, BO.email, 'bo has a new password');
    assert.match(srv.log, /agent bo@example.com given a new password by bo@example.com \(sessions ended: 1/);

    // An admin sets it for him (he forgot it): every session of his ends, and no current one is asked.
    r = await change(srv, ana, boId, { password: 'set by the admin for bo' });
    assert.equal(r.status, 200, r.text);
    for (const s of [bo, boAgain]) assertError(await srv.api('GET', '/api/agent/me', { cookie: s.cookie }), 401, 'unauthorized', "Bo's sessions after the admin's reset");
    await agentLogin(srv, BO.email, 'set by the admin for bo');
    // Her own, though, takes her current one.
    assertError(await change(srv, ana, anaId, { password: 'ana has a new password' }), 422, 'invalid', "Ana's own without the current one");

    // A stolen session is no way to guess the password behind it: failures count as failed logins.
    const boNow = await agentLogin(srv, BO.email, 'set by the admin for bo');
    let limited = null;
    for (let i = 0; i < 8 && !limited; i++) {
      r = await change(srv, boNow, boId, { password: 'guessing goes on', current_password: `guess ${i}` });
      if (r.status === 429) limited = i;
      else assertError(r, 403, 'forbidden', `guess ${i}`);
    }
    assert.equal(limited, 5, 'the sixth guess is refused, as a sixth failed login would be');
    assert.ok(Number(r.headers['retry-after']) > 0, 'with Retry-After');
  }));
