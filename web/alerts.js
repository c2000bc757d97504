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
 */
(function () {
  'use strict';

  const {Sound, badge, desktop} = window.KefuNotify;
  const DEFAULTS = {soundConversation: true, soundMessage: true, whileFocused: false, desktop: true};

  const DESKTOP_TEXT = {
    on: 'Desktop notifications are allowed in this browser.',
    off: 'Desktop notifications are not turned on in this browser yet.',
    blocked: 'This browser blocks notifications from kefu. Allow them in the site settings (the icon left of the address).',
    unsupported: 'This browser cannot show desktop notifications.',
  };

  class KefuAlerts {
    constructor(els, opts) {
      this.els = els;
      this.onOpen = opts.onOpen;
      this.key = null;
      this.settings = Object.assign({}, DEFAULTS);
      this.sound = new Sound({onBlocked: () => this.showBanner()});
      els.button.addEventListener('click', () => this.open());
      els.dialog.querySelector('.notify-close').addEventListener('click', () => els.dialog.close());
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

    showBanner() {
      const b = this.els.banner;
      b.hidden = !this.key || !this.wantsSound() || !this.sound.blocked;
      this.els.button.dataset.played = String(this.sound.played);
    }

    showDesktop() {
      const state = desktop.state();
      this.els.desktopState.textContent = DESKTOP_TEXT[state];
      this.els.desktopState.dataset.state = state;
      this.els.desktopButton.hidden = state !== 'off';
      this.els.boxes.desktop.disabled = state !== 'on';
    }

    open() {
      for (const [name, box] of Object.entries(this.els.boxes)) box.checked = !!this.settings[name];
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
      this.notify('New conversation: ' + who, (c.last_message && c.last_message.body) || '', c.id);
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
  }

  window.KefuAlerts = KefuAlerts;
})();
