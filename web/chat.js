/* chat.js: the visitor's chat page (/chat), also the website widget's chat (/widget: web/widget.html,
 * where web/widget_frame.js says when the chat is on screen and which page the visitor is on).
 *
 * Start-up: reuse the token in localStorage (checked with GET /api/visitor/session; a 401 means
 * the server no longer knows it, so make a new session), load the whole history, then start
 * push from the newest message id. The push cursor lives only in memory: after a reload it is
 * recomputed from the history, which is the same thing.
 *
 * Sending: a message goes into the outbox (web/outbox.js, kept in localStorage under
 * kefu.outbox.visitor) and shows at once as pending; the outbox sends it with its idempotency key
 * when it can, retries while the failure passes, and the bubble becomes the stored message. */
(function () {
  'use strict';

  const {api, MessageList, showConnState, autoGrow, enterToSend, perform, TypingSender,
    TypingState} = window.KefuUI;
  const I18n = window.KefuI18n;
  const t = I18n.t;

  // The page's language before anything is drawn: the static text of chat.html, then the rest.
  I18n.init();

  const TOKEN_KEY = 'kefu.visitor.token';
  // In the widget: the site's user_id the token was made for (docs/IDENTITY.md), '' for none.
  const USER_KEY = 'kefu.visitor.user';
  // One visitor per browser (the one of TOKEN_KEY): when the server has forgotten that visitor,
  // their unsent messages go to the new session, as the page's whole conversation does.
  const OUTBOX_KEY = 'kefu.outbox.visitor';
  const MAX_CHARS = 4000;

  const $ = (id) => document.getElementById(id);
  const messagesEl = $('messages');
  const emptyEl = $('empty-state');
  const jumpEl = $('jump-new');
  const form = $('composer');
  const input = $('message-input');
  const errorEl = $('chat-error');
  const countEl = $('char-count');
  const connEl = $('conn-state');
  const typingEl = $('typing-indicator');
  const resolvedEl = $('resolved-notice');

  // Inside the website widget (null on /chat).
  const widget = window.KefuWidget || null;
  // The pre-chat and leave-a-message forms, the greeting, the admin's title and colour.
  const forms = window.KefuVisitorForms;

  /* The visitor has the conversation in front of them: the tab is shown and, in the widget, the
   * chat is open rather than hidden behind its launcher. */
  function onScreen() {
    return widget ? widget.onScreen() : document.visibilityState === 'visible';
  }

  // ?transport=ws|sse|longpoll|iframe|poll forces one; otherwise KefuPush chooses (and falls back).
  const transport = window.KefuPush.transportFromURL();

  let token = null;
  let push = null;
  let ready = false;     // a session and its history: the outbox may send
  let readSent = 0;      // the highest up_to we have told the server
  let unseenWhileHidden = 0;
  // A reply's sound while the tab is hidden (web/notify.js); the visitor has clicked or typed on
  // the page by then, which lets the browser play it.
  const sound = new window.KefuNotify.Sound({});

  const list = new MessageList(messagesEl, {
    me: 'visitor',
    onChange(count) {
      emptyEl.hidden = count > 0;
    },
    onUnseenBelow() {
      jumpEl.hidden = false;
    },
    onRetry: (key) => outbox.retry(key),
    onDiscard: (key) => outbox.discard(key),
    // A message the server finds invalid is empty or too long: the page can say which it takes.
    failureText: (entry) => (entry.code === 'invalid' ? t('chat.refusedInvalid', {max: MAX_CHARS})
      : window.KefuUI.failureReason(entry)),
    renderAttachment: (msg) => window.KefuAttach.render(msg, attachmentUrl),
  });

  /* ---- attachments (web/attachments.js) ---- */

  // An <img> cannot send the bearer token: a file's URL carries a push ticket instead, one kept
  // for half its life and shared by every file on the page.
  let ticketCache = null; // {promise, until}
  function attachmentTicket() {
    const now = Date.now();
    if (!ticketCache || ticketCache.until <= now) {
      const promise = api('POST', '/api/visitor/push-ticket', {bearer: token});
      ticketCache = {promise, until: now + 25000};
      promise.then((data) => {
        if (ticketCache && ticketCache.promise === promise) ticketCache.until = now + (data.expires_in || 60) * 500;
      }, () => { if (ticketCache && ticketCache.promise === promise) ticketCache = null; });
    }
    return ticketCache.promise.then((data) => data.ticket);
  }

  function attachmentUrl(attachment) {
    return attachmentTicket().then((ticket) => attachment.url + '?ticket=' + encodeURIComponent(ticket));
  }

  const outbox = new window.KefuOutbox({
    storageKey: OUTBOX_KEY,
    paused: true, // until start() has a session and its history
    send: sendMessage,
    onChange: () => list.setPending(outbox.entries()),
    onDelivered: (entry, message) => {
      list.add(message, {scroll: true});
      if (widget) widget.message(message, false);
      if (push) push.nudge(); // the server is back: so may the stream be
    },
    // Our session vanished on the server: start a fresh one, where the messages then go.
    onAuthError: () => { restart(true); },
  });
  list.setPending(outbox.entries());

  /* ---- storage (localStorage can throw: private mode, disabled storage) ---- */

  // In the widget, where a browser may refuse a third-party frame its storage, the frame's own
  // keeper (web/widget_frame.js): localStorage, or the loader's on the host page.
  const storage = widget ? widget.storage : null;

  function loadToken() {
    try {
      return (storage || localStorage).getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  function saveToken(t) {
    try {
      if (t) (storage || localStorage).setItem(TOKEN_KEY, t);
      else (storage || localStorage).removeItem(TOKEN_KEY);
    } catch (e) { /* the session then lasts as long as the page */ }
  }

  /* ---- session and history ---- */

  function signedUser() {
    const identity = widget && widget.identity();
    return identity ? identity.user_id : '';
  }

  function keptUser() {
    try {
      return (storage || localStorage).getItem(USER_KEY) || '';
    } catch (e) {
      return '';
    }
  }

  /* A session for the site's signed user when there is one (a refused signature is said in the
   * console and the chat goes on without it), else an anonymous one. */
  async function createSession() {
    const identity = widget && widget.identity();
    let data = null;
    if (identity) {
      try {
        data = await api('POST', '/api/visitor/session', {body: identity});
      } catch (e) {
        if (e.status !== 400 && e.status !== 401 && e.status !== 422) throw e;
        console.warn('kefu: the site\'s signed user was refused:', e.code, e.message);
        widget.identityRefused();
      }
    }
    if (!data) data = await api('POST', '/api/visitor/session', {body: {}});
    token = data.token;
    saveToken(token);
    try {
      (storage || localStorage).setItem(USER_KEY, data.visitor.verified ? data.visitor.user_id : '');
    } catch (e) { /* as the token */ }
  }

  /* Makes sure `token` names a session the server knows, and the signed user's when the site
   * names one. */
  async function ensureSession() {
    if (!token) token = loadToken();
    if (token && signedUser() && signedUser() !== keptUser()) token = null; // another user signed in
    if (token) {
      try {
        showSession(await api('GET', '/api/visitor/session', {bearer: token}));
        return;
      } catch (e) {
        if (e.status !== 401) throw e;
        token = null; // forgotten by the server (expired, or its data was reset)
      }
    }
    await createSession();
  }

  /* ---- what the page reports of itself, and the visitor's details ---- */

  /* The page the visitor is on, as the page itself knows it (docs/API.md, "Visitor details").
   * In the widget, url, title and referrer are the host page's, handed in by its loader. */
  function pageReport() {
    const host = widget && widget.hostPage();
    let timezone = '';
    try {
      timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
    } catch (e) { /* an old browser: no zone */ }
    const referrer = /^https?:/i.test(document.referrer) ? document.referrer.slice(0, 2048) : '';
    return {
      url: host ? host.url : location.href.slice(0, 2048),
      title: host ? host.title : String(document.title || '').slice(0, 300),
      referrer: host ? host.referrer : referrer,
      user_agent: String(navigator.userAgent || '').slice(0, 512),
      language: /^[A-Za-z0-9-]{1,35}$/.test(navigator.language || '') ? navigator.language : '',
      timezone: /^[A-Za-z0-9_/+-]{1,64}$/.test(timezone) ? timezone : '',
      utc_offset: -new Date().getTimezoneOffset(),
    };
  }

  // At most one report a second; the last change in a burst (a router's several pushStates)
  // is the one that goes.
  const REPORT_GAP_MS = 1000;
  let lastReportAt = 0;
  let lastReportedUrl = null;
  let reportTimer = null;

  function reportPage(force) {
    if (!token || !ready) return;
    // Framed by the loader, the page is the host's: it comes with the loader's first answer.
    if (widget && widget.framed && !widget.hostPage()) return;
    if (!force && pageUrl() === lastReportedUrl) return;
    const wait = lastReportAt + REPORT_GAP_MS - Date.now();
    if (wait > 0) {
      clearTimeout(reportTimer);
      reportTimer = setTimeout(() => reportPage(force), wait);
      return;
    }
    lastReportAt = Date.now();
    lastReportedUrl = pageUrl();
    const report = pageReport();
    perform(push, Object.assign({type: 'page'}, report), {
      http: () => api('POST', '/api/visitor/page', {bearer: token, body: report}),
    }).catch(() => { lastReportedUrl = null; /* told again at the next change */ });
  }

  function pageUrl() {
    const host = widget && widget.hostPage();
    return host ? host.url : location.href;
  }

  // A single-page site moves with the History API: pushState and replaceState fire no event, so
  // they are wrapped to say so.
  for (const name of ['pushState', 'replaceState']) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      setTimeout(() => reportPage(false), 0);
      return result;
    };
  }
  window.addEventListener('popstate', () => reportPage(false));
  window.addEventListener('hashchange', () => reportPage(false));

  /* The desk's settings, as the visitor's page follows them: the typing preview is said plainly. */
  let typingPreview = false;
  const previewNoticeEl = $('typing-preview-notice');

  function applySettings(settings, availability, visitor) {
    typingPreview = !!(settings && settings.typing_preview === true);
    previewNoticeEl.hidden = !typingPreview;
    if (!typingPreview) draft.cancel();
    // The admin's widget settings (web/widget_forms.js), and the launcher's part of them.
    const look = settings && settings.widget;
    forms.apply(look, availability, visitor);
    if (widget && look && widget.settings) widget.settings(look);
  }

  async function loadVisitor() {
    const data = await api('GET', '/api/visitor', {bearer: token});
    applySettings(data.settings, data.availability, data.visitor);
    return data.visitor;
  }

  /* "Your details": a small form for a name and an e-mail, never required. */
  const detailsToggle = $('details-toggle');
  const detailsForm = $('details-form');
  const detailsError = $('details-error');
  const detailsStatus = $('details-status');

  function showDetails(open) {
    detailsForm.hidden = !open;
    detailsToggle.setAttribute('aria-expanded', String(open));
    detailsError.hidden = true;
    detailsStatus.textContent = '';
    if (!open) return;
    $('details-name').focus();
    if (!token) return;
    loadVisitor().then((visitor) => {
      if (!visitor) return;
      if (!$('details-name').value) $('details-name').value = visitor.name || '';
      if (!$('details-email').value) $('details-email').value = visitor.email || '';
      // The site signed this e-mail (docs/IDENTITY.md): the server keeps it; shown, not editable.
      if (visitor.verified) {
        $('details-email').value = visitor.email || '';
        $('details-email').readOnly = true;
      }
    }, () => {});
  }

  detailsToggle.addEventListener('click', () => showDetails(detailsForm.hidden));
  $('details-cancel').addEventListener('click', () => {
    showDetails(false);
    detailsToggle.focus();
  });
  detailsForm.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      showDetails(false);
      detailsToggle.focus();
    }
  });
  detailsForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    detailsError.hidden = true;
    if (!token) return;
    const body = {name: $('details-name').value.trim(), email: $('details-email').value.trim()};
    try {
      const data = await api('PATCH', '/api/visitor', {bearer: token, body});
      $('details-name').value = data.visitor.name;
      $('details-email').value = data.visitor.email;
      detailsStatus.textContent = t('details.saved');
    } catch (err) {
      // The server's 400 names the field in its (English) message; the page says it in its words.
      detailsError.textContent = err.status === 400 && /email/.test(err.message || '')
        ? t('details.emailInvalid') : I18n.errorText(err);
      detailsError.hidden = false;
    }
  });

  /* What the session says of the visitor's conversation: whether it is resolved, what was seen. */
  function showSession(data) {
    showResolved(!!data.conversation && data.conversation.status === 'resolved');
    rating.show(data.conversation);
    // Where the agents had read to, so that "Seen" is where it was before a reload.
    if (data.conversation && data.conversation.seen_up_to) list.markSeen(Number(data.conversation.seen_up_to));
  }

  /* The whole history, 500 messages a page. */
  async function loadHistory() {
    let after = 0;
    for (;;) {
      const data = await api('GET', '/api/visitor/messages?after=' + after, {bearer: token});
      const batch = data.messages || [];
      list.addAll(batch, {initial: true});
      if (widget) for (const m of batch) widget.message(m, false);
      if (!data.more || batch.length === 0) break;
      after = batch[batch.length - 1].id;
    }
  }

  function startPush() {
    if (push) push.stop();
    push = new window.KefuPush({
      transport,
      cursor: String(list.lastId()),
      auth: {bearer: token},
      onEvent: handleEvent,
      onState: (state) => {
        showConnState(connEl, state);
        if (state === 'connected') outbox.kick(); // the way is clear: send what waits now
      },
      onTransport: (name) => showConnState(connEl, connEl.dataset.state, name),
      // A conversation event may have been missed in the gap: ask whether it is resolved.
      onResync() {
        if (token) api('GET', '/api/visitor/session', {bearer: token}).then(showSession, () => {});
      },
      onAuthError: () => { restart(true); },
    });
  }

  /* Start-up, retried with a growing pause while the server cannot be reached. */
  async function start(attempt) {
    try {
      if (widget) await Promise.all([widget.storageReady, widget.loaderReady]);
      await ensureSession();
      await loadHistory();
      forms.history(list.size > 0);
      startPush();
      ready = true;
      outbox.resume();
      if (pendingDetails) saveDetails(pendingDetails);
      sendReadReceipt();
      reportPage(true);
      loadVisitor().catch(() => {});
      if (widget) widget.sessionReady();
    } catch (e) {
      showConnState(connEl, navigator.onLine === false ? 'offline' : 'reconnecting');
      const delay = Math.min(15000, 1000 * Math.pow(2, attempt || 0));
      setTimeout(() => start((attempt || 0) + 1), delay);
    }
  }

  /* The server rejected our token mid-session: its visitor is gone, and so is that history. */
  async function restart(forget) {
    if (push) push.stop();
    push = null;
    ready = false;
    outbox.pause();
    agentTyping.clear();
    if (forget) {
      token = null;
      saveToken(null);
    }
    list.clear();
    readSent = 0;
    showConnState(connEl, 'connecting');
    await start(0);
  }

  /* ---- push events ---- */

  function handleEvent(ev) {
    if (ev.type === 'message' && ev.message) {
      const isNew = list.add(ev.message);
      forms.history(true); // a conversation now: the forms were for before it
      if (ev.message.sender === 'agent') agentTyping.set('agent', false); // the reply is here
      // A reply that is news, not history a reconnect brought back.
      const recent = Number(ev.message.created_at) >= Date.now() - 60000;
      if (widget) widget.message(ev.message, isNew && recent);
      if (isNew && ev.message.sender === 'agent') {
        // Told no one could answer? Someone just did: read the availability again (the page is
        // woken for its changes only where the leave-a-message form is on).
        if (recent && forms.unavailable() && token) loadVisitor().catch(() => {});
        if (onScreen()) sendReadReceipt();
        else {
          unseenWhileHidden++;
          showTitle();
          window.KefuNotify.badge(unseenWhileHidden);
          if (recent) sound.play('message');
        }
      }
    } else if (ev.type === 'read' && ev.reader === 'agent') {
      list.markSeen(Number(ev.up_to));
    } else if (ev.type === 'typing' && ev.sender === 'agent') {
      agentTyping.set('agent', ev.typing === true);
    } else if (ev.type === 'settings') {
      applySettings(ev.settings, ev.availability);
    } else if (ev.type === 'availability') {
      forms.apply(null, ev.availability); // the first agent came online, or the last went
    } else if (ev.type === 'conversation' && ev.conversation) {
      // The visitor's shape: {id, status}. Resolved says so until they write again (which
      // reopens it: the "open" that follows hides the notice in their other tabs too).
      showResolved(ev.conversation.status === 'resolved');
      rating.show(ev.conversation);
    }
  }

  function showResolved(on) {
    const stick = on && list.nearBottom();
    resolvedEl.hidden = !on;
    if (stick) list.scrollToBottom(false);
  }

  /* "Agent is typing…" under the conversation, while typing events keep coming. */
  const agentTyping = new TypingState((key, typing) => {
    const stick = typing && list.nearBottom();
    typingEl.hidden = !typing;
    if (stick) list.scrollToBottom(false);
  });

  /* Tell the server which agent messages the visitor has had in front of them. */
  function sendReadReceipt() {
    if (!token || !onScreen()) return;
    const upTo = list.lastIdFrom('agent');
    if (upTo <= readSent) return;
    const previous = readSent;
    readSent = upTo;
    perform(push, {type: 'read', up_to: upTo}, {
      http: () => api('POST', '/api/visitor/read', {bearer: token, body: {up_to: upTo}}),
    }).catch(() => {
      if (readSent === upTo) readSent = previous; // try again next time
    });
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    reportPage(true); // back on the page: the agents see them there again
    unseenWhileHidden = 0;
    showTitle();
    window.KefuNotify.badge(0);
    sendReadReceipt();
  });

  /* ---- composer ---- */

  const fit = autoGrow(input);
  enterToSend(input, form);

  function codePoints(s) {
    let n = 0;
    for (const _ of s) n++; // eslint-disable-line no-unused-vars
    return n;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
  }

  function clearError() {
    errorEl.hidden = true;
    errorEl.textContent = '';
  }

  function updateCount() {
    const n = codePoints(input.value.trim());
    const left = MAX_CHARS - n;
    countEl.hidden = left > 300;
    countEl.textContent = left >= 0 ? t('chat.charsLeft', {count: left}) : t('chat.charsOver', {count: -left});
    countEl.classList.toggle('over', left < 0);
  }

  /* Typing notices go to the visitor's conversation, so there is nothing to tell before the
   * first message has opened one. */
  const typing = new TypingSender((isTyping) => perform(push, {type: 'typing', typing: isTyping}, {
    http: () => api('POST', '/api/visitor/typing', {bearer: token, body: {typing: isTyping}}),
  }));

  /* The draft itself, only while the typing preview is on (the notice above the box says so):
   * at most every 300 ms, the latest text each time, nothing once it is sent or cleared. */
  const DRAFT_GAP_MS = 300;
  const draft = {
    timer: null,
    lastAt: 0,
    input(text) {
      if (!typingPreview || !text.trim()) {
        this.cancel();
        return;
      }
      if (this.timer) return; // the pending send takes the latest text when it goes
      const wait = Math.max(0, this.lastAt + DRAFT_GAP_MS - Date.now());
      this.timer = setTimeout(() => {
        this.timer = null;
        const now = input.value;
        if (!typingPreview || !now.trim() || !token) return;
        this.lastAt = Date.now();
        const body = {typing: true, text: now.slice(0, MAX_CHARS)};
        perform(push, Object.assign({type: 'typing'}, body), {
          http: () => api('POST', '/api/visitor/typing', {bearer: token, body}),
        }).catch(() => { /* best effort */ });
      }, wait);
    },
    cancel() {
      clearTimeout(this.timer);
      this.timer = null;
    },
  };

  input.addEventListener('input', () => {
    updateCount();
    if (!errorEl.hidden && input.value.trim() === '') clearError();
    if (token && list.size > 0) {
      typing.input(input.value);
      draft.input(input.value);
    }
  });
  window.addEventListener('pagehide', () => typing.stop());

  /* The outbox's way of sending one: over the WebSocket when it is open, else over HTTP, with
   * its idempotency key either way. */
  async function sendMessage(entry, signal) {
    if (!ready) {
      // No session yet (the server could not be reached at start-up): start() resumes the outbox.
      outbox.pause();
      throw Object.assign(new Error('not connected yet'), {status: 0});
    }
    const data = await perform(push, {type: 'send', body: entry.body, key: entry.key}, {
      http: () => api('POST', '/api/visitor/messages', {
        bearer: token, body: {body: entry.body}, headers: {'Idempotency-Key': entry.key}, signal,
      }),
    });
    return data.message;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = input.value.trim();
    if (!forms.mayWrite()) return; // the pre-chat form first
    if (body === '') {
      input.focus();
      return;
    }
    if (codePoints(body) > MAX_CHARS) {
      showError(t('chat.tooLong', {max: MAX_CHARS}));
      return;
    }
    draft.cancel();
    typing.stop();
    clearError();
    showResolved(false); // writing again reopens it
    // In the thread at once, pending, and kept until the server has it: the box is free again.
    outbox.add({body, after: list.lastId()});
    forms.history(true);
    input.value = '';
    fit();
    updateCount();
    input.focus();
  });

  window.KefuAttach.bindComposer({
    button: $('attach-button'),
    input: $('attach-input'),
    status: $('attach-status'),
    statusText: $('attach-status-text'),
    progress: $('attach-progress'),
    error: $('attach-error'),
    target: () => (token && ready ? {url: '/api/visitor/attachments', headers: {Authorization: 'Bearer ' + token}} : null),
    onSent(message) {
      clearError();
      showResolved(false); // writing again reopens it
      list.add(message, {scroll: true});
      if (widget) widget.message(message, false);
    },
  });

  /* ---- scrolling ---- */

  jumpEl.addEventListener('click', () => {
    list.scrollToBottom(true);
    jumpEl.hidden = true;
  });
  messagesEl.addEventListener('scroll', () => {
    if (!jumpEl.hidden && list.nearBottom()) jumpEl.hidden = true;
  }, {passive: true});

  /* ---- the rating of a resolved conversation ---- */

  /* "How did we do?" while the conversation is resolved: a choice, an optional comment, Send
   * (POST /api/visitor/rating); then thanks and the choice, which may be changed until the
   * conversation reopens. What the server says (the session, a conversation event from this or
   * another tab) is what shows: rating is the visitor's of the current resolution, or null. */
  const rating = {
    el: $('rating'),
    form: $('rating-form'),
    comment: $('rating-comment'),
    thanks: $('rating-thanks'),
    error: $('rating-error'),
    buttons: [$('rating-good'), $('rating-bad')],
    MAX: 1000,
    saved: null, // the server's {rating, comment, rated_at}, or null
    chosen: null, // the choice on screen, sent or not
    sending: false,

    show(conversation) {
      const resolved = !!conversation && conversation.status === 'resolved';
      const stick = resolved && this.el.hidden && list.nearBottom();
      if (!resolved) {
        this.el.hidden = true;
        this.saved = null;
        this.chosen = null;
        this.form.hidden = true;
        this.comment.value = '';
        this.error.hidden = true;
        this.draw();
        return;
      }
      this.el.hidden = false;
      const saved = conversation.rating || null;
      if (saved && !this.sending) {
        this.saved = saved;
        // Another tab's send: this one shows the same choice, unless the visitor is mid-change.
        if (this.form.hidden) {
          this.chosen = saved.rating;
          this.comment.value = saved.comment || '';
        }
      }
      this.draw();
      if (stick) list.scrollToBottom(false);
    },

    draw() {
      for (const b of this.buttons) b.setAttribute('aria-pressed', String(b.dataset.rating === this.chosen));
      const done = this.saved && this.form.hidden;
      this.thanks.textContent = done ? t(this.saved.rating === 'good' ? 'rating.thanksGood' : 'rating.thanksBad') : '';
      this.thanks.hidden = !done;
      $('rating-send').textContent = t(this.sending ? 'rating.sending' : this.saved ? 'rating.change' : 'rating.send');
    },

    choose(value) {
      this.chosen = value;
      this.error.hidden = true;
      this.form.hidden = false;
      this.draw();
      this.comment.focus();
      if (list.nearBottom()) list.scrollToBottom(false);
    },

    async send() {
      if (!token || !this.chosen || this.sending) return;
      const comment = this.comment.value.trim();
      if (comment.length > this.MAX) {
        this.error.textContent = t('rating.tooLong', {max: this.MAX});
        this.error.hidden = false;
        return;
      }
      this.sending = true;
      this.error.hidden = true;
      this.draw();
      try {
        const data = await api('POST', '/api/visitor/rating', {bearer: token, body: {rating: this.chosen, comment}});
        this.sending = false;
        this.form.hidden = true;
        this.show(data.conversation);
      } catch (err) {
        this.sending = false;
        this.error.textContent = err.status === 409 ? t('rating.reopened') : I18n.errorText(err);
        this.error.hidden = false;
        this.draw();
      }
    },
  };

  for (const b of rating.buttons) b.addEventListener('click', () => rating.choose(b.dataset.rating));
  rating.form.addEventListener('submit', (e) => {
    e.preventDefault();
    rating.send();
  });

  /* ---- language ---- */

  /* The tab's title: the page's name, after the count of replies not seen yet. */
  function showTitle() {
    const title = t('chat.pageTitle');
    document.title = unseenWhileHidden > 0 ? t('chat.unreadTitle', {count: unseenWhileHidden, title}) : title;
  }

  // What the page drew itself follows a new choice at once: chat.html's text is done by I18n.
  if ($('lang-select')) I18n.bindSwitcher($('lang-select')); // the widget has none: data-lang
  I18n.onChange(() => {
    showTitle();
    showConnState(connEl, connEl.dataset.state);
    if (!countEl.hidden) updateCount();
    list.redraw();
    // A line said in the other language goes; the next attempt says it again in this one.
    clearError();
    detailsError.hidden = true;
    detailsStatus.textContent = '';
    rating.error.hidden = true;
    rating.draw();
  });

  /* The host page's setName/setEmail (web/widget.js), saved once there is a session. */
  let pendingDetails = null;

  function saveDetails(body) {
    if (!ready) {
      pendingDetails = Object.assign(pendingDetails || {}, body);
      return;
    }
    pendingDetails = null;
    api('PATCH', '/api/visitor', {bearer: token, body}).catch((err) => {
      console.warn('kefu: the page\'s visitor details were refused:', err.message);
    });
  }

  forms.attach({
    api: (method, path, body) => api(method, path, {bearer: token, body}),
    leave(text) {
      showResolved(false);
      outbox.add({body: text, after: list.lastId()});
    },
    focus: () => input.focus(),
    refresh: () => { if (token) loadVisitor().catch(() => {}); },
  });

  if (widget) {
    widget.attach({
      // The visitor opened the widget: what came meanwhile is seen now, at the bottom.
      shown() {
        unseenWhileHidden = 0;
        sendReadReceipt();
        list.scrollToBottom(false);
        if (window.matchMedia('(hover: hover) and (pointer: fine)').matches) input.focus();
      },
      saveDetails,
      // The host page signed in another user: their session, their history.
      identify() {
        if (ready && signedUser() !== keptUser()) restart(true);
      },
      pageChanged: () => reportPage(false),
      // The invitation rules' requests (web/widget_frame.js), with the visitor's token.
      visitorApi: (method, path, body) => api(method, path, {bearer: token, body}),
    });
  }

  showConnState(connEl, 'connecting');
  start(0);
  // Do not pop up the phone keyboard over the page on load; on a desktop, be ready to type.
  // In the widget, only once it is opened (shown() above): a hidden frame takes no focus.
  if (!widget && window.matchMedia('(hover: hover) and (pointer: fine)').matches) input.focus();
})();
