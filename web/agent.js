/* agent.js: the agent console (/agent).
 *
 * State lives in `convs` (conversation objects as the server sends them, kept up to date by push
 * events) and in the selected thread (a MessageList). The server is the authority on unread
 * counts: a conversation object (from GET /api/conversations, a `conversation` event, or the
 * answer to a read/status call) replaces ours. Between those, message events keep counts live:
 * a visitor message that is newer than the conversation's last_message, in a conversation the
 * agent is not looking at, adds one.
 *
 * The list shows one view of the desk (Unassigned, Mine, Open, Pending, Resolved, All: ?view= of
 * GET /api/conversations, chosen in #view-tabs and remembered per agent), with every view's
 * count from GET /api/conversations/counts, fetched again (debounced) after conversation and
 * message events. It comes in pages (then ?before=<next> when the agent scrolls to its end or
 * presses "Load older conversations"); live events add and move conversations whatever page they
 * are on, one item per id, and take out those that leave the view (but the selected one, which
 * stays until the agent moves on).
 *
 * Replies go through the agent's outbox (web/outbox.js, in localStorage under
 * kefu.outbox.agent.<agent id>, each entry with its conversation): shown at once as pending in
 * their conversation, sent in order with their idempotency keys, retried until the server has
 * them. */
(function () {
  'use strict';

  const {api, MessageList, showConnState, autoGrow, enterToSend, avatarClass, initials,
    visitorName, setVisitorAvatar, formatFull, formatTime, formatDay, perform, TypingSender,
    TypingState} = window.KefuUI;
  const I18n = window.KefuI18n;
  const t = I18n.t;
  // The console's language: the person's choice (remembered), else the browser's (web/i18n.js).
  I18n.init();

  const MAX_CHARS = 4000;
  const BASE_TITLE = 'kefu';
  // Keys of the tables: the text is looked up when it is shown, in the language of that moment.
  const SESSION_ENDED = 'console.sessionEnded';
  const ACCOUNT_DISABLED = 'console.accountDisabled';
  const $ = (id) => document.getElementById(id);

  const ui = {
    boot: $('boot'),
    loginView: $('login-view'),
    loginForm: $('login-form'),
    loginEmail: $('login-email'),
    loginPassword: $('login-password'),
    loginSubmit: $('login-submit'),
    loginError: $('login-error'),
    consoleView: $('console-view'),
    agentName: $('agent-name'),
    agentAvatar: $('agent-avatar'),
    logout: $('logout-button'),
    conn: $('conn-state'),
    list: $('conversation-list'),
    listScroll: $('list-scroll'),
    listEmpty: $('list-empty'),
    listEmptyTitle: $('list-empty-title'),
    listEmptyText: $('list-empty-text'),
    viewTabs: $('view-tabs'),
    deskBar: $('desk-bar'),
    statusSelect: $('status-select'),
    assigneeLabel: $('assignee-label'),
    claimButton: $('claim-button'),
    assignSelect: $('assign-select'),
    loadOlder: $('load-older'),
    unreadTotal: $('unread-total'),
    back: $('back-button'),
    threadAvatar: $('thread-avatar'),
    threadTitle: $('thread-title'),
    threadSub: $('thread-sub'),
    threadTyping: $('thread-typing'),
    statusButton: $('status-button'),
    thread: $('thread'),
    threadEmpty: $('thread-empty'),
    threadEmptyTitle: $('thread-empty-title'),
    threadEmptyText: $('thread-empty-text'),
    jump: $('jump-new'),
    replyForm: $('reply-form'),
    replyInput: $('reply-input'),
    replySend: $('reply-send'),
    replyError: $('reply-error'),
    teamError: $('team-error'),
  };

  // ?transport=ws|sse|longpoll|iframe|poll forces one; otherwise KefuPush chooses (and falls back).
  const transport = window.KefuPush.transportFromURL();

  let me = null;              // {agent, csrf}
  let sessionGen = 0;         // bumps on every login and logout
  let push = null;
  const convs = new Map();    // id -> conversation
  const fetching = new Set(); // conversation ids being fetched (unknown ids seen in events)
  let selectedId = null;
  let threadGen = 0;          // bumps on every selection, so a slow load cannot fill another thread
  let threadLoading = false;
  let threadReady = Promise.resolve(); // settles when the selected thread has loaded
  const readPosted = new Map();   // conversation id -> highest up_to sent
  const visitorRead = new Map();  // conversation id -> visitor's read mark (from live read events)
  const readTimers = new Map();
  const drafts = new Map();       // conversation id -> unsent reply text
  let outbox = null;              // this agent's unsent replies (a KefuOutbox)
  let nextPage = null;            // the list's "next": older conversations are still to load
  let pagesLoaded = 0;
  let loadingOlder = null;        // the request for them, while it runs
  const VIEWS = ['unassigned', 'mine', 'open', 'pending', 'resolved', 'snoozed', 'all'];
  let view = 'all';               // the view the list shows
  let listGen = 0;                // bumps on every change of view, so a slow page cannot fill another
  let countsTimer = null;
  let countsGen = 0;
  let teamFilter = null;          // the team the list is filtered to (web/teams.js), or null
  let teamPanelTimer = null;      // the team panel's open counts, read again after changes

  /* Conversations per page: the server's default (200); ?page_size= is for tests only, so that
   * paging can be tried without hundreds of conversations. */
  const PAGE_SIZE = (() => {
    const n = Number(new URLSearchParams(location.search).get('page_size'));
    return Number.isInteger(n) && n >= 1 && n <= 500 ? n : 0;
  })();

  const thread = new MessageList(ui.thread, {
    me: 'agent',
    own: (msg) => msg.sender === 'agent' && !!me && Number(msg.agent_id) === Number(me.agent.id),
    pendingAuthor: () => (me ? me.agent.name || me.agent.email : null),
    onRetry: (key) => { if (outbox) outbox.retry(key); },
    onDiscard: (key) => { if (outbox) outbox.discard(key); },
    otherName(msg) {
      const c = convs.get(msg.conversation_id);
      return c ? visitorName(c.visitor) : t('visitor.numbered', {id: msg.visitor_id});
    },
    otherAvatar(node, msg) {
      const c = convs.get(msg.conversation_id);
      setVisitorAvatar(node, c ? c.visitor : {id: msg.visitor_id, name: ''});
    },
    // Agents send their session cookie: a file's URL is its own (web/attachments.js).
    renderAttachment: (msg) => window.KefuAttach.render(msg, (a) => Promise.resolve(a.url)),
    onChange: () => updateThreadEmpty(),
    onUnseenBelow() {
      ui.jump.hidden = false;
    },
  });

  /* The list as drawn (web/conversation_list.js); convs holds what it shows. */
  const convList = new window.KefuConversationList({
    list: ui.list, scroll: ui.listScroll, empty: ui.listEmpty, loadOlder: ui.loadOlder,
  }, {
    conversations: () => convs.values(),
    waitLimit: () => alerts.waitLimit(),
    stateOf(c) {
      const unsent = pendingFor(c.id);
      return {
        selected: c.id === selectedId,
        typing: visitorTyping.has(c.id),
        unsent: unsentMark(unsent),
        myName: me ? me.agent.name : null,
        myId: me ? me.agent.id : null,
      };
    },
    onSelect: (id) => select(id),
    onLoadOlder: () => loadOlder(),
  });

  /* The team's presence, and this agent's own Online / Away. */
  const team = new window.KefuTeam({
    list: $('team-list'),
    count: $('team-count'),
    status: $('agent-status'),
    dot: $('agent-presence'),
    api: (method, path, body) => agentApi(method, path, body),
    onError: (text) => {
      ui.teamError.textContent = text;
      ui.teamError.hidden = false;
      setTimeout(() => { ui.teamError.hidden = true; }, 6000);
    },
    onChange: () => fillAssignSelect(),
  });

  /* Team settings: one's own name and password; an admin's agents. */
  const teamSettings = new window.KefuTeamAdmin({
    dialog: $('team-dialog'),
    api: (method, path, body) => agentApi(method, path, body),
    team,
    me: () => me,
    onSelfChanged: (agent) => {
      if (!me) return;
      me.agent.name = agent.name;
      ui.agentName.textContent = agent.name || agent.email;
      ui.agentAvatar.textContent = initials(agent.name || agent.email);
    },
  });
  $('team-settings-button').addEventListener('click', () => teamSettings.open());

  /* Teams: the rail's filters, the desk bar's Team select, an admin's Teams dialog. */
  const teams = new window.KefuTeams({
    filters: $('team-filters'),
    select: $('team-select'),
    dialog: $('teams-dialog'),
    button: $('teams-button'),
    api: (method, path, body) => agentApi(method, path, body),
    team,
    me: () => me,
    onFilter: (id) => {
      teamFilter = id;
      restartList();
    },
    onMove: (id) => deskChange($('team-select'), '/assign', {team_id: id}, id === null ? 'thread.what.leaveTeam' : 'thread.what.moveTeam'),
  });

  /* Waiting times move on in the list, and waits past the reminder escalate (web/alerts.js). */
  setInterval(() => {
    if (!me) return;
    convList.tickWaits();
    const myId = Number(me.agent.id);
    alerts.remind(convs.values(), {
      id: myId,
      admin: me.agent.role === 'admin',
      online: $('agent-status').value === 'online',
      inTeam: (teamId) => {
        const t = teams.teams.get(Number(teamId));
        return !!t && (t.members || []).map(Number).includes(myId);
      },
    });
  }, 5000);

  /* The visitor panel beside the thread, and the admin's Settings (web/visitor_panel.js). */
  const visitorPanel = new window.KefuVisitorPanel({
    root: $('visitor-panel'),
    api: (method, path, body) => agentApi(method, path, body),
    onOpen: (id) => openHit({conversation_id: id}),
  });
  let typingPreviewOn = false;
  const typingPreviews = new Map(); // conversation id -> the visitor's draft, while it is shown
  const deskSettings = new window.KefuDeskSettings({
    dialog: $('settings-dialog'),
    button: $('settings-button'),
    api: (method, path, body) => agentApi(method, path, body),
    onChange: (settings) => {
      typingPreviewOn = settings.typing_preview === true;
      if (!typingPreviewOn) typingPreviews.clear();
      showTypingPreview();
    },
  });

  /* The admin's API tokens and webhooks, in the same dialog (web/integrations.js). */
  const integrations = new window.KefuIntegrations({
    dialog: $('settings-dialog'),
    api: (method, path, body) => agentApi(method, path, body),
  });
  $('settings-button').addEventListener('click', () => integrations.load());

  /* "Visitor is typing: …" under the selected thread, while the preview is on and they type. */
  function showTypingPreview() {
    const text = selectedId !== null && typingPreviewOn ? typingPreviews.get(selectedId) : undefined;
    $('typing-preview').hidden = !text;
    $('typing-preview-text').textContent = text || '';
  }

  function handleTyping(ev) {
    const id = Number(ev.conversation_id);
    if (ev.typing === true && typeof ev.text === 'string' && ev.text) typingPreviews.set(id, ev.text);
    else if (ev.typing !== true) typingPreviews.delete(id);
    visitorTyping.set(id, ev.typing === true);
    showTypingPreview();
  }

  /* Visitors online, invitations and their rules (web/invite.js). */
  const visitors = new window.KefuVisitors({
    dialog: $('visitors-dialog'),
    button: $('visitors-button'),
    api: (method, path, body) => agentApi(method, path, body),
    admin: () => !!me && me.agent.role === 'admin',
  });

  /* Reports: everyone's for an admin, one's own for an agent (the server decides). */
  const reports = new window.KefuReports({
    dialog: $('reports-dialog'),
    button: $('reports-button'),
    api: (method, path) => agentApi(method, path),
  });

  /* Keyboard: j/k move through the list, r replies, e resolves, c claims, ? lists them. */
  function stepConversation(delta) {
    if (ui.listScroll.hidden) return; // search results stand in the list's place
    const items = [...ui.list.querySelectorAll('.conv-item')];
    if (!items.length) return;
    const at = items.findIndex((el) => Number(el.dataset.id) === selectedId);
    const next = at < 0 ? items[delta > 0 ? 0 : items.length - 1] : items[at + delta];
    if (!next) return;
    select(Number(next.dataset.id), {focusReply: false});
    next.focus();
    next.scrollIntoView({block: 'nearest'});
  }
  const shortcuts = new window.KefuShortcuts({
    dialog: $('shortcuts-dialog'),
    button: $('shortcuts-button'),
    actions: {
      next: () => me && stepConversation(1),
      previous: () => me && stepConversation(-1),
      reply: () => {
        if (!me || selectedId === null || ui.replyInput.disabled) return;
        replyMode.set(false);
        ui.replyInput.focus();
      },
      note: () => {
        if (!me || selectedId === null || ui.replyInput.disabled) return;
        replyMode.set(true);
        ui.replyInput.focus();
      },
      resolve: () => { if (me && !ui.statusButton.hidden && !ui.statusButton.disabled) ui.statusButton.click(); },
      claim: () => { if (me && !ui.claimButton.hidden && !ui.claimButton.disabled) ui.claimButton.click(); },
      snooze: () => {
        const c = me && selectedId !== null ? convs.get(selectedId) : null;
        if (!c || c.status === 'snoozed' || ui.statusSelect.disabled) return;
        ui.statusSelect.value = 'snoozed';
        ui.statusSelect.dispatchEvent(new Event('change'));
      },
      leave: () => {
        ui.replyInput.blur();
        const item = selectedId !== null ? convList.item(selectedId) : null;
        if (item) item.focus();
      },
    },
  });

  /* Sounds, desktop notifications and the tab icon's count (web/alerts.js). */
  const alerts = new window.KefuAlerts({
    button: $('notify-button'), dialog: $('notify-dialog'), banner: $('sound-banner'),
    bannerButton: $('sound-enable'), testButton: $('notify-test'),
    desktopState: $('notify-desktop-state'), desktopButton: $('notify-desktop-button'), remind: $('notify-remind'),
    boxes: {
      soundConversation: $('notify-sound-conversation'), soundMessage: $('notify-sound-message'),
      whileFocused: $('notify-while-focused'), desktop: $('notify-desktop'),
    },
  }, {
    onOpen: (id) => {
      if (convs.has(id)) select(id);
    },
  });

  /* The search box: its hits replace the list while it holds a query (web/search.js). */
  const search = new window.KefuSearch({
    form: $('search-form'), input: $('search-input'), panel: $('search-results'),
    status: $('search-status'), list: $('search-list'), more: $('search-more'),
    hide: [ui.listScroll, ui.viewTabs, $('team-filters')],
  }, {
    api: (method, path, body, extra) => agentApi(method, path, body, extra),
    onOpen: (hit) => openHit(hit),
  });

  /* Canned replies: "/" + a shortcut in the reply box (its keys before the box's own Enter),
   * and the dialog that keeps them (web/canned.js). */
  const canned = new window.KefuCanned({api: (method, path, body) => agentApi(method, path, body)});
  new window.KefuCannedPicker({
    input: ui.replyInput,
    canned,
    fill: () => {
      const c = selectedId !== null ? convs.get(selectedId) : null;
      return {visitor: c && c.visitor ? c.visitor.name : '', agent: me ? me.agent.name || '' : ''};
    },
  });
  const cannedDialog = new window.KefuCannedDialog({dialog: $('canned-dialog'), canned, me: () => me});
  $('canned-button').addEventListener('click', () => cannedDialog.open());

  const fitReply = autoGrow(ui.replyInput);
  enterToSend(ui.replyInput, ui.replyForm);

  // A file goes to the visitor as a reply (never as a note) in the open conversation.
  ui.attachButton = $('attach-button');
  window.KefuAttach.bindComposer({
    button: ui.attachButton,
    input: $('attach-input'),
    status: $('attach-status'),
    statusText: $('attach-status-text'),
    progress: $('attach-progress'),
    error: $('attach-error'),
    target: () => (me && selectedId !== null
      ? {url: '/api/conversations/' + selectedId + '/attachments', headers: {'X-CSRF-Token': me.csrf}} : null),
    onSent: (message) => handleMessage(message),
  });

  /* ---- API with the session's CSRF token; a 401 anywhere means the session is over ---- */

  /* extra: {headers, signal} for api(). */
  async function agentApi(method, path, body, extra) {
    const x = extra || {};
    const opts = {body, csrf: me && me.csrf, headers: x.headers, signal: x.signal};
    try {
      return await api(method, path, opts);
    } catch (e) {
      if (e.status === 401) {
        sessionEnded(e.code === 'disabled' ? ACCOUNT_DISABLED : SESSION_ENDED);
        throw e;
      }
      if (e.status === 403 && e.code === 'csrf' && method !== 'GET') {
        // The token may have been rotated (e.g. a login in another tab): fetch it and retry once.
        const fresh = await api('GET', '/api/agent/me', {signal: x.signal});
        if (me) me.csrf = fresh.csrf;
        return api(method, path, Object.assign({}, opts, {csrf: fresh.csrf}));
      }
      throw e;
    }
  }

  /* ---- login / logout ---- */

  /* message: what showLoginError() takes, or nothing. */
  function showLogin(message) {
    ui.boot.hidden = true;
    ui.consoleView.hidden = true;
    ui.loginView.hidden = false;
    document.body.classList.remove('show-thread');
    document.title = BASE_TITLE;
    if (message) showLoginError(message);
    (ui.loginEmail.value ? ui.loginPassword : ui.loginEmail).focus();
  }

  /* Our own words for why a sign-in failed; for what we do not expect, the text of the error's
   * code (never the server's English). */
  function loginErrorText(err) {
    if (err.code === 'disabled') return t(ACCOUNT_DISABLED);
    if (err.status === 401) return t('login.wrong');
    if (err.status === 429) {
      const minutes = Math.ceil((err.retryAfterMs || 0) / 60000);
      return minutes > 1 ? t('login.tooManyMinutes', {count: minutes}) : t('login.tooManyMinute');
    }
    if (err.status === 503) return t('login.busy');
    return err.status === 0 ? I18n.errorText(err) : t('login.failed', {reason: I18n.errorText(err)});
  }

  /* The login card's error line: what: a key of the tables, a failed sign-in's error, or
   * {opening: error} when the console could not even ask for its session. Kept, so that a change
   * of language says it again in the other. */
  let loginError = null;
  function showLoginError(what) {
    loginError = what;
    ui.loginError.textContent = typeof what === 'string' ? t(what)
      : what.opening ? I18n.errorText(what.opening) : loginErrorText(what);
    ui.loginError.hidden = false;
  }

  ui.loginForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    ui.loginError.hidden = true;
    loginError = null;
    const email = ui.loginEmail.value.trim();
    const password = ui.loginPassword.value;
    if (!email || !password) {
      showLoginError('login.missing');
      (email ? ui.loginPassword : ui.loginEmail).focus();
      return;
    }
    ui.loginSubmit.disabled = true;
    ui.loginSubmit.textContent = t('login.signingIn');
    try {
      const data = await api('POST', '/api/agent/login', {body: {email, password}});
      ui.loginPassword.value = '';
      await enterConsole(data);
    } catch (err) {
      showLoginError(err);
      ui.loginPassword.select();
    } finally {
      ui.loginSubmit.disabled = false;
      ui.loginSubmit.textContent = t('login.submit');
    }
  });

  ui.logout.addEventListener('click', async () => {
    ui.logout.disabled = true;
    // The push client stops first: the server ends this session's streams at logout, and a
    // client still running would take that for a dropped connection and try to reconnect.
    if (push) push.stop();
    push = null;
    try {
      await api('POST', '/api/agent/logout', {body: {}, csrf: me && me.csrf});
    } catch (e) { /* the session is dropped locally either way */ }
    ui.logout.disabled = false;
    resetConsole();
    showLogin();
  });

  function sessionEnded(message) {
    if (!me) return;
    resetConsole();
    showLogin(message);
  }

  /* A refused push stream (401) does not say why; the session's answer does (code `disabled`). */
  async function pushRefused() {
    const gen = sessionGen;
    const e = await api('GET', '/api/agent/me').then(() => null, (err) => err);
    if (gen === sessionGen) sessionEnded(e && e.code === 'disabled' ? ACCOUNT_DISABLED : SESSION_ENDED);
  }

  function resetConsole() {
    typing.stop();
    if (push) push.stop();
    push = null;
    team.stop();
    teams.stop();
    teamFilter = null;
    clearTimeout(teamPanelTimer);
    if ($('team-dialog').open) $('team-dialog').close();
    if ($('canned-dialog').open) $('canned-dialog').close();
    deskSettings.stop();
    visitorPanel.reset();
    typingPreviews.clear();
    canned.changed(); // the next agent's are others
    alerts.stop();
    // Unsent replies stay stored for this agent's next login; nothing more goes out now.
    if (outbox) outbox.stop();
    outbox = null;
    nextPage = null;
    pagesLoaded = 0;
    loadingOlder = null;
    listGen++;
    clearTimeout(countsTimer);
    countsTimer = null;
    countsGen++;
    showCounts(null);
    me = null;
    visitorTyping.clear();
    sessionGen++;
    convs.clear();
    fetching.clear();
    readPosted.clear();
    visitorRead.clear();
    for (const t of readTimers.values()) clearTimeout(t);
    readTimers.clear();
    convList.clear();
    showLoadOlder();
    deselect();
    drafts.clear();
    search.reset();
  }

  async function enterConsole(session) {
    me = session;
    enteredAt = Date.now() - 5000; // the server's clock may be a little behind ours
    alerts.start(me.agent.id);
    const gen = ++sessionGen;
    ui.agentName.textContent = me.agent.name || me.agent.email;
    ui.agentAvatar.textContent = initials(me.agent.name || me.agent.email);
    view = savedView();
    showView();
    ui.loginView.hidden = true;
    ui.boot.hidden = true;
    ui.consoleView.hidden = false;
    showConnState(ui.conn, 'connecting');
    updateThreadEmpty();
    outbox = new window.KefuOutbox({
      storageKey: 'kefu.outbox.agent.' + me.agent.id,
      paused: true, // until push has its cursor: the thread and list are then in place
      send: sendReply,
      onChange: renderOutbox,
      onDelivered: (entry, message) => {
        handleMessage(message);
        if (push) push.nudge(); // the server is back: so may the stream be
      },
      // agentApi has ended the session: the replies wait, stored, for the next login.
    });
    renderOutbox();
    // The list gives the cursor push starts from, so keep trying until it loads (or the session
    // ends, or another login replaces this one).
    for (let attempt = 0; ; attempt++) {
      try {
        const cursor = await loadConversations();
        if (gen === sessionGen) {
          startPush(cursor);
          outbox.resume();
          team.start(me.agent.id);
          teams.start();
          deskSettings.start(me.agent.role === 'admin');
          visitors.start();
          scheduleCounts(0);
        }
        return;
      } catch (e) {
        if (e.status === 401 || gen !== sessionGen) return;
        showConnState(ui.conn, navigator.onLine === false ? 'offline' : 'reconnecting');
        await new Promise((resolve) => setTimeout(resolve, Math.min(15000, 1000 * Math.pow(2, attempt))));
        if (gen !== sessionGen) return;
      }
    }
  }

  /* ---- conversation list ---- */

  function listPath(before) {
    const params = new URLSearchParams();
    if (view !== 'all') params.set('view', view);
    if (teamFilter !== null) params.set('team', String(teamFilter));
    if (PAGE_SIZE) params.set('limit', String(PAGE_SIZE));
    if (before) params.set('before', before);
    const q = params.toString();
    return '/api/conversations' + (q ? '?' + q : '');
  }

  /* The newest page of the list (GET /api/conversations); replaces our objects with the
   * server's. Returns the push cursor. Pages further down, loaded before, stay: what changed
   * there since has moved up into this page (activity only grows) or came as live events. Only
   * a list that fits in one page says which conversations are gone. */
  async function loadConversations() {
    const gen = sessionGen;
    const lgen = listGen;
    const data = await agentApi('GET', listPath(null));
    if (gen !== sessionGen) throw new Error('session changed');
    if (lgen !== listGen) return data.cursor || '0'; // another view's: that view loads its own
    const fresh = new Set();
    for (const c of data.conversations || []) {
      fresh.add(c.id);
      convs.set(c.id, merge(c));
    }
    if (!data.next) {
      for (const id of Array.from(convs.keys())) {
        if (!fresh.has(id) && id !== selectedId) {
          convs.delete(id);
          convList.remove(id);
          if (selectedId === id) deselect();
        }
      }
      nextPage = null;
      pagesLoaded = 1;
    } else if (pagesLoaded <= 1) {
      nextPage = data.next;
      pagesLoaded = 1;
    }
    for (const c of convs.values()) convList.render(c);
    convList.order();
    refreshSelectedHeader();
    updateThreadEmpty();
    updateTotals();
    showLoadOlder();
    if (selectedId !== null && viewing(selectedId)) scheduleRead(selectedId);
    return data.cursor || '0';
  }

  /* The next page down (?before=<next>), merged with what the list has: one item per id. */
  function loadOlder() {
    if (!nextPage || !me) return Promise.resolve();
    if (loadingOlder) return loadingOlder;
    const gen = sessionGen;
    const lgen = listGen;
    const before = nextPage;
    showLoadOlder('loading');
    loadingOlder = (async () => {
      try {
        const data = await agentApi('GET', listPath(before));
        if (gen !== sessionGen || lgen !== listGen) return;
        for (const c of data.conversations || []) {
          const merged = merge(c);
          convs.set(c.id, merged);
          convList.render(merged);
        }
        if (nextPage === before) {
          nextPage = data.next || null;
          pagesLoaded++;
        }
        convList.order();
        updateTotals();
        showLoadOlder();
      } catch (e) {
        if (gen === sessionGen && lgen === listGen) showLoadOlder('error');
      } finally {
        if (gen === sessionGen && lgen === listGen) loadingOlder = null;
      }
    })();
    return loadingOlder;
  }

  function showLoadOlder(state) {
    convList.showLoadOlder(!!nextPage && !!me, state);
  }

  function updateTotals() {
    let total = 0;
    for (const c of convs.values()) total += Math.max(0, c.unread | 0);
    document.title = total > 0 ? '(' + total + ') ' + BASE_TITLE : BASE_TITLE;
    ui.unreadTotal.hidden = total === 0;
    ui.unreadTotal.textContent = t('list.unreadTotal', {count: total});
    alerts.unread(total);
    // The list changed: the empty thread pane's advice follows what is on screen.
    if (selectedId === null) updateThreadEmpty();
  }

  /* Replace our copy with the server's. A snapshot may lag behind message events we already
   * applied (e.g. taken before a reconnect gap); then keep our newer last message. */
  function merge(c) {
    const old = convs.get(c.id);
    if (old && old.last_message && (!c.last_message || c.last_message.id < old.last_message.id)) {
      return Object.assign({}, c, {last_message: old.last_message, unread: Math.max(c.unread | 0, old.unread | 0)});
    }
    return c;
  }

  function applyConversation(c) {
    if (!c || c.id == null) return;
    scheduleCounts();
    c = merge(c);
    if (!inView(c) && c.id !== selectedId) {
      // It left the view (claimed, resolved…), or was never in it.
      if (convs.delete(c.id)) {
        convList.remove(c.id);
        convList.order();
        updateTotals();
      }
      return;
    }
    convs.set(c.id, c);
    convList.render(c);
    convList.order();
    updateTotals();
    if (c.id === selectedId) {
      refreshSelectedHeader();
      showVisitorRead(c.id);
      if (c.unread > 0 && viewing(c.id)) scheduleRead(c.id);
    }
  }

  /* "Seen" under our newest message the visitor has read. Live `read` events give the mark; a
   * conversation object may also carry it as visitor_read_up_to (optional: API.md does not list
   * it, but with it the mark survives a reload). */
  function showVisitorRead(id) {
    const c = convs.get(id);
    const mark = Math.max(visitorRead.get(id) || 0, (c && Number(c.visitor_read_up_to)) || 0);
    if (mark && id === selectedId) thread.markSeen(mark);
  }

  /* Says a conversation that opened while the console is open to screen readers (the list's
   * items are not a live region: a reload or a view change would read them all out). */
  const announced = new Set();
  let enteredAt = 0;
  function announceNew(c) {
    if (!c || convs.has(c.id) || announced.has(c.id) || c.status !== 'open' || c.assignee) return;
    if (!(Number(c.created_at) >= enteredAt)) return;
    announced.add(c.id);
    const region = $('list-announcer');
    region.textContent = '';
    // A new text in a later task: read out even when it is the same words as the last one.
    setTimeout(() => { region.textContent = t('console.newConversationFrom', {name: visitorName(c.visitor)}); }, 50);
    alerts.conversation(c, visitorName(c.visitor));
  }

  /* An event named a conversation we do not have (new, or missed while disconnected). */
  async function fetchConversation(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const data = await agentApi('GET', '/api/conversations/' + id);
      if (me) {
        // A message of a new conversation may come before its conversation event (another loop
        // or node published it): the fetch, not the event, then makes it known here.
        announceNew(data.conversation);
        applyConversation(data.conversation);
      }
    } catch (e) { /* the next list refresh will catch up */ } finally {
      fetching.delete(id);
    }
  }

  /* ---- views and their counts ---- */

  /* Whether the view shows conversation c (what the server's ?view= selects). */
  function inView(c) {
    if (teamFilter !== null && !(c.team && Number(c.team.id) === teamFilter)) return false;
    const mine = !!me && !!c.assignee && Number(c.assignee.id) === Number(me.agent.id);
    switch (view) {
      case 'unassigned': return c.status === 'open' && !c.assignee;
      case 'mine': return mine && c.status !== 'resolved';
      case 'all': return true;
      default: return c.status === view;
    }
  }

  function viewKey() {
    return 'kefu.view.' + (me ? me.agent.id : '');
  }

  function savedView() {
    let v = null;
    try {
      v = localStorage.getItem(viewKey());
    } catch (e) { /* private mode: the default */ }
    return VIEWS.includes(v) ? v : 'all';
  }

  function showView() {
    for (const tab of ui.viewTabs.querySelectorAll('.view-tab')) {
      const on = tab.dataset.view === view;
      tab.classList.toggle('active', on);
      tab.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
    // The empty list's words for each view: list.empty.<view> and list.emptyText.<view>.
    ui.listEmptyTitle.textContent = t('list.empty.' + view);
    ui.listEmptyText.textContent = t('list.emptyText.' + view);
  }

  /* Another view: the list starts over from its first page (the selected conversation stays
   * open, and in the list until the agent moves on). */
  async function setView(v) {
    if (!VIEWS.includes(v) || v === view || !me) return;
    view = v;
    try {
      localStorage.setItem(viewKey(), v);
    } catch (e) { /* not remembered */ }
    showView();
    await restartList();
  }

  /* The list from its first page again, for another view or team. */
  async function restartList() {
    if (!me) return;
    listGen++;
    nextPage = null;
    pagesLoaded = 0;
    loadingOlder = null;
    const kept = selectedId !== null ? convs.get(selectedId) : null;
    convs.clear();
    convList.clear();
    if (kept) {
      convs.set(kept.id, kept);
      convList.render(kept);
    }
    convList.order();
    showLoadOlder();
    scheduleCounts(0);
    try {
      await loadConversations();
    } catch (e) {
      if (e.status !== 401 && me) showLoadOlder('error');
    }
  }

  ui.viewTabs.addEventListener('click', (e) => {
    const tab = e.target.closest('.view-tab');
    if (tab) setView(tab.dataset.view);
  });

  /* The counts, soon: a burst of events makes one request. */
  function scheduleCounts(delay) {
    if (!me || countsTimer) return;
    countsTimer = setTimeout(loadCounts, delay === undefined ? 400 : delay);
  }

  async function loadCounts() {
    countsTimer = null;
    const gen = ++countsGen;
    try {
      const data = await agentApi('GET', '/api/conversations/counts');
      if (gen === countsGen && me) {
        showCounts(data.counts);
        teams.showCounts(data.teams, view);
      }
    } catch (e) { /* the next event asks again */ }
  }

  function showCounts(counts) {
    for (const tab of ui.viewTabs.querySelectorAll('.view-tab')) {
      const n = counts ? counts[tab.dataset.view] : undefined;
      const badge = tab.querySelector('.view-count');
      badge.textContent = typeof n === 'number' ? (n > 999 ? '999+' : String(n)) : '';
      tab.dataset.count = typeof n === 'number' ? String(n) : '';
    }
  }

  /* ---- the selected thread ---- */

  function isPhone() {
    return window.matchMedia('(max-width: 760px)').matches;
  }

  /* Is the agent looking at this conversation right now? */
  function viewing(id) {
    return id === selectedId && document.visibilityState === 'visible';
  }

  /* focusReply false: from the keyboard's j and k, which go on from the list. */
  async function select(id, {focusReply = true} = {}) {
    const c = convs.get(id);
    if (!c) return;
    document.body.classList.add('show-thread');
    if (id === selectedId) {
      if (focusReply && !isPhone()) ui.replyInput.focus();
      return;
    }
    const previous = selectedId;
    saveDraft();
    typing.stop();
    selectedId = id;
    if (previous !== null && convs.has(previous)) leaveSelected(previous);
    convList.render(c);
    thread.clear();
    thread.setPending(pendingFor(id));
    ui.jump.hidden = true;
    ui.replyError.hidden = true;
    ui.replyInput.disabled = false;
    ui.replySend.disabled = false;
    ui.attachButton.disabled = false;
    // Each conversation keeps its own unsent draft, so a reply never lands in the wrong one.
    ui.replyInput.value = drafts.get(id) || '';
    fitReply();
    refreshSelectedHeader();
    if (focusReply && !isPhone()) ui.replyInput.focus();

    const gen = ++threadGen;
    threadLoading = true;
    updateThreadEmpty();
    let loaded;
    threadReady = new Promise((resolve) => { loaded = resolve; });
    try {
      let after = 0;
      for (;;) {
        const data = await agentApi('GET', '/api/conversations/' + id + '/messages?after=' + after);
        if (gen !== threadGen) return;
        const batch = data.messages || [];
        thread.addAll(batch, {initial: true});
        if (!data.more || batch.length === 0) break;
        after = batch[batch.length - 1].id;
      }
      showVisitorRead(id);
    } catch (e) {
      if (gen === threadGen) showReplyError(t('thread.loadFailed', {reason: I18n.errorText(e)}));
      return;
    } finally {
      loaded();
      if (gen === threadGen) {
        threadLoading = false;
        updateThreadEmpty();
      }
    }
    if (viewing(id)) scheduleRead(id, 0);
  }

  /* A search hit: its conversation opens (fetched first when the list has not loaded it), and
   * the thread (loaded whole) scrolls to the hit's message and marks it for a moment. */
  async function openHit(hit) {
    const id = Number(hit.conversation_id);
    const gen = sessionGen;
    if (!convs.has(id)) await fetchConversation(id);
    if (gen !== sessionGen || !convs.has(id)) return;
    if (id !== selectedId) select(id);
    else document.body.classList.add('show-thread');
    const before = threadGen;
    await threadReady;
    if (before !== threadGen || id !== selectedId) return; // another conversation was chosen
    const node = ui.thread.querySelector('.msg[data-id="' + Number(hit.message_id) + '"]');
    if (!node) return;
    for (const old of ui.thread.querySelectorAll('.msg.search-target')) old.classList.remove('search-target');
    node.scrollIntoView({block: 'center'});
    node.classList.add('search-target');
    setTimeout(() => node.classList.remove('search-target'), 2400);
  }

  function saveDraft() {
    if (selectedId === null) return;
    if (ui.replyInput.value.trim()) drafts.set(selectedId, ui.replyInput.value);
    else drafts.delete(selectedId);
  }

  /* The conversation the agent moved away from: out of the list if it left the view meanwhile. */
  function leaveSelected(id) {
    const c = convs.get(id);
    if (!c) return;
    if (inView(c)) {
      convList.render(c);
      return;
    }
    convs.delete(id);
    convList.remove(id);
    convList.order();
    updateTotals();
  }

  function deselect() {
    saveDraft();
    typing.stop();
    const previous = selectedId;
    selectedId = null;
    if (previous !== null) leaveSelected(previous);
    ui.replyInput.value = '';
    fitReply();
    threadGen++;
    threadLoading = false;
    thread.clear();
    thread.setPending([]);
    ui.jump.hidden = true;
    ui.replyInput.disabled = true;
    ui.replySend.disabled = true;
    ui.attachButton.disabled = true;
    ui.replyInput.placeholder = t('composer.select');
    ui.replyError.hidden = true;
    for (const item of ui.list.querySelectorAll('.conv-item.selected')) {
      item.classList.remove('selected');
      item.setAttribute('aria-selected', 'false');
    }
    refreshSelectedHeader();
    updateThreadEmpty();
  }

  const STATUSES = ['open', 'pending', 'resolved', 'snoozed'];

  /* "Today" and "yesterday" by the calendar, whatever language formatDay() speaks. */
  function daysBefore(ms) {
    const day = (x) => new Date(x).setHours(0, 0, 0, 0);
    return Math.round((day(Date.now()) - day(ms)) / 86400000);
  }

  function refreshSelectedHeader() {
    const c = selectedId !== null ? convs.get(selectedId) : null;
    visitorPanel.show(c);
    showTypingPreview();
    ui.statusButton.hidden = !c;
    ui.deskBar.hidden = !c;
    ui.threadAvatar.hidden = !c;
    showThreadTyping();
    document.body.classList.toggle('has-selection', !!c);
    showThreadRating(c);
    if (!c) {
      ui.threadTitle.textContent = t('thread.none');
      ui.threadSub.textContent = '';
      return;
    }
    ui.threadTitle.textContent = visitorName(c.visitor);
    ui.threadAvatar.className = 'avatar ' + avatarClass(c.visitor && c.visitor.id);
    setVisitorAvatar(ui.threadAvatar, c.visitor);
    const parts = [];
    if (c.visitor && c.visitor.name) parts.push(t('visitor.numbered', {id: c.visitor.id}));
    parts.push(c.status === 'snoozed' && c.snoozed_until
      ? t('thread.snoozedUntil', {time: window.KefuSnooze.format(c.snoozed_until)})
      : STATUSES.includes(c.status) ? t('console.status.' + c.status) : c.status);
    if (c.created_at) {
      const days = daysBefore(c.created_at);
      const when = days <= 0 ? formatTime(c.created_at)
        : days === 1 ? new Intl.RelativeTimeFormat(I18n.locale() || 'en', {numeric: 'auto'}).format(-1, 'day')
          : formatDay(c.created_at);
      parts.push(t('thread.started', {when}));
    }
    ui.threadSub.textContent = parts.join(' · ');
    ui.threadSub.title = c.created_at ? t('thread.startedFull', {time: formatFull(c.created_at)}) : '';
    const resolved = c.status === 'resolved';
    ui.threadSub.classList.toggle('is-resolved', resolved);
    ui.replyInput.placeholder = replyMode.note ? t('composer.placeholderNote')
      : resolved ? t('composer.placeholderResolved') : t('composer.placeholder');
    ui.statusButton.textContent = resolved ? t('thread.reopen') : t('thread.resolve');
    ui.statusButton.classList.toggle('btn-primary', resolved);
    ui.statusButton.classList.toggle('btn-secondary', !resolved);
    ui.statusSelect.value = c.status;
    ui.deskBar.dataset.status = c.status;
    const mine = !!c.assignee && !!me && Number(c.assignee.id) === Number(me.agent.id);
    ui.assigneeLabel.textContent = !c.assignee ? t('thread.unassigned')
      : mine ? t('thread.assignedToYou') : t('thread.assignedTo', {name: c.assignee.name || c.assignee.email});
    ui.assigneeLabel.classList.toggle('unassigned', !c.assignee);
    // Claim what nobody holds; take over what someone else holds (an assignment to oneself).
    ui.claimButton.hidden = mine || (!c.assignee && resolved);
    ui.claimButton.textContent = c.assignee ? t('thread.assignToMe') : t('thread.claim');
    $('transcript-link').href = '/api/conversations/' + c.id + '/transcript?format=txt';
    fillAssignSelect();
    teams.fillSelect(c);
  }

  /* The visitor's latest rating under the desk bar: 👍/👎, their comment and when. A reopen
   * keeps it (docs/API.md, "Ratings"): it says how the last resolution went. */
  function showThreadRating(c) {
    const rating = c && c.rating;
    const box = $('thread-rating');
    box.hidden = !rating;
    if (!rating) return;
    const good = rating.rating === 'good';
    const badge = $('thread-rating-badge');
    badge.className = 'rating-badge ' + (good ? 'good' : 'bad');
    badge.textContent = (good ? '\u{1F44D} ' : '\u{1F44E} ') + t(good ? 'rating.good' : 'rating.bad');
    $('thread-rating-comment').textContent = rating.comment
      ? t('thread.ratingComment', {comment: rating.comment}) : t('thread.ratingNoComment');
    const time = $('thread-rating-time');
    time.textContent = rating.rated_at ? formatFull(rating.rated_at) : '';
    if (rating.rated_at) time.dateTime = new Date(rating.rated_at).toISOString();
  }

  /* An account was added or changed (by an admin, or an agent's own rename): the team list and,
   * for one's own, the top bar follow. */
  function accountChanged(agent) {
    if (me && Number(agent.id) === Number(me.agent.id)) {
      me.agent.name = agent.name;
      me.agent.role = agent.role;
      ui.agentName.textContent = agent.name || agent.email;
      ui.agentAvatar.textContent = initials(agent.name || agent.email);
      teams.showRole();
      $('settings-button').hidden = agent.role !== 'admin'; // made an admin, or no longer one
      if (agent.role !== 'admin' && $('settings-dialog').open) $('settings-dialog').close();
    }
    team.reload();
  }

  /* "Transfer to…": every enabled agent but the one who holds the selected conversation, with
   * their presence, and "Nobody" when someone holds it. */
  function fillAssignSelect() {
    const c = selectedId !== null ? convs.get(selectedId) : null;
    const held = c && c.assignee ? Number(c.assignee.id) : null;
    const options = [new Option(t('thread.transferToPick'), '')];
    for (const a of team.members()) {
      if (a.id === held) continue;
      const who = me && a.id === Number(me.agent.id) ? t('team.you', {name: a.name}) : a.name;
      options.push(new Option(who + ' · ' + window.KefuTeam.LABELS[a.status], String(a.id)));
    }
    if (held !== null) options.push(new Option(t('thread.nobody'), 'none'));
    ui.assignSelect.replaceChildren(...options);
    ui.assignSelect.value = '';
  }

  function updateThreadEmpty() {
    const c = selectedId !== null ? convs.get(selectedId) : null;
    if (!c) {
      ui.threadEmptyTitle.textContent = t('thread.pick');
      ui.threadEmptyText.textContent = convs.size ? t('thread.pickText')
        : view === 'all' ? t('thread.nothingYet') : t('thread.nothingInView');
      ui.threadEmpty.hidden = false;
    } else if (thread.count === 0) {
      ui.threadEmptyTitle.textContent = threadLoading ? t('thread.loading') : t('thread.noMessages');
      ui.threadEmptyText.textContent = threadLoading ? '' : t('thread.writeFirst');
      ui.threadEmpty.hidden = false;
    } else {
      ui.threadEmpty.hidden = true;
    }
  }

  ui.back.addEventListener('click', () => {
    document.body.classList.remove('show-thread');
    // On a phone the list is now all there is: nothing is being looked at, so new messages in
    // the conversation just left must count as unread again.
    const id = selectedId;
    deselect();
    if (id !== null && convList.item(id)) convList.item(id).focus();
  });

  ui.jump.addEventListener('click', () => {
    thread.scrollToBottom(true);
    ui.jump.hidden = true;
  });
  ui.thread.addEventListener('scroll', () => {
    if (!ui.jump.hidden && thread.nearBottom()) ui.jump.hidden = true;
  }, {passive: true});

  /* ---- read marks ---- */

  /* Mark the conversation read up to its newest message, soon (a burst of messages makes one
   * request). The badge drops at once; the server's answer then confirms the count. */
  function scheduleRead(id, delay) {
    if (readTimers.has(id)) return;
    readTimers.set(id, setTimeout(() => {
      readTimers.delete(id);
      markRead(id);
    }, delay === undefined ? 300 : delay));
  }

  async function markRead(id) {
    const c = convs.get(id);
    if (!c || !viewing(id)) return;
    const upTo = Math.max(c.last_message ? c.last_message.id : 0, id === selectedId ? thread.lastId() : 0);
    if (upTo === 0) return;
    if ((readPosted.get(id) || 0) >= upTo && !(c.unread > 0)) return;
    readPosted.set(id, upTo);
    if (c.unread) {
      c.unread = 0;
      convList.render(c);
      updateTotals();
    }
    try {
      // Over the WebSocket the ack carries no conversation: the `conversation` event that follows
      // on the stream brings the server's counts.
      const data = await perform(push, {type: 'read', up_to: upTo, conversation_id: id}, {
        http: () => agentApi('POST', '/api/conversations/' + id + '/read', {up_to: upTo}),
      });
      if (data.conversation) applyConversation(data.conversation);
    } catch (e) {
      readPosted.delete(id);
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && selectedId !== null) scheduleRead(selectedId, 0);
  });

  /* ---- status ---- */

  /* A change of the selected conversation's desk state (POST path with body; what: the key of
   * the words for it in "Could not …"); the answer is the conversation as it is after. A refusal
   * (someone claimed it first) says why, and the conversation is read again. */
  async function deskChange(control, path, body, what) {
    const id = selectedId;
    if (id === null || !convs.get(id)) return;
    control.disabled = true;
    ui.replyError.hidden = true;
    try {
      const data = await agentApi('POST', '/api/conversations/' + id + path, body);
      applyConversation(data.conversation);
    } catch (e) {
      if (e.status !== 401) {
        showReplyError(t('action.failed', {what: t(what), reason: I18n.errorText(e)}));
        fetchConversation(id);
      }
    } finally {
      control.disabled = false;
      if (id === selectedId) refreshSelectedHeader();
    }
  }

  ui.statusButton.addEventListener('click', () => {
    const c = convs.get(selectedId);
    if (!c) return;
    const next = c.status === 'resolved' ? 'open' : 'resolved';
    deskChange(ui.statusButton, '/status', {status: next}, next === 'open' ? 'thread.what.reopen' : 'thread.what.resolve');
  });

  ui.statusSelect.addEventListener('change', async () => {
    const c = convs.get(selectedId);
    const next = ui.statusSelect.value;
    if (!c || next === c.status) return;
    if (next !== 'snoozed') {
      deskChange(ui.statusSelect, '/status', {status: next}, 'thread.what.status');
      return;
    }
    ui.statusSelect.value = c.status; // until a time is picked: nothing has changed
    const id = c.id;
    const until = await window.KefuSnooze.ask($('snooze-dialog'));
    if (until === null || id !== selectedId) {
      ui.statusSelect.focus();
      return;
    }
    await deskChange(ui.statusSelect, '/status', {status: 'snoozed', snooze_until: until}, 'thread.what.snooze');
    ui.statusSelect.focus();
  });
  $('snooze-dialog').querySelector('.snooze-close').addEventListener('click', () => $('snooze-dialog').close());

  ui.assignSelect.addEventListener('change', () => {
    const value = ui.assignSelect.value;
    if (!value || selectedId === null) return;
    if (value === 'none') {
      deskChange(ui.assignSelect, '/assign', {agent_id: null}, 'thread.what.unassign');
      return;
    }
    // A transfer asks for an optional note first; it goes with the transfer, in one write.
    const agent = team.members().find((a) => a.id === Number(value));
    ui.assignSelect.value = '';
    transferDialog.open(agent ? agent.name : t('thread.agentNumbered', {id: value}), Number(value));
  });

  const transferDialog = new window.KefuTransferDialog({
    dialog: $('transfer-dialog'),
    async onTransfer(agentId, note) {
      const id = selectedId;
      if (id === null) return;
      const body = {agent_id: agentId};
      if (note) body.note = note;
      const data = await agentApi('POST', '/api/conversations/' + id + '/assign', body);
      applyConversation(data.conversation);
      if (id === selectedId) refreshSelectedHeader();
    },
  });

  /* Reply or private note: the box's colour, placeholder and label follow, and no typing notice
   * goes to the visitor while a note is written. */
  const replyMode = new window.KefuReplyMode({
    replyTab: $('reply-mode-reply'),
    noteTab: $('reply-mode-note'),
    hint: $('reply-mode-hint'),
    form: ui.replyForm,
    onChange(note) {
      if (note) typing.stop();
      showReplyMode(note);
      if (selectedId !== null && convs.get(selectedId)) refreshSelectedHeader();
      else ui.replyInput.placeholder = t('composer.select');
      if (selectedId !== null && !ui.replyInput.disabled) ui.replyInput.focus();
    },
  });

  const mentions = new window.KefuMentions({
    section: $('mentions'),
    list: $('mention-list'),
    onOpen: (hit) => openHit(hit),
  });

  ui.claimButton.addEventListener('click', () => {
    const c = convs.get(selectedId);
    if (!c || !me) return;
    if (c.assignee) deskChange(ui.claimButton, '/assign', {agent_id: me.agent.id}, 'thread.what.assignToMe');
    else deskChange(ui.claimButton, '/claim', undefined, 'thread.what.claim');
  });

  /* ---- replies ---- */

  function showReplyError(text) {
    ui.replyError.textContent = text;
    ui.replyError.hidden = false;
  }

  /* Typing notices for the selected conversation (typing:false goes to the one typing:true went
   * to, even if the agent has moved on). */
  const typing = new TypingSender((isTyping, id) => perform(push, {type: 'typing', typing: isTyping, conversation_id: id}, {
    http: () => agentApi('POST', '/api/conversations/' + id + '/typing', {typing: isTyping}),
  }));

  ui.replyInput.addEventListener('input', () => {
    if (!ui.replyError.hidden && ui.replyInput.value.trim() === '') ui.replyError.hidden = true;
    if (selectedId !== null && me && !replyMode.note) typing.input(ui.replyInput.value, selectedId);
  });
  window.addEventListener('pagehide', () => typing.stop());

  /* The outbox's way of sending one reply: over the WebSocket when it is open, else over HTTP,
   * with its idempotency key either way. */
  async function sendReply(entry, signal) {
    const id = entry.conversation_id;
    const data = await perform(push, {type: 'send', body: entry.body, key: entry.key, conversation_id: id, private: !!entry.private}, {
      http: () => agentApi('POST', '/api/conversations/' + id + '/messages', {body: entry.body, private: !!entry.private},
        {headers: {'Idempotency-Key': entry.key}, signal}),
    });
    return data.message;
  }

  /* The list's mark for a conversation's unsent replies: 'failed' when the server refused one,
   * else what the oldest is doing (the rest wait for it), as its bubble says; null: none. */
  function unsentMark(unsent) {
    if (unsent.length === 0) return null;
    if (unsent.some((e) => e.state === 'failed')) return 'failed';
    return window.KefuUI.pendingLabel(unsent.find((e) => e.state !== 'failed'));
  }

  function pendingFor(id) {
    return outbox ? outbox.entries().filter((e) => e.conversation_id === id) : [];
  }

  /* The outbox changed: the selected thread's unsent replies, and the list's marks. */
  function renderOutbox() {
    const entries = outbox ? outbox.entries() : [];
    thread.setPending(selectedId === null ? [] : pendingFor(selectedId));
    const marked = new Set(entries.map((e) => e.conversation_id));
    for (const item of ui.list.querySelectorAll('.conv-item')) {
      const id = Number(item.dataset.id);
      const shown = !item.querySelector('.conv-outbox').hidden;
      if ((shown || marked.has(id)) && convs.has(id)) convList.render(convs.get(id));
    }
    updateThreadEmpty();
  }

  ui.replyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = selectedId;
    if (id === null || !outbox) return;
    const body = ui.replyInput.value.trim();
    if (!body) return;
    if (Array.from(body).length > MAX_CHARS) {
      showReplyError(t('composer.tooLong', {max: MAX_CHARS}));
      return;
    }
    typing.stop();
    ui.replyError.hidden = true;
    const c = convs.get(id);
    const after = Math.max(thread.lastId(), c && c.last_message ? c.last_message.id : 0);
    // In the thread at once, pending, and kept until the server has it: the box is free again.
    outbox.add({body, conversation_id: id, after, private: replyMode.note});
    ui.replyInput.value = '';
    drafts.delete(id);
    fitReply();
    if (selectedId !== null) ui.replyInput.focus();
  });

  /* ---- push ---- */

  function startPush(cursor) {
    if (push) push.stop();
    push = new window.KefuPush({
      transport,
      cursor,
      auth: {cookie: true},
      onEvent: handleEvent,
      onState: (state) => {
        showConnState(ui.conn, state);
        if (state === 'connected' && outbox) outbox.kick(); // the way is clear: send what waits now
        // Connected, this console is online to the team (its own presence event may have gone
        // out before it listened): read everyone's as the server has them now.
        if (state === 'connected' && me) {
          team.reload();
          teams.reload();
        }
      },
      onTransport: (name) => showConnState(ui.conn, ui.conn.dataset.state, name),
      // Conversation, read and typing events are not replayed after a drop (only messages are),
      // so after one (however short) re-read the list for status changes and read marks we missed.
      onResync() {
        visitorTyping.clear();
        typingPreviews.clear();
        showTypingPreview();
        if (me) deskSettings.load(); // a settings event may have gone by in the gap
        if (me && $('settings-dialog').open) integrations.load();
        if (me) visitors.start(); // and visitors came and went
        if (me) loadConversations().catch(() => {});
        if (me) {
          team.reload();
          teams.reload();
        }
        scheduleCounts(0);
      },
      onAuthError: pushRefused,
    });
  }

  function handleEvent(ev) {
    if (!me) return;
    if (ev.type === 'message' || ev.type === 'conversation' || ev.type === 'rating') reports.changed();
    if (ev.type === 'message' && ev.message) handleMessage(ev.message);
    else if (ev.type === 'conversation') {
      announceNew(ev.conversation);
      applyConversation(ev.conversation);
      scheduleTeamPanel();
    } else if (ev.type === 'team' && ev.team) teams.apply(ev.team);
    else if (ev.type === 'read') handleRead(ev);
    else if (ev.type === 'typing' && ev.sender === 'visitor') handleTyping(ev);
    else if (ev.type === 'visitor') visitorPanel.apply(ev);
    else if (ev.type === 'settings') deskSettings.apply(ev.settings);
    else if (ev.type === 'integrations' && $('settings-dialog').open) integrations.load();
    else if (ev.type === 'presence') team.apply(ev);
    else if (ev.type === 'agent' && ev.agent) accountChanged(ev.agent);
    else if (ev.type === 'mention' && Number(ev.agent_id) === Number(me.agent.id)) mentions.add(ev);
    else if (ev.type === 'rating') applyRating(ev);
    else if (ev.type === 'browsing' || ev.type === 'invite_rule') visitors.apply(ev);
  }

  /* A visitor rated: the conversation's badge and header follow at once (its conversation event,
   * which comes next, says the same). */
  function applyRating(ev) {
    const c = convs.get(Number(ev.conversation_id));
    if (c) applyConversation(Object.assign({}, c, {rating: ev.rating || null}));
  }

  /* The team panel's "3 / 5 open" follows assignments: read again, once per burst. */
  function scheduleTeamPanel() {
    if (teamPanelTimer) return;
    teamPanelTimer = setTimeout(() => {
      teamPanelTimer = null;
      if (me) team.reload();
    }, 500);
  }

  /* "Visitor is typing…" in the list item and, for the selected conversation, the thread header. */
  const visitorTyping = new TypingState((id, typing) => {
    if (!typing && typingPreviews.delete(id)) showTypingPreview();
    const c = convs.get(id);
    if (c) convList.render(c);
    if (id === selectedId) showThreadTyping();
  });

  function showThreadTyping() {
    const on = selectedId !== null && visitorTyping.has(selectedId);
    ui.threadTyping.hidden = !on;
    ui.threadSub.hidden = on;
  }

  /* A message from push or from our own reply (the same message may come both ways). */
  function handleMessage(m) {
    if (m.sender === 'visitor') visitorTyping.set(m.conversation_id, false); // the message is here
    scheduleCounts();
    const c = convs.get(m.conversation_id);
    if (!c) {
      fetchConversation(m.conversation_id);
      return;
    }
    if (!c.last_message || m.id > c.last_message.id) {
      c.last_message = m;
      c.updated_at = Math.max(c.updated_at || 0, m.created_at);
      // The wait as the server counts it (API.md, waiting_since): a reply ends it, a note does not.
      if (m.sender === 'agent' && !m.private) c.waiting_since = null;
      else if (m.sender === 'visitor' && c.status === 'open' && !c.waiting_since) c.waiting_since = m.created_at;
      if (m.sender === 'visitor') {
        if (viewing(c.id)) scheduleRead(c.id);
        else c.unread = (c.unread | 0) + 1;
        // News (not a replay of what a reconnect gap missed) in a conversation that is this
        // agent's or nobody's: another agent's visitors are theirs to hear.
        const mineOrNobodys = !c.assignee || (me && Number(c.assignee.id) === Number(me.agent.id));
        if (mineOrNobodys && Number(m.created_at) >= Date.now() - 60000) alerts.message(m, visitorName(c.visitor));
      }
      convList.render(c);
      convList.order();
      updateTotals();
    }
    if (c.id === selectedId) thread.add(m);
    if (c.id === selectedId) updateThreadEmpty();
  }

  function handleRead(ev) {
    const id = Number(ev.conversation_id);
    const upTo = Number(ev.up_to);
    if (ev.reader === 'visitor') {
      visitorRead.set(id, Math.max(visitorRead.get(id) || 0, upTo));
      if (id === selectedId) thread.markSeen(upTo);
      return;
    }
    // Another agent (or this one, in another tab) read it.
    const c = convs.get(id);
    if (c && c.unread && c.last_message && upTo >= c.last_message.id) {
      c.unread = 0;
      convList.render(c);
      updateTotals();
    }
  }

  /* The composer's label and send button say what it sends: a reply or a private note. */
  function showReplyMode(note) {
    document.querySelector('label[for="reply-input"]').textContent = note ? t('composer.note') : t('composer.reply');
    ui.replySend.setAttribute('aria-label', note ? t('composer.sendNote') : t('composer.send'));
  }

  /* ---- language ---- */

  // The switchers: one on the login card, one in the top bar (both follow either).
  I18n.bindSwitcher($('login-lang-select'));
  I18n.bindSwitcher($('console-lang-select'));

  /* Another language: agent.html's own text is done by I18n (it fills the data-i18n elements
   * with their first words again); what the console drew itself is drawn again here, at once. */
  I18n.onChange(() => {
    document.title = BASE_TITLE;
    showConnState(ui.conn, ui.conn.dataset.state);
    if (!ui.loginError.hidden && loginError) showLoginError(loginError);
    showReplyMode(replyMode.note);
    showView();
    for (const c of convs.values()) convList.render(c);
    const older = ui.loadOlder.dataset.state;
    showLoadOlder(older === 'loading' || older === 'error' ? older : undefined);
    updateTotals();
    refreshSelectedHeader();
    fillAssignSelect();
    updateThreadEmpty();
    thread.redraw();
    team.render();
    search.redraw();
    cannedDialog.redraw();
    shortcuts.render();
    alerts.showDesktop();
    mentions.redraw();
    $('canned-picker').setAttribute('aria-label', t('canned.title'));
    // A line said in the other language goes; the next attempt says it again in this one.
    ui.replyError.hidden = true;
    ui.teamError.hidden = true;
  });

  /* ---- start ---- */

  window.addEventListener('resize', () => {
    // Leaving the phone layout with the list showing: nothing else to do, both panes show.
    if (!isPhone() && selectedId === null) document.body.classList.remove('show-thread');
  });

  (async function boot() {
    try {
      const data = await api('GET', '/api/agent/me');
      await enterConsole(data);
    } catch (e) {
      if (!me) showLogin(e.code === 'disabled' ? ACCOUNT_DISABLED : e.status === 401 ? '' : {opening: e});
    }
  })();
})();
