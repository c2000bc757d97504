/* shortcuts.js: the agent console's keyboard shortcuts and their help (docs/UI-CONTRACT.md,
 * "Keyboard"). Single keys, as in mail clients, and only while no text field has the focus (so
 * typing a reply never triggers one); Escape leaves the reply box.
 *
 *   new KefuShortcuts({dialog, button, actions: {next, previous, reply, note, resolve, claim, snooze, leave}});
 */
(function () {
  'use strict';

  const t = window.KefuI18n.t;

  /* key -> action; the help says shortcuts.<action> of the tables. */
  const KEYS = [
    ['j', 'next'],
    ['k', 'previous'],
    ['r', 'reply'],
    ['n', 'note'],
    ['e', 'resolve'],
    ['c', 'claim'],
    ['s', 'snooze'],
    ['?', 'help'],
    ['Escape', 'leave'],
  ];

  function typingIn(el) {
    if (!el) return false;
    const tag = el.tagName;
    return el.isContentEditable || tag === 'TEXTAREA' || tag === 'SELECT' ||
      (tag === 'INPUT' && !['button', 'checkbox', 'radio', 'submit'].includes(el.type));
  }

  class KefuShortcuts {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.actions = Object.assign({}, opts.actions, {help: () => this.open()});
      this.render();
      if (opts.button) opts.button.addEventListener('click', () => this.open());
      this.dialog.querySelector('.shortcuts-close').addEventListener('click', () => this.dialog.close());
      document.addEventListener('keydown', (e) => this.onKey(e));
    }

    /* The help's rows, in the language of the moment (again after a change). */
    render() {
      const list = this.dialog.querySelector('.shortcuts-list');
      const rows = KEYS.map(([key, action]) => {
        const dt = document.createElement('dt');
        const kbd = document.createElement('kbd');
        kbd.textContent = key.length > 1 ? t('shortcuts.esc') : key; // Escape, the one named key
        dt.append(kbd);
        const dd = document.createElement('dd');
        dd.textContent = t('shortcuts.' + action);
        return [dt, dd];
      });
      list.replaceChildren(...rows.flat());
    }

    open() {
      if (!this.dialog.open) this.dialog.showModal();
    }

    onKey(e) {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
      if (document.querySelector('dialog[open]') && e.key !== 'Escape') return; // a dialog has the keys
      const target = e.target;
      if (e.key === 'Escape') {
        if (typingIn(target) && target.id === 'reply-input') {
          this.actions.leave();
          e.preventDefault();
        }
        return; // an open dialog closes itself
      }
      if (typingIn(target)) return;
      const entry = KEYS.find(([key]) => key === e.key);
      if (!entry || !this.actions[entry[1]]) return;
      e.preventDefault();
      this.actions[entry[1]]();
    }
  }

  window.KefuShortcuts = KefuShortcuts;
})();
