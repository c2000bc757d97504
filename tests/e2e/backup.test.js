'use strict';
// backup.test.js: `kefu backup FILE` while the server serves under load: the backup holds every
// message acknowledged before it started, passes PRAGMA integrity_check, and a kefu started on it
// (a restore is copying it in as the data directory's kefu.db) serves those conversations. It
// never overwrites a file, and says why when it cannot back up.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { KEFU_BIN, Kefu, scenario, closeBrowser, newVisitor, visitorSend, agentLogin, tmpDir, sleep, DEFAULT_AGENTS, RAISED_LIMITS } = require('./harness');

after(closeBrowser);

const ANA = DEFAULT_AGENTS[0];

function runBackup(args) {
  return new Promise((resolve) => {
    const p = spawn(KEFU_BIN, ['backup', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

function sqlite(file, sql) {
  const r = spawnSync('sqlite3', [file, sql], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

test('backup: taken under load, it has every message acknowledged before it began, is intact, and serves when restored', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const visitors = [];
    for (let i = 0; i < 4; i++) visitors.push(await newVisitor(srv, `Visitor ${i}`));
    const acked = []; // message ids in the order their 201s came back
    let sending = true;
    const senders = visitors.map(async (v, i) => {
      for (let n = 0; sending; n++) {
        const m = await visitorSend(srv, v.token, `message ${n} from visitor ${i}`);
        acked.push(Number(m.id));
      }
    });
    await sleep(1000);
    const ackedBefore = acked.slice();
    const dest = path.join(tmpDir('kefu-backup-'), 'copy.db');
    const started = Date.now();
    const r = await runBackup([dest, '--data', srv.dataDir]);
    const took = Date.now() - started;
    await sleep(300); // sends go on after it, too
    sending = false;
    await Promise.all(senders);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /backed up .* pages\) to /);
    t.diagnostic(`backup of ${acked.length} messages' database took ${took} ms while ${ackedBefore.length} were acknowledged before it and ${acked.length - ackedBefore.length} during and after`);
    assert.ok(ackedBefore.length >= 10, `the load was real: ${ackedBefore.length} messages before the backup`);

    assert.equal(sqlite(dest, 'PRAGMA integrity_check'), 'ok');
    assert.equal((fs.statSync(dest).mode & 0o777).toString(8), '600', 'the copy is its owner\'s only');
    const inCopy = new Set(sqlite(dest, 'SELECT id FROM messages').split('\n').map(Number));
    const missing = ackedBefore.filter((id) => !inCopy.has(id));
    assert.deepEqual(missing, [], 'every message acknowledged before the backup is in it');

    // Restore: the copy as another data directory's kefu.db; that server serves it.
    const restored = new Kefu({ name: 'restored' });
    env.servers.push(restored);
    fs.copyFileSync(dest, path.join(restored.dataDir, 'kefu.db'));
    await restored.start();
    const agent = await agentLogin(restored, ANA.email, ANA.password);
    const list = await restored.api('GET', '/api/conversations', { cookie: agent.cookie });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.conversations.length, 4, 'the four visitors\' conversations');
    let total = 0;
    for (const c of list.json.conversations) {
      // A page holds at most 500 messages: ask again after the last one while there are more.
      for (let after = 0, more = true; more; ) {
        const msgs = await restored.api('GET', `/api/conversations/${c.id}/messages?after=${after}`, { cookie: agent.cookie });
        assert.equal(msgs.status, 200, msgs.text);
        total += msgs.json.messages.length;
        more = msgs.json.more;
        if (msgs.json.messages.length) after = msgs.json.messages[msgs.json.messages.length - 1].id;
        else assert.equal(more, false, 'an empty page says there are no more');
      }
    }
    assert.ok(total >= ackedBefore.length, `the restored server serves them: ${total}`);
  }));

test('backup: never overwrites a file, and says why it cannot back up', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const dir = tmpDir('kefu-backup-');
    const dest = path.join(dir, 'exists.db');
    fs.writeFileSync(dest, 'keep me');
    let r = await runBackup([dest, '--data', srv.dataDir]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /exists; choose a new file/);
    assert.equal(fs.readFileSync(dest, 'utf8'), 'keep me');
    r = await runBackup([path.join(dir, 'x.db'), '--data', path.join(dir, 'no-such-dir')]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /cannot back up/);
    assert.deepEqual(fs.readdirSync(dir), ['exists.db'], 'nothing left behind');
    r = await runBackup([path.join(dir, 'no', 'such', 'dir', 'x.db'), '--data', srv.dataDir]);
    assert.equal(r.code, 1, r.out);
    r = await runBackup([]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /usage: kefu backup FILE/);
  }));

test('backup: the attachments\' files go to FILE.attachments/ beside the copy, and a restore of both serves them; an existing FILE.attachments stops it before anything is written', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Vera');
    await visitorSend(srv, v.token, 'the files follow');
    const files = { 'notes.txt': Buffer.from('sizes: 38, 39\n尺码\n'), 'order.pdf': Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n') };
    const ids = {};
    for (const [name, bytes] of Object.entries(files)) {
      const r = await srv.api('POST', `/api/visitor/attachments?name=${name}`, { token: v.token, body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
      assert.equal(r.status, 201, r.text);
      ids[name] = r.json.message.attachment.id;
    }
    const dir = tmpDir('kefu-backup-');
    const dest = path.join(dir, 'copy.db');
    const r = await runBackup([dest, '--data', srv.dataDir]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /backed up 2 attachment files to .*copy\.db\.attachments/);
    const copied = fs.readdirSync(`${dest}.attachments`);
    assert.equal(copied.length, 2);
    for (const f of copied) assert.match(f, /^[0-9a-f]{64}$/);
    assert.equal((fs.statSync(`${dest}.attachments`).mode & 0o777).toString(8), '700', 'the copy is its owner\'s only');

    // Restore both; the restored server serves the files.
    const restored = new Kefu({ name: 'restored' });
    env.servers.push(restored);
    fs.copyFileSync(dest, path.join(restored.dataDir, 'kefu.db'));
    fs.cpSync(`${dest}.attachments`, path.join(restored.dataDir, 'attachments'), { recursive: true });
    await restored.start();
    const agent = await agentLogin(restored, ANA.email, ANA.password);
    for (const [name, bytes] of Object.entries(files)) {
      const got = await new Promise((resolve, reject) => {
        require('node:http').get(`${restored.base}/api/attachments/${ids[name]}`, { headers: { Cookie: agent.cookie } }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        }).on('error', reject);
      });
      assert.equal(got.status, 200, name);
      assert.ok(got.body.equals(bytes), `${name}: the same bytes`);
    }

    // FILE.attachments already there: refused before the database is copied.
    const other = path.join(dir, 'again.db');
    fs.mkdirSync(`${other}.attachments`);
    const again = await runBackup([other, '--data', srv.dataDir]);
    assert.equal(again.code, 1, again.out);
    assert.match(again.out, /again\.db\.attachments exists/);
    assert.equal(fs.existsSync(other), false, 'no half backup');
  }));
