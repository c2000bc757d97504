/* kefu.js: the push client shared by the visitor page and the agent console.
 *
 *   const push = new KefuPush({
 *     transport: null,                 // null: choose automatically (ws → sse → longpoll → poll);
 *                                      // or force one: 'ws' | 'sse' | 'longpoll' | 'poll' | 'iframe'
 *     cursor: '42',                    // newest message id the page already has ('0': none)
 *     auth: {bearer: token} | {cookie: true},
 *     onEvent(event) {},               // message / conversation / read / typing events (PROTOCOL.md)
 *     onState(state) {},               // 'connecting' | 'connected' | 'reconnecting' | 'offline'
 *     onTransport(name) {},            // optional: the transport in use changed (e.g. a fallback)
 *     onResync() {},                   // optional: the stream came back after a gap; events without
 *                                      // an id (conversation, read, typing) may have been missed
 *     onAuthError() {},                // optional: the server answered 401; the client has stopped
 *   });
 *   push.canSend();                    // true while a WebSocket is open and has heard the server
 *   push.send({type: 'send', body, key}); // a Promise of the server's ack (WebSocket only); `key`:
 *                                      // the message's idempotency key (API.md), so that sending
 *                                      // it again after a lost ack cannot store it twice
 *   push.nudge();                      // the server just answered the page: if the stream waits
 *                                      // out a backoff, reconnect now
 *   push.stop();
 *
 * The client owns everything the transports have in common: the cursor, de-duplication, the
 * connection state, retrying with exponential backoff, and (when no transport is forced) choosing
 * a transport and falling back to the next one when it does not work here. A transport only knows
 * how to open one stream (or request loop) and report what happens on it.
 *
 * The strategy, in short (the long version is in docs/PROTOCOL.md, "Browser client"): best first.
 * Try WebSocket, then Server-Sent Events, then long polling, then polling. A transport has failed
 * when it does not deliver its first event within 5 s, or cannot open twice in a row, or keeps
 * dropping (3 connections in a row that lived under 15 s) — but only while the server answers a
 * plain GET /push/poll, so that a server restart or a dead network never demotes a transport; nor
 * does a 429 (too many requests, or too many push connections open in other tabs): the client waits
 * at least its Retry-After and tries the same transport again. The
 * transport that works is remembered for the tab (sessionStorage), and the better ones are tried
 * again in the background after 5 minutes (then 10, 20, 30). */
(function () {
  'use strict';

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const POLL_INTERVAL_MS = 2000;
  const LONGPOLL_CLIENT_TIMEOUT_MS = 40000; // the server answers after ~25 s; give it slack
  const IFRAME_SILENCE_MS = 45000;          // heartbeats come every 20 s
  const SSE_SILENCE_MS = 45000;             // (only once the server is seen sending heartbeat events)
  const SSE_NATIVE_RETRIES = 3;             // EventSource's own reconnects before we take over
  const WS_PING_MS = 25000;                 // an application-level ping this often...
  const WS_PONG_TIMEOUT_MS = 10000;         // ...must be answered within this, or the socket is dead
  const WS_ACK_TIMEOUT_MS = 10000;          // an action without an answer within this has failed
  const STABLE_MS = 15000;                  // a connection that lived less than this "dropped early"
  const MAX_FLAPS = 3;                      // early drops in a row before a transport has failed
  const GRACE_MS = 1000;                    // a reconnect quicker than this is not shown
  const PROBE_TIMEOUT_MS = 5000;            // for GET /push/poll and for a background upgrade probe
  const TOO_MANY_MIN_MS = 1000;             // after a 429 without Retry-After, wait at least this
  const SEEN_LIMIT = 5000;                  // message ids remembered for de-duplication
  const STORE_KEY = 'kefu.push.transport';  // sessionStorage: the transport that worked in this tab

  /* The timings of the automatic choice, as an object so that tests can shorten them
   * (KefuPush.timing). */
  const timing = {
    openTimeoutMs: 5000,              // auto: the first event must come within this
    openTimeoutForcedMs: 15000,       // forced: after this, give up on the attempt and retry
    upgradeFirstMs: 5 * 60 * 1000,    // on a fallback, try the better transports after this
    upgradeMaxMs: 30 * 60 * 1000,     // ...doubling up to this
  };

  /* Best first. The forever iframe is never chosen automatically: it only exists for very old
   * browsers, and where it works long polling works too. */
  const AUTO_ORDER = ['ws', 'sse', 'longpoll', 'poll'];

  /* The error codes of API.md, for WebSocket error replies (so pages can treat them like HTTP). */
  const CODE_STATUS = {
    bad_request: 400, bad_json: 400, unauthorized: 401, forbidden: 403, csrf: 403, not_found: 404,
    method_not_allowed: 405, conflict: 409, too_large: 413, invalid: 422, rate_limited: 429,
    internal: 500, unavailable: 503,
  };

  /* Cursors are strings of digits of any length: compare them without going through Number, so a
   * very large id can never lose precision. */
  function cursorGreater(a, b) {
    a = String(a).replace(/^0+(?=\d)/, '');
    b = String(b).replace(/^0+(?=\d)/, '');
    return a.length !== b.length ? a.length > b.length : a > b;
  }

  function isCursor(v) {
    return typeof v === 'string' ? /^\d+$/.test(v) : Number.isSafeInteger(v) && v >= 0;
  }

  /* A Retry-After header (delta-seconds or an HTTP date) in milliseconds; 0 when there is none. */
  function retryAfterMs(res) {
    const v = (res.headers.get('Retry-After') || '').trim();
    if (/^\d+$/.test(v)) return Number(v) * 1000;
    const at = v ? Date.parse(v) : NaN;
    return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
  }

  class HttpError extends Error {
    constructor(res) {
      super('HTTP ' + res.status);
      this.status = res.status;
      this.retryAfterMs = retryAfterMs(res); // with a 429: wait at least this before trying again
    }
  }

  /* A WebSocket action that did not succeed. `status`/`code`: the server refused it (an error
   * reply, with the codes of API.md; `retryAfterMs` with a rate limit's `retry_after`). `sent`:
   * false when it never left the browser; true without a status when its fate is unknown (the
   * socket died, or no answer came in time: the server may or may not have done it; a `send` with
   * its `key` can then be done again, over HTTP or a new socket, and is stored once). */
  class ActionError extends Error {
    constructor(message, o) {
      super(message);
      this.code = o.code || 'error';
      this.status = o.status || 0;
      this.sent = !!o.sent;
      this.retryAfterMs = o.retryAfterMs || 0;
    }
  }

  function notConnected() {
    return new ActionError('not connected', {code: 'not_connected', sent: false});
  }

  function available(name) {
    if (name === 'ws') return typeof window.WebSocket === 'function';
    if (name === 'sse') return typeof window.EventSource === 'function';
    return true;
  }

  function remembered() {
    try {
      return sessionStorage.getItem(STORE_KEY);
    } catch (e) {
      return null;
    }
  }

  function remember(name) {
    try {
      sessionStorage.setItem(STORE_KEY, name);
    } catch (e) { /* storage disabled: the choice lasts as long as the page */ }
  }

  function safeCall(fn, arg, what) {
    if (!fn) return;
    try {
      fn(arg);
    } catch (e) {
      // A bug in a page handler must not kill the push loop.
      console.error('kefu: ' + what + ' failed', e);
    }
  }

  class KefuPush {
    constructor(options) {
      const opts = options || {};
      const forced = opts.transport && opts.transport !== 'auto' ? opts.transport : null;
      if (forced && !Object.prototype.hasOwnProperty.call(KefuPush.transports, forced)) {
        throw new Error('kefu: unknown push transport "' + forced + '"');
      }
      this.forced = forced;
      this.order = forced ? [forced] : AUTO_ORDER.filter((n) => KefuPush.transports[n] && available(n));
      this.auth = opts.auth || {cookie: true};
      this.cursor = isCursor(opts.cursor) ? String(opts.cursor) : '0';
      this.onEvent = opts.onEvent || function () {};
      this.onState = opts.onState || function () {};
      this.onTransport = opts.onTransport || null;
      this.onResync = opts.onResync || null;
      this.onAuthError = opts.onAuthError || null;
      this.base = opts.base || '';
      this.state = null;
      this.stopped = false;
      this.seen = new Set();

      this.attempt = 0;        // failures since the last success, for the backoff
      this.cycle = 0;          // bumps on every open and every failure: late timers check it
      this.isUp = false;       // the stream works right now (it has delivered an event)
      this.cycleUp = false;    // ...at some point since the last open()
      this.everUp = false;
      this.gap = false;        // the stream was down since the last up()
      this.upAt = 0;
      this.attemptAtUp = 0;
      this.flaps = 0;          // connections in a row that dropped within STABLE_MS
      this.strikes = 0;        // failed opens of this transport while the server was reachable
      this.nativeRetries = 0;  // EventSource reconnecting by itself without success
      this.retryTimer = null;
      this.retryHeld = false;  // the retry waits for a 429's Retry-After
      this.openTimer = null;
      this.graceTimer = null;
      this.upgradeTimer = null;
      this.upgradeDelay = timing.upgradeFirstMs;
      this.transport = null;
      this.transportName = null;

      const saved = remembered();
      this._use(forced || (this.order.indexOf(saved) !== -1 ? saved : this.order[0]));

      this._onOffline = () => {
        if (this.stopped) return;
        this._lost(true);
        this.cycle++;
        this._clearTimers();
        this.transport.close();
        this._setState('offline');
      };
      this._onOnline = () => {
        if (this.stopped) return;
        this._lost(true);
        this.attempt = 0;
        this.cycle++;
        this._clearTimers();
        this.transport.close();
        this._showTrouble(); // "offline" stays up to GRACE_MS: the reconnect is usually quicker
        this._open();
      };
      // Back from the back/forward cache: whatever connection the page had is gone.
      this._onPageShow = (e) => {
        if (e.persisted) this._onOnline();
      };
      window.addEventListener('offline', this._onOffline);
      window.addEventListener('online', this._onOnline);
      window.addEventListener('pageshow', this._onPageShow);

      if (navigator.onLine === false) {
        this._setState('offline');
      } else {
        this._setState('connecting');
        this._open();
      }
    }

    stop() {
      if (this.stopped) return;
      this.stopped = true;
      this.cycle++;
      this._clearTimers();
      if (this.upgradeTimer) clearTimeout(this.upgradeTimer);
      this.upgradeTimer = null;
      this.transport.close();
      window.removeEventListener('offline', this._onOffline);
      window.removeEventListener('online', this._onOnline);
      window.removeEventListener('pageshow', this._onPageShow);
    }

    /* The page has just heard from the server another way (an HTTP call of its own went through):
     * if the stream is waiting out its backoff, it comes back now. Not after a 429: that wait is
     * the server's. */
    nudge() {
      if (this.stopped || !this.retryTimer || this.retryHeld) return;
      this._clearRetry();
      this._open();
    }

    /* Can actions go over the push connection right now (an open WebSocket)? Otherwise the page
     * uses its HTTP endpoints. */
    canSend() {
      return !this.stopped && this.isUp && typeof this.transport.send === 'function' && this.transport.canSend();
    }

    /* One action over the WebSocket: {type: 'send', body, key?, conversation_id?}, {type: 'read',
     * up_to, conversation_id?}, {type: 'typing', typing, conversation_id?}, {type: 'ping'} (the
     * client adds the `ref`). Resolves with the server's ack ({type: 'ack', ref, message?}), at
     * once for typing (which has no reply); rejects with a KefuPush.ActionError. */
    send(action) {
      if (!this.canSend()) return Promise.reject(notConnected());
      return this.transport.send(action);
    }

    /* ---- the interface transports use ---- */

    /* An absolute-path URL with the cursor and any extra query parameters. */
    url(path, extra) {
      const params = new URLSearchParams({after: this.cursor});
      if (extra) for (const k of Object.keys(extra)) params.set(k, extra[k]);
      return this.base + path + '?' + params.toString();
    }

    /* fetch() options carrying the credentials. */
    fetchInit(init) {
      const out = Object.assign({credentials: 'same-origin', cache: 'no-store'}, init || {});
      const headers = new Headers(out.headers || {});
      headers.set('Accept', 'application/json');
      if (this.auth.bearer) headers.set('Authorization', 'Bearer ' + this.auth.bearer);
      out.headers = headers;
      return out;
    }

    /* GET path?after=cursor, parsed as JSON; throws HttpError on a non-2xx answer. */
    async getJSON(path, extra, signal) {
      const res = await fetch(this.url(path, extra), this.fetchInit({signal}));
      if (!res.ok) throw new HttpError(res);
      return res.json();
    }

    /* A short-lived ticket for transports that cannot send headers (iframe, EventSource,
     * WebSocket). Visitors must use one (their token must not sit in a URL); an agent's cookie
     * travels with the request by itself, so agents get null. */
    async ticket() {
      if (!this.auth.bearer) return null;
      const res = await fetch(this.base + '/api/visitor/push-ticket', this.fetchInit({
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: '{}',
      }));
      if (!res.ok) throw new HttpError(res);
      const data = await res.json();
      return data.ticket;
    }

    /* The stream works (it delivered an event, or the server answered): reset the backoff. */
    up() {
      if (this.stopped) return;
      this.nativeRetries = 0;
      if (this.isUp) return;
      this.isUp = true;
      this.cycleUp = true;
      this._clearOpenTimer();
      this._clearGrace();
      this.upAt = Date.now();
      this.attemptAtUp = this.attempt;
      this.attempt = 0;
      this.strikes = 0;
      this.everUp = true;
      this._setState('connected');
      if (!this.forced) {
        remember(this.transportName);
        this._scheduleUpgrade();
      }
      if (this.gap) {
        this.gap = false;
        safeCall(this.onResync, undefined, 'onResync');
      }
    }

    /* The stream failed; the transport is closed by this call. Retry after a backoff, fall back to
     * another transport, or stop on an authentication failure, which retrying cannot fix. A 429
     * (err.status, with err.retryAfterMs) says nothing against the transport: wait, and retry it. */
    down(err) {
      if (this.stopped) return;
      err = err || new Error('push stream failed');
      const wasUp = this.cycleUp;
      const tooMany = err.status === 429;
      this._lost(!!err.immediate || tooMany);
      this.cycle++;
      this._clearTimers();
      this.transport.close();
      if (err.status === 401) {
        this._authFailed();
        return;
      }
      if (navigator.onLine === false) {
        this._setState('offline');
        return; // the 'online' event reopens
      }
      this._showTrouble();
      if (tooMany) {
        this._tooMany(err.retryAfterMs);
      } else if (!wasUp) {
        this._openFailed(err, false);
      } else if (!this.forced && this.flaps >= MAX_FLAPS) {
        this._openFailed(err, true);
      } else if (err.immediate) {
        // The server asked us to come back at once (WebSocket close 1001: it is restarting).
        this.attempt = 0;
        this._open();
      } else {
        this._retry();
      }
    }

    /* The stream broke but the transport is reconnecting by itself (EventSource does). */
    interrupted() {
      if (this.stopped) return;
      this._lost(false);
      this._showTrouble();
      if (!this.forced && this.flaps >= MAX_FLAPS) {
        this.down(new Error('the event stream keeps dropping'));
        return;
      }
      // With the server gone, EventSource would retry every 2 s for ever: after a few attempts
      // take over, with our backoff.
      if (++this.nativeRetries >= SSE_NATIVE_RETRIES) {
        this.down(new Error('the event stream does not come back'));
        return;
      }
      // The browser's own reconnect is an open like ours: it must deliver within the open
      // timeout too, or a proxy that starts buffering mid-session would leave it stuck for ever.
      this.cycleUp = false;
      this._armOpenTimer();
    }

    /* Ask for an immediate reopen with the current cursor (e.g. the server sent `reconnect`). */
    reopen() {
      if (this.stopped) return;
      this._lost(true);
      this.cycle++;
      this._clearTimers();
      this.transport.close();
      this._open();
    }

    /* One event from the wire. */
    receive(event) {
      if (this.stopped || !event || typeof event !== 'object') return;
      if (event.type === 'heartbeat' || event.type === 'reconnect') return; // transport business
      if (event.type === 'message') {
        const msg = event.message || {};
        const key = String(msg.id != null ? msg.id : event.id);
        if (this.seen.has(key)) return; // replayed after a reconnect, or sent twice
        this.seen.add(key);
        if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
        /* The cursor moves only with message events, and only forwards: it names a position in
         * the message store, which is all the server can replay from. Conversation and read
         * events carry no id (they are not replayed), and an older message id arriving late must
         * not wind the cursor back, or the next request would fetch messages again. */
        if (isCursor(event.id) && cursorGreater(event.id, this.cursor)) this.cursor = String(event.id);
      }
      safeCall(this.onEvent, event, 'onEvent');
    }

    /* ---- internals ---- */

    /* Switch to another transport (the old one is closed). */
    _use(name) {
      if (this.transport) this.transport.close();
      this.transportName = name;
      this.transport = new KefuPush.transports[name](this);
      this.strikes = 0;
      this.flaps = 0;
      safeCall(this.onTransport, name, 'onTransport');
    }

    _open() {
      if (this.stopped) return;
      ++this.cycle;
      this.cycleUp = false;
      this.nativeRetries = 0;
      this._armOpenTimer();
      const cycle = this.cycle;
      try {
        const p = this.transport.open();
        if (p && typeof p.catch === 'function') {
          p.catch((e) => {
            if (cycle === this.cycle) this.down(e);
          });
        }
      } catch (e) {
        this.down(e);
      }
    }

    /* The stream now opening must deliver its first event within the open timeout, or it counts
     * as silent: opened, perhaps, but held back (a proxy that buffers the response). */
    _armOpenTimer() {
      const cycle = this.cycle;
      this._clearOpenTimer();
      const limit = this.forced ? timing.openTimeoutForcedMs : timing.openTimeoutMs;
      this.openTimer = setTimeout(() => {
        this.openTimer = null;
        if (cycle !== this.cycle || this.cycleUp) return;
        const err = new Error('no event within ' + limit + ' ms');
        err.silent = true;
        this.down(err);
      }, limit);
    }

    /* A connection that was up is gone. Counts early drops (flapping) and keeps the backoff
     * growing across them: an open that succeeds only to drop at once must not reset it. */
    _lost(planned) {
      if (!this.isUp) return;
      this.isUp = false;
      this.gap = true;
      if (planned) return;
      if (Date.now() - this.upAt < STABLE_MS) {
        this.flaps++;
        this.attempt = Math.max(this.attempt, this.attemptAtUp);
      } else {
        this.flaps = 0;
      }
    }

    /* The transport could not open (or keeps dropping). Is the server there at all? A plain
     * GET /push/poll tells: 401 ends the session; 429 means we were refused, not the transport
     * (see _probeServer); an answer means this transport does not work here (a proxy strips
     * Upgrade, buffers the stream, ...); no answer means the server or the network is down, which
     * no other transport would fix. */
    async _openFailed(err, flapping) {
      const cycle = this.cycle;
      const probe = err.status === 401 ? {status: 401} : await this._probeServer();
      if (this.stopped || cycle !== this.cycle) return; // reopened meanwhile (e.g. back online)
      const status = probe.status;
      if (status === 401) {
        this._authFailed();
        return;
      }
      if (status === 429) {
        this._tooMany(probe.retryAfterMs);
        return;
      }
      if (!this.forced && status >= 200 && status < 300) {
        this.strikes++;
        // A silent stream or a flapping one is a property of the path; an error on open may be
        // a fluke, so that needs two in a row.
        if ((err.silent || flapping || this.strikes >= 2) && this._fallback(err)) return;
      }
      this._retry();
    }

    /* {status, retryAfterMs} of GET /push/poll (status 0: no answer). A poll is answered at once
     * and never counted among the listener's open push connections, so when it is answered 2xx
     * and the transport that failed holds a connection open, GET /push/ws (without Upgrade) asks
     * what that connection was asked: the server checks the listener's limit before the
     * handshake, so it answers 429 when other tabs hold every allowed connection (the browser
     * shows no status of a refused WebSocket or EventSource), and 426 otherwise, holding
     * nothing. Only its 429 is taken: anything else leaves the poll's answer standing. */
    async _probeServer() {
      let probe = await this._probe('/push/poll');
      if (probe.status >= 200 && probe.status < 300 && this.transportName !== 'poll') {
        const held = await this._probe('/push/ws');
        if (held.status === 429) probe = held;
      }
      return probe;
    }

    async _probe(path) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), PROBE_TIMEOUT_MS);
      try {
        const res = await fetch(this.url(path), this.fetchInit({signal: ctrl.signal}));
        res.arrayBuffer().catch(() => {});
        return {status: res.status, retryAfterMs: retryAfterMs(res)};
      } catch (e) {
        return {status: 0, retryAfterMs: 0};
      } finally {
        clearTimeout(timer);
      }
    }

    /* A 429: the server refused us for now (too many requests, or too many push connections open
     * in other tabs), which is no fault of the transport. Wait at least retryAfterMs (at least
     * TOO_MANY_MIN_MS without one), or the backoff when it is longer, and try the same one. */
    _tooMany(retryAfter) {
      console.info('kefu: push refused for now (429); trying again in ' + Math.round((retryAfter || TOO_MANY_MIN_MS) / 1000) + ' s or more');
      this._retry(Math.max(retryAfter || 0, TOO_MANY_MIN_MS));
    }

    /* Move to the next transport in AUTO_ORDER; false when there is none. */
    _fallback(err) {
      const i = this.order.indexOf(this.transportName);
      if (i < 0 || i + 1 >= this.order.length) return false;
      const next = this.order[i + 1];
      console.info('kefu: push over ' + this.transportName + ' failed (' + (err && err.message) + '); trying ' + next);
      this._use(next);
      this.attempt = 0;
      this._open();
      return true;
    }

    /* On a fallback transport, try the better ones now and then, in the background: a probe
     * connection that only has to deliver its first event; if it does, switch to it. */
    _scheduleUpgrade() {
      if (this.forced || this.stopped || this.upgradeTimer) return;
      if (this.order.indexOf(this.transportName) <= 0) return;
      this.upgradeTimer = setTimeout(() => {
        this.upgradeTimer = null;
        this._tryUpgrade();
      }, this.upgradeDelay);
    }

    async _tryUpgrade() {
      const current = this.transportName;
      const idx = this.order.indexOf(current);
      if (this.stopped || idx <= 0) return;
      if (this.isUp && navigator.onLine !== false) {
        for (let i = 0; i < idx; i++) {
          const ok = await this._probeTransport(this.order[i]);
          if (this.stopped || this.transportName !== current) return;
          if (ok) {
            console.info('kefu: push over ' + this.order[i] + ' works again; switching from ' + current);
            this.upgradeDelay = timing.upgradeFirstMs;
            this._lost(true);
            this.cycle++;
            this._clearTimers();
            this._use(this.order[i]);
            this.attempt = 0;
            this._open();
            return;
          }
        }
      }
      this.upgradeDelay = Math.min(this.upgradeDelay * 2, timing.upgradeMaxMs);
      this._scheduleUpgrade();
    }

    /* Opens transport `name` beside the current one with a host of its own that only listens for
     * the first event. Resolves true if it came within PROBE_TIMEOUT_MS. */
    _probeTransport(name) {
      const parent = this;
      return new Promise((resolve) => {
        let done = false;
        let transport = null;
        const finish = (ok) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (transport) transport.close();
          resolve(ok);
        };
        const host = {
          stopped: false,
          isUp: false,
          state: 'connecting',
          get cursor() { return parent.cursor; },
          url: (path, extra) => parent.url(path, extra),
          fetchInit: (init) => parent.fetchInit(init),
          getJSON: (path, extra, signal) => parent.getJSON(path, extra, signal),
          ticket: () => parent.ticket(),
          up: () => finish(true),
          down: () => finish(false),
          interrupted: () => finish(false),
          reopen: () => finish(false),
          receive: () => {},
        };
        const timer = setTimeout(() => finish(false), PROBE_TIMEOUT_MS);
        try {
          transport = new KefuPush.transports[name](host);
          const p = transport.open();
          if (p && typeof p.catch === 'function') p.catch(() => finish(false));
        } catch (e) {
          finish(false);
        }
      });
    }

    _authFailed() {
      if (this.onAuthError) {
        this.stop();
        safeCall(this.onAuthError, undefined, 'onAuthError');
        return;
      }
      this._retry();
    }

    /* Exponential backoff with full jitter: a random delay in [0, min(15 s, 0.5 s × 2^attempt)),
     * so that many clients dropped at once do not come back at once; at least minMs. */
    _retry(minMs) {
      if (this.stopped) return;
      this._clearRetry();
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.attempt));
      this.attempt++;
      const delay = Math.max(minMs || 0, Math.floor(Math.random() * cap));
      this.retryHeld = !!minMs; // a wait the server asked for: nudge() leaves it alone
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this._open();
      }, delay);
    }

    /* Shows that the stream is down, quietly: never-connected stays "connecting"; from
     * "connected" (a drop) or "offline" (the network is back), "reconnecting" shows only if the
     * stream is not back within GRACE_MS. */
    _showTrouble() {
      if (!this.everUp) {
        this._setState('connecting');
      } else if (this.state === 'connected' || this.state === 'offline') {
        if (this.graceTimer) return;
        this.graceTimer = setTimeout(() => {
          this.graceTimer = null;
          if (this.stopped || this.isUp) return;
          this._setState(navigator.onLine === false ? 'offline' : 'reconnecting');
        }, GRACE_MS);
      } else {
        this._setState('reconnecting');
      }
    }

    _clearRetry() {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }

    _clearOpenTimer() {
      if (this.openTimer) clearTimeout(this.openTimer);
      this.openTimer = null;
    }

    _clearGrace() {
      if (this.graceTimer) clearTimeout(this.graceTimer);
      this.graceTimer = null;
    }

    _clearTimers() {
      this._clearRetry();
      this._clearOpenTimer();
      this._clearGrace();
    }

    _setState(state) {
      if (state !== 'reconnecting') this._clearGrace();
      if (state === this.state) return;
      this.state = state;
      safeCall(this.onState, state, 'onState');
    }
  }

  /* ---- transports ----
   * A transport is constructed with its client (`host`) and then opened and closed any number of
   * times. open() starts it from host.cursor; it reports host.up() whenever it hears from the
   * server, host.receive(event) for each event, host.down(err) when it fails (the host then closes
   * it and decides what next), host.interrupted() when it lost the stream but is reconnecting by
   * itself, and host.reopen() when the server asks for a fresh stream. close() must stop
   * everything and be safe to call twice. A generation counter makes late callbacks of an earlier
   * open() harmless. A transport that can carry actions has send(action) and canSend(). */

  /* Poll and long-poll answers carry `eseq`, the number of the newest ephemeral event (typing,
   * read, conversation) the client has; sent back, it brings those published between two requests
   * (PROTOCOL.md). Kept across reopens: after a short drop they still come. */
  function eseqQuery(eseq) {
    return eseq !== null ? {eseq} : null;
  }

  /* The eseq to send next: the answer's, or the one we had when it has none. */
  function answerEseq(data, eseq) {
    return data && typeof data.eseq === 'string' && isCursor(data.eseq) ? data.eseq : eseq;
  }

  /* Plain polling: one request every 2 s. The costliest way to push; kept for restrictive
   * networks and for comparison. */
  class PollTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.timer = null;
      this.ctrl = null;
      this.eseq = null;
    }

    open() {
      const gen = ++this.gen;
      this._tick(gen);
    }

    async _tick(gen) {
      this.ctrl = new AbortController();
      try {
        const data = await this.host.getJSON('/push/poll', eseqQuery(this.eseq), this.ctrl.signal);
        if (gen !== this.gen) return;
        this.eseq = answerEseq(data, this.eseq);
        this.host.up();
        for (const ev of data.events || []) this.host.receive(ev);
        if (gen !== this.gen) return;
        this.timer = setTimeout(() => this._tick(gen), POLL_INTERVAL_MS);
      } catch (e) {
        if (gen === this.gen) this.host.down(e);
      }
    }

    close() {
      this.gen++;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
    }
  }

  /* Long polling: the server holds the request until there is news (or ~25 s), and we ask again
   * at once after each answer. */
  class LongpollTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.ctrl = null;
      this.timer = null;
      this.eseq = null;
    }

    open() {
      const gen = ++this.gen;
      this._loop(gen);
    }

    async _loop(gen) {
      let first = true;
      while (gen === this.gen) {
        const ctrl = new AbortController();
        this.ctrl = ctrl;
        // A request the network silently dropped would otherwise hang forever.
        const guard = setTimeout(() => ctrl.abort(), LONGPOLL_CLIENT_TIMEOUT_MS);
        const started = Date.now();
        let data;
        try {
          // With nothing to deliver the server holds a request ~25 s, and until an answer comes
          // we cannot tell a held request from a lost one. So the first request after opening
          // is a plain poll, answered at once: "connected" then means the server has answered us
          // (and the replay after the cursor is in).
          data = await this.host.getJSON(first ? '/push/poll' : '/push/longpoll', eseqQuery(this.eseq), ctrl.signal);
        } catch (e) {
          clearTimeout(guard);
          if (gen === this.gen) this.host.down(e);
          return;
        } finally {
          clearTimeout(guard);
        }
        if (gen !== this.gen) return;
        this.eseq = answerEseq(data, this.eseq);
        this.host.up();
        const events = data.events || [];
        for (const ev of events) this.host.receive(ev);
        // An empty answer should take ~25 s; if one comes back at once (a misbehaving proxy or
        // server) pause a moment instead of spinning.
        if (!first && events.length === 0 && Date.now() - started < 1000) {
          await new Promise((resolve) => { this.timer = setTimeout(resolve, 1000); });
        }
        first = false;
      }
    }

    close() {
      this.gen++;
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /* An iframe that ended on a JSON error answer (same origin, so readable): 401 for
   * "unauthorized", so the client stops instead of retrying with a dead session; 429 for a limit
   * (its Retry-After is not readable here: the client waits its minimum). */
  function errorStatus(frame) {
    try {
      const data = JSON.parse(frame.contentDocument.body.textContent);
      const code = data && data.error && data.error.code;
      if (code === 'unauthorized') return 401;
      if (code === 'rate_limited' || code === 'too_many_connections') return 429;
    } catch (e) { /* not JSON, or not readable */ }
    return 0;
  }

  /* The "forever frame": a hidden iframe whose never-ending HTML response calls
   * window.kefuPush(event) from one <script> per event. There is one window.kefuPush per page,
   * so only one iframe client can run per page. */
  class IframeTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.frame = null;
      this.watchdog = null;
      this.lastSeen = 0;
    }

    async open() {
      const gen = ++this.gen;
      let ticket;
      try {
        ticket = await this.host.ticket();
      } catch (e) {
        if (gen === this.gen) this.host.down(e);
        return;
      }
      if (gen !== this.gen) return;

      window.kefuPush = (event) => {
        if (gen !== this.gen) return;
        this.lastSeen = Date.now();
        this.host.up();
        if (event && event.type === 'reconnect') {
          // The server ends this response (after ~1 MiB); continue in a fresh one from our cursor.
          this.host.reopen();
          return;
        }
        this.host.receive(event);
      };

      const frame = document.createElement('iframe');
      frame.className = 'kefu-push-frame';
      frame.hidden = true;
      frame.tabIndex = -1;
      frame.title = window.KefuI18n.t('push.frameTitle'); // hidden, but a frame has a name
      frame.setAttribute('aria-hidden', 'true');
      // The response never ends while healthy, so `load` means it ended without a `reconnect`
      // (server shutdown, proxy timeout, an error answer): treat that as a failure. (A stream cut
      // off mid-response fires nothing at all; the silence watchdog below catches that.)
      const fail = () => {
        if (gen !== this.gen) return;
        const err = new Error('iframe stream ended');
        err.status = errorStatus(frame);
        this.host.down(err);
      };
      frame.addEventListener('load', fail);
      frame.addEventListener('error', fail);
      frame.src = this.host.url('/push/iframe', ticket ? {ticket} : null);
      this.frame = frame;
      this.lastSeen = Date.now();
      document.body.appendChild(frame);

      this.watchdog = setInterval(() => {
        if (gen !== this.gen) return;
        if (Date.now() - this.lastSeen > IFRAME_SILENCE_MS) {
          this.host.down(new Error('iframe stream silent'));
          return;
        }
        // Until the first event arrives we cannot hear from the stream, but we can see that its
        // document is committed and still loading (i.e. the server is streaming to us).
        if (!this.host.isUp) {
          try {
            const doc = frame.contentDocument;
            if (doc && doc.readyState === 'loading' && doc.URL.indexOf('/push/iframe') !== -1) {
              this.host.up();
            }
          } catch (e) { /* not readable yet */ }
        }
      }, 250);
    }

    close() {
      this.gen++;
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
      if (this.frame) {
        const frame = this.frame;
        this.frame = null;
        frame.src = 'about:blank'; // ends the HTTP response before the element goes away
        frame.remove();
      }
    }
  }

  /* Server-Sent Events: one EventSource. Every event type of PROTOCOL.md comes as a named event
   * (`event: message`, `event: typing`, ...), so each needs its own listener: onmessage alone
   * would only see the unnamed ones. When the stream breaks, EventSource reconnects by itself
   * (after the server's `retry: 2000`) and sends Last-Event-ID, the id of the last message event,
   * which the server prefers to `after=`. When it gives up (readyState CLOSED: an HTTP error such
   * as 401 for a ticket that expired meanwhile, or a wrong content type) the host opens a new
   * EventSource with a fresh ticket and the current cursor. */
  const SSE_EVENTS = ['message', 'conversation', 'read', 'typing', 'presence', 'agent', 'mention', 'team', 'visitor', 'settings', 'rating', 'browsing', 'invite_rule', 'heartbeat', 'reconnect'];

  class SseTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.es = null;
      this.watchdog = null;
      this.lastEvent = 0;
      this.eventsSinceOpen = 0;
      this.periodic = false; // the server sends heartbeat events (not only comments) when idle
    }

    async open() {
      const gen = ++this.gen;
      let ticket;
      try {
        ticket = await this.host.ticket();
      } catch (e) {
        if (gen === this.gen) this.host.down(e);
        return;
      }
      if (gen !== this.gen) return;

      const es = new EventSource(this.host.url('/push/sse', ticket ? {ticket} : null));
      this.es = es;
      this.lastEvent = Date.now();
      this.eventsSinceOpen = 0;

      const onEvent = (e) => {
        if (gen !== this.gen) return;
        let ev;
        try {
          ev = JSON.parse(e.data);
        } catch (x) {
          return;
        }
        if (!ev || typeof ev !== 'object') return;
        if (!ev.type) ev.type = e.type;
        if (ev.type === 'message' && ev.id == null && e.lastEventId) ev.id = e.lastEventId;
        // A heartbeat that is not the first event of a stream is a keep-alive: then the server
        // sends them as events, and silence can be watched. (Comments are invisible to scripts.)
        if (ev.type === 'heartbeat' && this.eventsSinceOpen > 0) this.periodic = true;
        this.eventsSinceOpen++;
        this.lastEvent = Date.now();
        this.host.up();
        if (ev.type === 'heartbeat') return;
        if (ev.type === 'reconnect') {
          this.host.reopen();
          return;
        }
        this.host.receive(ev);
      };
      for (const type of SSE_EVENTS) es.addEventListener(type, onEvent);
      es.addEventListener('open', () => {
        if (gen !== this.gen) return;
        this.eventsSinceOpen = 0;
        this.lastEvent = Date.now();
      });
      es.addEventListener('error', () => {
        if (gen !== this.gen) return;
        if (es.readyState === EventSource.CLOSED) this.host.down(new Error('event stream closed'));
        else this.host.interrupted(); // CONNECTING: the browser is retrying by itself
      });

      this.watchdog = setInterval(() => {
        if (gen !== this.gen) return;
        if (this.periodic && es.readyState === EventSource.OPEN && Date.now() - this.lastEvent > SSE_SILENCE_MS) {
          this.host.down(new Error('event stream silent'));
        }
      }, 5000);
    }

    close() {
      this.gen++;
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
      if (this.es) this.es.close();
      this.es = null;
    }
  }

  /* WebSocket: JSON text frames both ways. Events come as on the other transports (starting with
   * a heartbeat); actions go up with a `ref` and come back as an `ack`/`error`/`pong` with it. An
   * application-level ping every 25 s must be answered within 10 s: a socket can look open long
   * after the network under it died (a phone changing networks, a NAT forgetting us). */
  class WsTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.ws = null;
      this.ready = false;     // the server has spoken on this socket
      this.pending = new Map(); // ref -> {resolve, reject, timer}
      this.seq = 0;
      this.pingTimer = null;
    }

    async open() {
      const gen = ++this.gen;
      let ticket;
      try {
        ticket = await this.host.ticket();
      } catch (e) {
        if (gen === this.gen) this.host.down(e);
        return;
      }
      if (gen !== this.gen) return;

      const url = new URL(this.host.url('/push/ws', ticket ? {ticket} : null), location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url.href);
      this.ws = ws;
      this.ready = false;
      ws.onopen = () => {
        if (gen !== this.gen) return;
        this.pingTimer = setInterval(() => this._ping(gen), WS_PING_MS);
      };
      ws.onmessage = (e) => {
        if (gen !== this.gen) return;
        this._frame(e.data);
      };
      ws.onclose = (e) => {
        if (gen !== this.gen) return;
        const err = new Error('WebSocket closed (' + e.code + (e.reason ? ': ' + e.reason : '') + ')');
        err.closeCode = e.code;
        // 1001: the server is going away (restarting); come back at once with the cursor.
        if (e.code === 1001) err.immediate = true;
        this.host.down(err);
      };
      ws.onerror = () => { /* a close event follows, with the code */ };
    }

    _frame(data) {
      if (typeof data !== 'string') return; // the protocol is JSON text
      let ev;
      try {
        ev = JSON.parse(data);
      } catch (e) {
        return;
      }
      if (!ev || typeof ev !== 'object') return;
      if (ev.type === 'ack' || ev.type === 'error' || ev.type === 'pong') {
        this._settle(ev);
        return;
      }
      this.ready = true;
      this.host.up();
      if (ev.type === 'heartbeat') return;
      if (ev.type === 'reconnect') {
        this.host.reopen();
        return;
      }
      this.host.receive(ev);
    }

    _settle(ev) {
      const ref = ev.ref == null ? null : String(ev.ref);
      const p = ref !== null ? this.pending.get(ref) : null;
      if (!p) {
        if (ev.type === 'error') console.warn('kefu: WebSocket error reply', ev.error);
        return;
      }
      this.pending.delete(ref);
      clearTimeout(p.timer);
      if (ev.type === 'error') {
        const e = ev.error || {};
        p.reject(new ActionError(e.message || 'the server refused the request', {
          code: e.code, status: CODE_STATUS[e.code] || 400, sent: true,
          retryAfterMs: Number(e.retry_after) > 0 ? Number(e.retry_after) * 1000 : 0,
        }));
      } else {
        p.resolve(ev);
      }
    }

    canSend() {
      return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.ready;
    }

    send(action, timeoutMs) {
      if (!this.canSend()) return Promise.reject(notConnected());
      const ref = 'k' + (++this.seq);
      // The action's name travels in `type`, like an event's (`action` is accepted as an alias).
      const msg = Object.assign({}, action, {ref});
      if (msg.type == null && msg.action != null) msg.type = msg.action;
      delete msg.action;
      const frame = JSON.stringify(msg);
      if (msg.type === 'typing') {
        // No reply comes for typing.
        try {
          this.ws.send(frame);
        } catch (e) {
          return Promise.reject(notConnected());
        }
        return Promise.resolve({type: 'ack', ref});
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(ref);
          reject(new ActionError('no answer from the server in time', {code: 'timeout', sent: true}));
        }, timeoutMs || WS_ACK_TIMEOUT_MS);
        this.pending.set(ref, {resolve, reject, timer});
        try {
          this.ws.send(frame);
        } catch (e) {
          clearTimeout(timer);
          this.pending.delete(ref);
          reject(notConnected());
        }
      });
    }

    _ping(gen) {
      if (gen !== this.gen || !this.canSend()) return;
      this.send({type: 'ping'}, WS_PONG_TIMEOUT_MS).catch((e) => {
        if (gen !== this.gen || e.code !== 'timeout') return;
        this.host.down(new Error('no pong within ' + WS_PONG_TIMEOUT_MS + ' ms'));
      });
    }

    close() {
      this.gen++;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      this.ready = false;
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
        } catch (e) { /* already closing */ }
      }
      const pending = Array.from(this.pending.values());
      this.pending.clear();
      for (const p of pending) {
        clearTimeout(p.timer);
        p.reject(new ActionError('the connection was lost before the server answered', {code: 'connection_lost', sent: true}));
      }
    }
  }

  KefuPush.transports = {
    ws: WsTransport,
    sse: SseTransport,
    longpoll: LongpollTransport,
    poll: PollTransport,
    iframe: IframeTransport,
  };
  KefuPush.AUTO_ORDER = AUTO_ORDER.slice();
  KefuPush.timing = timing;
  KefuPush.HttpError = HttpError;
  KefuPush.ActionError = ActionError;
  KefuPush.cursorGreater = cursorGreater;
  KefuPush.retryAfterMs = retryAfterMs;

  /* The transport forced by ?transport= in the page's URL (when it names a known one), else
   * `fallback` (default null: choose automatically). */
  KefuPush.transportFromURL = function (fallback) {
    const t = new URLSearchParams(location.search).get('transport');
    return t && Object.prototype.hasOwnProperty.call(KefuPush.transports, t) ? t : (fallback || null);
  };

  window.KefuPush = KefuPush;
})();
