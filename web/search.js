/* search.js: the console's search box (docs/UI-CONTRACT.md, "Search"): GET /api/search as the
 * agent types (a short pause, or Enter), the hits listed in place of the conversations, newest
 * first, with "More results" for the next page; choosing a hit hands it to the console, which
 * opens the conversation at its message.
 *
 * The server sends each snippet as plain text with the ranges to mark, in code points; they are
 * drawn as text nodes and <mark> elements, never as HTML. */
(function () {
  'use strict';

  const {el, visitorName, formatRelative, formatFull} = window.KefuUI;
  const I18n = window.KefuI18n;
  const t = I18n.t;

  const MIN_CHARS = 2;
  const MAX_CHARS = 200;
  const PAUSE_MS = 250;
  const PAGE = 20;

  /* The snippet's text with its marked ranges ([start, length] in code points) as nodes. */
  function markedText(text, ranges) {
    const chars = Array.from(String(text || ''));
    const nodes = [];
    let at = 0;
    for (const [start, length] of ranges || []) {
      if (!(start >= at && length > 0 && start + length <= chars.length)) continue;
      if (start > at) nodes.push(document.createTextNode(chars.slice(at, start).join('')));
      nodes.push(el('mark', null, chars.slice(start, start + length).join('')));
      at = start + length;
    }
    if (at < chars.length) nodes.push(document.createTextNode(chars.slice(at).join('')));
    return nodes;
  }

  class KefuSearch {
    /* nodes: {form, input, panel, status, list, more, hide (the nodes the results replace)};
     * options: {api(method, path, body, extra) (the console's, with its session), onOpen(hit)}. */
    constructor(nodes, options) {
      this.n = nodes;
      this.o = options;
      this.query = '';
      this.next = null;
      this.timer = null;
      this.abort = null;
      this.hits = [];       // the hits shown, to draw them again in another language
      this.said = null;     // what the status line says: [key, params], or null
      nodes.form.addEventListener('submit', (e) => {
        e.preventDefault();
        this.run(true);
      });
      nodes.input.addEventListener('input', () => this.schedule());
      nodes.input.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && nodes.input.value) {
          e.preventDefault();
          this.reset();
        } else if (e.key === 'ArrowDown') {
          const first = nodes.list.querySelector('.search-hit');
          if (first) {
            e.preventDefault();
            first.focus();
          }
        }
      });
      nodes.more.addEventListener('click', () => this.load(this.query, this.next));
      nodes.list.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
        const hits = Array.from(nodes.list.querySelectorAll('.search-hit'));
        const i = hits.indexOf(document.activeElement);
        if (i < 0) return;
        e.preventDefault();
        if (e.key === 'ArrowUp' && i === 0) nodes.input.focus();
        else if (hits[i + (e.key === 'ArrowDown' ? 1 : -1)]) hits[i + (e.key === 'ArrowDown' ? 1 : -1)].focus();
      });
    }

    /* The status line: the text of key (with params), kept to be said again by redraw(). */
    say(key, params) {
      this.said = key ? [key, params] : null;
      this.n.status.textContent = key ? t(key, params) : '';
    }

    /* The status line and the hits again, in the language of the moment. */
    redraw() {
      if (this.said) this.say(this.said[0], this.said[1]);
      if (this.hits.length) this.n.list.replaceChildren(...this.hits.map((hit) => this.item(hit)));
    }

    /* Empties the box and shows the conversations again. */
    reset() {
      clearTimeout(this.timer);
      if (this.abort) this.abort.abort();
      this.abort = null;
      this.query = '';
      this.next = null;
      this.n.input.value = '';
      this.n.list.replaceChildren();
      this.hits = [];
      this.show(false);
    }

    show(on) {
      this.n.panel.hidden = !on;
      for (const node of this.n.hide) node.hidden = on;
    }

    schedule() {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(false), PAUSE_MS);
    }

    run(now) {
      clearTimeout(this.timer);
      const query = this.n.input.value.trim();
      if (!query) {
        this.reset();
        return;
      }
      if (query === this.query && !now) return;
      const length = Array.from(query).length;
      if (length < MIN_CHARS || length > MAX_CHARS) {
        if (this.abort) this.abort.abort();
        this.query = '';
        this.n.list.replaceChildren();
        this.hits = [];
        this.n.more.hidden = true;
        if (length < MIN_CHARS) this.say('search.tooShort', {min: MIN_CHARS});
        else this.say('search.tooLong', {max: MAX_CHARS});
        this.show(true);
        return;
      }
      this.load(query, null);
    }

    /* Loads the page of query after before (null: the first page). */
    async load(query, before) {
      if (this.abort) this.abort.abort();
      const abort = new AbortController();
      this.abort = abort;
      this.query = query;
      if (!before) {
        this.n.list.replaceChildren();
        this.hits = [];
        this.say('search.searching');
      }
      this.n.more.disabled = true;
      this.show(true);
      const params = new URLSearchParams({q: query, limit: String(PAGE)});
      if (before) params.set('before', before);
      let data;
      try {
        data = await this.o.api('GET', '/api/search?' + params.toString(), undefined, {signal: abort.signal});
      } catch (e) {
        if (abort.signal.aborted) return;
        this.say('search.failed', {reason: I18n.errorText(e)});
        this.n.more.disabled = false;
        return;
      }
      if (abort.signal.aborted || this.abort !== abort) return;
      this.abort = null;
      const results = data.results || [];
      for (const hit of results) this.n.list.append(this.item(hit));
      this.hits.push(...results);
      this.next = data.next || null;
      this.n.more.hidden = !this.next;
      this.n.more.disabled = false;
      const count = this.n.list.children.length;
      if (count === 0) this.say('search.none', {query});
      else this.say(this.next ? 'search.countMore' : 'search.count', {count});
    }

    item(hit) {
      const li = el('li', 'search-item');
      const button = el('button', 'search-hit');
      button.type = 'button';
      button.dataset.conversationId = String(hit.conversation_id);
      button.dataset.messageId = String(hit.message_id);
      button.dataset.field = hit.field;
      const top = el('span', 'search-hit-top');
      top.append(el('span', 'search-hit-name', visitorName(hit.visitor)));
      // What matched, when it is not the visitor's own words: their name or e-mail, a reply, a note.
      if (hit.field === 'visitor') top.append(el('span', 'conv-tag', t('visitor.anonymous')));
      else if (hit.private) top.append(el('span', 'conv-tag', t('search.tagNote')));
      else if (hit.sender === 'agent') top.append(el('span', 'conv-tag', t('search.tagReply')));
      const time = el('time', 'search-hit-time', formatRelative(hit.created_at));
      time.dateTime = new Date(hit.created_at).toISOString();
      time.title = formatFull(hit.created_at);
      top.append(time);
      const snippet = el('span', 'search-hit-snippet');
      snippet.append(...markedText(hit.snippet, hit.highlights));
      button.append(top, snippet);
      button.addEventListener('click', () => {
        for (const b of this.n.list.querySelectorAll('.search-hit.selected')) b.classList.remove('selected');
        button.classList.add('selected');
        this.o.onOpen(hit);
      });
      li.append(button);
      return li;
    }
  }

  window.KefuSearch = KefuSearch;
  window.KefuSearch.markedText = markedText;
})();
