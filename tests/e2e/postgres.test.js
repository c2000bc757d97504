'use strict';
// postgres.test.js: kefu on PostgreSQL (--store postgres://...), on a throw-away cluster of its
// own (scripts/pg_cluster.sh): a server nobody answers at stops kefu at start with a message that
// names it; a server that stops under a serving node makes its writes answer 503 (never 201 and
// then lost) and /readyz 503, and when the server is back the node
// takes writes again by itself, with nothing refused stored.
const { test, after, before } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { KEFU_BIN, Kefu, scenario, api, eventually, newVisitor, visitorSend, tmpDir } = require('./harness');

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'pg_cluster.sh');
const CLUSTER = tmpDir('kefu-pg-');
let serverUrl = '';

function cluster(command) {
  const r = spawnSync(SCRIPT, [command, CLUSTER], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `pg_cluster.sh ${command}: ${r.stderr}`);
}

before(() => {
  cluster('start');
  const port = require('node:fs').readFileSync(path.join(CLUSTER, 'port'), 'utf8').trim();
  serverUrl = `postgres://postgres@127.0.0.1:${port}`;
});
after(() => cluster('remove'));

function database(name) {
  const r = spawnSync('psql', [`${serverUrl}/postgres`, '-qc', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return `${serverUrl}/${name}`;
}

test('postgres: a server nobody answers at stops kefu at start, naming it', () => {
  const r = spawnSync(KEFU_BIN, ['--listen', '127.0.0.1:0', '--data', tmpDir(), '--store', 'postgres://kefu@127.0.0.1:1/chat'], {
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to PostgreSQL \(dbname=chat host=127\.0\.0\.1 port=1\): .*refused/);
  assert.doesNotMatch(r.stderr, /listening on/);
  const bad = spawnSync(KEFU_BIN, ['--store', 'mysql://kefu@127.0.0.1/chat'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--store takes sqlite or postgres:\/\//);
});

test('postgres: the server stops under a node and comes back: 503 meanwhile, then writes again by itself', { timeout: 120000 }, (t) =>
  scenario(t, async () => {
    const store = database('kefu_lost');
    const migrate = spawnSync(KEFU_BIN, ['migrate', '--store', store], { encoding: 'utf8', timeout: 30000 });
    assert.equal(migrate.status, 0, migrate.stderr);
    const srv = new Kefu({ name: 'kefu-pg', args: ['--store', store] });
    await srv.start();
    try {
      const { token } = await newVisitor(srv, 'Pat');
      await visitorSend(srv, token, 'before');
      assert.equal((await api(srv.base, 'GET', '/readyz')).status, 200);

      cluster('stop');
      const refused = await api(srv.base, 'POST', '/api/visitor/messages', { token, body: { body: 'while down' } });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.json.error.code, 'unavailable');
      const ready = await api(srv.base, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.json.reason, 'store_not_writable');

      cluster('start');
      // Back by itself: no write needed to find out.
      await eventually(async () => (await api(srv.base, 'GET', '/readyz')).status === 200, { timeout: 20000, what: '/readyz 200' });
      await eventually(async () => (await api(srv.base, 'POST', '/api/visitor/messages', { token, body: { body: 'after' } })).status === 201, {
        timeout: 10000,
        what: 'a message taken again',
      });
      const thread = await eventually(async () => {
        const r = await api(srv.base, 'GET', '/api/visitor/messages', { token });
        return r.status === 200 && r.json;
      }, { what: 'the visitor reads again' });
      assert.deepEqual(thread.messages.map((m) => m.body), ['before', 'after']);
    } finally {
      await srv.stop();
    }
  }),
);
