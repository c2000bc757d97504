'use strict';
// diskfull.test.js: a full disk, for real. kefu runs with --data on a small tmpfs made for the
// test (size-limited, so the kernel answers ENOSPC as a full disk does); the disk is filled with
// messages and a filler file, and then:
//  - every send is refused with 503 `unavailable` (HTTP, the WebSocket send action's error
//    reply, the visitor page's error line), and nothing refused is stored;
//  - every message acknowledged before stays readable: the API, the push replay from cursor 0 on
//    fresh connections, the streams that were open all along, the pages after a reload;
//  - once the filler is removed, sends work again without a restart and reach the open streams;
//  - at the end `PRAGMA integrity_check` says ok and the database holds exactly what was
//    acknowledged.
// A second case fills the disk while the write-ahead log is past the checkpoint threshold, so
// that the checkpoint cannot grow the database either. A third fills it just as the WAL index must
// grow (SQLite says SQLITE_IOERR_SHMSIZE there, not SQLITE_FULL), and checks what an operator sees:
// /healthz degraded and /readyz 503 while writes are refused, and one log line as it starts and
// one as it ends.
// Mounting needs root (or CAP_SYS_ADMIN); where it is refused the tests skip with the reason, and
// the unit test with the SQLite VFS shim (tests/unit/store/test_faults.c) still covers the store.
// Every mount is unmounted, whatever happens.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const WebSocket = require('ws');
const { Kefu, scenario, addAgent, newVisitor, agentLogin, assertError, eventually, CurlStream, closeBrowser, DEFAULT_AGENTS, RAISED_LIMITS } = require('./harness');

const ANA = DEFAULT_AGENTS[0];
const DB_FILE = 'kefu.db'; // src/main.c: <data dir>/kefu.db
// SQLite's WAL: a 32-byte header, then frames of a 24-byte header and a page (the database's
// page size: pageSize below). The WAL index (-shm) maps the first 4062 frames in its first 32 KiB
// region, then 4096 per region (sqlite3.c: HASHTABLE_NPAGE_ONE), whatever the page size.
const SHM_FIRST_REGION_FRAMES = 4062;
// KF_SQLITE_CHECKPOINT_PAGES (src/store/sqlite_internal.h): the checkpointer starts past this.
const CHECKPOINT_PAGES = 16000;

after(closeBrowser);

// ---------------------------------------------------------------------------------------------
// The small disk

// What is mounted and who runs there, for a test run that is interrupted: the servers are killed
// and the mounts detached before the process goes.
const mounted = new Set();
const running = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const srv of running) if (srv.proc) srv.proc.kill('SIGKILL');
    for (const dir of mounted) {
      spawnSync('umount', ['--lazy', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    process.exit(130);
  });
}

// Mounts a tmpfs of sizeMiB; returns its directory, or null after skipping the test with why.
function mountSmallDisk(t, sizeMiB) {
  if (process.platform !== 'linux') {
    t.skip('needs Linux (tmpfs)');
    return null;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-diskfull-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmdirSync(dir);
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n')[0];
    t.diagnostic(`cannot mount a tmpfs here (uid ${process.getuid()}): ${why}`);
    t.skip(`mounting a tmpfs is not allowed here (${why}); tests/unit/store covers a full disk with a VFS shim`);
    return null;
  }
  mounted.add(dir);
  return dir;
}

function unmount(dir) {
  let r = spawnSync('umount', [dir], { encoding: 'utf8' });
  // Something still holds a file there (a server that did not stop): detach it anyway.
  if (r.status !== 0) r = spawnSync('umount', ['--lazy', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`umount ${dir}: ${r.stderr}`);
  mounted.delete(dir);
  fs.rmdirSync(dir);
}

// Runs fn(env, dir) on a fresh tmpfs of sizeMiB; unmounts after the servers have stopped.
async function onSmallDisk(t, sizeMiB, fn) {
  const dir = mountSmallDisk(t, sizeMiB);
  if (dir === null) return;
  try {
    await scenario(t, (env) => fn(env, dir));
  } finally {
    running.clear();
    unmount(dir);
  }
}

const freeBytes = (dir) => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};
const fileSize = (file) => (fs.existsSync(file) ? fs.statSync(file).size : 0);
// Bytes a file takes on the disk: SQLite extends the database with holes before a checkpoint
// fills them, so its size says little about what has been copied in.
const allocated = (file) => (fs.existsSync(file) ? fs.statSync(file).blocks * 512 : 0);
// The database's page size, from its header (bytes 16-17, big-endian; 1 means 65,536): kefu makes
// new stores with 1 KiB pages, a file made before keeps its own.
function pageSize(dataDir) {
  const fd = fs.openSync(path.join(dataDir, DB_FILE), 'r');
  try {
    const head = Buffer.alloc(18);
    fs.readSync(fd, head, 0, 18, 0);
    const size = head.readUInt16BE(16);
    return size === 1 ? 65536 : size;
  } finally {
    fs.closeSync(fd);
  }
}
const walFrames = (dataDir) => Math.max(0, Math.floor((fileSize(path.join(dataDir, `${DB_FILE}-wal`)) - 32) / (24 + pageSize(dataDir))));
// The WAL header's checkpoint sequence number (bytes 12-15, big-endian): it changes each time the
// log starts over, which SQLite does only once a checkpoint has copied every frame in.
function walSequence(dataDir) {
  const file = path.join(dataDir, `${DB_FILE}-wal`);
  if (fileSize(file) < 32) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(32);
    fs.readSync(fd, head, 0, 32, 0);
    return head.readUInt32BE(12);
  } finally {
    fs.closeSync(fd);
  }
}

// Writes a file until the disk has `leave` bytes free (0: until ENOSPC). Returns its path.
function fill(dir, leave = 0, name = 'filler') {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  try {
    for (const chunk of [1 << 20, 4096]) {
      const buf = Buffer.alloc(chunk, 0x55);
      for (;;) {
        const room = freeBytes(dir) - leave;
        if (room <= 0) break;
        try {
          fs.writeSync(fd, buf, 0, Math.min(chunk, room));
        } catch (e) {
          if (e.code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

// A server on the small disk with Ana added before its first start.
async function serverOn(env, dir) {
  const srv = new Kefu({ name: 'kefu on tmpfs', dataDir: path.join(dir, 'data'), args: RAISED_LIMITS, logLevel: 'info' });
  fs.mkdirSync(srv.dataDir);
  env.servers.push(srv);
  running.add(srv);
  const r = addAgent(srv.dataDir, ANA);
  assert.equal(r.status, 0, `kefu user add: ${r.stdout}${r.stderr}`);
  await srv.start();
  return srv;
}

function sqlite(srv, sql) {
  const r = spawnSync('sqlite3', [path.join(srv.dataDir, DB_FILE), sql], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

// ---------------------------------------------------------------------------------------------
// Clients

// A WebSocket listener that also sends: every message event counted by id; act() resolves the
// ack or error reply to an action.
async function socket(srv, headers, after = 0) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/push/ws?after=${after}`, { headers, handshakeTimeout: 10000 });
  const seen = new Map(); // message id -> times received
  const replies = new Map();
  let refs = 0;
  ws.on('message', (data) => {
    const ev = JSON.parse(data.toString('utf8'));
    if (ev.type === 'message') seen.set(ev.message.id, (seen.get(ev.message.id) || 0) + 1);
    const waiter = replies.get(ev.ref);
    if (waiter && (ev.type === 'ack' || ev.type === 'error' || ev.type === 'pong')) {
      replies.delete(ev.ref);
      waiter(ev);
    }
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    seen,
    act(action) {
      const ref = `r${++refs}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(action)} within 30 s`)), 30000);
        replies.set(ref, (ev) => {
          clearTimeout(timer);
          resolve(ev);
        });
        ws.send(JSON.stringify({ ...action, ref }));
      });
    },
    close: () => ws.terminate(),
  };
}

// The message ids of an SSE stream's output, each as often as it came.
const sseIds = (out) => [...out.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

function counts(ids) {
  const m = new Map();
  for (const id of ids) m.set(id, (m.get(id) || 0) + 1);
  return m;
}

// Every id of `want` seen exactly once, and nothing else.
function assertExactlyOnce(seen, want, what) {
  const extra = [...seen.keys()].filter((id) => !want.has(id));
  const missing = [...want].filter((id) => !seen.has(id));
  const doubled = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual({ missing, doubled, extra }, { missing: [], doubled: [], extra: [] }, `${what}: every acknowledged message once, nothing else`);
}

// ---------------------------------------------------------------------------------------------
// 1. Refused while full, kept, readable; recovers by itself.

test('a full disk: sends refused with 503, everything acknowledged kept and readable, recovery when space is freed', { timeout: 240000 }, (t) =>
  onSmallDisk(t, 16, async (env, dir) => {
    const srv = await serverOn(env, dir);
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const acked = new Map(); // id -> message as acknowledged
    const attempted = new Set(); // bodies of every send, refused ones included
    const record = (m) => {
      assert.ok(!acked.has(m.id), `id ${m.id} acknowledged twice`);
      acked.set(m.id, m);
    };
    // The acknowledged ids of a conversation, in id order.
    const idsOf = (conversation) => new Set([...acked.values()].filter((m) => m.conversation_id === conversation).map((m) => m.id).sort((a, b) => a - b));
    // who: a visitor ({token}) or the agent answering a conversation ({conversation}).
    const send = (who, body, headers = {}) => {
      attempted.add(body);
      if (who.token) return srv.api('POST', '/api/visitor/messages', { body: { body }, token: who.token, headers });
      return srv.api('POST', `/api/conversations/${who.conversation}/messages`, { body: { body }, cookie: ana.cookie, csrf: ana.csrf, headers });
    };

    // Three visitors with a conversation each; the first on the visitor page in the browser.
    const page = await env.page('visitor');
    await page.goto(`${srv.base}/chat?transport=sse`);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 15000 });
    attempted.add('hello from the page');
    await page.fill('#message-input', 'hello from the page');
    await page.press('#message-input', 'Enter');
    await page.waitForSelector('#messages .msg[data-id][data-sender="visitor"]', { timeout: 15000 });
    const visitors = [{ token: await page.evaluate(() => localStorage.getItem('kefu.visitor.token')) }];
    for (let i = 1; i < 3; i++) visitors.push(await newVisitor(srv, `Visitor ${i}`));
    for (const v of visitors) {
      const r = await send(v, `first words of visitor ${visitors.indexOf(v)}`);
      assert.equal(r.status, 201, r.text);
      record(r.json.message);
      v.conversation = r.json.message.conversation_id;
    }
    const fromPage = await srv.api('GET', '/api/visitor/messages?after=0', { token: visitors[0].token });
    record(fromPage.json.messages.find((m) => m.body === 'hello from the page'));

    // Streams open all along: the agent's over SSE, the second visitor's WebSocket.
    const agentSse = new CurlStream(['-sN', '-H', `Cookie: ${ana.cookie}`, `${srv.base}/push/sse?after=0`]);
    env.defer(() => agentSse.close());
    const vws = await socket(srv, { Authorization: `Bearer ${visitors[1].token}` });
    env.defer(() => vws.close());

    // Traffic before the disk fills: visitors and the agent over HTTP, a visitor over the socket.
    for (let i = 0; i < 60; i++) {
      const v = visitors[i % 3];
      const r = i % 4 === 3 ? await send({ conversation: v.conversation }, `agent reply ${i}`) : await send(v, `before the disk filled ${i} ${'.'.repeat(400)}`);
      assert.equal(r.status, 201, r.text);
      record(r.json.message);
    }
    for (let i = 0; i < 5; i++) {
      attempted.add(`over the socket ${i}`);
      const ack = await vws.act({ type: 'send', body: `over the socket ${i}` });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      record(ack.message);
    }

    // Fill the disk: a filler file to the last byte. A send that still fits (the WAL's last page
    // had room after all) is acknowledged and kept like any other; within a few, one must fail.
    const filler = fill(dir);
    t.diagnostic(`filled: ${fileSize(filler)} bytes of filler, WAL ${walFrames(srv.dataDir)} frames, ${freeBytes(dir)} bytes free`);
    let refused = null;
    for (let i = 0; i < 20 && refused === null; i++) {
      const r = await send(visitors[0], `at the brink ${i}`);
      if (r.status === 201) record(r.json.message);
      else refused = r;
    }
    assert.ok(refused, 'a send is refused once the disk is full');
    assertError(refused, 503, 'unavailable', 'the first refused send');

    // While full, every way of sending is refused with 503 `unavailable`.
    for (const v of visitors) assertError(await send(v, `refused, from visitor ${visitors.indexOf(v)}`), 503, 'unavailable', 'a visitor send');
    assertError(await send({ conversation: visitors[2].conversation }, 'a refused agent reply'), 503, 'unavailable', 'an agent send');
    assertError(await send(visitors[2], 'refused with a key', { 'Idempotency-Key': 'k-refused' }), 503, 'unavailable', 'a send with an idempotency key');
    attempted.add('refused over the socket');
    const wsRefused = await vws.act({ type: 'send', body: 'refused over the socket' });
    assert.equal(wsRefused.type, 'error', `the socket's send: ${JSON.stringify(wsRefused)}`);
    assert.equal(wsRefused.error.code, 'unavailable', JSON.stringify(wsRefused));
    assert.equal(typeof wsRefused.error.message, 'string');
    assert.equal((await vws.act({ type: 'ping' })).type, 'pong', 'the socket stays open after a refused send');
    assertError(await srv.api('POST', '/api/visitor/session', { body: {} }), 503, 'unavailable', 'a new visitor session');
    // Reads keep working: the API, the agent's views, push replays from 0, the pages.
    for (const v of visitors) {
      const r = await srv.api('GET', '/api/visitor/messages?after=0', { token: v.token });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages, [...idsOf(v.conversation)].map((id) => acked.get(id)), `visitor ${visitors.indexOf(v)}'s messages while full`);
    }
    const list = await srv.api('GET', '/api/conversations', { cookie: ana.cookie });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.conversations.length, 3);
    for (const v of visitors) {
      const r = await srv.api('GET', `/api/conversations/${v.conversation}/messages?after=0`, { cookie: ana.cookie });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(new Set(r.json.messages.map((m) => m.id)), idsOf(v.conversation), "the agent's view of a conversation while full");
    }
    const poll = await srv.api('GET', '/push/poll?after=0', { cookie: ana.cookie });
    assert.equal(poll.status, 200);
    assertExactlyOnce(counts(poll.json.events.filter((e) => e.type === 'message').map((e) => e.message.id)), new Set(acked.keys()), "the agent's poll from 0 while full");
    const ticket = await srv.api('POST', '/api/visitor/push-ticket', { token: visitors[1].token });
    assert.equal(ticket.status, 201, `a push ticket (nothing to store) while full: ${ticket.text}`);
    const replay = await socket(srv, {}, `0&ticket=${encodeURIComponent(ticket.json.ticket)}`);
    const own = idsOf(visitors[1].conversation);
    await eventually(() => replay.seen.size >= own.size, { timeout: 15000, what: 'the WebSocket replay from 0' });
    replay.close();
    assertExactlyOnce(replay.seen, own, "visitor 1's WebSocket replay from 0 while full");
    for (const p of ['/chat', '/agent', '/static/kefu.js', '/healthz']) assert.equal((await srv.api('GET', p)).status, 200, `GET ${p} while full`);
    await page.reload();
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: 15000 });
    const shown = () => page.$$eval('#messages .msg[data-id]', (els) => els.map((e) => Number(e.getAttribute('data-id'))));
    await eventually(async () => (await shown()).length === idsOf(visitors[0].conversation).size, { timeout: 15000, what: 'the reloaded page shows its history' });
    assert.deepEqual(new Set(await shown()), idsOf(visitors[0].conversation), 'the reloaded page shows every acknowledged message of its conversation');

    // On the page the message waits in the outbox, saying so, and is not lost: a 503 passes.
    attempted.add('typed while the disk was full');
    await page.fill('#message-input', 'typed while the disk was full');
    await page.press('#message-input', 'Enter');
    const pending = '#messages .msg.mine.pending[data-state="waiting"]';
    await page.waitForSelector(pending, { timeout: 15000 });
    assert.equal(await page.$eval(`${pending} .msg-body`, (e) => e.textContent), 'typed while the disk was full');
    assert.match(await page.$eval(`${pending} .msg-meta`, (e) => e.textContent), /Retrying/, 'the bubble says it will be tried again');

    // Space comes back: sends work again, without a restart, and reach the open streams.
    fs.unlinkSync(filler);
    for (const v of visitors) {
      const r = await send(v, `after the space came back, visitor ${visitors.indexOf(v)}`);
      assert.equal(r.status, 201, `a send once space is free: ${r.text}`);
      record(r.json.message);
    }
    const reply = await send({ conversation: visitors[1].conversation }, 'an agent reply once space is free');
    assert.equal(reply.status, 201, reply.text);
    record(reply.json.message);
    attempted.add('over the socket once space is free');
    const wsAck = await vws.act({ type: 'send', body: 'over the socket once space is free' });
    assert.equal(wsAck.type, 'ack', JSON.stringify(wsAck));
    record(wsAck.message);
    assert.equal((await srv.api('POST', '/api/visitor/session', { body: {} })).status, 201, 'a new visitor session once space is free');
    // The page sends it by itself (its backoff is at most a few seconds this early), once.
    await page.waitForFunction(() => [...document.querySelectorAll('#messages .msg[data-id] .msg-body')].some((b) => b.textContent === 'typed while the disk was full'), null, { timeout: 40000 });
    assert.equal(await page.$$eval('#messages .msg.pending', (els) => els.length), 0, 'no pending bubble is left');
    const again = await srv.api('GET', '/api/visitor/messages?after=0', { token: visitors[0].token });
    const last = again.json.messages[again.json.messages.length - 1];
    assert.equal(last.body, 'typed while the disk was full', 'the page sends the kept text on the second try');
    record(last);

    // The streams open all along got each of their messages once, and nothing refused.
    await agentSse.until((out) => sseIds(out).length >= acked.size, 15000, 'every message on the agent stream');
    assertExactlyOnce(counts(sseIds(agentSse.out)), new Set(acked.keys()), "the agent's SSE stream, open throughout");
    const ownNow = idsOf(visitors[1].conversation);
    await eventually(() => vws.seen.size >= ownNow.size, { timeout: 15000, what: 'the socket hears the new messages' });
    assertExactlyOnce(vws.seen, ownNow, "visitor 1's WebSocket, open throughout");

    // The database: intact, and exactly what was acknowledged.
    await srv.stop();
    assert.equal(sqlite(srv, 'PRAGMA integrity_check'), 'ok');
    const stored = JSON.parse(sqlite(srv, 'SELECT json_group_array(json_array(id, body)) FROM messages'));
    assert.deepEqual(new Map(stored), new Map([...acked.values()].map((m) => [m.id, m.body])), 'the database holds every acknowledged message, as acknowledged, and nothing else');
    for (const [, body] of stored) assert.ok(attempted.has(body), `stored ${JSON.stringify(body)}: someone sent it`);
  }),
);

// ---------------------------------------------------------------------------------------------
// 2. The checkpoint cannot grow the database either.

// Sends 4 KB messages from one visitor, `parallel` at a time, until one is refused; records the
// acknowledged ones. Returns the first refusal.
async function sendUntilRefused(srv, token, acked, { parallel = 8, tag }) {
  const body = (n) => `${tag} ${n} ${'z'.repeat(3900)}`;
  for (let n = 0; n < 100000; ) {
    const answers = await Promise.all(Array.from({ length: parallel }, () => srv.api('POST', '/api/visitor/messages', { body: { body: body(n++) }, token })));
    let refusal = null;
    for (const r of answers) {
      if (r.status === 201) acked.set(r.json.message.id, r.json.message.body);
      else refusal = refusal || r;
    }
    if (refusal) return refusal;
  }
  throw new Error('100,000 messages and the disk is not full');
}

test('a full disk while the WAL is past the checkpoint threshold: the checkpoint waits for space, then catches up', { timeout: 240000 }, (t) =>
  onSmallDisk(t, 100, async (env, dir) => {
    const srv = await serverOn(env, dir);
    const v = await newVisitor(srv);
    const acked = new Map(); // id -> body
    // The filler leaves room for the WAL to pass the threshold (16,000 frames: 66 MB with 4 KiB
    // pages, 17 MB with 1 KiB) and 10 MiB beside it for the database and its search index, not
    // for the checkpoint to copy the log in as well; once the filler goes, room for the
    // checkpoint to grow the database.
    const walAtThreshold = CHECKPOINT_PAGES * (24 + pageSize(srv.dataDir));
    const filler = path.join(dir, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(freeBytes(dir) - walAtThreshold - (10 << 20), 0x55));
    const db = path.join(srv.dataDir, DB_FILE);
    const refusal = await sendUntilRefused(srv, v.token, acked, { tag: 'toward the threshold' });
    assertError(refusal, 503, 'unavailable', 'a send on the full disk');
    const frames = walFrames(srv.dataDir);
    const dbFull = allocated(db);
    t.diagnostic(`full after ${acked.size} messages: WAL ${frames} frames, database ${fileSize(db)} bytes (${dbFull} on the disk), ${freeBytes(dir)} bytes free`);
    assert.ok(frames >= CHECKPOINT_PAGES, `the WAL passed the checkpoint threshold (${frames} frames)`);
    // The refused batch held eight 4 KB messages, and the log's file keeps the room its frames
    // took: a single send may still fit there. Take what is left of the disk; within a few sends
    // the log's spare room is gone too, and the disk refuses them.
    const rest = fill(dir, 0, 'filler-rest');
    let still = null;
    for (let i = 0; i < 50 && !still; i++) {
      const r = await srv.api('POST', '/api/visitor/messages', { body: { body: `still full ${i} ${'z'.repeat(3900)}` }, token: v.token });
      if (r.status === 201) acked.set(r.json.message.id, r.json.message.body);
      else still = r;
    }
    assert.ok(still, 'the disk refuses sends again once its last room is taken');
    assertError(still, 503, 'unavailable', 'another send');
    const read = await srv.api('GET', `/api/visitor/messages?after=${Math.max(...acked.keys()) - 10}`, { token: v.token });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.messages.length, 10, 'the newest messages read back while full');

    // Space comes back: the next commits wake the checkpointer, which now copies the log in. Under
    // load the checkpointer may already have copied the whole log while the disk was filling (the
    // database grew before dbFull was taken); then nothing is left to copy, and the log starting
    // over is what shows it caught up.
    const seqFull = walSequence(srv.dataDir);
    fs.unlinkSync(filler);
    fs.unlinkSync(rest);
    await eventually(
      async () => {
        const r = await srv.api('POST', '/api/visitor/messages', { body: { body: `after the space came back ${acked.size}` }, token: v.token });
        assert.equal(r.status, 201, r.text);
        acked.set(r.json.message.id, r.json.message.body);
        return allocated(db) > dbFull + (1 << 20) || walSequence(srv.dataDir) !== seqFull;
      },
      { timeout: 30000, interval: 200, what: 'the checkpoint copies the log into the database' },
    );
    t.diagnostic(`after freeing space: database ${fileSize(db)} bytes (${allocated(db)} on the disk)`);
    await srv.stop();
    assert.equal(sqlite(srv, 'PRAGMA integrity_check'), 'ok');
    assert.equal(Number(sqlite(srv, 'SELECT count(*) FROM messages')), acked.size, 'every acknowledged message, and nothing else');
    const newest = JSON.parse(sqlite(srv, 'SELECT json_group_array(json_array(id, body)) FROM (SELECT id, body FROM messages ORDER BY id DESC LIMIT 50)'));
    for (const [id, body] of newest) assert.equal(body, acked.get(id), `message ${id} as acknowledged`);
  }),
);

// ---------------------------------------------------------------------------------------------
// 3. The disk fills just as the WAL index must grow.
//
// The WAL index (kefu.db-shm) is mapped memory, grown 32 KiB at a time; SQLite writes a byte into
// each new page first so that a full disk shows as an error rather than SIGBUS, and that error is
// SQLITE_IOERR_SHMSIZE, not SQLITE_FULL. The test brings the WAL to the end of the index's first
// region (4062 frames) and leaves 32 KiB free: room for the next commit's frames, not for them and
// the index's next 32 KiB.

test(
  'a full disk as the WAL index grows: sends refused with 503, recovery when space is freed',
  { timeout: 120000 },
  (t) =>
    onSmallDisk(t, 40, async (env, dir) => {
      const srv = await serverOn(env, dir);
      const v = await newVisitor(srv);
      const acked = new Map();
      const post = (body) => srv.api('POST', '/api/visitor/messages', { body: { body }, token: v.token });
      // Messages (a commit of four or five frames) to just short of the edge, then read marks
      // (one frame each: the conversation's row, with a mark further on each time) to the edge
      // itself: the next message's commit needs the index's second region.
      const ids = [];
      while (walFrames(srv.dataDir) < SHM_FIRST_REGION_FRAMES - 12) {
        assert.ok(ids.length < 5000, `the WAL grows (${walFrames(srv.dataDir)} frames after ${ids.length} messages)`);
        const r = await post(`short ${ids.length}`);
        assert.equal(r.status, 201, r.text);
        acked.set(r.json.message.id, r.json.message.body);
        ids.push(r.json.message.id);
      }
      const steps = [];
      while (walFrames(srv.dataDir) < SHM_FIRST_REGION_FRAMES) {
        assert.ok(steps.length < 12, `read marks grow the WAL (${steps.join(' ')})`);
        const before = walFrames(srv.dataDir);
        const r = await srv.api('POST', '/api/visitor/read', { body: { up_to: ids[steps.length] }, token: v.token });
        assert.equal(r.status, 200, r.text);
        steps.push(walFrames(srv.dataDir) - before);
      }
      t.diagnostic(`read marks added ${steps.join(' ')} frames, to ${walFrames(srv.dataDir)}`);
      const shm = path.join(srv.dataDir, `${DB_FILE}-shm`);
      assert.equal(fileSize(shm), 32768, 'the WAL index still has its first region');
      const filler = fill(dir, 8 * 4096);
      const answers = [];
      for (let i = 0; i < 5; i++) {
        const r = await post(`at the index's edge ${i}`);
        answers.push(r.status);
        if (r.status === 201) acked.set(r.json.message.id, r.json.message.body);
        else assertError(r, 503, 'unavailable', `send ${i} with ${walFrames(srv.dataDir)} WAL frames and ${freeBytes(dir)} bytes free`);
      }
      t.diagnostic(`answers at the edge: ${answers.join(' ')}`);
      assert.ok(answers.includes(503), 'the full disk refuses a send');
      if (answers[answers.length - 1] === 503) {
        const health = await srv.api('GET', '/healthz');
        assert.equal(health.status, 200, health.text);
        assert.deepEqual(health.json, { status: 'degraded', writable: false }, 'a monitor sees the refused writes');
        // ... and a load balancer sends new clients elsewhere meanwhile.
        const ready = await srv.api('GET', '/readyz');
        assert.equal(ready.status, 503, ready.text);
        assert.equal(ready.json.reason, 'store_not_writable');
      }
      fs.unlinkSync(filler);
      const r = await post('after the space came back');
      assert.equal(r.status, 201, r.text);
      acked.set(r.json.message.id, r.json.message.body);
      const health = await srv.api('GET', '/healthz');
      assert.deepEqual(health.json, { status: 'ok', writable: true }, 'healthy again once a write is stored');
      assert.equal((await srv.api('GET', '/readyz')).status, 200, 'ready again');
      const count = (re) => (srv.log.match(re) || []).length;
      const refused = answers.filter((a) => a === 503).length;
      assert.equal(count(/the database refuses writes/g), 1, `one line as the refusals start, not one per refused send:\n${srv.log}`);
      assert.equal(count(new RegExp(`the database takes writes again, after ${refused} refused`, 'g')), 1, `one line as they end, with their count:\n${srv.log}`);
      await srv.stop();
      assert.equal(sqlite(srv, 'PRAGMA integrity_check'), 'ok');
      assert.equal(Number(sqlite(srv, 'SELECT count(*) FROM messages')), acked.size);
    }),
);
