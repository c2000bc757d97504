/* snooze.js: the console's "Snooze" dialog (docs/UI-CONTRACT.md, "Snoozing"). An agent puts a
 * conversation aside until a time: in an hour, tomorrow morning, next Monday morning, or a time
 * they pick. The choice is the agent's local time; the server takes milliseconds since the epoch
 * and wakes the conversation (status open) exactly then, or earlier when the visitor writes.
 *
 *   KefuSnooze.ask(dialog) -> Promise<ms | null>   (null: the agent cancelled)
 *   KefuSnooze.format(ms)  -> "Mon, Dec 8, 09:00 AM" in the page's language
 *
 * The choices' names come from the tables (web/i18n.js; keys snooze.*), made each time the
 * dialog opens (it is modal: the language cannot change while it is open).
 */
(function () {
  'use strict';

  const I18n = window.KefuI18n;

  const MORNING = 9; // o'clock: when "tomorrow" and "next week" start, in the agent's time zone

  function atMorning(date) {
    const d = new Date(date);
    d.setHours(MORNING, 0, 0, 0);
    return d.getTime();
  }

  /* The quick choices as [key of the label, ms], from now. */
  function choices(now) {
    const tomorrow = new Date(now);
    tomorrow.setDate(tomorrow.getDate() + 1);
    const monday = new Date(now);
    // Next Monday, never today: a snooze on a Monday morning is for a week.
    monday.setDate(monday.getDate() + (((8 - monday.getDay()) % 7) || 7));
    return [
      ['snooze.hour', now + 3600 * 1000],
      ['snooze.hours4', now + 4 * 3600 * 1000],
      ['snooze.tomorrow', atMorning(tomorrow)],
      ['snooze.nextWeek', atMorning(monday)],
    ];
  }

  let when = null;

  /* "Mon, Dec 8, 09:00 AM" (in Chinese "12月8日周一 09:00"), in the page's language. */
  function format(ms) {
    const locale = I18n.locale();
    if (!when || when.locale !== locale) {
      when = {locale, format: new Intl.DateTimeFormat(locale,
        {weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit'})};
    }
    return when.format.format(ms);
  }

  /* The value a datetime-local input takes for ms, in local time. */
  function localInput(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function ask(dialog) {
    const list = dialog.querySelector('.snooze-choices');
    const form = dialog.querySelector('form');
    const input = dialog.querySelector('input[type="datetime-local"]');
    const error = dialog.querySelector('.inline-error');
    const now = Date.now();
    error.hidden = true;
    input.min = localInput(now + 60 * 1000);
    input.value = localInput(now + 24 * 3600 * 1000);
    return new Promise((resolve) => {
      let answer = null;
      const buttons = choices(now).map(([key, ms]) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'btn btn-secondary snooze-choice';
        const name = document.createElement('span');
        name.textContent = I18n.t(key);
        const time = document.createElement('span');
        time.className = 'snooze-when';
        time.textContent = format(ms);
        b.append(name, time);
        b.addEventListener('click', () => { answer = ms; dialog.close(); });
        const li = document.createElement('li');
        li.append(b);
        return li;
      });
      list.replaceChildren(...buttons);
      const onSubmit = (e) => {
        e.preventDefault();
        const ms = input.value ? new Date(input.value).getTime() : NaN;
        if (!(ms > Date.now())) {
          error.textContent = I18n.t('snooze.future');
          error.hidden = false;
          input.focus();
          return;
        }
        answer = ms;
        dialog.close();
      };
      form.addEventListener('submit', onSubmit);
      dialog.addEventListener('close', () => {
        form.removeEventListener('submit', onSubmit);
        resolve(answer);
      }, {once: true});
      dialog.showModal();
      list.querySelector('button').focus();
    });
  }

  window.KefuSnooze = {ask, format};
})();
