'use strict';
// shared.test.js: what several kefu nodes share through Redis beyond events: the password and
// database of --bus (AUTH and SELECT before anything else; a wrong password is a clear log line
// and /readyz 503, never a logged password); the abuse limits held across nodes (failed logins
// spread over two nodes lock the account out after one budget and a login lifts it on both, a
// visitor's messages alternating nodes get 429 after one node's budget, push connections past
// the quota are refused on the other node, a hung Redis leaves push requests to the local counts
// and a lost Redis connection leaves no stale count behind); and the request id that rides with
// an event to the node that logs about it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');
const { Kefu, scenario, eventually, api, sleep, newVisitor, agentLogin, DEFAULT_AGENTS } = require('./harness');
const ANA = DEFAULT_AGENTS[0];
const BO = DEFAULT_AGENTS[1];

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
async function startRedis(env, extra = [], port = 0) {
  port = port || (await freePort());
  const proc = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  env.defer(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  await eventually(() => accepts(port), { what: `redis-server on ${port}` });
  redisProcs.set(port, proc);
  return port;
}
const redisProcs = new Map(); // port -> its redis-server

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
    // With exactly the rights docs/DEPLOY.md lists.
    const acl0 = spawnSync(REDIS_CLI, ['-p', String(port), '-a', password, '--no-auth-warning', 'ACL', 'SETUSER', 'kefu', 'reset', 'on', '>kefu-pass', '~kefu:*', '&kefu:events',
      '+@pubsub', '+auth', '+select', '+hincrby', '+hgetall', '+pexpire', '+del', '+zadd', '+zrange', '+zremrangebyscore'], { encoding: 'utf8' });
    assert.match(acl0.stdout, /OK/, acl0.stderr);
    const acl = new Kefu({ name: 'kefu (ACL user)', dataDir: node.dataDir, args: ['--bus', `redis://kefu:kefu-pass@127.0.0.1:${port}/3`] });
    env.servers.push(acl);
    await acl.start();
    await waitReady(acl, 200);
    // Its counters are written (a new visitor session counts against its address).
    const before = redisKeys(port, 3, password).filter((k) => k.startsWith('kefu:limit:sessions:')).length;
    assert.equal((await api(acl.base, 'POST', '/api/visitor/session', { body: {} })).status, 201);
    await eventually(() => redisKeys(port, 3, password).filter((k) => k.startsWith('kefu:limit:sessions:')).length > before, { what: 'the ACL user counts' });
    assert.ok(redisKeys(port, 3, password).includes('kefu:nodes'), 'heartbeats in db 3');
  }),
);

test('a bad --bus address with a password is refused at start without showing the password', () => {
  const r = spawnSync(require('./harness').KEFU_BIN, ['--bus', 'redis://user-without-password-xyz@h:99999', '--data', '/nonexistent'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--bus takes redis:\/\/\[\[USER\]:PASSWORD@\]HOST\[:PORT\]\[\/DB\]/);
  assert.doesNotMatch(r.stderr, /user-without-password-xyz/);
});


// A push request on a raw socket: {held: true, sock} when nothing came within ms (a long poll or
// a stream kept open), else its status.
async function push(port, path, token, ms = 500) {
  const sock = net.connect({ port, host: '127.0.0.1' });
  let data = '';
  sock.on('data', (c) => (data += c.toString('latin1')));
  sock.on('error', () => {});
  sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`));
  await sleep(ms);
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
  const status = m ? Number(m[1]) : null;
  if (status === null || status === 200) return { held: true, status, sock };
  sock.destroy();
  return { held: false, status, body: data.slice(data.indexOf('\r\n\r\n') + 4) };
}

test('abuse limits across two nodes: failed logins lock out after one budget, a visitor gets 429 after one budget of messages, push connections past the quota are refused on the other node', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const port = await startRedis(env, ['--requirepass', 'shared-secret']);
    const limits = ['--visitor-messages-per-minute', '6', '--visitor-message-burst', '4', '--max-push-per-visitor', '2'];
    const { node1, node2 } = await twoNodes(env, `redis://:shared-secret@127.0.0.1:${port}/2`, limits);
    const nodes = [node1, node2];

    // A successful login forgets the account's failures on every node: 4 failures spread over
    // both, a login on node 1, then node 2 allows a whole budget (5) again before it locks.
    const failBo = async (node) => (await api(node.base, 'POST', '/api/agent/login', { body: { email: BO.email, password: 'nope' } })).status;
    for (let i = 0; i < 4; i++) {
      assert.equal(await failBo(nodes[i % 2]), 401);
      await sleep(50);
    }
    await agentLogin(node1, BO.email, BO.password);
    await eventually(() => /logged in on another node: its lock-out is lifted here too/.test(node2.log), { what: 'node 2 told' });
    const after = [];
    for (let i = 0; i < 6; i++) after.push(await failBo(node2));
    assert.deepEqual(after, [401, 401, 401, 401, 401, 429], 'a fresh budget on node 2');

    // Wrong passwords for one account, alternating nodes, a moment apart (Redis answers in well
    // under that): one node alone allows 5 failures; both together about 5, not 10.
    let failures = 0;
    let locked = null;
    for (let i = 0; i < 12 && !locked; i++) {
      const r = await api(nodes[i % 2].base, 'POST', '/api/agent/login', { body: { email: ANA.email, password: `wrong ${i}` } });
      if (r.status === 401) failures++;
      else if (r.status === 429) locked = r;
      else assert.fail(`login ${i}: ${r.status} ${r.text}`);
      await sleep(50);
    }
    assert.ok(locked, 'locked out');
    assert.ok(failures >= 5 && failures <= 6, `locked after one budget (5, one more in flight at most), not two: ${failures} failures`);
    // Locked on both nodes, also for the right password.
    for (const node of nodes) {
      const r = await api(node.base, 'POST', '/api/agent/login', { body: { email: ANA.email, password: ANA.password } });
      assert.equal(r.status, 429, `${node.name}: ${r.text}`);
    }

    for (const node of nodes) {
      const m = await api(node.base, 'GET', '/metrics');
      const merged = /^kefu_limit_uses_merged_total (\d+)$/m.exec(m.text);
      assert.ok(merged && Number(merged[1]) > 0, `${node.name} charged the other's failures: ${merged}`);
    }

    // One visitor's messages alternating nodes: bursts of 4 per node alone; 4 (and at most one
    // in flight) for both together.
    const v = await newVisitor(node1, 'Vera');
    let sent = 0;
    let refused = null;
    for (let i = 0; i < 10 && !refused; i++) {
      const r = await api(nodes[i % 2].base, 'POST', '/api/visitor/messages', { token: v.token, body: { body: `hello ${i}` } });
      if (r.status === 201) sent++;
      else if (r.status === 429) refused = r;
      else assert.fail(`message ${i}: ${r.status} ${r.text}`);
      await sleep(50);
    }
    assert.ok(refused, 'rate limited');
    assert.equal(refused.json.error.code, 'rate_limited');
    assert.ok(sent >= 4 && sent <= 5, `429 after one budget, not two: ${sent} sent`);

    // Push connections: the quota is 2 per visitor. Two held on node 1; node 2 refuses a third.
    const w = await newVisitor(node1, 'Walt');
    const held = [];
    env.defer(() => held.forEach((h) => h.sock.destroy()));
    for (let i = 0; i < 2; i++) {
      const h = await push(node1.port, '/push/sse?after=0', w.token);
      assert.ok(h.held, `stream ${i + 1} on node 1 held`);
      held.push(h);
    }
    const third = await push(node2.port, '/push/sse?after=0', w.token);
    assert.equal(third.status, 429, `a third on node 2 refused: ${third.body}`);
    assert.equal(JSON.parse(third.body).error.code, 'too_many_connections');
    const lp = await push(node2.port, '/push/longpoll?after=0&timeout=30', w.token);
    assert.equal(lp.status, 429, 'a long poll on node 2 refused too');
    // One closed on node 1: node 2 takes one (once its last answer is stale, 2 s).
    held.shift().sock.destroy();
    const again = await eventually(async () => {
      const h = await push(node2.port, '/push/sse?after=0', w.token);
      if (h.held) return h;
      return null;
    }, { timeout: T, what: 'a stream on node 2 after one closed on node 1' });
    held.push(again);
    // And node 1, which holds one, now refuses a second: node 2 holds the other.
    await sleep(2500);
    const over = await push(node1.port, '/push/sse?after=0', w.token);
    assert.equal(over.status, 429, 'node 1 counts node 2\'s connection');

    // What the counters hold, in database 2 only.
    assert.ok(redisKeys(port, 2, 'shared-secret').some((k) => k.startsWith('kefu:limit:login-account:')), 'login counters in db 2');
    assert.ok(redisKeys(port, 2, 'shared-secret').some((k) => k.startsWith('kefu:push:v:')), 'push counters in db 2');
    assert.deepEqual(redisKeys(port, 0, 'shared-secret'), [], 'nothing in db 0');
  }),
);

test('a request id crosses the bus: a logout on node 1 is logged on node 2 with the id of the request that caused it', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const port = await startRedis(env);
    const { node1, node2 } = await twoNodes(env, `redis://127.0.0.1:${port}`);
    const ana = await agentLogin(node1, ANA.email, ANA.password);
    const out = await api(node1.base, 'POST', '/api/agent/logout', { cookie: ana.cookie, csrf: ana.csrf, headers: { 'X-Request-Id': 'trace-logout-42' } });
    assert.equal(out.status, 200, out.text);
    assert.equal(out.headers['x-request-id'], 'trace-logout-42');
    await eventually(() => /node: agent \d+ logged out on another node[^\n]*request=trace-logout-42/.test(node2.log), { what: 'node 2 names the request' });
  }),
);

test('a Redis that hangs (stopped, its connections open) does not hang push requests: past a short wait the local counts decide', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const port = await startRedis(env);
    const { node1, node2 } = await twoNodes(env, `redis://127.0.0.1:${port}`, ['--max-push-per-visitor', '2']);
    const v = await newVisitor(node1, 'Hana');
    const redis = redisProcs.get(port);
    redis.kill('SIGSTOP');
    env.defer(() => redis.kill('SIGCONT'));
    const t0 = Date.now();
    const h = await push(node2.port, '/push/sse?after=0', v.token, 1000);
    assert.equal(h.status, 200, 'served with local counts, not left waiting for Redis');
    h.sock.destroy();
    redis.kill('SIGCONT');
    assert.ok(Date.now() - t0 < 5000);
    await waitReady(node1, 200);
  }),
);

test('push quotas across a lost Redis connection: counts made before it (their closes lost meanwhile) stop counting, what is held is counted again', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const port = await startRedis(env);
    const { node1, node2 } = await twoNodes(env, `redis://127.0.0.1:${port}`, ['--max-push-per-visitor', '2']);
    const v = await newVisitor(node1, 'Ines');
    const held = [];
    env.defer(() => held.forEach((h) => h.sock.destroy()));
    for (let i = 0; i < 2; i++) held.push(await push(node1.port, '/push/sse?after=0', v.token));
    assert.ok(held.every((h) => h.held && h.status === 200));
    // Redis drops every client: both nodes reconnect; the streams end meanwhile (a browser
    // would reconnect them), their closes unseen by Redis.
    spawnSync(REDIS_CLI, ['-p', String(port), 'CLIENT', 'KILL', 'TYPE', 'normal']);
    spawnSync(REDIS_CLI, ['-p', String(port), 'CLIENT', 'KILL', 'TYPE', 'pubsub']);
    held.splice(0).forEach((h) => h.sock.destroy());
    await sleep(500);
    await waitReady(node1, 200);
    await waitReady(node2, 200);
    // The visitor comes back with one stream on node 1: counted under node 1's new session.
    held.push(await push(node1.port, '/push/sse?after=0', v.token));
    assert.ok(held[0].held, 'one on node 1 again');
    // Node 2 may hold the second once the old counts have died with their session (20 s).
    const second = await eventually(async () => {
      const r = await push(node2.port, '/push/sse?after=0', v.token);
      return r.held && r.status === 200 ? r : null;
    }, { timeout: 45000, interval: 1000, what: 'a second stream on node 2' });
    held.push(second);
    // And a third is refused: node 1's live stream counts.
    await sleep(2500);
    const third = await push(node2.port, '/push/sse?after=0', v.token);
    if (third.held) third.sock.destroy();
    const dump = spawnSync(REDIS_CLI, ['-p', String(port), 'HGETALL', `kefu:push:v:${v.visitor.id}`], { encoding: 'utf8' }).stdout;
    const nodesNow = spawnSync(REDIS_CLI, ['-p', String(port), 'ZRANGE', 'kefu:nodes', '0', '-1', 'WITHSCORES'], { encoding: 'utf8' }).stdout;
    assert.equal(third.status, 429, `node 1 holds one, node 2 one: ${dump} / ${nodesNow} / ${Date.now()}`);
  }),
);
