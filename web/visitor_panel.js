/* visitor_panel.js: the console's visitor panel (#visitor-panel) beside the selected thread, and
 * the admin's Settings dialog (#settings-dialog: the typing preview, the site secret verified
 * visitors are signed with: docs/IDENTITY.md).
 *
 * The panel shows GET /api/conversations/{id}/visitor: whether the site vouched for the visitor
 * (#visitor-verified, with the site's user id), name and e-mail (an agent may edit them:
 * PATCH the same path), the page the visitor is on and the pages of this visit, the referrer,
 * browser, language and the visitor's local time (kept ticking from their time zone), and their
 * earlier conversations (each opens in the console). A "visitor" event for the shown visitor
 * reads it again, so a page change shows in every console at once. On narrow screens the panel
 * sits below the thread, folded to its heading until the agent opens it.
 *
 * Its words come from the tables (web/i18n.js; keys vpanel.*, deskSettings.*), times from Intl
 * in the page's language; a change of language draws the shown visitor again. */
(function () {
  'use strict';

  const {formatTime, formatDay, formatFull} = window.KefuUI;
  const I18n = window.KefuI18n;
  const {t} = I18n;
  const STATUS_LABEL = {open: 'vpanel.open', pending: 'vpanel.pending', resolved: 'vpanel.resolved', snoozed: 'vpanel.snoozed'};

  class KefuVisitorPanel {
    /* o: {root, api(method, path, body), onOpen(conversationId)} */
    constructor(o) {
      this.root = o.root;
      this.api = o.api;
      this.onOpen = o.onOpen;
      this.conversationId = null;
      this.visitor = null;
      this.gen = 0;
      this.clock = null;
      const $ = (id) => document.getElementById(id);
      this.el = {
        toggle: $('visitor-panel-toggle'),
        body: $('visitor-panel-body'),
        status: $('visitor-panel-status'),
        verified: $('visitor-verified'),
        name: $('visitor-name'),
        email: $('visitor-email'),
        edit: $('visitor-edit'),
        form: $('visitor-edit-form'),
        formName: $('visitor-edit-name'),
        formEmail: $('visitor-edit-email'),
        formCancel: $('visitor-edit-cancel'),
        formError: $('visitor-edit-error'),
        page: $('visitor-page'),
        pages: $('visitor-pages'),
        referrer: $('visitor-referrer'),
        browser: $('visitor-browser'),
        language: $('visitor-language'),
        localTime: $('visitor-local-time'),
        earlier: $('visitor-conversations'),
        earlierEmpty: $('visitor-conversations-empty'),
      };
      this.el.toggle.addEventListener('click', () => {
        const open = this.el.toggle.getAttribute('aria-expanded') !== 'true';
        this.el.toggle.setAttribute('aria-expanded', String(open));
        this.root.classList.toggle('is-open', open);
      });
      this.el.edit.addEventListener('click', () => this.editing(true));
      this.el.formCancel.addEventListener('click', () => this.editing(false));
      this.el.form.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          this.editing(false);
        }
      });
      this.el.form.addEventListener('submit', (e) => {
        e.preventDefault();
        this.save();
      });
      this.earlier = []; // the shown visitor's earlier conversations, for a redraw
      I18n.onChange(() => {
        if (this.visitor) this.render(this.visitor, this.earlier);
      });
    }

    /* The selected conversation (or null): read its visitor when it is another one. */
    show(conversation) {
      const id = conversation ? Number(conversation.id) : null;
      if (id === this.conversationId) return;
      this.conversationId = id;
      this.visitor = null;
      this.editing(false);
      this.root.hidden = id === null;
      this.stopClock();
      if (id === null) return;
      this.clear();
      this.el.status.textContent = t('vpanel.loading');
      this.load();
    }

    /* A "visitor" event: the shown visitor changed (a page, a name, an e-mail). */
    apply(ev) {
      if (this.visitor && Number(ev.visitor_id) === Number(this.visitor.id)) this.load();
    }

    reset() {
      this.conversationId = null;
      this.visitor = null;
      this.root.hidden = true;
      this.stopClock();
    }

    async load() {
      const gen = ++this.gen;
      const id = this.conversationId;
      try {
        const data = await this.api('GET', '/api/conversations/' + id + '/visitor');
        if (gen !== this.gen || id !== this.conversationId) return;
        this.render(data.visitor, data.conversations || []);
      } catch (e) {
        if (gen !== this.gen) return;
        this.el.status.textContent = t('action.failed', {what: t('vpanel.loadWhat'), reason: window.KefuI18n.errorText(e)});
      }
    }

    clear() {
      for (const key of ['name', 'email', 'page', 'referrer', 'browser', 'language', 'localTime']) {
        this.el[key].textContent = '';
      }
      this.el.pages.replaceChildren();
      this.el.earlier.replaceChildren();
      this.el.earlierEmpty.hidden = true;
      this.el.verified.hidden = true;
    }

    render(v, earlier) {
      this.visitor = v;
      this.earlier = earlier;
      this.el.status.textContent = '';
      this.el.verified.hidden = v.verified !== true;
      this.el.verified.textContent = v.verified === true ? t('vpanel.verified', {id: v.user_id}) : '';
      this.el.name.textContent = v.name || t('vpanel.notGiven');
      this.el.name.classList.toggle('is-unknown', !v.name);
      this.el.email.textContent = v.email || t('vpanel.notGiven');
      this.el.email.classList.toggle('is-unknown', !v.email);
      this.renderForm(v.form);
      this.el.page.replaceChildren();
      if (v.page && v.page.url) {
        this.el.page.append(link(v.page.url, v.page.title || v.page.url));
        const url = document.createElement('span');
        url.className = 'vp-url';
        url.textContent = v.page.url;
        this.el.page.append(url);
      } else {
        this.el.page.append(unknown(t('vpanel.notReported')));
      }
      this.el.pages.replaceChildren();
      for (const p of v.pages || []) {
        const li = document.createElement('li');
        const time = document.createElement('time');
        time.className = 'vp-time';
        time.dateTime = new Date(p.seen_at).toISOString();
        time.textContent = formatTime(p.seen_at);
        time.title = formatFull(p.seen_at);
        li.append(time, link(p.url, p.title || p.url));
        this.el.pages.append(li);
      }
      if (!(v.pages || []).length) {
        const li = document.createElement('li');
        li.append(unknown(t('vpanel.notReported')));
        this.el.pages.append(li);
      }
      setText(this.el.referrer, v.referrer, t('vpanel.noReferrer'));
      this.el.browser.textContent = v.browser ? browserLabel(v.browser) : v.user_agent ? t('vpanel.unknownBrowser') : '';
      if (!v.browser && !v.user_agent) this.el.browser.append(unknown(t('vpanel.notReported')));
      this.el.browser.title = v.user_agent || '';
      setText(this.el.language, v.language, t('vpanel.notReported'));
      this.startClock(v);
      this.el.earlier.replaceChildren();
      for (const c of earlier) {
        const li = document.createElement('li');
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'vp-earlier';
        const when = c.updated_at ? formatDay(c.updated_at) : '';
        const last = c.last_message ? c.last_message.body : '';
        const title = document.createElement('span');
        title.className = 'vp-earlier-title';
        const status = STATUS_LABEL[c.status] ? t(STATUS_LABEL[c.status]) : c.status;
        title.textContent = [t('vpanel.conversation', {id: c.id}), status, when].filter(Boolean).join(' \u00b7 ');
        const snippet = document.createElement('span');
        snippet.className = 'vp-earlier-snippet';
        snippet.textContent = last;
        button.append(title, snippet);
        button.addEventListener('click', () => this.onOpen(Number(c.id)));
        li.append(button);
        this.el.earlier.append(li);
      }
      this.el.earlierEmpty.hidden = earlier.length > 0;
    }

    /* The pre-chat form's answers (the admin's own questions) and the consent the visitor gave. */
    renderForm(form) {
      const list = document.getElementById('visitor-form');
      list.replaceChildren();
      list.hidden = !form;
      if (!form) return;
      for (const f of form.fields || []) {
        const dt = document.createElement('dt');
        dt.textContent = f.label;
        const dd = document.createElement('dd');
        dd.textContent = f.value || t('vpanel.notGiven');
        dd.classList.toggle('is-unknown', !f.value);
        list.append(dt, dd);
      }
      if (form.consent) {
        const dt = document.createElement('dt');
        dt.textContent = t('vpanel.consent');
        const dd = document.createElement('dd');
        dd.textContent = t('vpanel.consentGiven', {when: formatFull(form.at), text: form.consent});
        list.append(dt, dd);
      }
    }

    /* The visitor's wall clock, from their time zone (else their offset), ticking. */
    startClock(v) {
      this.stopClock();
      const show = () => {
        const text = localTime(v);
        if (text) this.el.localTime.textContent = text;
        else setText(this.el.localTime, '', t('vpanel.notReported'));
      };
      show();
      if (v.timezone || typeof v.utc_offset === 'number') this.clock = setInterval(show, 15000);
    }

    stopClock() {
      if (this.clock) clearInterval(this.clock);
      this.clock = null;
    }

    editing(on) {
      this.el.form.hidden = !on;
      this.el.edit.hidden = on;
      this.el.formError.hidden = true;
      if (!on || !this.visitor) return;
      this.el.formName.value = this.visitor.name || '';
      this.el.formEmail.value = this.visitor.email || '';
      this.el.formName.focus();
    }

    async save() {
      if (this.conversationId === null) return;
      const id = this.conversationId;
      const body = {name: this.el.formName.value.trim(), email: this.el.formEmail.value.trim()};
      try {
        await this.api('PATCH', '/api/conversations/' + id + '/visitor', body);
        if (id !== this.conversationId) return;
        this.editing(false);
        this.el.edit.focus();
        this.load();
      } catch (e) {
        this.el.formError.textContent = t('action.failed', {what: t('vpanel.saveWhat'), reason: window.KefuI18n.errorText(e)});
        this.el.formError.hidden = false;
      }
    }
  }

  function link(url, text) {
    const a = document.createElement('a');
    // Only web addresses become links (the server takes no other scheme; this is the second lock).
    if (/^https?:\/\//i.test(url)) {
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
    a.className = 'vp-link';
    a.textContent = text;
    return a;
  }

  function unknown(text) {
    const span = document.createElement('span');
    span.className = 'is-unknown';
    span.textContent = text;
    return span;
  }

  function setText(el, value, missing) {
    el.replaceChildren();
    if (value) el.textContent = value;
    else el.append(unknown(missing));
  }

  /* The server's label of the browser (src/chat/user_agent.c: "Chrome 120 on Windows", "a
   * browser on Linux", "Firefox 128") in the page's language; names of browsers and systems are
   * the same in every language. */
  function browserLabel(label) {
    const some = /^a browser on (.+)$/.exec(label);
    if (some) return t('vpanel.aBrowserOn', {os: some[1]});
    const on = /^(.+) on (.+)$/.exec(label);
    return on ? t('vpanel.browserOn', {browser: on[1], os: on[2]}) : label;
  }

  function offsetLabel(minutes) {
    const sign = minutes < 0 ? '−' : '+';
    const m = Math.abs(minutes);
    return 'UTC' + sign + String(Math.floor(m / 60)).padStart(2, '0') + ':' + String(m % 60).padStart(2, '0');
  }

  function localTime(v) {
    const now = new Date();
    if (v.timezone) {
      try {
        const time = new Intl.DateTimeFormat(I18n.locale(), {hour: '2-digit', minute: '2-digit', timeZone: v.timezone}).format(now);
        return t('vpanel.timeIn', {time, zone: v.timezone.replace(/_/g, ' ')});
      } catch (e) { /* a zone this browser does not know: the offset below */ }
    }
    if (typeof v.utc_offset === 'number') {
      const there = new Date(now.getTime() + v.utc_offset * 60000);
      const hh = String(there.getUTCHours()).padStart(2, '0');
      const mm = String(there.getUTCMinutes()).padStart(2, '0');
      return t('vpanel.timeIn', {time: hh + ':' + mm, zone: offsetLabel(v.utc_offset)});
    }
    return '';
  }

  /* The admin's Settings dialog: the typing preview, on or off for the whole desk; the site
   * secret, read when the dialog opens (admins only), with a copy button. */
  class KefuDeskSettings {
    /* o: {dialog, button, api(method, path, body), onChange(settings)} */
    constructor(o) {
      this.dialog = o.dialog;
      this.button = o.button;
      this.api = o.api;
      this.onChange = o.onChange;
      this.settings = {typing_preview: false};
      const $ = (id) => document.getElementById(id);
      this.checkbox = $('typing-preview-setting');
      this.status = $('settings-status');
      this.error = $('settings-error');
      this.button.addEventListener('click', () => this.open());
      $('settings-close').addEventListener('click', () => this.dialog.close());
      this.checkbox.addEventListener('change', () => this.save(this.checkbox.checked));
      this.secret = $('site-secret');
      this.secretMode = $('site-secret-mode');
      $('site-secret-copy').addEventListener('click', () => this.copySecret());
      this.secret.addEventListener('focus', () => this.secret.select());
      // The website widget's part of the dialog (web/widget_admin.js).
      this.widget = window.KefuWidgetAdmin;
      this.widget.attach({api: this.api, status: this.status});
    }

    async loadSecret() {
      try {
        const data = await this.api('GET', '/api/settings/site-secret');
        this.secret.value = data.site_secret;
        this.secretMode.textContent = t(data.require_verified ? 'deskSettings.verifiedOnly' : 'deskSettings.verifiedOptional');
      } catch (e) {
        this.error.textContent = t('action.failed', {what: t('deskSettings.secretWhat'), reason: window.KefuI18n.errorText(e)});
        this.error.hidden = false;
      }
    }

    async copySecret() {
      this.error.hidden = true;
      try {
        await navigator.clipboard.writeText(this.secret.value);
        this.status.textContent = t('deskSettings.secretCopied');
      } catch (e) {
        this.secret.focus();
        this.secret.select();
        this.status.textContent = t('deskSettings.copyFailed');
      }
    }

    /* Admins see the button; everyone follows the settings. */
    start(admin) {
      this.button.hidden = !admin;
      this.load();
    }

    stop() {
      this.button.hidden = true;
      if (this.dialog.open) this.dialog.close();
    }

    async load() {
      try {
        const data = await this.api('GET', '/api/settings');
        this.apply(data.settings);
      } catch (e) { /* the next settings event brings them */ }
    }

    apply(settings) {
      if (!settings) return;
      this.settings = settings;
      this.checkbox.checked = settings.typing_preview === true;
      this.widget.show(settings.widget);
      this.onChange(settings);
    }

    open() {
      this.error.hidden = true;
      this.status.textContent = '';
      this.checkbox.checked = this.settings.typing_preview === true;
      this.loadSecret();
      this.widget.opened();
      this.dialog.showModal();
      this.checkbox.focus();
    }

    async save(on) {
      this.error.hidden = true;
      this.checkbox.disabled = true;
      try {
        const data = await this.api('PATCH', '/api/settings', {typing_preview: on});
        this.apply(data.settings);
        this.status.textContent = t(on ? 'deskSettings.previewOn' : 'deskSettings.previewOff');
      } catch (e) {
        this.checkbox.checked = !on;
        this.error.textContent = t('action.failed', {what: t('deskSettings.saveWhat'), reason: window.KefuI18n.errorText(e)});
        this.error.hidden = false;
      } finally {
        this.checkbox.disabled = false;
      }
    }
  }

  window.KefuVisitorPanel = KefuVisitorPanel;
  window.KefuDeskSettings = KefuDeskSettings;
})();
