/* widget_forms.js: what the admin's widget settings change on the visitor's page (/chat, and the
 * widget's /widget): the header's title, the greeting (with the agent's avatar) in the empty
 * chat, the colour; the pre-chat form the visitor fills before writing, when the admin requires
 * it; and, when no agent is online or the desk is closed, a notice and a leave-a-message form
 * (docs/API.md, "Widget settings"). chat.js hands its part over with attach() and passes on what
 * it hears: apply() with each settings and availability (GET /api/visitor, the settings event),
 * history() once it knows whether the visitor has a conversation.
 *
 * Built as elements here, not in both pages' markup: /chat and /widget share it. Its words come
 * from the tables (keys wforms.*). */
(function () {
  'use strict';

  const I18n = window.KefuI18n;
  const t = I18n.t;
  const $ = (id) => document.getElementById(id);
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  let widget = null; // the settings (GET /api/widget's "widget")
  let availability = null; // {online, open_now, available, changes_at}
  let visitor = null; // {name, email} as the server has them
  let hasHistory = null; // null until chat.js has loaded the history
  let formDone = false; // the pre-chat form was sent from this page
  let left = false; // a message was left with the offline form
  let chat = null; // chat.js: {api(method, path, body), leave(body), focus(), refresh()}
  let refreshTimer = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'i18n') node.dataset.i18n = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  /* A labelled input; required ones say so in the label's text. */
  function field(id, labelKey, input, required, labelText) {
    const label = el('label', {for: id});
    label.textContent = labelText || t(labelKey);
    if (required) label.append(el('span', {class: 'wf-required', text: ' ' + t('wforms.requiredMark')}));
    input.id = id;
    if (required) input.required = true;
    return el('div', {class: 'field'}, [label, input]);
  }

  /* ---- the elements, made once ---- */

  const greetingEl = el('div', {id: 'widget-greeting', class: 'wf-greeting', hidden: ''});
  const avatarEl = el('span', {id: 'widget-greeting-avatar', class: 'wf-avatar', 'aria-hidden': 'true'});
  const greetingName = el('span', {class: 'wf-greeting-name'});
  const greetingText = el('p', {id: 'widget-greeting-text', class: 'wf-greeting-text'});
  greetingEl.append(avatarEl, el('div', {class: 'wf-greeting-body'}, [greetingName, greetingText]));

  const offlineNotice = el('p', {id: 'offline-notice', class: 'wf-offline-notice', role: 'status', hidden: ''});

  const prechatForm = el('form', {id: 'prechat-form', class: 'wf-form', novalidate: '', 'aria-labelledby': 'prechat-title', hidden: ''});
  const offlineForm = el('form', {id: 'offline-form', class: 'wf-form', novalidate: '', 'aria-labelledby': 'offline-title', hidden: ''});
  const offlineSent = el('p', {id: 'offline-sent', class: 'wf-sent', role: 'status', hidden: ''});

  function insert() {
    const empty = $('empty-state');
    empty.prepend(greetingEl);
    const composer = $('composer');
    composer.before(offlineNotice, prechatForm, offlineForm, offlineSent);
  }

  /* ---- the settings ---- */

  const DEFAULT_COLOR = '#2159cc'; // the page's own gradient stays for it

  /* The relative luminance of "#rgb" or "#rrggbb" (WCAG), 0 (black) to 1 (white). */
  function luminance(hex) {
    const h = hex.length === 4 ? hex.slice(1).split('').map((c) => c + c).join('') : hex.slice(1);
    const [r, g, b] = [0, 2, 4].map((i) => {
      const c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function initials(avatar) {
    const words = String(avatar || '').trim().split(/\s+/).filter(Boolean);
    if (!words.length) return '';
    if (words.length === 1 && words[0].length <= 3) return words[0].toUpperCase();
    return words.slice(0, 2).map((w) => Array.from(w)[0]).join('').toUpperCase();
  }

  function applyLook() {
    const title = $('chat-title');
    if (widget.title) {
      delete title.dataset.i18n; // the admin's words, in whatever language they wrote them
      title.textContent = widget.title;
    } else if (!title.dataset.i18n) {
      title.dataset.i18n = 'chat.title';
      title.textContent = t('chat.title');
    }
    // Through the CSS variables every coloured part already uses (the header, the send button).
    const root = document.documentElement.style;
    const branded = !!widget.color && widget.color !== DEFAULT_COLOR;
    if (branded) {
      root.setProperty('--brand', widget.color);
      root.setProperty('--brand-strong', widget.color);
      // White text on a dark colour, dark text on a light one: readable either way.
      root.setProperty('--brand-ink', luminance(widget.color) > 0.45 ? '#1a2233' : '#ffffff');
    } else {
      for (const name of ['--brand', '--brand-strong', '--brand-ink']) root.removeProperty(name);
    }
    document.querySelector('.chat-header').classList.toggle('wf-branded', branded);
    greetingEl.hidden = !widget.greeting;
    $('empty-state').classList.toggle('has-greeting', !!widget.greeting);
    greetingText.textContent = widget.greeting || '';
    const letters = initials(widget.avatar);
    avatarEl.textContent = letters;
    avatarEl.hidden = !letters;
    greetingName.textContent = widget.avatar && widget.avatar.length > 3 ? widget.avatar : '';
  }

  /* ---- which form shows ---- */

  function unavailable() {
    return !!availability && availability.available === false;
  }

  function prechatNeeded() {
    if (!widget || !widget.prechat || !widget.prechat.required || hasHistory !== false || formDone) return false;
    return !(visitor && visitor.name && visitor.email); // given before, on another page view
  }

  function render() {
    if (!widget) return;
    // The visitor is told whenever no one can answer now; the form that asks for an e-mail
    // instead of the message box only where the admin asked for it (by default the chat takes
    // messages whoever is there, and the reply comes in it).
    const away = unavailable();
    offlineNotice.hidden = !away;
    if (away) {
      offlineNotice.textContent = availability.open_now === false ? t('wforms.closedNotice') : t('wforms.awayNotice');
    }
    // Before a first message only: a conversation under way goes on (a reply comes when someone is back).
    const offline = away && widget.offline_form === true && hasHistory === false && !left;
    const prechat = !offline && prechatNeeded();
    showForm(offlineForm, offline, buildOffline);
    showForm(prechatForm, prechat, buildPrechat);
    $('composer').hidden = offline || prechat;
    // The form needs the room: the empty chat's picture gives it up.
    document.body.classList.toggle('wf-form-open', offline || prechat);
    const hint = document.querySelector('.composer-hint');
    if (hint) hint.hidden = offline || prechat;
    scheduleRefresh();
  }

  function showForm(form, on, build) {
    if (on && form.hidden) build();
    form.hidden = !on;
  }

  /* The desk opens or closes at changes_at: ask again then (the server decides, docs/ARCHITECTURE.md). */
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!availability || !availability.changes_at || !chat) return;
    const wait = Math.max(1000, Math.min(availability.changes_at - Date.now() + 1000, 6 * 3600 * 1000));
    refreshTimer = setTimeout(() => chat.refresh(), wait);
  }

  function submit(id, key) {
    const button = el('button', {id, type: 'submit', text: t(key)});
    button.classList.add('btn', 'btn-primary');
    return button;
  }

  function errorBox(id) {
    return el('div', {id, class: 'inline-error', role: 'alert', hidden: ''});
  }

  function showError(box, text) {
    box.textContent = text;
    box.hidden = !text;
  }

  function buildPrechat() {
    const p = widget.prechat;
    const nameInput = el('input', {maxlength: '80', autocomplete: 'name'});
    const emailInput = el('input', {type: 'email', maxlength: '254', autocomplete: 'email', inputmode: 'email'});
    const extra = (p.fields || []).map((f, i) =>
      field('prechat-field-' + i, '', el('input', {maxlength: '500'}), f.required, f.label));
    const children = [
      el('h2', {id: 'prechat-title', class: 'wf-title', text: t('wforms.prechatTitle')}),
      el('p', {class: 'wf-lead', text: t('wforms.prechatLead')}),
      field('prechat-name', 'wforms.name', nameInput, true),
      field('prechat-email', 'wforms.email', emailInput, true),
      ...extra,
    ];
    let consent = null;
    if (p.consent) {
      consent = el('input', {type: 'checkbox', id: 'prechat-consent', required: ''});
      children.push(el('label', {class: 'wf-consent', for: 'prechat-consent'}, [consent, el('span', {text: p.consent})]));
    }
    const error = errorBox('prechat-error');
    children.push(error, submit('prechat-start', 'wforms.startChat'));
    prechatForm.replaceChildren(...children);
    if (visitor) {
      nameInput.value = visitor.name || '';
      emailInput.value = visitor.email || '';
    }
    prechatForm.onsubmit = async (e) => {
      e.preventDefault();
      const name = nameInput.value.trim();
      const email = emailInput.value.trim();
      const answers = (p.fields || []).map((f, i) => ({label: f.label, value: $('prechat-field-' + i).value.trim()}));
      if (!name || !email || (p.fields || []).some((f, i) => f.required && !answers[i].value)) {
        showError(error, t('wforms.fillRequired'));
        return;
      }
      if (!EMAIL.test(email)) {
        showError(error, t('wforms.emailInvalid'));
        return;
      }
      if (consent && !consent.checked) {
        showError(error, t('wforms.consentNeeded'));
        return;
      }
      showError(error, '');
      try {
        if ((p.fields || []).length || consent) {
          await chat.api('PUT', '/api/visitor/form', {fields: answers, consent: !!(consent && consent.checked)});
        }
        const data = await chat.api('PATCH', '/api/visitor', {name, email});
        visitor = data.visitor;
        formDone = true;
        render();
        chat.focus();
      } catch (err) {
        showError(error, err.status === 400 && /email/.test(err.message || '') ? t('wforms.emailInvalid') : I18n.errorText(err));
      }
    };
  }

  function buildOffline() {
    const nameInput = el('input', {maxlength: '80', autocomplete: 'name'});
    const emailInput = el('input', {type: 'email', maxlength: '254', autocomplete: 'email', inputmode: 'email'});
    const message = el('textarea', {rows: '4', maxlength: '4000'});
    const error = errorBox('offline-error');
    offlineForm.replaceChildren(
      el('h2', {id: 'offline-title', class: 'wf-title', text: t('wforms.offlineTitle')}),
      el('p', {class: 'wf-lead', text: t('wforms.offlineLead')}),
      field('offline-name', 'wforms.name', nameInput, true),
      field('offline-email', 'wforms.email', emailInput, true),
      field('offline-message', 'wforms.message', message, true),
      error,
      submit('offline-send', 'wforms.leaveMessage'),
    );
    if (visitor) {
      nameInput.value = visitor.name || '';
      emailInput.value = visitor.email || '';
    }
    offlineForm.onsubmit = async (e) => {
      e.preventDefault();
      const body = {name: nameInput.value.trim(), email: emailInput.value.trim(), message: message.value.trim()};
      if (!body.name || !body.email || !body.message) {
        showError(error, t('wforms.fillRequired'));
        return;
      }
      if (!EMAIL.test(body.email)) {
        showError(error, t('wforms.emailInvalid'));
        return;
      }
      showError(error, '');
      try {
        const data = await chat.api('PATCH', '/api/visitor', {name: body.name, email: body.email});
        visitor = data.visitor;
        // Sent as the visitor's first message: a conversation the team sees like any other.
        chat.leave(body.message);
        left = true;
        offlineSent.textContent = t('wforms.offlineSent', {email: body.email});
        offlineSent.hidden = false;
        render();
      } catch (err) {
        showError(error, err.status === 400 && /email/.test(err.message || '') ? t('wforms.emailInvalid') : I18n.errorText(err));
      }
    };
  }

  window.KefuVisitorForms = {
    /* chat.js's part: api(method, path, body) with the visitor's token, leave(text) sends a
     * message, focus() the message box, refresh() reads the settings again. */
    attach(part) {
      chat = part;
      insert();
    },
    /* The settings (their "widget"), availability and the visitor, each as heard last. */
    apply(settingsWidget, avail, who) {
      if (settingsWidget) widget = settingsWidget;
      if (avail) availability = avail;
      if (who) visitor = who;
      if (!widget) return;
      applyLook();
      render();
    },
    /* Whether the visitor has a conversation: the forms are for before the first message. */
    history(has) {
      if (hasHistory === !!has) return;
      hasHistory = !!has;
      render();
    },
    /* Whether the page says no one can answer now. */
    unavailable,
    /* The box may be used: no form stands in front of it. */
    mayWrite: () => $('composer').hidden !== true,
  };

  // The forms' words follow a change of language.
  I18n.onChange(() => {
    if (!widget) return;
    if (!prechatForm.hidden) buildPrechat();
    if (!offlineForm.hidden) buildOffline();
    applyLook();
    render();
  });
})();
