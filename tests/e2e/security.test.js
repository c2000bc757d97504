'use strict';
// security.test.js: the threat model of docs/SECURITY.md, each control proven against a real kefu
// process — in a real browser where what matters is what a browser does (stored XSS, cross-site
// pages), with raw sockets where a client must misbehave, and with the sqlite3 command-line tool
// where the question is what sits in the database file. Controls already proven elsewhere
// (protocol.test.js, chat.test.js, conformance.test.js) are not repeated; docs/SECURITY.md maps
// every control to its test.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const {
  KEFU_BIN, Kefu, scenario, addAgent, raw, newVisitor, visitorSend, agentLogin, agentSend, assertError, sessionCookie,
  closeBrowser, eventually, sleep, heldLongPoll, DEFAULT_AGENTS, RAISED_LIMITS = [],
} = require('./harness');
const { RawWs } = require('./wsraw');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];
const BO = DEFAULT_AGENTS[1];
const T = 10000;
const EVIL = 'http://evil.example';
const DB_FILE = 'kefu.db'; // src/main.c: <data dir>/kefu.db

// ---------------------------------------------------------------------------------------------
// Helpers

// The route table as the server declares it (`kefu routes`: method, pattern, access, csrf), so
// that a route added later is covered (or fails the test that enumerates it) without anyone
// remembering this file.
function routeTable() {
  const r = spawnSync(KEFU_BIN, ['routes'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `kefu routes: ${r.stderr}`);
  const routes = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.ok(routes.length >= 20, `the route table: ${r.stdout}`);
  return routes;
}

// A server with extra command-line flags and the default agents.
async function serverWith(env, args, agents = DEFAULT_AGENTS) {
  const srv = new Kefu({ name: `kefu#${env.servers.length + 1}`, args });
  env.servers.push(srv);
  for (const a of agents) {
    const r = addAgent(srv.dataDir, a);
    assert.equal(r.status, 0, `kefu user add ${a.email}: ${r.stdout}${r.stderr}`);
  }
  await srv.start();
  return srv;
}

function sqlite(srv, sql) {
  const r = spawnSync('sqlite3', [path.join(srv.dataDir, DB_FILE), sql], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

// Response head lines as {lower-case name: [values]}.
function headerMap(head) {
  const map = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    (map[name] = map[name] || []).push(line.slice(i + 1).trim());
  }
  return map;
}

// A raw HTTP/1.1 request with the given extra header lines; resolves raw()'s answer plus headers.
async function rawRequest(srv, method, target, { headers = [], body, timeout = 5000 } = {}) {
  let req = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n`;
  for (const h of headers) req += `${h}\r\n`;
  if (body !== undefined) req += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  else if (method === 'POST') req += 'Content-Length: 0\r\n';
  req += `\r\n${body || ''}`;
  const r = await raw(srv.port, req, { timeout });
  r.headers = headerMap(r.head);
  return r;
}

function assertNoInjectedHeader(r, what) {
  assert.ok(r.status !== null, `${what}: an HTTP answer (got ${JSON.stringify(r.text.slice(0, 200))})`);
  assert.equal(r.headers['x-injected'], undefined, `${what}: no injected header in ${JSON.stringify(r.head)}`);
  for (const c of r.headers['set-cookie'] || []) assert.ok(!/evil/.test(c), `${what}: no injected cookie: ${c}`);
  assert.ok(!/\r\n[ \t]/.test(r.head), `${what}: no folded header line in ${JSON.stringify(r.head)}`);
}

// ---------------------------------------------------------------------------------------------
// Browser helpers (the pages' element ids are in docs/UI-CONTRACT.md)

async function waitConnected(page, timeout = T) {
  await page.waitForFunction(() => {
    const el = document.querySelector('#conn-state');
    return !!el && el.getAttribute('data-state') === 'connected';
  }, null, { timeout, polling: 100 });
}

function trackPage(page, label) {
  page.kefuLabel = label;
  page.kefuDialogs = [];
  page.kefuConsole = [];
  page.on('dialog', (d) => {
    page.kefuDialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (m) => page.kefuConsole.push(m.text()));
  page.on('pageerror', (e) => page.kefuConsole.push(`uncaught: ${e.message}`));
  return page;
}

async function loginConsole(page, srv, agent) {
  await page.goto(`${srv.base}/agent`);
  await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
  await page.fill('#login-email', agent.email);
  await page.fill('#login-password', agent.password);
  await page.click('#login-submit');
  await page.waitForFunction((name) => {
    const el = document.querySelector('#agent-name');
    return el && el.offsetParent !== null && el.textContent.includes(name);
  }, agent.name, { timeout: T });
  await waitConnected(page);
}

async function waitText(page, selector, text, timeout = T) {
  try {
    await page.waitForFunction(({ selector, text }) => [...document.querySelectorAll(selector)].some((e) => e.textContent === text), { selector, text }, { timeout, polling: 100 });
  } catch (e) {
    const shown = await page.$$eval(selector, (els) => els.map((x) => x.textContent)).catch(() => []);
    throw new Error(`${page.kefuLabel}: ${JSON.stringify(text)} not shown as the text of ${selector} within ${timeout} ms; shown: ${JSON.stringify(shown)}`);
  }
}

// Everything that would mean markup from user data became live, in every frame of the page.
async function assertInert(page) {
  assert.deepEqual(page.kefuDialogs, [], `${page.kefuLabel}: no dialog`);
  for (const f of page.frames()) {
    const bad = await f.evaluate(() => {
      const out = [];
      if (window.__xss !== undefined) out.push(`window.__xss = ${window.__xss}`);
      for (const e of document.querySelectorAll('*')) {
        for (const a of e.attributes) {
          if (/^on/i.test(a.name)) out.push(`event handler attribute ${a.name} on <${e.localName}>`);
          if (/^(href|src|action|formaction|xlink:href|data|srcdoc)$/i.test(a.name) && /^\s*(javascript|vbscript|data:text\/html)/i.test(a.value)) out.push(`${a.name}="${a.value}" on <${e.localName}>`);
        }
        if (e.localName === 'img' && e.getAttribute('src') === 'x') out.push('an <img src=x>');
      }
      const inPushFrame = location.pathname === '/push/iframe';
      for (const s of document.scripts) {
        if (!s.src && !(inPushFrame && /^parent\.kefuPush\(/.test(s.textContent))) out.push(`an inline script: ${s.outerHTML.slice(0, 120)}`);
      }
      return out;
    }).catch((e) => [`frame ${f.url()} not inspectable: ${e.message}`]);
    assert.deepEqual(bad, [], `${page.kefuLabel}, frame ${f.url()}: user data became markup`);
  }
}

// The message bodies shown in a container, with the number of element children of each.
function shownMessages(page, container) {
  return page.$$eval(`${container} .msg`, (els) => els.map((e) => {
    const body = e.querySelector('.msg-body');
    const author = e.querySelector('.msg-author');
    return { body: body && body.textContent, children: body ? body.children.length : -1, author: author && author.textContent, authorChildren: author ? author.children.length : 0 };
  }));
}

// Clicks every message body; nothing may navigate, open a window or a dialog.
async function clickAll(page, container) {
  const before = page.url();
  const pages = page.context().pages().length;
  for (const h of await page.$$(`${container} .msg-body`)) await h.click({ timeout: T });
  await page.waitForTimeout(300);
  assert.equal(page.url(), before, `${page.kefuLabel}: clicking messages navigated`);
  assert.equal(page.context().pages().length, pages, `${page.kefuLabel}: clicking messages opened a window`);
  assert.deepEqual(page.kefuDialogs, [], `${page.kefuLabel}: clicking messages opened a dialog`);
}

// ---------------------------------------------------------------------------------------------
// Visitor vs agent (and agent vs visitor): stored XSS through every field a page shows

// Every user-controlled string the pages show here: names and message text. The pages a
// visitor's page reports (their URLs, titles, referrer) are the visitor panel's, tested as text
// and http(s)-only links in visitor_panel.test.js.
const EVE = { email: 'eve@example.com', name: '<img src=x onerror=window.__xss=11>Eve', password: 'eve has a long passphrase', role: 'agent' };
const VISITOR_NAME = "<img src=x onerror=alert('name')><script>window.__xss=12</script>";
const VISITOR_NAME_2 = 'javascript:alert(document.cookie)//';
const VISITOR_TEXTS = [
  'javascript:alert(1)',
  '<a href="javascript:alert(2)">click me</a>',
  '[click](javascript:alert(3)) https://example.com/<img src=x onerror=alert(4)>',
  '<iframe src="javascript:alert(5)"></iframe><svg onload=alert(6)><math><mtext><table><mglyph><style><img src=x onerror=alert(7)>',
];
const AGENT_TEXT = '<a href=javascript:window.__xss=9>help</a> <script>window.__xss=10</script> <form action=javascript:alert(8)><button>go</button></form>';

test('stored XSS: visitor names, agent names and message text (HTML, javascript: links) show as text in both consoles; nothing runs or is clickable', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ agents: [ANA, EVE] });
    // The visitor's session is made through the API with a hostile name (the chat page asks for
    // no name; the API takes one), and the page is given its token as if it had made it.
    const v = await newVisitor(srv, VISITOR_NAME);
    assert.equal(v.visitor.name, VISITOR_NAME, 'the name is stored verbatim');
    const agentCtx = await env.context('agent Eve');
    const agent = trackPage(await agentCtx.newPage(), 'agent console');
    await loginConsole(agent, srv, EVE);
    assert.equal(await agent.textContent('#agent-name'), EVE.name, "the agent's own name as text");

    const visitorCtx = await env.context('visitor');
    await visitorCtx.addInitScript((token) => {
      try {
        if (!localStorage.getItem('kefu.visitor.token')) localStorage.setItem('kefu.visitor.token', token);
      } catch {}
    }, v.token);
    const visitor = trackPage(await visitorCtx.newPage(), 'visitor page');
    await visitor.goto(`${srv.base}/chat`);
    await waitConnected(visitor);
    for (const text of VISITOR_TEXTS) {
      await visitor.fill('#message-input', text);
      await visitor.press('#message-input', 'Enter');
      await waitText(visitor, '#messages .msg[data-id] .msg-body', text); // stored, not only pending
    }
    const r = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.deepEqual(r.json.messages.map((m) => m.body), VISITOR_TEXTS, 'the page sent the texts as they are');
    const conv = r.json.messages[0].conversation_id;
    // A second visitor whose name looks like a link.
    const v2 = await newVisitor(srv, VISITOR_NAME_2);
    const m2 = await visitorSend(srv, v2.token, 'javascript:void(window.__xss=13)');

    // The console: the names in the list and the thread header, the bodies, the previews.
    const item = (id) => `#conversation-list .conv-item[data-id="${id}"]`;
    await waitText(agent, `${item(conv)} .conv-name`, VISITOR_NAME);
    await waitText(agent, `${item(m2.conversation_id)} .conv-name`, VISITOR_NAME_2);
    await waitText(agent, `${item(m2.conversation_id)} .conv-preview`, m2.body);
    await agent.click(item(conv));
    await waitText(agent, '#thread-title', VISITOR_NAME);
    await waitText(agent, '#thread .msg-body', VISITOR_TEXTS.at(-1));
    await agent.fill('#reply-input', AGENT_TEXT);
    await agent.press('#reply-input', 'Enter');
    await waitText(agent, '#thread .msg[data-id] .msg-body', AGENT_TEXT);
    // The visitor sees the agent's reply and the agent's hostile name as text.
    await waitText(visitor, '#messages .msg-body', AGENT_TEXT);
    await waitText(visitor, '#messages .msg-author', EVE.name);

    const check = async () => {
      const expected = [...VISITOR_TEXTS, AGENT_TEXT];
      for (const [page, container] of [[visitor, '#messages'], [agent, '#thread']]) {
        await eventually(async () => {
          const shown = await shownMessages(page, container);
          assert.deepEqual(shown.map((m) => m.body), expected, `${page.kefuLabel}: the messages as text`);
          return true;
        }, { timeout: T, what: `${page.kefuLabel} messages` });
        for (const m of await shownMessages(page, container)) {
          assert.equal(m.children, 0, `${page.kefuLabel}: a message body with element children: ${JSON.stringify(m)}`);
          assert.equal(m.authorChildren, 0, `${page.kefuLabel}: an author name with element children: ${JSON.stringify(m)}`);
        }
        await assertInert(page);
      }
      const names = await agent.$$eval('#conversation-list .conv-item', (els) => els.map((e) => ({
        name: e.querySelector('.conv-name').textContent,
        nameChildren: e.querySelector('.conv-name').children.length,
        previewChildren: e.querySelector('.conv-preview').children.length,
        srChildren: e.querySelector('.conv-sr').children.length,
        text: e.querySelector('.conv-main').textContent,
      })));
      assert.deepEqual(names.map((n) => n.name).sort(), [VISITOR_NAME, VISITOR_NAME_2].sort());
      for (const n of names) {
        assert.equal(n.nameChildren + n.previewChildren + n.srChildren, 0, `list item with markup: ${JSON.stringify(n)}`);
        assert.ok(n.text.startsWith(n.name), `the option's name (its text) starts with the visitor's name as text: ${n.text}`);
      }
      assert.equal(await agent.$eval('#thread-title', (e) => e.children.length), 0, 'thread title is text');
      assert.equal(await agent.textContent('#agent-name'), EVE.name);
    };
    await check();
    // Clicking what would be links does nothing.
    await clickAll(visitor, '#messages');
    await clickAll(agent, '#thread');
    await agent.click(`${item(m2.conversation_id)} .conv-name`);
    await waitText(agent, '#thread-title', VISITOR_NAME_2);
    await assertInert(agent);

    // The same from history: both pages reloaded.
    await visitor.reload();
    await agent.reload();
    await waitConnected(visitor);
    await waitConnected(agent);
    await waitText(agent, `${item(conv)} .conv-name`, VISITOR_NAME);
    await agent.click(item(conv));
    await waitText(agent, '#thread .msg-body', AGENT_TEXT);
    await check();
  }),
);

// ---------------------------------------------------------------------------------------------
// Cross-site pages vs agents: a page on another site, in the browser the agent is logged in with

// A tiny "evil" site on 127.0.0.2 (another site than 127.0.0.1: cookies and origins differ, and
// both are loopback, so the browser's private-network rules do not interfere).
function startEvilSite(html) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html);
    });
    server.listen(0, '127.0.0.2', () => resolve(server));
  });
}

test('cross-site page in the agent\'s browser: cannot frame the console or the push iframe, open a WebSocket, read the API or post (fetch, form)', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Victim visitor');
    const m = await visitorSend(srv, v.token, 'a private question');
    const conv = m.conversation_id;
    const ctx = await env.context('agent + evil site');
    const agent = trackPage(await ctx.newPage(), 'agent console');
    await loginConsole(agent, srv, ANA);
    const cookie = (await ctx.cookies()).find((c) => c.name === 'kefu_session');
    assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `the console's cookie: ${JSON.stringify(cookie)}`);

    const K = srv.base;
    const html = `<!doctype html><html><body>
<iframe id="console" src="${K}/agent"></iframe>
<iframe id="push" src="${K}/push/iframe?after=0"></iframe>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="${K}/api/conversations/${conv}/messages" enctype="text/plain" target="sink"><input name='{"body":"forged by a form","x":"' value='"}'></form>
<script>
window.results = {};
const done = (k, v) => { window.results[k] = v; };
fetch('${K}/api/conversations', { credentials: 'include' }).then((r) => r.text()).then((t) => done('read', 'read: ' + t), (e) => done('read', 'error'));
fetch('${K}/api/conversations/${conv}/status', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: '{"status":"resolved"}' })
  .then((r) => done('json', 'status ' + r.status), () => done('json', 'error'));
fetch('${K}/api/conversations/${conv}/messages', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"body":"forged by fetch"}' })
  .then((r) => done('nocors', r.type), () => done('nocors', 'error'));
fetch('${K}/api/agent/logout', { method: 'POST', mode: 'no-cors', credentials: 'include' }).then((r) => done('logout', r.type), () => done('logout', 'error'));
const ws = new WebSocket('${K.replace('http:', 'ws:')}/push/ws?after=0');
ws.onopen = () => done('wsopen', true);
ws.onmessage = (e) => done('wsdata', (window.results.wsdata || '') + e.data);
ws.onclose = (e) => done('ws', 'closed ' + e.code);
document.getElementById('form').submit();
</script></body></html>`;
    const evil = await startEvilSite(html);
    env.defer(() => new Promise((r) => evil.close(r)));
    const evilUrl = `http://127.0.0.2:${evil.address().port}/`;
    const page = trackPage(await ctx.newPage(), 'evil page');
    await page.goto(evilUrl);
    await page.waitForFunction(() => ['read', 'json', 'nocors', 'logout', 'ws'].every((k) => k in window.results), null, { timeout: T });
    const results = await page.evaluate(() => window.results);
    assert.equal(results.read, 'error', `reading the API cross-site fails (no CORS): ${JSON.stringify(results)}`);
    assert.equal(results.json, 'error', `a JSON POST cross-site fails its preflight: ${JSON.stringify(results)}`);
    assert.equal(results.wsopen, undefined, `the WebSocket did not open: ${JSON.stringify(results)}`);
    assert.equal(results.wsdata, undefined, 'no WebSocket data');
    assert.equal(results.ws, 'closed 1006', 'the handshake was refused');
    await sleep(500); // let the form post land
    // Neither frame shows our page: the browser refused to render them.
    for (const id of ['console', 'push']) {
      const frame = await (await page.$(`#${id}`)).contentFrame();
      const ours = frame ? await frame.evaluate(() => !!document.querySelector('#login-form, #agent-name') || /kefuPush/.test(document.documentElement.innerHTML)).catch(() => false) : false;
      assert.equal(ours, false, `#${id}: our page rendered inside the cross-site frame (${frame && frame.url()})`);
    }
    assert.ok(page.kefuConsole.some((l) => /frame-ancestors/.test(l)), `the browser reports frame-ancestors refusals: ${page.kefuConsole.join('\n')}`);
    // Nothing happened on the server, and the agent is still logged in.
    const c = `kefu_session=${cookie.value}`;
    const me = await srv.api('GET', '/api/agent/me', { cookie: c });
    assert.equal(me.status, 200, `the session lives: ${me.text}`);
    const cv = await srv.api('GET', `/api/conversations/${conv}`, { cookie: c });
    assert.equal(cv.json.conversation.status, 'open', 'not resolved');
    const ms = await srv.api('GET', `/api/conversations/${conv}/messages?after=0`, { cookie: c });
    assert.deepEqual(ms.json.messages.map((x) => x.body), [m.body], 'nothing posted');
    assert.match(srv.log, /WebSocket from a foreign origin refused/, 'the server refused the WebSocket');
    await assertInert(agent);
  }),
);

// ---------------------------------------------------------------------------------------------
// Cross-site pages vs agents: CSRF on every state-changing endpoint, through the API

// By method and pattern: a pattern may take several methods (PATCH and DELETE /api/canned/{id}).
const AGENT_POST_BODIES = {
  'POST /api/agents': { email: 'new.agent@example.com', name: 'New Agent', role: 'agent', password: 'a long enough password' },
  'PATCH /api/agents/{id}': { disabled: true }, // {id}: Bo's
  'POST /api/agent/logout': undefined,
  'POST /api/agent/status': { status: 'away' },
  'POST /api/agent/push-ticket': undefined,
  'POST /api/canned': { shortcut: 'forged', body: 'forged reply' },
  'PATCH /api/canned/{id}': { body: 'forged change' }, // {id}: one of Ana's own
  'DELETE /api/canned/{id}': undefined,
  'POST /api/tokens': { name: 'forged', scope: 'admin' },
  'DELETE /api/tokens/{id}': undefined, // {id}: Ana's token
  'POST /api/webhooks': { url: 'https://example.com/forged', events: ['message.created'] },
  'DELETE /api/webhooks/{id}': undefined, // {id}: Ana's webhook
  'POST /api/teams': { name: 'Forged' },
  'PATCH /api/teams/{id}': { name: 'Forged change' }, // {id}: Ana's team
  'PUT /api/teams/{id}/members': { agent_ids: [] },
  'POST /api/conversations/{id}/messages': { body: 'forged reply' },
  // The file itself is the body: a PDF (its Content-Type application/json here, which the upload
  // takes as it takes any type but a form's).
  'POST /api/conversations/{id}/attachments': Buffer.from('%PDF-1.4\n%%EOF\n'),
  'POST /api/conversations/{id}/read': 'UP_TO',
  'POST /api/conversations/{id}/typing': { typing: true },
  'POST /api/conversations/{id}/status': { status: 'pending' },
  'POST /api/conversations/{id}/claim': undefined,
  'POST /api/conversations/{id}/assign': { agent_id: null },
  'PATCH /api/conversations/{id}/visitor': { email: 'forged@example.com' },
  'PATCH /api/settings': { typing_preview: true },
  'POST /api/visitors/{id}/invite': { body: 'forged invitation' },
  'POST /api/invite-rules': { path: '/forged', seconds: 1, body: 'forged rule' },
  'DELETE /api/invite-rules/{id}': undefined,
};
const routeKey = (r) => `${r.method} ${r.pattern}`;

test('CSRF: every state-changing agent endpoint (from the route table) refuses a missing, wrong, foreign or misplaced token with 403, and nothing changes', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const routes = routeTable();
    const agentPosts = routes.filter((r) => r.method !== 'GET' && (r.access === 'agent' || r.access === 'admin'));
    assert.deepEqual(agentPosts.map(routeKey).sort(), Object.keys(AGENT_POST_BODIES).sort(), 'every state-changing agent route of the table is in AGENT_POST_BODIES');
    assert.deepEqual([...new Set(agentPosts.map((r) => r.method))].sort(), ['DELETE', 'PATCH', 'POST', 'PUT'], 'the methods that change state');
    // Every agent reads the team; changing an account is an admin's, and needs the token.
    const declared = (method, pattern) => routes.find((r) => r.method === method && r.pattern === pattern);
    assert.deepEqual(declared('GET', '/api/agents'), { method: 'GET', pattern: '/api/agents', access: 'agent', csrf: false });
    // Reports are read by every agent; the handler narrows an agent's to their own figures.
    assert.deepEqual(declared('GET', '/api/reports'), { method: 'GET', pattern: '/api/reports', access: 'agent', csrf: false });
    assert.deepEqual(declared('PATCH', '/api/agents/{id}'), { method: 'PATCH', pattern: '/api/agents/{id}', access: 'agent', csrf: true }); // an agent changes its own name and password; the handler checks the rest
    for (const r of agentPosts) assert.equal(r.csrf, true, `${r.method} ${r.pattern} declares the CSRF token`);

    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'hello');
    const conv = m.conversation_id;
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const canned = await srv.api('POST', '/api/canned', { cookie: ana.cookie, csrf: ana.csrf, body: { shortcut: 'mine', body: 'as it was' } });
    assert.equal(canned.status, 201, canned.text);
    const team = await srv.api('POST', '/api/teams', { cookie: ana.cookie, csrf: ana.csrf, body: { name: 'Billing' } });
    assert.equal(team.status, 201, team.text);
    const token = await srv.api('POST', '/api/tokens', { cookie: ana.cookie, csrf: ana.csrf, body: { name: 'mine', scope: 'read' } });
    assert.equal(token.status, 201, token.text);
    const hook = await srv.api('POST', '/api/webhooks', { cookie: ana.cookie, csrf: ana.csrf, body: { url: 'https://example.com/mine', events: ['rating.created'] } });
    assert.equal(hook.status, 201, hook.text);
    const rule = await srv.api('POST', '/api/invite-rules', { cookie: ana.cookie, csrf: ana.csrf, body: { path: '/pricing', seconds: 30, body: 'Questions?' } });
    assert.equal(rule.status, 201, rule.text);
    // The visitor browses (an invitation is for a visitor online).
    const page = await srv.api('POST', '/api/visitor/page', { token: v.token, body: { url: 'https://shop.example/pricing' } });
    assert.equal(page.status, 200, page.text);
    // Both sides listen: nothing may reach them (no message, read receipt, typing, status).
    const held = await Promise.all([
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=5`, { token: v.token }),
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=5`, { cookie: bo.cookie }),
    ]);
    const [visitorHeld, agentHeld] = held.map((h) => h.result);

    const flip = (s) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A');
    const variants = [
      ['no X-CSRF-Token', {}],
      ['an empty X-CSRF-Token', { headers: { 'X-CSRF-Token': '' } }],
      ['a wrong X-CSRF-Token (last character changed)', { csrf: flip(ana.csrf) }],
      ['a prefix of the token', { csrf: ana.csrf.slice(0, 16) }],
      ['the token twice', { csrf: ana.csrf + ana.csrf }],
      ["another session's token (Bo's)", { csrf: bo.csrf }],
      ['the session cookie value as the token', { csrf: ana.cookie.split('=')[1] }],
      ['the token in the query string', { query: `?csrf=${ana.csrf}&X-CSRF-Token=${ana.csrf}` }],
      ['the token in the JSON body', { extra: { csrf: ana.csrf, 'X-CSRF-Token': ana.csrf } }],
      ['the token in a cookie', { cookie: `${ana.cookie}; csrf=${ana.csrf}; X-CSRF-Token=${ana.csrf}` }],
      ['a cross-site Origin and Referer without the token (what a forged form or fetch sends)', { headers: { Origin: EVIL, Referer: `${EVIL}/page` } }],
    ];
    // A route's {id}: the conversation, or for an agent's account, Bo's, or Ana's canned reply,
    // or her team, or the visitor, or the invitation rule, or her API token or webhook.
    const ids = {
      '/api/agents/': bo.agent.id,
      '/api/canned/': canned.json.canned.id,
      '/api/teams/': team.json.team.id,
      '/api/visitors/': v.visitor.id,
      '/api/invite-rules/': rule.json.rule.id,
      '/api/tokens/': token.json.token.id,
      '/api/webhooks/': hook.json.webhook.id,
    };
    const idOf = (pattern) => {
      const prefix = Object.keys(ids).find((k) => pattern.startsWith(k));
      return prefix ? ids[prefix] : conv;
    };
    const pathOf = (route) => route.pattern.replace('{id}', idOf(route.pattern));
    for (const route of agentPosts) {
      const p = pathOf(route);
      let body = AGENT_POST_BODIES[routeKey(route)];
      if (body === 'UP_TO') body = { up_to: m.id };
      for (const [what, o] of variants) {
        const b = o.extra ? { ...(body || {}), ...o.extra } : body;
        const r = await srv.api(route.method, p + (o.query || ''), { cookie: o.cookie || ana.cookie, csrf: o.csrf, headers: o.headers, body: b });
        assertError(r, 403, 'csrf', `${route.method} ${p} with ${what}`);
      }
      // A GET never does what the POST does (where there is no GET route of the same path).
      if (!routes.some((r) => r.method === 'GET' && r.pattern === route.pattern)) {
        assertError(await srv.api('GET', p, { cookie: ana.cookie }), 405, 'method_not_allowed', `GET ${p}`);
      }
      // With the right token but a body a cross-site form can send (text/plain, urlencoded): 415.
      if (body !== undefined) {
        for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
          const r = await srv.api(route.method, p, { cookie: ana.cookie, csrf: ana.csrf, body: JSON.stringify(body), headers: { 'Content-Type': type } });
          assertError(r, 415, 'unsupported_media_type', `${route.method} ${p} as ${type}`);
        }
      }
    }
    // A browser sends cookies by itself but never a bearer token: a visitor POST with only a
    // cookie is not authenticated.
    assertError(await srv.api('POST', '/api/visitor/messages', { cookie: ana.cookie, body: { body: 'x' } }), 401, 'unauthorized', 'a visitor POST with a cookie only');
    // Login with a body a form can send: 415, no cookie (no login CSRF).
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const r = await srv.api('POST', '/api/agent/login', { body: JSON.stringify({ email: ANA.email, password: ANA.password }), headers: { 'Content-Type': type } });
      assertError(r, 415, 'unsupported_media_type', `login as ${type}`);
      assert.equal(r.headers['set-cookie'], undefined, `no session from a ${type} login`);
    }

    // Nothing happened.
    assert.deepEqual((await visitorHeld).json.events, [], 'the visitor heard nothing');
    assert.deepEqual((await agentHeld).json.events, [], 'the agents heard nothing');
    let r = await srv.api('GET', `/api/conversations/${conv}`, { cookie: ana.cookie });
    assert.equal(r.json.conversation.status, 'open');
    assert.equal(r.json.conversation.agent_read_up_to, 0);
    assert.deepEqual(r.json.conversation.last_message, m);
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: ana.cookie })).status, 200, 'still logged in');
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: bo.cookie })).status, 200, 'Bo is not disabled');
    r = await srv.api('GET', '/api/canned', { cookie: ana.cookie });
    assert.deepEqual(r.json.canned, [canned.json.canned], 'no canned reply added, changed or deleted');
    r = await srv.api('GET', '/api/teams', { cookie: ana.cookie });
    assert.deepEqual(r.json.teams, [team.json.team], 'no team added or changed');
    r = await srv.api('GET', '/api/tokens', { cookie: ana.cookie });
    assert.deepEqual(r.json.tokens.map((x) => x.id), [token.json.token.id], 'no API token added or revoked');
    r = await srv.api('GET', '/api/webhooks', { cookie: ana.cookie });
    assert.deepEqual(r.json.webhooks, [hook.json.webhook], 'no webhook added or deleted');
    r = await srv.api('GET', '/api/invite-rules', { cookie: ana.cookie });
    assert.deepEqual(r.json.rules, [rule.json.rule], 'no rule added or deleted');

    // With the token each works (so the 403s were about the token).
    const expect = { agents: 201, attachments: 201, canned: 201, teams: 201, tokens: 201, webhooks: 201, members: 200, '{id}': 200, messages: 201, read: 200, typing: 200, status: 200, claim: 200, assign: 200, visitor: 200, settings: 200, 'push-ticket': 201, logout: 200, invite: 201, 'invite-rules': 201 };
    // A delete after the change of the same reply, and the logout last of all.
    const last = (r) => (r.pattern.endsWith('logout') ? 2 : r.method === 'DELETE' ? 1 : 0);
    for (const route of [...agentPosts].sort((a, b) => last(a) - last(b))) {
      const p = pathOf(route);
      let body = AGENT_POST_BODIES[routeKey(route)];
      if (body === 'UP_TO') body = { up_to: m.id };
      r = await srv.api(route.method, p, { cookie: ana.cookie, csrf: ana.csrf, body });
      assert.equal(r.status, expect[route.pattern.split('/').at(-1)], `${route.method} ${p} with the token: ${r.status} ${r.text}`);
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// Anonymous vs agent: cookies and sessions

function cookieAttributes(setCookie) {
  const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
  const map = {};
  for (const a of attrs) {
    const i = a.indexOf('=');
    map[(i < 0 ? a : a.slice(0, i)).toLowerCase()] = i < 0 ? true : a.slice(i + 1);
  }
  return { pair, attrs: map };
}

test('cookies: HttpOnly, SameSite=Strict, Path=/, host-only, bounded Max-Age; Secure exactly with --secure-cookies, on login and logout', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const plain = await env.server();
    const secure = await serverWith(env, ['--secure-cookies']);
    for (const [srv, isSecure] of [[plain, false], [secure, true]]) {
      const what = isSecure ? 'with --secure-cookies' : 'by default';
      const r = await srv.api('POST', '/api/agent/login', { body: { email: ANA.email, password: ANA.password } });
      assert.equal(r.status, 200, r.text);
      const set = r.headers['set-cookie'];
      assert.equal(set.length, 1, `one cookie: ${JSON.stringify(set)}`);
      const { pair, attrs } = cookieAttributes(set[0]);
      // With Secure cookies the name carries the __Host- prefix: the browser then takes it only
      // from this host over HTTPS, Secure, Path=/, without Domain (no sibling can plant one).
      const name = isSecure ? '__Host-kefu_session' : 'kefu_session';
      assert.match(pair, new RegExp(`^${name}=[A-Za-z0-9_-]{43,}$`), `a 256-bit random value named ${name}: ${pair}`);
      assert.equal(attrs.httponly, true, `HttpOnly ${what}: ${set[0]}`);
      assert.equal(attrs.samesite, 'Strict', `SameSite=Strict ${what}: ${set[0]}`);
      assert.equal(attrs.path, '/', `Path=/ ${what}: ${set[0]}`);
      assert.equal(attrs.domain, undefined, `host-only (no Domain) ${what}: ${set[0]}`);
      const maxAge = Number(attrs['max-age']);
      assert.ok(maxAge > 0 && maxAge <= 7 * 24 * 3600, `Max-Age at most 7 days ${what}: ${set[0]}`);
      assert.equal(attrs.secure, isSecure ? true : undefined, `Secure ${what}: ${set[0]}`);
      const lo = await srv.api('POST', '/api/agent/logout', { cookie: pair, csrf: r.json.csrf });
      assert.equal(lo.status, 200, lo.text);
      const cleared = cookieAttributes(lo.headers['set-cookie'][0]);
      assert.equal(cleared.pair, `${name}=`, `logout empties the cookie ${what}`);
      assert.equal(cleared.attrs['max-age'], '0');
      assert.equal(cleared.attrs.httponly, true);
      assert.equal(cleared.attrs.samesite, 'Strict');
      assert.equal(cleared.attrs.secure, isSecure ? true : undefined, `Secure on the clearing cookie ${what}`);
      // The visitor API sets no cookie at all (its token lives in the page, sent as a header).
      const vs = await srv.api('POST', '/api/visitor/session', { body: {} });
      assert.equal(vs.headers['set-cookie'], undefined, 'no cookie for visitors');
    }
  }),
);

test('session fixation: a planted session id is never adopted; every login issues a new session and CSRF token; logout ends the session server-side everywhere', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // A made-up id planted before login (e.g. by a sibling subdomain) is ignored.
    const planted = `kefu_session=${'P'.repeat(43)}`;
    let r = await srv.api('POST', '/api/agent/login', { cookie: planted, body: { email: ANA.email, password: ANA.password } });
    assert.equal(r.status, 200, r.text);
    const a1 = { cookie: sessionCookie(r.headers).cookie, csrf: r.json.csrf };
    assert.notEqual(a1.cookie, planted, 'a new id, not the planted one');
    assertError(await srv.api('GET', '/api/agent/me', { cookie: planted }), 401, 'unauthorized', 'the planted id after login');
    // The attacker plants their own real session: logging in as Ana does not turn it into Ana's.
    const bo = await agentLogin(srv, BO.email, BO.password);
    r = await srv.api('POST', '/api/agent/login', { cookie: bo.cookie, body: { email: ANA.email, password: ANA.password } });
    assert.equal(r.status, 200, r.text);
    const a2 = { cookie: sessionCookie(r.headers).cookie, csrf: r.json.csrf };
    assert.notEqual(a2.cookie, bo.cookie);
    r = await srv.api('GET', '/api/agent/me', { cookie: bo.cookie });
    assert.equal(r.json.agent.email, BO.email, "the planted session is still the attacker's own, not Ana's");
    r = await srv.api('GET', '/api/agent/me', { cookie: a2.cookie });
    assert.equal(r.json.agent.email, ANA.email);
    // Every login: a new session id and a new CSRF token, bound to that session.
    assert.notEqual(a1.cookie, a2.cookie);
    assert.notEqual(a1.csrf, a2.csrf);
    assert.match(a1.csrf, /^[A-Za-z0-9_-]{43,}$/, 'a 256-bit CSRF token');
    assertError(await srv.api('POST', '/api/agent/push-ticket', { cookie: a1.cookie, csrf: a2.csrf }), 403, 'csrf', "one session's cookie with another session's CSRF token");

    // Logout ends a1 on the server: the cookie value, replayed by someone who kept it, opens
    // nothing — API, push or WebSocket. Ana's other session lives on.
    const ws0 = await RawWs.open(srv.port, { headers: { Cookie: a1.cookie } });
    ws0.destroy();
    r = await srv.api('POST', '/api/agent/logout', { cookie: a1.cookie, csrf: a1.csrf });
    assert.equal(r.status, 200, r.text);
    for (const p of ['/api/agent/me', '/api/conversations', '/push/poll?after=0', '/push/longpoll?after=0&timeout=1']) {
      assertError(await srv.api('GET', p, { cookie: a1.cookie }), 401, 'unauthorized', `GET ${p} with the logged-out cookie`);
    }
    assertError(await srv.api('POST', '/api/agent/push-ticket', { cookie: a1.cookie, csrf: a1.csrf }), 401, 'unauthorized', 'a push ticket for the logged-out session');
    await assert.rejects(RawWs.open(srv.port, { headers: { Cookie: a1.cookie } }), (e) => e.status === 401, 'a WebSocket with the logged-out cookie: 401');
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: a2.cookie })).status, 200, "Ana's other session");
    // Logged out stays logged out across a restart.
    await srv.restart();
    assertError(await srv.api('GET', '/api/agent/me', { cookie: a1.cookie }), 401, 'unauthorized', 'the logged-out cookie after a restart');
  }),
);

// At logout the push module ends every stream of that agent (its other sessions reconnect).
test('logout ends what the session had open: its WebSocket is closed and can no longer send', { timeout: 30000 }, async (t) => {
  // Observed inside the scenario, asserted after it, once its resources are cleaned up.
  let seen;
  await scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    const m = await visitorSend(srv, v.token, 'hello');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${m.id}`, headers: { Cookie: ag.cookie } });
    env.defer(() => ws.destroy());
    const r = await srv.api('POST', '/api/agent/logout', { cookie: ag.cookie, csrf: ag.csrf });
    assert.equal(r.status, 200, r.text);
    await ws.text(JSON.stringify({ type: 'send', conversation_id: m.conversation_id, body: 'sent after logout', ref: 'late' }));
    await ws.waitTcpClose(3000, 'the WebSocket closed at logout').catch(() => {});
    const after = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    seen = { bodies: after.json.messages.map((x) => x.body), closed: ws.tcpClosed || ws.tcpEnded };
  });
  assert.deepEqual(seen.bodies, ['hello'], 'nothing sent after the logout');
  assert.ok(seen.closed, 'the WebSocket was closed at logout');
});

// ---------------------------------------------------------------------------------------------
// Cross-site pages vs both: headers on every response

test('security headers on every page, asset, API answer, error and push response: nosniff, Referrer-Policy, one CSP with frame-ancestors, no CORS', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    await visitorSend(srv, v.token, 'hi');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const tk = (await srv.api('POST', '/api/visitor/push-ticket', { token: v.token })).json.ticket;
    const bearer = `Authorization: Bearer ${v.token}`;
    const cookie = `Cookie: ${ag.cookie}`;
    const origin = `Origin: ${EVIL}`;
    // [what, method, target, headers, kind, status, body]
    const cases = [
      ['the visitor page', 'GET', '/chat', [], 'page', 200],
      ['the agent console', 'GET', '/agent', [], 'page', 200],
      ['the website widget', 'GET', '/widget', [], 'widget', 200],
      ['the widget on its static path', 'GET', '/static/widget.html', [], 'page', 200],
      ['the widget loader', 'GET', '/widget.js', [], 'asset', 200],
      ["the widget's public settings", 'GET', '/api/widget', [], 'public', 200],
      ['the root redirect', 'GET', '/', [], 'other', 302],
      ['the health check', 'GET', '/healthz', [], 'json', 200],
      ['the readiness check', 'GET', '/readyz', [], 'json', 200],
      ['the connection check', 'GET', '/diag', [], 'page', 200],
      ['a connection check poll', 'GET', '/diag/push/poll?after=0', [], 'json', 200],
      ['the metrics (from loopback)', 'GET', '/metrics', [], 'other', 200],
      ['a script', 'GET', '/static/kefu.js', [], 'asset', 200],
      ['the style sheet', 'GET', '/static/kefu.css', [], 'asset', 200],
      ['the icon', 'GET', '/static/favicon.svg', [], 'asset', 200],
      ['a missing asset', 'GET', '/static/nope.js', [], 'json', 404],
      ['a static POST', 'POST', '/static/kefu.js', [], 'json', 405],
      ['a new visitor session', 'POST', '/api/visitor/session', [], 'json', 201, '{}'],
      ['visitor messages', 'GET', '/api/visitor/messages?after=0', [bearer], 'json', 200],
      ['a bad cursor', 'GET', '/api/visitor/messages?after=x', [bearer], 'json', 400],
      ['the conversation list', 'GET', '/api/conversations', [cookie], 'json', 200],
      ['no session', 'GET', '/api/conversations', [], 'json', 401],
      ['no CSRF token', 'POST', `/api/agent/push-ticket`, [cookie], 'json', 403],
      ['a wrong method', 'PUT', '/api/visitor/messages', [bearer], 'json', 405],
      ['a CORS preflight', 'OPTIONS', '/api/conversations/1/status', ['Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: content-type, x-csrf-token'], 'json', 405],
      ['a text/plain body', 'POST', '/api/visitor/messages', [bearer, 'Content-Type: text/plain', 'Content-Length: 2'], 'json', 415, undefined, '{}'],
      ['an unknown path', 'GET', '/nope', [], 'json', 404],
      ['a poll', 'GET', '/push/poll?after=0', [bearer], 'json', 200],
      ['a long poll', 'GET', '/push/longpoll?after=0&timeout=1', [bearer], 'json', 200],
      ['the push iframe', 'GET', `/push/iframe?after=0&ticket=${encodeURIComponent(tk)}`, [], 'iframe', 200],
      ['an event stream', 'GET', '/push/sse?after=0', [bearer], 'stream', 200],
      ['a WebSocket from a foreign origin', 'GET', '/push/ws?after=0', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'], 'json', 403],
    ];
    const results = [];
    for (const [what, method, target, headers, kind, status, body, rawBody] of cases) {
      const r = rawBody !== undefined
        ? await raw(srv.port, `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n${origin}\r\n${headers.join('\r\n')}\r\n\r\n${rawBody}`, { timeout: 3000 })
        : await rawRequest(srv, method, target, { headers: [origin, ...headers], body, timeout: ['iframe', 'stream'].includes(kind) ? 1500 : 5000 });
      r.headers = r.headers || headerMap(r.head);
      results.push([what, kind, status, r]);
    }
    // Refused before any handler: the parser's own answers.
    for (const [what, req, status] of [
      ['a garbage request line', 'GARBAGE\r\n\r\n', 400],
      ['a 20 KiB header', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431],
      ['a 10 KB request line', `GET /?${'a'.repeat(10000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ]) {
      const r = await raw(srv.port, req);
      r.headers = headerMap(r.head);
      results.push([what, 'json', status, r]);
    }
    for (const [what, kind, status, r] of results) {
      const h = r.headers;
      const w = `${what} (${status})`;
      assert.equal(r.status, status, `${w}: status, got ${r.head}`);
      assert.deepEqual(h['x-content-type-options'], ['nosniff'], `${w}: X-Content-Type-Options`);
      assert.deepEqual(h['referrer-policy'], ['no-referrer'], `${w}: Referrer-Policy`);
      if (kind === 'public') {
        // The loader on a customer's site reads it: anyone may, without credentials.
        assert.deepEqual(h['access-control-allow-origin'], ['*'], `${w}: Access-Control-Allow-Origin`);
        assert.equal(h['access-control-allow-credentials'], undefined, `${w}: no credentials`);
      } else {
        for (const name of Object.keys(h)) assert.ok(!name.startsWith('access-control-'), `${w}: no CORS header (${name}) for a cross-site Origin`);
      }
      assert.deepEqual(h.server, ['kefu'], `${w}: Server names no version`);
      const csp = h['content-security-policy'] || [];
      assert.equal(csp.length, 1, `${w}: exactly one Content-Security-Policy (two would intersect): ${JSON.stringify(csp)}`);
      const policy = Object.fromEntries(csp[0].split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...vs]) => [k, vs]));
      assert.ok(policy['frame-ancestors'], `${w}: frame-ancestors in ${csp[0]}`);
      if (kind === 'page') {
        assert.deepEqual(policy['default-src'], ["'self'"], `${w}: ${csp[0]}`);
        assert.equal(policy['script-src'], undefined, `${w}: scripts from 'self' only (no inline, no eval): ${csp[0]}`);
        assert.deepEqual(policy['object-src'], ["'none'"], `${w}: ${csp[0]}`);
        assert.deepEqual(policy['base-uri'], ["'none'"], `${w}: ${csp[0]}`);
        assert.deepEqual(policy['frame-ancestors'], ["'self'"], `${w}: ${csp[0]}`);
        assert.deepEqual(h['x-frame-options'], ['SAMEORIGIN'], `${w}: X-Frame-Options`);
        assert.match(h['content-type'][0], /^text\/html/);
      } else if (kind === 'widget') {
        // Framed by customers' sites (docs/SECURITY.md, "The website widget"): any ancestor,
        // and no X-Frame-Options, which would refuse them whatever the policy says.
        assert.deepEqual(policy['default-src'], ["'self'"], `${w}: ${csp[0]}`);
        assert.equal(policy['script-src'], undefined, `${w}: ${csp[0]}`);
        assert.deepEqual(policy['object-src'], ["'none'"], `${w}: ${csp[0]}`);
        assert.deepEqual(policy['frame-ancestors'], ['*'], `${w}: ${csp[0]}`);
        assert.equal(h['x-frame-options'], undefined, `${w}: X-Frame-Options`);
      } else if (kind === 'iframe') {
        assert.deepEqual(policy['default-src'], ["'none'"], `${w}: ${csp[0]}`);
        assert.deepEqual(policy['frame-ancestors'], ["'self'"], `${w}: ${csp[0]}`);
        assert.deepEqual(h['x-frame-options'], ['SAMEORIGIN'], `${w}: X-Frame-Options`);
      } else {
        // Not a page: nothing to render, run or frame.
        assert.deepEqual(policy['default-src'], ["'none'"], `${w}: ${csp[0]}`);
        assert.deepEqual(policy['frame-ancestors'], ["'none'"], `${w}: ${csp[0]}`);
      }
      if (kind === 'json' || kind === 'public') {
        assert.match(h['content-type'][0], /^application\/json/, `${w}: JSON`);
        assert.deepEqual(h['cache-control'], ['no-store'], `${w}: Cache-Control`);
      }
      if (kind === 'stream') assert.match(h['cache-control'][0], /no-store/, `${w}: Cache-Control`);
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// Cross-site pages vs both: the WebSocket Origin rule

test('WebSocket Origin: our own origin (http or https), origins given with --allow-origin exactly, and clients without Origin may connect; every other origin gets 403', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await serverWith(env, ['--allow-origin', 'https://shop.example:8443']);
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv);
    const tk = async () => encodeURIComponent((await srv.api('POST', '/api/visitor/push-ticket', { token: v.token })).json.ticket);
    const host = `127.0.0.1:${srv.port}`;
    const allowed = [null, `http://${host}`, `https://${host}`, 'https://shop.example:8443', 'HTTPS://SHOP.EXAMPLE:8443'];
    const refused = [
      'null', EVIL, 'https://shop.example', 'http://shop.example:8443', 'https://shop.example:8443.evil.example',
      'https://evil.shop.example:8443', 'https://shop.example:84430', 'https://shop.example:8443/', `http://${host}.evil.example`,
      `http://${host}@evil.example`, `http://localhost:${srv.port}`, `ws://${host}`, '',
    ];
    for (const origin of allowed) {
      for (const [who, pathOf, headers] of [
        ['agent', async () => '/push/ws?after=0', { Cookie: ag.cookie }],
        ['visitor', async () => `/push/ws?after=0&ticket=${await tk()}`, {}],
      ]) {
        const ws = await RawWs.open(srv.port, { path: await pathOf(), headers: origin === null ? headers : { ...headers, Origin: origin } });
        ws.destroy();
        void who;
      }
    }
    for (const origin of refused) {
      for (const [who, pathOf, headers] of [
        ['agent', async () => '/push/ws?after=0', { Cookie: ag.cookie }],
        ['visitor', async () => `/push/ws?after=0&ticket=${await tk()}`, {}],
      ]) {
        await assert.rejects(RawWs.open(srv.port, { path: await pathOf(), headers: { ...headers, Origin: origin } }), (e) => {
          assert.equal(e.status, 403, `${who} WebSocket from Origin ${JSON.stringify(origin)}: ${e.message}`);
          return true;
        });
      }
    }
    // A page on an allowed origin still needs credentials.
    await assert.rejects(RawWs.open(srv.port, { headers: { Origin: 'https://shop.example:8443' } }), (e) => e.status === 401);
  }),
);

// ---------------------------------------------------------------------------------------------
// Anonymous / visitor vs the database: SQL injection through every parameter

test('SQL injection through path ids, cursors, query parameters, JSON fields, login e-mails and WebSocket actions: 4xx, and the database is intact', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    // Hundreds of requests from one visitor: the abuse limits would answer 429 first.
    const srv = await serverWith(env, RAISED_LIMITS);
    const v = await newVisitor(srv, 'Target');
    const m = await visitorSend(srv, v.token, 'the only message');
    const conv = m.conversation_id;
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const schema = sqlite(srv, "SELECT type || ' ' || name FROM sqlite_master ORDER BY name");
    const counts = () => sqlite(srv, "SELECT (SELECT count(*) FROM agents) || ' ' || (SELECT count(*) FROM visitors) || ' ' || (SELECT count(*) FROM conversations) || ' ' || (SELECT count(*) FROM messages) || ' ' || (SELECT count(*) FROM sessions)");
    const before = counts();
    const A = { cookie: ag.cookie, csrf: ag.csrf };

    // Path ids: never a match, never a server error.
    const ids = [`${conv}'`, `${conv}%27%20OR%20%271%27=%271`, `${conv}%20OR%201=1`, `${conv};DROP%20TABLE%20messages`, `${conv}--`, '-1', '0', '0x1', '1e3', `${conv}.0`, '99999999999999999999', '9007199254740993', '%31', `${conv}%00`, 'null', '*', `(SELECT%20${conv})`];
    for (const id of ids) {
      for (const [method, suffix, body] of [['GET', ''], ['GET', '/messages?after=0'], ['POST', '/messages', { body: 'x' }], ['POST', '/read', { up_to: m.id }], ['POST', '/typing', { typing: true }], ['POST', '/status', { status: 'resolved' }]]) {
        const p = `/api/conversations/${id}${suffix}`;
        const r = await srv.api(method, p, { ...A, body });
        assert.ok([400, 404].includes(r.status), `${method} ${p}: 400/404, got ${r.status} ${r.text}`);
      }
    }
    // Cursors and other query parameters.
    const afters = ['0%20OR%201=1', '0;DELETE%20FROM%20messages', '-1', "1'", '0x10', '1e3', '9007199254740993', '18446744073709551616', '%00', '', '1%20', '+1'];
    for (const after of afters) {
      for (const [p, auth] of [['/api/visitor/messages', { token: v.token }], [`/api/conversations/${conv}/messages`, A], ['/push/poll', { token: v.token }], ['/push/longpoll', { token: v.token }], ['/push/poll', A]]) {
        const r = await srv.api('GET', `${p}?after=${after}`, auth);
        assertError(r, 400, 'bad_request', `GET ${p}?after=${after}`);
      }
    }
    for (const timeout of ['1;DROP%20TABLE%20messages', '0', '-1', '1e1']) {
      assertError(await srv.api('GET', `/push/longpoll?after=0&timeout=${timeout}`, { token: v.token }), 400, 'bad_request', `timeout=${timeout}`);
    }
    for (const ticket of ["'%20OR%201=1%20--", `v.${v.visitor.id}%20OR%201=1.1.x`, '%00']) {
      assertError(await srv.api('GET', `/push/poll?after=0&ticket=${ticket}`), 401, 'unauthorized', `ticket=${ticket}`);
    }
    // JSON fields of the wrong type or with SQL in them.
    const upTos = [`${m.id}`, `${m.id} OR 1=1`, 1.5, -1, 0, 1e300, [m.id], { $gt: 0 }, true, null];
    for (const up_to of upTos) {
      const a = await srv.api('POST', `/api/conversations/${conv}/read`, { ...A, body: { up_to } });
      assert.ok(a.status === 422 || a.status === 404, `agent read up_to=${JSON.stringify(up_to)}: ${a.status} ${a.text}`);
      const b = await srv.api('POST', '/api/visitor/read', { token: v.token, body: { up_to } });
      assert.ok(b.status === 422 || b.status === 404, `visitor read up_to=${JSON.stringify(up_to)}: ${b.status} ${b.text}`);
    }
    for (const raw of ['{"up_to": 9223372036854775808}', '{"up_to": 1, "up_to": 2}']) {
      const r = await srv.api('POST', '/api/visitor/read', { token: v.token, body: raw });
      assert.ok([400, 404, 422].includes(r.status), `visitor read ${raw}: ${r.status} ${r.text}`);
    }
    for (const status of ["closed' --", 'closed; DROP TABLE conversations', 'CLOSED', "open' OR '1'='1", 1, null]) {
      assertError(await srv.api('POST', `/api/conversations/${conv}/status`, { ...A, body: { status } }), 400, 'bad_request', `status ${JSON.stringify(status)}`);
    }
    for (const typing of ['true', 1, "1' OR '1'='1"]) {
      assertError(await srv.api('POST', `/api/conversations/${conv}/typing`, { ...A, body: { typing } }), 422, 'invalid', `typing ${JSON.stringify(typing)}`);
      assertError(await srv.api('POST', '/api/visitor/typing', { token: v.token, body: { typing } }), 422, 'invalid', `visitor typing ${JSON.stringify(typing)}`);
    }
    // A NUL inside a JSON string is refused by the parser (it would cut C strings short).
    for (const [p, auth, body] of [['/api/visitor/messages', { token: v.token }, '{"body":"a\\u0000b"}'], ['/api/visitor/session', {}, '{"name":"a\\u0000b"}'], ['/api/agent/login', {}, `{"email":"${ANA.email}\\u0000x","password":"${ANA.password}"}`]]) {
      assertError(await srv.api('POST', p, { ...auth, body }), 400, 'bad_json', `POST ${p} with a NUL`);
    }
    // Login e-mails with SQL or LIKE wildcards, with Ana's right password: never her session.
    // (At most 10 failures: the per-address limit is 20.)
    const emails = ["' OR '1'='1' --", `${ANA.email}' --`, `${ANA.email}'/*`, '%', '_na@example.com', '%@example.com', `"${ANA.email}"`, `${ANA.email}\\`];
    for (const email of emails) {
      assertError(await srv.api('POST', '/api/agent/login', { body: { email, password: ANA.password } }), 401, 'unauthorized', `login as ${JSON.stringify(email)}`);
    }
    for (const email of [{ $ne: null }, [ANA.email], 1]) {
      assertError(await srv.api('POST', '/api/agent/login', { body: { email, password: ANA.password } }), 422, 'invalid', `login with email ${JSON.stringify(email)}`);
    }
    // WebSocket actions.
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${m.id}`, headers: { Cookie: ag.cookie } });
    for (const action of [
      { type: 'send', conversation_id: `${conv} OR 1=1`, body: 'x' },
      { type: 'send', conversation_id: `${conv}`, body: 'x' },
      { type: 'read', conversation_id: conv, up_to: `${m.id} OR 1=1` },
      { type: "send' OR '1'='1", conversation_id: conv, body: 'x' },
    ]) {
      await ws.text(JSON.stringify({ ...action, ref: 'sql' }));
      const j = await ws.json(3000, `the answer to ${JSON.stringify(action)}`);
      assert.equal(j.type, 'error', `WebSocket ${JSON.stringify(action)}: ${JSON.stringify(j)}`);
    }
    ws.destroy();

    // Intact: same schema, same rows, integrity ok, and everything still works.
    assert.equal(sqlite(srv, "SELECT type || ' ' || name FROM sqlite_master ORDER BY name"), schema, 'the schema is unchanged');
    assert.equal(counts(), before, 'no row added or removed (agents visitors conversations messages sessions)');
    assert.equal(sqlite(srv, 'PRAGMA integrity_check'), 'ok');
    const c = await srv.api('GET', `/api/conversations/${conv}`, { cookie: ag.cookie });
    assert.equal(c.json.conversation.status, 'open');
    assert.deepEqual(c.json.conversation.last_message, m);
    await agentLogin(srv, ANA.email, ANA.password);
    const r = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
    assert.deepEqual(r.json.messages, [m]);
  }),
);

// ---------------------------------------------------------------------------------------------
// Anonymous vs the host: path traversal on static files

test('path traversal on /static/ (dot segments, encodings, backslashes, NUL, absolute-form): 404/400, never a file outside the embedded table', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ok = await rawRequest(srv, 'GET', '/static/kefu.js');
    assert.equal(ok.status, 200, 'the control: an embedded file');
    const targets = [
      '/static/../../etc/passwd',
      '/static/../../../../../../../../etc/passwd',
      '/static/%2e%2e/%2e%2e/etc/passwd',
      '/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
      '/static/..%2f..%2f..%2fetc%2fpasswd',
      '/static/..%252f..%252fetc%252fpasswd',
      '/static/..\\..\\..\\etc\\passwd',
      '/static/..%5c..%5c..%5cetc%5cpasswd',
      '/static/....//....//etc/passwd',
      '/static//etc/passwd',
      '/static/%2fetc%2fpasswd',
      '/static/./kefu.js',
      '/static/kefu.js/../../../etc/passwd',
      '/static/kefu.js%00.png',
      '/static/kefu.js/',
      '/static/KEFU.JS',
      '/static/%6befu.js',
      '/static/../src/main.c',
      '/static/../CMakeLists.txt',
      '/static/../.git/HEAD',
      '/static/..',
      '/static/.',
      '/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
      '/static/%uff0e%uff0e/etc/passwd',
      '/../../etc/passwd',
      '/chat/../../etc/passwd',
      '/static/~root/.ssh/id_rsa',
      'http://127.0.0.1/static/../../etc/passwd',
      '/proc/self/environ',
    ];
    for (const target of targets) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(srv.port, `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nConnection: close\r\n\r\n`, { untilClose: true, timeout: 3000 });
        assert.ok([400, 404].includes(r.status), `${method} ${target}: 400/404, got ${r.head}`);
        assert.ok(!/root:|#include|\[core\]|cmake_minimum|ref: refs|PATH=/.test(r.body), `${method} ${target}: a file's content in ${r.body.slice(0, 200)}`);
      }
    }
    // And the server still serves.
    assert.equal((await rawRequest(srv, 'GET', '/static/kefu.js')).status, 200);
  }),
);

// ---------------------------------------------------------------------------------------------
// Anonymous vs everyone: CR/LF injection into headers and logs

test('CR/LF injection: nothing a client sends (query, headers, Origin, Last-Event-ID, ticket, names, e-mails) reaches a response header or splits a log line', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv);
    await visitorSend(srv, v.token, 'hi');
    const bearer = `Authorization: Bearer ${v.token}`;
    const cases = [
      ['a ticket with encoded CRLF', 'GET', '/push/poll?after=0&ticket=x%0d%0aSet-Cookie:%20kefu_session=evil%0d%0aX-Injected:%201', []],
      ['a cursor with encoded CRLF', 'GET', '/push/poll?after=0%0d%0aX-Injected:%201', [bearer]],
      ['a path with encoded CRLF', 'GET', '/chat%0d%0aX-Injected:%201', []],
      ['a redirect with encoded CRLF in the query', 'GET', '/?next=%0d%0aLocation:%20http://evil.example%0d%0aX-Injected:%201', []],
      ['Last-Event-ID with encoded CRLF', 'GET', '/push/sse?after=0', [bearer, 'Last-Event-ID: 1%0d%0aX-Injected: 1'], 1500],
      ['Last-Event-ID with a bare CR', 'GET', '/push/sse?after=0', [bearer, 'Last-Event-ID: 1\rX-Injected: 1'], 1500],
      ['an Origin with a bare CR (WebSocket)', 'GET', '/push/ws?after=0', [bearer, 'Origin: http://a\rX-Injected: 1', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']],
      ['an Origin with encoded CRLF (WebSocket)', 'GET', '/push/ws?after=0', [bearer, 'Origin: http://a%0d%0aX-Injected: 1', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']],
      ['a WebSocket key with encoded CRLF', 'GET', '/push/ws?after=0', [bearer, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhl%0d%0aX-Injected: 1', 'Sec-WebSocket-Version: 13']],
      ['a folded header line (obs-fold)', 'GET', '/api/visitor/session', [bearer, 'X-Foo: a', ' X-Injected: 1'], 0, 400],
      ['a bare CR in a header', 'GET', '/api/visitor/session', [bearer, 'X-Foo: a\rX-Injected: 1'], 0, 400],
      ['an Origin with a bare LF', 'GET', '/api/visitor/session', [bearer, 'Origin: http://a\nX-Injected: 1']],
      ['a NUL in a header', 'GET', '/api/visitor/session', [bearer, 'X-Foo: a\u0000X-Injected: 1'], 0, 400],
    ];
    for (const [what, method, target, headers, timeout, status] of cases) {
      const r = await rawRequest(srv, method, target, { headers, timeout: timeout || 3000 });
      assertNoInjectedHeader(r, what);
      if (status) assert.equal(r.status, status, `${what}: refused by the parser`);
      if (target.startsWith('/?')) assert.deepEqual(r.headers.location, ['/chat'], `${what}: the redirect is fixed`);
    }
    // Names and messages with CR/LF stay inside JSON strings.
    const name = 'Mallory\r\nX-Injected: 1\r\n\r\n<b>';
    const nv = await rawRequest(srv, 'POST', '/api/visitor/session', { body: JSON.stringify({ name }) });
    assertNoInjectedHeader(nv, 'a visitor name with CRLF');
    assert.equal(JSON.parse(nv.body).visitor.name, name.trim());
    // A log line cannot be forged: the e-mail of a failed login is logged with its control
    // characters replaced.
    const forged = 'FORGED 2026-01-01T00:00:00.000Z info  agent admin@example.com logged in';
    for (const email of [`x@y\n${forged}`, `x@y\r\n${forged}`, `x@y\r${forged}`]) {
      const r = await rawRequest(srv, 'POST', '/api/agent/login', { body: JSON.stringify({ email, password: 'x' }) });
      assertNoInjectedHeader(r, 'a login e-mail with CRLF');
      assert.equal(r.status, 401);
    }
    // (E-mails are lower-cased before they are logged.)
    await eventually(() => (srv.log.match(/failed login for x@y/g) || []).length === 3, { what: 'the three failed logins logged' });
    const lines = srv.log.split(/\r?\n|\r/);
    assert.deepEqual(lines.filter((l) => /^forged/i.test(l)), [], 'no log line starts with the injected text');
    assert.equal(lines.filter((l) => /failed login for x@y\?+forged 2026/i.test(l)).length, 3, `each e-mail logged on one line, ? for control characters:\n${lines.filter((l) => /forged/i.test(l)).join('\n')}`);
  }),
);

// ---------------------------------------------------------------------------------------------
// Visitor vs visitor: enumeration of conversations and messages

test('visitor vs visitor: agent routes answer a visitor token 401 alike for existing and missing ids; read receipts and WebSocket actions on other visitors\' ids are indistinguishable from missing ones; no page URL is stored', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const a = await newVisitor(srv, 'Alice');
    const b = await newVisitor(srv, 'Bob');
    const ma = await visitorSend(srv, a.token, 'Alice asks');
    const ag = await agentLogin(srv, ANA.email, ANA.password);
    const ra = await agentSend(srv, ag, ma.conversation_id, 'for Alice');
    const mb = await visitorSend(srv, b.token, 'Bob asks');
    const MISSING_CONV = 987654;
    const MISSING_MSG = 987654321;

    // Every agent route of the table, with Bob's bearer token: 401, and byte-identical for
    // Alice's conversation and for one that does not exist.
    const routes = routeTable().filter((r) => r.access === 'agent' || r.access === 'admin');
    assert.ok(routes.length >= 10, JSON.stringify(routes));
    for (const r of routes) {
      const body = r.method === 'POST' ? { body: 'x', up_to: ma.id, typing: true, status: 'resolved' } : undefined;
      const answers = [];
      for (const id of [ma.conversation_id, MISSING_CONV]) {
        const p = r.pattern.replace('{id}', id) + (r.pattern.endsWith('/messages') && r.method === 'GET' ? '?after=0' : '');
        answers.push(await srv.api(r.method, p, { token: b.token, body }));
      }
      assertError(answers[0], 401, 'unauthorized', `${r.method} ${r.pattern} with a visitor token`);
      assert.equal(answers[0].text, answers[1].text, `${r.method} ${r.pattern}: the same answer for an existing and a missing id`);
    }

    // Read receipts on Alice's messages (hers, and the agent's reply to her) look exactly like
    // receipts on a message that does not exist.
    const answers = [];
    for (const up_to of [ma.id, ra.id, MISSING_MSG]) {
      const r = await srv.api('POST', '/api/visitor/read', { token: b.token, body: { up_to } });
      assertError(r, 404, 'not_found', `Bob's read receipt on ${up_to}`);
      answers.push(r.text);
    }
    assert.equal(new Set(answers).size, 1, `identical answers: ${answers.join(' | ')}`);
    let c = await srv.api('GET', `/api/conversations/${ma.conversation_id}`, { cookie: ag.cookie });
    assert.equal(c.json.conversation.visitor_read_up_to, 0, "Alice's read mark untouched");

    // Over WebSocket: the same, and a conversation id in a visitor's action is ignored.
    const tk = (await srv.api('POST', '/api/visitor/push-ticket', { token: b.token })).json.ticket;
    const ws = await RawWs.open(srv.port, { path: `/push/ws?after=${mb.id}&ticket=${encodeURIComponent(tk)}` });
    const errors = [];
    for (const up_to of [ma.id, ra.id, MISSING_MSG]) {
      await ws.text(JSON.stringify({ type: 'read', up_to, conversation_id: ma.conversation_id, ref: 'r' }));
      const j = await ws.json(3000, `the answer to a read of ${up_to}`);
      assert.equal(j.type, 'error', JSON.stringify(j));
      errors.push(JSON.stringify(j));
    }
    assert.equal(new Set(errors).size, 1, `identical WebSocket errors: ${errors.join(' | ')}`);
    const agentHeld = (await heldLongPoll(srv, `/push/longpoll?after=${mb.id}&timeout=5`, { cookie: ag.cookie })).result;
    await ws.text(JSON.stringify({ type: 'typing', typing: true, conversation_id: ma.conversation_id }));
    const typing = (await agentHeld).json.events;
    assert.deepEqual(typing.map((e) => [e.type, e.conversation_id]), [['typing', mb.conversation_id]], 'typing names Bob\'s own conversation');
    await ws.text(JSON.stringify({ type: 'send', body: 'sneaky', conversation_id: ma.conversation_id, ref: 's' }));
    let ack;
    do ack = await ws.json(3000, 'the ack'); while (ack.type !== 'ack');
    assert.equal(ack.message.conversation_id, mb.conversation_id, "lands in Bob's own conversation");
    ws.destroy();
    const alice = await srv.api('GET', '/api/visitor/messages?after=0', { token: a.token });
    assert.deepEqual(alice.json.messages.map((m) => m.id), [ma.id, ra.id], "nothing of Bob's reached Alice");

    // A session's start stores no page URL or referrer: extra fields are ignored, the visitor is
    // {id, name} everywhere, and the Referer a browser might send is not kept (only what the page
    // reports with POST /api/visitor/page is: http(s) URLs, shown by the visitor panel).
    const s = await srv.api('POST', '/api/visitor/session', {
      body: { name: 'Carol', url: 'javascript:alert(1)', page_url: 'https://evil.example/', referrer: 'https://evil.example/' },
      headers: { Referer: 'https://evil.example/landing?q=<script>' },
    });
    assert.equal(s.status, 201, s.text);
    assert.deepEqual(Object.keys(s.json.visitor).sort(), ['id', 'name', 'verified']);
    assert.equal(s.json.visitor.verified, false, 'only a site\'s signature verifies (docs/IDENTITY.md)');
    await visitorSend(srv, s.json.token, 'from Carol');
    const list = await srv.api('GET', '/api/conversations', { cookie: ag.cookie });
    for (const conv of list.json.conversations) assert.deepEqual(Object.keys(conv.visitor).sort(), ['id', 'name']);
    assert.equal(sqlite(srv, "SELECT count(*) FROM visitors WHERE name LIKE '%evil%' OR name LIKE '%javascript%'"), '0');
    const columns = sqlite(srv, "SELECT group_concat(name, ',') FROM pragma_table_info('visitors')");
    assert.ok(!/url|referr|page|agent_string/i.test(columns), `the visitors table has no URL or referrer column: ${columns}`);
  }),
);

// ---------------------------------------------------------------------------------------------
// A stolen database: what is in the file

test('the database file: scrypt hashes with per-user salts (same password, different hashes), SHA-256 of visitor and session tokens, no secret in clear, mode 0600', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const SAME = 'the very same passphrase 123';
    const agents = [
      { email: 'same1@example.com', name: 'Same One', password: SAME, role: 'admin' },
      { email: 'same2@example.com', name: 'Same Two', password: SAME, role: 'agent' },
    ];
    const srv = await env.server({ agents });
    const v = await newVisitor(srv, 'Vera');
    await visitorSend(srv, v.token, 'hello');
    const s1 = await agentLogin(srv, agents[0].email, SAME);
    await agentLogin(srv, agents[1].email, SAME);
    const rows = sqlite(srv, "SELECT email || ' ' || password_hash FROM agents ORDER BY id").split('\n').map((l) => l.split(' '));
    assert.equal(rows.length, 2);
    const hashes = rows.map((r) => r[1]);
    assert.notEqual(hashes[0], hashes[1], 'the same password hashes differently');
    const salts = [];
    for (const h of hashes) {
      const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(h);
      assert.ok(m, `scrypt$logN$r$p$salt$key: ${h}`);
      assert.deepEqual([Number(m[1]), Number(m[2]), Number(m[3])], [15, 8, 1], 'N=2^15, r=8, p=1');
      assert.equal(Buffer.from(m[4], 'base64').length, 16, 'a 16-byte salt');
      assert.equal(Buffer.from(m[5], 'base64').length, 32, 'a 32-byte key');
      salts.push(m[4]);
      for (const form of [SAME, Buffer.from(SAME).toString('base64').replace(/=+$/, ''), Buffer.from(SAME).toString('hex')]) {
        assert.ok(!h.includes(form), `no form of the password in ${h}`);
      }
    }
    assert.notEqual(salts[0], salts[1], 'per-user salts');
    // The hash really is scrypt of the password with that salt (so nothing weaker hides behind
    // the label).
    const m0 = /^scrypt\$15\$8\$1\$([^$]+)\$([^$]+)$/.exec(hashes[0]);
    const key = crypto.scryptSync(SAME, Buffer.from(m0[1], 'base64'), 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    assert.equal(key.toString('base64').replace(/=+$/, ''), m0[2], 'scrypt(password, salt)');

    // Tokens: only their SHA-256.
    const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
    assert.equal(sqlite(srv, 'SELECT token_hash FROM visitors'), sha(v.token), "the visitor token's SHA-256");
    const session = s1.cookie.split('=')[1];
    assert.equal(sqlite(srv, `SELECT count(*) FROM sessions WHERE token_hash = '${sha(session)}'`), '1', "the session id's SHA-256");
    // No secret anywhere in the files (database and write-ahead log), nor in the debug log.
    const files = ['', '-wal', '-shm'].map((x) => path.join(srv.dataDir, DB_FILE + x)).filter((f) => fs.existsSync(f));
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const [what, secret] of [['the password', SAME], ['the visitor token', v.token], ['the session id', session]]) {
        assert.equal(bytes.indexOf(secret), -1, `${what} in ${path.basename(f)}`);
      }
      assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${path.basename(f)} is mode 0600`);
    }
    for (const [what, secret] of [['the password', SAME], ['the visitor token', v.token], ['the session id', session]]) {
      assert.ok(!srv.log.includes(secret), `${what} in the server's debug log`);
    }
    // And both log in; a wrong password does not.
    assertError(await srv.api('POST', '/api/agent/login', { body: { email: agents[1].email, password: SAME + ' ' } }), 401, 'unauthorized', 'a wrong password');
  }),
);
