'use strict';
// transfer.test.js: `kefu export` and `kefu import` (docs/DEPLOY.md, "Moving between backends").
// A store filled through the API (conversations in Chinese and English, a private note, an
// attachment, agents with passwords and sessions, a team, canned replies, a rating) goes from
// SQLite to PostgreSQL and back, each export equal to the first line for line; a kefu served
// from the imported store lets the same agent in with the same password and the same session,
// and the visitor resume with the same token and cursor; the search and the counts work again.
// Then the refusals: a store that is not empty, another format version, a newer schema, a
// truncated file, a bad line (with its number), each exiting non-zero and saying why; a store an
// import did not finish is not served. The PostgreSQL server is a throw-away cluster of its own
// (scripts/pg_cluster.sh).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { KEFU_BIN, Kefu, scenario, closeBrowser, newVisitor, visitorSend, agentLogin, agentSend, tmpDir, sleep, DEFAULT_AGENTS, RAISED_LIMITS } = require('./harness');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const PG_SCRIPT = path.resolve(__dirname, '../../scripts/pg_cluster.sh');
let clusterDir = null;
let pgUrl = null; // postgres://postgres@127.0.0.1:PORT, without a database

before(() => {
  clusterDir = tmpDir('kefu-transfer-pg-');
  const r = spawnSync(PG_SCRIPT, ['start', clusterDir], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `pg_cluster.sh start: ${r.stdout}${r.stderr}`);
  pgUrl = `postgres://postgres@127.0.0.1:${fs.readFileSync(path.join(clusterDir, 'port'), 'utf8').trim()}`;
});

after(() => {
  if (!clusterDir) return;
  spawnSync(PG_SCRIPT, ['remove', clusterDir], { encoding: 'utf8', timeout: 60000 });
});

let databases = 0;
// A new, empty database on the cluster; its URL.
function newDatabase() {
  const name = `kefu_transfer_${process.pid}_${++databases}`;
  const r = spawnSync('psql', [`${pgUrl}/postgres`, '-qc', `CREATE DATABASE ${name}`], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `CREATE DATABASE: ${r.stderr}`);
  return `${pgUrl}/${name}`;
}

function kefu(args, input) {
  const r = spawnSync(KEFU_BIN, args, { input, encoding: 'utf8', timeout: 120000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stderr}`);
  return r;
}

// A small PDF: its bytes go through base64 (a NUL and bytes past 0x7f included).
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%'), Buffer.from([0xe2, 0xe3, 0xcf, 0xd3, 0x00, 0x01, 0xff, 0x0a]), Buffer.from('1 0 obj << >> endobj\n%%EOF\n')]);

test('export and import: SQLite to PostgreSQL and back, row for row; the imported store serves the same agents, sessions, visitors and cursors', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    const post = (p, body, who = ana) => srv.api('POST', p, { cookie: who.cookie, csrf: who.csrf, body });

    let r = await post('/api/teams', { name: '售后 After-sales', auto_assign: 'off' });
    assert.equal(r.status, 201, r.text);
    const team = r.json.team;
    r = await srv.api('PUT', `/api/teams/${team.id}/members`, { cookie: ana.cookie, csrf: ana.csrf, body: { agent_ids: [ana.agent.id, bo.agent.id] } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await post('/api/canned', { shortcut: 'hi', body: '您好！Hello, how can we help?', scope: 'team' })).status, 201);
    assert.equal((await post('/api/canned', { shortcut: 'bye', body: 'Bye — 再见', scope: 'personal' }, bo)).status, 201);

    const wang = await newVisitor(srv, '王小明');
    const emma = await newVisitor(srv, 'Emma');
    const first = await visitorSend(srv, wang.token, '你好，我的订单还没到');
    await agentSend(srv, ana, first.conversation_id, 'Sorry — 我们马上查一下');
    r = await post(`/api/conversations/${first.conversation_id}/messages`, { body: '内部备注: check the warehouse', private: true });
    assert.equal(r.status, 201, r.text);
    r = await srv.api('POST', '/api/visitor/attachments?name=' + encodeURIComponent('收据.pdf'), { token: wang.token, body: PDF, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 201, r.text);
    const attachment = r.json.message.attachment;
    const second = await visitorSend(srv, emma.token, 'Where is my refund?');
    await agentSend(srv, bo, second.conversation_id, 'It is on its way.');
    r = await srv.api('PATCH', '/api/visitor', { token: emma.token, body: { email: 'emma@example.com' } });
    assert.equal(r.status, 200, r.text);
    r = await post(`/api/conversations/${first.conversation_id}/assign`, { agent_id: ana.agent.id, team_id: team.id });
    assert.equal(r.status, 200, r.text);
    r = await post(`/api/conversations/${first.conversation_id}/status`, { status: 'resolved' });
    assert.equal(r.status, 200, r.text);
    r = await srv.api('POST', '/api/visitor/rating', { token: wang.token, body: { rating: 'good', comment: '很好 thanks' } });
    assert.equal(r.status, 200, r.text);
    r = await srv.api('GET', '/api/visitor/messages?after=0', { token: wang.token });
    const wangMessages = r.json.messages;
    const cursor = wangMessages[wangMessages.length - 1].id;
    await srv.stop();
    const secret = ok(kefu(['site-secret', '--data', srv.dataDir]), 'site-secret').stdout.trim();

    // SQLite -> file -> PostgreSQL -> file: the same lines.
    const dir = tmpDir('kefu-transfer-');
    env.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const fromSqlite = path.join(dir, 'from-sqlite.jsonl');
    r = ok(kefu(['export', '--data', srv.dataDir, fromSqlite]), 'export from SQLite');
    assert.match(r.stderr, /exported \d+ rows to /);
    assert.equal((fs.statSync(fromSqlite).mode & 0o777).toString(8), '600', 'the export is its owner\'s only');
    const lines = fs.readFileSync(fromSqlite, 'utf8').split('\n');
    assert.deepEqual(JSON.parse(lines[0]), { format: 'kefu-export', version: 1, schema: 19 });
    const rows = lines.filter((l) => l.startsWith('{"table"')).map((l) => JSON.parse(l));
    const tables = new Set(rows.map((row) => row.table));
    for (const name of ['settings', 'agents', 'visitors', 'teams', 'team_members', 'sessions', 'conversations', 'attachments', 'messages', 'canned_replies'])
      assert.ok(tables.has(name), `${name} is exported`);
    assert.ok(!tables.has('message_search') && !tables.has('conversation_counts'), 'derived tables are not');
    assert.ok(rows.some((row) => row.table === 'messages' && row.body === '你好，我的订单还没到'), 'Chinese text as it is');
    assert.ok(rows.some((row) => row.table === 'messages' && row.private === 1), 'the private note');
    const pdfRow = rows.find((row) => row.table === 'attachments');
    assert.deepEqual(Buffer.from(pdfRow.bytes, 'base64'), PDF, 'the attachment\'s bytes, base64');

    const db = newDatabase();
    r = ok(kefu(['import', '--store', db, fromSqlite]), 'import into PostgreSQL');
    assert.match(r.stderr, new RegExp(`imported ${rows.length} rows`));
    const fromPostgres = ok(kefu(['export', '--store', db, '-']), 'export from PostgreSQL').stdout;
    assert.equal(ok(kefu(['site-secret', '--store', db]), 'site-secret').stdout.trim(), secret, 'the site secret moved: verified visitors stay verified');
    assert.equal(fromPostgres, fs.readFileSync(fromSqlite, 'utf8'), 'PostgreSQL exports what SQLite did, line for line');

    // PostgreSQL -> file -> SQLite -> file: the same lines again.
    const back = tmpDir('kefu-transfer-back-');
    env.defer(() => fs.rmSync(back, { recursive: true, force: true }));
    ok(kefu(['import', '--data', back, '-'], fromPostgres), 'import into SQLite from standard input');
    assert.deepEqual(fs.readFileSync(path.join(back, 'attachments', pdfRow.sha256)), PDF, 'the blob file is back');
    assert.equal(ok(kefu(['export', '--data', back]), 'export from SQLite again').stdout, fromPostgres, 'SQLite exports it back the same');

    // Served from PostgreSQL: the same password, the same session, the same token and cursor.
    const onPg = new Kefu({ name: 'on-postgres', args: ['--store', db] });
    env.servers.push(onPg);
    await onPg.start();
    r = await onPg.api('GET', '/api/agent/me', { cookie: ana.cookie });
    assert.equal(r.status, 200, `Ana's session goes on: ${r.text}`);
    assert.equal(r.json.csrf, ana.csrf);
    await agentLogin(onPg, BO.email, BO.password);
    r = await onPg.api('GET', '/api/visitor/messages?after=0', { token: wang.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.messages, wangMessages, 'the visitor reads the same messages, ids and all');
    r = await onPg.api('GET', `/api/visitor/messages?after=${cursor}`, { token: wang.token });
    assert.deepEqual(r.json.messages, [], 'nothing after the cursor');
    r = await onPg.api('GET', '/api/conversations/counts', { cookie: ana.cookie });
    assert.equal(r.json.counts.resolved, 1, `counts kept again: ${r.text}`);
    assert.equal(r.json.counts.open, 1, r.text);
    r = await onPg.api('GET', `/api/search?q=${encodeURIComponent('订单')}`, { cookie: ana.cookie });
    assert.ok(r.json.results.some((hit) => hit.message_id === first.id), `the search finds the Chinese message: ${r.text}`);
    r = await onPg.api('GET', '/api/search?q=emma%40example.com', { cookie: ana.cookie });
    assert.ok(r.json.results.length > 0, `the search finds the visitor by e-mail: ${r.text}`);
    r = await onPg.api('GET', `/api/attachments/${attachment.id}`, { token: wang.token });
    assert.equal(r.status, 200);
    const next = await visitorSend(onPg, wang.token, 'Any news? 有消息吗？');
    assert.ok(Number(next.id) > Number(cursor), `a new message's id ${next.id} is past the cursor ${cursor}`);
    r = await onPg.api('GET', `/api/visitor/messages?after=${cursor}`, { token: wang.token });
    assert.deepEqual(r.json.messages.map((m) => m.id), [next.id], 'the cursor resumes with the new message only');
    r = await onPg.api('GET', '/api/canned', { cookie: ana.cookie });
    assert.deepEqual(r.json.canned.map((c) => c.shortcut), ['hi']);
    await onPg.stop();

    // Served from the SQLite store it came back to.
    const onSqlite = new Kefu({ name: 'back-on-sqlite', dataDir: back });
    env.servers.push(onSqlite);
    await onSqlite.start();
    r = await onSqlite.api('GET', '/api/agent/me', { cookie: bo.cookie });
    assert.equal(r.status, 200, `Bo's session goes on: ${r.text}`);
    r = await onSqlite.api('GET', `/api/attachments/${attachment.id}`, { token: wang.token });
    assert.equal(r.status, 200);
    r = await onSqlite.api('GET', `/api/search?q=${encodeURIComponent('订单')}`, { cookie: bo.cookie });
    assert.ok(r.json.results.some((hit) => hit.message_id === first.id), `the search finds it on SQLite: ${r.text}`);
  }));

test('export while kefu serves under load: one snapshot with every message acknowledged before it began, whole', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: RAISED_LIMITS });
    const visitors = [];
    for (let i = 0; i < 4; i++) visitors.push(await newVisitor(srv, `访客 ${i}`));
    const acked = [];
    let sending = true;
    const senders = visitors.map(async (v, i) => {
      for (let n = 0; sending; n++) acked.push(Number((await visitorSend(srv, v.token, `message ${n} 消息 from ${i}`)).id));
    });
    // New conversations all along: without one snapshot, a message read after its conversation's
    // table was would name a conversation the file does not have.
    senders.push(
      (async () => {
        for (let n = 0; sending; n++) acked.push(Number((await visitorSend(srv, (await newVisitor(srv, `新 ${n}`)).token, 'first 第一')).id));
      })(),
    );
    await sleep(1000);
    const ackedBefore = acked.slice();
    const child = spawn(KEFU_BIN, ['export', '--data', srv.dataDir, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    await sleep(300);
    sending = false;
    await Promise.all(senders);
    assert.equal(code, 0, err);
    const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l));
    const ids = new Set(lines.filter((l) => l.table === 'messages').map((l) => l.id));
    assert.deepEqual(ackedBefore.filter((id) => !ids.has(id)), [], 'every message acknowledged before the export is in it');
    assert.ok(ackedBefore.length >= 10, `the load was real: ${ackedBefore.length} messages before the export`);
    const end = lines[lines.length - 1];
    assert.equal(end.end, true);
    assert.equal(end.rows, lines.filter((l) => l.table).length, 'the end line counts the rows');
    // One snapshot: every message's conversation is in the file too.
    const conversations = new Set(lines.filter((l) => l.table === 'conversations').map((l) => l.id));
    assert.ok(lines.filter((l) => l.table === 'messages').every((m) => conversations.has(m.conversation_id)));
    t.diagnostic(`${ids.size} messages exported while ${acked.length - ackedBefore.length} more were sent during and after`);
  }));

test('export and import refuse: a store that is not empty, another version, a newer schema, a truncated file, a bad line; an unfinished import is not served', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, 'Li Lei');
    for (let i = 0; i < 3; i++) await visitorSend(srv, v.token, `message ${i} 消息`);
    await srv.stop();
    const dir = tmpDir('kefu-transfer-bad-');
    env.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'good.jsonl');
    ok(kefu(['export', '--data', srv.dataDir, file]), 'export');
    const good = fs.readFileSync(file, 'utf8');
    const lines = good.split('\n');
    const agentLine = lines.findIndex((l) => l.startsWith('{"table":"agents"'));
    const withAgentLine = (line) => [...lines.slice(0, agentLine), line, ...lines.slice(agentLine + 1)].join('\n');

    let r = kefu(['export', '--data', srv.dataDir, file]);
    assert.notEqual(r.status, 0, 'an export never overwrites a file');
    assert.match(r.stderr, /cannot create .*good\.jsonl: File exists/);
    assert.equal(fs.readFileSync(file, 'utf8'), good);

    // Into a store that has rows (the source itself): refused, nothing written.
    r = kefu(['import', '--data', srv.dataDir, file]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /the store is not empty \(\w+ has rows\): import only into a new, empty store/);
    const db = newDatabase();
    ok(kefu(['import', '--store', db, file]), 'import into PostgreSQL');
    r = kefu(['import', '--store', db, file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not empty/);

    // A row PostgreSQL refuses (the same agent twice) is named by its line, though the import
    // sends rows on before it hears of their fate; nothing of its batch stays.
    const twice = [...lines.slice(0, agentLine + 1), lines[agentLine], ...lines.slice(agentLine + 1)].join('\n');
    fs.writeFileSync(path.join(dir, 'twice.jsonl'), twice);
    const fresh = newDatabase();
    r = kefu(['import', '--store', fresh, path.join(dir, 'twice.jsonl')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`line ${agentLine + 2}: the store refused the row: .*duplicate key`));
    const count = spawnSync('psql', [fresh, '-Atc', 'SELECT count(*) FROM agents'], { encoding: 'utf8' });
    assert.equal(count.stdout.trim(), '0', 'the failed batch is rolled back');
    r = kefu(['export', '--store', fresh]);
    assert.match(r.stderr, /an import that did not finish/);

    const variant = (name, text) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      return p;
    };
    const cases = [
      ['version', [lines[0].replace('"version":1', '"version":2'), ...lines.slice(1)].join('\n'), /export format 2; this kefu reads format 1 only/, false],
      ['schema', [lines[0].replace('"schema":19', '"schema":99'), ...lines.slice(1)].join('\n'), /schema 99, newer than this kefu's \(19\)/, false],
      ['not an export', 'hello\n', /line 1 is not a kefu export's header/, false],
      ['no end line', lines.slice(0, -2).join('\n') + '\n', new RegExp(`line ${lines.length - 1}: the file ends without its end line: it is truncated`), true],
      ['cut mid-line', good.slice(0, good.length - 10), /the line is cut short: the file is truncated/, true],
      ['bad value', withAgentLine(lines[agentLine].replace(/"id":\d+/, '"id":"one"')), new RegExp(`line ${agentLine + 1}: agents\\.id is not an integer`), true],
      ['not JSON', [...lines.slice(0, 3), '{"table": "messages", ', ...lines.slice(3)].join('\n'), /line 4: not JSON/, true],
      ['unknown table', [...lines.slice(0, 2), '{"table":"nope"}', ...lines.slice(2)].join('\n'), /line 3: no table is named nope/, true],
      ['unknown column', withAgentLine(lines[agentLine].replace('{"table":"agents",', '{"table":"agents","shoe_size":42,')), new RegExp(`line ${agentLine + 1}: agents has no column shoe_size`), true],
      ['wrong count', good.replace(/"end":true,"rows":\d+/, '"end":true,"rows":1'), /the end line counts 1 rows/, true],
    ];
    for (const [name, text, message, marked] of cases) {
      const target = path.join(dir, `target-${name.replace(/ /g, '-')}`);
      r = kefu(['import', '--data', target, variant(`${name}.jsonl`, text)]);
      assert.equal(r.status, 1, `${name}: exit 1\n${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.doesNotMatch(r.stderr, /imported/, name);
      if (!marked) continue;
      assert.match(r.stderr, /marked as an unfinished import \(kefu will not serve it\): empty the store and run kefu import again/, name);
      // The half-done store: kefu refuses to serve it, and to export it.
      const half = new Kefu({ name: `half ${name}`, dataDir: target });
      env.servers.push(half);
      await assert.rejects(half.start(), /exited before listening/);
      assert.match(half.log, /the store holds an import that did not finish/);
      r = kefu(['export', '--data', target]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /an import that did not finish/);
    }
    // A file refused for its header touches no store.
    assert.ok(!fs.existsSync(path.join(dir, 'target-version', 'kefu.db')), 'no store made for a file of another version');
  }));
