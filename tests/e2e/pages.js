'use strict';
// pages.js: driving kefu's pages in the browser tests: open the visitor page and the agent console
// (logged in), wait for the connection state, read and wait for messages and conversation items,
// and the checks every page test ends with (no dialogs, no page errors or CSP violations).

const assert = require('node:assert/strict');
const { DEFAULT_AGENTS, api } = require('./harness');

const T = 10000; // the usual wait for something live
const T_RESTART = 30000; // after a server restart (client backoff up to 15 s + jitter)
const ANA = DEFAULT_AGENTS[0];

// ---------------------------------------------------------------------------------------------
// Page helpers

// Dialogs (must never fire), uncaught page errors and CSP violations (the pages must run under
// `default-src 'self'`), collected per page and asserted empty at the end of each test.
function trackDialogs(page) {
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.kefuProblems = [];
  page.on('pageerror', (e) => page.kefuProblems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (execute|load|apply)/i.test(m.text())) page.kefuProblems.push(`console: ${m.text()}`);
  });
  return dialogs;
}

function assertNoPageProblems(...wrappers) {
  for (const w of wrappers) assert.deepEqual(w.page.kefuProblems, [], `${w.label}: page errors / CSP violations`);
}

// Waits for #conn-state[data-state] to be one of the accepted states.
async function waitState(page, states, timeout = T) {
  try {
    await page.waitForFunction((states) => {
      const el = document.querySelector('#conn-state');
      return !!el && states.includes(el.getAttribute('data-state'));
    }, states, { timeout, polling: 100 });
  } catch (e) {
    const st = await page.$eval('#conn-state', (el) => el.getAttribute('data-state')).catch(() => '(no #conn-state)');
    throw new Error(`${page.url()}: #conn-state not ${states.join('|')} within ${timeout} ms (data-state=${st})`);
  }
}

// The push channel is open: the page has heard from the server on it.
function waitConnected(page, timeout = T) {
  return waitState(page, ['connected'], timeout);
}

async function assertConnected(...wrappers) {
  for (const w of wrappers) await waitState(w.page, ['connected'], T);
}

// transport null: no ?transport=, the push client chooses.
// srv: anything with a `base` (a server, or a proxy in front of one); query: more parameters.
function pageUrl(srv, path, transport, query = {}) {
  const params = new URLSearchParams(query);
  if (transport) params.set('transport', transport);
  const q = params.toString();
  return `${srv.base}${path}${q ? `?${q}` : ''}`;
}

async function openVisitor(env, srv, transport, label = 'visitor') {
  const page = await env.page(label);
  const dialogs = trackDialogs(page);
  await page.goto(pageUrl(srv, '/chat', transport));
  await waitConnected(page);
  return { page, dialogs, label };
}

async function openAgent(env, srv, transport, agent = ANA, query = {}) {
  const page = await env.page(`agent ${agent.name}`);
  const dialogs = trackDialogs(page);
  await page.goto(pageUrl(srv, '/agent', transport, query));
  await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
  await page.fill('#login-email', agent.email);
  await page.fill('#login-password', agent.password);
  await page.click('#login-submit');
  await page.waitForFunction((name) => {
    const el = document.querySelector('#agent-name');
    return el && el.offsetParent !== null && el.textContent.includes(name);
  }, agent.name, { timeout: T });
  await waitConnected(page);
  return { page, dialogs, label: `agent ${agent.name}` };
}

// Messages currently shown in a container (#messages or #thread), in DOM order; unsent ones
// (`.msg.pending`) have a key and a state instead of an id.
function readMsgs(page, container) {
  return page.$$eval(`${container} .msg`, (els) =>
    els.map((e) => ({
      id: e.getAttribute('data-id'),
      key: e.getAttribute('data-key'),
      state: e.classList.contains('pending') ? e.getAttribute('data-state') : null,
      sender: e.getAttribute('data-sender'),
      body: e.querySelector('.msg-body') ? e.querySelector('.msg-body').textContent : null,
      author: e.querySelector('.msg-author') ? e.querySelector('.msg-author').textContent : null,
      htmlChildren: e.querySelector('.msg-body') ? e.querySelector('.msg-body').children.length : -1,
    })),
  );
}

// Waits until the message with this text (from this sender) is shown, with its data-id.
async function waitMsg(page, container, body, sender, timeout = T) {
  try {
    await page.waitForFunction(
      ({ container, body, sender }) =>
        [...document.querySelectorAll(`${container} .msg[data-id]`)].some(
          (m) => m.getAttribute('data-sender') === sender && m.querySelector('.msg-body') && m.querySelector('.msg-body').textContent === body,
        ),
      { container, body, sender },
      { timeout, polling: 100 },
    );
  } catch (e) {
    const got = await readMsgs(page, container).catch(() => []);
    throw new Error(`${page.url()}: message ${JSON.stringify(body)} from ${sender} not shown in ${container} within ${timeout} ms; shown: ${JSON.stringify(got)}`);
  }
}

// Expect-style: polls until the container shows exactly `expected` bodies in order, then checks
// every .msg has a numeric data-id, ids are unique and ascending, senders as expected.
async function expectThread(page, container, expected, timeout = T) {
  const deadline = Date.now() + timeout;
  let got;
  for (;;) {
    got = await readMsgs(page, container);
    const bodies = got.map((m) => m.body);
    if (JSON.stringify(bodies) === JSON.stringify(expected.map((e) => e.body)) && got.every((m) => !m.state)) break;
    if (Date.now() > deadline) {
      assert.deepEqual(bodies, expected.map((e) => e.body), `${page.url()} ${container}: messages shown (full: ${JSON.stringify(got)})`);
    }
    await page.waitForTimeout(100); // polling interval of an expect-style wait
  }
  const ids = got.map((m) => m.id);
  for (const id of ids) assert.match(String(id), /^\d+$/, `${container}: every .msg has a numeric data-id: ${JSON.stringify(got)}`);
  assert.equal(new Set(ids).size, ids.length, `${container}: duplicate data-id in ${JSON.stringify(got)}`);
  const nums = ids.map(Number);
  assert.deepEqual(nums, [...nums].sort((a, b) => a - b), `${container}: messages ordered by id: ${JSON.stringify(got)}`);
  assert.deepEqual(got.map((m) => m.sender), expected.map((e) => e.sender), `${container}: senders`);
  for (const m of got) {
    assert.equal(m.htmlChildren, 0, `${container}: .msg-body of ${m.id} has element children (innerHTML?)`);
    if (m.sender === 'agent') assert.ok(m.author && m.author.length > 0, `${container}: agent message ${m.id} shows .msg-author`);
  }
  return got;
}

async function visitorSay(v, body) {
  await v.page.fill('#message-input', body);
  await v.page.press('#message-input', 'Enter');
  await waitMsg(v.page, '#messages', body, 'visitor');
}

async function agentSay(a, body, { click = false } = {}) {
  await a.page.waitForSelector('#reply-input:not([disabled])', { timeout: T });
  await a.page.fill('#reply-input', body);
  if (click) await a.page.click('#reply-send');
  else await a.page.press('#reply-input', 'Enter');
  await waitMsg(a.page, '#thread', body, 'agent');
}

async function visitorToken(v) {
  const tok = await v.page.evaluate(() => localStorage.getItem('kefu.visitor.token'));
  assert.ok(tok, 'visitor token in localStorage["kefu.visitor.token"]');
  return tok;
}

async function conversationOf(srv, token) {
  const r = await api(srv.base, 'GET', '/api/visitor/messages?after=0', { token });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.messages.length > 0, 'visitor has messages');
  return r.json.messages[0].conversation_id;
}

const convSel = (id) => `#conversation-list .conv-item[data-id="${id}"]`;

async function conv(a, id) {
  return a.page.$eval(convSel(id), (el) => {
    const badge = el.querySelector('.conv-unread');
    const visible = (x) => !!x && !!(x.offsetWidth || x.offsetHeight || x.getClientRects().length) && getComputedStyle(x).visibility !== 'hidden';
    return {
      unread: el.getAttribute('data-unread'),
      badgeText: badge ? badge.textContent.trim() : null,
      badgeVisible: visible(badge),
      selected: el.classList.contains('selected'),
      name: el.querySelector('.conv-name') ? el.querySelector('.conv-name').textContent : null,
      preview: el.querySelector('.conv-preview') ? el.querySelector('.conv-preview').textContent : null,
      previewChildren: el.querySelector('.conv-preview') ? el.querySelector('.conv-preview').children.length : -1,
      hasTime: !!el.querySelector('.conv-time'),
    };
  });
}

// Waits until the conversation item exists and pred(state) holds; returns the state.
async function waitConv(a, id, pred, what, timeout = T) {
  const deadline = Date.now() + timeout;
  let st = null;
  for (;;) {
    st = (await a.page.$(convSel(id))) ? await conv(a, id) : null;
    if (st && pred(st)) return st;
    if (Date.now() > deadline) {
      const list = await a.page.$$eval('#conversation-list .conv-item', (els) => els.map((e) => e.outerHTML)).catch(() => []);
      throw new Error(`agent: conversation ${id}: ${what} not reached within ${timeout} ms; state ${JSON.stringify(st)}; list: ${list.join('\n')}`);
    }
    await a.page.waitForTimeout(100);
  }
}

async function selectConv(a, id) {
  await a.page.click(`${convSel(id)}`);
  await waitConv(a, id, (s) => s.selected, 'selected class');
}

const V = (body) => ({ body, sender: 'visitor' });
const A = (body) => ({ body, sender: 'agent' });

// The console's session cookie (HttpOnly: read through the context, not document.cookie).
async function agentCookie(a) {
  const cookies = await a.page.context().cookies();
  const c = cookies.find((x) => x.name === 'kefu_session');
  return c ? `kefu_session=${c.value}` : undefined;
}

module.exports = {
  T,
  T_RESTART,
  ANA,
  trackDialogs,
  assertNoPageProblems,
  waitState,
  waitConnected,
  assertConnected,
  pageUrl,
  openVisitor,
  openAgent,
  readMsgs,
  waitMsg,
  expectThread,
  visitorSay,
  agentSay,
  visitorToken,
  conversationOf,
  convSel,
  conv,
  waitConv,
  selectConv,
  agentCookie,
  V,
  A,
};
