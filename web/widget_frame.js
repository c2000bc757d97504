/* widget_frame.js: the website widget's chat page (/widget, web/widget.html) and its loader on the
 * host page (web/widget.js). The page is the visitor page (web/chat.js) in a compact layout; this
 * file, loaded before chat.js, is what differs:
 *  - it takes commands (open, close, the visitor's details, the host page's address) only from
 *    its parent window, and only from the origin the loader named in the frame's URL
 *    (#origin=...); it posts to that origin alone;
 *  - the chat counts as on screen only while the loader shows it (a hidden frame stays loaded
 *    so that replies arrive), so read receipts wait until the visitor opens it;
 *  - it counts the agent's messages the visitor has not had on screen (the mark is kept as
 *    kefu.widget.seen, so it survives a reload) and tells the loader, which draws the count on
 *    the launcher; a new reply also goes to the loader, which may open the chat;
 *  - where the browser refuses this third-party frame its storage, the loader keeps the
 *    visitor's token and that mark in the host page's localStorage (kefu.widget.kept) and hands
 *    them back when the frame loads (docs/API.md, "The website widget": why, and what it costs);
 *    where that fails too, the chat lasts as long as the page, and says so;
 *  - the host page's Kefu.identify() hands in a signed user (docs/IDENTITY.md): the chat waits
 *    for the loader's first word before it starts, so that a signed-in user's session is
 *    created with the signature, and a later identify of another user starts their session.
 *  - the admins' invitation rules (docs/API.md, "Visitors online and invitations") are timed
 *    here, on the host page's path, for a visitor who has not chatted yet: when one is due it is
 *    fired (POST /api/visitor/invite-rules/{id}/fire), at most once per rule in this tab's
 *    session (kefu.widget.fired in sessionStorage), and the invitation arrives as a reply does.
 * chat.js hands over its part with KefuWidget.attach(). */
(function () {
  'use strict';

  const I18n = window.KefuI18n;
  const SEEN_KEY = 'kefu.widget.seen';

  const hash = new URLSearchParams(location.hash.slice(1));
  let parentOrigin = null;
  try {
    parentOrigin = new URL(hash.get('origin') || '').origin;
  } catch (e) { /* not framed by the loader */ }
  if (parentOrigin === 'null') parentOrigin = null;
  const framed = window.parent !== window && parentOrigin !== null;

  // The site's language (data-lang, else the browser's as the loader chose it), when the tables
  // have it: set once chat.js has started the page's language (DOMContentLoaded comes after every
  // deferred script), which would otherwise put the browser's back.
  const lang = new URLSearchParams(location.search).get('lang');

  let open = !framed; // /widget opened on its own is simply on screen
  let hostPage = null;
  let chat = null;
  let details = null; // the host page's setName/setEmail, until the chat can save them
  let identity = null; // the host page's Kefu.identify, until the server refuses it
  let heard = null; // resolves loaderReady on the loader's first message
  let started = false;
  let maxAgentId = 0;
  let seenUpTo = null; // read once the storage is ready
  const unread = new Set();
  const FIRED_KEY = 'kefu.widget.fired';
  let rules = null; // the invitation rules, once the session can read them
  let ruleTimers = [];

  /* Whether this frame may use its own localStorage: a browser may refuse it to third-party
   * frames. */
  function storageWorks() {
    try {
      localStorage.setItem('kefu.widget.probe', '1');
      localStorage.removeItem('kefu.widget.probe');
      return true;
    } catch (e) {
      return false;
    }
  }

  function tell(msg) {
    if (framed) window.parent.postMessage(Object.assign({kefu: 1}, msg), parentOrigin);
  }

  // What the frame keeps: its own localStorage, or a copy in memory that the loader stores.
  const KEPT_KEYS = ['kefu.visitor.token', 'kefu.visitor.user', SEEN_KEY];
  const own = !framed || storageWorks();
  const memory = {};
  let kept = own; // whether what is kept survives a reload
  const storage = own ? window.localStorage : {
    getItem: (key) => (Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null),
    setItem(key, value) {
      memory[key] = String(value);
      if (KEPT_KEYS.includes(key)) tell({ev: 'keep', key, value: String(value)});
    },
    removeItem(key) {
      delete memory[key];
      if (KEPT_KEYS.includes(key)) tell({ev: 'keep', key, value: null});
    },
  };
  let storageLoaded = null;
  // The loader answers "ready" at once; a page that frames /widget without it never does.
  const storageReady = own ? Promise.resolve() : new Promise((resolve) => {
    storageLoaded = resolve;
    setTimeout(resolve, 3000);
  });

  function takeKept(copy) {
    if (!storageLoaded) return;
    if (copy && typeof copy === 'object') {
      for (const key of KEPT_KEYS) if (typeof copy[key] === 'string') memory[key] = copy[key];
      kept = true;
    }
    storageLoaded();
    storageLoaded = null;
    showNotice();
  }

  function showNotice() {
    const notice = document.getElementById('widget-storage-notice');
    if (notice) notice.hidden = kept;
  }
  storageReady.then(showNotice);

  function markSeen() {
    unread.clear();
    if (maxAgentId > seenUpTo) {
      seenUpTo = maxAgentId;
      try {
        storage.setItem(SEEN_KEY, String(seenUpTo));
      } catch (e) { /* the count then starts again with the next page */ }
    }
    tell({ev: 'unread', count: 0});
  }

  function setOpen(on) {
    if (on === open) return;
    open = on;
    if (on) {
      markSeen();
      if (chat) chat.shown();
    }
  }

  /* A page address from the host, as the visitor page would report its own (docs/API.md,
   * "Visitor details"): strings, cut to the server's limits. */
  function cleanPage(page) {
    const text = (v, max) => (typeof v === 'string' ? v.slice(0, max) : '');
    const url = text(page.url, 2048);
    if (!/^https?:/i.test(url)) return null;
    const referrer = text(page.referrer, 2048);
    return {url, title: text(page.title, 300), referrer: /^https?:/i.test(referrer) ? referrer : ''};
  }

  function saveDetails() {
    if (!chat || !details) return;
    const body = {};
    for (const field of ['name', 'email']) {
      if (typeof details[field] === 'string') body[field] = details[field].trim();
    }
    details = null;
    if (Object.keys(body).length > 0) chat.saveDetails(body);
  }

  /* The rules fired in this tab's session (the server also fires each once per visit). */
  function fired() {
    try {
      return JSON.parse(sessionStorage.getItem(FIRED_KEY)) || [];
    } catch (e) {
      return [];
    }
  }

  /* A rule's path pattern, as the server matches it: '*' stands for any characters, and the
   * pattern matches the start of the path. */
  function pathMatches(pattern, path) {
    const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    return new RegExp('^' + source).test(path);
  }

  /* Times the rules that apply to the page now (again at each page change). */
  function armRules() {
    ruleTimers.forEach(clearTimeout);
    ruleTimers = [];
    const page = hostPage || (framed ? null : {url: location.href});
    if (!rules || !chat || started || !page) return;
    let path;
    try {
      path = new URL(page.url).pathname;
    } catch (e) {
      return;
    }
    const done = fired();
    for (const rule of rules) {
      if (done.includes(rule.id) || !pathMatches(rule.path, path)) continue;
      ruleTimers.push(setTimeout(() => fire(rule), rule.seconds * 1000));
    }
  }

  function fire(rule) {
    if (started) return; // the visitor wrote, or was invited, meanwhile
    try {
      sessionStorage.setItem(FIRED_KEY, JSON.stringify(fired().concat(rule.id)));
    } catch (e) { /* the server remembers it for this visit all the same */ }
    chat.visitorApi('POST', '/api/visitor/invite-rules/' + rule.id + '/fire').catch(() => {});
  }

  window.addEventListener('message', (e) => {
    if (!framed || e.source !== window.parent || e.origin !== parentOrigin) return;
    const m = e.data;
    if (!m || m.kefu !== 1) return;
    if ('kept' in m) takeKept(m.kept);
    if (m.identity && typeof m.identity === 'object' && typeof m.identity.user_id === 'string') {
      const another = !identity || identity.user_id !== m.identity.user_id;
      identity = m.identity;
      if (another && chat && !heard) chat.identify();
    }
    if (heard) {
      heard();
      heard = null;
    }
    if (m.page && typeof m.page === 'object') {
      hostPage = cleanPage(m.page);
      if (chat) chat.pageChanged();
      armRules();
    }
    if (m.details && typeof m.details === 'object') {
      details = m.details;
      saveDetails();
    }
    if (m.cmd === 'open') setOpen(true);
    else if (m.cmd === 'close') setOpen(false);
  });

  document.addEventListener('DOMContentLoaded', () => {
    if (lang && I18n.tables[lang]) I18n.setLanguage(lang);
    const close = document.getElementById('widget-close');
    close.hidden = !framed;
    close.addEventListener('click', () => tell({ev: 'close'}));
    showNotice();
  });
  document.addEventListener('visibilitychange', () => {
    if (open && document.visibilityState === 'visible') markSeen();
  });
  document.addEventListener('keydown', (e) => {
    // Escape in the details form closes that form only (web/chat.js).
    if (e.key === 'Escape' && framed && !(e.target.closest && e.target.closest('#details-form'))) tell({ev: 'close'});
  });

  window.KefuWidget = {
    framed,
    storage,
    /* Resolves once storage holds what the loader kept (at once where the frame's own works). */
    storageReady,
    /* Resolves once the loader has said what it has (a signed user), or at once unframed. */
    loaderReady: framed ? new Promise((resolve) => {
      heard = resolve;
      setTimeout(resolve, 3000);
    }) : Promise.resolve(),
    /* The signed user to start a session with, or null. */
    identity: () => identity,
    /* The server refused it (forged, stale, replayed): the chat goes on without it. */
    identityRefused() {
      identity = null;
    },
    /* The chat is in front of the visitor: the tab is shown and so is the widget. */
    onScreen: () => open && document.visibilityState === 'visible',
    /* The host page's {url, title, referrer}, or null (then the frame's own). */
    hostPage: () => hostPage,
    /* chat.js's part: shown(), saveDetails(body), pageChanged(), identify(), visitorApi(). */
    attach(part) {
      chat = part;
      saveDetails();
      if (open) chat.shown();
    },
    /* chat.js has a session and its history: the invitation rules can be read and timed. */
    sessionReady() {
      if (rules || !chat || !chat.visitorApi) return;
      chat.visitorApi('GET', '/api/visitor/invite-rules').then((data) => {
        rules = Array.isArray(data.rules) ? data.rules : [];
        armRules();
      }, () => {});
    },
    /* Every message the page has (history and live); live: a new one that has just arrived. */
    message(message, live) {
      if (!started) {
        started = true;
        tell({ev: 'started'});
        armRules();
      }
      if (message.sender !== 'agent') return;
      if (seenUpTo === null) seenUpTo = Number(storage.getItem(SEEN_KEY)) || 0;
      maxAgentId = Math.max(maxAgentId, Number(message.id));
      if (open && document.visibilityState === 'visible') markSeen();
      else if (Number(message.id) > seenUpTo && !unread.has(message.id)) {
        unread.add(message.id);
        tell({ev: 'unread', count: unread.size});
      }
      // The host page hears that a reply came, not what it says: its other scripts need not
      // read the visitor's conversation.
      if (live) {
        tell({ev: 'message', live: true, message: {id: message.id, agent_name: message.agent_name || '', created_at: message.created_at}});
      }
    },
  };

  tell({ev: 'ready', keep: !own});
})();
