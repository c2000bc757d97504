/* widget_admin.js: the website widget's part of the admin's Settings dialog
 * (#widget-settings-form): colour, corner, title, greeting, avatar, language, time zone and
 * business hours, the pages that show the launcher, and the pre-chat form. Saved as one
 * PATCH /api/settings {"widget": {…}} (docs/API.md, "Widget settings"); the server checks every
 * field and answers 400 naming the one it refused, which is shown under the form. The dialog's
 * owner (web/visitor_panel.js, KefuDeskSettings) hands over the settings it hears, from
 * GET /api/settings and every settings event, so another admin's change shows here too. Its
 * words come from the tables (keys wsettings.*). */
(function () {
  'use strict';

  const I18n = window.KefuI18n;
  const t = I18n.t;
  const $ = (id) => document.getElementById(id);
  const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

  let api = null;
  let status = null;
  let current = null; // the settings as the server has them
  let dirty = false; // the admin is editing: a settings event does not overwrite their input

  function form() {
    return $('widget-settings-form');
  }

  function showError(text) {
    $('widget-settings-error').textContent = text;
    $('widget-settings-error').hidden = !text;
  }

  function syncHours() {
    const on = $('widget-hours-on').checked;
    $('widget-hours').hidden = !on;
    for (const d of DAYS) {
      const open = $('widget-day-' + d).checked;
      $('widget-open-' + d).disabled = !open;
      $('widget-close-' + d).disabled = !open;
    }
  }

  /* The form shows w. */
  function fill(w) {
    $('widget-color').value = /^#[0-9a-f]{6}$/.test(w.color) ? w.color
      : '#' + w.color.slice(1).split('').map((c) => c + c).join('');
    $('widget-position').value = w.position;
    $('widget-title').value = w.title;
    $('widget-avatar').value = w.avatar;
    $('widget-language').value = w.language;
    $('widget-time-zone').value = w.time_zone;
    $('widget-greeting').value = w.greeting;
    $('widget-hours-on').checked = w.hours !== null;
    $('widget-offline-form').checked = w.offline_form === true;
    for (const d of DAYS) {
      const day = w.hours && w.hours[d];
      $('widget-day-' + d).checked = !!day || (w.hours === null && DAYS.indexOf(d) < 5);
      if (day) {
        $('widget-open-' + d).value = day.open;
        $('widget-close-' + d).value = day.close === '24:00' ? '23:59' : day.close;
      }
    }
    $('widget-pages').value = (w.pages || []).join('\n');
    $('widget-sites').value = (w.sites || []).join('\n');
    $('widget-prechat-required').checked = !!w.prechat.required;
    $('widget-prechat-fields').value = (w.prechat.fields || []).map((f) => f.label + (f.required ? ' *' : '')).join('\n');
    $('widget-consent').value = w.prechat.consent;
    syncHours();
  }

  /* What the form says, as the API takes it. */
  function read() {
    let hours = null;
    if ($('widget-hours-on').checked) {
      hours = {};
      for (const d of DAYS) {
        if (!$('widget-day-' + d).checked) continue;
        // A closing time of 23:59 means to the end of the day (a time input stops there).
        const close = $('widget-close-' + d).value;
        hours[d] = {open: $('widget-open-' + d).value, close: close === '23:59' ? '24:00' : close};
      }
    }
    const lines = (id) => $(id).value.split('\n').map((s) => s.trim()).filter(Boolean);
    return {
      color: $('widget-color').value,
      position: $('widget-position').value,
      title: $('widget-title').value.trim(),
      avatar: $('widget-avatar').value.trim(),
      language: $('widget-language').value,
      time_zone: $('widget-time-zone').value.trim(),
      greeting: $('widget-greeting').value.trim(),
      hours,
      offline_form: $('widget-offline-form').checked,
      pages: lines('widget-pages'),
      sites: lines('widget-sites').map((s) => s.replace(/\/+$/, '').toLowerCase()),
      prechat: {
        required: $('widget-prechat-required').checked,
        fields: lines('widget-prechat-fields').map((l) => {
          const required = /\s*\*$/.test(l);
          return {label: l.replace(/\s*\*$/, ''), required};
        }).filter((f) => f.label),
        consent: $('widget-consent').value.trim(),
      },
    };
  }

  async function save(e) {
    e.preventDefault();
    showError('');
    const button = $('widget-settings-save');
    button.disabled = true;
    try {
      const data = await api('PATCH', '/api/settings', {widget: read()});
      dirty = false;
      current = data.settings.widget;
      fill(current);
      status.textContent = t('wsettings.saved');
    } catch (err) {
      // The server's 400 names the field in its (English) message: shown after ours.
      showError(t('action.failed', {what: t('wsettings.saveWhat'), reason: I18n.errorText(err)}) +
        (err.status === 400 && err.message ? ' (' + err.message + ')' : ''));
    } finally {
      button.disabled = false;
    }
  }

  function zones() {
    const list = $('widget-time-zones');
    if (list.children.length || !Intl.supportedValuesOf) return;
    for (const z of Intl.supportedValuesOf('timeZone')) list.append(new Option(z));
  }

  window.KefuWidgetAdmin = {
    /* o: {api(method, path, body), status: the dialog's status line} */
    attach(o) {
      api = o.api;
      status = o.status;
      form().addEventListener('submit', save);
      form().addEventListener('input', () => { dirty = true; });
      form().addEventListener('change', (e) => {
        dirty = true;
        if (e.target.type === 'checkbox') syncHours();
      });
    },
    /* The settings' "widget", as heard: shown unless the admin is changing them now. */
    show(widget) {
      if (!widget) return;
      current = widget;
      if (!dirty) fill(widget);
    },
    /* The dialog opens: what the server has. */
    opened() {
      zones();
      dirty = false;
      showError('');
      if (current) fill(current);
    },
  };
})();
