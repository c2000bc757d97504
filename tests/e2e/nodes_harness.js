'use strict';
// nodes_harness.js: several kefu nodes in one test (bus.test.js, nodes.test.js):
//  - Redis: a throw-away redis-server on a loopback port (stopped and started again mid-test).
//  - cluster(): Redis and N nodes on one shared store, each on its own port, all ready. The nodes
//    share one data directory, and the store is whatever harness.js gives a server for it: its
//    SQLite, or with KEFU_STORE the PostgreSQL database harness.js makes for that directory (the
//    PostgreSQL backend's work), so that the same tests run on either.
//  - Balancer: a TCP load balancer in front of some nodes, without sticky sessions: each new
//    connection goes to the first node (or, round robin, the next node) that accepts it.
//  - killHard(): SIGKILL a node, as a crash would.
//  - readyz(), waitReady(), waitTyping().

const net = require('node:net');
const { spawn } = require('node:child_process');
const { Kefu, addAgent, api, eventually, tmpDir, DEFAULT_AGENTS } = require('./harness');
const { T } = require('./pages');

const REDIS_BIN = process.env.REDIS_SERVER || 'redis-server';

// A loopback port nobody listens on now.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Whether something accepts connections on the port.
function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// A throw-away Redis on a loopback port: nothing saved, nothing appended.
class Redis {
  constructor(port) {
    this.port = port;
    this.proc = null;
    this.log = '';
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start() {
    const proc = spawn(REDIS_BIN, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.exited = new Promise((resolve) => proc.on('exit', resolve));
    proc.stdout.on('data', (c) => (this.log += c));
    proc.stderr.on('data', (c) => (this.log += c));
    this.proc = proc;
    await eventually(() => accepts(this.port), { what: `redis-server on ${this.port}` });
  }

  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    proc.kill('SIGKILL');
    await proc.exited;
  }
}

async function readyz(node) {
  return api(node.base, 'GET', '/readyz');
}

async function waitReady(node, status, timeout = T) {
  await eventually(async () => (await readyz(node)).status === status, { timeout, what: `${node.name} /readyz ${status}` });
}

// Redis, then `count` nodes on one store with the default agents, every one ready (Redis
// reached). extra: more flags for every node. Returns {redis, nodes}; env stops them all.
async function cluster(env, { count = 2, extra = [] } = {}) {
  const redis = new Redis(await freePort());
  await redis.start();
  env.defer(() => redis.stop());
  const dataDir = tmpDir();
  for (const a of DEFAULT_AGENTS) {
    const r = addAgent(dataDir, a);
    if (r.status !== 0) throw new Error(`kefu user add ${a.email}: status ${r.status} ${r.signal || ''}\n${r.stdout}${r.stderr}`);
  }
  const args = ['--bus', redis.url, ...extra];
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const node = new Kefu({ name: `kefu#${i + 1}`, dataDir, args });
    env.servers.push(node);
    nodes.push(node);
    await node.start();
  }
  for (const node of nodes) await waitReady(node, 200);
  return { redis, nodes };
}

// Kills a node with SIGKILL (no drain, no goodbye: a crash) and waits until it is gone.
async function killHard(node) {
  const proc = node.proc;
  if (!proc) return;
  node.proc = null;
  proc.kill('SIGKILL');
  await proc.exitPromise;
}

// A TCP load balancer on a loopback port in front of nodes, as HAProxy in `mode tcp` without
// stickiness: each new connection goes to a node that accepts it, the first in the list
// ('first': the others are the spares a dead node's clients come to) or the next in turn
// ('roundrobin'); a connection whose node goes away is closed, and the client connects again.
class Balancer {
  constructor(nodes, { mode = 'first' } = {}) {
    this.nodes = nodes;
    this.mode = mode;
    this.next = 0;
    this.server = null;
    this.port = 0;
    this.sockets = new Set();
    this.connections = new Map(nodes.map((n) => [n, 0])); // connections handed to each node
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  api(method, p, opts) {
    return api(this.base, method, p, opts);
  }

  async start() {
    this.server = net.createServer((client) => this._route(client));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  _route(client) {
    this.sockets.add(client);
    client.pause();
    client.on('error', () => {});
    client.on('close', () => this.sockets.delete(client));
    const start = this.mode === 'roundrobin' ? this.next++ % this.nodes.length : 0;
    const attempt = (tried) => {
      if (tried >= this.nodes.length || client.destroyed) {
        client.destroy();
        return;
      }
      const node = this.nodes[(start + tried) % this.nodes.length];
      const upstream = net.connect({ port: node.port, host: '127.0.0.1' });
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        this.connections.set(node, this.connections.get(node) + 1);
        this.sockets.add(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (!connected) attempt(tried + 1);
      });
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        if (connected) client.destroy();
      });
      client.on('close', () => upstream.destroy());
    };
    attempt(0);
  }

  async stop() {
    if (!this.server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = null;
  }
}

async function balancer(env, nodes, opts) {
  const lb = await new Balancer(nodes, opts).start();
  env.defer(() => lb.stop());
  return lb;
}

// Waits until the typing indicator (selector) is shown with text matching re.
async function waitTyping(page, selector, re, timeout = T) {
  await page.waitForSelector(selector, { state: 'visible', timeout });
  await page.waitForFunction(({ selector, source }) => new RegExp(source).test(document.querySelector(selector).textContent), { selector, source: re.source }, {
    timeout,
    polling: 100,
  });
}

module.exports = {
  REDIS_BIN,
  freePort,
  accepts,
  Redis,
  readyz,
  waitReady,
  cluster,
  killHard,
  Balancer,
  balancer,
  waitTyping,
};
