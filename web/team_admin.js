/* team_admin.js: the "Team settings" dialog of the agent console (docs/UI-CONTRACT.md, "Team
 * settings"). Every agent changes its own name and password there; an admin also adds agents,
 * makes them admins or agents, and disables or enables them (docs/API.md, /api/agents).
 *
 *   const settings = new KefuTeamAdmin({dialog, api, team, me: () => me, onSelfChanged});
 *   settings.open();
 *
 * Its words come from the tables (web/i18n.js; keys teamAdmin.*); a change of language draws
 * the agents' rows again.
 */
(function () {
  'use strict';

  const $ = (root, sel) => root.querySelector(sel);
  const {t} = window.KefuI18n;

  class KefuTeamAdmin {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.api = opts.api;
      this.team = opts.team;
      this.me = opts.me;
      this.onSelfChanged = opts.onSelfChanged || (() => {});
      this.rows = $(this.dialog, '#team-admin-rows');
      this.adminPart = $(this.dialog, '#team-admin-part');
      this.addForm = $(this.dialog, '#add-agent-form');
      this.nameForm = $(this.dialog, '#own-name-form');
      this.passwordForm = $(this.dialog, '#own-password-form');
      this.lines = window.KefuUI.statusLines($(this.dialog, '#team-admin-status'), $(this.dialog, '#team-admin-error'));
      $(this.dialog, '#team-admin-close').addEventListener('click', () => this.dialog.close());
      this.addForm.addEventListener('submit', (e) => { e.preventDefault(); this.addAgent(); });
      this.nameForm.addEventListener('submit', (e) => { e.preventDefault(); this.renameSelf(); });
      this.passwordForm.addEventListener('submit', (e) => { e.preventDefault(); this.changePassword(); });
      this.agents = null; // the rows shown, drawn again in a new language
      window.KefuI18n.onChange(() => {
        if (this.agents && this.dialog.open) this.render(this.agents);
      });
    }

    isAdmin() {
      const me = this.me();
      return !!me && me.agent.role === 'admin';
    }

    async open() {
      const me = this.me();
      if (!me) return;
      this.say('');
      this.adminPart.hidden = !this.isAdmin();
      $(this.nameForm, '#own-name').value = me.agent.name || '';
      this.passwordForm.reset();
      this.addForm.reset();
      if (!this.dialog.open) this.dialog.showModal();
      if (this.isAdmin()) await this.load();
    }

    /* A line under the dialog's title: what just happened, or (error) what went wrong. */
    say(text, error) {
      this.lines.say(text, error);
    }

    /* reasons: this dialog's own words for some error codes (ui.js statusLines). */
    run(what, fn, reasons) {
      return this.lines.run(what, fn, reasons);
    }

    async load() {
      await this.run(t('teamAdmin.loadWhat'), async () => {
        const data = await this.api('GET', '/api/agents');
        this.render(data.agents || []);
      });
    }

    render(agents) {
      this.agents = agents;
      const me = this.me();
      const rows = agents.map((a) => {
        const tr = document.createElement('tr');
        tr.dataset.agentId = String(a.id);
        tr.dataset.disabled = String(!!a.disabled);
        const name = document.createElement('td');
        name.className = 'ta-name';
        const label = document.createElement('span');
        label.className = 'ta-label';
        label.textContent = me && a.id === me.agent.id ? t('teams.you', {name: a.name || a.email}) : a.name || a.email;
        const sub = document.createElement('span');
        sub.className = 'ta-sub'; // the e-mail under the name, where the e-mail column is hidden
        sub.textContent = a.email;
        name.append(label, sub);
        const email = document.createElement('td');
        email.className = 'ta-email';
        email.textContent = a.email;
        const roleCell = document.createElement('td');
        const role = document.createElement('select');
        role.className = 'ta-role';
        role.setAttribute('aria-label', t('teamAdmin.roleOf', {name: a.name || a.email}));
        role.append(new Option(t('teamAdmin.agent'), 'agent'), new Option(t('teamAdmin.admin'), 'admin'));
        role.value = a.role;
        role.addEventListener('change', () => this.change(a, {role: role.value}, t('teamAdmin.roleWhat')));
        roleCell.append(role);
        const capacityCell = document.createElement('td');
        const capacity = document.createElement('input');
        capacity.type = 'number';
        capacity.min = '0';
        capacity.max = '10000';
        capacity.step = '1';
        capacity.className = 'ta-capacity';
        capacity.value = String(a.capacity || 0);
        capacity.title = t('teamAdmin.capacityHint');
        capacity.setAttribute('aria-label', t('teamAdmin.capacityOf', {name: a.name || a.email}));
        capacity.addEventListener('change', () => this.change(a, {capacity: Number(capacity.value)}, t('teamAdmin.capacityWhat')));
        const load = document.createElement('span');
        load.className = 'ta-load';
        load.textContent = t('teamAdmin.openCount', {count: a.open_conversations || 0});
        capacityCell.append(capacity, load);
        const stateCell = document.createElement('td');
        const state = document.createElement('button');
        state.type = 'button';
        state.className = 'btn btn-sm ' + (a.disabled ? 'btn-secondary' : 'btn-ghost ta-disable');
        state.textContent = t(a.disabled ? 'teamAdmin.enable' : 'teamAdmin.disable');
        state.setAttribute('aria-label', t(a.disabled ? 'teamAdmin.enableOf' : 'teamAdmin.disableOf', {name: a.name || a.email}));
        state.hidden = !!me && a.id === me.agent.id; // one's own account is not one's to disable
        state.addEventListener('click', () => this.change(a, {disabled: !a.disabled}, t(a.disabled ? 'teamAdmin.enableWhat' : 'teamAdmin.disableWhat')));
        const note = document.createElement('span');
        note.className = 'ta-state';
        note.textContent = a.disabled ? t('teamAdmin.disabled') : '';
        stateCell.append(note, state);
        tr.append(name, email, roleCell, capacityCell, stateCell);
        return tr;
      });
      this.rows.replaceChildren(...rows);
    }

    async change(agent, body, what) {
      const ok = await this.run(what, async () => {
        const data = await this.api('PATCH', '/api/agents/' + agent.id, body);
        const a = data.agent;
        const name = a.name || a.email;
        this.say(body.disabled === true ? t('teamAdmin.disabledNow', {name})
          : body.disabled === false ? t('teamAdmin.enabledNow', {name})
            : body.capacity !== undefined ? (a.capacity > 0 ? t('teamAdmin.capacityNow', {name, count: a.capacity}) : t('teamAdmin.noLimitNow', {name}))
              : t(a.role === 'admin' ? 'teamAdmin.adminNow' : 'teamAdmin.agentNow', {name}));
      }, {conflict: t('teamAdmin.needAdmin')});
      await this.load(); // as it is now, whether the change went or not
      if (ok) this.team.reload();
    }

    async addAgent() {
      const f = this.addForm;
      const body = {
        name: $(f, '#add-name').value.trim(),
        email: $(f, '#add-email').value.trim(),
        password: $(f, '#add-password').value,
        role: $(f, '#add-role').value,
      };
      const ok = await this.run(t('teamAdmin.addWhat'), async () => {
        const data = await this.api('POST', '/api/agents', body);
        this.say(t('teamAdmin.added', {name: data.agent.name || data.agent.email}));
      }, {conflict: t('teamAdmin.emailTaken')});
      if (ok) {
        f.reset();
        await this.load();
        this.team.reload();
      }
    }

    async renameSelf() {
      const me = this.me();
      const name = $(this.nameForm, '#own-name').value.trim();
      const ok = await this.run(t('teamAdmin.renameWhat'), async () => {
        const data = await this.api('PATCH', '/api/agents/' + me.agent.id, {name});
        this.onSelfChanged(data.agent);
        this.say(t('teamAdmin.renamed', {name: data.agent.name || data.agent.email}));
      });
      if (ok) {
        this.team.reload();
        if (this.isAdmin()) this.load();
      }
    }

    async changePassword() {
      const me = this.me();
      const f = this.passwordForm;
      const current = $(f, '#own-current-password').value;
      const next = $(f, '#own-new-password').value;
      if (next !== $(f, '#own-new-password-again').value) {
        this.say(t('teamAdmin.passwordsDiffer'), true);
        return;
      }
      const ok = await this.run(t('teamAdmin.passwordWhat'), async () => {
        await this.api('PATCH', '/api/agents/' + me.agent.id, {password: next, current_password: current});
      }, {forbidden: t('teamAdmin.wrongPassword')});
      if (ok) {
        f.reset();
        this.say(t('teamAdmin.passwordChanged'));
      }
    }
  }

  window.KefuTeamAdmin = KefuTeamAdmin;
})();
