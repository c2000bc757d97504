'use strict';
// fallback.test.js: the visitor page behind a proxy that turns hostile in the middle of a chat —
// first it refuses WebSocket (as many corporate proxies do), then it also buffers Server-Sent
// Events until the stream ends (as buffering proxies do) — falls back from WebSocket to SSE to
// long polling by itself and keeps chatting: every message from either side shown exactly once,
// in order, with nothing lost across the switches. The proxy is real (node's http, forwarding
// bytes to a real kefu); the agent talks to kefu directly.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { scenario, closeBrowser, DEFAULT_AGENTS, agentLogin, agentSend, eventually } = require('./harness');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];
const T = 30000; // a fallback waits for the client's 5-second first-event deadline and backoff

// A forwarding proxy in front of kefu whose behaviour the test changes: 'open' forwards
// everything; 'no-ws' refuses WebSocket upgrades; 'no-ws-buffer-sse' also holds every
// text/event-stream response back until kefu ends it. A change of mode drops the connections that
// the new mode would not have allowed, as a proxy restarted with the new policy would.
class Proxy {
  constructor(target) {
    this.target = target;
    this.mode = 'open';
    this.upgrades = new Set();
    this.streams = new Set();
    this.seen = { upgrade: 0, sse: 0, longpoll: 0, poll: 0 };
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)));
  }

  setMode(mode) {
    this.mode = mode;
    if (mode !== 'open') for (const s of this.upgrades) s.destroy();
    if (mode === 'no-ws-buffer-sse') for (const s of this.streams) s.destroy();
  }

  forward(req, res) {
    const path = req.url.split('?')[0];
    if (path === '/push/sse') this.seen.sse++;
    if (path === '/push/longpoll') this.seen.longpoll++;
    if (path === '/push/poll') this.seen.poll++;
    const up = http.request({ host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      const buffer = this.mode === 'no-ws-buffer-sse' && /text\/event-stream/.test(upRes.headers['content-type'] || '');
      if (/text\/event-stream/.test(upRes.headers['content-type'] || '')) {
        this.streams.add(res.socket);
        res.socket.on('close', () => this.streams.delete(res.socket));
      }
      if (!buffer) {
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
        return;
      }
      const chunks = [];
      upRes.on('data', (c) => chunks.push(c));
      upRes.on('end', () => {
        res.writeHead(upRes.statusCode, upRes.headers);
        res.end(Buffer.concat(chunks));
      });
      res.on('close', () => upRes.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }

  upgrade(req, socket, head) {
    this.seen.upgrade++;
    if (this.mode !== 'open') {
      socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const up = net.connect(this.target, '127.0.0.1', () => {
      let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(lines + '\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const both = () => {
      up.destroy();
      socket.destroy();
      this.upgrades.delete(socket);
    };
    this.upgrades.add(socket);
    up.on('error', both);
    socket.on('error', both);
    up.on('close', both);
    socket.on('close', both);
  }

  close() {
    for (const s of this.upgrades) s.destroy();
    for (const s of this.streams) s.destroy();
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(resolve);
    });
  }
}

async function transportOf(page) {
  return page.$eval('#conn-state', (el) => ({ state: el.getAttribute('data-state'), transport: el.getAttribute('data-transport') }));
}

async function waitTransport(page, transport, timeout = T) {
  try {
    await page.waitForFunction((t) => {
      const el = document.querySelector('#conn-state');
      return el && el.getAttribute('data-state') === 'connected' && el.getAttribute('data-transport') === t;
    }, transport, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`the page did not settle on ${transport} within ${timeout} ms: ${JSON.stringify(await transportOf(page))}`);
  }
}

function shown(page) {
  return page.$$eval('#messages .msg', (els) => els.map((e) => ({ id: e.getAttribute('data-id'), sender: e.getAttribute('data-sender'), body: e.querySelector('.msg-body').textContent })));
}

async function visitorSays(page, body) {
  await page.fill('#message-input', body);
  await page.press('#message-input', 'Enter');
  await page.waitForFunction((b) => [...document.querySelectorAll('#messages .msg[data-id]')].some((m) => m.querySelector('.msg-body').textContent === b), body, { timeout: T, polling: 100 });
}

test('fallback: WebSocket refused, then SSE buffered by a proxy: the page falls back to SSE, then to long polling, and keeps chatting with nothing lost or doubled', { timeout: 240000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const proxy = new Proxy(srv.port);
    const proxyPort = await proxy.listen();
    env.defer(() => proxy.close());
    const agent = await agentLogin(srv, ANA.email, ANA.password);
    const page = await env.page('visitor behind the proxy');
    await page.goto(`http://127.0.0.1:${proxyPort}/chat`);
    await waitTransport(page, 'ws');

    const expected = [];
    const say = async (body) => {
      await visitorSays(page, body);
      expected.push({ sender: 'visitor', body });
    };
    const answer = async (convId, body) => {
      await agentSend(srv, agent, convId, body);
      expected.push({ sender: 'agent', body });
    };
    const token = await page.evaluate(() => localStorage.getItem('kefu.visitor.token'));
    await say('hello over a WebSocket');
    const mine = await srv.api('GET', '/api/visitor/messages?after=0', { token });
    const convId = mine.json.messages[0].conversation_id;
    await answer(convId, 'answered over the WebSocket');

    // The proxy stops passing WebSocket: the page must fall back to SSE by itself. The agent
    // keeps writing meanwhile; those messages must arrive once the page is on SSE.
    proxy.setMode('no-ws');
    await answer(convId, 'written while the WebSocket was cut');
    await waitTransport(page, 'sse');
    await say('hello over SSE');
    await answer(convId, 'answered over SSE');

    // Now the proxy buffers event streams too: SSE never delivers its first event, and the page
    // must fall back to long polling.
    proxy.setMode('no-ws-buffer-sse');
    await answer(convId, 'written while SSE was being buffered');
    await waitTransport(page, 'longpoll');
    await say('hello over long polling');
    await answer(convId, 'answered over long polling');
    assert.ok(proxy.seen.upgrade >= 2 && proxy.seen.sse >= 2 && proxy.seen.longpoll >= 1, JSON.stringify(proxy.seen));

    // Every message exactly once, in order, on the page and on the server.
    await eventually(async () => {
      const got = await shown(page);
      assert.deepEqual(got.map(({ sender, body }) => ({ sender, body })), expected, 'the page shows every message once, in order');
      return true;
    }, { timeout: T, what: 'every message on the page' });
    const got = await shown(page);
    const ids = got.map((m) => Number(m.id));
    assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'ids ascending');
    assert.equal(new Set(ids).size, ids.length, 'no id twice');
    const stored = await srv.api('GET', '/api/visitor/messages?after=0', { token });
    assert.deepEqual(stored.json.messages.map((m) => m.body), expected.map((m) => m.body), 'the server stored exactly these');
  }));
