/* invite.js: the console's "Visitors online" dialog (docs/UI-CONTRACT.md, "Visitors online and
 * invitations"; docs/API.md, the same section): the visitors browsing the site now, with their
 * page and time on site, live as they come, move and go (browsing events); an Invite action with a
 * message, which becomes the first agent message of the visitor's conversation and opens their
 * widget; and the invitation rules (a page path, seconds on it, a message), which admins add and
 * delete and every agent reads. The button in the team panel shows how many are online.
 *
 *   const visitors = new KefuVisitors({dialog, button, api, admin: () => bool});
 *   visitors.start();       // after sign-in and after every resync: reads the list and rules
 *   visitors.apply(event);  // a browsing or invite_rule event
 */
(function () {
  'use strict';

  const $ = (root, sel) => root.querySelector(sel);
  const I18n = window.KefuI18n;
  const t = I18n.t;
  const el = (tag, className, text) => window.KefuUI.el(tag, className, text);
  const TICK_MS = 1000; // the times on site count up while the dialog is open

  /* "45 s", "3 min 5 s", "1 h 10 min": how long, the two largest units. */
  function duration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const n = new Intl.NumberFormat(I18n.locale());
    const unit = (key, v) => t(key, {n: n.format(v)});
    if (s < 60) return unit('reports.seconds', s);
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    return h ? unit('reports.hours', h) + ' ' + unit('reports.minutes', m)
      : unit('reports.minutes', m) + (s ? ' ' + unit('reports.seconds', s) : '');
  }

  /* The address as a person reads it: the path (and query) without the scheme and host when
   * they are the site's own. */
  function shortUrl(url) {
    try {
      const u = new URL(url);
      return u.host + u.pathname + u.search;
    } catch (e) {
      return url;
    }
  }

  class KefuVisitors {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.button = opts.button;
      this.api = opts.api;
      this.admin = opts.admin;
      this.visitors = new Map(); // visitor_id -> as GET /api/visitors/online lists them
      this.rules = [];
      this.inviting = null; // the visitor whose invitation form is open
      this.rows = $(this.dialog, '#visitors-rows');
      this.empty = $(this.dialog, '#visitors-empty');
      this.ruleRows = $(this.dialog, '#invite-rules-rows');
      this.rulesEmpty = $(this.dialog, '#invite-rules-empty');
      this.ruleForm = $(this.dialog, '#invite-rule-form');
      this.inviteForm = $(this.dialog, '#invite-form');
      this.inviteText = $(this.dialog, '#invite-message');
      this.lines = window.KefuUI.statusLines($(this.dialog, '#visitors-status'), $(this.dialog, '#visitors-error'));
      this.timer = null;
      this.button.addEventListener('click', () => this.open());
      $(this.dialog, '#visitors-close').addEventListener('click', () => this.dialog.close());
      this.dialog.addEventListener('close', () => {
        clearInterval(this.timer);
        this.timer = null;
        this.closeInvite();
      });
      this.inviteForm.addEventListener('submit', (e) => {
        e.preventDefault();
        this.sendInvite();
      });
      $(this.dialog, '#invite-cancel').addEventListener('click', () => this.closeInvite(true));
      this.ruleForm.addEventListener('submit', (e) => {
        e.preventDefault();
        this.addRule();
      });
      I18n.onChange(() => this.render());
    }

    /* Reads who is online and the rules (at sign-in, and after a gap in the events). */
    async start() {
      try {
        const [online, rules] = await Promise.all([
          this.api('GET', '/api/visitors/online'),
          this.api('GET', '/api/invite-rules'),
        ]);
        this.visitors = new Map((online.visitors || []).map((v) => [Number(v.visitor_id), v]));
        this.rules = rules.rules || [];
        this.render();
      } catch (e) { /* the button stays as it was; the next resync tries again */ }
    }

    open() {
      if (!this.dialog.open) this.dialog.showModal();
      this.start();
      this.lines.say('');
      if (!this.timer) this.timer = setInterval(() => this.renderTimes(), TICK_MS);
    }

    apply(ev) {
      if (ev.type === 'browsing') {
        const id = Number(ev.visitor_id);
        if (ev.online && ev.visitor) this.visitors.set(id, ev.visitor);
        else this.visitors.delete(id);
        if (!ev.online && this.inviting === id) this.closeInvite();
        this.render();
      } else if (ev.type === 'invite_rule') {
        this.rules = this.rules.filter((r) => Number(r.id) !== Number(ev.rule ? ev.rule.id : ev.id));
        if (ev.rule) this.rules.push(ev.rule);
        this.rules.sort((a, b) => a.id - b.id);
        this.renderRules();
      }
    }

    render() {
      const n = this.visitors.size;
      $(this.button, '#visitors-count').textContent = new Intl.NumberFormat(I18n.locale()).format(n);
      this.button.setAttribute('aria-label', t('visitors.buttonLabel', {count: n}));
      this.renderList();
      this.renderRules();
    }

    /* Longest on the site first: who has been looking around for a while. */
    sorted() {
      return [...this.visitors.values()].sort((a, b) => a.since - b.since || a.visitor_id - b.visitor_id);
    }

    renderList() {
      const list = this.sorted();
      this.empty.hidden = list.length > 0;
      const rows = list.map((v) => {
        const li = el('li', 'visitor-row');
        li.dataset.visitorId = String(v.visitor_id);
        const who = el('div', 'visitor-who');
        who.append(el('span', 'visitor-name', window.KefuUI.visitorName({id: v.visitor_id, name: v.name})));
        if (v.invited_at) who.append(el('span', 'visitor-invited', t('visitors.invited')));
        const page = el('div', 'visitor-page');
        const title = el('span', 'visitor-title', v.title || shortUrl(v.url));
        const url = el('span', 'visitor-url', shortUrl(v.url));
        url.title = v.url;
        page.append(title, url);
        const times = el('div', 'visitor-times');
        times.append(el('span', 'visitor-on-site'), el('span', 'visitor-on-page'));
        const invite = el('button', 'btn btn-secondary btn-sm visitor-invite', t('visitors.invite'));
        invite.type = 'button';
        invite.setAttribute('aria-label', t('visitors.inviteLabel', {name: window.KefuUI.visitorName({id: v.visitor_id, name: v.name})}));
        invite.addEventListener('click', () => this.openInvite(Number(v.visitor_id), invite));
        li.append(who, page, times, invite);
        return li;
      });
      this.rows.replaceChildren(...rows);
      this.renderTimes();
      // The invitation form follows its visitor's row (rows are drawn anew).
      if (this.inviting !== null) {
        const row = this.rows.querySelector(`[data-visitor-id="${this.inviting}"]`);
        if (row) row.after(this.inviteForm);
      }
    }

    renderTimes() {
      const now = Date.now();
      for (const row of this.rows.children) {
        const v = this.visitors.get(Number(row.dataset.visitorId));
        if (!v) continue;
        $(row, '.visitor-on-site').textContent = t('visitors.onSite', {time: duration(now - v.since)});
        $(row, '.visitor-on-page').textContent = t('visitors.onPage', {time: duration(now - v.page_since)});
      }
    }

    openInvite(visitorId, button) {
      this.inviting = visitorId;
      const v = this.visitors.get(visitorId);
      $(this.dialog, '#invite-form-title').textContent = t('visitors.inviteTitle', {name: window.KefuUI.visitorName({id: visitorId, name: v && v.name})});
      button.closest('li').after(this.inviteForm);
      this.inviteForm.hidden = false;
      if (!this.inviteText.value) this.inviteText.value = t('visitors.inviteDefault');
      this.inviteText.focus();
      this.inviteText.select();
    }

    closeInvite(refocus) {
      const id = this.inviting;
      this.inviting = null;
      this.inviteForm.hidden = true;
      this.inviteText.value = '';
      if (refocus && id !== null) {
        const row = this.rows.querySelector(`[data-visitor-id="${id}"] .visitor-invite`);
        if (row) row.focus();
      }
    }

    async sendInvite() {
      const id = this.inviting;
      const body = this.inviteText.value.trim();
      if (id === null || !body) return;
      const send = $(this.dialog, '#invite-send');
      send.disabled = true;
      const v = this.visitors.get(id);
      const name = window.KefuUI.visitorName({id, name: v && v.name});
      const ok = await this.lines.run(t('visitors.inviteWhat'), async () => {
        await this.api('POST', `/api/visitors/${id}/invite`, {body});
      }, {not_found: t('visitors.gone')});
      send.disabled = false;
      if (ok) {
        this.closeInvite(true);
        this.lines.say(t('visitors.invitedSaid', {name}));
      }
    }

    renderRules() {
      const admin = this.admin();
      this.ruleForm.hidden = !admin;
      $(this.dialog, '#invite-rules-note').hidden = admin;
      this.rulesEmpty.hidden = this.rules.length > 0;
      this.ruleRows.replaceChildren(...this.rules.map((r) => {
        const li = el('li', 'invite-rule');
        const what = el('div', 'invite-rule-what');
        what.append(el('code', 'invite-rule-path', r.path), el('span', 'invite-rule-after', t('rules.after', {time: duration(r.seconds * 1000)})));
        li.append(what, el('p', 'invite-rule-body', r.body));
        if (admin) {
          const del = el('button', 'btn btn-ghost btn-sm invite-rule-delete', t('rules.delete'));
          del.type = 'button';
          del.setAttribute('aria-label', t('rules.deleteLabel', {path: r.path}));
          del.addEventListener('click', () => this.deleteRule(r));
          li.append(del);
        }
        return li;
      }));
    }

    async addRule() {
      const path = $(this.dialog, '#invite-rule-path').value.trim();
      const seconds = Number($(this.dialog, '#invite-rule-seconds').value);
      const body = $(this.dialog, '#invite-rule-body').value.trim();
      const ok = await this.lines.run(t('rules.addWhat'), async () => {
        const data = await this.api('POST', '/api/invite-rules', {path, seconds, body});
        this.apply({type: 'invite_rule', rule: data.rule});
      });
      if (ok) {
        this.ruleForm.reset();
        this.lines.say(t('rules.added', {path}));
      }
    }

    async deleteRule(rule) {
      const ok = await this.lines.run(t('rules.deleteWhat'), async () => {
        await this.api('DELETE', `/api/invite-rules/${rule.id}`);
        this.apply({type: 'invite_rule', id: rule.id, deleted: true});
      });
      if (ok) this.lines.say(t('rules.deleted', {path: rule.path}));
    }
  }

  window.KefuVisitors = KefuVisitors;
})();
