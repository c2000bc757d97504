/* notes.js: private notes in the agent console (docs/UI-CONTRACT.md, "Private notes";
 * docs/API.md, "Private notes"). Three small parts that web/agent.js wires up:
 *
 *   const mode = new KefuReplyMode({replyTab, noteTab, hint, form, onChange});  // Reply | Private note
 *   const transfer = new KefuTransferDialog({dialog, onTransfer});  transfer.open(agentName, agentId)
 *   const mentions = new KefuMentions({section, list, onOpen});  mentions.add(event)
 *
 * A note is an agent's message with "private": true; the visitor never receives it (the server
 * keeps it from every path to them), so this file only shows the difference to the agent.
 */
(function () {
  'use strict';

  const MAX_MENTIONS = 5;
  const I18n = window.KefuI18n;
  const t = I18n.t;

  /* The reply box's two modes: a reply to the visitor, or a private note for the team. */
  class KefuReplyMode {
    constructor(opts) {
      this.replyTab = opts.replyTab;
      this.noteTab = opts.noteTab;
      this.hint = opts.hint;
      this.form = opts.form;
      this.onChange = opts.onChange || function () {};
      this.note = false;
      this.replyTab.addEventListener('click', () => this.set(false));
      this.noteTab.addEventListener('click', () => this.set(true));
    }

    /* Switches to a note (true) or a reply; onChange(note) when it changed. */
    set(note) {
      note = !!note;
      const changed = note !== this.note;
      this.note = note;
      this.replyTab.setAttribute('aria-pressed', String(!note));
      this.noteTab.setAttribute('aria-pressed', String(note));
      this.form.classList.toggle('note-mode', note);
      this.hint.hidden = !note;
      if (changed) this.onChange(note);
    }
  }

  /* "Transfer to…" with an optional note, sent with the transfer in one request. */
  class KefuTransferDialog {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.onTransfer = opts.onTransfer;
      this.form = this.dialog.querySelector('form');
      this.to = this.dialog.querySelector('#transfer-to');
      this.note = this.dialog.querySelector('#transfer-note');
      this.error = this.dialog.querySelector('#transfer-error');
      this.confirm = this.dialog.querySelector('#transfer-confirm');
      this.agentId = null;
      this.dialog.querySelector('#transfer-cancel').addEventListener('click', () => this.close());
      this.form.addEventListener('submit', (e) => {
        e.preventDefault();
        this._submit();
      });
    }

    open(agentName, agentId) {
      this.agentId = agentId;
      this.to.textContent = agentName;
      this.note.value = '';
      this.error.hidden = true;
      this.confirm.disabled = false;
      if (!this.dialog.open) this.dialog.showModal();
      this.note.focus();
    }

    close() {
      if (this.dialog.open) this.dialog.close();
    }

    async _submit() {
      const note = this.note.value.trim();
      this.confirm.disabled = true;
      this.error.hidden = true;
      try {
        await this.onTransfer(this.agentId, note || null);
        this.close();
      } catch (e) {
        this.error.textContent = t('notes.transferFailed', {reason: I18n.errorText(e)});
        this.error.hidden = false;
      } finally {
        this.confirm.disabled = false;
      }
    }
  }

  /* The mentions of this agent, newest first: each opens its conversation at the note. */
  class KefuMentions {
    constructor(opts) {
      this.section = opts.section;
      this.list = opts.list;
      this.onOpen = opts.onOpen;
    }

    add(ev) {
      this.list.prepend(this.item(ev));
      while (this.list.children.length > MAX_MENTIONS) this.list.lastElementChild.remove();
      this.section.hidden = false;
    }

    /* The mentions again in the language of the moment (each item keeps its event). */
    redraw() {
      for (const li of [...this.list.children]) li.replaceWith(this.item(li.kefuMention));
    }

    item(ev) {
      const li = document.createElement('li');
      li.className = 'mention-item';
      li.dataset.conversationId = String(ev.conversation_id);
      li.dataset.messageId = String(ev.message_id);
      li.kefuMention = ev;
      const who = (ev.author && ev.author.name) || t('notes.teammate');
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'mention-open';
      const title = document.createElement('span');
      title.className = 'mention-who';
      title.textContent = t('notes.mentioned', {name: who});
      const snippet = document.createElement('span');
      snippet.className = 'mention-snippet';
      snippet.textContent = ev.snippet || '';
      open.append(title, snippet);
      open.setAttribute('aria-label', t('notes.mentionedLabel', {name: who, snippet: ev.snippet || ''}));
      open.addEventListener('click', () => {
        li.remove();
        this.section.hidden = this.list.children.length === 0;
        this.onOpen({conversation_id: ev.conversation_id, message_id: ev.message_id});
      });
      const dismiss = document.createElement('button');
      dismiss.type = 'button';
      dismiss.className = 'btn-icon mention-dismiss';
      dismiss.setAttribute('aria-label', t('notes.dismiss', {name: who}));
      dismiss.textContent = '×';
      dismiss.addEventListener('click', () => {
        li.remove();
        this.section.hidden = this.list.children.length === 0;
      });
      li.append(open, dismiss);
      return li;
    }

    clear() {
      this.list.replaceChildren();
      this.section.hidden = true;
    }
  }

  window.KefuReplyMode = KefuReplyMode;
  window.KefuTransferDialog = KefuTransferDialog;
  window.KefuMentions = KefuMentions;
})();
