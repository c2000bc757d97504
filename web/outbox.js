/* outbox.js: the messages a page has taken from its user and the server has not yet confirmed.
 * They are kept in localStorage (so they survive a reload), sent one at a time in the order they
 * were written, each with its own idempotency key (so sending one again after a lost answer can
 * never store it twice), retried with backoff while the failure is one that passes (no network, a
 * server restarting or overloaded), and held as failed when the server refuses one for good.
 *
 *   const outbox = new KefuOutbox({
 *     storageKey: 'kefu.outbox.visitor',  // where the entries live (one list per sender)
 *     paused: false,            // true: nothing is sent before resume()
 *     send(entry, signal) {},   // sends it (entry.key is its idempotency key); resolves with the
 *                               // stored message; rejects with an error carrying `status` (0: no
 *                               // answer) and optionally `retryAfterMs`; `signal` aborts it
 *     onChange() {},            // the entries changed (added, sending, waiting, failed, gone)
 *     onDelivered(entry, message) {}, // the server has it: show `message`, the real one
 *     onAuthError(entry, err) {}, // a 401: the outbox pauses; the page renews its session and
 *                                 // calls resume() (the entry is sent again, with its key)
 *   });
 *   outbox.add({body, conversation_id, after});  // a new entry, sent as soon as it can be
 *   outbox.entries();          // the entries, oldest first (see Entry below)
 *   outbox.kick();             // the connection is back: try now, without the backoff
 *   outbox.retry(key);         // a failed entry is sent again
 *   outbox.discard(key);       // a failed (or waiting) entry is dropped
 *   outbox.pause(); outbox.resume(); outbox.stop();
 *
 * An entry: {key, body, conversation_id (agents), created_at (this browser's clock), after (the
 * newest message id the page had when it was written), attempts (sends begun, counted before each
 * leaves), state: 'sending' | 'waiting' | 'failed', error (why it failed or waits; for people),
 * code (a failed one's error code from the server, docs/API.md)}.
 * `state` is 'sending' while it is on its way or queued behind another, 'waiting' after a failure
 * that passes (it is retried by itself), 'failed' when the server refused it (422, 404, 403, ...):
 * it stays, unsent, until retry() or discard().
 *
 * Several tabs of one sender share the list: every change re-reads it before writing it back, so
 * no tab erases another's entries, and a tab adopts the entries another one adds (both may send
 * one; its key makes that harmless). */
(function () {
  'use strict';

  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const SEND_TIMEOUT_MS = 15000; // an HTTP send without an answer in this long is abandoned (and retried)

  /* Statuses that no retry can change: the request itself is refused. (401 is the session's, not
   * the message's: the page renews the session and the entry goes again.) */
  function refusedForGood(status) {
    return status === 400 || status === 403 || status === 404 || status === 409 || status === 413 ||
      status === 422;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    // Pages served over plain HTTP from another host than localhost have no randomUUID (it needs
    // a secure context); getRandomValues works everywhere.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  /* What is kept of an entry (the rest is this page's business). */
  function stored(e) {
    const o = {key: e.key, body: e.body, created_at: e.created_at, after: e.after, attempts: e.attempts};
    if (e.private) o.private = true; // a private note (agents only) stays one across reloads
    if (e.conversation_id != null) o.conversation_id = e.conversation_id;
    if (e.state === 'failed') {
      o.failed = true;
      o.error = e.error || '';
      if (e.code) o.code = e.code;
    }
    return o;
  }

  function revive(o) {
    if (!o || typeof o.key !== 'string' || typeof o.body !== 'string') return null;
    return {
      key: o.key,
      body: o.body,
      conversation_id: o.conversation_id != null ? Number(o.conversation_id) : null,
      created_at: Number(o.created_at) || Date.now(),
      after: Number(o.after) || 0,
      attempts: Number(o.attempts) || 0,
      private: o.private === true,
      state: o.failed ? 'failed' : 'sending',
      error: o.failed ? String(o.error || '') : null,
      code: o.failed && typeof o.code === 'string' ? o.code : null,
    };
  }

  class KefuOutbox {
    constructor(options) {
      const o = options || {};
      this.storageKey = o.storageKey;
      this.sendFn = o.send;
      this.onChange = o.onChange || function () {};
      this.onDelivered = o.onDelivered || function () {};
      this.onAuthError = o.onAuthError || null;
      this.list = [];           // entries, oldest first
      this.busy = null;         // the entry being sent
      this.ctrl = null;         // its AbortController
      this.kicked = false;      // kick() came while a send was under way
      this.failures = 0;        // transient failures in a row, for the backoff
      this.notBefore = 0;       // a 429's Retry-After: no send before this (Date.now() ms)
      this.timer = null;
      this.paused = !!o.paused;
      this.stopped = false;
      this.list = this._read();

      this._onStorage = (e) => {
        if (e.key !== this.storageKey || this.stopped) return;
        if (this._sync()) this._changed();
        this._pump();
      };
      this._onOnline = () => this.kick();
      window.addEventListener('storage', this._onStorage);
      window.addEventListener('online', this._onOnline);
      this._pump();
    }

    entries() {
      return this.list.slice();
    }

    get size() {
      return this.list.length;
    }

    /* A new message to send: {body, conversation_id?, after?, private?}. Returns its entry. */
    add(m) {
      const entry = {
        key: newKey(),
        body: m.body,
        conversation_id: m.conversation_id != null ? Number(m.conversation_id) : null,
        created_at: Date.now(),
        after: Number(m.after) || 0,
        private: m.private === true,
        attempts: 0,
        state: 'sending',
        error: null,
      };
      this._sync();
      this.list.push(entry);
      this._write();
      this._changed();
      this._pump();
      return entry;
    }

    /* Something suggests the way is clear again (the push connection is back, the browser is
     * online): try now instead of at the end of the backoff. A 429's Retry-After still holds. */
    kick() {
      if (this.stopped) return;
      this.failures = 0;
      if (this.busy) {
        this.kicked = true;
        return;
      }
      this._clearTimer();
      this._pump();
    }

    retry(key) {
      const entry = this._find(key);
      if (!entry || entry.state !== 'failed') return;
      this._sync();
      entry.state = 'sending';
      entry.error = null;
      this._write();
      this._changed();
      this.kick();
    }

    discard(key) {
      const entry = this._find(key);
      if (!entry || entry === this.busy) return;
      this._sync();
      this.list = this.list.filter((e) => e.key !== key);
      this._write();
      this._changed();
      this._pump();
    }

    pause() {
      this.paused = true;
      this._clearTimer();
    }

    resume() {
      if (this.stopped) return;
      this.paused = false;
      this.kick();
    }

    /* The page is done with this sender (logout): nothing more is sent; the entries stay stored. */
    stop() {
      this.stopped = true;
      this._clearTimer();
      if (this.ctrl) this.ctrl.abort();
      window.removeEventListener('storage', this._onStorage);
      window.removeEventListener('online', this._onOnline);
    }

    /* ---- internals ---- */

    _find(key) {
      return this.list.find((e) => e.key === key) || null;
    }

    _changed() {
      try {
        this.onChange();
      } catch (e) {
        console.error('kefu: outbox onChange failed', e);
      }
    }

    _read() {
      let raw = null;
      try {
        raw = localStorage.getItem(this.storageKey);
      } catch (e) {
        return this.list.slice(); // storage disabled: the entries live as long as the page
      }
      let data = null;
      try {
        data = raw ? JSON.parse(raw) : [];
      } catch (e) {
        data = [];
      }
      return (Array.isArray(data) ? data : []).map(revive).filter(Boolean);
    }

    _write() {
      try {
        if (this.list.length === 0) localStorage.removeItem(this.storageKey);
        else localStorage.setItem(this.storageKey, JSON.stringify(this.list.map(stored)));
      } catch (e) { /* full or disabled: the entries live as long as the page */ }
    }

    /* Brings the list in line with what is stored (another tab may have added, sent or dropped
     * entries). Ours keep their objects (the page may hold them); the one being sent stays even
     * if another tab has seen it through. Returns whether anything changed. */
    _sync() {
      const fresh = this._read();
      const mine = new Map(this.list.map((e) => [e.key, e]));
      const next = [];
      let changed = fresh.length !== this.list.length;
      for (const f of fresh) {
        const e = mine.get(f.key);
        if (!e) {
          next.push(f);
          changed = true;
          continue;
        }
        if (e !== this.busy && (f.state === 'failed') !== (e.state === 'failed')) {
          e.state = f.state;
          e.error = f.error;
          e.code = f.code;
          changed = true;
        }
        e.attempts = Math.max(e.attempts, f.attempts);
        next.push(e);
      }
      if (this.busy && !fresh.some((f) => f.key === this.busy.key)) next.push(this.busy);
      this.list = next;
      return changed;
    }

    _clearTimer() {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }

    _schedule(ms) {
      this._clearTimer();
      this.timer = setTimeout(() => {
        this.timer = null;
        this._pump();
      }, Math.max(0, ms));
    }

    /* Sends the oldest entry that is not failed, when nothing else is on its way. */
    async _pump() {
      if (this.stopped || this.paused || this.busy) return;
      const entry = this.list.find((e) => e.state !== 'failed');
      if (!entry) return;
      const wait = this.notBefore - Date.now();
      if (wait > 0) {
        if (!this.timer) this._schedule(wait);
        return;
      }
      this._clearTimer();
      this.busy = entry;
      this.kicked = false;
      // Counted before it leaves: after a reload, attempts > 0 says the server may have it.
      this._sync();
      entry.attempts++;
      this._write();
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      const guard = setTimeout(() => ctrl.abort(), SEND_TIMEOUT_MS);
      let message = null;
      let error = null;
      try {
        message = await this.sendFn(entry, ctrl.signal);
        if (!message || message.id == null) throw Object.assign(new Error('no message in the answer'), {status: 0});
      } catch (e) {
        error = e || new Error('send failed');
      } finally {
        clearTimeout(guard);
        this.ctrl = null;
        this.busy = null;
      }
      if (this.stopped) return;
      if (!error) this._delivered(entry, message);
      else this._failed(entry, error);
    }

    _delivered(entry, message) {
      this.failures = 0;
      this._sync();
      this.list = this.list.filter((e) => e.key !== entry.key);
      this._write();
      try {
        this.onDelivered(entry, message);
      } catch (e) {
        console.error('kefu: outbox onDelivered failed', e);
      }
      this._changed();
      this._pump();
    }

    _failed(entry, err) {
      const status = err.name === 'AbortError' ? 0 : (Number(err.status) || 0);
      this._sync();
      if (!this._find(entry.key)) {
        // Discarded meanwhile, or sent by another tab: nothing left to do for it.
        this._changed();
        this._pump();
        return;
      }
      if (status === 401) {
        entry.state = 'waiting';
        entry.error = null;
        this.pause();
        this._changed();
        if (this.onAuthError) this.onAuthError(entry, err);
        return;
      }
      if (refusedForGood(status)) {
        entry.state = 'failed';
        entry.error = err.message || 'The server refused this message.';
        // The server's code too: a translated page says why in its own words (web/i18n.js).
        entry.code = typeof err.code === 'string' ? err.code : 'http_' + status;
        this._write();
        this._changed();
        this._pump(); // the next ones go on
        return;
      }
      // It will pass: no answer, the server busy or restarting, a rate limit.
      entry.state = 'waiting';
      entry.error = status === 0 ? 'offline' : 'server';
      this.failures++;
      if (err.retryAfterMs > 0) this.notBefore = Date.now() + err.retryAfterMs;
      this._changed();
      if (this.kicked) {
        this.kicked = false;
        this.failures = 0;
        this._pump();
        return;
      }
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.failures - 1));
      const backoff = ceiling / 2 + Math.random() * ceiling / 2;
      this._schedule(Math.max(backoff, this.notBefore - Date.now()));
    }
  }

  KefuOutbox.newKey = newKey;
  window.KefuOutbox = KefuOutbox;
})();
