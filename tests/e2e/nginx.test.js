'use strict';
// nginx.test.js: kefu behind Debian's nginx with the shipped deploy/nginx.conf passes the
// transport conformance suite (conformance.test.js): every transport delivers through the
// proxy, nothing lost or doubled, and live (a message within a second, so no buffer or
// compressor holds it). The nginx configuration is built from the shipped file itself (its
// upstream, map and zones, and the location rules between its "kefu locations" marks) inside an
// http block with Debian's own settings (gzip on among them), listening on a free loopback port
// in plain HTTP instead of the file's TLS server; so the test checks the file operators install.
// The shipped file as a whole (TLS server included) must also pass `nginx -t`; and through it
// /metrics is not served, kefu takes nginx's request id, and kefu, trusting the proxy's
// X-Forwarded-For, applies its per-address limits to each client.
//
// Skipped, saying so, only when nginx is not installed (scripts/deps.sh installs it for the tests).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');
const { DEFAULT_AGENTS, RAISED_LIMITS, scenario, sleep, api } = require('./harness');
const { conformance } = require('./conformance.test.js');

const NGINX = process.env.NGINX || '/usr/sbin/nginx';
const SHIPPED = path.join(__dirname, '..', '..', 'deploy', 'nginx.conf');
const HAVE_NGINX = fs.existsSync(NGINX);
const SKIP = HAVE_NGINX ? false : `nginx is not installed (${NGINX}); scripts/deps.sh test installs it`;

// The shipped file's parts: what goes in nginx's http block before the first server, and the
// server's kefu rules between the marks.
function shippedParts() {
  const text = fs.readFileSync(SHIPPED, 'utf8');
  const server = text.search(/^server \{/m);
  const begin = text.indexOf('# kefu locations: begin');
  const end = text.indexOf('# kefu locations: end');
  assert.ok(server > 0 && begin > server && end > begin, `${SHIPPED}: an http-level part, then a server with "# kefu locations: begin" and "end" marks`);
  return { httpLevel: text.slice(0, server), locations: text.slice(begin, end) };
}

// A directory nginx's workers can use: as root they run as nobody.
function nginxDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-nginx-'));
  fs.chmodSync(dir, 0o755);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    fs.mkdirSync(path.join(dir, d));
    fs.chmodSync(path.join(dir, d), 0o777);
  }
  return dir;
}

// http-level settings as Debian 12's /etc/nginx/nginx.conf has them (its gzip_types line
// uncommented, and text/event-stream added: the push locations must turn compression off).
function debianHttp(dir) {
  return `
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    gzip on;
    gzip_types text/plain text/css application/json application/javascript text/xml application/xml application/xml+rss text/javascript text/event-stream;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;`;
}

function confFile(dir, body) {
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, `worker_processes 1;\nevents { worker_connections 4096; }\nhttp {${debianHttp(dir)}\n${body}\n}\n`);
  return file;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function nginxArgs(dir, file) {
  return ['-p', dir, '-c', file, '-e', path.join(dir, 'error.log'), '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`];
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

// Starts nginx in front of kefu's port; resolves with { port, stop }.
async function startNginx(kefuPort) {
  const dir = nginxDir();
  const { httpLevel, locations } = shippedParts();
  const upstream = httpLevel.replace(/server 127\.0\.0\.1:8080;/, `server 127.0.0.1:${kefuPort};`);
  assert.notEqual(upstream, httpLevel, 'the shipped upstream names 127.0.0.1:8080');
  const port = await freePort();
  const file = confFile(dir, `${upstream}\n    server {\n        listen 127.0.0.1:${port};\n        server_name _;\n        ${locations}\n    }`);
  const proc = spawn(NGINX, nginxArgs(dir, file), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  for (let i = 0; !(await portOpen(port)); i++) {
    if (exited || i > 100) {
      proc.kill('SIGKILL');
      throw new Error(`nginx did not start (${JSON.stringify(exited)}): ${output}${errorLog()}`);
    }
    await sleep(50);
  }
  const stop = async () => {
    if (!exited) {
      proc.kill('SIGTERM');
      await Promise.race([exit, sleep(5000)]);
      if (!exited) proc.kill('SIGKILL');
    }
    const log = errorLog();
    fs.rmSync(dir, { recursive: true, force: true });
    return log;
  };
  return { port, stop, errorLog };
}

// kefu as the conformance cases see it through nginx: base and port are the proxy's; the rest
// (restart, the process) is kefu's.
async function behindNginx(env) {
  const srv = await env.server({ args: RAISED_LIMITS });
  const proxy = await startNginx(srv.port);
  env.defer(async () => {
    const log = await proxy.stop();
    // nginx says here why it cut a connection or answered 502 for kefu.
    if (/\[(crit|alert|emerg)\]/.test(log)) throw new Error(`nginx error log:\n${log.slice(-4000)}`);
  });
  const view = Object.create(srv);
  Object.defineProperty(view, 'port', { value: proxy.port });
  Object.defineProperty(view, 'base', { value: `http://127.0.0.1:${proxy.port}` });
  view.restart = () => srv.restart();
  // The slow-reader case sizes its burst by the buffers between kefu and the client: the proxy's too.
  view.proxied = true;
  return view;
}

test('the shipped deploy/nginx.conf, TLS server and all, passes nginx -t', { skip: SKIP }, () => {
  const dir = nginxDir();
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=chat.example.com', '-days', '1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(ssl.status, 0, `openssl: ${ssl.stderr}`);
    const shipped = fs.readFileSync(SHIPPED, 'utf8');
    const withCert = shipped.replace(/ssl_certificate \S+;/, `ssl_certificate ${cert};`).replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${key};`);
    assert.notEqual(withCert, shipped);
    const file = confFile(dir, withCert);
    const r = spawnSync(NGINX, ['-t', ...nginxArgs(dir, file)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nginx -t: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /test is successful/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('through nginx: /metrics is not served, and kefu takes nginx\'s request id', { skip: SKIP, timeout: 30000 }, (tt) =>
  scenario(tt, async (env) => {
    const proxied = await behindNginx(env);
    const direct = Object.getPrototypeOf(proxied);
    assert.equal((await direct.api('GET', '/metrics')).status, 200, 'kefu answers loopback');
    const m = await proxied.api('GET', '/metrics');
    assert.equal(m.status, 404, `through nginx: ${m.status} ${m.text.slice(0, 200)}`);
    assert.doesNotMatch(m.text, /kefu_/);
    // nginx's $request_id is 32 hex digits; kefu makes 16 of its own when given none.
    assert.match((await direct.api('GET', '/healthz')).headers['x-request-id'], /^[0-9a-f]{16}$/);
    const h = await proxied.api('GET', '/healthz', { headers: { 'X-Request-Id': 'from-the-client' } });
    assert.equal(h.status, 200);
    assert.match(h.headers['x-request-id'], /^[0-9a-f]{32}$/, 'the id nginx made, not the client\'s');
  }),
);

// kefu.conf.example trusts the proxy on 127.0.0.1 (trusted-proxy), so kefu's per-address limits
// count the client nginx names in X-Forwarded-For: new visitor sessions (60 at once, then one a
// second) and failed logins (20 per address in 15 minutes) are each client's, answered with
// kefu's own 429. The clients here come from 127.0.0.2 and 127.0.0.3: one the proxy's own address
// would be trusted too, and what it wrote in X-Forwarded-For believed.
test('through nginx: kefu limits new visitor sessions and failed logins per client address, not per proxy', { skip: SKIP, timeout: 60000 }, (tt) =>
  scenario(tt, async (env) => {
    const srv = await env.server({ args: ['--config', path.join(__dirname, '..', '..', 'deploy', 'kefu.conf.example')] });
    const proxy = await startNginx(srv.port);
    env.defer(() => proxy.stop());
    const from = (localAddress) => (method, p, opts = {}) => api(`http://127.0.0.1:${proxy.port}`, method, p, { ...opts, localAddress });
    const a = from('127.0.0.2');
    const b = from('127.0.0.3');
    // Sends until one is refused; returns the answers before it and the time taken. The bucket
    // refills as time passes (a machine under load sends slowly): burst plus one a second.
    const untilRefused = async (send, max) => {
      const t0 = Date.now();
      const passed = [];
      for (let i = 0; i < max; i++) {
        const r = await send(i);
        if (r.status === 429) return { passed, refused: r, seconds: (Date.now() - t0) / 1000 };
        passed.push(r);
      }
      assert.fail(`none of ${max} refused: ${passed.map((r) => r.status)}`);
    };
    const s = await untilRefused(() => a('POST', '/api/visitor/session', { body: {} }), 200);
    assert.ok(s.passed.length >= 60 && s.passed.length <= 60 + Math.ceil(s.seconds), `60 at once, then one a second: ${s.passed.length} passed in ${s.seconds} s`);
    assert.deepEqual([...new Set(s.passed.map((r) => r.status))], [201]);
    assert.equal(s.refused.json && s.refused.json.error.code, 'rate_limited', s.refused.text);
    assert.match(s.refused.json.error.message, /new visitors/, 'kefu\'s own refusal, not the proxy\'s');
    assert.ok(Number(s.refused.headers['retry-after']) >= 1, 'Retry-After');
    assert.equal((await b('POST', '/api/visitor/session', { body: {} })).status, 201, 'another client through the same proxy is not affected');
    // Failed logins: the 21st wrong password from one client is refused per address (other
    // accounts each time, so the per-account limit plays no part); the other client still logs in.
    const l = await untilRefused((i) => a('POST', '/api/agent/login', { body: { email: `nobody${i}@example.com`, password: 'wrong password' } }), 100);
    assert.equal(l.passed.length, 20, `20 failed logins from one client, then 429: ${l.passed.map((r) => r.status)}`);
    assert.deepEqual([...new Set(l.passed.map((r) => r.status))], [401]);
    const ok = await b('POST', '/api/agent/login', { body: { email: DEFAULT_AGENTS[0].email, password: DEFAULT_AGENTS[0].password } });
    assert.equal(ok.status, 200, `an agent at another address logs in: ${ok.text}`);
    assert.match(srv.tail(), /from 127\.0\.0\.2/, 'kefu\'s log names the client, not the proxy');
  }),
);

if (HAVE_NGINX) {
  // Every case: the raw-socket ones too (a reader that stops, malformed handshakes and frames
  // go through nginx to kefu and back as they would from a browser's network).
  conformance({ start: behindNginx, label: ' [through nginx]' });
} else {
  test('the transport conformance suite through nginx', { skip: SKIP }, () => {});
}
