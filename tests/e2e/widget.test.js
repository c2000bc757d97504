'use strict';
// widget.test.js: the website widget (issue 15; docs/API.md, "The website widget"). A plain HTML
// page on another site (a small server on http://localhost:PORT, while kefu is
// http://127.0.0.1:PORT: another origin and another site) holds only the one tag. The visitor opens
// the launcher, chats, an agent answers from the console and the reply appears without a reload;
// the host page reloads and the history is there; close and open; a reply while it is closed shows
// the unread count (and is not read); in a new tab the hidden frame opens by itself for a reply;
// the host page's API (queued calls, setName, events) and the postMessage checks both ways; the
// phone viewport; and the headers: the loader's size, type and caching, the widget page framed by
// another site while /chat and /agent still refuse it.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const { scenario, closeBrowser, agentLogin, eventually, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, waitMsg, agentSay, waitConnected, assertNoPageProblems, trackDialogs } = require('./pages');

after(closeBrowser);

const [ANA] = DEFAULT_AGENTS;
const T = 15000;
const LOADER_MAX_GZIP = 5 * 1024;

// A customer's site: each path is a page (HTML given by the test), on http://localhost:PORT.
async function hostSite(env, pages) {
  const server = http.createServer((req, res) => {
    const body = pages[req.url.split('?')[0]];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://localhost:${server.address().port}`;
}

const page = (srv, head = '', body = '', attrs = '') =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover"><title>Blue sneakers – Shop</title>${head}</head><body>${body}<script src="${srv.base}/widget.js"${attrs} async></script></body></html>`;

async function hostPage(env, url, label, options = {}) {
  const ctx = options.context || await env.context(label);
  const p = await ctx.newPage();
  if (options.viewport) await p.setViewportSize(options.viewport);
  trackDialogs(p);
  await p.goto(url);
  return { page: p, label, context: ctx };
}

const launcher = (p) => p.locator('kefu-widget button').first();

// The widget's frame once it exists (it is created lazily).
async function widgetFrame(p) {
  const handle = await p.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T });
  return handle.contentFrame();
}

// What the launcher shows: its name, whether the chat box is open, the badge's text.
function launcherState(p) {
  return p.evaluate(() => {
    const root = document.querySelector('kefu-widget').shadowRoot;
    const button = root.querySelector('button');
    const box = root.querySelector('.f');
    const badge = button.querySelector('.b');
    return {
      name: button.getAttribute('aria-label'),
      expanded: button.getAttribute('aria-expanded'),
      open: getComputedStyle(box).visibility === 'visible',
      badge: badge ? badge.textContent : null,
      frames: root.querySelectorAll('iframe').length,
    };
  });
}

async function waitLauncher(p, pred, what) {
  let last = null;
  try {
    return await eventually(async () => {
      last = await launcherState(p);
      return pred(last) && last;
    }, { timeout: T, what });
  } catch (e) {
    throw new Error(`${what}: launcher ${JSON.stringify(last)}`);
  }
}

async function agentConv(srv, agent) {
  const r = await srv.api('GET', '/api/conversations', { cookie: agent.cookie });
  assert.equal(r.status, 200, r.text);
  return r.json.conversations[0];
}

test('the widget on another site: open, chat, a live reply, reload keeps the history, close and open, the unread count, a reply opens a new tab\'s chat', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const site = await hostSite(env, { '/': page(srv), '/other': page(srv) });
    const host = await hostPage(env, `${site}/`, 'host', { viewport: { width: 1280, height: 800 } });
    const p = host.page;

    // The launcher, and no chat until it is asked for.
    await launcher(p).waitFor({ timeout: T });
    let st = await launcherState(p);
    assert.deepEqual([st.name, st.expanded, st.open, st.badge, st.frames], ['Open chat', 'false', false, null, 0], 'a closed launcher, no frame yet');
    const box = await launcher(p).boundingBox();
    assert.ok(box.x + box.width > 1280 - 40 && box.y + box.height > 800 - 40, `bottom right: ${JSON.stringify(box)}`);
    await p.getByRole('button', { name: 'Open chat' }).click();
    const frame = await widgetFrame(p);
    await waitConnected(frame);
    st = await waitLauncher(p, (s) => s.open, 'open');
    assert.equal(st.name, 'Close chat');
    assert.match(frame.url(), /^http:\/\/127\.0\.0\.1:\d+\/widget\?lang=en#origin=http%3A%2F%2Flocalhost%3A\d+$/);

    // Chat: the agent answers from the console, and the reply appears with no reload.
    await frame.fill('#message-input', 'Do you have these in size 44?');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'Do you have these in size 44?', 'visitor');
    const ana = await openAgent(env, srv, 'sse', ANA);
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const conv = await agentConv(srv, agent);
    await selectConv(ana, conv.id);
    await agentSay(ana, 'We do: two pairs left.');
    await waitMsg(frame, '#messages', 'We do: two pairs left.', 'agent');
    // The agents see the host page, not the frame's address.
    await eventually(async () => {
      const r = await srv.api('GET', `/api/conversations/${conv.id}/visitor`, { cookie: agent.cookie });
      return r.json.visitor && r.json.visitor.page && r.json.visitor.page.url === `${site}/` && r.json.visitor.page.title === 'Blue sneakers – Shop';
    }, { timeout: T, what: 'the host page reported' });

    // Close: the frame stays loaded, hidden; a reply arrives in it live, counts on the launcher,
    // and is not marked read while the visitor cannot see it.
    await p.getByRole('button', { name: 'Close chat' }).click();
    st = await waitLauncher(p, (s) => !s.open, 'closed');
    assert.deepEqual([st.name, st.frames], ['Open chat', 1]);
    await agentSay(ana, 'Shall I keep a pair for you?');
    await waitMsg(frame, '#messages', 'Shall I keep a pair for you?', 'agent');
    st = await waitLauncher(p, (s) => s.badge === '1', 'the unread count');
    assert.equal(st.name, 'Open chat, 1 unread message');
    assert.equal(st.open, false, 'closed by the visitor: a reply does not open it');
    const reply = (await srv.api('GET', `/api/conversations/${conv.id}/messages?after=0`, { cookie: agent.cookie })).json.messages.at(-1);
    await p.waitForTimeout(500);
    assert.ok((await agentConv(srv, agent)).visitor_read_up_to < reply.id, 'not read while the chat is closed');
    await p.getByRole('button', { name: 'Open chat, 1 unread message' }).click();
    st = await waitLauncher(p, (s) => s.open && s.badge === null, 'open, no count');
    await eventually(async () => (await agentConv(srv, agent)).visitor_read_up_to === reply.id, { timeout: T, what: 'read once open' });

    // The token is kept where it survives a reload: in the frame's own storage, or (where the
    // browser refuses a third-party frame storage, as Chromium does now) by the loader in the
    // host page's; either way the chat does not warn that it will be lost.
    const token = await frame.evaluate(() => {
      try {
        return localStorage.getItem('kefu.visitor.token');
      } catch (e) {
        return null; // refused to this frame
      }
    });
    const keptByHost = await p.evaluate(() => JSON.parse(localStorage.getItem('kefu.widget.kept') || '{}')['kefu.visitor.token']);
    assert.ok(token || keptByHost, 'the visitor token is kept');
    t.diagnostic(token ? 'the frame keeps its own token' : 'the loader keeps the token in the host page\'s storage');
    assert.equal(await frame.isVisible('#widget-storage-notice'), false, 'no warning that the chat will be lost');

    // Reload the host page: the chat is open again (it was), with the whole history.
    await p.reload();
    const again = await widgetFrame(p);
    await waitConnected(again);
    await waitLauncher(p, (s) => s.open, 'open after the reload');
    for (const [body, sender] of [['Do you have these in size 44?', 'visitor'], ['We do: two pairs left.', 'agent'], ['Shall I keep a pair for you?', 'agent']]) {
      await waitMsg(again, '#messages', body, sender);
    }
    // The frame's own close button, and Escape from inside the frame.
    await again.getByRole('button', { name: 'Close chat' }).click();
    await waitLauncher(p, (s) => !s.open, 'closed by its own button');
    assert.equal(await p.evaluate(() => document.activeElement && document.activeElement.tagName), 'KEFU-WIDGET', 'focus back on the launcher');
    await launcher(p).click();
    await waitLauncher(p, (s) => s.open, 'open');
    await again.focus('#message-input');
    await p.keyboard.press('Escape');
    await waitLauncher(p, (s) => !s.open, 'closed by Escape');

    // Another page of the site in a new tab: the visitor has chatted, so the frame loads hidden,
    // and a reply opens the chat by itself there (the visitor closed it only in the first tab).
    const tab = await hostPage(env, `${site}/other`, 'host tab 2', { context: host.context });
    const tabFrame = await widgetFrame(tab.page);
    await waitConnected(tabFrame);
    st = await launcherState(tab.page);
    assert.equal(st.open, false, 'loaded hidden');
    await agentSay(ana, 'It is on hold until Friday.');
    await waitLauncher(tab.page, (s) => s.open, 'opened by the reply');
    await waitMsg(tabFrame, '#messages', 'It is on hold until Friday.', 'agent');
    await waitLauncher(p, (s) => s.badge !== null && !s.open, 'the first tab, closed by the visitor: a count');
    assertNoPageProblems(host, tab, ana);
  }));

test('the host page\'s API: calls queued before the loader, setName and setEmail reach the agents, opened/closed/message events, and postMessage from the wrong window is ignored both ways', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const queued = `<script>
      window.events = [];
      window.Kefu = window.Kefu || {q: []};
      Kefu.q.push(['setName', 'Wang Lei'], ['setEmail', 'wang@example.com']);
      Kefu.q.push(['on', 'opened', () => events.push('opened')], ['on', 'closed', () => events.push('closed')]);
      Kefu.q.push(['on', 'message', (m) => events.push(m)], ['on', 'unread', (n) => events.push('unread ' + n)]);
    </script>`;
    const site = await hostSite(env, { '/': page(srv, queued) });
    const host = await hostPage(env, `${site}/`, 'host', { viewport: { width: 1280, height: 800 } });
    const p = host.page;
    await launcher(p).waitFor({ timeout: T });
    assert.equal(await launcherState(p).then((s) => s.frames), 0, 'setName alone loads no chat');

    await p.evaluate(() => window.Kefu.open());
    const frame = await widgetFrame(p);
    await waitConnected(frame);
    await waitLauncher(p, (s) => s.open, 'opened by Kefu.open()');
    await frame.fill('#message-input', 'Hello');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'Hello', 'visitor');
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const conv = await eventually(async () => {
      const c = await agentConv(srv, agent);
      return c && c.visitor.name === 'Wang Lei' && c;
    }, { timeout: T, what: 'the agents see the name setName gave' });
    let r = await srv.api('GET', `/api/conversations/${conv.id}/visitor`, { cookie: agent.cookie });
    assert.equal(r.json.visitor.email, 'wang@example.com');

    // A later setName changes it; the console's list shows it.
    const ana = await openAgent(env, srv, 'ws', ANA);
    await p.evaluate(() => window.Kefu.setName('Li Na'));
    await ana.page.waitForFunction((id) => {
      const el = document.querySelector(`#conversation-list .conv-item[data-id="${id}"] .conv-name`);
      return el && el.textContent === 'Li Na';
    }, conv.id, { timeout: T });

    // Events: a reply while open reaches on('message') with its id and author, not its text.
    r = await srv.api('POST', `/api/conversations/${conv.id}/messages`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Hi Li Na!' } });
    assert.equal(r.status, 201, r.text);
    const replyId = r.json.message.id;
    await waitMsg(frame, '#messages', 'Hi Li Na!', 'agent');
    await p.evaluate(() => window.Kefu.close());
    await waitLauncher(p, (s) => !s.open, 'closed by Kefu.close()');
    const events = await eventually(async () => {
      const e = await p.evaluate(() => window.events);
      return e.includes('closed') && e;
    }, { timeout: T, what: 'events' });
    const messages = events.filter((e) => typeof e === 'object');
    assert.deepEqual(messages.map((m) => [m.id, m.agent_name, m.body]), [[replyId, 'Ana', undefined]], JSON.stringify(events));
    assert.deepEqual(events.filter((e) => typeof e === 'string' && !e.startsWith('unread')), ['opened', 'closed'], JSON.stringify(events));

    // The loader takes messages only from its frame: the host page's own window claiming 5
    // unread does nothing. The frame takes commands only from its parent: its own window
    // ordering it open, or a new name, does nothing.
    await p.evaluate(() => window.postMessage({ kefu: 1, ev: 'unread', count: 5 }, '*'));
    await frame.evaluate(() => window.postMessage({ kefu: 1, cmd: 'details', details: { name: 'Mallory' } }, '*'));
    await frame.evaluate(() => window.postMessage({ kefu: 1, cmd: 'open' }, '*'));
    await p.waitForTimeout(700);
    const st = await launcherState(p);
    assert.equal(st.badge, null, 'a forged unread count from the host window is ignored');
    r = await srv.api('GET', `/api/conversations/${conv.id}/visitor`, { cookie: agent.cookie });
    assert.equal(r.json.visitor.name, 'Li Na', 'a command from a window that is not the parent is ignored');
    // Still closed in the frame's view: a reply now counts as unread there.
    await srv.api('POST', `/api/conversations/${conv.id}/messages`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Anything else?' } });
    await waitLauncher(p, (s) => s.badge === '1', 'the reply counts as unread');
    assertNoPageProblems(host, ana);
  }));

test('where neither the frame nor the host page may keep the token: the chat works for the page\'s life and says so, with a link to the chat in its own tab', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    // The host page's storage refused, as a browser blocking all storage would.
    const blocked = `<script>Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('denied', 'SecurityError'); } });</script>`;
    const site = await hostSite(env, { '/': page(srv, blocked) });
    const host = await hostPage(env, `${site}/`, 'host', { viewport: { width: 1280, height: 800 } });
    const p = host.page;
    await launcher(p).click();
    const frame = await widgetFrame(p);
    await waitConnected(frame);
    const own = await frame.evaluate(() => {
      try {
        localStorage.setItem('kefu.probe', '1');
        return true;
      } catch (e) {
        return false;
      }
    });
    await frame.fill('#message-input', 'Hello');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'Hello', 'visitor');
    if (own) {
      // This browser lets the frame keep it: nothing to warn about.
      t.diagnostic('the frame has storage of its own here: no warning');
      assert.equal(await frame.isVisible('#widget-storage-notice'), false);
      return;
    }
    const notice = frame.getByRole('note').filter({ hasText: 'lasts until you leave the page' });
    await notice.waitFor({ timeout: T });
    const link = frame.getByRole('link', { name: 'Open the chat in its own tab' });
    assert.equal(await link.getAttribute('href'), '/chat');
    assert.equal(await link.getAttribute('target'), '_blank');
    assertNoPageProblems(host);
  }));

test('the widget on a phone (390×844): full screen when open, the launcher gone under it, the input visible at 16 px, closed by its header button', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const site = await hostSite(env, { '/': page(srv, '', '<p>A long product page.</p>'.repeat(80)) });
    const b = await require('./harness').browser();
    const ctx = await b.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    env.defer(() => ctx.close());
    const host = await hostPage(env, `${site}/`, 'phone host', { context: ctx });
    const p = host.page;
    await launcher(p).waitFor({ timeout: T });
    const lb = await launcher(p).boundingBox();
    assert.ok(lb.x + lb.width <= 390 && lb.y + lb.height <= 844 && lb.width >= 44, `the launcher on screen, big enough to tap: ${JSON.stringify(lb)}`);
    await launcher(p).tap();
    const frame = await widgetFrame(p);
    await waitConnected(frame);
    await waitLauncher(p, (s) => s.open, 'open');
    const fb = await (await p.$('kefu-widget >> iframe')).boundingBox();
    assert.deepEqual([fb.x, fb.y, fb.width, fb.height].map(Math.round), [0, 0, 390, 844], 'full screen');
    assert.equal(await launcher(p).isVisible(), false, 'the launcher is not over the chat');
    const input = await frame.$eval('#message-input', (el) => {
      const r = el.getBoundingClientRect();
      return { fontSize: getComputedStyle(el).fontSize, top: r.top, bottom: r.bottom, inner: window.innerHeight };
    });
    assert.equal(input.fontSize, '16px', 'no zoom on focus');
    assert.ok(input.bottom <= input.inner && input.top > input.inner / 2, `the input visible at the bottom: ${JSON.stringify(input)}`);
    // The keyboard takes the lower part of the screen (as a smaller viewport): the box follows,
    // and the input stays above it.
    await p.setViewportSize({ width: 390, height: 500 });
    await eventually(async () => {
      const r = await (await frame.$('#message-input')).boundingBox(); // in the host page's coordinates
      const f = await (await p.$('kefu-widget >> iframe')).boundingBox();
      return r && r.y + r.height <= 500 && r.y > 250 && Math.round(f.height) === 500;
    }, { timeout: T, what: 'the input above the keyboard' });
    await p.setViewportSize({ width: 390, height: 844 });
    await frame.fill('#message-input', 'On my phone');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'On my phone', 'visitor');
    await frame.getByRole('button', { name: 'Close chat' }).tap();
    await waitLauncher(p, (s) => !s.open, 'closed');
    assert.equal(await launcher(p).isVisible(), true);
    assertNoPageProblems(host);
  }));

test('headers: the loader is small, gzip, cached a while; the widget page may be framed by another site, /chat and /agent still may not', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const gz = await rawGet(srv, '/widget.js', { 'Accept-Encoding': 'gzip' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.match(gz.headers['content-type'], /^text\/javascript/);
    assert.equal(gz.headers['cache-control'], 'public, max-age=600');
    assert.ok(gz.body.length <= LOADER_MAX_GZIP, `widget.js is ${gz.body.length} bytes gzip, at most ${LOADER_MAX_GZIP}`);
    t.diagnostic(`widget.js: ${gz.body.length} bytes gzip, ${zlib.gunzipSync(gz.body).length} plain`);
    const widget = await rawGet(srv, '/widget', {});
    assert.match(widget.headers['content-security-policy'], /frame-ancestors \*;/);
    assert.equal(widget.headers['x-frame-options'], undefined);
    for (const path of ['/chat', '/agent']) {
      const r = await rawGet(srv, path, {});
      assert.match(r.headers['content-security-policy'], /frame-ancestors 'self';/, path);
      assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN', path);
    }

    // In a browser: another site frames all three; only the widget renders.
    const site = await hostSite(env, {
      '/frames': `<!doctype html><meta charset="utf-8"><iframe id="widget" src="${srv.base}/widget"></iframe><iframe id="chat" src="${srv.base}/chat"></iframe><iframe id="agent" src="${srv.base}/agent"></iframe>`,
    });
    const p = await env.page('framing site');
    await p.goto(`${site}/frames`);
    const rendered = async (id) => {
      const f = await (await p.$(`#${id}`)).contentFrame();
      return f ? f.evaluate(() => !!document.querySelector('#message-input, #login-form')).catch(() => false) : false;
    };
    await eventually(() => rendered('widget'), { timeout: T, what: 'the widget renders in another site\'s frame' });
    await p.waitForTimeout(500);
    assert.equal(await rendered('chat'), false, '/chat must not render in another site\'s frame');
    assert.equal(await rendered('agent'), false, '/agent must not render in another site\'s frame');
  }));

test('accessibility: no serious or critical axe violation on a host page with the launcher (closed, with a count) and in the open widget, desktop and phone (in Chinese, on the left, as the tag asks); opened from the keyboard, the focus in the box', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const AXE = require('node:fs').readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    const violations = async (where, what) => {
      await where.evaluate(AXE);
      const result = await where.evaluate(() => window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        resultTypes: ['violations'],
      }));
      return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${what}: ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
    };
    const srv = await env.server();
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const main = '<main><h1>Shop</h1><p>Blue sneakers.</p></main>';
    const site = await hostSite(env, { '/': page(srv, '', main), '/zh': page(srv, '', main, ' data-lang="zh-CN" data-position="left"') });
    const b = await require('./harness').browser();
    const found = [];
    for (const [width, height, size] of [[1280, 800, 'desktop'], [390, 844, 'phone']]) {
      const ctx = await b.newContext({ viewport: { width, height }, reducedMotion: 'reduce' });
      env.defer(() => ctx.close());
      const chinese = size === 'phone';
      const host = await hostPage(env, `${site}/${chinese ? 'zh' : ''}`, `host ${size}`, { context: ctx });
      const p = host.page;
      await launcher(p).waitFor({ timeout: T });
      if (chinese) {
        assert.equal((await launcherState(p)).name, '打开聊天');
        assert.ok((await launcher(p).boundingBox()).x < 40, 'data-position="left"');
      }
      found.push(...await violations(p, `${size}: the launcher`));
      // By keyboard: Tab reaches the launcher, Enter opens the chat with the focus in its box.
      await p.keyboard.press('Tab');
      assert.equal(await p.evaluate(() => document.activeElement.shadowRoot.activeElement.getAttribute('aria-expanded')), 'false', 'Tab reaches the launcher');
      await p.keyboard.press('Enter');
      const frame = await widgetFrame(p);
      await waitConnected(frame);
      if (!chinese) {
        await frame.waitForFunction(() => document.activeElement && document.activeElement.id === 'message-input', null, { timeout: T });
      }
      await frame.fill('#message-input', `Hello from a ${size}`);
      await frame.press('#message-input', 'Enter');
      await waitMsg(frame, '#messages', `Hello from a ${size}`, 'visitor');
      const conv = (await agentConv(srv, agent)).id;
      await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Hi there' } });
      await waitMsg(frame, '#messages', 'Hi there', 'agent');
      found.push(...await violations(frame, `${size}: the open widget`));
      if (chinese) assert.equal(await frame.evaluate(() => document.documentElement.lang), 'zh-CN', 'the frame in the language of the tag');
      await frame.click('#widget-close');
      await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: agent.cookie, csrf: agent.csrf, body: { body: 'Anything else?' } });
      await waitLauncher(p, (s) => s.badge === '1', 'a count');
      found.push(...await violations(p, `${size}: the launcher with a count`));
      await ctx.close();
    }
    assert.deepEqual(found, []);
  }));

// A GET with the body as bytes (gzip is not inflated) and lower-case header names.
function rawGet(srv, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
}

