'use strict';
// shared.test.js: what several kefu nodes share through Redis beyond events: the password and
// database of --bus (AUTH and SELECT before anything else; a wrong password is a clear log line
// and /readyz 503, never a logged password), and the abuse limits held across nodes: failed
// logins spread over two nodes lock the account out after one budget, a visitor's messages
// alternating nodes get 429 after one node's budget, and push connections past the quota are
// refused on the second node.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');
const { Kefu, scenario, eventually, api, sleep } = require('./harness');

const REDIS_BIN = process.env.REDIS_SERVER || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
const T = 15000;

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

// A throw-away Redis on a loopback port (nothing saved), with extra arguments (--requirepass).
async function startRedis(env, extra = []) {
  const port = await freePort();
  const proc = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  env.defer(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  await eventually(() => accepts(port), { what: `redis-server on ${port}` });
  return port;
}

// The keys kefu holds in a Redis database.
function redisKeys(port, db, password) {
  const args = ['-p', String(port), '-n', String(db), '--no-auth-warning', '--scan', '--pattern', 'kefu:*'];
  if (password) args.unshift('-a', password);
  const r = spawnSync(REDIS_CLI, args, { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

async function readyz(node) {
  return api(node.base, 'GET', '/readyz');
}

async function waitReady(node, status) {
  await eventually(async () => (await readyz(node)).status === status, { timeout: T, what: `${node.name} /readyz ${status}` });
}

// Node 1 (which makes the data directory and its agents) and node 2 on the same data and bus.
async function twoNodes(env, bus, extra = []) {
  const args = ['--bus', bus, ...extra];
  const node1 = await env.server({ args });
  const node2 = new Kefu({ name: 'kefu#2 (same data)', dataDir: node1.dataDir, args });
  env.servers.push(node2);
  await node2.start();
  await waitReady(node1, 200);
  await waitReady(node2, 200);
  return { node1, node2 };
}

test('redis AUTH and SELECT: the right password and database serve; a wrong password is a clear log line and /readyz 503, never logged', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const password = 'pa:ss@word-Z9';
    const port = await startRedis(env, ['--requirepass', password]);
    const escaped = encodeURIComponent(password);
    const node = await env.server({ args: ['--bus', `redis://:${escaped}@localhost:${port}/3`] });
    await waitReady(node, 200);
    assert.match(node.log, new RegExp(`bus: connected to redis://:\\*\\*\\*@localhost:${port}/3`));

    const wrong = new Kefu({ name: 'kefu (wrong password)', dataDir: node.dataDir, args: ['--bus', `redis://:not-it-secret@127.0.0.1:${port}`] });
    env.servers.push(wrong);
    await wrong.start();
    await waitReady(wrong, 503);
    assert.equal((await readyz(wrong)).json.reason, 'bus_unreachable');
    await eventually(() => /Redis refused the credentials: WRONGPASS/.test(wrong.log), { what: 'the refusal logged' });
    // No password at all where one is required: Redis's NOAUTH, as clear.
    const none = new Kefu({ name: 'kefu (no password)', dataDir: node.dataDir, args: ['--bus', `redis://127.0.0.1:${port}`] });
    env.servers.push(none);
    await none.start();
    await waitReady(none, 503);
    await eventually(() => /NOAUTH/.test(none.log), { what: 'NOAUTH logged' });
    for (const n of [node, wrong, none]) {
      assert.doesNotMatch(n.log, /not-it-secret|pa:ss@word|pa%3Ass/, `${n.name} never logs a password`);
    }
    // A user name for Redis 6's ACLs: AUTH user password.
    spawnSync(REDIS_CLI, ['-p', String(port), '-a', password, '--no-auth-warning', 'ACL', 'SETUSER', 'kefu', 'on', '>kefu-pass', '~*', '&*', '+@all']);
    const acl = new Kefu({ name: 'kefu (ACL user)', dataDir: node.dataDir, args: ['--bus', `redis://kefu:kefu-pass@127.0.0.1:${port}/3`] });
    env.servers.push(acl);
    await acl.start();
    await waitReady(acl, 200);
  }),
);

test('a bad --bus address with a password is refused at start without showing the password', () => {
  const r = spawnSync(require('./harness').KEFU_BIN, ['--bus', 'redis://user-without-password-xyz@h:99999', '--data', '/nonexistent'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--bus takes redis:\/\/\[\[USER\]:PASSWORD@\]HOST\[:PORT\]\[\/DB\]/);
  assert.doesNotMatch(r.stderr, /user-without-password-xyz/);
});

