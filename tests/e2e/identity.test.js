'use strict';
// identity.test.js: verified visitors (docs/IDENTITY.md). The site secret from `kefu site-secret`
// is the one the console shows its admin; the Python and Node signing snippets of the docs,
// run as they are written, produce signatures kefu accepts; one user on two devices is one
// visitor with one history, and a reply reaches both live; forged, stale, replayed and malformed
// identities are refused with their codes and change nothing; with --require-verified an
// unverified visitor is refused, old tokens too. In the browser: the admin copies the secret from
// Settings, the agent sees "Verified" in the visitor panel, and a site's page identifies its
// user through the widget. `kefu site-secret` before the first start makes the secret the
// server then uses.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { spawnSync } = require('node:child_process');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, agentSend, assertError, heldLongPoll, KEFU_BIN, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, agentSay, waitConnected, trackDialogs } = require('./pages');

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
const T = 15000;

// A screenshot for a person to look at, when KEFU_SCREENSHOTS names a directory.
async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// A customer's site on another origin (http://localhost:PORT): each page load is signed in as
// user, signed by its server with the docs' Node snippet, handed to the widget by Kefu.identify.
async function signedSite(env, srv, secret, user) {
  const server = http.createServer((req, res) => {
    const identity = signWithNode(secret, user.user_id, user.email, user.name);
    const html = '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
      '<meta name="viewport" content="width=device-width, initial-scale=1"><title>My account – Shop</title></head><body>' +
      `<h1>Signed in as ${user.name}</h1><script>window.Kefu = {q: [['identify', ${JSON.stringify(identity)}]]};</script>` +
      `<script src="${srv.base}/widget.js" async></script></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://localhost:${server.address().port}/`;
}

// One device: a browser context on the site, the chat opened from the launcher.
async function device(env, url, label, viewport) {
  const ctx = await env.context(label);
  const p = await ctx.newPage();
  await p.setViewportSize(viewport);
  trackDialogs(p);
  await p.goto(url);
  await p.getByRole('button', { name: 'Open chat' }).click();
  const handle = await p.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T });
  const frame = await handle.contentFrame();
  await waitConnected(frame);
  return { page: p, frame };
}

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
    const held = (await Promise.all([laptop, phone].map((d) => heldLongPoll(srv, `/push/longpoll?after=${m2.id}&timeout=10`, { token: d.json.token })))).map((h) => h.result);
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
    // The signed e-mail stays: "Your details" may repeat it, not replace it.
    assertError(await srv.api('PATCH', '/api/visitor', { token: phone.json.token, body: { email: 'someone.else@example.com' } }), 403, 'verified_email', 'another e-mail');
    r = await srv.api('PATCH', '/api/visitor', { token: phone.json.token, body: { name: 'Li Na', email: 'li@example.com' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.visitor, { id: li.id, name: 'Li Na', email: 'li@example.com', verified: true, user_id: 'user-42' });
    r = await srv.api('PATCH', '/api/visitor', { token: phone.json.token, body: { email: 'li@example.com' } });
    assert.equal(r.status, 200, r.text);
    r = await srv.api('PATCH', '/api/visitor', { token: anon.token, body: { email: 'anon@example.com' } });
    assert.equal(r.status, 200, 'an unverified visitor changes theirs as before');
    // An agent may still correct it (the panel's edit): agents are trusted.
    r = await srv.api('GET', `/api/conversations/${m1.conversation_id}/visitor`, { cookie: ana.cookie });
    assert.equal(r.json.visitor.email, 'li@example.com');

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

test('kefu site-secret makes the secret before the first start, and the server signs with it', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ start: false });
    const secret = siteSecret(srv.dataDir);
    const bad = spawnSync(KEFU_BIN, ['site-secret', '--bogus'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /usage: kefu site-secret/);
    await srv.start();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const r = await srv.api('GET', '/api/settings/site-secret', { cookie: ana.cookie });
    assert.equal(r.json.site_secret, secret);
    const s = await srv.api('POST', '/api/visitor/session', { body: sign(secret, 'first', '', now()) });
    assert.equal(s.status, 201, s.text);
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

test('in the browser: the widget signs the site\'s user in on two devices with one history; the console shows Verified; the admin copies the secret', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const secret = siteSecret(srv.dataDir);
    const site = await signedSite(env, srv, secret, { user_id: 'user-7', email: 'mia@example.com', name: 'Mia Chen' });

    const laptop = await device(env, site, 'laptop', { width: 1280, height: 800 });
    await laptop.frame.fill('#message-input', 'Where is my order 1234?');
    await laptop.frame.press('#message-input', 'Enter');
    await waitMsg(laptop.frame, '#messages', 'Where is my order 1234?', 'visitor');

    // The phone is another browser: its first session is Mia's, with the laptop's history.
    const phone = await device(env, site, 'phone', { width: 390, height: 844 });
    await waitMsg(phone.frame, '#messages', 'Where is my order 1234?', 'visitor');

    // The agent sees a verified visitor, and the reply reaches both devices live.
    const ana = await openAgent(env, srv, 'sse', ANA);
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const conv = (await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations[0];
    assert.equal(conv.visitor.name, 'Mia Chen');
    await selectConv(ana, conv.id);
    const verified = ana.page.locator('#visitor-verified');
    await verified.waitFor({ state: 'visible', timeout: T });
    assert.equal(await verified.textContent(), 'Verified by your site · user user-7');
    assert.equal(await ana.page.locator('#visitor-email').textContent(), 'mia@example.com');
    await agentSay(ana, 'It ships tomorrow, Mia.');
    await waitMsg(laptop.frame, '#messages', 'It ships tomorrow, Mia.', 'agent');
    await waitMsg(phone.frame, '#messages', 'It ships tomorrow, Mia.', 'agent');
    await screenshot(ana.page, 'identity-panel-desktop');
    await screenshot(phone.page, 'identity-widget-phone');

    // A reload signs in again with a fresh signature and keeps the same session and history.
    await phone.page.reload(); // the chat was open: it opens again by itself
    const again = await (await phone.page.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T })).contentFrame();
    await waitMsg(again, '#messages', 'It ships tomorrow, Mia.', 'agent');
    const list = (await srv.api('GET', '/api/conversations', { cookie: agent.cookie })).json.conversations;
    assert.deepEqual(list.map((c) => c.id), [conv.id], 'one conversation for Mia, whatever the device');

    // A sign-in with a new name (a third device) shows at once in the open console: the panel
    // and the list.
    const renamed = sign(secret, 'user-7', 'mia@example.com', now());
    renamed.name = 'Mia Chen-Wu';
    assert.equal((await srv.api('POST', '/api/visitor/session', { body: renamed })).status, 201);
    await ana.page.waitForFunction(() => document.getElementById('visitor-name').textContent === 'Mia Chen-Wu', null, { timeout: T });
    await ana.page.locator('#conversation-list', { hasText: 'Mia Chen-Wu' }).waitFor({ timeout: T });

    // "Your details" in the widget shows the signed e-mail read-only.
    await laptop.frame.click('#details-toggle');
    await laptop.frame.waitForFunction(() => document.getElementById('details-email').readOnly === true, null, { timeout: T });
    assert.equal(await laptop.frame.inputValue('#details-email'), 'mia@example.com');

    // An anonymous visitor is not shown as verified.
    const anon = await newVisitor(srv, 'Someone');
    const m = await visitorSend(srv, anon.token, 'hello?');
    await selectConv(ana, m.conversation_id);
    await ana.page.waitForFunction(() => document.getElementById('visitor-name').textContent === 'Someone', null, { timeout: T });
    assert.equal(await verified.isHidden(), true);

    // The admin finds the secret in Settings and copies it.
    await ana.page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.base });
    await ana.page.getByRole('button', { name: 'Settings', exact: true }).click();
    const field = ana.page.getByLabel('Site secret');
    await ana.page.waitForFunction(() => document.getElementById('site-secret').value.length === 64, null, { timeout: T });
    assert.equal(await field.inputValue(), secret);
    assert.match(await ana.page.locator('#site-secret-mode').textContent(), /not signed in may chat too/);
    await ana.page.getByRole('button', { name: 'Copy', exact: true }).click();
    await ana.page.waitForFunction(() => document.getElementById('settings-status').textContent === 'The site secret is copied.', null, { timeout: T });
    assert.equal(await ana.page.evaluate(() => navigator.clipboard.readText()), secret);
    await screenshot(ana.page, 'identity-settings-desktop');
    await ana.page.setViewportSize({ width: 390, height: 844 });
    await screenshot(ana.page, 'identity-settings-phone');

    // An agent who is not an admin has no Settings, and the API refuses them the secret.
    const bo = await agentLogin(srv, BO.email, BO.password);
    assertError(await srv.api('GET', '/api/settings/site-secret', { cookie: bo.cookie }), 403, 'forbidden', 'Bo');
  }),
);
