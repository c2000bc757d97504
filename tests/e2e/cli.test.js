'use strict';
// cli.test.js: the kefu command's refusals — bad flags, a data directory or database it cannot
// use, a port already taken, `kefu user add` mistakes — each a message on stderr and exit status
// 2 (usage) or 1 (could not do it), nothing else; and where settings come from (a config file,
// KEFU_* variables, flags: docs/CONFIG.md). Under ASan a leak on any of these exits would
// change the status (LeakSanitizer exits 23), so the exact statuses also check the clean-up.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { KEFU_BIN, tmpDir } = require('./harness');

function kefu(args, { input = '', dataDir, env } = {}) {
  const full = dataDir ? [...args, '--data', dataDir] : args;
  const r = spawnSync(KEFU_BIN, full, { input, encoding: 'utf8', timeout: 30000, env: env && { ...process.env, ...env } });
  assert.equal(r.error, undefined, `kefu ${full.join(' ')} ran`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function expectRefused(r, status, stderrPattern, what) {
  assert.equal(r.signal, null, `${what}: not killed by a signal\n${r.stderr}`);
  assert.equal(r.status, status, `${what}: exit status\n${r.stderr}`);
  assert.match(r.stderr, stderrPattern, `${what}: says why`);
}

test('cli: --help prints the usage on standard output and exits 0', () => {
  const r = kefu(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: kefu \[options\]/);
  assert.match(r.stdout, /kefu user add EMAIL/);
});

test('cli: docs/CONFIG.md\'s table of settings is exactly `kefu --help-markdown`, and --help lists every flag in it', () => {
  const md = kefu(['--help-markdown']);
  assert.equal(md.status, 0);
  const doc = fs.readFileSync(path.resolve(__dirname, '../../docs/CONFIG.md'), 'utf8');
  assert.ok(doc.includes(md.stdout), `docs/CONFIG.md's table differs from kefu --help-markdown; paste this:\n${md.stdout}`);
  const help = kefu(['--help']).stdout;
  const names = [...md.stdout.matchAll(/^\| `(--[a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(names.length >= 17, names.join(' '));
  for (const name of names) assert.match(help, new RegExp(`^  ${name}\\b`, 'm'), `--help lists ${name}`);
});

test('cli: bad flags and values are refused with status 2 before anything starts', () => {
  const dataDir = tmpDir();
  try {
    const origins = [];
    for (let i = 0; i < 17; i++) origins.push('--allow-origin', `https://site${i}.example`);
    const cases = [
      [['--no-such-flag'], /usage: kefu/],
      [['--listen', 'nonsense'], /--listen takes HOST:PORT/],
      [['--listen', '127.0.0.1:99999'], /--listen takes HOST:PORT/],
      [['--listen', ':8080'], /--listen takes HOST:PORT/],
      [['--listen', '127.0.0.1:'], /--listen takes HOST:PORT/],
      [['--synchronous', 'OFF'], /--synchronous is FULL or NORMAL/],
      [['--log-level', 'loud'], /unknown log level loud/],
      [['--max-connections-per-address', 'many'], /--max-connections-per-address takes a whole number/],
      [['--max-push-per-visitor', '-1'], /--max-push-per-visitor takes a whole number/],
      [['--header-timeout', '0'], /--header-timeout takes a whole number from 1 to 3600, not 0/],
      [['--header-timeout', '3601'], /--header-timeout takes a whole number from 1 to 3600, not 3601/],
      [['--visitor-request-burst', '0'], /a burst must be at least 1/],
      [origins, /too many --allow-origin/],
      [['serve-please'], /unexpected argument serve-please/],
      [['user'], /usage: kefu user add/],
    ];
    for (const [args, pattern] of cases) {
      expectRefused(kefu(args, { dataDir }), 2, pattern, args.slice(0, 2).join(' '));
    }
    // Nothing was created: the flags are checked before the database is opened.
    assert.deepEqual(fs.readdirSync(dataDir), []);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('cli: a data directory or database it cannot use, and a port already taken, exit 1', async () => {
  const dataDir = tmpDir();
  const blocker = net.createServer();
  try {
    // A file where the data directory should be: it cannot be created.
    const file = path.join(dataDir, 'not-a-directory');
    fs.writeFileSync(file, '');
    expectRefused(kefu(['--listen', '127.0.0.1:0'], { dataDir: path.join(file, 'data') }), 1,
      /cannot create/, 'data directory');
    // A directory where the database file should be: SQLite cannot open it.
    const odd = path.join(dataDir, 'odd');
    fs.mkdirSync(path.join(odd, 'kefu.db'), { recursive: true });
    expectRefused(kefu(['--listen', '127.0.0.1:0'], { dataDir: odd }), 1,
      /cannot open the database/, 'database');
    // A port someone else listens on.
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = blocker.address().port;
    const ok = path.join(dataDir, 'ok');
    expectRefused(kefu(['--listen', `127.0.0.1:${port}`], { dataDir: ok }), 1,
      /cannot listen on 127\.0\.0\.1:\d+/, 'port in use');
    // It got as far as creating the first account, in a database only its user may read.
    assert.equal(kefuMode(ok), '600');
  } finally {
    blocker.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// The permission bits of the database file, as octal text.
function kefuMode(dataDir) {
  return (fs.statSync(path.join(dataDir, 'kefu.db')).mode & 0o777).toString(8);
}

test('cli: kefu user add refuses what it cannot do, and adds an agent once', () => {
  const dataDir = tmpDir();
  try {
    const add = (args, input) => kefu(['user', 'add', ...args], { input, dataDir });
    // Refused before the password is read: no input, or writing it could meet a closed pipe.
    expectRefused(add(['--name', 'Ana'], ''), 2, /usage: kefu user add/, 'no e-mail');
    expectRefused(add(['ana@example.com'], ''), 2, /usage: kefu user add/, 'no name');
    expectRefused(add(['ana@example.com', '--name', 'Ana', '--colour', 'red'], ''), 2,
      /unexpected argument --colour/, 'unknown flag');
    expectRefused(add(['ana@example.com', '--name', 'Ana'], ''), 2,
      /password on standard input/, 'no password');
    expectRefused(add(['ana@example.com', '--name', 'Ana'], '\n'), 2,
      /password on standard input/, 'empty password');
    expectRefused(add(['not-an-address', '--name', 'Ana'], 'pw\n'), 1,
      /invalid argument/, 'bad e-mail');
    expectRefused(add(['ana@example.com', '--name', 'Ana', '--role', 'owner'], 'pw\n'), 1,
      /invalid argument/, 'bad role');

    const first = add(['Ana@Example.com', '--name', 'Ana', '--role', 'admin',
      '--synchronous', 'NORMAL'], 'correct horse\r\n');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /created admin Ana@Example\.com/);
    // E-mail addresses are compared without case.
    expectRefused(add(['ana@example.com', '--name', 'Ana again'], 'pw\n'), 1,
      /already exists/, 'the same e-mail');
    assert.equal(kefuMode(dataDir), '600');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// Starts kefu with args and env, waits for its start-up message, and returns what it printed.
function startUntilListening(args, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(KEFU_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no start-up message:\n${stderr}`)); }, 20000);
    proc.stderr.on('data', (d) => {
      stderr += d;
      if (/visitor chat:/.test(stderr)) { clearTimeout(timer); resolve({ proc, stderr }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`kefu exited ${code}:\n${stderr}`)); });
  });
}

test('cli: a flag wins over KEFU_* variables, which win over the config file', async () => {
  const dir = tmpDir();
  try {
    const fileData = path.join(dir, 'file-data');
    const conf = path.join(dir, 'kefu.conf');
    fs.writeFileSync(conf, [
      '# kefu settings',
      'listen = 127.0.0.1:1', // a port kefu could not take: the flag must win
      `data = ${fileData}`,
      'public-url = https://file.example',
      'log-level = info',
      '',
    ].join('\n'));
    const { proc, stderr } = await startUntilListening(['--config', conf, '--listen', '127.0.0.1:0'], {
      KEFU_LISTEN: '127.0.0.1:2', KEFU_PUBLIC_URL: 'https://env.example',
    });
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)[1]);
    assert.ok(port > 2, stderr);                                    // the flag's port 0
    assert.match(stderr, /agent console: https:\/\/env\.example\/agent/); // the environment
    assert.ok(fs.existsSync(path.join(fileData, 'kefu.db')));        // the file's
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    // The subcommands read the same file and variables: an agent goes into the file's database,
    // and the backup copies it from there.
    const add = kefu(['user', 'add', 'bo@example.com', '--name', 'Bo', '--config', conf], { input: 'pw for bo\n' });
    assert.equal(add.status, 0, add.stderr);
    const dest = path.join(dir, 'copy.db');
    const backup = kefu(['backup', dest], { env: { KEFU_CONFIG: conf } });
    assert.equal(backup.status, 0, backup.stderr);
    assert.match(backup.stderr, new RegExp(`backed up ${fileData.replace(/[.]/g, '\\.')}/kefu\\.db`));
    const refused = kefu(['backup', path.join(dir, 'other.db')], { env: { KEFU_CONFIG: conf, KEFU_DATA_DIR: '/x' } });
    assert.equal(refused.status, 2, 'a misspelt variable stops the subcommands too');
    assert.match(refused.stderr, /unknown setting in the environment: KEFU_DATA_DIR/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cli: an unknown key in the config file, or a misspelt KEFU_ setting, is refused with status 2', () => {
  const dir = tmpDir();
  try {
    const conf = path.join(dir, 'kefu.conf');
    fs.writeFileSync(conf, 'data = /tmp/unused\nlisen = 127.0.0.1:0\n');
    expectRefused(kefu(['--config', conf]), 2, new RegExp(`${conf.replace(/[.]/g, '\\.')}:2: unknown setting lisen`), 'unknown key');
    fs.writeFileSync(conf, 'header-timeout = soon\n');
    expectRefused(kefu([], { env: { KEFU_CONFIG: conf } }), 2, /kefu\.conf:1: header-timeout takes a whole number from 1 to 3600, not soon/, 'bad value');
    expectRefused(kefu(['--config', path.join(dir, 'missing.conf')]), 2, /cannot read the config file .*missing\.conf/, 'no file');
    expectRefused(kefu([], { env: { KEFU_LISTEN_PORT: '8080' } }), 2, /unknown setting in the environment: KEFU_LISTEN_PORT/, 'unknown variable');
    expectRefused(kefu([], { env: { KEFU_MAX_PUSH_PER_AGENT: 'lots' } }), 2, /KEFU_MAX_PUSH_PER_AGENT takes a whole number/, 'bad variable');
    assert.ok(!fs.existsSync('/tmp/unused/kefu.db'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
