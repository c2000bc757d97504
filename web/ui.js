/* ui.js: small helpers shared by the visitor page and the agent console: the JSON API call, time
 * formatting, avatars, the connection-state pill, and MessageList (a thread of message bubbles,
 * with the page's unsent messages from its outbox, web/outbox.js, below them).
 *
 * Rule for everything here: user data goes into the DOM with textContent only, never innerHTML. */
(function () {
  'use strict';

  // Every text here comes from the tables of web/i18n.js, in the page's language.
  const I18n = window.KefuI18n;
  const t = I18n.t;

  /* ---- API ---- */

  class ApiError extends Error {
    constructor(status, code, message, retryAfterMs) {
      super(message);
      this.status = status; // 0: the request never got an answer
      this.code = code;
      this.retryAfterMs = retryAfterMs || 0; // a 429's Retry-After
    }
  }

  /* fetch + JSON. opts: {body, bearer, csrf, headers, signal}. Resolves with the parsed answer;
   * rejects with an ApiError carrying the server's message (or a human one for network trouble),
   * or with the AbortError when `signal` aborted it. */
  async function api(method, path, opts) {
    const o = opts || {};
    const headers = Object.assign({Accept: 'application/json'}, o.headers || {});
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    if (o.bearer) headers.Authorization = 'Bearer ' + o.bearer;
    if (o.csrf) headers['X-CSRF-Token'] = o.csrf;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: o.signal,
      });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', t('error.network'));
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) { /* not JSON (e.g. a proxy's error page) */ }
    if (!res.ok) {
      const err = data && data.error ? data.error : {};
      throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || defaultMessage(res.status),
        window.KefuPush.retryAfterMs(res));
    }
    return data || {};
  }

  function defaultMessage(status) {
    if (status === 429) return t('error.rate_limited');
    if (status >= 500) return t('error.internal');
    return t('error.generic', {status});
  }

  /* Why the server refused a message, in the page's language: from the code the outbox keeps
   * ("http_413" when the answer had no JSON, whose status it carries). */
  function failureReason(entry) {
    const m = /^http_(\d{3})$/.exec(entry.code || '');
    return window.KefuI18n.errorText({code: entry.code, status: m ? Number(m[1]) : 400});
  }

  /* A dialog's two lines: what a change did (statusEl) and what went wrong (errorEl). run(what, fn)
   * runs fn and, when it fails, says "Could not <what>. <why, by the error's code>" (a 401 has
   * ended the session: nothing to say here); it resolves to whether fn went. */
  function statusLines(statusEl, errorEl) {
    const say = (text, error) => {
      statusEl.textContent = error ? '' : text;
      errorEl.textContent = error ? text : '';
      errorEl.hidden = !error;
    };
    /* reasons: the caller's own words for some error codes ({forbidden: ...}); any other is
     * said by its code (web/i18n.js), never with the server's English message. */
    const run = async (what, fn, reasons) => {
      try {
        await fn();
      } catch (e) {
        if (e.status !== 401) {
          const reason = (reasons && e.code && reasons[e.code]) || window.KefuI18n.errorText(e);
          say(t('action.failed', {what, reason}), true);
        }
        return false;
      }
      return true;
    };
    return {say, run};
  }

  /* ---- time ---- */

  /* Formatters in the page's locale (I18n.locale(): the browser's until a page chooses one),
   * made again when the language changes. */
  const FORMATS = {
    time: {hour: 'numeric', minute: '2-digit'},
    full: {dateStyle: 'medium', timeStyle: 'short'},
    weekday: {weekday: 'long'},
    shortWeekday: {weekday: 'short'},
    dayMonth: {day: 'numeric', month: 'short'},
    fullDay: {day: 'numeric', month: 'long', year: 'numeric'},
  };
  let formatters = null;
  let formattersLocale = null;

  function fmt(name) {
    const locale = I18n.locale();
    if (!formatters || formattersLocale !== locale) {
      formatters = {};
      formattersLocale = locale;
    }
    if (!formatters[name]) {
      formatters[name] = name === 'relativeDay'
        ? new Intl.RelativeTimeFormat(locale || 'en', {numeric: 'auto'})
        : new Intl.DateTimeFormat(locale, FORMATS[name]);
    }
    return formatters[name];
  }

  /* "today" as a label: "Today" (a no-op for scripts without capitals). */
  function capitalised(text) {
    return text.charAt(0).toLocaleUpperCase(I18n.locale()) + text.slice(1);
  }

  function startOfDay(ms) {
    const d = new Date(ms);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }

  function daysAgo(ms) {
    return Math.round((startOfDay(Date.now()) - startOfDay(ms)) / 86400000);
  }

  function formatTime(ms) {
    return fmt('time').format(new Date(ms));
  }

  function formatFull(ms) {
    return fmt('full').format(new Date(ms));
  }

  /* "Today", "Yesterday", "Monday", "3 March 2025": the label of a day separator. */
  function formatDay(ms) {
    const n = daysAgo(ms);
    if (n <= 1) return capitalised(fmt('relativeDay').format(-Math.max(n, 0), 'day'));
    if (n < 7) return fmt('weekday').format(new Date(ms));
    return fmt('fullDay').format(new Date(ms));
  }

  /* Compact relative time for lists: "now", "5m", "3h", "Yesterday", "Mon", "12 Mar". */
  function formatRelative(ms) {
    const diff = Date.now() - ms;
    if (diff < 60000) return t('time.now');
    if (diff < 3600000) return t('time.minutesShort', {count: Math.floor(diff / 60000)});
    const n = daysAgo(ms);
    if (n <= 0) return t('time.hoursShort', {count: Math.floor(diff / 3600000)});
    if (n === 1) return capitalised(fmt('relativeDay').format(-1, 'day'));
    if (n < 7) return fmt('shortWeekday').format(new Date(ms));
    return fmt('dayMonth').format(new Date(ms));
  }

  /* ---- small DOM helpers ---- */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const AVATAR_COLOURS = 8;

  function avatarClass(id) {
    const n = Math.abs(Number(id) || 0) % AVATAR_COLOURS;
    return 'av-' + n;
  }

  function initials(name) {
    const words = String(name || '').trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return '?';
    const chars = Array.from(words[0]);
    if (words.length === 1) return chars[0].toUpperCase();
    return (chars[0] + Array.from(words[words.length - 1])[0]).toUpperCase();
  }

  /* Avatar text: initials of a named visitor; for an anonymous one ("Visitor #12") the number
   * while it fits in the circle (up to 3 digits), otherwise '' (setVisitorAvatar draws a person). */
  function visitorInitials(visitor) {
    if (visitor && (visitor.name || '').trim()) return initials(visitor.name);
    const id = visitor && visitor.id != null ? String(visitor.id) : '';
    return /^\d{1,3}$/.test(id) ? id : '';
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  /* An inline SVG icon built with DOM calls (no markup strings, nothing for the CSP): `shapes`
   * are [tag, {attribute: value}] pairs. */
  function icon(viewBox, className, shapes) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', viewBox);
    svg.setAttribute('class', className);
    svg.setAttribute('aria-hidden', 'true');
    for (const [tag, attrs] of shapes) {
      const shape = document.createElementNS(SVG_NS, tag);
      for (const k of Object.keys(attrs)) shape.setAttribute(k, attrs[k]);
      svg.appendChild(shape);
    }
    return svg;
  }

  /* A small "person" glyph. */
  function personIcon() {
    return icon('0 0 24 24', 'av-icon', [
      ['circle', {cx: '12', cy: '8.5', r: '4'}],
      ['path', {d: 'M4.5 20.5c.8-4 3.9-6.5 7.5-6.5s6.7 2.5 7.5 6.5'}],
    ]);
  }

  /* A small clock, for messages on their way. */
  function clockIcon() {
    return icon('0 0 16 16', 'msg-clock', [
      ['circle', {cx: '8', cy: '8', r: '6.25'}],
      ['path', {d: 'M8 4.5V8l2.5 1.5'}],
    ]);
  }

  /* Fills an avatar element for a visitor: initials, the visitor number, or a person icon. */
  function setVisitorAvatar(node, visitor) {
    const text = visitorInitials(visitor);
    const anonymous = !(visitor && (visitor.name || '').trim());
    node.classList.toggle('av-number', anonymous && text !== '');
    node.classList.toggle('av-long', anonymous && text.length === 3);
    if (text) node.textContent = text;
    else node.replaceChildren(personIcon());
  }

  function visitorName(visitor) {
    if (!visitor) return t('visitor.anonymous');
    const name = (visitor.name || '').trim();
    return name || t('visitor.numbered', {id: visitor.id});
  }

  const STATES = ['connecting', 'connected', 'reconnecting', 'offline'];
  const TRANSPORTS = ['ws', 'sse', 'longpoll', 'poll', 'iframe'];

  /* Updates a #conn-state element: data-state for tests and CSS, a short label for people, and
   * (when known) data-transport with the push transport in use. */
  function showConnState(node, state, transport) {
    if (!node) return;
    node.dataset.state = state;
    if (transport) node.dataset.transport = transport;
    const label = node.querySelector('.conn-label') || node;
    label.textContent = STATES.includes(state) ? t('conn.' + state) : state;
    const via = TRANSPORTS.includes(node.dataset.transport) ? t('transport.' + node.dataset.transport) : '';
    node.title = state === 'connected' ? (via ? t('conn.titleConnectedVia', {via}) : t('conn.titleConnected')) :
      state === 'offline' ? t('conn.titleOffline') : t('conn.titleConnecting');
  }

  /* ---- actions over the push socket, or over HTTP ---- */

  /* Performs an action over the WebSocket when the push client has one open, else with `http()`
   * (the page's fetch call). When the socket cannot take it, or dies before the answer, the action
   * goes over HTTP: reads and typing notices may be repeated, and a `send` carries its idempotency
   * key (`key`, the same as the HTTP call's Idempotency-Key), so the server stores it once however
   * often it arrives. Resolves with the ack ({message} for send) or the HTTP answer; rejects like
   * api() does (a refusal over the socket too, with the status its code stands for). */
  async function perform(push, action, o) {
    if (push && push.canSend()) {
      try {
        return await push.send(action);
      } catch (e) {
        if (e.status) throw new ApiError(e.status, e.code, e.message, e.retryAfterMs);
      }
    }
    return o.http();
  }

  /* ---- typing ---- */

  const TYPING_REFRESH_MS = 3000; // send typing:true at most this often while typing goes on
  const TYPING_IDLE_MS = 4000;    // typing:false after this long without a keystroke
  const TYPING_SHOW_MS = 6000;    // a typing indicator not refreshed within this goes away

  /* Tells the other side when this person types. input() on every keystroke (or call with the
   * current text); stop() on send, on clearing the box, on leaving. `send(typing, key)` does the
   * talking; `key` is whatever input() was given (the agent console passes the conversation id,
   * so typing:false goes to the conversation typing:true went to). */
  class TypingSender {
    constructor(send) {
      this.send = send;
      this.active = false;
      this.key = null;
      this.lastSent = 0;
      this.idle = null;
    }

    input(text, key) {
      if (!String(text || '').trim()) {
        this.stop();
        return;
      }
      if (this.active && key !== this.key) this.stop();
      const now = Date.now();
      if (!this.active || now - this.lastSent >= TYPING_REFRESH_MS) {
        this.active = true;
        this.key = key;
        this.lastSent = now;
        this._send(true, key);
      }
      if (this.idle) clearTimeout(this.idle);
      this.idle = setTimeout(() => this.stop(), TYPING_IDLE_MS);
    }

    stop() {
      if (this.idle) clearTimeout(this.idle);
      this.idle = null;
      if (!this.active) return;
      this.active = false;
      this._send(false, this.key);
    }

    _send(typing, key) {
      try {
        Promise.resolve(this.send(typing, key)).catch(() => { /* best effort */ });
      } catch (e) { /* best effort */ }
    }
  }

  /* Who is typing, per key (a conversation id): set(key, bool) from typing events; an entry not
   * refreshed within 6 s expires. onChange(key, typing) on every change. */
  class TypingState {
    constructor(onChange) {
      this.onChange = onChange;
      this.timers = new Map();
    }

    has(key) {
      return this.timers.has(key);
    }

    set(key, typing) {
      const had = this.timers.has(key);
      if (had) clearTimeout(this.timers.get(key));
      if (typing) {
        this.timers.set(key, setTimeout(() => this.set(key, false), TYPING_SHOW_MS));
      } else {
        this.timers.delete(key);
      }
      if (had !== !!typing) this.onChange(key, !!typing);
    }

    clear() {
      for (const key of Array.from(this.timers.keys())) this.set(key, false);
    }
  }

  /* ---- MessageList ---- */

  /* Messages that follow each other from the same sender within this time are drawn as one group:
   * the author's name above the first bubble, the time below the last. */
  const GROUP_GAP_MS = 3 * 60 * 1000;

  /* A thread of message bubbles inside `container` (which is also the scrolling element).
   * `me` is 'visitor' or 'agent': whose messages sit on the right in the brand colour.
   * Messages are kept sorted by id; adding one that is already there does nothing, which is how a
   * sent message and its pushed copy become one bubble.
   *
   * Below the messages: the page's own unsent ones (setPending, with its outbox's entries), as
   * `.msg.mine.pending[data-key]` bubbles that say how they are doing, with Retry and Delete
   * buttons (opts.onRetry(key), opts.onDiscard(key)) on one the server refused. */
  /* What an unsent message not refused is doing, in words: the bubble's line and the console
   * list's mark say the same. */
  function pendingLabel(entry) {
    if (entry.state !== 'waiting') return t('msg.sending');
    return entry.error === 'offline' ? t('msg.waitingConnection') : t('msg.retrying');
  }

  class MessageList {
    constructor(container, opts) {
      const o = opts || {};
      this.container = container;
      this.me = o.me || 'visitor';
      this.otherName = o.otherName || null;     // function(msg) -> name for the left-hand side
      this.otherAvatar = o.otherAvatar || null;   // function(node, msg): fills its avatar
      this.own = o.own || ((msg) => msg.sender === this.me); // written by this page's user?
      this.pendingAuthor = o.pendingAuthor || null; // function() -> the name over unsent ones
      this.onChange = o.onChange || function () {};
      this.onUnseenBelow = o.onUnseenBelow || function () {};
      this.onRetry = o.onRetry || function () {};
      this.onDiscard = o.onDiscard || function () {};
      // function(entry) -> why a refused one was refused, for people (default: the server's words)
      this.failureText = o.failureText || failureReason;
      // function(message) -> the element of a message carrying a file, or null: its text
      this.renderAttachment = o.renderAttachment || null;
      this.messages = [];       // sorted by id
      this.nodes = new Map();   // id -> element
      this.seenUpTo = 0;        // the other side has read my messages up to this id
      this.seenNode = null;
      this.pending = [];        // outbox entries, oldest first
      this.pendingNodes = new Map(); // entry key -> element (only the entries drawn)
      this.quiet = false;       // drawing again what was there: no entrance animation
      container.addEventListener('click', (e) => {
        const button = e.target.closest('.msg-retry, .msg-discard');
        const node = button && button.closest('.msg.pending');
        if (!node || !container.contains(node)) return;
        if (button.classList.contains('msg-retry')) this.onRetry(node.dataset.key);
        else this.onDiscard(node.dataset.key);
      });
    }

    has(id) {
      return this.nodes.has(Number(id));
    }

    get size() {
      return this.messages.length;
    }

    /* Messages and unsent ones drawn. */
    get count() {
      return this.messages.length + this.pendingNodes.size;
    }

    lastId() {
      return this.messages.length ? this.messages[this.messages.length - 1].id : 0;
    }

    /* The newest id of a message from `sender`, or 0. */
    lastIdFrom(sender) {
      for (let i = this.messages.length - 1; i >= 0; i--) {
        if (this.messages[i].sender === sender) return this.messages[i].id;
      }
      return 0;
    }

    /* Forgets the messages; the unsent ones stay (the page sets them: setPending). */
    clear() {
      this.messages = [];
      this.nodes.clear();
      this.seenUpTo = 0;
      this.seenNode = null;
      this.container.replaceChildren();
      this.pendingNodes.clear();
      this._drawPending();
      this.onChange(this.count);
    }

    /* The unsent messages to show below the thread: outbox entries (web/outbox.js), oldest
     * first. One that has been sent at least once and whose message is already in the thread is
     * not drawn: the server has it, and its answer is on the way (over a WebSocket the pushed
     * message comes before the ack; after a reload, the history may hold a message whose answer
     * was lost). "Its message" is the first of the page user's own messages newer than the entry's
     * `after`, with the same text, that no older entry has taken. */
    setPending(entries) {
      const before = new Set(this.pendingNodes.keys());
      this.pending = (entries || []).slice();
      this._drawPending();
      const added = Array.from(this.pendingNodes.keys()).some((k) => !before.has(k));
      if (added) this.scrollToBottom(true);
      this.onChange(this.count);
    }

    /* Adds messages (any order). Returns how many were new. */
    addAll(list, opts) {
      const wasNearBottom = this.nearBottom();
      let added = 0;
      for (const m of list) if (this._insert(m)) added++;
      if (added) this._after(wasNearBottom, opts || {});
      return added;
    }

    add(msg, opts) {
      return this.addAll([msg], opts) === 1;
    }

    /* The other side has read my messages up to `upTo`: show "Seen" under the newest of them. */
    markSeen(upTo) {
      if (!(upTo > this.seenUpTo)) return;
      this.seenUpTo = upTo;
      this._renderSeen();
    }

    /* Draws everything again (after a change of language: day labels, times, states). */
    redraw() {
      const stick = this.nearBottom();
      this.quiet = true; // the same bubbles, in other words: no entrance to replay
      this._rerender();
      this._renderSeen();
      this.quiet = false;
      if (stick) this.scrollToBottom(false);
    }

    nearBottom() {
      const c = this.container;
      return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
    }

    scrollToBottom(smooth) {
      const c = this.container;
      if (smooth && c.scrollTo) c.scrollTo({top: c.scrollHeight, behavior: 'smooth'});
      else c.scrollTop = c.scrollHeight;
    }

    /* ---- internals ---- */

    _insert(raw) {
      if (!raw || raw.id == null) return false;
      const msg = Object.assign({}, raw, {id: Number(raw.id)});
      if (this.nodes.has(msg.id)) return false;
      const list = this.messages;
      if (list.length === 0 || msg.id > list[list.length - 1].id) {
        const prev = list[list.length - 1] || null;
        list.push(msg);
        this._append(msg, prev);
      } else {
        // Out of order (rare: a push event overtaking a history page). Re-render everything so
        // day separators and groups stay right.
        let i = list.length;
        while (i > 0 && list[i - 1].id > msg.id) i--;
        list.splice(i, 0, msg);
        this._rerender();
      }
      return true;
    }

    /* Keep the view pinned to the bottom if it was there (or the newest message is my own);
     * otherwise the reader is looking at history, so leave the scroll position alone. */
    _after(wasNearBottom, opts) {
      const last = this.messages[this.messages.length - 1];
      if (opts.initial || wasNearBottom || opts.scroll || (last && last.sender === this.me)) {
        this.scrollToBottom(!opts.initial);
      } else {
        this.onUnseenBelow();
      }
      this._renderSeen();
      this._drawPending();
      this.onChange(this.count);
    }

    _rerender() {
      this.nodes.clear();
      this.pendingNodes.clear();
      this.container.replaceChildren();
      let prev = null;
      for (const m of this.messages) {
        this._append(m, prev);
        prev = m;
      }
      this.seenNode = null;
      this._drawPending();
    }

    /* Messages go above the unsent ones, which always end the thread. */
    _append(msg, prev) {
      const c = this.container;
      const end = c.querySelector(':scope > .msg.pending');
      if (!prev || startOfDay(prev.created_at) !== startOfDay(msg.created_at)) {
        const sep = el('div', 'day-sep');
        sep.setAttribute('role', 'separator');
        sep.appendChild(el('span', null, formatDay(msg.created_at)));
        c.insertBefore(sep, end);
        prev = null;
      }
      const node = this._render(msg);
      if (this.quiet) node.classList.add('quiet');
      if (prev && prev.sender === msg.sender && (prev.agent_name || '') === (msg.agent_name || '') &&
        msg.created_at - prev.created_at < GROUP_GAP_MS) {
        node.classList.add('grouped');
      }
      c.insertBefore(node, end);
      this.nodes.set(msg.id, node);
    }

    /* Draws this.pending at the end of the thread, moving a bubble only when it is out of place
     * (a move would replay its entrance animation and lose a button's focus). */
    _drawPending() {
      const taken = new Set();
      const shown = [];
      for (const e of this.pending) {
        if (e.state !== 'failed' && e.attempts > 0 && this._taken(e, taken)) continue;
        shown.push(e);
      }
      const keep = new Set(shown.map((e) => e.key));
      for (const [key, node] of this.pendingNodes) {
        if (keep.has(key)) continue;
        node.remove();
        this.pendingNodes.delete(key);
      }
      let prev = this.messages.length ? this.messages[this.messages.length - 1] : null;
      let prevOwn = !!prev && this.own(prev);
      let prevFailed = false;
      // The ones queued behind the oldest say what it says (it is what they wait for).
      const head = this.pending.find((e) => e.state !== 'failed');
      const nodes = [];
      for (const e of shown) {
        let node = this.pendingNodes.get(e.key);
        if (!node) {
          node = this._renderPending(e);
          if (this.quiet) node.classList.add('quiet');
          this.pendingNodes.set(e.key, node);
        }
        const queued = e !== head && e.state === 'sending' && head && head.state === 'waiting';
        this._updatePending(node, queued ? Object.assign({}, e, {state: 'waiting', error: head.error}) : e);
        const grouped = prevOwn && !prevFailed && e.state !== 'failed' && prev &&
          e.created_at - prev.created_at < GROUP_GAP_MS && startOfDay(prev.created_at) === startOfDay(e.created_at);
        node.classList.toggle('grouped', !!grouped);
        nodes.push(node);
        prev = e;
        prevOwn = true;
        prevFailed = e.state === 'failed';
      }
      let anchor = null;
      for (let i = nodes.length - 1; i >= 0; i--) {
        if (nodes[i].parentNode !== this.container || nodes[i].nextSibling !== anchor) {
          this.container.insertBefore(nodes[i], anchor);
        }
        anchor = nodes[i];
      }
    }

    /* Is the entry's message already in the thread (see setPending)? Marks it taken. */
    _taken(entry, taken) {
      for (const m of this.messages) {
        if (m.id <= entry.after || taken.has(m.id) || m.body !== entry.body || !this.own(m)) continue;
        taken.add(m.id);
        return true;
      }
      return false;
    }

    _renderPending(entry) {
      const node = el('div', 'msg mine pending' + (entry.private ? ' note' : ''));
      if (entry.private) node.dataset.private = 'true';
      node.dataset.key = entry.key;
      node.dataset.sender = this.me;
      node.setAttribute('role', 'group');
      const stack = el('div', 'msg-stack');
      const author = this.pendingAuthor ? this.pendingAuthor() : null;
      if (author || entry.private) stack.appendChild(noteAuthor(author, entry.private));
      stack.appendChild(el('div', 'msg-body', entry.body));
      stack.appendChild(el('div', 'msg-meta'));
      node.appendChild(stack);
      return node;
    }

    /* The bubble's state: data-state, its line under the text, and its label for screen readers. */
    _updatePending(node, entry) {
      const state = entry.state === 'failed' ? 'failed' : entry.state === 'waiting' ? 'waiting' : 'sending';
      const why = state === 'failed' ? this.failureText(entry) : entry.error || '';
      if (node.dataset.state === state && node.dataset.why === why) return;
      node.dataset.state = state;
      node.dataset.why = why;
      node.classList.toggle('failed', state === 'failed');
      const meta = node.querySelector('.msg-meta');
      if (state === 'failed') {
        const status = el('span', 'msg-failed', t('msg.notSent'));
        status.title = why;
        const retry = el('button', 'msg-retry', t('msg.retry'));
        retry.type = 'button';
        const discard = el('button', 'msg-discard', t('msg.delete'));
        discard.type = 'button';
        meta.replaceChildren(status, retry, discard);
        node.setAttribute('aria-label', why ? t('msg.notSentWhyLabel', {why}) : t('msg.notSentLabel'));
        const reason = why ? el('div', 'msg-failed-why', why) : null;
        const old = node.querySelector('.msg-failed-why');
        if (old) old.remove();
        if (reason) meta.before(reason);
        return;
      }
      const old = node.querySelector('.msg-failed-why');
      if (old) old.remove();
      const label = pendingLabel({state, error: why});
      const status = el('span', 'msg-sending');
      status.append(clockIcon(), el('span', null, label));
      meta.replaceChildren(status);
      node.setAttribute('aria-label', t('msg.pendingLabel', {state: label.replace('\u2026', '')}));
    }

    _render(msg) {
      const mine = msg.sender === this.me;
      const node = el('div', 'msg ' + (mine ? 'mine' : 'theirs') + (msg.private ? ' note' : ''));
      node.dataset.id = String(msg.id);
      node.dataset.sender = msg.sender;
      if (msg.private) node.dataset.private = 'true';

      let author = null;
      if (msg.sender === 'agent') author = msg.agent_name || t('msg.support');
      else if (!mine && this.otherName) author = this.otherName(msg);

      if (!mine) {
        const av = el('div', 'msg-avatar ' + (msg.sender === 'agent' ? 'av-agent' : avatarClass(msg.visitor_id)));
        if (msg.sender !== 'agent' && this.otherAvatar) this.otherAvatar(av, msg);
        else av.textContent = initials(author || '?');
        av.setAttribute('aria-hidden', 'true');
        node.appendChild(av);
      }
      const stack = el('div', 'msg-stack');
      if (author !== null || msg.private) stack.appendChild(noteAuthor(author, msg.private));
      // A file (web/attachments.js) shows as itself; its name is the message's text.
      const body = msg.attachment && this.renderAttachment ? this.renderAttachment(msg)
        : el('div', 'msg-body', msg.body);
      body.title = formatFull(msg.created_at);
      stack.appendChild(body);
      const meta = el('div', 'msg-meta');
      const time = el('time', 'msg-time', formatTime(msg.created_at));
      time.dateTime = new Date(msg.created_at).toISOString();
      meta.appendChild(time);
      stack.appendChild(meta);
      node.appendChild(stack);
      return node;
    }

    _renderSeen() {
      let target = null;
      for (let i = this.messages.length - 1; i >= 0; i--) {
        const m = this.messages[i];
        if (m.sender === this.me && m.id <= this.seenUpTo) {
          target = this.nodes.get(m.id);
          break;
        }
      }
      if (target === this.seenNode) return;
      if (this.seenNode) {
        const old = this.seenNode.querySelector('.msg-status');
        if (old) old.remove();
        this.seenNode.classList.remove('seen');
      }
      this.seenNode = target;
      if (target) {
        target.querySelector('.msg-meta').appendChild(el('span', 'msg-status', t('msg.seen')));
        target.classList.add('seen');
      }
    }
  }

  /* A bubble's author line; a private note's says so, with a lock (agents only see notes). */
  function noteAuthor(author, isNote) {
    const line = el('div', 'msg-author', isNote ? null : author);
    if (!isNote) return line;
    line.appendChild(icon('0 0 16 16', 'lock-icon', [
      ['rect', {x: '3', y: '7', width: '10', height: '7', rx: '1.5', fill: 'currentColor'}],
      ['path', {d: 'M5 7V5a3 3 0 0 1 6 0v2', fill: 'none', stroke: 'currentColor', 'stroke-width': '1.6'}],
    ]));
    line.appendChild(el('span', 'note-label', t('msg.privateNote')));
    if (author) line.appendChild(el('span', 'note-author', ' · ' + author));
    return line;
  }

  /* Makes a textarea grow with its content up to its CSS max-height. (Setting element.style from
   * script is allowed by the CSP; only style="" attributes in markup are not.) */
  function autoGrow(textarea) {
    const fit = () => {
      textarea.style.height = 'auto';
      textarea.style.height = textarea.scrollHeight + 'px';
    };
    textarea.addEventListener('input', fit);
    return fit;
  }

  /* Enter submits the form, Shift+Enter inserts a newline; IME composition (e.g. typing Chinese)
   * is left alone, since its Enter confirms a candidate. */
  function enterToSend(textarea, form) {
    textarea.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      form.requestSubmit();
    });
  }

  window.KefuUI = {
    ApiError, api, statusLines, failureReason, formatTime, formatFull, formatDay, formatRelative, el, avatarClass, initials,
    visitorName, visitorInitials, setVisitorAvatar, showConnState, MessageList, autoGrow, enterToSend,
    perform, TypingSender, TypingState, pendingLabel,
  };
})();
