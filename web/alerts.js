/* alerts.js: the console's notifications (docs/UI-CONTRACT.md, "Notifications"): what sounds and
 * desktop notifications an agent wants, kept per agent in this browser, and acting on the
 * console's news. Sounds play while the tab is hidden (or always, if chosen); desktop
 * notifications while it is hidden. When the browser holds sound back until a click, the console
 * says so (#sound-banner) instead of failing silently.
 *
 *   const alerts = new KefuAlerts(els, {onOpen(conversationId)});
 *   alerts.start(agentId)  /  alerts.stop()
 *   alerts.conversation(c)         a conversation opened
 *   alerts.message(m, c)           a visitor wrote in conversation c
 *   alerts.unread(total)           the unread count, for the tab's icon
 *   alerts.remind(conversations, who)   every few seconds: the escalation of visitors who wait
 *
 * Escalation, for a visitor waiting without a reply (waiting_since) past N seconds (the agent's
 * "Remind me" setting): at N the sound plays again for the agents it concerns (the assignee, or
 * while unassigned every member of its team, or everyone when it has none), and again at each
 * further N; at 2N a desktop notification goes to every online agent of its team (everyone when
 * it has none); at 3N to the admins too. Each console decides for its own agent, from the same
 * data, so nothing has to be sent for it.
 */
(function () {
  'use strict';

  const {Sound, badge, desktop} = window.KefuNotify;
  const DEFAULTS = {soundConversation: true, soundMessage: true, whileFocused: false, desktop: true,
    remindAfter: 120};

  const t = window.KefuI18n.t;
  // What #notify-desktop-state says for each state of the browser's permission (keys).
  const DESKTOP_TEXT = {
    on: 'alerts.desktopOn',
    off: 'alerts.desktopOff',
    blocked: 'alerts.desktopBlocked',
    unsupported: 'alerts.desktopUnsupported',
  };

  class KefuAlerts {
    constructor(els, opts) {
      this.els = els;
      this.onOpen = opts.onOpen;
      this.key = null;
      this.settings = Object.assign({}, DEFAULTS);
      this.sound = new Sound({onBlocked: () => this.bannerAfterGesture()});
      /* The press that unlocks sound is the first half of a click: hiding the banner then would
       * move the page up under the pointer, the release would land on another element, and the
       * click (on the conversation the agent aimed at) would be lost. */
      this.pressed = false;
      document.addEventListener('pointerdown', () => { this.pressed = true; }, true);
      for (const type of ['pointerup', 'pointercancel']) document.addEventListener(type, () => { this.pressed = false; }, true);
      els.button.addEventListener('click', () => this.open());
      els.dialog.querySelector('.notify-close').addEventListener('click', () => els.dialog.close());
      els.remind.addEventListener('change', () => {
        this.settings.remindAfter = Number(els.remind.value);
        this.save();
      });
      for (const [name, box] of Object.entries(els.boxes)) {
        box.addEventListener('change', () => {
          this.settings[name] = box.checked;
          this.save();
          this.showBanner();
        });
      }
      els.desktopButton.addEventListener('click', async () => {
        els.desktopButton.disabled = true;
        await desktop.ask();
        els.desktopButton.disabled = false;
        this.showDesktop();
      });
      els.testButton.addEventListener('click', () => {
        this.sound.unlock();
        // After the click's own resume: the test tone is the proof that sound works.
        setTimeout(() => this.play('conversation', true), 60);
      });
      els.bannerButton.addEventListener('click', () => this.sound.unlock());
    }

    start(agentId) {
      this.key = 'kefu.notify.' + agentId;
      let saved = null;
      try {
        saved = JSON.parse(localStorage.getItem(this.key) || 'null');
      } catch (e) { /* unreadable: the defaults */ }
      this.settings = Object.assign({}, DEFAULTS, saved && typeof saved === 'object' ? saved : {});
      this.sound.check();
      this.showBanner();
    }

    stop() {
      this.key = null;
      this.els.banner.hidden = true;
      badge(0);
    }

    save() {
      if (!this.key) return;
      try {
        localStorage.setItem(this.key, JSON.stringify(this.settings));
      } catch (e) { /* private mode: for this page only */ }
    }

    wantsSound() {
      return this.settings.soundConversation || this.settings.soundMessage;
    }

    /* showBanner, once a press under way has been released and its click dispatched. */
    bannerAfterGesture() {
      if (!this.pressed) {
        this.showBanner();
        return;
      }
      const later = () => setTimeout(() => this.showBanner(), 0); // after the release's click
      document.addEventListener('pointerup', later, {capture: true, once: true});
    }

    showBanner() {
      const b = this.els.banner;
      b.hidden = !this.key || !this.wantsSound() || !this.sound.blocked;
      this.els.button.dataset.played = String(this.sound.played);
    }

    showDesktop() {
      const state = desktop.state();
      this.els.desktopState.textContent = t(DESKTOP_TEXT[state]);
      this.els.desktopState.dataset.state = state;
      this.els.desktopButton.hidden = state !== 'off';
      this.els.boxes.desktop.disabled = state !== 'on';
    }

    open() {
      for (const [name, box] of Object.entries(this.els.boxes)) box.checked = !!this.settings[name];
      this.els.remind.value = String(this.settings.remindAfter);
      if (this.els.remind.value === '') this.els.remind.value = String(DEFAULTS.remindAfter);
      this.showDesktop();
      this.els.dialog.showModal();
    }

    away() {
      return document.visibilityState !== 'visible' || !document.hasFocus();
    }

    play(kind, always) {
      if (!always && !this.away() && !this.settings.whileFocused) return;
      this.sound.play(kind);
      this.showBanner();
    }

    notify(title, body, conversationId) {
      if (!this.settings.desktop || !this.away()) return;
      desktop.show(title, body, {tag: 'kefu-' + conversationId, onClick: () => this.onOpen(conversationId)});
    }

    conversation(c, who) {
      if (!this.key) return;
      this.fresh = {id: c.id, at: Date.now()}; // its first message is this news, not another
      if (this.settings.soundConversation) this.play('conversation');
      this.notify(t('alerts.newConversation', {name: who}), (c.last_message && c.last_message.body) || '', c.id);
    }

    message(m, who) {
      if (!this.key) return;
      if (this.fresh && this.fresh.id === m.conversation_id && Date.now() - this.fresh.at < 3000) return;
      if (this.settings.soundMessage) this.play('message');
      this.notify(who, m.body, m.conversation_id);
    }

    unread(total) {
      if (this.key) badge(total);
    }

    /* Seconds past which a wait is long (0: never): the list marks those. */
    waitLimit() {
      return Number(this.settings.remindAfter) > 0 ? Number(this.settings.remindAfter) : Infinity;
    }

    /* who: {id, admin, online, inTeam(teamId)}. */
    remind(conversations, who) {
      const n = this.waitLimit();
      if (!this.key || !isFinite(n)) return;
      const stages = this.stages || (this.stages = new Map()); // id -> [waiting_since, reminders done]
      const now = Date.now();
      const seen = new Set();
      for (const c of conversations) {
        if (!c.waiting_since || c.status !== 'open') continue;
        seen.add(c.id);
        let s = stages.get(c.id);
        if (!s || s[0] !== c.waiting_since) stages.set(c.id, s = [c.waiting_since, 0]);
        const due = Math.floor((now - c.waiting_since) / (n * 1000)); // reminders due so far
        if (due <= s[1]) continue;
        s[1] = due;
        const inTeam = !c.team || who.inTeam(c.team.id);
        const concerned = c.assignee ? Number(c.assignee.id) === Number(who.id) : inTeam;
        const waited = Math.round((now - c.waiting_since) / 60000);
        const name = window.KefuUI.visitorName(c.visitor);
        if (concerned && this.wantsSound()) {
          this.sound.play('conversation');
          this.showBanner();
        }
        const told = (due >= 2 && who.online && inTeam) || (due >= 3 && who.admin) || (concerned && due >= 2);
        if (told && this.settings.desktop) {
          desktop.show(t('alerts.waited', {name, time: waited < 1 ? t('alerts.aMinute') : t('alerts.minutes', {count: waited})}),
            c.team ? t('alerts.noReplyTeam', {team: c.team.name}) : t('alerts.noReply'), {tag: 'kefu-wait-' + c.id, onClick: () => this.onOpen(c.id)});
          this.reminded = (this.reminded || 0) + 1;
          this.els.button.dataset.reminded = String(this.reminded);
        }
      }
      for (const id of stages.keys()) if (!seen.has(id)) stages.delete(id);
    }
  }

  window.KefuAlerts = KefuAlerts;
})();
