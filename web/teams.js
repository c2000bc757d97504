/* teams.js: teams in the agent console (docs/UI-CONTRACT.md, "Teams"; docs/API.md, "Teams"):
 * the team filters under the views in the left rail, each with its live count; the desk bar's
 * "Team" select that moves the selected conversation to a team; and the admin's Teams dialog,
 * where teams are made and renamed, their members chosen and their automatic assignment set.
 *
 *   const teams = new KefuTeams({filters, select, dialog, button, api, team, me, onFilter, onMove});
 *   teams.start();              // reads GET /api/teams
 *   teams.apply(team);          // a pushed {"type":"team"} event's team
 *   teams.showCounts(counts, view); // GET /api/conversations/counts' "teams", for the view shown
 *   teams.fillSelect(c);        // the selected conversation (or null)
 *   teams.filter;               // the team the list is filtered to, or null
 *   teams.stop();
 *
 * Its words come from the tables (web/i18n.js; keys teams.*); a change of language draws the
 * filters, the select and the dialog's rows again.
 */
(function () {
  'use strict';

  const {t} = window.KefuI18n;
  const MODES = [['off', 'teams.modeOff'], ['round_robin', 'teams.modeRoundRobin'], ['least_busy', 'teams.modeLeastBusy']];

  // An element with properties and children (named h, as hyperscript, not el: the shared
  // el(tag, className, text) of web/ui.js takes other arguments).
  const h = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    node.append(...children);
    return node;
  };

  class KefuTeams {
    constructor(opts) {
      this.filtersEl = opts.filters;
      this.selectEl = opts.select;
      this.dialog = opts.dialog;
      this.button = opts.button;
      this.api = opts.api;
      this.team = opts.team;
      this.me = opts.me;
      this.onFilter = opts.onFilter || (() => {});
      this.onMove = opts.onMove || (() => {});
      this.teams = new Map(); // id -> team
      this.counts = {};
      this.view = 'all';
      this.filter = null;
      this.gen = 0;
      this.rows = this.dialog.querySelector('#teams-rows');
      this.empty = this.dialog.querySelector('#teams-empty');
      this.addForm = this.dialog.querySelector('#teams-add-form');
      this.lines = window.KefuUI.statusLines(this.dialog.querySelector('#teams-status'), this.dialog.querySelector('#teams-error'));
      this.dialog.querySelector('#teams-close').addEventListener('click', () => this.dialog.close());
      this.addForm.addEventListener('submit', (e) => { e.preventDefault(); this.add(); });
      this.button.addEventListener('click', () => this.open());
      this.filtersEl.addEventListener('click', (e) => {
        const b = e.target.closest('.team-filter');
        if (!b) return;
        const id = Number(b.dataset.team);
        this.filter = this.filter === id ? null : id;
        this.renderFilters();
        this.onFilter(this.filter);
      });
      window.KefuI18n.onChange(() => {
        this.fillSelect(this.current);
        if (this.dialog.open) this.renderRows(); // a row being edited stays, in its language
      });
      this.selectEl.addEventListener('change', () => {
        const v = this.selectEl.value;
        this.onMove(v === '' ? null : Number(v));
      });
    }

    isAdmin() {
      const me = this.me();
      return !!me && me.agent.role === 'admin';
    }

    start() {
      this.gen++;
      this.filter = null;
      this.showRole();
      return this.reload();
    }

    stop() {
      this.gen++;
      this.teams.clear();
      this.counts = {};
      this.filter = null;
      this.renderFilters();
      if (this.dialog.open) this.dialog.close();
    }

    /* The Teams button is an admin's (the role may change while the console is open). */
    showRole() {
      this.button.hidden = !this.isAdmin();
      if (!this.isAdmin() && this.dialog.open) this.dialog.close();
    }

    async reload() {
      const gen = this.gen;
      let data;
      try {
        data = await this.api('GET', '/api/teams');
      } catch (e) {
        return; // as it was; the next reconnect reads them again
      }
      if (gen !== this.gen) return;
      this.teams.clear();
      for (const t of data.teams || []) this.teams.set(t.id, t);
      this.renderAll();
    }

    apply(t) {
      if (!t || !t.id) return;
      this.teams.set(t.id, t);
      this.renderAll();
    }

    sorted() {
      return [...this.teams.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, {sensitivity: 'base'}) || a.id - b.id);
    }

    renderAll() {
      this.renderFilters();
      this.fillSelect(this.current);
      if (this.dialog.open) this.renderRows();
    }

    showCounts(counts, view) {
      this.counts = counts || {};
      this.view = view;
      this.renderFilters();
    }

    renderFilters() {
      const buttons = this.sorted().map((t) => {
        const counts = this.counts[String(t.id)];
        const n = counts ? counts[this.view] || 0 : 0;
        const on = this.filter === t.id;
        const b = h('button', {type: 'button', className: 'team-filter' + (on ? ' active' : '')},
          h('span', {className: 'team-filter-name', textContent: t.name}),
          h('span', {className: 'view-count', textContent: n > 999 ? '999+' : String(n)}));
        b.dataset.team = String(t.id);
        b.dataset.count = String(n);
        b.setAttribute('aria-pressed', on ? 'true' : 'false');
        return b;
      });
      this.filtersEl.replaceChildren(...buttons);
      this.filtersEl.hidden = buttons.length === 0;
    }

    /* The "Team" select: "No team" and every team, the conversation's chosen. */
    fillSelect(c) {
      this.current = c || null;
      const options = [new Option(t('teams.noTeam'), '')];
      for (const team of this.sorted()) options.push(new Option(team.name, String(team.id)));
      this.selectEl.replaceChildren(...options);
      this.selectEl.value = c && c.team ? String(c.team.id) : '';
    }

    /* ---- the Teams dialog (admins) ---- */

    open() {
      if (!this.isAdmin()) return;
      this.lines.say('');
      this.addForm.reset();
      this.renderRows();
      if (!this.dialog.open) this.dialog.showModal();
      this.reload();
    }

    renderRows() {
      const teams = this.sorted();
      // A row someone is editing stays as it is; the others show the team as it is now.
      const kept = new Map();
      for (const li of this.rows.querySelectorAll('.teams-row')) {
        if (li.contains(document.activeElement) && li.dataset.dirty === 'true') kept.set(Number(li.dataset.teamId), li);
      }
      this.rows.replaceChildren(...teams.map((t) => kept.get(t.id) || this.row(t)));
      this.empty.hidden = teams.length > 0;
    }

    row(team) {
      const li = h('li', {className: 'teams-row'});
      li.dataset.teamId = String(team.id);
      const form = h('form', {className: 'teams-form'});
      const name = h('input', {className: 'teams-name', value: team.name, maxLength: 80, required: true});
      name.setAttribute('aria-label', t('teams.nameOf', {team: team.name}));
      const mode = h('select', {className: 'teams-mode'});
      mode.setAttribute('aria-label', t('teams.modeOf', {team: team.name}));
      for (const [value, key] of MODES) mode.append(new Option(t(key), value));
      mode.value = team.auto_assign;
      const after = h('input', {className: 'teams-after', type: 'number', min: '0', max: '86400', step: '1', value: String(team.reassign_after)});
      after.setAttribute('aria-label', t('teams.afterOf', {team: team.name}));
      const members = h('fieldset', {className: 'teams-members'}, h('legend', {textContent: t('teams.members')}));
      const ids = new Set(team.members || []);
      const me = this.me();
      for (const a of this.team.members().slice().sort((x, y) => x.name.localeCompare(y.name))) {
        const box = h('input', {type: 'checkbox', value: String(a.id), checked: ids.has(a.id)});
        const who = me && a.id === Number(me.agent.id) ? t('teams.you', {name: a.name}) : a.name;
        box.setAttribute('aria-label', t('teams.memberIn', {name: who, team: team.name}));
        members.append(h('label', {className: 'teams-member'}, box, h('span', {textContent: who})));
      }
      const save = h('button', {type: 'submit', className: 'btn btn-primary btn-sm', textContent: t('teams.save')});
      save.setAttribute('aria-label', t('teams.saveOf', {team: team.name}));
      form.append(
        h('div', {className: 'teams-fields'},
          h('label', {className: 'field'}, h('span', {textContent: t('teams.name')}), name),
          h('label', {className: 'field'}, h('span', {textContent: t('teams.mode')}), mode),
          h('label', {className: 'field'}, h('span', {textContent: t('teams.after')}), after)),
        members,
        h('div', {className: 'teams-actions'}, save));
      form.addEventListener('input', () => { li.dataset.dirty = 'true'; });
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        this.save(team.id, {name: name.value.trim(), auto_assign: mode.value, reassign_after: Number(after.value),
          members: [...members.querySelectorAll('input:checked')].map((b) => Number(b.value))}, li);
      });
      li.append(form);
      return li;
    }

    async save(id, next, li) {
      const team = this.teams.get(id);
      if (!team) return;
      const change = {};
      if (next.name !== team.name) change.name = next.name;
      if (next.auto_assign !== team.auto_assign) change.auto_assign = next.auto_assign;
      if (next.reassign_after !== team.reassign_after) change.reassign_after = next.reassign_after;
      const before = [...(team.members || [])].sort((a, b) => a - b).join(',');
      const membersChanged = next.members.slice().sort((a, b) => a - b).join(',') !== before;
      const ok = await this.lines.run(t('teams.saveWhat'), async () => {
        if (Object.keys(change).length) this.apply((await this.api('PATCH', '/api/teams/' + id, change)).team);
        if (membersChanged) this.apply((await this.api('PUT', '/api/teams/' + id + '/members', {agent_ids: next.members})).team);
        const now = this.teams.get(id);
        const mode = t(MODES.find((m) => m[0] === now.auto_assign)[1]).toLocaleLowerCase(window.KefuI18n.locale());
        this.lines.say(t('teams.saved', {name: now.name, count: now.members.length, mode}));
      });
      if (ok) {
        delete li.dataset.dirty;
        this.renderRows();
      }
    }

    async add() {
      const input = this.addForm.querySelector('#teams-add-name');
      const name = input.value.trim();
      const ok = await this.lines.run(t('teams.addWhat'), async () => {
        const data = await this.api('POST', '/api/teams', {name});
        this.apply(data.team);
        this.lines.say(t('teams.added', {name: data.team.name}));
      });
      if (ok) this.addForm.reset();
    }
  }

  window.KefuTeams = KefuTeams;
})();
