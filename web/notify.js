/* notify.js: telling a person something happened while they look elsewhere (docs/UI-CONTRACT.md,
 * "Notifications"): a short sound, a desktop notification, and a count on the tab's icon. Used by
 * the console and the visitor page.
 *
 * Browsers start sound only after the page has had a user gesture (a click or a key). Sound keeps
 * an AudioContext; while it is suspended the page is told (`onBlocked`), shows "Click to enable
 * sound", and the next gesture anywhere resumes it. The tones are made here (Web Audio), so there
 * is no sound file to load and nothing for the CSP to allow.
 *
 *   const sound = new KefuNotify.Sound({onBlocked(blocked)});  sound.play('message'|'conversation')
 *   KefuNotify.badge(count)                     the tab icon, with the count (0: the plain icon)
 *   KefuNotify.desktop.state()                  'on' | 'off' | 'blocked' | 'unsupported'
 *   KefuNotify.desktop.ask() -> Promise<state>  asks the browser (call it from a click)
 *   KefuNotify.desktop.show(title, body, {tag, onClick})
 */
(function () {
  'use strict';

  /* Two notes for a new conversation, one for a message: told apart without looking. */
  const TONES = {
    message: [[880, 0, 0.12]],
    conversation: [[660, 0, 0.12], [990, 0.15, 0.18]],
  };

  class Sound {
    constructor(opts) {
      this.onBlocked = (opts && opts.onBlocked) || (() => {});
      this.ctx = null;
      this.played = 0; // how many sounds were started (the UI shows it in data-played, for tests)
      this.blocked = false;
      const unlock = () => this.unlock();
      for (const type of ['pointerdown', 'keydown', 'touchend']) document.addEventListener(type, unlock, true);
    }

    _context() {
      if (this.ctx) return this.ctx;
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      this.ctx = new AC();
      this.ctx.addEventListener('statechange', () => this._setBlocked(this.ctx.state !== 'running'));
      return this.ctx;
    }

    _setBlocked(blocked) {
      if (blocked === this.blocked) return;
      this.blocked = blocked;
      this.onBlocked(blocked);
    }

    /* Whether a sound could play now; creates the context to find out. */
    check() {
      const ctx = this._context();
      if (!ctx) return false;
      this._setBlocked(ctx.state !== 'running');
      return !this.blocked;
    }

    /* From a user gesture: the browser lets the context run now. */
    unlock() {
      const ctx = this.ctx;
      if (ctx && ctx.state !== 'running') ctx.resume().then(() => this._setBlocked(ctx.state !== 'running'), () => {});
    }

    /* Plays kind's tones; false (and onBlocked(true)) when the browser does not let it. */
    play(kind) {
      if (!this.check()) return false;
      const ctx = this.ctx;
      const t0 = ctx.currentTime + 0.01;
      for (const [freq, at, length] of TONES[kind] || TONES.message) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'sine';
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t0 + at);
        gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + length);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t0 + at);
        osc.stop(t0 + at + length + 0.02);
      }
      this.played++;
      return true;
    }
  }

  /* ---- the tab's icon ---- */

  const ICON = '<rect width="32" height="32" rx="8" fill="#2f6fed"/>' +
    '<path d="M25 15.5a9 9 0 0 1-13.1 8L7 25l1.5-4.6A9 9 0 1 1 25 15.5z" fill="#fff"/>';
  let plainHref = null;

  /* The icon with a red disc and the count (9+ above 9), or the plain icon for 0. */
  function badge(count) {
    const link = document.querySelector('link[rel="icon"]');
    if (!link) return;
    if (plainHref === null) plainHref = link.getAttribute('href');
    link.dataset.count = String(count);
    if (!(count > 0)) {
      if (link.getAttribute('href') !== plainHref) link.setAttribute('href', plainHref);
      return;
    }
    const text = count > 9 ? '9+' : String(count);
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' + ICON +
      '<circle cx="23" cy="9" r="9" fill="#d93025" stroke="#fff" stroke-width="1.5"/>' +
      '<text x="23" y="13" text-anchor="middle" font-family="Arial,sans-serif" font-weight="700" ' +
      'font-size="' + (text.length > 1 ? 10 : 12) + '" fill="#fff">' + text + '</text></svg>';
    link.setAttribute('href', 'data:image/svg+xml,' + encodeURIComponent(svg));
  }

  /* ---- desktop notifications ---- */

  const desktop = {
    state() {
      if (!('Notification' in window)) return 'unsupported';
      if (Notification.permission === 'granted') return 'on';
      if (Notification.permission === 'denied') return 'blocked';
      return 'off';
    },
    async ask() {
      if (desktop.state() !== 'off') return desktop.state();
      try {
        await Notification.requestPermission();
      } catch (e) { /* an old browser's callback form: the state says what happened */ }
      return desktop.state();
    },
    show(title, body, opts) {
      if (desktop.state() !== 'on') return null;
      const o = opts || {};
      try {
        const n = new Notification(title, {body, tag: o.tag, icon: '/static/favicon.svg'});
        n.addEventListener('click', () => {
          window.focus();
          if (o.onClick) o.onClick();
          n.close();
        });
        return n;
      } catch (e) {
        return null; // Android Chrome allows them from a service worker only
      }
    },
  };

  window.KefuNotify = {Sound, badge, desktop};
})();
