'use strict';
// access.test.js: what the route table's access levels (docs/API.md, "Access") mean to clients:
// an admin creates agents and an agent may not; a push ticket dies with its agent's logout; the
// conversation list reaches every conversation page by page; password checks run off the loop, so
// a storm of failed logins from many addresses does not stall anyone else; idempotent sends over
// HTTP and WebSocket store one message however often they are repeated.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const {
  scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, sleep, eventually, DEFAULT_AGENTS, RAISED_LIMITS,
} = require('./harness');
const { RawWs } = require('./wsraw');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0]; // admin
const BO = DEFAULT_AGENTS[1]; // agent

test('access: an admin creates agents (201, who can then log in); an agent gets 403, nobody 401, a missing CSRF token 403; duplicates 409, bad fields 422', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const body = { email: 'Cy@Example.com', name: '  Cy  ', role: 'agent', password: 'cy has a long password' };

    assertError(await srv.api('POST', '/api/agents', { body }), 401, 'unauthorized', 'nobody');
    assertError(await srv.api('POST', '/api/agents', { cookie: ana.cookie, body }), 403, 'csrf', 'no CSRF token');
    assertError(await srv.api('POST', '/api/agents', { cookie: bo.cookie, csrf: bo.csrf, body }), 403, 'forbidden', 'an agent');
    const v = await newVisitor(srv);
    assertError(await srv.api('POST', '/api/agents', { token: v.token, body }), 401, 'unauthorized', 'a visitor');

    const r = await srv.api('POST', '/api/agents', { cookie: ana.cookie, csrf: ana.csrf, body });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual({ ...r.json.agent, id: 0, created_at: 0 }, { id: 0, email: 'cy@example.com', name: 'Cy', role: 'agent', created_at: 0, disabled: false, capacity: 0, open_conversations: 0 });
    assert.ok(Math.abs(r.json.agent.created_at - Date.now()) < 60000, `created_at ${r.json.agent.created_at}`);
    const cy = await agentLogin(srv, 'cy@example.com', body.password);
    assert.equal(cy.agent.id, r.json.agent.id, 'the new agent logs in');
    assertError(await srv.api('POST', '/api/agents', { cookie: cy.cookie, csrf: cy.csrf, body: { ...body, email: 'dee@example.com' } }), 403, 'forbidden', 'the new agent is no admin');

    assertError(await srv.api('POST', '/api/agents', { cookie: ana.cookie, csrf: ana.csrf, body: { ...body, email: 'CY@example.com' } }), 409, 'conflict', 'the e-mail is taken');
    const bad = [
      [{ ...body, email: 'nobody' }, 'email'],
      [{ ...body, email: 'x@y.z', role: 'owner' }, 'role'],
      [{ ...body, email: 'x@y.z', password: 'short' }, 'password'],
      [{ ...body, email: 'x@y.z', name: 'n'.repeat(81) }, 'name'],
      [{ ...body, email: 'x@y.z', name: 42 }, 'name'],
    ];
    for (const [b, field] of bad) {
      const e = await srv.api('POST', '/api/agents', { cookie: ana.cookie, csrf: ana.csrf, body: b });
      assertError(e, 422, 'invalid', JSON.stringify(b));
      assert.match(e.json.error.message, new RegExp(field), `the message names ${field}`);
    }
    const admin = await srv.api('POST', '/api/agents', { cookie: ana.cookie, csrf: ana.csrf, body: { email: 'eve@example.com', name: 'Eve', role: 'admin', password: 'eve has a long password' } });
    assert.equal(admin.status, 201, admin.text);
    const eve = await agentLogin(srv, 'eve@example.com', 'eve has a long password');
    assert.equal(eve.agent.role, 'admin');
    const byEve = await srv.api('POST', '/api/agents', { cookie: eve.cookie, csrf: eve.csrf, body: { email: 'fay@example.com', name: 'Fay', password: 'fay has a long password' } });
    assert.equal(byEve.status, 201, 'a new admin is one');
    assert.equal(byEve.json.agent.role, 'agent', 'role defaults to agent');
  }));

test('access: a push ticket fetched before its agent logs out opens nothing after; a ticket of a new session does', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const before = await srv.api('POST', '/api/agent/push-ticket', { cookie: ana.cookie, csrf: ana.csrf });
    assert.equal(before.status, 201, before.text);
    const ticket = encodeURIComponent(before.json.ticket);
    assert.equal((await srv.api('GET', `/push/poll?after=0&ticket=${ticket}`)).status, 200, 'the ticket works while logged in');
    const out = await srv.api('POST', '/api/agent/logout', { cookie: ana.cookie, csrf: ana.csrf });
    assert.equal(out.status, 200, out.text);
    for (const transport of ['poll', 'longpoll', 'sse', 'iframe']) {
      assertError(await srv.api('GET', `/push/${transport}?after=0&ticket=${ticket}`), 401, 'unauthorized', `${transport} with a revoked ticket`);
    }
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=0&ticket=${ticket}`, expectFirstFrame: false }).catch((e) => e);
    assert.ok(ws instanceof Error || ws.status === 401, 'no WebSocket with a revoked ticket');
    // A visitor's tickets are untouched by an agent's logout.
    const v = await newVisitor(srv);
    const vt = (await srv.api('POST', '/api/visitor/push-ticket', { token: v.token })).json.ticket;
    assert.equal((await srv.api('GET', `/push/poll?after=0&ticket=${encodeURIComponent(vt)}`)).status, 200);
    await sleep(5); // a new ticket is signed after the revocation's millisecond
    const again = await agentLogin(srv, ANA.email, ANA.password);
    const fresh = await srv.api('POST', '/api/agent/push-ticket', { cookie: again.cookie, csrf: again.csrf });
    assert.equal((await srv.api('GET', `/push/poll?after=0&ticket=${encodeURIComponent(fresh.json.ticket)}`)).status, 200, 'a new session\'s ticket works');
  }));

test('access: the conversation list pages with limit and before, and every conversation is on exactly one page, newest activity first', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const ids = [];
    for (let i = 0; i < 7; i++) {
      const v = await newVisitor(srv, `V${i}`);
      ids.push((await visitorSend(srv, v.token, `hello ${i}`)).conversation_id);
      await sleep(2); // distinct activity times
    }
    const whole = await srv.api('GET', '/api/conversations', { cookie: ana.cookie });
    assert.equal(whole.status, 200);
    assert.equal(whole.json.next, null, 'one page holds them all by default');
    assert.deepEqual(whole.json.conversations.map((c) => c.id), [...ids].reverse());
    const seen = [];
    let next = null;
    let pages = 0;
    do {
      const r = await srv.api('GET', `/api/conversations?limit=3${next ? `&before=${next}` : ''}`, { cookie: ana.cookie });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.conversations.length <= 3);
      seen.push(...r.json.conversations.map((c) => c.id));
      next = r.json.next;
      pages++;
    } while (next !== null && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse(), 'each conversation once, in order');
    for (const q of ['limit=0', 'limit=501', 'limit=x', 'before=12', 'before=x.y', 'before=1.0', 'before=.5']) {
      assertError(await srv.api('GET', `/api/conversations?${q}`, { cookie: ana.cookie }), 400, 'bad_request', q);
    }
  }));

// A login from a source address of its own (127.0.0.x: the whole /8 is loopback).
function loginFrom(srv, address, password) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ email: ANA.email, password });
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: '/api/agent/login', method: 'POST', localAddress: address, agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('access: 40 wrong-password logins from 40 addresses at once do not stall other requests (password checks run off the loop)', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const storm = [];
    for (let i = 0; i < 40; i++) storm.push(loginFrom(srv, `127.0.0.${10 + i}`, `wrong password ${i}`));
    const waits = [];
    let done = false;
    Promise.all(storm).then(() => (done = true));
    while (!done) {
      const t0 = Date.now();
      const r = await srv.api('GET', '/healthz');
      waits.push(Date.now() - t0);
      assert.equal(r.status, 200);
    }
    const statuses = await Promise.all(storm);
    assert.deepEqual([...new Set(statuses)], [401], `every login refused for its password: ${statuses}`);
    const worst = Math.max(...waits);
    t.diagnostic(`${waits.length} health checks during the storm; the slowest took ${worst} ms`);
    // Before, each scrypt ran on the loop: every other request waited for all of them (4-5 s).
    assert.ok(worst < 1500, `no request waited for the hashes: ${worst} ms`);
    assert.ok(waits.length >= 3, 'the storm lasted long enough to measure');
  }));

test('access: an Idempotency-Key (HTTP) or key (WebSocket) stores a message once however often it is sent; another body under the key is 422', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv);
    const first = await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'once' }, headers: { 'Idempotency-Key': 'k-1' } });
    assert.equal(first.status, 201, first.text);
    const held = srv.api('GET', `/push/longpoll?after=${first.json.message.id}&timeout=3`, { cookie: ana.cookie });
    const repeat = await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'once' }, headers: { 'Idempotency-Key': '"k-1"' } });
    assert.equal(repeat.status, 200, repeat.text);
    assert.deepEqual(repeat.json.message, first.json.message, 'the message stored the first time');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'other' }, headers: { 'Idempotency-Key': 'k-1' } }), 422, 'invalid', 'another body under the key');
    for (const key of ['', 'a b', 'é', 'x'.repeat(256)]) {
      assertError(await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'x' }, headers: { 'Idempotency-Key': key } }), 400, 'bad_request', `key ${JSON.stringify(key)}`);
    }
    // Nothing new: no message, and no conversation state but the first send's (with several
    // loops, the first send's conversation event may reach this poll's loop after it began).
    const news = (await held).json.events.filter((e) => e.type !== 'conversation' || e.conversation.last_message.id !== first.json.message.id);
    assert.deepEqual(news, [], 'nothing new was pushed');
    // Keys are per sender: the agent may use the same one.
    const conv = first.json.message.conversation_id;
    const a1 = await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: { body: 'reply' }, headers: { 'Idempotency-Key': 'k-1' } });
    const a2 = await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: { body: 'reply' }, headers: { 'Idempotency-Key': 'k-1' } });
    assert.deepEqual([a1.status, a2.status], [201, 200]);
    assert.equal(a1.json.message.id, a2.json.message.id);

    // Over a WebSocket: the same key acks the same message; the stream carries it once.
    const tk = (await srv.api('POST', '/api/visitor/push-ticket', { token: v.token })).json.ticket;
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${a1.json.message.id}&ticket=${encodeURIComponent(tk)}` });
    const acks = [];
    const messages = [];
    for (let i = 0; i < 3; i++) {
      await ws.text(JSON.stringify({ type: 'send', ref: `r${i}`, body: 'over the socket', key: 'w-1' }));
      for (;;) {
        const j = await ws.json(5000, 'the ack');
        if (j.type === 'message') messages.push(j.message.id);
        if (j.type === 'ack') {
          acks.push(j.message.id);
          break;
        }
      }
    }
    await ws.text(JSON.stringify({ type: 'send', ref: 'bad', body: 'changed', key: 'w-1' }));
    let err;
    do err = await ws.json(5000, 'the error'); while (err.type !== 'error');
    assert.equal(err.error.code, 'invalid');
    await ws.text(JSON.stringify({ type: 'send', ref: 'bad2', body: 'x', key: 'has space' }));
    do err = await ws.json(5000, 'the error'); while (err.type !== 'error');
    assert.equal(err.error.code, 'invalid');
    ws.destroy();
    assert.equal(new Set(acks).size, 1, `one message acked three times: ${acks}`);
    await eventually(async () => {
      const all = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
      assert.deepEqual(all.json.messages.map((m) => m.body), ['once', 'reply', 'over the socket']);
      return true;
    });
    assert.ok(messages.length <= 1, `pushed once at most: ${messages}`);
  }));
