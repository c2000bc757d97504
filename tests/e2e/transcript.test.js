'use strict';
// transcript.test.js: GET /api/conversations/{id}/transcript (docs/API.md): the whole thread, past
// the 500 of one page, oldest first, as JSON or as a text file to keep; bad formats and unknown ids
// refused; agents only.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, newVisitor, visitorSend, agentLogin, agentSend, assertError, DEFAULT_AGENTS } = require('./harness');
const { openAgent, selectConv, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA] = DEFAULT_AGENTS;

test('transcript: the whole thread as JSON and as text, past one page; 400 for another format, 404 for an unknown conversation, 401 for a visitor', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const v = await newVisitor(srv, '王小明');
    const first = await visitorSend(srv, v.token, '我要退款\nOrder #42, the blue one');
    const conv = first.conversation_id;
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const N = 520; // more than one page of 500
    for (let i = 0; i < N; i++) await agentSend(srv, ana, conv, `reply ${i}`);

    const json = await srv.api('GET', `/api/conversations/${conv}/transcript`, { cookie: ana.cookie });
    assert.equal(json.status, 200, json.text);
    assert.equal(json.json.conversation.id, conv);
    assert.equal(json.json.complete, true);
    assert.equal(json.json.messages.length, N + 1, 'every message, past the first page');
    assert.equal(json.json.messages[0].body, '我要退款\nOrder #42, the blue one');
    assert.equal(json.json.messages[N].body, `reply ${N - 1}`);
    const ids = json.json.messages.map((m) => Number(m.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'oldest first');

    const txt = await srv.api('GET', `/api/conversations/${conv}/transcript?format=txt`, { cookie: ana.cookie });
    assert.equal(txt.status, 200);
    assert.match(txt.headers['content-type'], /^text\/plain; charset=utf-8/);
    assert.equal(txt.headers['content-disposition'], `attachment; filename="kefu-conversation-${conv}.txt"`);
    const lines = txt.text.split('\n');
    assert.match(lines[0], new RegExp(`^Conversation ${conv} with 王小明 \\(visitor #\\d+\\)$`));
    assert.match(lines[1], /^Started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; status: open$/);
    assert.match(lines[3], /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] 王小明: 我要退款$/);
    assert.equal(lines[4], '    Order #42, the blue one', 'a body\'s further lines are indented');
    assert.match(lines[5], /^\[.* UTC\] Ana \(agent\): reply 0$/);
    assert.equal(txt.text.trim().split('\n').filter((l) => l.startsWith('[')).length, N + 1);

    assertError(await srv.api('GET', `/api/conversations/${conv}/transcript?format=pdf`, { cookie: ana.cookie }), 400, 'bad_request', 'format=pdf');
    const bad = await srv.api('GET', `/api/conversations/${conv}/transcript?format=txt%00`, { cookie: ana.cookie });
    assert.equal(bad.status, 400, 'a NUL does not pass for the end of "txt"');
    assertError(await srv.api('GET', '/api/conversations/999999/transcript', { cookie: ana.cookie }), 404, 'not_found', 'an unknown conversation');
    assertError(await srv.api('GET', `/api/conversations/${conv}/transcript`, { token: v.token }), 401, 'unauthorized', 'a visitor');
    assertError(await srv.api('GET', `/api/conversations/${conv}/transcript`), 401, 'unauthorized', 'nobody');

    // In the console: "Transcript" downloads the text file.
    const a = await openAgent(env, srv, 'ws', ANA);
    await selectConv(a, conv);
    const [download] = await Promise.all([a.page.waitForEvent('download', { timeout: 15000 }), a.page.getByRole('link', { name: 'Transcript' }).click()]);
    assert.equal(download.suggestedFilename(), `kefu-conversation-${conv}.txt`);
    const file = await download.path();
    assert.match(require('node:fs').readFileSync(file, 'utf8'), /\] Ana \(agent\): reply 519\n/);
    assertNoPageProblems(a);
  }));
