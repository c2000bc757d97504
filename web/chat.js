/* chat.js: the visitor's chat page (/chat).
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

  const TOKEN_KEY = 'kefu.visitor.token';
  // One visitor per browser (the one of TOKEN_KEY): when the server has forgotten that visitor,
  // their unsent messages go to the new session, as the page's whole conversation does.
  const OUTBOX_KEY = 'kefu.outbox.visitor';
  const MAX_CHARS = 4000;
  const BASE_TITLE = document.title;

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
  });

  const outbox = new window.KefuOutbox({
    storageKey: OUTBOX_KEY,
    paused: true, // until start() has a session and its history
    send: sendMessage,
    onChange: () => list.setPending(outbox.entries()),
    onDelivered: (entry, message) => {
      list.add(message, {scroll: true});
      if (push) push.nudge(); // the server is back: so may the stream be
    },
    // Our session vanished on the server: start a fresh one, where the messages then go.
    onAuthError: () => { restart(true); },
  });
  list.setPending(outbox.entries());

  /* ---- storage (localStorage can throw: private mode, disabled storage) ---- */

  function loadToken() {
    try {
      return localStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  function saveToken(t) {
    try {
      if (t) localStorage.setItem(TOKEN_KEY, t);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* the session then lasts as long as the page */ }
  }

  /* ---- session and history ---- */

  async function createSession() {
    const data = await api('POST', '/api/visitor/session', {body: {}});
    token = data.token;
    saveToken(token);
  }

  /* Makes sure `token` names a session the server knows. */
  async function ensureSession() {
    if (!token) token = loadToken();
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

  /* What the session says of the visitor's conversation: whether it is resolved, what was seen. */
  function showSession(data) {
    showResolved(!!data.conversation && data.conversation.status === 'resolved');
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
      await ensureSession();
      await loadHistory();
      startPush();
      ready = true;
      outbox.resume();
      sendReadReceipt();
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
      if (ev.message.sender === 'agent') agentTyping.set('agent', false); // the reply is here
      if (isNew && ev.message.sender === 'agent') {
        if (document.visibilityState === 'visible') sendReadReceipt();
        else {
          unseenWhileHidden++;
          document.title = '(' + unseenWhileHidden + ') ' + BASE_TITLE;
          window.KefuNotify.badge(unseenWhileHidden);
          // Sound only after a reply that is news, not history a reconnect brought back.
          if (Number(ev.message.created_at) >= Date.now() - 60000) sound.play('message');
        }
      }
    } else if (ev.type === 'read' && ev.reader === 'agent') {
      list.markSeen(Number(ev.up_to));
    } else if (ev.type === 'typing' && ev.sender === 'agent') {
      agentTyping.set('agent', ev.typing === true);
    } else if (ev.type === 'conversation' && ev.conversation) {
      // The visitor's shape: {id, status}. Resolved says so until they write again (which
      // reopens it: the "open" that follows hides the notice in their other tabs too).
      showResolved(ev.conversation.status === 'resolved');
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
    if (!token || document.visibilityState !== 'visible') return;
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
    unseenWhileHidden = 0;
    document.title = BASE_TITLE;
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
    countEl.textContent = left >= 0 ? left + ' characters left' : -left + ' characters too many';
    countEl.classList.toggle('over', left < 0);
  }

  /* Typing notices go to the visitor's conversation, so there is nothing to tell before the
   * first message has opened one. */
  const typing = new TypingSender((isTyping) => perform(push, {type: 'typing', typing: isTyping}, {
    http: () => api('POST', '/api/visitor/typing', {bearer: token, body: {typing: isTyping}}),
  }));

  input.addEventListener('input', () => {
    updateCount();
    if (!errorEl.hidden && input.value.trim() === '') clearError();
    if (token && list.size > 0) typing.input(input.value);
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
    if (body === '') {
      input.focus();
      return;
    }
    if (codePoints(body) > MAX_CHARS) {
      showError('That message is too long: please keep it under ' + MAX_CHARS + ' characters.');
      return;
    }
    typing.stop();
    clearError();
    showResolved(false); // writing again reopens it
    // In the thread at once, pending, and kept until the server has it: the box is free again.
    outbox.add({body, after: list.lastId()});
    input.value = '';
    fit();
    updateCount();
    input.focus();
  });

  /* ---- scrolling ---- */

  jumpEl.addEventListener('click', () => {
    list.scrollToBottom(true);
    jumpEl.hidden = true;
  });
  messagesEl.addEventListener('scroll', () => {
    if (!jumpEl.hidden && list.nearBottom()) jumpEl.hidden = true;
  }, {passive: true});

  showConnState(connEl, 'connecting');
  start(0);
  // Do not pop up the phone keyboard over the page on load; on a desktop, be ready to type.
  if (window.matchMedia('(hover: hover) and (pointer: fine)').matches) input.focus();
})();
