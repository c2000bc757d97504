'use strict';
// identity.test.js: verified visitors (docs/IDENTITY.md). The site secret from `kefu site-secret`
// is the one the console shows its admin; the Python and Node signing snippets of the docs,
// run as they are written, produce signatures kefu accepts; one user on two devices is one
// visitor with one history, and a reply reaches both live; forged, stale, replayed and malformed
// identities are refused with their codes and change nothing; with --require-verified an
// unverified visitor is refused, old tokens too. In the browser: the admin copies the secret from
// Settings, the agent sees "Verified" in the visitor panel, and a site's page identifies its
// user through the widget.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, agentSend, assertError, KEFU_BIN, DEFAULT_AGENTS, eventually } = require('./harness');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const DOC = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'IDENTITY.md'), 'utf8');
const snippet = (lang) => {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(DOC);
  assert.ok(m, `a ${lang} snippet in docs/IDENTITY.md`);
  return m[1];
};

// The documented Python function, run by python3 as written.
function signWithPython(secret, userId, email, name) {
  const code = snippet('python') + '\nimport json, sys\nprint(json.dumps(kefu_identity(*sys.argv[1:5])))\n';
  const r = spawnSync('python3', ['-c', code, secret, userId, email, name], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `python3: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// The documented Node function, as written.
function signWithNode(secret, userId, email, name) {
  const kefuIdentity = new Function('require', snippet('js') + '\nreturn kefuIdentity;')(require);
  return kefuIdentity(secret, userId, email, name);
}

// The test's own signer, for identities the snippets would not make (stale ones).
function sign(secret, userId, email, ts, nonce = crypto.randomBytes(12).toString('hex')) {
  const sig = crypto.createHmac('sha256', secret).update(`${userId}\n${email}\n${ts}\n${nonce}`).digest('hex');
  return { user_id: userId, email, name: '', ts, nonce, sig };
}

function siteSecret(dataDir) {
  const r = spawnSync(KEFU_BIN, ['site-secret', '--data', dataDir], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `kefu site-secret: ${r.stderr}`);
  const secret = r.stdout.trim();
  assert.match(secret, /^[0-9a-f]{64}$/);
  return secret;
}

const now = () => Math.floor(Date.now() / 1000);

test('verified identity over the API: the docs\' snippets, two devices, forged, stale, replayed and malformed', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const secret = siteSecret(srv.dataDir);
    assert.equal(siteSecret(srv.dataDir), secret, 'the same secret every time');
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    let r = await srv.api('GET', '/api/settings/site-secret', { cookie: ana.cookie });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { site_secret: secret, require_verified: false });
    assertError(await srv.api('GET', '/api/settings/site-secret', { cookie: bo.cookie }), 403, 'forbidden', 'an agent');

    // Device 1: Python signs.
    const laptop = await srv.api('POST', '/api/visitor/session', { body: signWithPython(secret, 'user-42', 'li@example.com', 'Li Na') });
    assert.equal(laptop.status, 201, laptop.text);
    const li = laptop.json.visitor;
    assert.deepEqual(li, { id: li.id, name: 'Li Na', email: 'li@example.com', verified: true, user_id: 'user-42' });
    const m1 = await visitorSend(srv, laptop.json.token, 'Hello from my laptop');

    // Device 2: Node signs; the same visitor, the same history, the same conversation.
    const phone = await srv.api('POST', '/api/visitor/session', { body: signWithNode(secret, 'user-42', 'li@example.com', '') });
    assert.equal(phone.status, 201, phone.text);
    assert.notEqual(phone.json.token, laptop.json.token);
    assert.equal(phone.json.visitor.id, li.id);
    assert.equal(phone.json.visitor.name, 'Li Na', 'a sign-in without a name keeps it');
    r = await srv.api('GET', '/api/visitor/session', { token: phone.json.token });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.visitor.verified, true);
    assert.equal(r.json.conversation.id, m1.conversation_id);
    r = await srv.api('GET', '/api/visitor/messages?after=0', { token: phone.json.token });
    assert.deepEqual(r.json.messages.map((m) => m.body), ['Hello from my laptop']);
    const m2 = await visitorSend(srv, phone.json.token, 'and now from my phone');
    assert.equal(m2.conversation_id, m1.conversation_id);

    // A reply reaches both devices live.
    const held = [laptop, phone].map((d) => srv.api('GET', `/push/longpoll?after=${m2.id}&timeout=10`, { token: d.json.token }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const reply = await agentSend(srv, ana, m1.conversation_id, 'Hi Li, seen on both');
    for (const h of await Promise.all(held)) {
      assert.equal(h.status, 200, h.text);
      assert.ok(h.json.events.some((e) => e.message && e.message.id === reply.id), `the reply in ${h.text}`);
    }

    // The agent sees who it is.
    r = await srv.api('GET', `/api/conversations/${m1.conversation_id}/visitor`, { cookie: ana.cookie });
    assert.equal(r.json.visitor.verified, true);
    assert.equal(r.json.visitor.user_id, 'user-42');
    // An anonymous visitor is not verified.
    const anon = await newVisitor(srv, 'Anon');
    assert.equal(anon.visitor.verified, false);

    // Refused: each with its code, and no new session.
    const fresh = () => sign(secret, 'user-42', 'li@example.com', now());
    const forged = fresh();
    forged.sig = forged.sig.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    assertError(await srv.api('POST', '/api/visitor/session', { body: forged }), 401, 'bad_signature', 'a forged signature');
    const otherUser = fresh();
    otherUser.user_id = 'user-1';
    assertError(await srv.api('POST', '/api/visitor/session', { body: otherUser }), 401, 'bad_signature', 'another user id');
    assertError(await srv.api('POST', '/api/visitor/session', { body: sign('0'.repeat(64), 'user-42', '', now()) }), 401, 'bad_signature', 'the wrong secret');
    assertError(await srv.api('POST', '/api/visitor/session', { body: sign(secret, 'user-42', 'li@example.com', now() - 301) }), 401, 'stale_signature', 'ts 301 s ago');
    assertError(await srv.api('POST', '/api/visitor/session', { body: sign(secret, 'user-42', 'li@example.com', now() + 400) }), 401, 'stale_signature', 'ts from the future');
    const once = fresh();
    assert.equal((await srv.api('POST', '/api/visitor/session', { body: once })).status, 201);
    assertError(await srv.api('POST', '/api/visitor/session', { body: once }), 401, 'replayed', 'the same body again');
    for (const [body, what] of [
      [{ ...fresh(), ts: String(now()) }, 'ts as a string'],
      [{ ...fresh(), ts: undefined }, 'no ts'],
      [{ ...fresh(), user_id: '' }, 'an empty user id'],
      [{ ...fresh(), user_id: 'a\nb' }, 'a line break in the user id'],
      [{ ...fresh(), user_id: 'u'.repeat(256) }, 'a user id too long'],
      [{ ...fresh(), nonce: 'short' }, 'a nonce too short'],
      [{ ...fresh(), nonce: 42 }, 'a number as the nonce'],
      [{ ...fresh(), sig: undefined }, 'no signature'],
      [{ ...fresh(), email: 'x'.repeat(255) }, 'an e-mail too long'],
    ]) {
      assertError(await srv.api('POST', '/api/visitor/session', { body }), 400, 'bad_request', what);
    }
    assertError(await srv.api('POST', '/api/visitor/session', { body: { ...fresh(), name: 'n'.repeat(81) } }), 422, 'invalid', 'a name too long');
    r = await srv.api('GET', '/api/visitor/messages?after=0', { token: laptop.json.token });
    assert.deepEqual(r.json.messages.map((m) => m.body), ['Hello from my laptop', 'and now from my phone', 'Hi Li, seen on both']);

    // A restart remembers the nonces: a replay within the window is still refused.
    await srv.restart();
    assertError(await srv.api('POST', '/api/visitor/session', { body: once }), 401, 'replayed', 'the same body after a restart');
    assert.equal(siteSecret(srv.dataDir), secret, 'the secret survives the restart');
  }),
);

test('--require-verified refuses unverified visitors, and tokens from before', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const secret = siteSecret(srv.dataDir);
    const before = await newVisitor(srv, 'Before');
    const verified = (await srv.api('POST', '/api/visitor/session', { body: sign(secret, 'u-1', '', now()) })).json;
    srv.extraArgs = [...srv.extraArgs, '--require-verified'];
    await srv.restart();
    assertError(await srv.api('POST', '/api/visitor/session', { body: {} }), 401, 'verification_required', 'an anonymous session');
    assertError(await srv.api('POST', '/api/visitor/session', { body: { name: 'Anon' } }), 401, 'verification_required', 'a named one');
    assertError(await srv.api('GET', '/api/visitor/session', { token: before.token }), 401, 'verification_required', 'a token from before');
    assertError(await srv.api('POST', '/api/visitor/messages', { token: before.token, body: { body: 'hi' } }), 401, 'verification_required', 'a message with it');
    assertError(await srv.api('POST', '/api/visitor/session', { body: sign('f'.repeat(64), 'u-1', '', now()) }), 401, 'bad_signature', 'a forgery');
    let r = await srv.api('GET', '/api/visitor/session', { token: verified.token });
    assert.equal(r.status, 200, r.text);
    r = await srv.api('POST', '/api/visitor/session', { body: sign(secret, 'u-2', 'u2@example.com', now()) });
    assert.equal(r.status, 201, r.text);
    await visitorSend(srv, r.json.token, 'verified and welcome');
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    r = await srv.api('GET', '/api/settings/site-secret', { cookie: ana.cookie });
    assert.equal(r.json.require_verified, true);
  }),
);
