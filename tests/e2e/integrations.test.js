'use strict';
// integrations.test.js: API tokens and outgoing webhooks (docs/API.md, "API tokens" and
// "Webhooks"; docs/UI-CONTRACT.md). Over the API: an admin makes tokens of each scope, each works
// with Authorization: Bearer alone (no cookie, no CSRF token) as far as its scope goes and no
// further (403), a revoked one gets 401 at once, an agent may not make them (403), and visitor
// and API tokens never stand in for each other. A webhook receiver in this test gets a
// message.created signed as documented when a visitor writes, and its attempts show in the
// delivery log. In the console: Ana makes a token in Settings, uses it with fetch, revokes it, and
// adds a webhook.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// A webhook receiver: every request's headers and body, answered with the statuses given in turn
// (then 200).
function receiver(statuses = []) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statuses.length ? statuses.shift() : 200);
      res.end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, url: `http://127.0.0.1:${server.address().port}/hook` })));
}

// What a receiver does with X-Kefu-Signature (the snippet in docs/API.md).
function verify(secret, headers, body) {
  const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(`${headers['x-kefu-timestamp']}.${body}`).digest('hex');
  const given = headers['x-kefu-signature'] || '';
  return given.length === expected.length && crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

test('API tokens: scopes, Bearer without cookie or CSRF, revocation at once, admins only, never a visitor token', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const A = (method, path, body) => srv.api(method, path, { cookie: ana.cookie, csrf: ana.csrf, body });
    const B = (method, path, body) => srv.api(method, path, { cookie: bo.cookie, csrf: bo.csrf, body });

    const made = {};
    for (const scope of ['read', 'write', 'admin']) {
      const r = await A('POST', '/api/tokens', { name: `ci ${scope}`, scope });
      assert.equal(r.status, 201, r.text);
      assert.match(r.json.token.token, /^kfat_[A-Za-z0-9_-]{40,}$/, 'the secret, shown once');
      assert.equal(r.json.token.scope, scope);
      assert.equal(r.json.token.last_used_at, null);
      made[scope] = r.json.token;
    }
    let r = await A('GET', '/api/tokens');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.tokens.map((x) => x.name), ['ci read', 'ci write', 'ci admin']);
    assert.ok(!r.text.includes('kfat_'), 'the list holds no secret');

    // Bad input, and an agent.
    assertError(await A('POST', '/api/tokens', { name: 'x', scope: 'root' }), 422, 'invalid', 'an unknown scope');
    assertError(await A('POST', '/api/tokens', { name: '  ', scope: 'read' }), 422, 'invalid', 'an empty name');
    assertError(await A('POST', '/api/tokens', { name: 'x', scope: 'read', expires: 1 }), 400, 'bad_request', 'an unknown field');
    assertError(await B('POST', '/api/tokens', { name: 'mine', scope: 'read' }), 403, 'forbidden', 'an agent making a token');
    assertError(await B('GET', '/api/tokens'), 403, 'forbidden', 'an agent listing tokens');
    assertError(await A('DELETE', '/api/tokens/999'), 404, 'not_found', 'an unknown token');

    // Each scope, with the token alone.
    const as = (token) => (method, path, body) => srv.api(method, path, { token, body });
    const R = as(made.read.token);
    const W = as(made.write.token);
    const X = as(made.admin.token);
    const { token: visitorToken } = await newVisitor(srv, 'Vera');
    const first = await visitorSend(srv, visitorToken, 'hello from Vera');
    r = await R('GET', '/api/conversations');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversations.length, 1);
    assertError(await R('POST', `/api/conversations/${first.conversation_id}/messages`, { body: 'no' }), 403, 'forbidden', 'a read token writing');
    r = await W('POST', `/api/conversations/${first.conversation_id}/messages`, { body: 'from a script' });
    assert.equal(r.status, 201, `a write token sends without a CSRF token: ${r.text}`);
    assert.equal(r.json.message.agent_name, 'Ana', 'it speaks for the admin who made it');
    assertError(await W('GET', '/api/tokens'), 403, 'forbidden', 'a write token on an admin route');
    assertError(await R('GET', '/api/webhooks'), 403, 'forbidden', 'a read token on an admin GET');
    r = await X('GET', '/api/tokens');
    assert.equal(r.status, 200, 'an admin token on an admin route');
    r = await A('GET', '/api/tokens');
    assert.ok(r.json.tokens.find((x) => x.scope === 'read').last_used_at > 0, 'last used is kept');

    // Never each other's: a visitor token on an agent route, an API token on a visitor route.
    assertError(await as(visitorToken)('GET', '/api/conversations'), 401, 'unauthorized', 'a visitor token as an API token');
    assertError(await srv.api('GET', '/api/visitor/messages', { token: made.admin.token }), 401, 'unauthorized', 'an API token as a visitor token');
    // A bearer that is no token is not taken for the session cookie beside it either.
    assertError(await srv.api('GET', '/api/conversations', { token: 'kfat_nope', cookie: ana.cookie }), 401, 'unauthorized', 'an unknown bearer');

    // Revoked: 401 on the very next request.
    r = await A('DELETE', `/api/tokens/${made.write.id}`);
    assert.equal(r.status, 200, r.text);
    r = await W('GET', '/api/conversations');
    assertError(r, 401, 'unauthorized', 'a revoked token');
    assert.match(r.json.error.message, /revoked/);
    r = await A('GET', '/api/tokens');
    assert.deepEqual(r.json.tokens.map((x) => x.name), ['ci read', 'ci admin']);
  }));

test('webhooks: a signed message.created reaches a receiver, a 500 is retried, the log shows both, a private address is refused without the flag', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const rcv = await receiver([500]);
    env.closers.push(() => new Promise((resolve) => rcv.server.close(resolve)));
    const srv = await env.server({ args: ['--webhooks-allow-private'] });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const A = (method, path, body) => srv.api(method, path, { cookie: ana.cookie, csrf: ana.csrf, body });

    assertError(await A('POST', '/api/webhooks', { url: 'ftp://example.com/', events: ['message.created'] }), 422, 'invalid', 'not http');
    assertError(await A('POST', '/api/webhooks', { url: rcv.url, events: ['message.sent'] }), 422, 'invalid', 'an unknown event');
    assertError(await A('POST', '/api/webhooks', { url: rcv.url, events: [] }), 422, 'invalid', 'no event');
    assertError(await srv.api('POST', '/api/webhooks', { cookie: bo.cookie, csrf: bo.csrf, body: { url: rcv.url, events: ['message.created'] } }), 403, 'forbidden', 'an agent');
    let r = await A('POST', '/api/webhooks', { url: rcv.url, events: ['message.created', 'conversation.created'] });
    assert.equal(r.status, 201, r.text);
    const hook = r.json.webhook;
    assert.deepEqual(hook.events, ['message.created', 'conversation.created']);
    assert.match(hook.secret, /^[0-9a-f]{64}$/);

    const { token } = await newVisitor(srv, 'Vera');
    const sent = await visitorSend(srv, token, 'a question for the hook');
    // The first message.created is answered 500, then retried (the retry's wait starts at 30 s in
    // production; the first retry of this test's is due within that, so wait for both).
    await eventually(() => rcv.got.filter((g) => g.headers['x-kefu-event'] === 'message.created').length >= 1, { timeout: 15000, what: 'a first delivery' });
    const deliveries = rcv.got.filter((g) => g.headers['x-kefu-event'] === 'message.created');
    const d = deliveries[0];
    assert.ok(verify(hook.secret, d.headers, d.body), 'the signature verifies with the secret');
    assert.ok(!verify('another secret', d.headers, d.body), 'and not with another');
    assert.ok(Math.abs(Number(d.headers['x-kefu-timestamp']) - Date.now() / 1000) < 60, 'the timestamp is now, in seconds');
    const payload = JSON.parse(d.body);
    assert.equal(payload.event, 'message.created');
    assert.ok(payload.created_at > 0);
    assert.equal(payload.data.message.id, sent.id);
    assert.equal(payload.data.message.body, 'a question for the hook');
    await eventually(() => rcv.got.some((g) => g.headers['x-kefu-event'] === 'conversation.created'), { timeout: 15000, what: 'conversation.created' });

    // The log: the 500, and the conversation.created that went.
    await eventually(async () => {
      const log = await A('GET', `/api/webhooks/${hook.id}/deliveries`);
      return log.json.deliveries.some((x) => x.status === 500 && x.outcome === 'retrying' && x.next_at > x.at) &&
        log.json.deliveries.some((x) => x.status === 200 && x.outcome === 'delivered');
    }, { what: 'the delivery log' });

    r = await A('DELETE', `/api/webhooks/${hook.id}`);
    assert.equal(r.status, 200);
    assertError(await A('DELETE', `/api/webhooks/${hook.id}`), 404, 'not_found', 'deleted already');
  }));

test('webhooks: a loopback address is refused without --webhooks-allow-private, and logged', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const rcv = await receiver();
    env.closers.push(() => new Promise((resolve) => rcv.server.close(resolve)));
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const A = (method, path, body) => srv.api(method, path, { cookie: ana.cookie, csrf: ana.csrf, body });
    // A name that resolves to loopback is refused as the address is, after DNS.
    const url = rcv.url.replace('127.0.0.1', 'localhost');
    const r = await A('POST', '/api/webhooks', { url, events: ['message.created'] });
    assert.equal(r.status, 201, r.text);
    const { token } = await newVisitor(srv, 'Vera');
    await visitorSend(srv, token, 'hello');
    await eventually(async () => {
      const log = await A('GET', `/api/webhooks/${r.json.webhook.id}/deliveries`);
      return log.json.deliveries.some((x) => x.status === null && /private, loopback or link-local/.test(x.error));
    }, { what: 'a refused attempt in the log' });
    assert.equal(rcv.got.length, 0, 'the receiver heard nothing');
  }));

test('console: an admin makes a token in Settings, a script uses it, revoking it shows in a second console at once and the script gets 401; a webhook is added with its log', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const rcv = await receiver();
    env.closers.push(() => new Promise((resolve) => rcv.server.close(resolve)));
    const srv = await env.server({ args: ['--webhooks-allow-private'] });
    const ana = await openAgent(env, srv, 'sse');
    const other = await openAgent(env, srv, 'ws'); // Ana's second console, over another transport
    const page = ana.page;
    await page.setViewportSize({ width: 1280, height: 800 });
    for (const p of [page, other.page]) await p.getByRole('button', { name: 'Settings', exact: true }).click();
    await other.page.getByText('No API tokens yet.').waitFor({ timeout: T });

    await page.getByLabel('Token name').fill('Nightly export');
    await page.getByLabel('Scope').selectOption('read');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secretField = page.getByLabel('Your new token: copy it now, it is not shown again');
    await secretField.waitFor({ timeout: T });
    const secret = await secretField.inputValue();
    assert.match(secret, /^kfat_/);
    await page.locator('#token-list', { hasText: 'Nightly export' }).waitFor({ timeout: T });
    assert.match(await page.locator('#token-list li').first().textContent(), /Read.*last used never/s);
    // The other console shows it without a reload.
    await other.page.locator('#token-list', { hasText: 'Nightly export' }).waitFor({ timeout: T });

    // A script (fetch without the browser's cookie) reads with it, and may not write.
    const asScript = (method, p) => page.evaluate(async ([m, u, token]) => {
      const r = await fetch(u, { method: m, credentials: 'omit', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: m === 'GET' ? undefined : '{}' });
      return r.status;
    }, [method, p, secret]);
    assert.equal(await asScript('GET', '/api/conversations'), 200);
    assert.equal(await asScript('POST', '/api/agent/status'), 403);
    // Its last use shows on the next look.
    await page.getByRole('button', { name: 'Settings', exact: true }).isVisible();
    await other.page.evaluate(() => document.getElementById('settings-close').click());
    await other.page.getByRole('button', { name: 'Settings', exact: true }).click();
    await other.page.waitForFunction(() => !/last used never/.test(document.getElementById('token-list').textContent), null, { timeout: T });

    // A webhook, with its events.
    await page.getByLabel('Receiver URL').fill(rcv.url);
    await page.getByLabel('conversation.created').check();
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.locator('#webhook-list', { hasText: rcv.url }).waitFor({ timeout: T });
    await other.page.locator('#webhook-list', { hasText: rcv.url }).waitFor({ timeout: T });
    const { token } = await newVisitor(srv, 'Vera');
    await visitorSend(srv, token, 'hello, hook');
    await eventually(() => rcv.got.length >= 2, { timeout: T, what: 'two deliveries' });
    await page.getByRole('button', { name: `Delivery log of ${rcv.url}` }).click();
    await page.locator('.webhook-log', { hasText: 'Delivered (HTTP 200)' }).first().waitFor({ timeout: T });
    await screenshot(page, 'integrations-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'integrations-phone');
    await page.locator('#webhook-list').scrollIntoViewIfNeeded();
    await screenshot(page, 'integrations-phone-webhooks');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Revoked: gone from both consoles, and the script's next request is refused.
    await page.getByRole('button', { name: 'Revoke token Nightly export' }).click();
    await page.getByRole('button', { name: 'Click again to revoke token Nightly export' }).click();
    await page.getByText('No API tokens yet.').waitFor({ timeout: T });
    await other.page.getByText('No API tokens yet.').waitFor({ timeout: T });
    assert.equal(await asScript('GET', '/api/conversations'), 401);
    assert.deepEqual(ana.dialogs, [], 'no browser dialogs');
    assertNoPageProblems(ana, other);
  }));

test('webhooks: every event of a conversation, with its data, to a webhook that takes them all (not a private note), and nothing to a deleted one', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const all = await receiver();
    const other = await receiver();
    env.closers.push(() => new Promise((resolve) => all.server.close(resolve)));
    env.closers.push(() => new Promise((resolve) => other.server.close(resolve)));
    const srv = await env.server({ args: ['--webhooks-allow-private'] });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const A = (method, path, body) => srv.api(method, path, { cookie: ana.cookie, csrf: ana.csrf, body });
    const events = ['message.created', 'conversation.created', 'conversation.assigned', 'conversation.resolved', 'rating.created'];
    assert.equal((await A('POST', '/api/webhooks', { url: all.url, events })).status, 201);
    assert.equal((await A('POST', '/api/webhooks', { url: other.url, events: ['rating.created'] })).status, 201);
    assert.equal((await A('DELETE', `/api/webhooks/${(await A('GET', '/api/webhooks')).json.webhooks[1].id}`)).status, 200);

    const { token } = await newVisitor(srv, 'Vera');
    const m = await visitorSend(srv, token, 'help please');
    const conv = m.conversation_id;
    assert.equal((await A('POST', `/api/conversations/${conv}/claim`)).status, 200);
    assert.equal((await A('POST', `/api/conversations/${conv}/messages`, { body: 'a private word', private: true })).status, 201);
    assert.equal((await A('POST', `/api/conversations/${conv}/messages`, { body: 'done!' })).status, 201);
    assert.equal((await A('POST', `/api/conversations/${conv}/status`, { status: 'resolved' })).status, 200);
    assert.equal((await srv.api('POST', '/api/visitor/rating', { token, body: { rating: 'good', comment: 'quick' } })).status, 200);

    const of = (event) => all.got.filter((g) => g.headers['x-kefu-event'] === event).map((g) => JSON.parse(g.body));
    await eventually(() => events.every((e) => of(e).length > 0) && of('message.created').length === 2, { timeout: 15000, what: 'every event' });
    assert.deepEqual(of('message.created').map((p) => p.data.message.body).sort(), ['done!', 'help please'], 'not the private note');
    assert.equal(of('conversation.created')[0].data.conversation.id, conv);
    assert.equal(of('conversation.assigned')[0].data.conversation.assignee.name, 'Ana');
    assert.equal(of('conversation.resolved')[0].data.conversation.status, 'resolved');
    const rating = of('rating.created')[0].data;
    assert.deepEqual([rating.conversation_id, rating.rating.rating, rating.rating.comment], [conv, 'good', 'quick']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(other.got.length, 0, 'a deleted webhook hears nothing');
  }));
