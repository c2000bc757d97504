'use strict';
// assets.test.js: how the embedded pages, scripts and style sheet reach a browser — gzip when the
// client accepts it (encoded at build time: the bytes inflate to the identity body), an entity tag
// per representation, 304 on revalidation, Vary — and that a real Chromium's second visit
// downloads no asset again.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const { scenario, api, closeBrowser } = require('./harness');

after(closeBrowser);

const FILES = ['/chat', '/agent', '/widget', '/static/widget_frame.js', '/static/kefu.js', '/static/ui.js', '/static/outbox.js', '/static/i18n.js', '/static/i18n_zh-CN.js', '/static/conversation_list.js', '/static/search.js', '/static/chat.js', '/static/agent.js', '/static/kefu.css', '/static/favicon.svg'];

test('assets: gzip when accepted, the same bytes inflated, an ETag per representation, 304 on If-None-Match, Vary: Accept-Encoding', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    let plainTotal = 0;
    let gzipTotal = 0;
    for (const path of FILES) {
      const plain = await api(srv.base, 'GET', path, { headers: { 'Accept-Encoding': 'identity' } });
      assert.equal(plain.status, 200, path);
      assert.equal(plain.headers['content-encoding'], undefined, `${path}: identity asked, identity sent`);
      assert.equal(plain.headers.vary, 'Accept-Encoding', path);
      assert.equal(plain.headers['cache-control'], 'no-cache', path);
      assert.match(plain.headers.etag, /^"[0-9a-f]{16}"$/, path);

      const gz = await rawGet(srv, path, { 'Accept-Encoding': 'gzip, deflate, br' });
      assert.equal(gz.status, 200, path);
      assert.equal(gz.headers['content-encoding'], 'gzip', `${path}: gzip accepted, gzip sent`);
      assert.equal(gz.headers.etag, plain.headers.etag.replace(/"$/, '-gz"'), `${path}: its own tag`);
      assert.equal(zlib.gunzipSync(gz.body).toString('utf8'), plain.text, `${path}: inflates to the identity body`);
      assert.ok(gz.body.length < Buffer.byteLength(plain.text), `${path}: smaller`);
      plainTotal += Buffer.byteLength(plain.text);
      gzipTotal += gz.body.length;

      // Refused explicitly: identity, whatever else the header says.
      const refused = await rawGet(srv, path, { 'Accept-Encoding': 'gzip;q=0, *;q=0.5' });
      assert.equal(refused.headers['content-encoding'], undefined, `${path}: gzip;q=0 respected`);

      // Revalidation: the tag of the representation asked for gives 304 without a body; the
      // other representation's tag does not.
      const again = await rawGet(srv, path, { 'Accept-Encoding': 'gzip', 'If-None-Match': gz.headers.etag });
      assert.equal(again.status, 304, `${path}: revalidated`);
      assert.equal(again.body.length, 0, `${path}: 304 has no body`);
      assert.equal(again.headers.etag, gz.headers.etag, path);
      // No length and no policy of its own: a cache merges a 304's headers into its copy.
      assert.equal(again.headers['content-length'], undefined, `${path}: 304 without Content-Length`);
      assert.ok(!/default-src 'none'/.test(again.headers['content-security-policy'] || ''), `${path}: 304 without the no-content policy`);
      const weak = await rawGet(srv, path, { 'If-None-Match': `W/${plain.headers.etag}` });
      assert.equal(weak.status, 304, `${path}: weak comparison`);
      const other = await rawGet(srv, path, { 'If-None-Match': gz.headers.etag });
      assert.equal(other.status, 200, `${path}: another representation's tag is no match`);

      const head = await rawGet(srv, path, { 'Accept-Encoding': 'gzip' }, 'HEAD');
      assert.equal(head.status, 200, path);
      assert.equal(head.body.length, 0, `${path}: HEAD has no body`);
      assert.equal(head.headers['content-length'], String(gz.body.length), `${path}: HEAD's length is GET's`);
    }
    t.diagnostic(`assets: ${plainTotal} bytes plain, ${gzipTotal} gzip (${(gzipTotal / plainTotal * 100).toFixed(0)}%)`);
  }));

test('assets: a browser revalidates instead of downloading again on its second visit', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ctx = await env.context('visitor');
    const page = await ctx.newPage();
    const statuses = [];
    page.on('response', (r) => {
      if (r.url().includes('/static/')) statuses.push({ url: r.url(), status: r.status(), encoding: r.headers()['content-encoding'] });
    });
    await page.goto(`${srv.base}/chat`);
    await page.waitForLoadState('load');
    const first = statuses.splice(0);
    assert.ok(first.length >= 3, `the page loads its assets: ${JSON.stringify(first)}`);
    for (const r of first) {
      assert.equal(r.status, 200, r.url);
      if (!r.url.endsWith('.svg') || r.encoding) assert.equal(r.encoding, 'gzip', `${r.url}: Chromium gets gzip`);
    }
    await page.goto(`${srv.base}/chat`);
    await page.waitForLoadState('load');
    // The icon is left out: Chromium's favicon loader fetches it on its own terms.
    const second = statuses.splice(0).filter((r) => !r.url.endsWith('.svg'));
    assert.ok(second.length >= 3, JSON.stringify(second));
    for (const r of second) assert.equal(r.status, 304, `${r.url}: revalidated, not downloaded`);
  }));

// A GET (or HEAD) on its own connection, the body kept as bytes.
function rawGet(srv, path, headers, method = 'GET') {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path, method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.end();
  });
}
