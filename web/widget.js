/* widget.js: the website widget's loader, the one tag a site pastes (docs/API.md, "The website
 * widget": attributes, the Kefu API, the postMessage protocol, where the token lives). A launcher in
 * a shadow root; on demand, an iframe of CHAT-HOST/widget (web/widget.html, web/widget_frame.js).
 * Every page of every site downloads it: at most 5 KiB gzip (tools/embed.c), hence its texts
 * here rather than in the i18n tables, and terse comments. */
(function (w, d) {
  'use strict';
  const K = w.Kefu = w.Kefu || {};
  if (K.loaded) return; // pasted twice: the first one serves
  const script = d.currentScript ||
    [].slice.call(d.scripts).filter((s) => /\/widget\.js([?#]|$)/.test(s.src)).pop();
  if (!script) return;
  K.loaded = true;
  const ORIGIN = new URL(script.src, location.href).origin;
  const data = script.dataset;
  const tag = String(data.lang || navigator.language || '').toLowerCase();
  // The tables' rule (web/i18n.js): simplified Chinese for zh, zh-CN, zh-SG, zh-MY, zh-Hans…
  const lang = /^zh(-(cn|sg|my|hans)|$)/.test(tag) ? 'zh-CN' : 'en';
  const TEXT = {
    en: ['Open chat', 'Close chat', (n) => n + (n === 1 ? ' unread message' : ' unread messages'), 'Support chat', 'New message'],
    'zh-CN': ['打开聊天', '关闭聊天', (n) => n + ' 条未读消息', '在线客服', '新消息'],
  }[lang];
  const STARTED = 'kefu.widget.started'; // the host's localStorage: this visitor has chatted
  const STATE = 'kefu.widget.state'; // the host's sessionStorage: 'open' or 'closed' by the visitor
  // The host's localStorage: what the frame keeps (its visitor's token) where the browser refuses
  // a third-party frame storage of its own. null: the host's storage is refused too.
  const KEPT = 'kefu.widget.kept';
  const kept = () => {
    try {
      return JSON.parse(localStorage.getItem(KEPT)) || {};
    } catch (e) {
      return null;
    }
  };

  const store = (area, key, value) => {
    try {
      if (value === undefined) return w[area].getItem(key);
      w[area].setItem(key, value);
    } catch (e) { /* storage blocked: it lasts as long as the page */ }
    return null;
  };

  // Built as elements, not markup: a page requiring Trusted Types refuses innerHTML.
  const icon = (path, size, width) => {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = d.createElementNS(NS, 'svg');
    const attrs = {width: size, height: size, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor',
      'stroke-width': width, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true'};
    for (const k in attrs) svg.setAttribute(k, attrs[k]);
    svg.appendChild(d.createElementNS(NS, 'path')).setAttribute('d', path);
    return svg;
  };
  const CHAT = icon('M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z', 26, 2);
  const CLOSE = icon('M6 6l12 12M18 6L6 18', 24, 2.4);
  const side = data.position === 'left' ? 'left' : 'right';
  const CSS = ':host{all:initial}' +
    '*{box-sizing:border-box}' +
    '.l{all:unset;position:fixed;bottom:20px;' + side + ':20px;z-index:2147483647;width:56px;height:56px;border-radius:50%;background:#2159cc;color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(16,32,80,.3);transition:transform .15s}' +
    '.l:hover{background:#1a4aad;transform:scale(1.05)}' +
    '.l:focus-visible{outline:3px solid #fff;box-shadow:0 0 0 6px #0b2a6b}' +
    '.b{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;border:2px solid #fff;background:#c62828;color:#fff;font:700 12px/18px system-ui,sans-serif;text-align:center}' +
    '.f{position:fixed;bottom:88px;' + side + ':20px;z-index:2147483646;width:380px;height:min(640px,calc(100vh - 108px));border-radius:16px;overflow:hidden;background:#fff;box-shadow:0 16px 48px rgba(16,32,80,.28);transition:opacity .15s,transform .15s}' +
    '.f:not(.on){visibility:hidden;opacity:0;transform:translateY(12px);pointer-events:none}' +
    'iframe{display:block;width:100%;height:100%;border:0}' +
    '[hidden]{display:none!important}' +
    // Phones: the open chat takes the whole screen (its own header has the close button).
    '@media (max-width:480px){.f{top:0;bottom:auto;left:0;right:0;width:100%;height:100vh;height:100dvh;border-radius:0;' +
    'padding:env(safe-area-inset-top) env(safe-area-inset-right) env(safe-area-inset-bottom) env(safe-area-inset-left)}.f.on~.l{display:none}}' +
    '@media (prefers-reduced-motion:reduce){.l,.f{transition:none}}';

  const host = d.createElement('kefu-widget');
  const root = host.attachShadow({mode: 'open'});
  // A constructed sheet is not inline style: a host page's strict CSP does not refuse it.
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.appendChild(d.createElement('style')).textContent = CSS;
  }
  const box = d.createElement('div');
  box.className = 'f';
  const button = d.createElement('button');
  button.className = 'l';
  button.type = 'button';
  button.setAttribute('aria-expanded', 'false');
  const badge = d.createElement('span');
  badge.className = 'b';
  badge.setAttribute('aria-hidden', 'true');
  root.append(box, button);

  let frame = null;
  let ready = false;
  let open = false;
  let unread = 0;
  const pending = {}; // details set before the frame could take them
  let identity = null; // Kefu.identify's signed user (docs/IDENTITY.md)
  const handlers = {};

  const emit = (name, arg) => (handlers[name] || []).forEach((fn) => {
    try {
      fn(arg);
    } catch (e) {
      setTimeout(() => { throw e; });
    }
  });

  const post = (msg) => {
    if (frame && ready) frame.contentWindow.postMessage(Object.assign({kefu: 1}, msg), ORIGIN);
  };

  function draw() {
    button.replaceChildren(open ? CLOSE : CHAT);
    button.setAttribute('aria-label', TEXT[open ? 1 : 0] + (unread && !open ? ', ' + TEXT[2](unread) : ''));
    button.setAttribute('aria-expanded', String(open));
    badge.textContent = unread > 9 ? '9+' : String(unread);
    if (unread && !open) button.appendChild(badge);
    box.classList.toggle('on', open);
    fit();
  }

  function load() {
    if (frame) return;
    frame = d.createElement('iframe');
    frame.title = TEXT[3];
    frame.src = ORIGIN + '/widget?lang=' + lang + '#origin=' + encodeURIComponent(location.origin);
    box.appendChild(frame);
  }

  function show(on, byVisitor) {
    if (on === open) return;
    open = on;
    load();
    if (on) unread = 0;
    if (byVisitor || on) store('sessionStorage', STATE, on ? 'open' : 'closed');
    post({cmd: on ? 'open' : 'close'});
    draw();
    if (on && frame) frame.focus();
    emit(on ? 'opened' : 'closed');
  }

  // iOS keeps the layout viewport when its keyboard comes up: the full-screen chat follows the
  // visual viewport instead, so that the keyboard never covers the box.
  const vv = w.visualViewport;
  function fit() {
    const phone = w.matchMedia('(max-width:480px)').matches;
    box.style.height = open && phone && vv ? vv.height + 'px' : '';
    box.style.top = open && phone && vv ? vv.offsetTop + 'px' : '';
  }
  if (vv) {
    vv.addEventListener('resize', fit);
    vv.addEventListener('scroll', fit);
  }

  // A reply while the host's tab is in the background: its title takes turns with "New message"
  // until the tab is shown again.
  let blink = null;
  function blinkTitle() {
    if (blink || !d.hidden) return;
    const title = d.title;
    let on = true;
    d.title = TEXT[4];
    blink = setInterval(() => {
      on = !on;
      d.title = on ? TEXT[4] : title;
    }, 1000);
    const stop = () => {
      if (d.hidden) return;
      clearInterval(blink);
      blink = null;
      d.title = title;
      d.removeEventListener('visibilitychange', stop);
    };
    d.addEventListener('visibilitychange', stop);
  }

  function page() {
    return {url: location.href, title: d.title, referrer: d.referrer};
  }
  // The host's own moves within the page (a single-page site's back and forward, anchors); its
  // pushState is not wrapped: the next page load reports that.
  const moved = () => post({page: page()});
  w.addEventListener('popstate', moved);
  w.addEventListener('hashchange', moved);

  w.addEventListener('message', (e) => {
    const m = e.data;
    if (!frame || e.source !== frame.contentWindow || e.origin !== ORIGIN || !m || m.kefu !== 1) return;
    if (m.ev === 'ready') {
      ready = true;
      post({cmd: open ? 'open' : 'close', page: page(), details: pending, identity, kept: m.keep ? kept() : undefined});
    } else if (m.ev === 'keep') {
      const all = kept();
      if (all && typeof m.key === 'string') {
        if (typeof m.value === 'string') all[m.key] = m.value;
        else delete all[m.key];
        store('localStorage', KEPT, JSON.stringify(all));
      }
    } else if (m.ev === 'close') {
      show(false, true);
      button.focus();
    } else if (m.ev === 'started') {
      store('localStorage', STARTED, '1');
    } else if (m.ev === 'unread') {
      unread = open ? 0 : Math.max(0, m.count | 0);
      draw();
      emit('unread', unread);
    } else if (m.ev === 'message' && m.message) {
      emit('message', m.message);
      if (m.live) blinkTitle();
      // A reply opens the chat, unless the visitor closed it in this tab: then the count says it.
      if (m.live && !open && store('sessionStorage', STATE) !== 'closed') show(true);
    }
  });

  button.addEventListener('click', () => show(!open, true));
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && open) {
      show(false, true);
      button.focus();
    }
  });

  function details(field, value) {
    pending[field] = String(value == null ? '' : value);
    post({cmd: 'details', details: pending});
  }

  const api = {
    open: () => show(true, true),
    close: () => show(false, true),
    setName: (name) => details('name', name),
    setEmail: (email) => details('email', email),
    // The user the site's server signed: the chat is theirs, on every device (docs/IDENTITY.md).
    identify: (id) => {
      if (!id || typeof id !== 'object') return;
      identity = id;
      post({identity});
    },
    on: (name, fn) => {
      if (typeof fn === 'function') (handlers[name] = handlers[name] || []).push(fn);
    },
  };
  const call = (args) => {
    const fn = api[args && args[0]];
    if (fn) fn.apply(null, [].slice.call(args, 1));
  };
  const queued = Array.isArray(K.q) ? K.q : [];
  Object.assign(K, api);
  K.q = {push: call}; // a call pushed later still runs

  draw();
  (d.body || d.documentElement).appendChild(host);
  // Where the chat was open (a navigation within the site), it stays open; where the visitor
  // has chatted, the frame loads hidden so that replies arrive.
  if (store('sessionStorage', STATE) === 'open') show(true);
  // With data-proactive the frame loads on every page, so that the visitor shows as online and
  // can be invited (docs/API.md, "Visitors online and invitations").
  else if (store('localStorage', STARTED) || data.proactive !== undefined) load();
  queued.forEach(call);
})(window, document);
