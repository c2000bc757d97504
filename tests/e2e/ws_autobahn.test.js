'use strict';
// ws_autobahn.test.js: the server-side case groups of the Autobahn|Testsuite (fuzzingclient),
// re-expressed with a raw-socket client (tests/e2e/wsraw.js: hand-built, masked frames) against a
// real kefu process on /push/ws.
//
// kefu's WebSocket speaks JSON actions, not echo: where Autobahn expects a message echoed, the
// message here is a `ping` action ({"type":"ping","ref":…}) sized or split as the case needs, and
// the expected answer is its `pong` reply with the same ref. Text that is valid UTF-8 but not JSON
// gets an `error` reply (bad_json) and the connection stays open. Binary messages are refused
// with 1003 (the protocol is JSON text). The message limit is 64 KiB (1009 above), so the 9.x
// "large message" cases stop there.
//
// At the end a table "group: N cases, N passed" is printed and written to
// /tmp/autobahn-summary.txt.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { Env, newVisitor, RAISED_LIMITS } = require('./harness');
const { OP, frame, closePayload, RawWs } = require('./wsraw');

const LIMIT = 64 * 1024;
const GROUPS = {
  1: 'framing',
  2: 'pings and pongs',
  3: 'reserved bits',
  4: 'opcodes',
  5: 'fragmentation',
  6: 'UTF-8 handling',
  7: 'close handling',
  9: 'limits and large messages',
};

let env;
let srv;
let token;
const results = new Map(); // group -> {cases, passed, failed: [ids]}

before(async () => {
  env = new Env({ name: 'autobahn' });
  // One visitor opens a WebSocket per case, hundreds in a row: past the per-visitor request limit.
  srv = await env.server({ args: RAISED_LIMITS });
  token = (await newVisitor(srv, 'autobahn')).token;
});

after(async () => {
  let out = 'kefu WebSocket server vs the Autobahn|Testsuite case groups (tests/e2e/ws_autobahn.test.js)\n';
  let total = 0;
  let passed = 0;
  for (const g of Object.keys(GROUPS)) {
    const r = results.get(g) || { cases: 0, passed: 0, failed: [] };
    total += r.cases;
    passed += r.passed;
    out += `${(g + '.x ' + GROUPS[g]).padEnd(32)}: ${String(r.cases).padStart(3)} cases, ${String(r.passed).padStart(3)} passed${r.failed.length ? '  (failed: ' + r.failed.join(', ') + ')' : ''}\n`;
  }
  out += `${'total'.padEnd(32)}: ${String(total).padStart(3)} cases, ${String(passed).padStart(3)} passed\n`;
  fs.writeFileSync('/tmp/autobahn-summary.txt', out);
  process.stdout.write('\n' + out);
  const errors = await env.cleanup({ strict: true });
  if (errors.length) {
    env.dump(errors[0]);
    throw errors[0];
  }
});

// Declares one case: a fresh connection (handshake, first frame = heartbeat), fn(ws), the result
// counted in its group.
function ab(id, title, fn, { timeout = 20000, path = '/push/ws?after=0' } = {}) {
  const group = id.split('.')[0];
  if (!results.has(group)) results.set(group, { cases: 0, passed: 0, failed: [] });
  const r = results.get(group);
  r.cases++;
  test(`autobahn ${id} ${title}`, { timeout }, async () => {
    let ws;
    try {
      ws = await RawWs.open(srv.port, { path, headers: { Authorization: `Bearer ${token}` } });
      await fn(ws);
      r.passed++;
    } catch (e) {
      r.failed.push(id);
      e.message = `autobahn ${id} ${title}: ${e.message}\n--- kefu log tail ---\n${srv.tail(4000)}`;
      throw e;
    } finally {
      if (ws) ws.destroy();
    }
  });
}

// ---- helpers -------------------------------------------------------------------------------------

const B = (hex) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const PING_EMPTY = '{"type":"ping","ref":""}';

// A ping action of exactly n bytes (n >= 24).
function pingOfSize(n, ch = 'a') {
  const ref = ch.repeat(n - PING_EMPTY.length);
  const text = `{"type":"ping","ref":"${ref}"}`;
  assert.equal(Buffer.byteLength(text), n);
  return { text, ref };
}

// A ping action whose ref holds raw bytes (which may be invalid UTF-8).
function pingWithBytes(bytes) {
  return Buffer.concat([Buffer.from('{"type":"ping","ref":"'), bytes, Buffer.from('"}')]);
}

// Splits buf into fragments of `size` bytes: the first with `opcode`, the rest continuations.
function fragments(buf, size, opcode = OP.TEXT) {
  const out = [];
  for (let i = 0; i < buf.length || i === 0; i += size) {
    const last = i + size >= buf.length;
    out.push(frame({ opcode: i === 0 ? opcode : OP.CONT, fin: last, payload: buf.subarray(i, i + size) }));
    if (buf.length === 0) break;
  }
  return out;
}

// Sends frames: 'one' = one write; 'frames' = one write per frame; 'octets' = one byte per write.
async function sendFrames(ws, frames, mode = 'one') {
  if (mode === 'one') return ws.write(Buffer.concat(frames));
  if (mode === 'octets') return ws.writeChopped(Buffer.concat(frames), 1);
  for (const f of frames) {
    if (!(await ws.write(f))) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

async function expectPong(ws, ref, what = 'the pong reply') {
  const j = await ws.json(5000, what);
  assert.equal(j.type, 'pong', `${what}: ${JSON.stringify(j).slice(0, 300)}`);
  assert.equal(j.ref, ref, `${what}: ref echoed (${typeof j.ref === 'string' ? j.ref.length : typeof j.ref} vs ${ref.length} chars)`);
}

async function expectControl(ws, opcode, payload, what) {
  const f = await ws.next(3000, what);
  assert.equal(f.opcode, opcode, `${what}: expected opcode ${opcode}, got ${f.opcode} (${f.text || f.payload.toString('hex')})`);
  assert.equal(f.payload.toString('hex'), Buffer.from(payload).toString('hex'), `${what}: payload echoed`);
}

async function expectBadJson(ws, what = 'the bad_json error reply') {
  const j = await ws.json(3000, what);
  assert.equal(j.type, 'error', `${what}: ${JSON.stringify(j)}`);
  assert.equal(j.error && j.error.code, 'bad_json', `${what}: ${JSON.stringify(j)}`);
}

// The connection is still usable.
const stillOpen = (ws) => ws.pingAction('still-open');

// ---- 1.x framing ---------------------------------------------------------------------------------

const SIZES = [0, 125, 126, 127, 128, 65535, 65536];
SIZES.forEach((n, i) => {
  ab(`1.1.${i + 1}`, `text message of ${n} bytes`, async (ws) => {
    if (n === 0) {
      await ws.text('');
      await expectBadJson(ws, 'an empty text message is not JSON: error reply');
      await stillOpen(ws);
      return;
    }
    const p = pingOfSize(n);
    await ws.text(p.text);
    await expectPong(ws, p.ref);
  });
});
ab('1.1.8', 'text message of 65536 bytes written in chops of 997 bytes', async (ws) => {
  const p = pingOfSize(65536, 'b');
  await ws.writeChopped(frame({ opcode: OP.TEXT, payload: p.text }), 997);
  await expectPong(ws, p.ref);
});
SIZES.forEach((n, i) => {
  ab(`1.2.${i + 1}`, `binary message of ${n} bytes -> 1003`, async (ws) => {
    await ws.send({ opcode: OP.BINARY, payload: Buffer.alloc(n, 0xfe) });
    await ws.expectClose(1003);
  });
});
ab('1.2.8', 'binary message of 65536 bytes written in chops of 997 bytes -> 1003', async (ws) => {
  await ws.writeChopped(frame({ opcode: OP.BINARY, payload: Buffer.alloc(65536, 0xfe) }), 997);
  await ws.expectClose(1003);
});

// ---- 2.x pings and pongs -------------------------------------------------------------------------

ab('2.1', 'ping without payload -> pong without payload', async (ws) => {
  await ws.send({ opcode: OP.PING });
  await expectControl(ws, OP.PONG, Buffer.alloc(0), 'pong');
});
ab('2.2', 'ping with a small text payload -> pong with the same payload', async (ws) => {
  await ws.send({ opcode: OP.PING, payload: 'Hello, world!' });
  await expectControl(ws, OP.PONG, Buffer.from('Hello, world!'), 'pong');
});
ab('2.3', 'ping with a small binary payload -> pong with the same payload', async (ws) => {
  const p = B('00 ff fe fd fc fb 00 ff');
  await ws.send({ opcode: OP.PING, payload: p });
  await expectControl(ws, OP.PONG, p, 'pong');
});
ab('2.4', 'ping with a 125-byte binary payload -> pong with the same payload', async (ws) => {
  const p = Buffer.alloc(125, 0xfe);
  await ws.send({ opcode: OP.PING, payload: p });
  await expectControl(ws, OP.PONG, p, 'pong');
});
ab('2.5', 'ping with a 126-byte payload -> 1002', async (ws) => {
  await ws.send({ opcode: OP.PING, payload: Buffer.alloc(126, 0xfe) });
  await ws.expectClose(1002);
});
ab('2.6', 'ping with a 125-byte payload written one byte at a time -> pong', async (ws) => {
  const p = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!'.repeat(6)).subarray(0, 125);
  await ws.writeChopped(frame({ opcode: OP.PING, payload: p }), 1);
  await expectControl(ws, OP.PONG, p, 'pong');
});
ab('2.7', 'unsolicited pong without payload is ignored', async (ws) => {
  await ws.send({ opcode: OP.PONG });
  await ws.pingAction('after-pong'); // the next frame is this reply: nothing came for the pong
});
ab('2.8', 'unsolicited pong with payload is ignored', async (ws) => {
  await ws.send({ opcode: OP.PONG, payload: 'unsolicited pong payload' });
  await ws.pingAction('after-pong');
});
ab('2.9', 'unsolicited pong, then ping -> one pong with the ping payload', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.PONG, payload: 'unsolicited' }), frame({ opcode: OP.PING, payload: 'solicited' })]));
  await expectControl(ws, OP.PONG, Buffer.from('solicited'), 'pong for the ping');
  await ws.pingAction('after');
});
ab('2.10', '10 pings in a row -> 10 pongs in order', async (ws) => {
  const fs_ = [];
  for (let i = 0; i < 10; i++) fs_.push(frame({ opcode: OP.PING, payload: `payload-${i}` }));
  await ws.write(Buffer.concat(fs_));
  for (let i = 0; i < 10; i++) await expectControl(ws, OP.PONG, Buffer.from(`payload-${i}`), `pong ${i}`);
});
ab('2.11', '10 pings written one byte at a time -> 10 pongs in order', async (ws) => {
  const fs_ = [];
  for (let i = 0; i < 10; i++) fs_.push(frame({ opcode: OP.PING, payload: `payload-${i}` }));
  await ws.writeChopped(Buffer.concat(fs_), 1);
  for (let i = 0; i < 10; i++) await expectControl(ws, OP.PONG, Buffer.from(`payload-${i}`), `pong ${i}`);
});
ab('2.12', 'pings with every payload length 0..125 -> pongs with the same payloads', async (ws) => {
  const fs_ = [];
  const ps = [];
  for (let n = 0; n <= 125; n++) {
    const p = Buffer.alloc(n);
    for (let i = 0; i < n; i++) p[i] = (n * 7 + i) & 0xff;
    ps.push(p);
    fs_.push(frame({ opcode: OP.PING, payload: p }));
  }
  await ws.write(Buffer.concat(fs_));
  for (let n = 0; n <= 125; n++) await expectControl(ws, OP.PONG, ps[n], `pong for the ${n}-byte ping`);
});

// ---- 3.x reserved bits ---------------------------------------------------------------------------

// Autobahn: a valid message, then the frame with RSV bits, then a ping: the first is answered, the
// bad frame closes with 1002, the ping is never answered.
function rsvCase(id, rsv, mode, bad, title) {
  ab(id, `${title} with RSV=${rsv}${mode === 'octets' ? ' (octet-wise)' : ''} -> 1002`, async (ws) => {
    const frames = [frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: 'before' }) }), frame({ ...bad, rsv }), frame({ opcode: OP.PING, payload: 'after' })];
    await sendFrames(ws, frames, mode);
    await expectPong(ws, 'before', 'the reply to the valid message before the bad frame');
    await ws.expectClose(1002);
  });
}
const pingJson = JSON.stringify({ type: 'ping', ref: 'bad' });
rsvCase('3.1', 1, 'one', { opcode: OP.TEXT, payload: pingJson }, 'text frame');
rsvCase('3.2', 2, 'one', { opcode: OP.TEXT, payload: pingJson }, 'text frame');
rsvCase('3.3', 3, 'frames', { opcode: OP.TEXT, payload: pingJson }, 'text frame');
rsvCase('3.4', 4, 'octets', { opcode: OP.TEXT, payload: pingJson }, 'text frame');
rsvCase('3.5', 5, 'one', { opcode: OP.BINARY, payload: B('00 ff fe fd') }, 'binary frame');
rsvCase('3.6', 6, 'one', { opcode: OP.PING, payload: 'ping' }, 'ping frame');
rsvCase('3.7', 7, 'one', { opcode: OP.CLOSE, payload: closePayload(1000) }, 'close frame');

// ---- 4.x opcodes ---------------------------------------------------------------------------------

function opcodeCase(id, opcode, variant) {
  const title = { empty: 'frame without payload', payload: 'frame with payload', between: 'frame between valid messages', octets: 'frame between valid messages, octet-wise' }[variant];
  ab(id, `reserved ${opcode < 8 ? 'non-control' : 'control'} opcode ${opcode}: ${title} -> 1002`, async (ws) => {
    const bad = frame({ opcode, payload: variant === 'empty' ? '' : 'reserved opcode payload' });
    if (variant === 'empty' || variant === 'payload') {
      await ws.write(bad);
      await ws.expectClose(1002);
      return;
    }
    const frames = [frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: 'before' }) }), bad, frame({ opcode: OP.PING, payload: 'after' })];
    await sendFrames(ws, frames, variant === 'octets' ? 'octets' : 'one');
    await expectPong(ws, 'before');
    await ws.expectClose(1002);
  });
}
['empty', 'payload', 'between', 'between', 'octets'].forEach((v, i) => opcodeCase(`4.1.${i + 1}`, 3 + i, v));
['empty', 'payload', 'between', 'between', 'octets'].forEach((v, i) => opcodeCase(`4.2.${i + 1}`, 11 + i, v));

// ---- 5.x fragmentation ---------------------------------------------------------------------------

ab('5.1', 'ping fragmented into 2 frames -> 1002', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.PING, fin: false, payload: 'fragment1' }), frame({ opcode: OP.CONT, payload: 'fragment2' })]));
  await ws.expectClose(1002);
});
ab('5.2', 'pong fragmented into 2 frames -> 1002', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.PONG, fin: false, payload: 'fragment1' }), frame({ opcode: OP.CONT, payload: 'fragment2' })]));
  await ws.expectClose(1002);
});
const frag2 = (ref) => {
  const t = Buffer.from(JSON.stringify({ type: 'ping', ref }));
  const cut = Math.floor(t.length / 2);
  return [frame({ opcode: OP.TEXT, fin: false, payload: t.subarray(0, cut) }), frame({ opcode: OP.CONT, payload: t.subarray(cut) })];
};
[['5.3', 'one'], ['5.4', 'frames'], ['5.5', 'octets']].forEach(([id, mode]) => {
  ab(id, `text message in 2 fragments (${mode === 'one' ? 'one write' : mode === 'frames' ? 'frame by frame' : 'octet-wise'}) is assembled`, async (ws) => {
    await sendFrames(ws, frag2('two fragments'), mode);
    await expectPong(ws, 'two fragments');
  });
});
[['5.6', 'one'], ['5.7', 'octets'], ['5.8', 'frames']].forEach(([id, mode]) => {
  ab(id, `fragmented text with ping between (${mode === 'one' ? 'one write' : mode === 'frames' ? 'frame by frame' : 'octet-wise'})`, async (ws) => {
    const [a, b] = frag2('with ping between');
    await sendFrames(ws, [a, frame({ opcode: OP.PING, payload: 'between' }), b], mode);
    await expectControl(ws, OP.PONG, Buffer.from('between'), 'the pong for the ping between fragments');
    await expectPong(ws, 'with ping between', 'the reply to the assembled message');
  });
});
[['5.9', 'one'], ['5.10', 'octets'], ['5.11', 'frames']].forEach(([id, mode]) => {
  ab(id, `continuation (FIN=1) without a start -> 1002 (${mode})`, async (ws) => {
    await sendFrames(ws, [frame({ opcode: OP.CONT, payload: 'non-continuation payload' }), frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: 'x' }) })], mode);
    await ws.expectClose(1002);
  });
});
[['5.12', 'one'], ['5.13', 'octets'], ['5.14', 'frames']].forEach(([id, mode]) => {
  ab(id, `continuation (FIN=0) without a start -> 1002 (${mode})`, async (ws) => {
    await sendFrames(ws, [frame({ opcode: OP.CONT, fin: false, payload: 'non-continuation payload' }), frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: 'x' }) })], mode);
    await ws.expectClose(1002);
  });
});
ab('5.15', 'text message in 2 fragments, then continuation after its end -> reply, then 1002', async (ws) => {
  await ws.write(Buffer.concat([...frag2('first'), frame({ opcode: OP.CONT, fin: false, payload: 'fragment3' }), frame({ opcode: OP.CONT, payload: 'fragment4' })]));
  await expectPong(ws, 'first');
  await ws.expectClose(1002);
});
ab('5.16', '(continuation FIN=0, text FIN=0, continuation FIN=1) twice -> 1002', async (ws) => {
  const seq = [frame({ opcode: OP.CONT, fin: false, payload: 'fragment1' }), frame({ opcode: OP.TEXT, fin: false, payload: 'fragment2' }), frame({ opcode: OP.CONT, payload: 'fragment3' })];
  await ws.write(Buffer.concat([...seq, ...seq]));
  await ws.expectClose(1002);
});
ab('5.17', '(continuation FIN=1, text FIN=0, continuation FIN=1) twice -> 1002', async (ws) => {
  const seq = [frame({ opcode: OP.CONT, payload: 'fragment1' }), frame({ opcode: OP.TEXT, fin: false, payload: 'fragment2' }), frame({ opcode: OP.CONT, payload: 'fragment3' })];
  await ws.write(Buffer.concat([...seq, ...seq]));
  await ws.expectClose(1002);
});
ab('5.18', 'new text frame while a fragmented text message is unfinished -> 1002', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: '{"type":"pi' }), frame({ opcode: OP.TEXT, payload: '{"type":"ping","ref":"x"}' })]));
  await ws.expectClose(1002);
});
[['5.19', 'frames'], ['5.20', 'one']].forEach(([id, mode]) => {
  ab(id, `text message in 5 fragments with a ping after each (${mode === 'one' ? 'one write' : 'frame by frame'})`, async (ws) => {
    const t = Buffer.from(JSON.stringify({ type: 'ping', ref: 'five fragments, four pings' }));
    const step = Math.ceil(t.length / 5);
    const frames = [];
    for (let i = 0; i < 5; i++) {
      frames.push(frame({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: i === 4, payload: t.subarray(i * step, (i + 1) * step) }));
      if (i < 4) frames.push(frame({ opcode: OP.PING, payload: `pongme ${i}` }));
    }
    await sendFrames(ws, frames, mode);
    for (let i = 0; i < 4; i++) await expectControl(ws, OP.PONG, Buffer.from(`pongme ${i}`), `pong ${i}`);
    await expectPong(ws, 'five fragments, four pings');
  });
});
ab('5.21', 'many small fragments: a 1000-byte text message in 1000 one-byte fragments', async (ws) => {
  const p = pingOfSize(1000, 'c');
  await ws.write(Buffer.concat(fragments(Buffer.from(p.text), 1)));
  await expectPong(ws, p.ref);
});
ab('5.22', 'empty fragments around the payload (text FIN=0 empty, continuation, continuation FIN=1 empty)', async (ws) => {
  const t = JSON.stringify({ type: 'ping', ref: 'empty fragments' });
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: '' }), frame({ opcode: OP.CONT, fin: false, payload: t }), frame({ opcode: OP.CONT, payload: '' })]));
  await expectPong(ws, 'empty fragments');
});
ab('5.23', 'fragmented binary message -> 1003', async (ws) => {
  await ws.write(Buffer.concat(fragments(Buffer.alloc(300, 0xab), 100, OP.BINARY)));
  await ws.expectClose(1003);
});
ab('5.24', 'two fragmented messages back to back are both assembled', async (ws) => {
  await ws.write(Buffer.concat([...fragments(Buffer.from(JSON.stringify({ type: 'ping', ref: 'm1' })), 5), ...fragments(Buffer.from(JSON.stringify({ type: 'ping', ref: 'm2' })), 7)]));
  await expectPong(ws, 'm1');
  await expectPong(ws, 'm2');
});

// ---- 6.x UTF-8 -----------------------------------------------------------------------------------

const KOSME = B('ce ba e1 bd b9 cf 83 ce bc ce b5'); // κόσμε
const HELLO = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!');

ab('6.1.1', 'empty text message: valid UTF-8 (bad_json reply, no close)', async (ws) => {
  await ws.text('');
  await expectBadJson(ws);
  await stillOpen(ws);
});
ab('6.1.2', 'empty text message in 3 empty fragments: valid (bad_json reply, no close)', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false }), frame({ opcode: OP.CONT, fin: false }), frame({ opcode: OP.CONT })]));
  await expectBadJson(ws);
  await stillOpen(ws);
});
ab('6.2.1', 'valid multi-byte text in one frame', async (ws) => {
  await ws.text(pingWithBytes(HELLO));
  await expectPong(ws, HELLO.toString('utf8'));
});
ab('6.2.2', 'valid multi-byte text in 2 fragments split at a code point boundary', async (ws) => {
  const m = pingWithBytes(HELLO);
  const cut = m.indexOf(Buffer.from('ß')) ;
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: m.subarray(0, cut) }), frame({ opcode: OP.CONT, payload: m.subarray(cut) })]));
  await expectPong(ws, HELLO.toString('utf8'));
});
ab('6.2.3', 'valid multi-byte text in one frame written one byte at a time', async (ws) => {
  await ws.writeChopped(frame({ opcode: OP.TEXT, payload: pingWithBytes(HELLO) }), 1);
  await expectPong(ws, HELLO.toString('utf8'));
});
ab('6.2.4', 'valid multi-byte text in one-byte fragments (code points split across fragments)', async (ws) => {
  await ws.write(Buffer.concat(fragments(pingWithBytes(KOSME), 1)));
  await expectPong(ws, KOSME.toString('utf8'));
});
ab('6.3.1', 'invalid UTF-8 (κόσμε + a surrogate) in one frame -> 1007', async (ws) => {
  await ws.text(pingWithBytes(Buffer.concat([KOSME, B('ed a0 80'), Buffer.from('edited')])));
  await ws.expectClose(1007);
});
ab('6.3.2', 'invalid UTF-8 (κόσμε + a surrogate) in one-byte fragments -> 1007', async (ws) => {
  await ws.write(Buffer.concat(fragments(pingWithBytes(Buffer.concat([KOSME, B('ed a0 80'), Buffer.from('edited')])), 1)));
  await ws.expectClose(1007);
});
// Fail fast: the server must close as soon as a fragment proves the text invalid, before the rest.
ab('6.4.1', 'fail fast: invalid sequence in the first of 3 fragments -> 1007 before the rest is sent', async (ws) => {
  await ws.send({ opcode: OP.TEXT, fin: false, payload: Buffer.concat([Buffer.from('{"type":"ping","ref":"'), KOSME, B('f4 90 80 80')]) });
  await ws.expectClose(1007, { what: 'after the first fragment only' });
  await ws.send({ opcode: OP.CONT, fin: false, payload: 'edited' }).catch(() => {});
});
ab('6.4.2', 'fail fast: a code point split across fragments that turns invalid (F4 | 90) -> 1007 before the last fragment', async (ws) => {
  await ws.send({ opcode: OP.TEXT, fin: false, payload: Buffer.concat([Buffer.from('{"type":"ping","ref":"'), KOSME, B('f4')]) });
  await ws.send({ opcode: OP.CONT, fin: false, payload: B('90') });
  await ws.expectClose(1007, { what: 'after the second fragment' });
});
ab('6.4.3', 'invalid sequence in the middle chop of one frame written in 3 chops -> 1007', async (ws) => {
  const f = frame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('{"type":"ping","ref":"'), KOSME, B('f4 90 80 80'), Buffer.from('edited"}')]) });
  await ws.write(f.subarray(0, 10));
  await ws.write(f.subarray(10, 24));
  await ws.write(f.subarray(24));
  await ws.expectClose(1007);
});
ab('6.4.4', 'fail fast: invalid byte in the middle of a message sent as one-byte fragments -> 1007 before the rest', async (ws) => {
  const m = Buffer.concat([Buffer.from('{"type":"ping","ref":"'), KOSME, B('f4 90 80 80'), Buffer.from('edited"}')]);
  const bad = m.indexOf(B('90 80 80'));
  const frs = fragments(m, 1);
  await ws.write(Buffer.concat(frs.slice(0, bad + 1)));
  await ws.expectClose(1007, { what: 'after the fragment holding the invalid byte' });
});
ab('6.4.5', 'text message ending mid-character (last fragment completes nothing) -> 1007', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: Buffer.concat([Buffer.from('{"type":"ping","ref":"'), B('ce')]) }), frame({ opcode: OP.CONT, payload: '' })]));
  await ws.expectClose(1007);
});

// Byte sequences, each sent as the ref of a ping action (valid: pong with the same text) or, for
// control characters JSON refuses, as the whole message (valid: bad_json reply). Invalid: 1007.
const VALID = [];
const INVALID = [];
// 6.5: valid texts.
VALID.push(['6.5.1', 'κόσμε', KOSME]);
VALID.push(['6.5.2', 'κόσμε in one-byte fragments', KOSME, 'fragments']);
VALID.push(['6.5.3', '4-byte characters (😀𝄞) split across one-byte fragments', Buffer.from('😀𝄞'), 'fragments']);
VALID.push(['6.5.4', 'CJK, Arabic, Devanagari, emoji with ZWJ', Buffer.from('你好 مرحبا नमस्ते 👩‍👩‍👧')]);
VALID.push(['6.5.5', 'a 60 KiB run of 3-byte characters split in 997-byte fragments', Buffer.from('中'.repeat(20000)), 'fragments997']);
// 6.6: every prefix of κόσμε; those ending mid-character are invalid.
for (let n = 1; n <= KOSME.length; n++) {
  const id = `6.6.${n}`;
  const p = KOSME.subarray(0, n);
  const ok = [2, 5, 7, 9, 11].includes(n);
  (ok ? VALID : INVALID).push([id, `the first ${n} bytes of κόσμε (${p.toString('hex')})`, p, 'raw']);
}
// 6.7: first possible sequence of each length; 6.9: last possible.
VALID.push(['6.7.1', 'U+0000 (first 1-byte sequence)', B('00'), 'raw']);
VALID.push(['6.7.2', 'U+0080 (first 2-byte sequence)', B('c2 80')]);
VALID.push(['6.7.3', 'U+0800 (first 3-byte sequence)', B('e0 a0 80')]);
VALID.push(['6.7.4', 'U+10000 (first 4-byte sequence)', B('f0 90 80 80')]);
INVALID.push(['6.8.1', '5-byte sequence f8 88 80 80 80', B('f8 88 80 80 80')]);
INVALID.push(['6.8.2', '6-byte sequence fc 84 80 80 80 80', B('fc 84 80 80 80 80')]);
VALID.push(['6.9.1', 'U+007F (last 1-byte sequence)', B('7f')]);
VALID.push(['6.9.2', 'U+07FF (last 2-byte sequence)', B('df bf')]);
VALID.push(['6.9.3', 'U+FFFF (last 3-byte sequence)', B('ef bf bf')]);
VALID.push(['6.9.4', 'U+10FFFF (last 4-byte sequence)', B('f4 8f bf bf')]);
// 6.10: beyond U+10FFFF.
INVALID.push(['6.10.1', 'U+1FFFFF as 4 bytes (f7 bf bf bf)', B('f7 bf bf bf')]);
INVALID.push(['6.10.2', 'U+3FFFFFF as 5 bytes', B('fb bf bf bf bf')]);
INVALID.push(['6.10.3', 'U+7FFFFFFF as 6 bytes', B('fd bf bf bf bf bf')]);
// 6.11: other boundaries.
VALID.push(['6.11.1', 'U+D7FF (ed 9f bf)', B('ed 9f bf')]);
VALID.push(['6.11.2', 'U+E000 (ee 80 80)', B('ee 80 80')]);
VALID.push(['6.11.3', 'U+FFFD (ef bf bd)', B('ef bf bd')]);
VALID.push(['6.11.4', 'U+10FFFF (f4 8f bf bf)', B('f4 8f bf bf')]);
INVALID.push(['6.11.5', 'U+110000 (f4 90 80 80)', B('f4 90 80 80')]);
// 6.12: unexpected continuation bytes.
[['80'], ['bf'], ['80 bf'], ['80 bf 80'], ['80 bf 80 bf'], ['80 bf 80 bf 80'], ['80 bf 80 bf 80 bf']].forEach(([h], i) => INVALID.push([`6.12.${i + 1}`, `unexpected continuation bytes ${h}`, B(h)]));
INVALID.push(['6.12.8', 'all 64 continuation bytes 80..bf', Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i))]);
// 6.13: lonely start characters followed by a space.
const lonely = (from, to) => Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => [from + i, 0x20]).flat());
INVALID.push(['6.13.1', 'lonely 2-byte starts c0..df each followed by a space', lonely(0xc0, 0xdf)]);
INVALID.push(['6.13.2', 'lonely 3-byte starts e0..ef each followed by a space', lonely(0xe0, 0xef)]);
INVALID.push(['6.13.3', 'lonely 4-byte starts f0..f7 each followed by a space', lonely(0xf0, 0xf7)]);
INVALID.push(['6.13.4', 'lonely 5-byte starts f8..fb each followed by a space', lonely(0xf8, 0xfb)]);
INVALID.push(['6.13.5', 'lonely 6-byte starts fc..fd each followed by a space', lonely(0xfc, 0xfd)]);
// 6.14: sequences with the last continuation byte missing (at the end of the message).
const TRUNC = ['c0', 'e0 80', 'f0 80 80', 'f8 80 80 80', 'fc 80 80 80 80', 'df', 'ef bf', 'f7 bf bf', 'fb bf bf bf', 'fd bf bf bf bf'];
TRUNC.forEach((h, i) => INVALID.push([`6.14.${i + 1}`, `last continuation byte missing: ${h}`, B(h), 'raw']));
INVALID.push(['6.15.1', 'all the truncated sequences of 6.14 concatenated', B(TRUNC.join(' ')), 'raw']);
// 6.16: impossible bytes.
INVALID.push(['6.16.1', 'impossible byte fe', B('fe')]);
INVALID.push(['6.16.2', 'impossible byte ff', B('ff')]);
INVALID.push(['6.16.3', 'impossible bytes fe fe ff ff', B('fe fe ff ff')]);
// 6.17-6.19: overlong encodings.
['c0 af', 'e0 80 af', 'f0 80 80 af', 'f8 80 80 80 af', 'fc 80 80 80 80 af'].forEach((h, i) => INVALID.push([`6.17.${i + 1}`, `overlong "/" ${h}`, B(h)]));
['c1 bf', 'e0 9f bf', 'f0 8f bf bf', 'f8 87 bf bf bf', 'fc 83 bf bf bf bf'].forEach((h, i) => INVALID.push([`6.18.${i + 1}`, `maximum overlong ${h}`, B(h)]));
['c0 80', 'e0 80 80', 'f0 80 80 80', 'f8 80 80 80 80', 'fc 80 80 80 80 80'].forEach((h, i) => INVALID.push([`6.19.${i + 1}`, `overlong NUL ${h}`, B(h)]));
// 6.20-6.21: UTF-16 surrogates.
['ed a0 80', 'ed ad bf', 'ed ae 80', 'ed af bf', 'ed b0 80', 'ed be 80', 'ed bf bf'].forEach((h, i) => INVALID.push([`6.20.${i + 1}`, `single surrogate ${h}`, B(h)]));
['ed a0 80 ed b0 80', 'ed a0 80 ed bf bf', 'ed ad bf ed b0 80', 'ed ad bf ed bf bf', 'ed ae 80 ed b0 80', 'ed ae 80 ed bf bf', 'ed af bf ed b0 80', 'ed af bf ed bf bf'].forEach((h, i) =>
  INVALID.push([`6.21.${i + 1}`, `paired surrogates ${h}`, B(h)]),
);
// 6.22: noncharacters are valid UTF-8.
[['U+FFFE', 'ef bf be'], ['U+FFFF', 'ef bf bf'], ['U+1FFFE', 'f0 9f bf be'], ['U+1FFFF', 'f0 9f bf bf'], ['U+10FFFE', 'f4 8f bf be'], ['U+10FFFF', 'f4 8f bf bf'], ['U+FDD0', 'ef b7 90'], ['U+FDEF', 'ef b7 af']].forEach(([n, h], i) =>
  VALID.push([`6.22.${i + 1}`, `noncharacter ${n}`, B(h)]),
);
// 6.23: replacement characters and BOM.
VALID.push(['6.23.1', 'U+FFFD repeated', Buffer.from('\uFFFD'.repeat(10))]);
VALID.push(['6.23.2', 'U+FEFF (BOM) inside text', Buffer.from('a\uFEFFb')]);

for (const [id, title, bytes, mode] of VALID) {
  ab(id, `valid: ${title}`, async (ws) => {
    if (mode === 'raw') {
      await ws.text(bytes);
      await expectBadJson(ws, 'valid UTF-8 that is not JSON: bad_json reply');
      await stillOpen(ws);
      return;
    }
    const m = pingWithBytes(bytes);
    if (mode === 'fragments') await ws.write(Buffer.concat(fragments(m, 1)));
    else if (mode === 'fragments997') await ws.write(Buffer.concat(fragments(m, 997)));
    else await ws.text(m);
    await expectPong(ws, bytes.toString('utf8'));
  });
}
for (const [id, title, bytes, mode] of INVALID) {
  ab(id, `invalid: ${title} -> 1007`, async (ws) => {
    await ws.text(mode === 'raw' ? bytes : pingWithBytes(bytes));
    await ws.expectClose(1007);
  });
}

// ---- 7.x close handling --------------------------------------------------------------------------

ab('7.1.1', 'ping action, then close 1000 -> reply, close 1000 echoed, TCP closed', async (ws) => {
  await ws.pingAction('before close');
  await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000) });
  await ws.expectClose(1000);
});
ab('7.1.2', 'two close frames -> one close 1000, TCP closed', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.CLOSE, payload: closePayload(1000) }), frame({ opcode: OP.CLOSE, payload: closePayload(1000) })]));
  await ws.expectClose(1000);
});
ab('7.1.3', 'ping after close is not answered', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.CLOSE, payload: closePayload(1000) }), frame({ opcode: OP.PING, payload: 'after close' })]));
  await ws.expectClose(1000); // fails on a pong before the close or any frame after it
});
ab('7.1.4', 'text after close is ignored', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.CLOSE, payload: closePayload(1000) }), frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: 'after close' }) })]));
  await ws.expectClose(1000);
});
ab('7.1.5', 'fragment, close, continuation: the close is echoed, the rest ignored', async (ws) => {
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: '{"type":"ping",' }), frame({ opcode: OP.CLOSE, payload: closePayload(1000) }), frame({ opcode: OP.CONT, payload: '"ref":"x"}' })]));
  await ws.expectClose(1000);
});
ab('7.1.6', 'a 60 KiB message, then close, then ping: reply, close, nothing after', async (ws) => {
  const p = pingOfSize(60 * 1024, 'd');
  await ws.write(Buffer.concat([frame({ opcode: OP.TEXT, payload: p.text }), frame({ opcode: OP.CLOSE, payload: closePayload(1000) }), frame({ opcode: OP.PING, payload: 'x' })]));
  await expectPong(ws, p.ref);
  await ws.expectClose(1000);
});
ab('7.3.1', 'close without payload -> 1000', async (ws) => {
  await ws.send({ opcode: OP.CLOSE });
  await ws.expectClose(1000);
});
ab('7.3.2', 'close with a 1-byte payload -> 1002', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: B('03') });
  await ws.expectClose(1002);
});
ab('7.3.3', 'close 1000 without reason -> 1000', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000) });
  await ws.expectClose(1000);
});
ab('7.3.4', 'close 1000 with a reason -> 1000', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000, 'Hello World!') });
  await ws.expectClose(1000);
});
ab('7.3.5', 'close 1000 with a 123-byte reason (125-byte payload) -> 1000', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000, '*'.repeat(123)) });
  await ws.expectClose(1000);
});
ab('7.3.6', 'close 1000 with a 124-byte reason (126-byte payload) -> 1002', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000, '*'.repeat(124)) });
  await ws.expectClose(1002);
});
ab('7.5.1', 'close 1000 with an invalid UTF-8 reason -> 1007 or 1002', async (ws) => {
  await ws.send({ opcode: OP.CLOSE, payload: Buffer.concat([closePayload(1000), KOSME, B('ed a0 80'), Buffer.from('edited')]) });
  await ws.expectClose([1007, 1002]);
});
[1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].forEach((code, i) => {
  ab(`7.7.${i + 1}`, `close with valid code ${code} -> echoed (${code} or 1000)`, async (ws) => {
    await ws.send({ opcode: OP.CLOSE, payload: closePayload(code) });
    await ws.expectClose([code, 1000]);
  });
});
[0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999].forEach((code, i) => {
  ab(`7.9.${i + 1}`, `close with invalid code ${code} -> 1002`, async (ws) => {
    await ws.send({ opcode: OP.CLOSE, payload: closePayload(code) });
    await ws.expectClose(1002);
  });
});
[5000, 65535].forEach((code, i) => {
  ab(`7.13.${i + 1}`, `close with invalid code ${code} -> 1002`, async (ws) => {
    await ws.send({ opcode: OP.CLOSE, payload: closePayload(code) });
    await ws.expectClose(1002);
  });
});

// ---- 9.x limits and large messages ---------------------------------------------------------------

[16, 32, 64].forEach((k, i) => {
  ab(`9.1.${i + 1}`, `${k} KiB text message in one frame`, async (ws) => {
    const p = pingOfSize(k * 1024, 'e');
    await ws.text(p.text);
    await expectPong(ws, p.ref);
  });
});
ab('9.2.1', '64 KiB binary message in one frame -> 1003', async (ws) => {
  await ws.send({ opcode: OP.BINARY, payload: Buffer.alloc(LIMIT, 0xfe) });
  await ws.expectClose(1003);
});
[64, 256, 1024, 4096, 16384].forEach((size, i) => {
  ab(`9.3.${i + 1}`, `64 KiB text message in fragments of ${size} bytes`, async (ws) => {
    const p = pingOfSize(LIMIT, 'f');
    await ws.write(Buffer.concat(fragments(Buffer.from(p.text), size)));
    await expectPong(ws, p.ref);
  });
});
ab('9.4.1', '64 KiB binary message in fragments of 1024 bytes -> 1003', async (ws) => {
  await ws.write(Buffer.concat(fragments(Buffer.alloc(LIMIT, 0xfe), 1024, OP.BINARY)));
  await ws.expectClose(1003);
});
[64, 512, 4096].forEach((size, i) => {
  ab(`9.5.${i + 1}`, `64 KiB text message in one frame written in chops of ${size} bytes`, async (ws) => {
    const p = pingOfSize(LIMIT, 'g');
    await ws.writeChopped(frame({ opcode: OP.TEXT, payload: p.text }), size);
    await expectPong(ws, p.ref);
  });
});
ab('9.6.1', '64 KiB + 1 text message in one frame -> 1009', async (ws) => {
  await ws.text(pingOfSize(LIMIT + 1, 'h').text);
  await ws.expectClose(1009);
});
ab('9.6.2', '64 KiB + 1 text message in 1 KiB fragments -> 1009', async (ws) => {
  await ws.write(Buffer.concat(fragments(Buffer.from(pingOfSize(LIMIT + 1, 'h').text), 1024)));
  await ws.expectClose(1009);
});
ab('9.6.3', 'a frame header announcing 4 GiB -> 1009 at once (no payload sent)', async (ws) => {
  await ws.write(frame({ opcode: OP.TEXT, len: 2 ** 32, payload: '' }).subarray(0, 14));
  await ws.expectClose(1009);
});
ab('9.6.4', 'a 64-bit length with the most significant bit set -> 1002', async (ws) => {
  const f = Buffer.from(frame({ opcode: OP.TEXT, len: 70000, lenBytes: 8, payload: '' }).subarray(0, 14));
  f[2] |= 0x80;
  await ws.write(f);
  await ws.expectClose(1002);
});
ab('9.6.5', '64 KiB + 1 binary message -> 1009 (or 1003)', async (ws) => {
  await ws.send({ opcode: OP.BINARY, payload: Buffer.alloc(LIMIT + 1, 0xfe) });
  await ws.expectClose([1009, 1003]);
});
ab('9.7.1', '1000 ping actions in one write -> 1000 pong replies in order', async (ws) => {
  let s = '';
  const frs = [];
  for (let i = 0; i < 1000; i++) frs.push(frame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', ref: `r${i}` }) }));
  await ws.write(Buffer.concat(frs));
  for (let i = 0; i < 1000; i++) {
    const j = await ws.json(5000, `pong ${i}`);
    s = j.ref;
    assert.equal(j.type, 'pong');
    assert.equal(s, `r${i}`, 'pong replies in order');
  }
});
ab('9.7.2', '1000 pings (control frames) in one write -> 1000 pongs in order', async (ws) => {
  const frs = [];
  for (let i = 0; i < 1000; i++) frs.push(frame({ opcode: OP.PING, payload: `p${i}` }));
  await ws.write(Buffer.concat(frs));
  for (let i = 0; i < 1000; i++) await expectControl(ws, OP.PONG, Buffer.from(`p${i}`), `pong ${i}`);
});

// Not a case: the server still serves after all of the above.
test('autobahn: after every case the server still accepts and serves a fresh connection', async () => {
  const ws = await RawWs.open(srv.port, { headers: { Authorization: `Bearer ${token}` } });
  try {
    await ws.pingAction('the end');
    await ws.send({ opcode: OP.CLOSE, payload: closePayload(1000) });
    await ws.expectClose(1000);
  } finally {
    ws.destroy();
  }
});
