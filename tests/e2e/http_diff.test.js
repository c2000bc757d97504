'use strict';
// http_diff.test.js: HTTP/1.1 conformance by difference (issue 12). Every request of the corpus
// (http_diff_corpus.js) goes, on a connection of its own and followed by a known request, to a real
// kefu and to a reference: a node:http server with default options (llhttp, strict: no
// insecureHTTPParser, requireHostHeader on). What each one made of the bytes is written as an
// observation and the two are compared. The test passes when kefu's observation is the
// reference's (or, for the few cases where the reference breaks a MUST of the RFCs, the one the
// RFC requires), or when the case is in KNOWN below with the observation kefu gives today.
//
// An observation is `answer, answer, ... | end`:
//   healthz              GET/HEAD /healthz was served
//   session:NAME         POST /api/visitor/session was served with the JSON body {"name": NAME}
//   message              POST /api/visitor/messages stored a message (201)
//   STATUS CODE          the application answered an error, e.g. `404 not_found`
//   sse, iframe          a push stream was started (HEAD: its head was sent)
//   101                  the connection switched protocols (nothing after it is read as HTTP)
//   100                  an interim answer (only in the cases that ask for them)
//   reject STATUS        the server refused the bytes as HTTP (framing, syntax, limits)
//   garbage              bytes that are not an HTTP answer where one should start
//   -                    no answer at all
// and end is `closed` (the server closed the connection), `open` (still open, nothing more came,
// within SETTLE_MS of the last write: a server waiting for more, or hanging) or `upgraded`.
//
// Where kefu gives an answer, the test reads it from kefu's own endpoints; where the reference
// does, its server echoes what it parsed (method, target, version, fields, body) in a response
// field, and expectedAnswer() says what kefu's application, routing as an RFC-abiding server
// would, answers to exactly that request. So both sides speak the vocabulary above, and a
// difference is a difference in how the bytes were parsed and framed, not in the application.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { scenario, RAISED_LIMITS, newVisitor, sleep } = require('./harness');
const { cases, FOLLOW } = require('./http_diff_corpus');

// How long a case waits after its last write for the connection to close.
const SETTLE_MS = 2000;
// Cases in flight at once (each side: its own connections).
const PARALLEL = 8;
// Writes of a case sent in pieces are this far apart unless the case says otherwise.
const GAP_MS = 30;
// How long a case with awaitAnswer waits for an answer before its next write.
const AWAIT_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Known differences: kefu's observation differs from the expected one (the reference's, or the
// RFC's where the case says so). Each entry names its cases, what kefu does today (`kefu`, the
// exact observation, a list of them, or one per case: anything else fails the test, so a change
// in behaviour is seen), a label and the reason. `deliberate`: kefu is stricter or refuses by
// design (docs/SECURITY.md, "HTTP conformance (differential test)"). `defect`: kefu is wrong, and
// the RFC says so. A defect that gets fixed turns into agreement: the test still passes and says
// which entries to remove.
const KNOWN = [
  // ---- deliberate ----
  {
    cases: ['te-chunked', 'te-chunked-uppercase', 'te-chunked-trailing-space', 'te-chunked-tab', 'te-leading-comma', 'te-chunk-extension', 'te-chunk-size-hex-prefix', 'te-chunk-lf', 'te-chunk-no-last', 'te-chunk-trailer'],
    kefu: 'reject 411 | closed',
    label: 'deliberate',
    why: 'kefu takes Content-Length bodies only: a request with Transfer-Encoding: chunked (", chunked" too: RFC 9110 §5.6.1 ignores empty list elements) is refused with 411 (RFC 9110 §15.5.12) before any body byte is read, and the connection closed. There is no chunked decoder to disagree with a front end\'s; browsers never send chunked requests.',
  },
  {
    cases: ['te-http10'],
    kefu: 'reject 411 | closed',
    label: 'deliberate',
    why: 'as for chunked in HTTP/1.1; RFC 9112 §6.1 wants Transfer-Encoding in HTTP/1.0 treated as faulty framing and the connection closed, which kefu does (the reference decodes the body and keeps the connection).',
  },
  {
    cases: ['te-gzip-chunked', 'te-other-then-chunked'],
    kefu: 'reject 501 | closed',
    label: 'deliberate',
    why: 'codings before the final chunked get 501 and a close: RFC 9112 §6.1, a coding the server does not understand SHOULD get 501; the reference hands the gzip-coded (or x-coded) bytes on undecoded.',
  },
  {
    cases: ['te-empty'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'an empty Transfer-Encoding lists no coding, so its last coding is not chunked: RFC 9112 §6.3 (4) MUST 400 and close, as for "gzip" (the field is 1#transfer-coding, RFC 9112 §6.1, so an empty one is invalid too); the reference ignores the field and frames the request as having no body.',
  },
  {
    cases: ['lf-only', 'lf-request-line', 'lf-blank-line', 'lf-post'],
    kefu: {
      'lf-only': 'healthz, session:follow | closed',
      'lf-request-line': 'healthz, session:follow | closed',
      'lf-blank-line': 'healthz, session:follow | closed',
      'lf-post': 'session:first, session:follow | closed',
    },
    label: 'deliberate',
    why: 'kefu takes a bare LF as a line end (RFC 9112 §2.2: MAY), everywhere alike; llhttp in strict mode refuses it. A front end cannot use this to hide a field from kefu: RFC 9110 §5.5 makes it reject a LF inside a field or replace it by SP, and kefu refuses every Transfer-Encoding anyway. A bare CR is refused (RFC 9112 §2.2 MUST).',
  },
  {
    cases: ['cr-before-request'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'a bare CR is refused wherever it is (RFC 9112 §2.2: MUST reject or replace); llhttp skips one before the request line.',
  },
  {
    cases: ['leading-two-crlf'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'kefu ignores one empty line before a request line, which RFC 9112 §2.2 asks for ("at least one"); llhttp ignores any number.',
  },
  {
    cases: ['double-space-after-method', 'double-space-before-version'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'RFC 9112 §3: the request line\'s parts are separated by one SP; splitting on runs of whitespace is a MAY. kefu is strict: a request line two parsers split differently is a cache-key and routing hazard.',
  },
  {
    cases: ['target-asterisk-get'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS; llhttp takes "*" with any method.',
  },
  {
    cases: ['target-absolute-userinfo'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'RFC 9110 §4.2.4: userinfo in an http(s) URI SHOULD be treated as an error (it is how phishing links look); this should stay a 400 when the absolute-form is accepted (see the defect target-absolute).',
  },
  {
    cases: ['method-connect'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'kefu is not a proxy and does not implement CONNECT (RFC 9110 §9.3.6); its authority-form target (RFC 9112 §3.2.3) is refused as malformed. A 501 would say it more exactly.',
  },
  {
    cases: ['version-2.0', 'version-3.0', 'version-0.9'],
    kefu: 'reject 505 | closed',
    label: 'deliberate',
    why: 'both refuse a major version other than 1; kefu says so with 505 (RFC 9110 §15.6.6), llhttp with 400.',
  },
  {
    cases: ['fields-70', 'fields-17k'],
    kefu: 'reject 431 | closed',
    label: 'deliberate',
    why: 'kefu\'s limits: at most 64 header fields and a 16 KiB head (RFC 6585 §5: 431); node allows 2,000 fields in a larger head.',
  },
  {
    cases: ['request-line-9k', 'request-line-20k'],
    kefu: 'reject 414 | closed',
    label: 'deliberate',
    why: 'kefu\'s request line is at most 8 KiB (RFC 9112 §3 recommends supporting at least 8,000 octets): past it 414 (RFC 9110 §15.5.15); node only limits the whole head (431).',
  },
  {
    cases: ['cl-above-max-body', 'expect-100-too-large'],
    kefu: 'reject 413 | closed',
    label: 'deliberate',
    why: 'a body over 64 KiB is refused with 413 (RFC 9110 §15.5.14) as soon as its head arrives, and the connection closed without reading it; the reference waits for the body.',
  },
  {
    cases: ['cl-above-2^53'],
    kefu: 'reject 400 | closed',
    label: 'deliberate',
    why: 'a Content-Length above 2^53 is refused as hostile (src/http/parser.c), with 400 and a close; the reference waits for the body.',
  },
  {
    cases: ['expect-unknown'],
    // kefu answers 417 and closes, where node keeps the connection. Either is allowed.
    kefu: 'reject 417 | closed',
    label: 'deliberate',
    why: 'RFC 9110 §10.1.1: a server MAY answer 417 to an expectation other than 100-continue; kefu answers 417 and closes the connection, which a server that has not read the body of the request may do; node serves it.',
  },

  // ---- defects ----
  // None: issue 12 fixed the last ones (docs/SECURITY.md lists what they were).
];
// What KNOWN says kefu may give on a case: its `kefu` as a list (an object maps case names to
// their observation).
function knownObservations(entry, name) {
  const kefu = entry.kefu;
  return [typeof kefu === 'object' && !Array.isArray(kefu) ? kefu[name] : kefu].flat();
}

// ---------------------------------------------------------------------------------------------
// What kefu's application answers to a request, as the reference parsed it. Mirrors the routes of
// src/chat/app.c that the corpus uses (HEAD is served as GET; a known path with another method
// is 405, an unknown path 404), the checks of POST /api/visitor/session (src/chat/api.c) and of
// the WebSocket handshake (src/push/push.c), with the RFC's rules where kefu's own reading of
// the request would differ: the absolute-form's path (RFC 9112 §3.3), Upgrade ignored in
// HTTP/1.0 and read as a list (RFC 9110 §7.8).

function fieldOf(echo, name) {
  const pair = echo.fields.find(([n]) => n.toLowerCase() === name);
  return pair ? pair[1].trim() : undefined;
}

function hasOption(value, option) {
  return (value || '').split(',').some((v) => v.trim().toLowerCase() === option);
}

// The JSON body of a POST (src/chat/api.c read_json), handed to answer(root) when it is one.
function jsonAnswer(echo, answer) {
  const type = fieldOf(echo, 'content-type');
  if (!type || !/^application\/json(?:$|[; ])/i.test(type)) return '415 unsupported_media_type';
  let root;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(echo.body));
  } catch {
    return '400 bad_json';
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) return '400 bad_json';
  return answer(root);
}

function sessionAnswer(root) {
  const name = root.name === undefined || root.name === null ? '' : root.name;
  if (typeof name !== 'string' || [...name].length > 80) return '422 invalid';
  return `session:${name.trim()}`;
}

function messageAnswer(root) {
  const chars = typeof root.body === 'string' ? [...root.body.trim()].length : 0;
  return chars >= 1 && chars <= 4000 ? 'message' : '422 invalid';
}

function webSocketAnswer(echo) {
  const upgrade = fieldOf(echo, 'upgrade');
  const connection = fieldOf(echo, 'connection');
  const upgrading = echo.version === '1.1' && hasOption(connection, 'upgrade');
  // Upgrade is a list of protocols (RFC 9110 §7.8); RFC 6455 §4.2.1 wants "websocket" among them.
  if (echo.method !== 'GET' || !hasOption(upgrade, 'websocket') || !upgrading) return '426 upgrade_required';
  if (fieldOf(echo, 'sec-websocket-version') !== '13') return '426 upgrade_required';
  if (!/^[A-Za-z0-9+/]{22}==$/.test(fieldOf(echo, 'sec-websocket-key') || '')) return '400 bad_request';
  if (hasOption(connection, 'close')) return '400 bad_request'; // a closing connection is not upgraded
  return '101';
}

function expectedAnswer(echo) {
  if (echo.method === 'CONNECT') return 'connect';
  let target = echo.url;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    const url = new URL(target);
    target = url.pathname + url.search;
  }
  const path = target.split('?')[0];
  const getLike = echo.method === 'GET' || echo.method === 'HEAD';
  const bearer = /^Bearer \S+$/.test(fieldOf(echo, 'authorization') || '');
  switch (path) {
    case '/healthz':
      return getLike ? 'healthz' : '405 method_not_allowed';
    case '/api/visitor/session':
      if (echo.method === 'POST') return jsonAnswer(echo, sessionAnswer);
      return getLike ? (bearer ? 'visitor' : '401 unauthorized') : '405 method_not_allowed';
    case '/api/visitor/messages':
      if (echo.method !== 'POST') return getLike ? (bearer ? 'messages' : '401 unauthorized') : '405 method_not_allowed';
      return bearer ? jsonAnswer(echo, messageAnswer) : '401 unauthorized';
    case '/push/sse':
    case '/push/iframe':
    case '/push/ws':
      if (!getLike) return '405 method_not_allowed';
      if (!bearer) return '401 unauthorized';
      return path === '/push/ws' ? webSocketAnswer(echo) : path.slice('/push/'.length);
    default:
      return '404 not_found';
  }
}

// ---------------------------------------------------------------------------------------------
// The reference: node:http, default options. Every request it parses is answered with an echo of
// it in the X-Echo field (base64 JSON). Upgrade and CONNECT requests leave node's parser; the
// handlers below answer them and, unless the connection switches protocols or ends, hand the
// rest of the bytes back to a fresh parser on the same socket.

function echoOf(req, body) {
  const fields = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) fields.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
  return { method: req.method, url: req.url, version: req.httpVersion, fields, body };
}

function encodeEcho(echo) {
  return Buffer.from(JSON.stringify({ ...echo, body: echo.body.toString('base64') }), 'utf8').toString('base64');
}

function decodeEcho(field) {
  const echo = JSON.parse(Buffer.from(field, 'base64').toString('utf8'));
  echo.body = Buffer.from(echo.body, 'base64');
  return echo;
}

function startReference() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.from('echo');
      res.setHeader('X-Echo', encodeEcho(echoOf(req, Buffer.concat(chunks))));
      res.setHeader('Content-Length', body.length);
      res.end(body);
    });
  });
  // Takes a Content-Length body off the bytes after an upgrade or CONNECT head, answers, and goes
  // on with HTTP unless the request switched protocols or closes the connection.
  const takeOver = (req, socket, head) => {
    const length = Number(req.headers['content-length'] || 0);
    let pending = head;
    const answer = () => {
      socket.removeListener('data', more);
      const echo = echoOf(req, pending.subarray(0, length));
      const rest = pending.subarray(length);
      if (req.method !== 'CONNECT' && expectedAnswer(echo) === '101') {
        socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
        return;
      }
      socket.write(`HTTP/1.1 200 OK\r\nX-Echo: ${encodeEcho(echo)}\r\nContent-Length: 0\r\n\r\n`);
      const closes = hasOption(req.headers.connection, 'close') || (req.httpVersion === '1.0' && !hasOption(req.headers.connection, 'keep-alive'));
      if (closes) {
        socket.end();
        return;
      }
      if (rest.length > 0) socket.unshift(rest);
      server.emit('connection', socket);
    };
    const more = (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length >= length) answer();
    };
    if (pending.length >= length) answer();
    else socket.on('data', more);
  };
  server.on('upgrade', takeOver);
  server.on('connect', takeOver);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---------------------------------------------------------------------------------------------
// One case on one server: a fresh connection, the case's writes (then FOLLOW), and everything
// that comes back until the server closes or SETTLE_MS pass after the last write.

function exchange(port, c, token) {
  const parts = (Array.isArray(c.send) ? [...c.send] : [c.send]).map((s) => s.replaceAll('{token}', token));
  if (c.follow !== false) parts[parts.length - 1] += FOLLOW;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let end = null;
    let timer = null;
    const finish = (how) => {
      if (end !== null) return;
      end = how;
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), end });
    };
    let received = 0;
    let wake = null;
    socket.on('data', (d) => {
      chunks.push(d);
      received += d.length;
      if (wake) wake();
    });
    // Resolves when bytes beyond `seen` have come, or after AWAIT_MS.
    const answered = (seen) =>
      new Promise((resolve) => {
        if (received > seen) return resolve();
        const t = setTimeout(resolve, AWAIT_MS);
        wake = () => {
          if (received > seen) {
            clearTimeout(t);
            wake = null;
            resolve();
          }
        };
      });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', (e) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'closed'));
    socket.on('connect', async () => {
      let seen = 0;
      for (let i = 0; i < parts.length && end === null; i++) {
        if (i > 0 && (c.awaitAnswer === true || (c.awaitAnswer || []).includes(i))) await answered(seen);
        else if (i > 0) await sleep(c.gapMs ?? GAP_MS);
        seen = received;
        const bytes = Buffer.from(parts[i], 'latin1');
        // A half-close goes with the last bytes, so that the server sees both at once.
        if (end === null && c.halfClose && i === parts.length - 1) socket.end(bytes);
        else if (end === null && bytes.length > 0) socket.write(bytes);
      }
      if (end === null) timer = setTimeout(() => finish('open'), SETTLE_MS);
    });
  });
}

// Splits the bytes that came back into answers (each classified) and writes the observation.
function observe({ bytes, end }, c, classify) {
  const text = bytes.toString('latin1');
  const answers = [];
  const heads = c.head || [];
  let pos = 0;
  let index = 0;
  while (pos < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', pos);
    const statusLine = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text.slice(pos, pos + 256));
    if (headEnd < 0 || !statusLine) {
      answers.push('garbage');
      break;
    }
    const status = Number(statusLine[1]);
    const fields = {};
    for (const line of text.slice(pos + statusLine[0].length, headEnd).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    pos = headEnd + 4;
    if (status === 101) {
      answers.push('101');
      end = 'upgraded';
      break;
    }
    if (status < 200) {
      if (c.interim) answers.push(String(status));
      continue;
    }
    const isHead = heads.includes(index);
    let body = '';
    if (isHead || status === 204 || status === 304) {
      // no body
    } else if (/chunked/i.test(fields['transfer-encoding'] || '')) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', pos);
        if (lineEnd < 0) {
          pos = text.length;
          break;
        }
        const size = parseInt(text.slice(pos, lineEnd), 16);
        if (!(size >= 0)) {
          pos = text.length; // not chunked after all: nothing more can be read as answers
          break;
        }
        pos = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n', pos);
          pos = trailerEnd < 0 ? text.length : trailerEnd + 2;
          break;
        }
        body += text.slice(pos, pos + size);
        pos = Math.min(text.length, pos + size + 2);
      }
    } else if (fields['content-length'] !== undefined) {
      const length = Number(fields['content-length']);
      body = text.slice(pos, pos + length);
      pos = Math.min(text.length, pos + length);
    } else {
      body = text.slice(pos);
      pos = text.length;
    }
    const answer = classify({ status, fields, body, isHead });
    // An error answer to HEAD has no body to tell its code: its status says enough.
    answers.push(isHead && /^\d{3} /.test(answer) ? answer.slice(0, 3) : answer);
    index++;
  }
  return `${answers.join(', ') || '-'} | ${end}`;
}

// kefu's answers. A refusal of the server layer (src/http/server.c: parse errors, limits, and the
// 417) is told from the application's errors by its code; the only
// "bad_request" the application sends on the endpoints used here is the WebSocket handshake's.
const SERVER_CODES = new Set(['length_required', 'uri_too_long', 'headers_too_large', 'not_implemented', 'http_version', 'too_large', 'timeout', 'expectation_failed']);

function kefuAnswer({ status, fields, body, isHead }) {
  const type = fields['content-type'] || '';
  if (status === 200 && type.startsWith('text/event-stream')) return 'sse';
  if (status === 200 && type.startsWith('text/html') && /chunked/i.test(fields['transfer-encoding'] || '')) return 'iframe';
  if (isHead && status === 200 && type.startsWith('application/json')) return 'healthz';
  if (isHead) return `${status} head`;
  let json;
  try {
    json = JSON.parse(body);
  } catch {
    return `http ${status}`;
  }
  if (status === 200 && json.status === 'ok') return 'healthz';
  if (status === 201 && json.visitor) return `session:${json.visitor.name}`;
  if (status === 201 && json.message) return 'message';
  if (status === 200 && json.visitor) return 'visitor';
  const error = json.error || {};
  if (SERVER_CODES.has(error.code) || (error.code === 'bad_request' && !/Sec-WebSocket-Key|upgraded/.test(error.message))) {
    return `reject ${status}`;
  }
  return error.code ? `${status} ${error.code}` : `http ${status}`;
}

// The reference's answers: its echo, through expectedAnswer(); anything node sent by itself (its
// parse errors, the 400 for a missing Host, 417) is a refusal.
function referenceAnswer({ status, fields }) {
  if (fields['x-echo'] !== undefined) return expectedAnswer(decodeEcho(fields['x-echo']));
  return `reject ${status}`;
}

// Runs jobs with at most `limit` at once; resolves their results in order.
async function pool(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

function show(c) {
  const bytes = Array.isArray(c.send) ? c.send.join(' / ') : c.send;
  const text = JSON.stringify(bytes);
  return text.length > 240 ? text.slice(0, 240) + '..."' : text;
}

test('the corpus is well formed and KNOWN names only its cases', () => {
  const names = new Set();
  for (const c of cases) {
    assert.ok(/^[a-z0-9^.-]+$/.test(c.name), `case name ${c.name}`);
    assert.ok(!names.has(c.name), `case ${c.name} twice`);
    names.add(c.name);
    assert.ok(typeof c.why === 'string' && c.why.length > 10, `case ${c.name}: why`);
    if (c.rfc) assert.ok(c.rfc.obs && c.rfc.why, `case ${c.name}: rfc needs obs and why`);
  }
  const listed = new Set();
  for (const k of KNOWN) {
    assert.ok(k.label === 'deliberate' || k.label === 'defect', `KNOWN label ${k.label}`);
    for (const name of k.cases) {
      const observations = knownObservations(k, name);
      assert.ok(observations.every((o) => typeof o === 'string' && o.includes(' | ')), `KNOWN ${name}: kefu's observation`);
    }
    assert.ok(typeof k.why === 'string' && k.why.length > 20, `KNOWN ${k.cases}: why`);
    for (const name of k.cases) {
      assert.ok(names.has(name), `KNOWN names ${name}, which is not a case`);
      assert.ok(!listed.has(name), `KNOWN lists ${name} twice`);
      listed.add(name);
    }
  }
});

test('HTTP conformance: kefu against llhttp (node:http) on every case of the corpus', { timeout: 110000 }, async (t) => {
  await scenario(t, async (env) => {
    const kefu = await env.server({ agents: [], args: RAISED_LIMITS });
    const reference = await startReference();
    env.defer(() => new Promise((resolve) => reference.close(resolve)));
    env.defer(() => reference.closeAllConnections());
    const { token } = await newVisitor(kefu, 'diff');
    const referencePort = reference.address().port;

    const t0 = Date.now();
    const runs = await pool(
      cases.flatMap((c) => [async () => exchange(kefu.port, c, token), async () => exchange(referencePort, c, 'T'.repeat(43))]),
      PARALLEL * 2,
    );
    const ms = Date.now() - t0;

    const known = new Map(KNOWN.flatMap((k) => k.cases.map((name) => [name, k])));
    const rows = [];
    const failures = [];
    const tally = { agree: 0, rfc: 0, deliberate: 0, defect: 0, stale: [] };
    cases.forEach((c, i) => {
      const kefuObs = observe(runs[2 * i], c, kefuAnswer);
      const referenceObs = observe(runs[2 * i + 1], c, referenceAnswer);
      const expected = c.rfc ? c.rfc.obs : referenceObs;
      const entry = known.get(c.name);
      let verdict;
      if (kefuObs === expected) {
        verdict = c.rfc && referenceObs !== expected ? 'agree (RFC)' : 'agree';
        if (c.rfc && referenceObs !== expected) tally.rfc++;
        else tally.agree++;
        if (entry && !entry.racy) tally.stale.push(c.name);
      } else if (entry && knownObservations(entry, c.name).includes(kefuObs)) {
        verdict = entry.label;
        tally[entry.label]++;
      } else {
        verdict = 'DIFFERS';
        failures.push(
          `${c.name} (${c.why})\n    sent:      ${show(c)}\n    kefu:      ${kefuObs}\n    expected:  ${expected}` +
            (c.rfc ? `   (the RFC's; the reference: ${referenceObs})` : '') +
            (entry ? `\n    KNOWN (${entry.label}) says kefu gives: ${knownObservations(entry, c.name).join(' or ')}` : ''),
        );
      }
      rows.push(`${verdict.padEnd(12)} ${c.name.padEnd(32)} kefu: ${kefuObs.padEnd(44)} reference: ${referenceObs}`);
    });

    t.diagnostic(`${cases.length} cases in ${ms} ms (node ${process.version}, llhttp ${process.versions.llhttp})`);
    t.diagnostic(
      `agree with the reference: ${tally.agree}; with the RFC where the reference breaks it: ${tally.rfc}; ` +
        `known differences: ${tally.deliberate} deliberate, ${tally.defect} defects; unexplained: ${failures.length}`,
    );
    if (tally.stale.length > 0) t.diagnostic(`listed in KNOWN but kefu now agrees (remove them): ${tally.stale.join(', ')}`);
    if (process.env.HTTP_DIFF_VERBOSE) for (const row of rows) t.diagnostic(row);
    assert.equal(failures.length, 0, `kefu and the reference disagree on ${failures.length} case(s) not in KNOWN:\n  ${failures.join('\n  ')}`);
  });
});
