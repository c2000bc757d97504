/* conversation_list.js: the agent console's list of conversations, as drawn: one item per
 * conversation (avatar, name, status tag unless open, assignee, time, last message, "Visitor is
 * typing…", unsent replies, unread badge), most recently active first, arrow keys between items, and the "Load
 * older conversations" button at its end, which loads the next page when pressed or scrolled into
 * view. The console (agent.js) owns the conversations and the paging; this draws them.
 *
 *   const list = new KefuConversationList({list, scroll, empty, loadOlder}, {
 *     conversations() {},   // the conversation objects (API.md) to show, any order
 *     stateOf(c) {},        // {selected, typing, unsent: null | 'failed' | a label, myName, myId}
 *     onSelect(id) {},      // an item was clicked, or Enter / Space pressed on it
 *     onLoadOlder() {},     // the button was pressed or came into view: a Promise of the load
 *   });
 *   list.render(c); list.order(); list.remove(id); list.clear(); list.item(id);
 *   list.showLoadOlder(visible, state);  // state: 'idle' | 'loading' | 'error' */
(function () {
  'use strict';

  const {el, avatarClass, visitorName, setVisitorAvatar, formatRelative, formatFull} = window.KefuUI;

  const t = window.KefuI18n.t;

  // The statuses the list marks with a tag (console.status.<status> of the tables); open is the norm.
  const TAGGED = ['pending', 'resolved', 'snoozed'];

  /* A wait as a short duration: "<1 min", "4 min", "2 h 5 min" ("不到 1 分钟", "4 分钟", …). */
  function waitText(min) {
    if (min < 1) return t('list.waitUnderMinute');
    if (min < 60) return t('list.waitMinutes', {count: min});
    const hours = Math.floor(min / 60);
    return min % 60 ? t('list.waitHoursMinutes', {hours, minutes: min % 60}) : t('list.waitHours', {hours});
  }

  function activity(c) {
    return c.last_message ? c.last_message.created_at : (c.updated_at || c.created_at || 0);
  }

  /* Most recently active first (by the newest message; ids break ties, being monotonic). */
  function compareConvs(a, b) {
    return activity(b) - activity(a) ||
      (b.last_message ? b.last_message.id : 0) - (a.last_message ? a.last_message.id : 0) ||
      b.id - a.id;
  }

  class ConversationList {
    constructor(els, o) {
      this.ui = els;
      this.conversations = o.conversations;
      this.stateOf = o.stateOf;
      this.onSelect = o.onSelect;
      this.onLoadOlder = o.onLoadOlder;
      this.waitLimit = o.waitLimit || (() => 120); // seconds: past it a wait shows as long
      this.items = new Map(); // conversation id -> .conv-item element

      els.list.addEventListener('click', (e) => {
        const item = e.target.closest('.conv-item');
        if (item) this.onSelect(Number(item.dataset.id));
      });
      els.list.addEventListener('keydown', (e) => {
        const item = e.target.closest('.conv-item');
        if (!item) return;
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          this.onSelect(Number(item.dataset.id));
        } else if (['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(e.key)) {
          e.preventDefault();
          const list = this.ui.list;
          const next = e.key === 'ArrowDown' ? item.nextElementSibling
            : e.key === 'ArrowUp' ? item.previousElementSibling
              : e.key === 'Home' ? list.firstElementChild : list.lastElementChild;
          if (next) next.focus();
        }
      });
      /* The list is one Tab stop (a roving tabindex): the item last focused, else the selected
       * one, else the first, is the one Tab reaches; the arrows move within. */
      this.rover = null;
      els.list.addEventListener('focusin', (e) => {
        const item = e.target.closest('.conv-item');
        if (item) this._rove(item);
      });

      els.loadOlder.addEventListener('click', () => {
        const last = els.list.lastElementChild;
        Promise.resolve(this.onLoadOlder()).then(() => {
          // From the keyboard: go on with the first of the conversations just loaded.
          const focusLost = document.activeElement === els.loadOlder || document.activeElement === document.body;
          const first = last && last.parentNode === els.list ? last.nextElementSibling : null;
          if (focusLost && first) first.focus();
        });
      });
      /* Scrolled to the end of the list (the button comes into view): the next page. A failed
       * load waits for a press on the button, so a server that is down is not asked in a loop. */
      if ('IntersectionObserver' in window) {
        new IntersectionObserver((seen) => {
          if (seen.some((e) => e.isIntersecting) && els.loadOlder.dataset.state !== 'error') this.onLoadOlder();
        }, {root: els.scroll, rootMargin: '0px 0px 300px 0px'}).observe(els.loadOlder);
      }

      /* Relative times ("5m") age; refresh them. */
      setInterval(() => {
        for (const c of this.conversations()) {
          const item = this.items.get(c.id);
          const at = activity(c);
          if (item && at) item.querySelector('.conv-time').textContent = formatRelative(at);
        }
      }, 30000);
    }

    item(id) {
      return this.items.get(id) || null;
    }

    remove(id) {
      const node = this.items.get(id);
      if (node) node.remove();
      this.items.delete(id);
      if (node === this.rover) this._rove(null);
    }

    clear() {
      this.items.clear();
      this.ui.list.replaceChildren();
      this.rover = null;
    }

    /* How long the visitor has waited for a reply ("Waiting 4 min"), marked `long` past the
     * agent's reminder limit; hidden when nobody waits. */
    _showWait(item, c) {
      const wait = item.querySelector('.conv-wait');
      const since = Number(c.waiting_since) || 0;
      const ms = since ? Math.max(0, Date.now() - since) : 0;
      wait.hidden = !since;
      item.dataset.waiting = since ? String(Math.floor(ms / 1000)) : '';
      if (!since) return;
      const min = Math.floor(ms / 60000);
      wait.textContent = t('list.waiting', {time: waitText(min)});
      wait.title = t('list.waitingSince', {time: formatFull(since)});
      wait.classList.toggle('long', ms >= this.waitLimit() * 1000);
    }

    /* The waiting times move on by themselves: called every few seconds. */
    tickWaits() {
      for (const c of this.conversations()) {
        const item = this.items.get(c.id);
        if (item && c.waiting_since) this._showWait(item, c);
      }
    }

    /* Makes item (or, for null, the selected item or the first) the list's one Tab stop. */
    _rove(item) {
      const list = this.ui.list;
      const next = item || list.querySelector('.conv-item.selected') || list.firstElementChild;
      if (next === this.rover) return;
      if (this.rover && this.rover.parentNode === list) this.rover.tabIndex = -1;
      this.rover = next;
      if (next) next.tabIndex = 0;
    }

    /* Puts the items in order, moving one only when the order changed, so that focus and hover
     * are not disturbed needlessly. */
    order() {
      const ordered = Array.from(this.conversations()).sort(compareConvs);
      let node = this.ui.list.firstElementChild;
      for (const c of ordered) {
        const item = this.items.get(c.id);
        if (!item) continue;
        if (item !== node) this.ui.list.insertBefore(item, node);
        else node = node.nextElementSibling;
      }
      this.ui.empty.hidden = ordered.length > 0;
      if (!this.rover || this.rover.parentNode !== this.ui.list) this._rove(null);
    }

    /* The "Load older conversations" button. Not disabled while loading: a disabled button
     * would drop the keyboard focus. */
    showLoadOlder(visible, state) {
      const b = this.ui.loadOlder;
      b.hidden = !visible;
      b.setAttribute('aria-busy', state === 'loading' ? 'true' : 'false');
      b.dataset.state = state || 'idle';
      b.textContent = state === 'loading' ? t('list.loadingOlder')
        : state === 'error' ? t('list.loadOlderFailed') : t('list.loadOlder');
    }

    /* Creates or updates the item of conversation c. */
    render(c) {
      let item = this.items.get(c.id);
      if (!item) {
        item = el('li', 'conv-item');
        item.dataset.id = String(c.id);
        item.tabIndex = -1;
        item.setAttribute('role', 'option');
        const av = el('span', 'avatar');
        av.setAttribute('aria-hidden', 'true');
        const main = el('div', 'conv-main');
        const top = el('div', 'conv-top');
        const rated = el('span', 'rating-badge conv-rating');
        rated.setAttribute('role', 'img');
        top.append(el('span', 'conv-name'), el('span', 'conv-tag'), rated, el('span', 'conv-assignee'), el('time', 'conv-time'));
        const bottom = el('div', 'conv-bottom');
        bottom.append(el('span', 'conv-preview-who'), el('span', 'conv-preview'),
          el('span', 'conv-typing'), el('span', 'conv-outbox'), el('span', 'conv-wait'),
          el('span', 'conv-unread'));
        main.append(top, bottom, el('span', 'sr-only conv-sr'));
        item.append(av, main);
        this.items.set(c.id, item);
        this.ui.list.appendChild(item);
      }
      const state = this.stateOf(c);
      const name = visitorName(c.visitor);
      const av = item.querySelector('.avatar');
      av.className = 'avatar ' + avatarClass(c.visitor && c.visitor.id);
      setVisitorAvatar(av, c.visitor);
      item.querySelector('.conv-name').textContent = name;
      item.querySelector('.conv-typing').textContent = t('list.typing');
      const tag = item.querySelector('.conv-tag');
      const tagged = TAGGED.includes(c.status);
      tag.textContent = tagged ? t('console.status.' + c.status) : '';
      tag.hidden = !tagged;
      item.dataset.status = c.status;
      // The visitor's latest rating, a thumb with its words for screen readers.
      const rated = item.querySelector('.conv-rating');
      const rating = c.rating ? c.rating.rating : '';
      rated.hidden = !rating;
      rated.classList.toggle('good', rating === 'good');
      rated.classList.toggle('bad', rating === 'bad');
      rated.textContent = rating === 'good' ? '\u{1F44D}' : rating === 'bad' ? '\u{1F44E}' : '';
      if (rating) rated.setAttribute('aria-label', t(rating === 'good' ? 'list.ratedGood' : 'list.ratedBad'));
      rated.title = rating ? rated.getAttribute('aria-label') : '';
      item.dataset.rating = rating;
      item.classList.toggle('resolved', c.status === 'resolved');
      // Who holds it: "You", another agent's name, or nothing while nobody does.
      const mine = !!c.assignee && state.myId != null && Number(c.assignee.id) === Number(state.myId);
      const holder = !c.assignee ? '' : mine ? t('list.you') : (c.assignee.name || c.assignee.email);
      const assignee = item.querySelector('.conv-assignee');
      assignee.textContent = holder;
      assignee.title = !holder ? '' : mine ? t('list.assignedToYou') : t('list.assignedTo', {name: holder});
      assignee.hidden = !holder;
      assignee.classList.toggle('mine', mine);
      item.dataset.assignee = c.assignee ? String(c.assignee.id) : '';

      const last = c.last_message;
      const who = item.querySelector('.conv-preview-who');
      if (last && last.sender === 'agent') {
        const name = state.myName && last.agent_name === state.myName ? t('list.you') : (last.agent_name || t('list.agent'));
        // A private note is marked as one: the list must not pass it off as what the visitor read.
        who.textContent = last.private ? t('list.previewNote', {name}) : t('list.previewWho', {name});
        who.hidden = false;
        who.classList.toggle('is-note', !!last.private);
      } else {
        who.textContent = '';
        who.hidden = true;
      }
      // The raw text: CSS (white-space: nowrap) shows it as one line.
      item.querySelector('.conv-preview').textContent = last ? last.body : t('list.noMessages');
      const time = item.querySelector('.conv-time');
      const at = activity(c);
      time.textContent = at ? formatRelative(at) : '';
      time.title = at ? formatFull(at) : '';
      if (at) time.dateTime = new Date(at).toISOString();

      this._showWait(item, c);

      const unread = Math.max(0, c.unread | 0);
      item.dataset.unread = String(unread);
      item.classList.toggle('unread', unread > 0);
      const badge = item.querySelector('.conv-unread');
      badge.textContent = unread > 99 ? '99+' : String(unread);
      badge.hidden = unread === 0;
      item.classList.toggle('selected', !!state.selected);
      item.classList.toggle('typing', !!state.typing);
      // Replies of ours not yet stored: what they are doing ("Sending…", "Waiting for
      // connection…"), or "Not sent" when the server refused one.
      const mark = item.querySelector('.conv-outbox');
      mark.hidden = !state.unsent;
      mark.textContent = state.unsent === 'failed' ? t('msg.notSent') : state.unsent || '';
      mark.classList.toggle('failed', state.unsent === 'failed');
      item.setAttribute('aria-selected', state.selected ? 'true' : 'false');
      // The option's name is its text (what is on screen, so that voice control can say it),
      // with what the screen shows by colour and badges spelled out in a hidden part.
      item.querySelector('.conv-sr').textContent = (unread ? t('list.srUnread', {count: unread}) : '') +
        (!holder ? t('list.srUnassigned') : mine ? t('list.srAssignedToYou') : t('list.srAssignedTo', {name: holder})) +
        (state.unsent === 'failed' ? t('list.srNotSent') : '');
    }
  }

  window.KefuConversationList = ConversationList;
})();
