/* diag.js: the connection check (/diag, web/diag.html; docs/API.md, "The connection check"): tries
 * each of the five push transports of web/kefu.js's push client, one after the other, against the
 * server's anonymous check endpoints (/diag/push/<transport>, which deliver one "diag" event at
 * once and write nothing), and shows for each whether an event came, how long after the request
 * was made (the round trip a person's chat would wait), and otherwise why not: no answer in time,
 * an HTTP status, a connection closed before any event, a network error, or a browser without the
 * transport. One at a time, so that each is timed on its own. */
(function () {
  'use strict';

  const I18n = window.KefuI18n;
  const t = I18n.t;
  const TIMEOUT_MS = 8000;
  const TRANSPORTS = [
    ['poll', 'diag.poll'],
    ['longpoll', 'diag.longpoll'],
    ['iframe', 'diag.iframe'],
    ['sse', 'diag.sse'],
    ['ws', 'diag.ws'],
  ];
  const URL_OF = (name) => '/diag/push/' + name + '?after=0';

  /* A failure and its reason: {reason: 'timeout' | 'http' | 'closed' | 'network' |
   * 'unsupported', status?}. */
  class Failure extends Error {
    constructor(reason, status) {
      super(reason);
      this.reason = reason;
      this.status = status;
    }
  }

  /* What a failed stream's request answers, asked again with fetch (EventSource, WebSocket and
   * iframes do not tell a page the status): a Failure with the status, or 'closed'. */
  async function whyClosed(name) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 3000);
    try {
      const r = await fetch(URL_OF(name), {signal: ctrl.signal, cache: 'no-store'});
      ctrl.abort(); // a stream that does answer is not read further
      return r.ok ? new Failure('closed') : new Failure('http', r.status);
    } catch (e) {
      return new Failure(ctrl.signal.aborted ? 'closed' : 'network');
    } finally {
      clearTimeout(timer);
    }
  }

  /* The events of a poll's or long poll's answer. */
  async function polled(name) {
    let r;
    try {
      r = await fetch(URL_OF(name), {cache: 'no-store'});
    } catch (e) {
      throw new Failure('network');
    }
    if (!r.ok) throw new Failure('http', r.status);
    const data = await r.json().catch(() => null);
    if (!data || !Array.isArray(data.events) || !data.events.some((ev) => ev && ev.type === 'diag')) throw new Failure('closed');
  }

  /* Each opens its transport and resolves at the first diag event, or rejects with a Failure;
   * cleanup() closes what it opened. */
  const OPEN = {
    poll: () => ({done: polled('poll'), cleanup() {}}),
    longpoll: () => ({done: polled('longpoll'), cleanup() {}}),
    iframe() {
      const frame = document.createElement('iframe');
      frame.className = 'diag-frame';
      frame.title = t('diag.iframe');
      frame.setAttribute('aria-hidden', 'true');
      const done = new Promise((resolve, reject) => {
        window.kefuPush = (ev) => {
          if (ev && ev.type === 'diag') resolve();
        };
        // The stream ends only when it fails: an error answer loads at once.
        frame.addEventListener('load', () => whyClosed('iframe').then(reject));
      });
      frame.src = URL_OF('iframe');
      document.body.appendChild(frame);
      return {done, cleanup() {
        window.kefuPush = null;
        frame.remove();
      }};
    },
    sse() {
      if (typeof window.EventSource !== 'function') return {done: Promise.reject(new Failure('unsupported')), cleanup() {}};
      const es = new EventSource(URL_OF('sse'));
      const done = new Promise((resolve, reject) => {
        es.addEventListener('diag', () => resolve());
        es.addEventListener('error', () => {
          es.close();
          whyClosed('sse').then(reject);
        });
      });
      return {done, cleanup: () => es.close()};
    },
    ws() {
      if (typeof window.WebSocket !== 'function') return {done: Promise.reject(new Failure('unsupported')), cleanup() {}};
      const url = new URL(URL_OF('ws'), location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url.href);
      const done = new Promise((resolve, reject) => {
        ws.addEventListener('message', (e) => {
          let ev = null;
          try {
            ev = JSON.parse(e.data);
          } catch (err) { /* not an event */ }
          if (ev && ev.type === 'diag') resolve();
        });
        ws.addEventListener('close', () => whyClosed('ws').then((f) => reject(f.reason === 'http' && (f.status === 400 || f.status === 426) ? new Failure('closed') : f)));
      });
      return {done, cleanup() {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      }};
    },
  };

  /* Runs one transport's check: {ok, ms} or {ok: false, reason, status}. */
  async function check(name) {
    const started = performance.now();
    let opened = null;
    let timer = null;
    try {
      opened = OPEN[name]();
      const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Failure('timeout')), TIMEOUT_MS);
      });
      await Promise.race([opened.done, timeout]);
      return {ok: true, ms: Math.round(performance.now() - started)};
    } catch (e) {
      const f = e instanceof Failure ? e : new Failure('network');
      return {ok: false, reason: f.reason, status: f.status};
    } finally {
      clearTimeout(timer);
      if (opened) opened.cleanup();
    }
  }

  const results = new Map(); // name -> the last result, drawn again in another language
  let running = false;

  function reasonText(r) {
    if (r.reason === 'http') return t('diag.reasonHttp', {status: r.status});
    return t('diag.reason.' + r.reason);
  }

  function render() {
    const rows = document.getElementById('diag-rows');
    const n = new Intl.NumberFormat(I18n.locale());
    rows.replaceChildren(...TRANSPORTS.map(([name, key]) => {
      const r = results.get(name);
      const tr = document.createElement('tr');
      tr.dataset.transport = name;
      const cell = (text, className) => {
        const td = document.createElement('td');
        if (className) td.className = className;
        td.textContent = text;
        tr.appendChild(td);
        return td;
      };
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = t(key);
      tr.appendChild(th);
      const state = !r ? 'waiting' : r.running ? 'running' : r.ok ? 'ok' : 'failed';
      cell(t('diag.state.' + state), 'diag-state diag-' + state);
      cell(r && r.ok ? t('diag.ms', {ms: n.format(r.ms)}) : '\u2014', r && r.ok ? 'diag-latency' : 'diag-latency diag-none');
      cell(r && !r.running && !r.ok ? reasonText(r) : '', 'diag-reason');
      return tr;
    }));
    const done = [...results.values()].filter((r) => !r.running);
    const summary = document.getElementById('diag-summary');
    if (running) summary.textContent = t('diag.running');
    else if (done.length === TRANSPORTS.length) {
      const ok = done.filter((r) => r.ok).length;
      summary.textContent = ok === TRANSPORTS.length ? t('diag.allOk') : t('diag.someFailed', {ok, total: TRANSPORTS.length});
    } else summary.textContent = '';
  }

  async function runAll() {
    if (running) return;
    running = true;
    const button = document.getElementById('diag-run');
    button.disabled = true;
    results.clear();
    render();
    for (const [name] of TRANSPORTS) {
      results.set(name, {running: true});
      render();
      results.set(name, await check(name));
      render();
    }
    running = false;
    button.disabled = false;
    render();
  }

  document.addEventListener('DOMContentLoaded', () => {
    I18n.init();
    I18n.onChange(render);
    document.getElementById('diag-run').addEventListener('click', runAll);
    runAll();
  });
})();
