'use strict';
// wsraw.js: a raw-socket WebSocket client (RFC 6455) for protocol-level tests: hand-built frames
// (any FIN/RSV/opcode/mask/length), the handshake done by hand, server frames parsed as they come,
// and waits on conditions (a frame, a close frame, the TCP close) with timeouts.
// Used by conformance.test.js and ws_autobahn.test.js.

const net = require('node:net');
const crypto = require('node:crypto');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

function wsKey() {
  return crypto.randomBytes(16).toString('base64');
}
function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

const toBuf = (p) => (p === undefined || p === null ? Buffer.alloc(0) : Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'));

// Builds one client frame. fin (default true), rsv (0..7: RSV1=4, RSV2=2, RSV3=1), opcode,
// payload (string = UTF-8, or Buffer), mask (default true), maskKey (4 bytes), len (a lying
// length field), lenBytes (force 0/2/8 extended length bytes).
function frame({ fin = true, rsv = 0, opcode, payload, mask = true, maskKey, len, lenBytes } = {}) {
  const data = toBuf(payload);
  const plen = len === undefined ? data.length : len;
  const ext = lenBytes !== undefined ? lenBytes : plen < 126 ? 0 : plen <= 0xffff ? 2 : 8;
  const head = [((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)) & 0xff];
  const m = mask ? 0x80 : 0;
  if (ext === 0) head.push(m | plen);
  else if (ext === 2) head.push(m | 126, (plen >> 8) & 0xff, plen & 0xff);
  else {
    head.push(m | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(plen));
    head.push(...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = maskKey || crypto.randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

const closePayload = (code, reason = '') => {
  const r = toBuf(reason);
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
};

// Parses server frames (which must be unmasked) from a byte stream.
class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      if (masked) off += 4;
      if (b.length < off + len) break;
      let payload = b.subarray(off, off + len);
      if (masked) {
        const key = b.subarray(off - 4, off);
        payload = Buffer.from(payload.map((x, i) => x ^ key[i & 3]));
      } else payload = Buffer.from(payload);
      const f = { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload };
      if (f.opcode === OP.CLOSE) {
        f.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        f.reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
      }
      if (f.opcode === OP.TEXT) {
        f.text = payload.toString('utf8');
        try {
          f.json = JSON.parse(f.text);
        } catch {}
      }
      out.push(f);
      this.buf = b.subarray(off + len);
    }
    return out;
  }
}

const describeFrame = (f) => {
  if (!f) return String(f);
  const name = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' }[f.opcode] || `op${f.opcode}`;
  if (f.opcode === OP.CLOSE) return `close(${f.code}${f.reason ? ' ' + JSON.stringify(f.reason) : ''})`;
  if (f.opcode === OP.TEXT) return `text(${f.text.length > 200 ? f.text.slice(0, 200) + '…[' + f.text.length + ' chars]' : f.text})`;
  return `${name}(${f.payload.length} bytes${f.payload.length <= 32 ? ': ' + f.payload.toString('hex') : ''})`;
};

// One raw WebSocket connection. RawWs.open() does the handshake and resolves once the server's
// 101 (and, by default, the first frame, the heartbeat event) has arrived.
class RawWs {
  constructor(sock) {
    this.sock = sock;
    this.parser = new FrameParser();
    this.frames = []; // unread frames
    this.all = []; // every frame received
    this.tcpClosed = false;
    this.tcpEnded = false; // FIN received
    this.error = null;
    this.waiters = [];
    this.bytesIn = 0;
    sock.on('data', (c) => {
      this.bytesIn += c.length;
      for (const f of this.parser.push(c)) {
        this.frames.push(f);
        this.all.push(f);
      }
      this._wake();
    });
    sock.on('end', () => {
      this.tcpEnded = true;
      this._wake();
    });
    sock.on('error', (e) => {
      this.error = e;
      this._wake();
    });
    sock.on('close', () => {
      this.tcpClosed = true;
      this._wake();
    });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async _until(pred, timeout, what) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout after ${timeout} ms waiting for ${what}; frames so far: [${this.all.map(describeFrame).join(', ')}], tcp closed: ${this.tcpClosed}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  // Handshake. opts: path (default '/push/ws?after=0'), headers (object, merged over the
  // defaults; a null value removes a default), expectFirstFrame (default true).
  static open(port, { path = '/push/ws?after=0', headers = {}, host = '127.0.0.1', timeout = 5000, expectFirstFrame = true } = {}) {
    return new Promise((resolve, reject) => {
      const key = wsKey();
      const h = { Host: `${host}:${port}`, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...headers };
      let req = `GET ${path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(h)) if (v !== null && v !== undefined) req += `${k}: ${v}\r\n`;
      req += '\r\n';
      const sock = net.connect(port, host);
      sock.setNoDelay(true);
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`WebSocket handshake: no 101 within ${timeout} ms; got ${JSON.stringify(head.toString('latin1').slice(0, 500))}`));
      }, timeout);
      const onData = (c) => {
        head = Buffer.concat([head, c]);
        const idx = head.indexOf('\r\n\r\n');
        if (idx < 0) return;
        sock.removeListener('data', onData);
        sock.removeListener('error', onErr);
        const text = head.subarray(0, idx).toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (!m || m[1] !== '101') {
          clearTimeout(timer);
          sock.destroy();
          const e = new Error(`WebSocket handshake answered ${m ? m[1] : '?'}: ${head.toString('latin1').slice(0, 800)}`);
          e.status = m ? Number(m[1]) : null;
          e.head = text;
          reject(e);
          return;
        }
        const acc = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text);
        if (!acc || acc[1] !== acceptFor(key)) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(`bad Sec-WebSocket-Accept in ${text}`));
          return;
        }
        const ws = new RawWs(sock);
        ws.head = text;
        const rest = head.subarray(idx + 4);
        if (rest.length) sock.emit('data', rest);
        if (!expectFirstFrame) {
          clearTimeout(timer);
          resolve(ws);
          return;
        }
        ws._until(() => ws.frames.length > 0, timeout, 'the first frame (heartbeat)')
          .then(() => {
            clearTimeout(timer);
            const f = ws.frames.shift();
            ws.first = f;
            if (!(f.opcode === OP.TEXT && f.json && f.json.type === 'heartbeat')) {
              sock.destroy();
              reject(new Error(`first frame should be a heartbeat event, got ${describeFrame(f)}`));
              return;
            }
            resolve(ws);
          })
          .catch((e) => {
            clearTimeout(timer);
            sock.destroy();
            reject(e);
          });
      };
      const onErr = (e) => {
        clearTimeout(timer);
        reject(e);
      };
      sock.on('data', onData);
      sock.on('error', onErr);
      sock.on('connect', () => sock.write(req));
    });
  }

  write(buf) {
    return new Promise((resolve) => {
      if (this.sock.destroyed || this.tcpClosed) return resolve(false);
      this.sock.write(buf, (err) => resolve(!err));
    });
  }
  send(opts) {
    return this.write(frame(opts));
  }
  text(payload, opts = {}) {
    return this.send({ opcode: OP.TEXT, payload, ...opts });
  }
  // Writes buf in pieces of `size` bytes, one write (and one event-loop turn) each.
  async writeChopped(buf, size = 1) {
    for (let i = 0; i < buf.length; i += size) {
      if (!(await this.write(buf.subarray(i, i + size)))) return false;
      await new Promise((r) => setImmediate(r));
    }
    return true;
  }

  // The next frame (skipping server pings, which the server sends only after 20 s of silence).
  async next(timeout = 3000, what = 'a frame') {
    await this._until(() => this.frames.length > 0 || this.tcpClosed, timeout, what);
    if (!this.frames.length) throw new Error(`connection closed while waiting for ${what}; frames: [${this.all.map(describeFrame).join(', ')}]`);
    return this.frames.shift();
  }

  // Next text frame as JSON (heartbeat events skipped); fails on any other frame.
  async json(timeout = 3000, what = 'a JSON text frame') {
    for (;;) {
      const f = await this.next(timeout, what);
      if (f.opcode === OP.TEXT && f.json && f.json.type === 'heartbeat') continue;
      if (f.opcode !== OP.TEXT || !f.json) throw new Error(`expected ${what}, got ${describeFrame(f)}`);
      return f.json;
    }
  }

  // A `ping` action; resolves when its pong reply arrived.
  async pingAction(ref = 'p' + Math.random().toString(36).slice(2), timeout = 3000) {
    await this.text(JSON.stringify({ type: 'ping', ref }));
    const j = await this.json(timeout, `the pong reply to ping action ${ref}`);
    if (j.type !== 'pong' || j.ref !== ref) throw new Error(`expected {"type":"pong","ref":${JSON.stringify(ref)}}, got ${JSON.stringify(j).slice(0, 300)}`);
    return j;
  }

  // Expects a close frame with one of codes as the next frame (other frames before it fail the
  // expectation unless allowOthers), then the TCP close. Returns {code, reason, before}.
  async expectClose(codes, { timeout = 3000, allowOthers = false, what = '' } = {}) {
    const list = Array.isArray(codes) ? codes : [codes];
    const before = [];
    for (;;) {
      let f;
      try {
        f = await this.next(timeout, `a close frame ${list.join('|')} ${what}`);
      } catch (e) {
        e.message = `expected close ${list.join('|')} ${what}: ${e.message}`;
        throw e;
      }
      if (f.opcode !== OP.CLOSE) {
        if (allowOthers || (f.opcode === OP.TEXT && f.json && f.json.type === 'heartbeat')) {
          before.push(f);
          continue;
        }
        throw new Error(`expected close ${list.join('|')} ${what}, got ${describeFrame(f)} first`);
      }
      if (!list.includes(f.code)) throw new Error(`expected close ${list.join('|')} ${what}, got ${describeFrame(f)}`);
      // Answer the close as a client should; the server may have closed TCP already.
      if (!this.tcpClosed) this.send({ opcode: OP.CLOSE, payload: closePayload(f.code) }).catch(() => {});
      await this.waitTcpClose(timeout, `the TCP close after close(${f.code})`);
      const after = this.frames.splice(0);
      if (after.length) throw new Error(`frames after the close frame: [${after.map(describeFrame).join(', ')}]`);
      return { code: f.code, reason: f.reason, before };
    }
  }

  async waitTcpClose(timeout = 3000, what = 'the TCP close') {
    await this._until(() => this.tcpClosed || this.tcpEnded, timeout, what);
  }

  destroy() {
    this.sock.destroy();
  }
}

module.exports = { OP, frame, closePayload, FrameParser, RawWs, wsKey, acceptFor, describeFrame };
