/* kefu.js: the push client shared by the visitor page and the agent console.
 *
 *   const push = new KefuPush({
 *     transport: 'longpoll',          // 'poll' | 'longpoll' | 'iframe' (see KefuPush.transports)
 *     cursor: '42',                    // newest message id the page already has ('0': none)
 *     auth: {bearer: token} | {cookie: true},
 *     onEvent(event) {},               // message / conversation / read events (see docs/API.md "Push")
 *     onState(state) {},               // 'connecting' | 'connected' | 'reconnecting' | 'offline'
 *     onAuthError() {},                // optional: the server answered 401; the client has stopped
 *   });
 *   push.stop();
 *
 * The client owns everything the transports have in common: the cursor, de-duplication, the
 * connection state, and retrying with exponential backoff. A transport only knows how to open one
 * stream (or request loop) and report what happens on it, so SSE and WebSocket can later be added
 * as two more entries in KefuPush.transports without touching the pages. */
(function () {
  'use strict';

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const POLL_INTERVAL_MS = 2000;
  const LONGPOLL_CLIENT_TIMEOUT_MS = 40000; // the server answers after ~25 s; give it slack
  const IFRAME_SILENCE_MS = 45000;          // heartbeats come every 20 s
  const SEEN_LIMIT = 5000;                  // message ids remembered for de-duplication

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

  class HttpError extends Error {
    constructor(status) {
      super('HTTP ' + status);
      this.status = status;
    }
  }

  class KefuPush {
    constructor(options) {
      const opts = options || {};
      const name = opts.transport || 'longpoll';
      const Transport = KefuPush.transports[name];
      if (!Transport) throw new Error('kefu: unknown push transport "' + name + '"');
      this.transportName = name;
      this.auth = opts.auth || {cookie: true};
      this.cursor = isCursor(opts.cursor) ? String(opts.cursor) : '0';
      this.onEvent = opts.onEvent || function () {};
      this.onState = opts.onState || function () {};
      this.onAuthError = opts.onAuthError || null;
      this.base = opts.base || '';
      this.state = null;
      this.stopped = false;
      this.attempt = 0;         // failures since the last success, for the backoff
      this.retryTimer = null;
      this.seen = new Set();
      this.transport = new Transport(this);

      this._onOffline = () => {
        this.transport.close();
        this._clearRetry();
        this._setState('offline');
      };
      this._onOnline = () => {
        if (this.stopped) return;
        this.attempt = 0;
        this._clearRetry();
        this.transport.close();
        this._setState('reconnecting');
        this._open();
      };
      window.addEventListener('offline', this._onOffline);
      window.addEventListener('online', this._onOnline);

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
      this._clearRetry();
      this.transport.close();
      window.removeEventListener('offline', this._onOffline);
      window.removeEventListener('online', this._onOnline);
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
      if (!res.ok) throw new HttpError(res.status);
      return res.json();
    }

    /* A short-lived ticket for transports that cannot send headers (iframe, later EventSource).
     * Visitors must use one (their token must not sit in a URL); an agent's cookie travels with
     * the request by itself, so agents get null. */
    async ticket() {
      if (!this.auth.bearer) return null;
      const res = await fetch(this.base + '/api/visitor/push-ticket', this.fetchInit({
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: '{}',
      }));
      if (!res.ok) throw new HttpError(res.status);
      const data = await res.json();
      return data.ticket;
    }

    /* The stream works: reset the backoff. */
    up() {
      if (this.stopped) return;
      this.attempt = 0;
      this._setState('connected');
    }

    /* The stream failed; the transport has cleaned up. Retry after a backoff, unless it was an
     * authentication failure, which retrying cannot fix. */
    down(err) {
      if (this.stopped) return;
      this.transport.close();
      if (err && err.status === 401 && this.onAuthError) {
        this.stop();
        this.onAuthError();
        return;
      }
      if (navigator.onLine === false) {
        this._setState('offline');
        return; // the 'online' event reopens
      }
      this._setState('reconnecting');
      this._retry();
    }

    /* Ask for an immediate reopen with the current cursor (e.g. the server sent `reconnect`). */
    reopen() {
      if (this.stopped) return;
      this._clearRetry();
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
      try {
        this.onEvent(event);
      } catch (e) {
        // A bug in a page handler must not kill the push loop.
        console.error('kefu: onEvent failed', e);
      }
    }

    /* ---- internals ---- */

    _open() {
      if (this.stopped) return;
      try {
        this.transport.open();
      } catch (e) {
        this.down(e);
      }
    }

    _retry() {
      this._clearRetry();
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.attempt));
      this.attempt++;
      // Jitter (50–100 % of the step) so that many clients dropped at once do not return at once.
      const delay = Math.round(base * (0.5 + Math.random() * 0.5));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this._open();
      }, delay);
    }

    _clearRetry() {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }

    _setState(state) {
      if (state === this.state) return;
      this.state = state;
      try {
        this.onState(state);
      } catch (e) {
        console.error('kefu: onState failed', e);
      }
    }
  }

  /* ---- transports ----
   * A transport is constructed once with its client (`host`) and then opened and closed any
   * number of times. open() starts it from host.cursor; it reports host.up() once it works,
   * host.receive(event) for each event, and host.down(err) when it fails (after which the host
   * closes it and calls open() again later). close() must stop everything and be safe to call
   * twice. A generation counter makes late callbacks of an earlier open() harmless. */

  /* Plain polling: one request every 2 s. The costliest way to push; kept for restrictive
   * networks and for comparison. */
  class PollTransport {
    constructor(host) {
      this.host = host;
      this.gen = 0;
      this.timer = null;
      this.ctrl = null;
    }

    open() {
      const gen = ++this.gen;
      this._tick(gen);
    }

    async _tick(gen) {
      this.ctrl = new AbortController();
      try {
        const data = await this.host.getJSON('/push/poll', null, this.ctrl.signal);
        if (gen !== this.gen) return;
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
          // asks to be held 1 s at most: "connected" then means the server has answered us.
          data = await this.host.getJSON('/push/longpoll', first ? {timeout: 1} : null, ctrl.signal);
        } catch (e) {
          clearTimeout(guard);
          if (gen === this.gen) this.host.down(e);
          return;
        } finally {
          clearTimeout(guard);
        }
        if (gen !== this.gen) return;
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
   * "unauthorized", so the client stops instead of retrying with a dead session. */
  function errorStatus(frame) {
    try {
      const data = JSON.parse(frame.contentDocument.body.textContent);
      if (data && data.error && data.error.code === 'unauthorized') return 401;
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
      frame.title = 'push channel';
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
        if (this.host.state !== 'connected') {
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

  KefuPush.transports = {
    poll: PollTransport,
    longpoll: LongpollTransport,
    iframe: IframeTransport,
  };
  KefuPush.HttpError = HttpError;
  KefuPush.cursorGreater = cursorGreater;

  /* The transport a page should use: ?transport= from its URL when it names a known one. */
  KefuPush.transportFromURL = function (fallback) {
    const t = new URLSearchParams(location.search).get('transport');
    return t && Object.prototype.hasOwnProperty.call(KefuPush.transports, t) ? t : (fallback || 'longpoll');
  };

  window.KefuPush = KefuPush;
})();
