'use strict';
// attachments.test.js: files in a conversation (docs/API.md, "Attachments"; docs/UI-CONTRACT.md).
// Over the API: a visitor's image and an agent's PDF stored and carried by messages, their bytes
// and headers when downloaded (Content-Disposition, nosniff, a sandboxing CSP, private caching),
// a renamed program refused (415), a file past --max-upload-bytes refused (413), bad names and
// empty files, and who may fetch what (another visitor: 404). In the browsers: the visitor
// attaches an image on /chat and the agent sees its preview live and fetches it; the agent
// attaches a PDF and the visitor downloads it from its chip; refusals are said in words, and
// screenshots at desktop and phone sizes.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, assertError, tmpDir, heldLongPoll, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, pageUrl, waitConnected, waitMsg, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA] = DEFAULT_AGENTS;
const T = 15000;
const LIMIT = 200000; // --max-upload-bytes for these tests
const ARGS = ['--max-upload-bytes', String(LIMIT)];

// A real PNG of w x h pixels, a diagonal gradient: something a browser decodes and draws.
function png(w, h) {
  const crcTable = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crcTable[n] = c >>> 0;
  }
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + 3 * w);
    for (let x = 0; x < w; x++) {
      row[1 + 3 * x] = (x * 255) / w;
      row[2 + 3 * x] = (y * 255) / h;
      row[3 + 3 * x] = 200;
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
// A Windows program's first bytes (MZ, then a DOS stub), whatever its name says.
const EXE = Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff', 'latin1'), Buffer.alloc(400)]);

function upload(srv, p, bytes, opts) {
  return srv.api('POST', p, { ...opts, body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
}

test('attachments over the API: stored, carried by messages, served with safe headers to whom they belong; wrong types, sizes and names refused', { timeout: 60000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ARGS });
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const v = await newVisitor(srv, 'Vera');
    const other = await newVisitor(srv, 'Otto');
    const image = png(40, 30);

    // The visitor's image: a message whose text is its name, with the attachment's fields.
    let r = await upload(srv, `/api/visitor/attachments?name=${encodeURIComponent('收据 receipt.png')}`, image, { token: v.token });
    assert.equal(r.status, 201, r.text);
    const m = r.json.message;
    assert.equal(m.sender, 'visitor');
    assert.equal(m.body, '收据 receipt.png');
    const a = m.attachment;
    assert.deepEqual([a.name, a.type, a.size], ['收据 receipt.png', 'image/png', image.length]);
    assert.equal(a.url, `/api/attachments/${a.id}`);

    // Its bytes, and the headers that keep them from being run as anything.
    const check = (res, type, disposition) => {
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['content-type'], type);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['content-security-policy'], "default-src 'none'; sandbox; frame-ancestors 'none'", 'one policy, the download\'s own (node joins repeated headers)');
      assert.match(res.headers['cache-control'], /^private/);
      assert.match(res.headers['content-disposition'], disposition);
    };
    r = await srv.api('GET', a.url, { cookie: ana.cookie });
    check(r, 'image/png', /^inline; filename="[^"]*receipt\.png"; filename\*=UTF-8''%E6%94%B6%E6%8D%AE%20receipt\.png$/);
    const bytes = await fetch(srv.base + a.url, { headers: { Cookie: ana.cookie } }).then((x) => x.arrayBuffer());
    assert.ok(Buffer.from(bytes).equals(image), 'the agent gets the very bytes');
    check(await srv.api('GET', a.url, { token: v.token }), 'image/png', /^inline/);
    // A push ticket (an <img> on the visitor's page) opens it too.
    const ticket = (await srv.api('POST', '/api/visitor/push-ticket', { token: v.token })).json.ticket;
    check(await srv.api('GET', `${a.url}?ticket=${encodeURIComponent(ticket)}`), 'image/png', /^inline/);
    // Nobody else: another visitor is told there is none, a stranger to sign in.
    assertError(await srv.api('GET', a.url, { token: other.token }), 404, 'not_found', "another visitor's fetch");
    const otherTicket = (await srv.api('POST', '/api/visitor/push-ticket', { token: other.token })).json.ticket;
    assertError(await srv.api('GET', `${a.url}?ticket=${encodeURIComponent(otherTicket)}`), 404, 'not_found', "another visitor's ticket");
    assertError(await srv.api('GET', a.url), 401, 'unauthorized', 'no credentials');
    assertError(await srv.api('GET', '/api/attachments/999999', { cookie: ana.cookie }), 404, 'not_found', 'an unknown attachment');

    // The agent's PDF in that conversation: pushed to the visitor and the agents as any message
    // (here by long polling; the browsers below use SSE and WebSocket), a download, and the
    // visitor's history carries it.
    const [visitorHeld, agentHeld] = await Promise.all([
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=10`, { token: v.token }),
      heldLongPoll(srv, `/push/longpoll?after=${m.id}&timeout=10`, { cookie: ana.cookie }),
    ]);
    const [visitorPoll, agentPoll] = [visitorHeld.result, agentHeld.result];
    r = await upload(srv, `/api/conversations/${m.conversation_id}/attachments?name=invoice.pdf`, PDF, { cookie: ana.cookie, csrf: ana.csrf });
    assert.equal(r.status, 201, r.text);
    const pdf = r.json.message;
    assert.deepEqual([pdf.sender, pdf.agent_name, pdf.attachment.type, pdf.attachment.size], ['agent', ANA.name, 'application/pdf', PDF.length]);
    check(await srv.api('GET', pdf.attachment.url, { token: v.token }), 'application/pdf', /^attachment; filename="invoice\.pdf"; filename\*=UTF-8''invoice\.pdf$/);
    for (const poll of [visitorPoll, agentPoll]) {
      const events = (await poll).json.events.filter((e) => e.type === 'message');
      assert.deepEqual(events.map((e) => e.message.attachment), [pdf.attachment], 'the pushed message carries the file');
    }
    r = await srv.api('GET', '/api/visitor/messages', { token: v.token });
    assert.deepEqual(r.json.messages.map((x) => x.attachment && x.attachment.name), ['收据 receipt.png', 'invoice.pdf']);
    r = await srv.api('GET', `/api/conversations/${m.conversation_id}/messages`, { cookie: ana.cookie });
    assert.deepEqual(r.json.messages.map((x) => x.attachment && x.attachment.id), [a.id, pdf.attachment.id]);
    r = await srv.api('GET', `/api/conversations/${m.conversation_id}`, { cookie: ana.cookie });
    assert.equal(r.json.conversation.last_message.attachment.name, 'invoice.pdf', 'the list shows the newest file');
    // A text file is served as UTF-8 text, to be downloaded.
    r = await upload(srv, '/api/visitor/attachments?name=notes.txt', Buffer.from('Order 42\n订单\n'), { token: v.token });
    assert.equal(r.status, 201, r.text);
    check(await srv.api('GET', r.json.message.attachment.url, { token: v.token }), 'text/plain; charset=utf-8', /^attachment/);

    // Refused, with nothing stored: a program named .png (its bytes decide), a file past the
    // limit, no name, a bad name, an empty file; an agent's upload without its CSRF token, or to
    // a conversation that does not exist.
    assertError(await upload(srv, '/api/visitor/attachments?name=cat.png', EXE, { token: v.token }), 415, 'file_type_not_allowed', 'a renamed .exe');
    assertError(await upload(srv, '/api/visitor/attachments?name=big.png', Buffer.concat([image, Buffer.alloc(LIMIT)]), { token: v.token }), 413, 'too_large', 'past --max-upload-bytes');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await srv.api('POST', '/api/visitor/attachments?name=a.png', { token: v.token, body: image, headers: { 'Content-Type': type } });
      assertError(res, 415, 'unsupported_media_type', `an upload as ${type}`);
    }
    assertError(await upload(srv, '/api/visitor/attachments?name=%01.png', image, { token: v.token }), 422, 'invalid', 'a control character');
    assertError(await upload(srv, '/api/visitor/attachments?name=%2F', image, { token: v.token }), 422, 'invalid', 'a name that is only a folder');
    assertError(await srv.api('POST', '/api/visitor/attachments?name=a.png', { token: v.token }), 422, 'invalid', 'an empty file');
    assertError(await upload(srv, `/api/conversations/${m.conversation_id}/attachments?name=a.pdf`, PDF, { cookie: ana.cookie }), 403, 'csrf', 'no CSRF token');
    assertError(await upload(srv, '/api/conversations/999999/attachments?name=a.pdf', PDF, { cookie: ana.cookie, csrf: ana.csrf }), 404, 'not_found', 'an unknown conversation');
    // A folder in the name is dropped: only the file's own name is kept.
    r = await upload(srv, `/api/visitor/attachments?name=${encodeURIComponent('C:\\Users\\vera\\scan.pdf')}`, PDF, { token: v.token });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.message.attachment.name, 'scan.pdf');
    // Without a name, one is made from the type.
    r = await upload(srv, '/api/visitor/attachments', image, { token: v.token });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.message.attachment.name, 'file.png');
    r = await srv.api('GET', '/api/visitor/messages', { token: v.token });
    assert.equal(r.json.messages.length, 5, 'the refused ones stored nothing');
    // The normal body limit still holds everywhere else.
    assertError(await srv.api('POST', '/api/visitor/messages', { token: v.token, body: { body: 'x'.repeat(70 * 1024) } }), 413, 'too_large', 'a message past 64 KiB');
  }));

test('attachments in the browsers: the visitor attaches an image, the agent sees it live and fetches it; the agent sends a PDF the visitor downloads; refusals in words', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server({ args: ARGS });
    const dir = tmpDir('kefu-attach-');
    env.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const imagePath = path.join(dir, 'photo.png');
    fs.writeFileSync(imagePath, png(160, 100));
    const pdfPath = path.join(dir, 'invoice.pdf');
    fs.writeFileSync(pdfPath, PDF);
    const exePath = path.join(dir, 'kitten.png');
    fs.writeFileSync(exePath, EXE);
    const bigPath = path.join(dir, 'huge.png');
    fs.writeFileSync(bigPath, Buffer.concat([png(10, 10), Buffer.alloc(LIMIT)]));

    const v = await newVisitor(srv, 'Vera');
    const first = await visitorSend(srv, v.token, 'Here is a photo of the damage');
    const visitorCtx = await env.context('visitor');
    const visitorPage = await visitorCtx.newPage();
    await visitorPage.addInitScript((token) => localStorage.setItem('kefu.visitor.token', token), v.token);
    await visitorPage.setViewportSize({ width: 1280, height: 800 });
    await visitorPage.goto(pageUrl(srv, '/chat', 'sse'));
    await waitConnected(visitorPage);
    await waitMsg(visitorPage, '#messages', 'Here is a photo of the damage', 'visitor');

    const ana = await openAgent(env, srv, 'ws', ANA);
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    await selectConv(ana, first.conversation_id);

    // The visitor picks a file with the labelled button: it is sent at once, with a progress bar.
    const attach = visitorPage.getByRole('button', { name: 'Attach a file' });
    const [chooser] = await Promise.all([visitorPage.waitForEvent('filechooser'), attach.click()]);
    await chooser.setFiles(imagePath);
    const ownImage = visitorPage.locator('#messages .msg[data-sender="visitor"] img.attachment-preview');
    await ownImage.waitFor({ timeout: T });
    await visitorPage.waitForFunction(() => {
      const img = document.querySelector('#messages img.attachment-preview');
      return img && img.complete && img.naturalWidth === 160;
    }, null, { timeout: T });
    assert.ok(await visitorPage.locator('#attach-status').isHidden(), 'the progress bar goes once it is sent');

    // The agent sees its preview without a reload, and may open it.
    const preview = ana.page.locator('#thread .msg[data-sender="visitor"] img.attachment-preview');
    await preview.waitFor({ timeout: T });
    await ana.page.waitForFunction(() => {
      const img = document.querySelector('#thread img.attachment-preview');
      return img && img.complete && img.naturalWidth === 160;
    }, null, { timeout: T });
    assert.equal(await preview.getAttribute('alt'), 'Image: photo.png');
    const link = ana.page.getByRole('link', { name: /^Open image photo\.png/ });
    const href = await link.getAttribute('href');
    const fetched = await ana.page.evaluate(async (url) => {
      const res = await fetch(url);
      return { status: res.status, type: res.headers.get('content-type'), size: (await res.arrayBuffer()).byteLength };
    }, href);
    assert.deepEqual(fetched, { status: 200, type: 'image/png', size: fs.statSync(imagePath).size });

    // The agent sends a PDF; the visitor sees its chip and downloads it.
    const [agentChooser] = await Promise.all([ana.page.waitForEvent('filechooser'), ana.page.getByRole('button', { name: 'Attach a file' }).click()]);
    await agentChooser.setFiles(pdfPath);
    await ana.page.locator('#thread .msg[data-sender="agent"] .msg-attachment.is-file').waitFor({ timeout: T });
    const chip = visitorPage.getByRole('link', { name: /^Download invoice\.pdf/ });
    await chip.waitFor({ timeout: T });
    const [download] = await Promise.all([visitorPage.waitForEvent('download', { timeout: T }), chip.click()]);
    assert.equal(download.suggestedFilename(), 'invoice.pdf');
    const saved = await download.path();
    assert.ok(fs.readFileSync(saved).equals(PDF), 'the visitor gets the very bytes');

    // Screenshots: the visitor's page and the console at desktop size, the visitor's on a phone.
    const shots = process.env.KEFU_SCREENSHOTS || dir;
    await visitorPage.screenshot({ path: path.join(shots, 'attach-visitor-desktop.png') });
    await ana.page.screenshot({ path: path.join(shots, 'attach-agent-desktop.png') });

    // A program named .png, and a file past the limit: refused, and said so in words.
    const [c2] = await Promise.all([visitorPage.waitForEvent('filechooser'), attach.click()]);
    await c2.setFiles(exePath);
    const error = visitorPage.locator('#attach-error');
    await error.waitFor({ state: 'visible', timeout: T });
    assert.match(await error.textContent(), /That kind of file cannot be sent/);
    const [c3] = await Promise.all([visitorPage.waitForEvent('filechooser'), attach.click()]);
    await c3.setFiles(bigPath);
    await visitorPage.waitForFunction(() => /too large/.test(document.querySelector('#attach-error').textContent), null, { timeout: T });
    await visitorPage.setViewportSize({ width: 390, height: 844 });
    await visitorPage.screenshot({ path: path.join(shots, 'attach-visitor-phone.png') });
    // In Chinese too.
    await visitorPage.selectOption('#lang-select', 'zh-CN');
    const [c4] = await Promise.all([visitorPage.waitForEvent('filechooser'), visitorPage.locator('#attach-button').click()]);
    await c4.setFiles(exePath);
    await visitorPage.waitForFunction(() => /不能发送这种文件/.test(document.querySelector('#attach-error').textContent), null, { timeout: T });
    const count = await srv.api('GET', '/api/visitor/messages', { token: v.token });
    assert.equal(count.json.messages.length, 3, 'the refused files stored nothing');
    assertNoPageProblems(ana);
  }));

test('attachments in the website widget: the visitor on another site attaches an image in the frame, sees its preview, and the agent sees it live', { timeout: 90000 }, (t) =>
  scenario(t, async (env) => {
    const http = require('node:http');
    const srv = await env.server({ args: ARGS });
    // A customer's page on another origin (localhost vs 127.0.0.1) with the one tag.
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body><script src="${srv.base}/widget.js" async></script></body></html>`;
    const site = http.createServer((req, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html));
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    env.defer(() => new Promise((resolve) => site.close(resolve)));
    const dir = tmpDir('kefu-attach-widget-');
    env.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const imagePath = path.join(dir, 'shoe.png');
    fs.writeFileSync(imagePath, png(120, 80));

    const host = await env.page('host');
    await host.setViewportSize({ width: 1280, height: 800 });
    await host.goto(`http://localhost:${site.address().port}/`);
    await host.getByRole('button', { name: 'Open chat' }).click();
    const frame = await (await host.waitForSelector('kefu-widget >> iframe', { state: 'attached', timeout: T })).contentFrame();
    await waitConnected(frame);
    await frame.fill('#message-input', 'This one, in size 44?');
    await frame.press('#message-input', 'Enter');
    await waitMsg(frame, '#messages', 'This one, in size 44?', 'visitor');

    const ana = await openAgent(env, srv, 'sse', ANA);
    const conv = (await srv.api('GET', '/api/conversations', { cookie: (await agentLogin(srv, ANA.email, ANA.password)).cookie })).json.conversations[0];
    await selectConv(ana, conv.id);

    const [chooser] = await Promise.all([host.waitForEvent('filechooser'), frame.getByRole('button', { name: 'Attach a file' }).click()]);
    await chooser.setFiles(imagePath);
    await frame.waitForFunction(() => {
      const img = document.querySelector('#messages img.attachment-preview');
      return img && img.complete && img.naturalWidth === 120;
    }, null, { timeout: T });
    await ana.page.waitForFunction(() => {
      const img = document.querySelector('#thread img.attachment-preview');
      return img && img.complete && img.naturalWidth === 120;
    }, null, { timeout: T });
    assertNoPageProblems(ana);
  }));
