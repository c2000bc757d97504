/* canned.js: canned replies in the agent console (docs/UI-CONTRACT.md, "Canned replies";
 * docs/API.md, /api/canned). Three parts over one list:
 *
 *   const canned = new KefuCanned({api});             // the replies the agent may use
 *   new KefuCannedPicker({input, canned, fill});      // "/" + a shortcut in the reply box
 *   const dlg = new KefuCannedDialog({dialog, canned, me}); dlg.open();  // add, edit, delete
 *
 * fill() answers {visitor, agent}: the names the placeholders {visitor.name} and {agent.name}
 * stand for ("there" for a visitor without one). The list is read when the picker first opens,
 * again after any change made in the dialog, and when the picker opens on a list read more than
 * STALE_MS before (changes made in other consoles are not pushed).
 */
(function () {
  'use strict';

  const MAX_OPTIONS = 8;
  const PREVIEW_CHARS = 80;
  const STALE_MS = 30000;
  const t = window.KefuI18n.t;


  /* body with its placeholders filled in; unknown ones stay as they are. */
  function fillPlaceholders(body, names) {
    return body.replace(/\{\s*(visitor|agent)\.name\s*\}/g, (whole, who) => {
      if (who === 'visitor') return names.visitor || t('canned.visitorFallback');
      return names.agent || whole;
    });
  }

  function preview(body) {
    const line = body.replace(/\s+/g, ' ').trim();
    return line.length > PREVIEW_CHARS ? line.slice(0, PREVIEW_CHARS - 1) + '…' : line;
  }

  class KefuCanned {
    constructor(opts) {
      this.api = opts.api;
      this.items = null;   // as the server last listed them, or null: read it again
      this.readAt = 0;     // when (Date.now())
      this.loading = null; // the read under way
    }

    /* The replies, read from the server the first time, after a change, and when the last read
     * is older than maxAge ms (if given). */
    async list(maxAge) {
      if (this.items && !(maxAge !== undefined && Date.now() - this.readAt > maxAge)) return this.items;
      if (!this.loading) {
        this.loading = this.api('GET', '/api/canned').then((data) => {
          this.items = data.canned || [];
          this.readAt = Date.now();
          return this.items;
        }).finally(() => { this.loading = null; });
      }
      return this.loading;
    }

    changed() {
      this.items = null;
    }
  }

  /* The listbox under the reply box: opened by "/" at the start of the box or after white space,
   * followed by a shortcut's first characters. */
  class KefuCannedPicker {
    constructor(opts) {
      this.input = opts.input;
      this.canned = opts.canned;
      this.fill = opts.fill;
      this.matches = [];
      this.active = -1;
      this.token = null; // {start, end}: the "/shortcut" typed, as offsets in the box
      this.generation = 0;
      this.box = document.createElement('ul');
      this.box.id = 'canned-picker';
      this.box.className = 'canned-picker';
      this.box.setAttribute('role', 'listbox');
      this.box.setAttribute('aria-label', t('canned.title'));
      this.box.hidden = true;
      this.input.insertAdjacentElement('beforebegin', this.box);
      this.input.setAttribute('aria-autocomplete', 'list');
      this.input.setAttribute('aria-controls', 'canned-picker');
      this.input.addEventListener('input', () => this.update());
      this.input.addEventListener('click', () => this.update());
      this.input.addEventListener('blur', () => this.close());
      // Before the reply box's own Enter (send) and the console's Escape (leave the box).
      this.input.addEventListener('keydown', (e) => this.onKey(e));
      // A click chooses without taking the focus from the box.
      this.box.addEventListener('mousedown', (e) => e.preventDefault());
      this.box.addEventListener('click', (e) => {
        const option = e.target.closest('[role="option"]');
        if (option) this.choose(Number(option.dataset.index));
      });
    }

    isOpen() {
      return !this.box.hidden;
    }

    /* The "/shortcut" just before the caret, or null. */
    typedToken() {
      const caret = this.input.selectionStart;
      if (caret !== this.input.selectionEnd) return null;
      const before = this.input.value.slice(0, caret);
      const m = /(^|\s)\/([^\s/]+)$/.exec(before);
      if (!m) return null;
      return {start: caret - m[2].length - 1, end: caret, query: m[2].toLowerCase()};
    }

    async update() {
      const token = this.typedToken();
      const generation = ++this.generation;
      if (!token) {
        this.close();
        return;
      }
      let items;
      try {
        items = await this.canned.list(this.isOpen() ? undefined : STALE_MS);
      } catch (e) {
        return; // the list could not be read: the box stays a plain box
      }
      if (generation !== this.generation) return; // typed on meanwhile
      const starts = items.filter((c) => c.shortcut.toLowerCase().startsWith(token.query));
      const inside = items.filter((c) => !starts.includes(c) && c.shortcut.toLowerCase().includes(token.query));
      this.token = token;
      this.matches = starts.concat(inside).slice(0, MAX_OPTIONS);
      if (!this.matches.length) {
        this.close();
        return;
      }
      this.render();
    }

    render() {
      const names = this.fill();
      const options = this.matches.map((c, i) => {
        const li = document.createElement('li');
        li.id = 'canned-option-' + c.id;
        li.className = 'canned-option';
        li.setAttribute('role', 'option');
        li.dataset.index = String(i);
        li.dataset.shortcut = c.shortcut;
        const shortcut = document.createElement('span');
        shortcut.className = 'canned-option-shortcut';
        shortcut.textContent = '/' + c.shortcut;
        const body = document.createElement('span');
        body.className = 'canned-option-body';
        body.textContent = preview(fillPlaceholders(c.body, names)); // as it will read
        li.append(shortcut, body);
        return li;
      });
      this.box.replaceChildren(...options);
      this.box.hidden = false;
      this.setActive(0);
    }

    setActive(index) {
      const options = this.box.children;
      this.active = (index + options.length) % options.length;
      for (let i = 0; i < options.length; i++) options[i].setAttribute('aria-selected', String(i === this.active));
      const option = options[this.active];
      this.input.setAttribute('aria-activedescendant', option.id);
      option.scrollIntoView({block: 'nearest'});
    }

    close() {
      this.generation++;
      if (this.box.hidden) return;
      this.box.hidden = true;
      this.box.replaceChildren();
      this.matches = [];
      this.active = -1;
      this.input.removeAttribute('aria-activedescendant');
    }

    onKey(e) {
      if (!this.isOpen() || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
      let handled = true;
      if (e.key === 'ArrowDown') this.setActive(this.active + 1);
      else if (e.key === 'ArrowUp') this.setActive(this.active - 1);
      else if ((e.key === 'Enter' && !e.shiftKey) || (e.key === 'Tab' && !e.shiftKey)) this.choose(this.active);
      else if (e.key === 'Escape') this.close();
      else handled = false;
      if (handled) {
        // The picker has the key: not the send, the focus move or the console's shortcut.
        e.preventDefault();
        e.stopImmediatePropagation();
      }
    }

    /* Puts the reply at index in place of the "/shortcut" typed. */
    choose(index) {
      const c = this.matches[index];
      const token = this.token;
      this.close();
      if (!c || !token) return;
      const text = fillPlaceholders(c.body, this.fill());
      const value = this.input.value;
      this.input.value = value.slice(0, token.start) + text + value.slice(token.end);
      const caret = token.start + text.length;
      this.input.setSelectionRange(caret, caret);
      this.input.focus();
      // What follows the box's input (its height, the draft, typing) follows this too.
      this.input.dispatchEvent(new Event('input', {bubbles: true}));
    }
  }

  /* The "Canned replies" dialog: every reply the agent may use, with Add, Edit and Delete (team
   * ones for admins only). */
  class KefuCannedDialog {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.canned = opts.canned;
      this.api = opts.canned.api;
      this.me = opts.me;
      const $ = (sel) => this.dialog.querySelector(sel);
      this.rows = $('#canned-rows');
      this.empty = $('#canned-empty');
      this.form = $('#canned-form');
      this.formTitle = $('#canned-form-title');
      this.shortcut = $('#canned-shortcut');
      this.scope = $('#canned-scope');
      this.scopeField = $('#canned-scope-field');
      this.body = $('#canned-body');
      this.save = $('#canned-save');
      this.cancel = $('#canned-cancel');
      this.lines = window.KefuUI.statusLines($('#canned-status'), $('#canned-error'));
      this.editing = null; // the reply the form changes, or null: it adds one
      this.items = null;   // the replies shown, to draw them again in another language
      $('#canned-close').addEventListener('click', () => this.dialog.close());
      this.cancel.addEventListener('click', () => this.edit(null));
      this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    }

    /* The rows and the form's words again, in the language of the moment (what is typed stays). */
    redraw() {
      if (this.items) this.render(this.items);
      this.showForm();
      this.say('');
    }

    isAdmin() {
      const me = this.me();
      return !!me && me.agent.role === 'admin';
    }

    async open() {
      this.say('');
      this.edit(null);
      if (!this.dialog.open) this.dialog.showModal();
      await this.load();
    }

    say(text, error) {
      this.lines.say(text, error);
    }

    /* Runs fn; when it fails, says "Could not <what>." with the text of the error's code (a 401
     * has ended the session: nothing to say; a conflict here is a shortcut already taken).
     * Resolves to whether fn went. */
    async run(what, fn) {
      try {
        await fn();
      } catch (e) {
        const reason = e.code === 'conflict' ? t('canned.taken') : window.KefuI18n.errorText(e);
        if (e.status !== 401) this.say(t('action.failed', {what, reason}), true);
        return false;
      }
      return true;
    }

    async load() {
      this.canned.changed();
      await this.run(t('canned.whatLoad'), async () => this.render(await this.canned.list()));
    }

    render(items) {
      this.items = items;
      const admin = this.isAdmin();
      const rows = items.map((c) => {
        const li = document.createElement('li');
        li.className = 'canned-row';
        li.dataset.id = String(c.id);
        li.dataset.scope = c.scope;
        const head = document.createElement('div');
        head.className = 'canned-row-head';
        const shortcut = document.createElement('span');
        shortcut.className = 'canned-row-shortcut';
        shortcut.textContent = '/' + c.shortcut;
        const scope = document.createElement('span');
        scope.className = 'canned-row-scope';
        scope.textContent = c.scope === 'team' ? t('canned.tagTeam') : t('canned.tagPersonal');
        head.append(shortcut, scope);
        if (c.scope !== 'team' || admin) {
          const edit = document.createElement('button');
          edit.type = 'button';
          edit.className = 'btn btn-ghost btn-sm';
          edit.textContent = t('canned.edit');
          edit.setAttribute('aria-label', t('canned.editLabel', {shortcut: c.shortcut}));
          edit.addEventListener('click', () => this.edit(c));
          const del = document.createElement('button');
          del.type = 'button';
          del.className = 'btn btn-ghost btn-sm canned-delete';
          del.textContent = t('canned.delete');
          del.setAttribute('aria-label', t('canned.deleteLabel', {shortcut: c.shortcut}));
          del.addEventListener('click', () => this.remove(c));
          head.append(edit, del);
        }
        const body = document.createElement('p');
        body.className = 'canned-row-body';
        body.textContent = c.body;
        li.append(head, body);
        return li;
      });
      this.rows.replaceChildren(...rows);
      this.empty.hidden = rows.length > 0;
    }

    /* Fills the form to change c, or empties it to add one (c null). */
    edit(c) {
      this.editing = c;
      const admin = this.isAdmin();
      this.showForm();
      this.shortcut.value = c ? c.shortcut : '';
      this.body.value = c ? c.body : '';
      this.scope.value = c ? c.scope : 'personal';
      // The scope is chosen when a reply is added; only admins add team ones.
      this.scopeField.hidden = !!c || !admin;
      this.cancel.hidden = !c;
      if (c) this.shortcut.focus();
    }

    /* The form's title and button: adding a reply, or changing this.editing. */
    showForm() {
      const c = this.editing;
      this.formTitle.textContent = c ? t('canned.formTitleEdit', {shortcut: c.shortcut}) : t('canned.formTitleAdd');
      this.save.textContent = c ? t('canned.save') : t('canned.add');
    }

    async submit() {
      const shortcut = this.shortcut.value.trim().replace(/^\/+/, '');
      const body = this.body.value;
      const c = this.editing;
      const ok = await this.run(c ? t('canned.whatSave') : t('canned.whatAdd'), async () => {
        if (c) await this.api('PATCH', '/api/canned/' + c.id, {shortcut, body});
        else await this.api('POST', '/api/canned', {shortcut, body, scope: this.scope.value});
        this.say(c ? t('canned.saved', {shortcut}) : t('canned.added', {shortcut}));
      });
      if (ok) this.edit(null);
      await this.load();
    }

    async remove(c) {
      const ok = await this.run(t('canned.whatDelete'), async () => {
        await this.api('DELETE', '/api/canned/' + c.id);
        this.say(t('canned.deleted', {shortcut: c.shortcut}));
      });
      if (ok && this.editing && this.editing.id === c.id) this.edit(null);
      await this.load();
    }
  }

  window.KefuCanned = KefuCanned;
  window.KefuCannedPicker = KefuCannedPicker;
  window.KefuCannedDialog = KefuCannedDialog;
  window.KefuCannedFill = fillPlaceholders;
})();
