'use strict';
// http_diff_corpus.js: the requests of the HTTP differential test (http_diff.test.js), each sent to
// kefu and to a reference server built on Node's llhttp. One entry per case:
//   name    short and unique; the known-differences list of the test names cases by it
//   why     what the case probes, with the RFC section (RFC 9110 semantics, RFC 9112 HTTP/1.1
//           syntax) or the smuggling technique it comes from
//   send    the bytes (a latin1 string), or a list of writes sent apart (gapMs, default 30 ms);
//           {token} becomes a visitor's bearer token
//   follow  false: send nothing after the case. Otherwise the test appends FOLLOW, a known request
//           that closes the connection, and checks whether and as what it is seen: that is where
//           the case's own request ended (request smuggling is a disagreement about exactly that)
//   head    indexes of the answers that are to HEAD requests (they have no body)
//   awaitAnswer  true: each later write waits for an answer to the earlier ones (at most 2 s); a
//           list of indexes: only those writes wait
//   interim true: 1xx answers count (only the Expect cases ask for them)
//   halfClose true: after the last write the client ends its side of the connection (a TCP
//           half-close) and goes on reading
//   rfc     {obs, why}: where the reference breaks a MUST of the RFCs (or refuses what a SHOULD
//           asks a server to serve or answer otherwise), the observation the RFC requires, which
//           kefu is then held to instead of the reference's
// Observations are written `answer, answer | end` (see the test for the vocabulary).

const HOST = 'Host: kefu.test';
const JSON_TYPE = 'Content-Type: application/json';
const FIRST = '{"name":"first"}'; // 16 bytes: every body below that is not built by post() is this
const FOLLOW_BODY = '{"name":"follow"}';
const FOLLOW = `POST /api/visitor/session HTTP/1.1\r\n${HOST}\r\n${JSON_TYPE}\r\nContent-Length: ${FOLLOW_BODY.length}\r\nConnection: close\r\n\r\n${FOLLOW_BODY}`;

// A request from its lines (request line and fields, without line ends) and its body.
function req(lines, body = '') {
  return lines.map((l) => l + '\r\n').join('') + '\r\n' + body;
}

// POST /api/visitor/session with {"name": name} (kefu answers 201 with the name it parsed).
function post(name = 'first', { version = '1.1', fields = [], path = '/api/visitor/session', host = HOST } = {}) {
  const body = JSON.stringify({ name });
  const head = [`POST ${path} HTTP/${version}`];
  if (host !== null) head.push(host);
  return req([...head, JSON_TYPE, `Content-Length: ${body.length}`, ...fields], body);
}

// A request without a body (GET /healthz unless told otherwise).
function get(path = '/healthz', { method = 'GET', version = '1.1', fields = [], host = HOST } = {}) {
  const head = [`${method} ${path} HTTP/${version}`];
  if (host !== null) head.push(host);
  return req([...head, ...fields]);
}

// FIRST as one chunk and the last chunk.
const CHUNKED_FIRST = `10\r\n${FIRST}\r\n0\r\n\r\n`;
// Bodies that hide a request: were it served, its answer (404, or a healthz) would show.
const GET_NOWHERE = `GET /nowhere HTTP/1.1\r\n${HOST}\r\n\r\n`;
const LAST_CHUNK_AND_GET = '0\r\n\r\n' + GET_NOWHERE;
const GET_IN_BODY = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n';

// The Content-Length field of a body.
function cl(body) {
  return `Content-Length: ${Buffer.byteLength(body, 'latin1')}`;
}

// A POST of FIRST to the session endpoint with the given framing fields.
function framed(fields, body = CHUNKED_FIRST, { version = '1.1', path = '/api/visitor/session' } = {}) {
  return req([`POST ${path} HTTP/${version}`, HOST, JSON_TYPE, ...fields], body);
}

const WS_KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
const WS_FIELDS = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', WS_KEY];
const BEARER = 'Authorization: Bearer {token}';

// POST /api/visitor/messages: kefu answers 201 once the message is stored (it waits for the
// commit, so the request is held meanwhile).
function message(text = 'hello') {
  const body = JSON.stringify({ body: text });
  return req(['POST /api/visitor/messages HTTP/1.1', HOST, BEARER, JSON_TYPE, `Content-Length: ${body.length}`], body);
}

// A request whose Host value is not uri-host [ ":" port ] (RFC 9110 §7.2), which RFC 9112 §3.2
// says MUST get 400; node does not look at the value, so the case holds kefu to the RFC.
function invalidHost(name, value, what) {
  return {
    name,
    why: `RFC 9112 §3.2: a Host with an invalid value MUST get 400: ${what}`,
    send: get('/healthz', { host: `Host: ${value}` }),
    rfc: { obs: 'reject 400 | closed', why: 'node does not check the value of Host' },
  };
}

// What RFC 9110 §9.1 and §15.6.2 answer to a method the server does not recognise (SHOULD 501;
// 405 is for a method it knows that the resource does not allow); the connection goes on.
const UNKNOWN_METHOD = {
  obs: '501 method_not_implemented, session:follow | closed',
  why: 'llhttp refuses every method outside its own list with 400 and closes the connection',
};

function headers(count, prefix = 'X-Field') {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}: ${i}`);
}

const cases = [
  // ---- baseline: what every other case is measured against ----
  { name: 'get', why: 'a plain GET (RFC 9112 §3)', send: get() },
  { name: 'post', why: 'a POST with a Content-Length body (RFC 9112 §6.2)', send: post() },
  { name: 'not-found', why: 'an unknown path: answered, and the connection goes on', send: get('/nowhere') },
  { name: 'method-not-allowed', why: 'a method the resource does not allow (RFC 9110 §15.5.6)', send: get('/healthz', { method: 'DELETE' }) },
  { name: 'post-message', why: 'a POST answered once stored (held for the commit), then the next request', send: message() },
  { name: 'post-no-content-type', why: 'a body that is not JSON: the application answers, framing holds', send: req(['POST /api/visitor/session HTTP/1.1', HOST, 'Content-Length: 16'], FIRST) },

  // ---- persistence and closing (RFC 9112 §9) ----
  {
    name: 'connection-close-then-more',
    why: 'RFC 9112 §9.6: after a request with "close" the server MUST NOT process further requests on the connection',
    send: get('/healthz', { fields: ['Connection: close'] }),
    rfc: { obs: 'healthz | closed', why: 'llhttp refuses bytes after a "close" request, and node answers 400 in place of the valid request before them' },
  },
  { name: 'connection-close', why: 'RFC 9112 §9.6: "close" ends the connection after the answer', send: get('/healthz', { fields: ['Connection: close'] }), follow: false },
  { name: 'connection-close-case', why: 'RFC 9110 §7.6.1: connection options are case-insensitive', send: get('/healthz', { fields: ['Connection: CLOSE'] }), follow: false },
  { name: 'connection-close-in-list', why: 'RFC 9110 §7.6.1: "close" among other options', send: get('/healthz', { fields: ['Connection: keep-alive, close'] }), follow: false },
  { name: 'connection-lists-content-length', why: 'a hop-by-hop trick (RFC 9110 §7.6.1): a proxy would drop Content-Length, the origin must still frame by it', send: post('first', { fields: ['Connection: Content-Length'] }) },
  {
    name: 'http10-then-more',
    why: 'RFC 9112 §9.3: an HTTP/1.0 request without keep-alive ends the connection; what follows is not processed',
    send: get('/healthz', { version: '1.0' }),
    rfc: { obs: 'healthz | closed', why: 'as connection-close-then-more: node answers 400 instead of the valid HTTP/1.0 request' },
  },
  { name: 'http10', why: 'RFC 9112 §9.3: HTTP/1.0 closes after the answer by default', send: get('/healthz', { version: '1.0' }), follow: false },
  { name: 'http10-keep-alive', why: 'RFC 9112 §9.3, Appendix C.2.2: HTTP/1.0 with keep-alive persists', send: get('/healthz', { version: '1.0', fields: ['Connection: keep-alive'] }) },
  { name: 'http10-post-keep-alive', why: 'an HTTP/1.0 body framed by Content-Length (RFC 9112 §6.2)', send: post('first', { version: '1.0', fields: ['Connection: keep-alive'] }) },
  { name: 'http10-no-host', why: 'RFC 9112 §3.2: only HTTP/1.1 requires Host', send: get('/healthz', { version: '1.0', host: null, fields: ['Connection: keep-alive'] }) },

  // ---- request line: methods (RFC 9112 §3, RFC 9110 §9) ----
  { name: 'method-put', why: 'a standard method the resource does not allow (RFC 9110 §9.3.4)', send: get('/healthz', { method: 'PUT' }) },
  { name: 'method-options', why: 'OPTIONS on a resource (RFC 9110 §9.3.7)', send: get('/healthz', { method: 'OPTIONS' }) },
  { name: 'method-trace', why: 'TRACE (RFC 9110 §9.3.8): not echoed back', send: get('/healthz', { method: 'TRACE' }) },
  { name: 'method-patch', why: 'PATCH (RFC 5789) on a POST-only resource', send: post('first').replace(/^POST/, 'PATCH') },
  { name: 'method-lowercase', why: 'RFC 9110 §9.1: methods are case-sensitive, so "get" is an unknown method', send: get('/healthz', { method: 'get' }), rfc: UNKNOWN_METHOD },
  { name: 'method-extension', why: 'RFC 9110 §9.1: any token is a method; an unknown one SHOULD get 501', send: get('/healthz', { method: 'FOO' }), rfc: UNKNOWN_METHOD },
  { name: 'method-long', why: 'RFC 9112 §3: a method longer than any the server implements SHOULD get 501', send: get('/healthz', { method: 'A'.repeat(200) }), rfc: UNKNOWN_METHOD },
  { name: 'method-bad-char', why: 'RFC 9112 §3: a method is a token; "(" is not a tchar (RFC 9110 §5.6.2)', send: get('/healthz', { method: 'GE(T' }) },
  { name: 'method-empty', why: 'RFC 9112 §3: the request line starts with the method', send: ' /healthz HTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'method-connect', why: 'RFC 9112 §3.2.3: authority-form, for CONNECT (RFC 9110 §9.3.6), which an origin server need not implement', send: req(['CONNECT kefu.test:443 HTTP/1.1', 'Host: kefu.test:443']) },
  { name: 'method-pri-h2-preface', why: 'the HTTP/2 connection preface (RFC 9113 §3.4) sent to an HTTP/1.1 server', send: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' },

  // ---- request line: targets (RFC 9112 §3.2) ----
  { name: 'target-query', why: 'RFC 9112 §3.2.1: origin-form with a query', send: get('/healthz?x=1&y') },
  { name: 'target-absolute', why: 'RFC 9112 §3.2.2: a server MUST accept the absolute-form', send: get('http://kefu.test/healthz') },
  { name: 'target-absolute-host-mismatch', why: 'RFC 9112 §3.2.2, §3.3: with absolute-form the target\'s authority wins and Host is ignored', send: get('http://other.test/healthz') },
  { name: 'target-absolute-https', why: 'RFC 9112 §3.2.2: absolute-form with the https scheme', send: get('https://kefu.test/healthz') },
  { name: 'target-absolute-userinfo', why: 'RFC 9110 §4.2.4: userinfo in an http(s) URI SHOULD be treated as an error', send: get('http://user:pw@kefu.test/healthz') },
  { name: 'target-asterisk-options', why: 'RFC 9112 §3.2.4: asterisk-form, server-wide OPTIONS', send: get('*', { method: 'OPTIONS' }) },
  { name: 'target-asterisk-get', why: 'RFC 9112 §3.2.4: asterisk-form is only for OPTIONS', send: get('*') },
  { name: 'target-authority-get', why: 'RFC 9112 §3.2.3: authority-form is only for CONNECT', send: get('kefu.test:80') },
  { name: 'target-fragment', why: 'RFC 9112 §3.2.1: origin-form has no fragment; a client bug that must not reach a resource', send: get('/healthz#frag') },
  { name: 'target-space', why: 'RFC 9112 §3.2: no whitespace inside the target (a SP ends it)', send: get('/a b') },
  { name: 'target-tab', why: 'RFC 9112 §3: only SP separates the request line\'s parts', send: get('/healthz\t') },
  { name: 'target-non-ascii', why: 'RFC 3986 §2: a URI is ASCII; raw UTF-8 in the target', send: get('/caf\xc3\xa9') },
  { name: 'target-del', why: 'RFC 3986 §2: DEL is not a URI character', send: get('/healthz\x7f') },
  { name: 'target-nul', why: 'a NUL inside the target', send: get('/healthz\x00') },
  { name: 'target-percent-nul', why: 'an encoded NUL is an ordinary target (the application decides)', send: get('/healthz%00') },
  { name: 'target-empty', why: 'RFC 9112 §3: the target is not empty', send: 'GET  HTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'target-double-slash', why: 'an origin-form path with an empty segment', send: get('//healthz') },

  // ---- request line: separators and versions (RFC 9112 §3, §2.3) ----
  { name: 'double-space-after-method', why: 'RFC 9112 §3: single SP; lenient whitespace parsing is a MAY (§3)', send: 'GET  /healthz HTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'double-space-before-version', why: 'RFC 9112 §3: single SP', send: 'GET /healthz  HTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'space-after-version', why: 'RFC 9112 §3: the request line ends right after the version', send: 'GET /healthz HTTP/1.1 \r\n' + HOST + '\r\n\r\n' },
  { name: 'tab-separators', why: 'RFC 9112 §3: HTAB is not a request-line separator', send: 'GET\t/healthz\tHTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  {
    name: 'version-1.2',
    why: 'RFC 9110 §2.5: a higher minor version SHOULD be processed as the highest one implemented',
    send: get('/healthz', { version: '1.2' }),
    rfc: { obs: 'healthz, session:follow | closed', why: 'llhttp refuses HTTP/1.2 with 400 where RFC 9110 §2.5 (SHOULD) serves it as HTTP/1.1' },
  },
  { name: 'version-2.0', why: 'RFC 9110 §15.6.6: 505 for a major version the server does not support', send: get('/healthz', { version: '2.0' }) },
  { name: 'version-3.0', why: 'RFC 9110 §15.6.6: as version-2.0', send: get('/healthz', { version: '3.0' }) },
  { name: 'version-0.9', why: 'RFC 9112 Appendix C.1: HTTP/0.9 is not spoken', send: get('/healthz', { version: '0.9' }) },
  { name: 'version-1.10', why: 'RFC 9112 §2.3: one digit each side of the dot', send: get('/healthz', { version: '1.10' }) },
  { name: 'version-lowercase', why: 'RFC 9112 §2.3: HTTP-name is case-sensitive', send: 'GET /healthz http/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'version-missing', why: 'an HTTP/0.9 simple request (RFC 9112 Appendix C.1)', send: 'GET /healthz\r\n\r\n' },
  { name: 'version-leading-zero', why: 'RFC 9112 §2.3: one digit each side of the dot', send: 'GET /healthz HTTP/01.1\r\n' + HOST + '\r\n\r\n' },

  // ---- line endings (RFC 9112 §2.2) ----
  { name: 'lf-only', why: 'RFC 9112 §2.2: a recipient MAY take a bare LF as a line end', send: 'GET /healthz HTTP/1.1\n' + HOST + '\n\n' },
  { name: 'lf-request-line', why: 'RFC 9112 §2.2: a bare LF after the request line only', send: 'GET /healthz HTTP/1.1\n' + HOST + '\r\n\r\n' },
  { name: 'lf-blank-line', why: 'RFC 9112 §2.2: CRLF fields, then a bare-LF empty line', send: 'GET /healthz HTTP/1.1\r\n' + HOST + '\r\n\n' },
  { name: 'lf-post', why: 'RFC 9112 §2.2: bare LFs around a Content-Length body', send: post().replace(/\r\n/g, '\n') },
  { name: 'cr-only', why: 'RFC 9112 §2.2: a bare CR MUST be rejected or replaced by SP', send: 'GET /healthz HTTP/1.1\r' + HOST + '\r\r' },
  { name: 'cr-in-value', why: 'RFC 9110 §5.5: CR inside a value MUST be rejected or replaced', send: get('/healthz', { fields: ['X-Test: a\rb'] }) },
  { name: 'cr-cr-lf', why: 'RFC 9112 §2.2: a CR not followed by LF', send: 'GET /healthz HTTP/1.1\r\n' + HOST + '\r\r\n\r\n' },
  { name: 'cr-before-request', why: 'RFC 9112 §2.2: a bare CR where an empty line could be', send: '\rGET /healthz HTTP/1.1\r\n' + HOST + '\r\n\r\n' },
  { name: 'leading-crlf', why: 'RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line', send: '\r\n' + get() },
  { name: 'leading-lf', why: 'RFC 9112 §2.2: as leading-crlf, with a bare LF', send: '\n' + get() },
  { name: 'leading-two-crlf', why: 'RFC 9112 §2.2: "at least one" empty line; two of them', send: '\r\n\r\n' + get() },
  { name: 'crlf-after-body', why: 'RFC 9112 §2.2: the CRLF some clients add after a POST body, before the next request', send: post() + '\r\n' },
  { name: 'blank-line-with-space', why: 'RFC 9112 §2.2, §5.2: a line of whitespace is not the empty line (it would be obs-fold)', send: 'GET /healthz HTTP/1.1\r\n' + HOST + '\r\n \r\n\r\n' },
  { name: 'space-before-request', why: 'RFC 9112 §3: the request line starts with the method', send: ' ' + get() },

  // ---- field syntax (RFC 9112 §5, RFC 9110 §5) ----
  { name: 'obs-fold', why: 'RFC 9112 §5.2: obs-fold MUST be rejected (400) or replaced by SP', send: get('/healthz', { fields: ['X-Fold: a', ' b'] }) },
  { name: 'obs-fold-tab', why: 'RFC 9112 §5.2: obs-fold with HTAB', send: get('/healthz', { fields: ['X-Fold: a', '\tb'] }) },
  { name: 'space-before-first-field', why: 'RFC 9112 §2.2: whitespace between the start line and the first field MUST be rejected or the line ignored', send: get('/healthz', { host: ' ' + HOST, fields: [HOST] }) },
  { name: 'space-before-colon', why: 'RFC 9112 §5.1: whitespace before the colon MUST get 400', send: get('/healthz', { host: 'Host : kefu.test' }) },
  { name: 'tab-before-colon', why: 'RFC 9112 §5.1: as space-before-colon, with HTAB', send: get('/healthz', { fields: ['X-Test\t: 1'] }) },
  { name: 'empty-field-name', why: 'RFC 9110 §5.1: a field name is a token (not empty)', send: get('/healthz', { fields: [': empty'] }) },
  { name: 'field-without-colon', why: 'RFC 9112 §5: a field line has a colon', send: get('/healthz', { fields: ['X-No-Colon'] }) },
  { name: 'field-name-bad-char', why: 'RFC 9110 §5.1: "@" is not a tchar', send: get('/healthz', { fields: ['X@Y: 1'] }) },
  { name: 'field-name-non-ascii', why: 'RFC 9110 §5.1: a field name is ASCII', send: get('/healthz', { fields: ['Caf\xe9: 1'] }) },
  { name: 'field-value-ctl', why: 'RFC 9110 §5.5: control characters are not field-vchars', send: get('/healthz', { fields: ['X-Test: a\x01b'] }) },
  { name: 'field-value-del', why: 'RFC 9110 §5.5: DEL is not a field-vchar', send: get('/healthz', { fields: ['X-Test: a\x7fb'] }) },
  { name: 'field-value-nul', why: 'RFC 9110 §5.5: a NUL MUST be rejected or replaced by SP', send: get('/healthz', { fields: ['X-Test: a\x00b'] }) },
  { name: 'field-value-vtab', why: 'RFC 9110 §5.5: VT is a control character', send: get('/healthz', { fields: ['X-Test: a\x0bb'] }) },
  { name: 'field-value-utf8', why: 'RFC 9110 §5.5: obs-text (UTF-8 bytes) is kept', send: get('/healthz', { fields: ['X-Test: caf\xc3\xa9'] }) },
  { name: 'field-value-latin1', why: 'RFC 9110 §5.5: a lone byte >= 0x80 is obs-text', send: get('/healthz', { fields: ['X-Test: \xff'] }) },
  { name: 'field-value-ows', why: 'RFC 9112 §5.1: OWS around the value is not part of it', send: get('/healthz', { fields: ['X-Test: \t a \t '] }) },
  { name: 'field-value-empty', why: 'RFC 9110 §5.5: an empty value', send: get('/healthz', { fields: ['X-Test:'] }) },
  { name: 'field-value-12k', why: 'a long field under every limit (RFC 9110 §5.4)', send: get('/healthz', { fields: ['X-Long: ' + 'a'.repeat(12000)] }) },
  { name: 'field-value-20k', why: 'RFC 6585 §5: 431 for a field past the server\'s limit', send: get('/healthz', { fields: ['X-Long: ' + 'a'.repeat(20000)] }) },
  { name: 'field-name-8k', why: 'a long field name under every limit', send: get('/healthz', { fields: ['X-' + 'n'.repeat(8000) + ': 1'] }) },
  { name: 'fields-60', why: 'many fields, under every limit', send: get('/healthz', { fields: headers(60) }) },
  { name: 'fields-70', why: 'RFC 6585 §5: 431 for too many fields (kefu keeps 64)', send: get('/healthz', { fields: headers(70) }) },
  { name: 'fields-17k', why: 'RFC 6585 §5: 431 when the head passes 16 KiB in many fields', send: get('/healthz', { fields: headers(40, 'X-' + 'p'.repeat(400)) }) },
  { name: 'request-line-9k', why: 'RFC 9112 §3: 8000 octets RECOMMENDED at least; 414 past the server\'s limit (RFC 9110 §15.5.15)', send: get('/healthz?' + 'q'.repeat(9000)) },
  { name: 'request-line-20k', why: 'RFC 9110 §15.5.15: 414 for a target longer than the server parses', send: get('/healthz?' + 'q'.repeat(20000)) },

  // ---- Content-Length (RFC 9112 §6.2, §6.3; RFC 9110 §8.6) ----
  { name: 'cl-zero', why: 'RFC 9110 §8.6: an empty body', send: framed(['Content-Length: 0'], '') },
  // In the next cases the bytes that cannot be a request come once the request before them is
  // answered: node drops the answers it owes when a later request in the same read is
  // malformed, which is not what is being compared here.
  { name: 'cl-missing', why: 'RFC 9112 §6.3 (7): a request with neither field has no body, so its bytes are the next request', send: [framed([], ''), FIRST], awaitAnswer: true },
  { name: 'cl-duplicate-same', why: 'RFC 9110 §8.6: identical repeated values MAY be accepted or rejected', send: framed(['Content-Length: 16', 'Content-Length: 16'], FIRST) },
  { name: 'cl-duplicate-different', why: 'RFC 9112 §6.3 (5): differing values MUST get 400 and close (CL.CL smuggling)', send: framed(['Content-Length: 16', 'Content-Length: 17'], FIRST + 'X') },
  { name: 'cl-list-same', why: 'RFC 9110 §8.6: a list of identical values MAY be accepted or rejected', send: framed(['Content-Length: 16, 16'], FIRST) },
  { name: 'cl-list-different', why: 'RFC 9112 §6.3 (5): an invalid value MUST get 400 and close', send: framed(['Content-Length: 16, 17'], FIRST + 'X') },
  { name: 'cl-plus', why: 'RFC 9110 §8.6: Content-Length = 1*DIGIT, no sign', send: framed(['Content-Length: +16'], FIRST) },
  { name: 'cl-minus', why: 'RFC 9110 §8.6: no sign', send: framed(['Content-Length: -16'], FIRST) },
  { name: 'cl-leading-zeros', why: 'RFC 9110 §8.6: 1*DIGIT allows leading zeros (decimal, not octal)', send: framed(['Content-Length: 0016'], FIRST) },
  { name: 'cl-hex', why: 'RFC 9110 §8.6: decimal digits only', send: framed(['Content-Length: 0x10'], FIRST) },
  { name: 'cl-inner-space', why: 'RFC 9110 §8.6: no space inside the number', send: framed(['Content-Length: 1 6'], FIRST) },
  { name: 'cl-trailing-space', why: 'RFC 9112 §5.1: trailing OWS is not part of the value', send: framed(['Content-Length: 16 '], FIRST) },
  { name: 'cl-tab-before-value', why: 'RFC 9112 §5.1: leading OWS may be HTAB', send: framed(['Content-Length:\t16'], FIRST) },
  { name: 'cl-empty', why: 'RFC 9112 §6.3 (5): an invalid (empty) value MUST get 400', send: framed(['Content-Length:'], FIRST) },
  { name: 'cl-underscore-value', why: 'RFC 9110 §8.6: digits only', send: framed(['Content-Length: 1_6'], FIRST) },
  { name: 'cl-overflow', why: 'RFC 9110 §8.6: a recipient MUST anticipate large numbers and guard against overflow', send: framed(['Content-Length: 99999999999999999999999'], FIRST) },
  { name: 'cl-above-2^53', why: 'a length past what kefu will ever read, short of overflow', send: framed(['Content-Length: 9007199254740993'], FIRST) },
  { name: 'cl-above-max-body', why: 'RFC 9110 §15.5.14: 413 for a body larger than the server accepts', send: framed(['Content-Length: 100000'], FIRST) },
  { name: 'cl-shorter-than-body', why: 'the bytes past Content-Length are the next request, not the body', send: [framed(['Content-Length: 5'], FIRST.slice(0, 5)), FIRST.slice(5)], awaitAnswer: true },
  {
    name: 'cl-longer-than-sent',
    why: 'a body still coming: the start of the next request is body bytes, the rest of it garbage',
    send: [framed(['Content-Length: 100'], FIRST), FOLLOW.slice(0, 84), FOLLOW.slice(84)],
    follow: false,
    awaitAnswer: [2],
  },
  { name: 'cl-name-lowercase', why: 'RFC 9110 §5.1: field names are case-insensitive', send: framed(['content-length: 16'], FIRST) },
  { name: 'cl-name-underscore', why: '"Content_Length" is another field (some proxies map _ to -): no body', send: [framed(['Content_Length: 16'], ''), FIRST], awaitAnswer: true },
  { name: 'cl-get-body', why: 'RFC 9110 §9.3.1: a GET body is framed like any other', send: req(['GET /healthz HTTP/1.1', HOST, 'Content-Length: 16'], FIRST) },
  { name: 'cl-zero-get-then-request', why: 'CL.0: a GET with Content-Length 0 and a second request behind it', send: req(['GET /healthz HTTP/1.1', HOST, 'Content-Length: 0']) + get('/nowhere') },
  { name: 'cl-head-body', why: 'RFC 9110 §9.3.2: a HEAD body is framed like any other', send: req(['HEAD /healthz HTTP/1.1', HOST, 'Content-Length: 16'], FIRST), head: [0] },
  { name: 'cl-chunked-looking-body', why: 'a Content-Length body that looks like the end of a chunked body and a request (TE.CL bait)', send: framed([cl(LAST_CHUNK_AND_GET)], LAST_CHUNK_AND_GET) },
  { name: 'cl-request-in-body', why: 'a whole request inside a body must not be served', send: framed([cl(GET_IN_BODY)], GET_IN_BODY, { path: '/nowhere' }) },

  // ---- Transfer-Encoding (RFC 9112 §6.1, §6.3, §7) ----
  { name: 'te-chunked', why: 'RFC 9112 §7.1: a chunked request body', send: framed(['Transfer-Encoding: chunked']) },
  { name: 'te-chunked-uppercase', why: 'RFC 9112 §7: transfer-coding names are case-insensitive', send: framed(['Transfer-Encoding: Chunked']) },
  { name: 'te-chunked-trailing-space', why: 'TE.TE: "chunked " (trailing OWS is not part of the value, RFC 9112 §5.1)', send: framed(['Transfer-Encoding: chunked ']) },
  { name: 'te-chunked-tab', why: 'TE.TE: HTAB before the value', send: framed(['Transfer-Encoding:\tchunked']) },
  { name: 'te-leading-comma', why: 'RFC 9110 §5.6.1: empty list elements are ignored, so ", chunked" is chunked', send: framed(['Transfer-Encoding: , chunked']) },
  { name: 'te-chunked-twice-list', why: 'RFC 9112 §6.1: chunked MUST NOT be applied twice', send: framed(['Transfer-Encoding: chunked, chunked']) },
  { name: 'te-chunked-twice-fields', why: 'TE.TE: two fields, both chunked', send: framed(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked']) },
  { name: 'te-chunked-gzip', why: 'RFC 9112 §6.3 (4): chunked not last: MUST get 400 and close', send: framed(['Transfer-Encoding: chunked, gzip']) },
  { name: 'te-gzip-chunked', why: 'RFC 9112 §6.1: a coding the server does not understand SHOULD get 501', send: framed(['Transfer-Encoding: gzip, chunked']) },
  { name: 'te-gzip', why: 'RFC 9112 §6.3 (4): no chunked at the end: MUST get 400 and close', send: framed(['Transfer-Encoding: gzip'], FIRST) },
  { name: 'te-identity', why: 'RFC 9112 §6.3 (4): "identity" (gone since RFC 7230) is not chunked', send: framed(['Transfer-Encoding: identity'], FIRST) },
  { name: 'te-xchunked', why: 'TE.TE (PortSwigger): "xchunked" is not chunked', send: framed(['Transfer-Encoding: xchunked']) },
  { name: 'te-chunked-then-other', why: 'TE.TE: "chunked" then another field: the list ends in a non-chunked coding (RFC 9112 §6.3 (4))', send: framed(['Transfer-Encoding: chunked', 'Transfer-Encoding: x']) },
  { name: 'te-other-then-chunked', why: 'TE.TE: another coding, then chunked (RFC 9112 §6.1: unknown coding, SHOULD get 501)', send: framed(['Transfer-Encoding: x', 'Transfer-Encoding: chunked']) },
  { name: 'te-empty', why: 'an empty Transfer-Encoding (RFC 9112 §6.1: 1#transfer-coding)', send: framed(['Transfer-Encoding:'], '') },
  { name: 'te-space-before-colon', why: 'TE.TE (PortSwigger): "Transfer-Encoding : chunked" (RFC 9112 §5.1: MUST get 400)', send: framed(['Transfer-Encoding : chunked']) },
  { name: 'te-obs-fold', why: 'TE.TE: the value folded onto the next line (RFC 9112 §5.2)', send: framed(['Transfer-Encoding:', ' chunked']) },
  { name: 'te-vtab', why: 'TE.TE: a vertical tab after chunked (RFC 9110 §5.5)', send: framed(['Transfer-Encoding: chunked\x0b']) },
  { name: 'te-nul', why: 'TE.TE: a NUL after chunked (RFC 9110 §5.5)', send: framed(['Transfer-Encoding: chunked\x00']) },
  { name: 'te-name-underscore', why: '"Transfer_Encoding" is another field: the body is framed by Content-Length', send: framed(['Transfer_Encoding: chunked', 'Content-Length: 16'], FIRST) },
  { name: 'te-http10', why: 'RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 MUST be treated as faulty framing', send: framed(['Transfer-Encoding: chunked', 'Connection: keep-alive'], CHUNKED_FIRST, { version: '1.0' }) },
  { name: 'te-chunk-extension', why: 'RFC 9112 §7.1.1: chunk extensions are allowed', send: framed(['Transfer-Encoding: chunked'], `10;ext=1\r\n${FIRST}\r\n0\r\n\r\n`) },
  { name: 'te-chunk-size-hex-prefix', why: 'RFC 9112 §7.1: chunk-size = 1*HEXDIG, no "0x"', send: framed(['Transfer-Encoding: chunked'], `0x10\r\n${FIRST}\r\n0\r\n\r\n`) },
  { name: 'te-chunk-lf', why: 'RFC 9112 §7.1: chunk lines end in CRLF; bare LF', send: framed(['Transfer-Encoding: chunked'], `10\n${FIRST}\n0\n\n`) },
  { name: 'te-chunk-no-last', why: 'RFC 9112 §7.1: a body without its last chunk is still coming', send: framed(['Transfer-Encoding: chunked'], `10\r\n${FIRST}\r\n`), follow: false },
  { name: 'te-chunk-trailer', why: 'RFC 9112 §7.1.2: a trailer section', send: framed(['Transfer-Encoding: chunked'], `10\r\n${FIRST}\r\n0\r\nX-Trailer: 1\r\n\r\n`) },

  // ---- CL and TE together: the request-smuggling classics (RFC 9112 §6.3 (3), §11.2) ----
  { name: 'clte-basic', why: 'CL.TE (PortSwigger): the front end frames by Content-Length, the back end by chunked', send: framed(['Content-Length: 6', 'Transfer-Encoding: chunked'], '0\r\n\r\nG') },
  { name: 'tecl-basic', why: 'TE.CL (PortSwigger): the front end frames by chunked, the back end by Content-Length', send: framed(['Content-Length: 3', 'Transfer-Encoding: chunked'], '8\r\nSMUGGLED\r\n0\r\n\r\n') },
  { name: 'clte-smuggled-get', why: 'CL.TE with a whole request after the last chunk', send: framed([cl(LAST_CHUNK_AND_GET), 'Transfer-Encoding: chunked'], LAST_CHUNK_AND_GET) },
  { name: 'te-before-cl', why: 'TE.CL with the fields the other way round', send: framed(['Transfer-Encoding: chunked', 'Content-Length: 4'], CHUNKED_FIRST) },
  { name: 'clte-xchunked', why: 'TE.TE + CL: an obfuscated TE that one side ignores', send: framed(['Content-Length: 4', 'Transfer-Encoding: xchunked'], CHUNKED_FIRST) },
  { name: 'clte-chunked-then-other', why: 'TE.TE + CL: chunked, then a second TE field', send: framed(['Content-Length: 4', 'Transfer-Encoding: chunked', 'Transfer-Encoding: x'], CHUNKED_FIRST) },
  { name: 'clte-space-before-colon', why: 'TE.TE + CL: "Transfer-Encoding : chunked"', send: framed(['Content-Length: 4', 'Transfer-Encoding : chunked'], CHUNKED_FIRST) },
  { name: 'clte-obs-fold', why: 'TE.TE + CL: Transfer-Encoding hidden in a folded line', send: framed(['Content-Length: 4', 'X-Fold: a', ' Transfer-Encoding: chunked'], CHUNKED_FIRST) },
  { name: 'clte-lf-hidden', why: 'TE.TE + CL: Transfer-Encoding behind a bare LF in another field (a parser that needs CRLF sees one field)', send: framed(['Content-Length: 4', 'X-Test: a\nTransfer-Encoding: chunked'], CHUNKED_FIRST) },
  { name: 'clte-cr-hidden', why: 'TE.TE + CL: Transfer-Encoding behind a bare CR', send: framed(['Content-Length: 4', 'X-Test: a\rTransfer-Encoding: chunked'], CHUNKED_FIRST) },
  { name: 'clte-name-lowercase', why: 'CL.TE with a lower-case field name', send: framed(['Content-Length: 4', 'transfer-encoding: chunked'], CHUNKED_FIRST) },
  { name: 'clte-http10', why: 'RFC 9112 §6.1: TE and CL in HTTP/1.0: faulty framing', send: framed(['Content-Length: 4', 'Transfer-Encoding: chunked', 'Connection: keep-alive'], CHUNKED_FIRST, { version: '1.0' }) },
  { name: 'cl-cl-smuggled-get', why: 'CL.CL with a request behind the shorter length', send: framed(['Content-Length: 16', cl(FIRST + GET_NOWHERE)], FIRST + GET_NOWHERE) },

  // ---- Host (RFC 9112 §3.2, RFC 9110 §7.2) ----
  { name: 'host-missing', why: 'RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400', send: get('/healthz', { host: null }) },
  {
    name: 'host-twice-same',
    why: 'RFC 9112 §3.2: more than one Host field line MUST get 400',
    send: get('/healthz', { fields: [HOST] }),
    rfc: { obs: 'reject 400 | closed', why: 'node keeps the first Host and serves the request' },
  },
  {
    name: 'host-twice-different',
    why: 'RFC 9112 §3.2: as host-twice-same; the routing ambiguity behind Host-header attacks',
    send: get('/healthz', { fields: ['Host: other.test'] }),
    rfc: { obs: 'reject 400 | closed', why: 'node keeps the first Host and serves the request' },
  },
  {
    name: 'host-twice-http10',
    why: 'RFC 9112 §3.2: the rule on more than one Host holds for any request, HTTP/1.0 too',
    send: get('/healthz', { version: '1.0', fields: [HOST, 'Connection: keep-alive'] }),
    rfc: { obs: 'reject 400 | closed', why: 'node keeps the first Host and serves the request' },
  },
  { name: 'host-missing-absolute', why: 'RFC 9112 §3.2: Host is required in HTTP/1.1 even with an absolute-form target', send: get('http://kefu.test/healthz', { host: null }) },
  { name: 'host-empty', why: 'RFC 9110 §7.2: an empty Host is the form for a target without authority', send: get('/healthz', { host: 'Host:' }) },
  { name: 'host-port', why: 'RFC 9110 §7.2: Host = uri-host [ ":" port ]', send: get('/healthz', { host: 'Host: kefu.test:8080' }) },
  { name: 'host-ipv6', why: 'RFC 9110 §7.2, RFC 3986 §3.2.2: an IP-literal', send: get('/healthz', { host: 'Host: [::1]:8080' }) },
  invalidHost('host-userinfo', 'user@kefu.test', 'uri-host has no userinfo (RFC 9110 §7.2)'),
  invalidHost('host-with-path', 'kefu.test/healthz', 'a path is no part of it'),
  invalidHost('host-bad-port', 'kefu.test:http', 'port = *DIGIT (RFC 3986 §3.2.3)'),
  invalidHost('host-space', 'kefu test', 'a space is no part of a reg-name'),
  invalidHost('host-list', 'kefu.test, other.test', 'Host is a singleton, not a list'),

  // ---- Expect (RFC 9110 §10.1.1) ----
  {
    name: 'expect-100-wait',
    why: 'RFC 9110 §10.1.1: the server MUST answer 100 (or a final status) before the body, which the client holds back',
    send: [req(['POST /api/visitor/session HTTP/1.1', HOST, JSON_TYPE, 'Content-Length: 16', 'Expect: 100-continue']), FIRST],
    gapMs: 400,
    interim: true,
  },
  {
    name: 'expect-100-case',
    why: 'RFC 9110 §10.1.1: the expectation is case-insensitive',
    send: [req(['POST /api/visitor/session HTTP/1.1', HOST, JSON_TYPE, 'Content-Length: 16', 'Expect: 100-Continue']), FIRST],
    gapMs: 400,
    interim: true,
  },
  {
    name: 'expect-100-http10',
    why: 'RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored (no 100)',
    send: [req(['POST /api/visitor/session HTTP/1.0', HOST, JSON_TYPE, 'Content-Length: 16', 'Connection: keep-alive', 'Expect: 100-continue']), FIRST],
    gapMs: 400,
    interim: true,
  },
  { name: 'expect-100-whole', why: 'RFC 9110 §10.1.1: the body came with the head; 100 may be left out', send: post('first', { fields: ['Expect: 100-continue'] }) },
  { name: 'expect-100-no-body', why: 'RFC 9110 §10.1.1: no content, 100 may be left out', send: get('/healthz', { fields: ['Expect: 100-continue'] }) },
  {
    name: 'expect-100-early-answer',
    why: 'RFC 9110 §10.1.1: a server may answer before the body; the body that comes after must still be read as body (a request inside it is not served)',
    send: [req(['POST /nowhere HTTP/1.1', HOST, cl(GET_IN_BODY), 'Expect: 100-continue']), GET_IN_BODY],
    gapMs: 400,
  },
  { name: 'expect-100-too-large', why: 'RFC 9110 §10.1.1: a final status (413) can be sent at once instead of 100', send: req(['POST /api/visitor/session HTTP/1.1', HOST, JSON_TYPE, 'Content-Length: 100000', 'Expect: 100-continue']), follow: false },
  { name: 'expect-unknown', why: 'RFC 9110 §10.1.1: another expectation MAY get 417', send: get('/healthz', { fields: ['Expect: tea'] }) },

  // ---- HEAD (RFC 9110 §9.3.2) ----
  { name: 'head', why: 'RFC 9110 §9.3.2: HEAD gets the GET answer\'s head, no body', send: get('/healthz', { method: 'HEAD' }), head: [0] },
  { name: 'head-not-found', why: 'RFC 9110 §9.3.2: an error answer to HEAD has no body either', send: get('/nowhere', { method: 'HEAD' }), head: [0] },
  { name: 'head-then-get', why: 'a HEAD answer without a body, then a GET on the same connection', send: get('/healthz', { method: 'HEAD' }) + get(), head: [0] },
  { name: 'head-sse', why: 'RFC 9110 §9.3.2: HEAD on an event stream: the head only, the request then over', send: get('/push/sse', { method: 'HEAD', fields: [BEARER] }), head: [0] },
  { name: 'head-iframe', why: 'RFC 9110 §9.3.2: HEAD on the forever iframe: the head only, the request then over', send: get('/push/iframe', { method: 'HEAD', fields: [BEARER] }), head: [0] },

  // ---- pipelining (RFC 9112 §9.3.2) ----
  { name: 'pipeline-three', why: 'RFC 9112 §9.3.2: three requests in one write, answered in order', send: get() + post('first') },
  { name: 'pipeline-ten', why: 'RFC 9112 §9.3.2: ten requests in one write', send: get().repeat(5) + get('/nowhere').repeat(5) },
  { name: 'pipeline-after-404', why: 'an error answer does not end the connection', send: get('/nowhere') + post('first') },
  { name: 'pipeline-after-reject', why: 'after a framing error the rest of the connection is not trusted', send: get('/healthz', { fields: ['X-Test: a\x00b'] }) + get() },
  { name: 'split-request-line', why: 'a request line cut in two writes', send: ['GET /heal', 'thz HTTP/1.1\r\n' + HOST + '\r\n\r\n'] },
  { name: 'split-cr-lf', why: 'a write ending between CR and LF', send: ['GET /healthz HTTP/1.1\r', '\n' + HOST + '\r\n\r\n'] },
  { name: 'split-before-blank-line', why: 'a write ending before the empty line', send: [get().slice(0, -2), '\r\n'] },
  { name: 'split-body', why: 'a body cut in two writes', send: [post('first').slice(0, -8), post('first').slice(-8)] },
  { name: 'split-between-requests', why: 'the follow-up in its own write', send: [get(), ''] },
  { name: 'byte-by-byte', why: 'a request one byte per write', send: [...get()], gapMs: 3 },
  { name: 'pipeline-500', why: 'RFC 9112 §9.3.2: 500 requests in one write', send: get().repeat(250) + get('/nowhere').repeat(250) },
  { name: 'pipeline-messages', why: 'held requests (each waits for its commit) pipelined: answered in order', send: message('one') + message('two') + get() },
  { name: 'half-close', why: 'RFC 9293 §3.6: a client may end its side once its requests are sent and still read the answers', send: get() + post('first'), halfClose: true },
  { name: 'half-close-message', why: 'as half-close, with a request that is held until its commit: its answer must still come', send: message(), halfClose: true },
  { name: 'incomplete-head', why: 'a head that never ends: the server waits', send: 'GET /healthz HTTP/1.1\r\n' + HOST + '\r\n', follow: false },
  { name: 'incomplete-body', why: 'a body that never ends: the server waits', send: framed(['Content-Length: 16'], FIRST.slice(0, 8)), follow: false },

  // ---- Upgrade and WebSocket (RFC 9110 §7.8, RFC 6455 §4) ----
  { name: 'ws', why: 'RFC 6455 §4.2: a valid WebSocket handshake switches protocols', send: get('/push/ws', { fields: [...WS_FIELDS, BEARER] }) },
  { name: 'ws-no-credentials', why: 'a handshake the application refuses (401): HTTP goes on', send: get('/push/ws', { fields: WS_FIELDS }) },
  { name: 'ws-no-key', why: 'RFC 6455 §4.2.1: a handshake without Sec-WebSocket-Key gets 400', send: get('/push/ws', { fields: [...WS_FIELDS.slice(0, 3), BEARER] }) },
  { name: 'ws-bad-key', why: 'RFC 6455 §4.2.1: the key is 16 bytes in base64', send: get('/push/ws', { fields: [...WS_FIELDS.slice(0, 3), 'Sec-WebSocket-Key: c2hvcnQ=', BEARER] }) },
  { name: 'ws-version-8', why: 'RFC 6455 §4.4: another version gets 426 with the versions supported', send: get('/push/ws', { fields: ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 8', WS_KEY, BEARER] }) },
  { name: 'ws-no-upgrade-field', why: 'RFC 9110 §7.8: Connection: Upgrade without an Upgrade field', send: get('/push/ws', { fields: ['Connection: Upgrade', 'Sec-WebSocket-Version: 13', WS_KEY, BEARER] }) },
  { name: 'ws-no-connection-upgrade', why: 'RFC 9110 §7.8: an Upgrade field without the "upgrade" connection option', send: get('/push/ws', { fields: ['Upgrade: websocket', 'Sec-WebSocket-Version: 13', WS_KEY, BEARER] }) },
  { name: 'ws-post', why: 'RFC 6455 §4.1: the handshake is a GET', send: get('/push/ws', { method: 'POST', fields: [...WS_FIELDS, BEARER, 'Content-Length: 0'] }) },
  { name: 'ws-http10', why: 'RFC 9110 §7.8: an Upgrade field in an HTTP/1.0 request MUST be ignored', send: get('/push/ws', { version: '1.0', fields: ['Connection: keep-alive, Upgrade', ...WS_FIELDS.slice(1), BEARER] }) },
  { name: 'ws-connection-close', why: 'a handshake that also asks to close the connection', send: get('/push/ws', { fields: ['Connection: close, Upgrade', ...WS_FIELDS.slice(1), BEARER] }) },
  { name: 'ws-with-body', why: 'a handshake with a Content-Length body: the body is not the new protocol\'s first bytes', send: req(['GET /push/ws HTTP/1.1', HOST, ...WS_FIELDS, BEARER, 'Content-Length: 16'], FIRST) },
  { name: 'ws-upgrade-case', why: 'RFC 6455 §4.2.1: "websocket" is compared case-insensitively', send: get('/push/ws', { fields: ['Connection: Upgrade', 'Upgrade: WebSocket', 'Sec-WebSocket-Version: 13', WS_KEY, BEARER] }) },
  { name: 'ws-connection-list', why: 'RFC 9110 §7.6.1: "upgrade" among other connection options', send: get('/push/ws', { fields: ['Connection: keep-alive, Upgrade', ...WS_FIELDS.slice(1), BEARER] }) },
  { name: 'ws-upgrade-list', why: 'RFC 9110 §7.8: Upgrade is a list; RFC 6455 §4.2.1 wants "websocket" in it', send: get('/push/ws', { fields: ['Connection: Upgrade', 'Upgrade: websocket, h2c', 'Sec-WebSocket-Version: 13', WS_KEY, BEARER] }) },
  { name: 'upgrade-ignored', why: 'RFC 9110 §7.8: a server MAY ignore Upgrade; then HTTP/1.1 goes on', send: get('/healthz', { fields: WS_FIELDS }) },
  { name: 'upgrade-h2c', why: 'RFC 9110 §7.8: an h2c upgrade the server does not take', send: get('/healthz', { fields: ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__'] }) },

  // ---- NUL and binary ----
  { name: 'nul-before-request', why: 'a NUL where the method starts', send: '\x00' + get() },
  { name: 'nul-in-method', why: 'a NUL inside the method', send: get('/healthz', { method: 'G\x00ET' }) },
  { name: 'nul-in-field-name', why: 'a NUL inside a field name', send: get('/healthz', { fields: ['X-T\x00est: 1'] }) },
  { name: 'nul-in-body', why: 'a NUL in a Content-Length body is data for the application (here: not JSON)', send: framed(['Content-Length: 16'], '{"name":"fi\x00st"}') },
  { name: 'tls-client-hello', why: 'a TLS ClientHello on the plain-text port', send: '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + 'r'.repeat(32) },
  { name: 'binary-garbage', why: 'bytes that are no request at all', send: '\xff\xfe\x80\x81\x00\x01\r\n\r\n' },
];

module.exports = { cases, FOLLOW, HOST };
