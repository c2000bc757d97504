/* team.js: the team's presence in the agent console (docs/UI-CONTRACT.md, "Team").
 *
 *   const team = new KefuTeam({list, count, status, dot, api, onError});
 *   team.start(me.agent.id);   // reads GET /api/agents, shows everyone and the agent's own status
 *   team.apply(event);         // a pushed {"type":"presence"} event: that agent's dot changes
 *   team.reload();             // after a push reconnect: presence events are not replayed
 *   team.stop();
 *   team.members();            // the enabled agents, online first: [{id, name, status, open, capacity}]
 *
 * Each member shows how many unresolved conversations they hold, against their capacity when
 * they have one ("3 / 5 open"); the console reads the list again after conversation changes.
 *
 * The agent chooses Online or Away in `status` (a <select>); POST /api/agent/status tells the
 * server, which tells every console. Offline is not a choice: the server says it when an
 * agent's console has been gone for a minute. */
(function () {
  'use strict';

  const t = window.KefuI18n.t;
  // The words for each presence, in the language of the moment they are read.
  const LABELS = {
    get online() { return t('team.online'); },
    get away() { return t('team.away'); },
    get offline() { return t('team.offline'); },
  };
  const ORDER = {online: 0, away: 1, offline: 2};

  class KefuTeam {
    constructor(opts) {
      this.el = opts.list;
      this.countEl = opts.count;
      this.statusEl = opts.status;
      this.dotEl = opts.dot;
      this.api = opts.api;
      this.onError = opts.onError || (() => {});
      this.onChange = opts.onChange || (() => {});
      this.agents = new Map(); // id -> {id, name, email, status}
      this.myId = null;
      this.gen = 0;
      this.statusEl.addEventListener('change', () => this.choose(this.statusEl.value));
    }

    start(myId) {
      this.myId = myId;
      this.gen++;
      return this.reload();
    }

    stop() {
      this.gen++;
      this.myId = null;
      this.agents.clear();
      this.render();
    }

    async reload() {
      const gen = this.gen;
      let data;
      try {
        data = await this.api('GET', '/api/agents');
      } catch (e) {
        return; // the list stays as it was; the next reconnect reads it again
      }
      if (gen !== this.gen) return;
      this.agents.clear();
      for (const a of data.agents || []) {
        if (a.disabled) continue;
        this.agents.set(a.id, {id: a.id, name: a.name || a.email, status: a.status || 'offline',
          open: a.open_conversations || 0, capacity: a.capacity || 0});
      }
      this.render();
    }

    apply(ev) {
      const a = this.agents.get(Number(ev.agent_id));
      if (a) {
        a.status = ev.status;
        this.render();
      } else if (ev.status !== 'offline') {
        this.reload(); // someone new (created or enabled since the list was read)
      }
    }

    async choose(status) {
      const gen = this.gen;
      this.statusEl.disabled = true;
      try {
        const data = await this.api('POST', '/api/agent/status', {status});
        if (gen !== this.gen) return;
        const a = this.agents.get(this.myId);
        if (a) a.status = data.agent.status;
      } catch (e) {
        if (gen === this.gen) this.onError(t('team.statusFailed', {reason: window.KefuI18n.errorText(e)}));
      } finally {
        if (gen === this.gen) this.statusEl.disabled = false;
        this.render();
      }
    }

    members() {
      return [...this.agents.values()].sort((a, b) =>
        (ORDER[a.status] - ORDER[b.status]) || a.name.localeCompare(b.name));
    }

    render() {
      const me = this.agents.get(this.myId);
      const mine = me ? me.status : 'offline';
      this.dotEl.dataset.status = mine;
      this.dotEl.title = LABELS[mine];
      if (mine !== 'offline' && document.activeElement !== this.statusEl) this.statusEl.value = mine;
      const sorted = this.members();
      const items = sorted.map((a) => {
        const li = document.createElement('li');
        li.className = 'team-member';
        li.dataset.agentId = String(a.id);
        li.dataset.status = a.status;
        const dot = document.createElement('span');
        dot.className = 'presence-dot';
        dot.dataset.status = a.status;
        dot.setAttribute('aria-hidden', 'true');
        const name = document.createElement('span');
        name.className = 'team-name';
        name.textContent = a.id === this.myId ? t('team.you', {name: a.name}) : a.name;
        const label = document.createElement('span');
        label.className = 'team-status';
        label.textContent = LABELS[a.status] || a.status;
        const load = document.createElement('span');
        load.className = 'team-load';
        load.textContent = a.capacity > 0 ? t('team.loadCapacity', {open: a.open, capacity: a.capacity}) : t('team.load', {open: a.open});
        load.title = a.capacity > 0 ? t('team.loadCapacityTitle', {capacity: a.capacity}) : t('team.loadTitle');
        li.append(dot, name, load, label);
        return li;
      });
      this.el.replaceChildren(...items);
      const online = sorted.filter((a) => a.status === 'online').length;
      this.countEl.textContent = t('team.onlineCount', {count: online});
      this.onChange();
    }
  }

  KefuTeam.LABELS = LABELS;
  window.KefuTeam = KefuTeam;
})();
