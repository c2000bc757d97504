'use strict';
// deploy.test.js: the files in deploy/ that are not nginx's (nginx.test.js runs the shipped
// nginx.conf): kefu starts with deploy/kefu.conf.example as its config file, which names every
// setting `kefu --help-markdown` lists (so the example cannot fall behind docs/CONFIG.md), and the
// systemd unit passes `systemd-analyze verify` where systemd's tools are installed.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { scenario, KEFU_BIN } = require('./harness');

const DEPLOY = path.join(__dirname, '..', '..', 'deploy');
const EXAMPLE = path.join(DEPLOY, 'kefu.conf.example');

test('deploy: kefu.conf.example names every setting of kefu --help-markdown, each once', () => {
  const md = spawnSync(KEFU_BIN, ['--help-markdown'], { encoding: 'utf8' });
  assert.equal(md.status, 0, md.stderr);
  const keys = [...md.stdout.matchAll(/^\| `--([a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(keys.length >= 20, `settings in --help-markdown: ${keys.join(' ')}`);
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  const inExample = [...text.matchAll(/^#? ?([a-z-]+) =/gm)].map((m) => m[1]);
  const missing = keys.filter((k) => !inExample.includes(k));
  assert.deepEqual(missing, [], 'settings the example does not show');
  const unknown = inExample.filter((k) => !keys.includes(k));
  assert.deepEqual(unknown, [], 'keys in the example that are no setting');
  assert.equal(new Set(inExample).size, inExample.length, `a key shown twice: ${inExample.join(' ')}`);
});

test('deploy: kefu serves with kefu.conf.example as its config file (flags for the address and data)', { timeout: 30000 }, (t) =>
  scenario(t, async (env) => {
    // The harness passes --listen and --data as flags, which win over the file's.
    const srv = await env.server({ args: ['--config', EXAMPLE] });
    const r = await srv.api('GET', '/readyz');
    assert.equal(r.status, 200, r.text);
    // secure-cookies = true from the file: the session cookie is Secure.
    const login = await srv.api('POST', '/api/agent/login', { body: { email: env.agents[0].email, password: env.agents[0].password } });
    assert.equal(login.status, 200, login.text);
    assert.match(String(login.headers['set-cookie']), /;\s*Secure/i);
    await srv.stop();
  }),
);

const ANALYZE = '/usr/bin/systemd-analyze';
test('deploy: kefu.service passes systemd-analyze verify', { skip: fs.existsSync(ANALYZE) ? false : `${ANALYZE} is not installed` }, () => {
  // verify checks that ExecStart's binary exists: point it at the one under test.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-unit-'));
  try {
    const unit = fs.readFileSync(path.join(DEPLOY, 'kefu.service'), 'utf8');
    const here = unit.replace('ExecStart=/usr/local/bin/kefu ', `ExecStart=${path.resolve(KEFU_BIN)} `);
    assert.notEqual(here, unit, 'ExecStart runs /usr/local/bin/kefu');
    fs.writeFileSync(path.join(dir, 'kefu.service'), here);
    const r = spawnSync(ANALYZE, ['verify', path.join(dir, 'kefu.service')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `systemd-analyze verify: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), '', 'no warnings');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
