/* i18n.js: the languages of the pages (issue 14, "Languages"): translation tables, t(), the
 * person's language and the locale dates and times are written in.
 *
 * The tables are separate files (web/i18n_en.js, web/i18n_zh-CN.js), each calling
 * KefuI18n.add(lang, table) when it loads; a page loads this file first, then the tables, then
 * its own scripts. A table maps a key to a string with {name} placeholders, or to plural forms
 * ({one, other}, chosen by Intl.PluralRules with the {count} parameter).
 *
 * Until a page calls init() the language is English and dates follow the browser (both pages
 * call it as they start). init() takes the language remembered in localStorage
 * (the person's choice in the page's switcher), else the first of navigator.languages that the
 * tables know (any Chinese written in simplified characters is zh-CN), else English; it sets
 * <html lang> and fills the page's static text (data-i18n attributes, see translate()).
 *
 * The rule for the translated pages (checked by scripts/i18n_check.js, part of make lint): no
 * user-visible text inline. docs/UI-CONTRACT.md, "Languages", has it in full. */
(function () {
  'use strict';

  const FALLBACK = 'en';
  const STORAGE_KEY = 'kefu.lang';
  // What the switcher offers, each in its own language (a person looks for the one they read).
  const LANGUAGES = [
    {code: 'en', name: 'English'},
    {code: 'zh-CN', name: '\u4e2d\u6587'},
  ];

  const tables = {};
  let lang = FALLBACK;
  let started = false;
  const listeners = [];

  function add(code, table) {
    tables[code] = table;
  }

  /* The table language for a BCP 47 tag, or null: zh, zh-CN, zh-Hans(-*), zh-SG (and zh-MY,
   * which also writes simplified) are zh-CN; zh-TW, zh-HK and zh-Hant are not (their readers
   * would rather have English than a script they do not use). */
  function match(tag) {
    const t = String(tag || '').toLowerCase();
    if (t === 'zh' || t === 'zh-cn' || t === 'zh-sg' || t === 'zh-my' || t.startsWith('zh-hans')) return 'zh-CN';
    if (t === 'en' || t.startsWith('en-')) return 'en';
    return null;
  }

  /* The language the browser prefers among those with a table. */
  function browserLanguage() {
    const prefs = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language];
    for (const tag of prefs) {
      const code = match(tag);
      if (code && tables[code]) return code;
    }
    return FALLBACK;
  }

  function stored() {
    try {
      const code = localStorage.getItem(STORAGE_KEY);
      return code && tables[code] ? code : null;
    } catch (e) {
      return null; // storage disabled: the browser's language then
    }
  }

  function lookup(key) {
    const own = tables[lang] && tables[lang][key];
    if (own !== undefined) return own;
    const fallback = tables[FALLBACK] && tables[FALLBACK][key];
    // A key missing everywhere is a bug the lint check catches; the key itself is the least bad text.
    return fallback !== undefined ? fallback : key;
  }

  let pluralRules = null;
  let pluralLang = null;

  /* The text of `key` in the current language, with {name} placeholders from params. A plural
   * entry picks its form by params.count. */
  function t(key, params) {
    let text = lookup(key);
    const p = params || {};
    if (text && typeof text === 'object') {
      if (pluralLang !== lang) {
        pluralRules = new Intl.PluralRules(lang);
        pluralLang = lang;
      }
      const form = pluralRules.select(Number(p.count) || 0);
      text = text[form] !== undefined ? text[form] : text.other;
    }
    return String(text).replace(/\{(\w+)\}/g, (m, name) => (p[name] !== undefined ? String(p[name]) : m));
  }

  /* The text for an error from api() or a refused WebSocket action: by the server's code
   * (docs/API.md), never the server's own English message. */
  function errorText(err) {
    const e = err || {};
    const status = Number(e.status) || 0;
    if (status === 0 || e.code === 'network') return t('error.network');
    const key = 'error.' + String(e.code || '');
    if (e.code && lookup(key) !== key) return t(key);
    if (status === 429) return t('error.rate_limited');
    if (status >= 500) return t('error.internal');
    return t('error.generic', {status});
  }

  /* Fills the static text under root from its attributes: data-i18n (the element's text),
   * data-i18n-placeholder, data-i18n-title, data-i18n-aria-label, each naming a key. */
  function translate(root) {
    const scope = root || document;
    for (const node of scope.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    const attrs = [['i18nPlaceholder', 'placeholder'], ['i18nTitle', 'title'], ['i18nAriaLabel', 'aria-label']];
    for (const [data, attr] of attrs) {
      const selector = '[data-' + data.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()) + ']';
      for (const node of scope.querySelectorAll(selector)) node.setAttribute(attr, t(node.dataset[data]));
    }
  }

  function apply() {
    document.documentElement.lang = lang;
    translate(document);
    for (const fn of listeners) fn(lang);
  }

  /* Chooses the page's language and translates it (see the top of the file). */
  function init() {
    started = true;
    lang = stored() || browserLanguage();
    apply();
    // Shown only now, translated (kefu.css hides a page whose <html> is data-i18n-pending).
    document.documentElement.removeAttribute('data-i18n-pending');
  }

  /* The person chose `code` in the switcher: remembered for their next visit. */
  function setLanguage(code) {
    if (!tables[code] || code === lang) return;
    lang = code;
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch (e) { /* chosen for this page only */ }
    apply();
  }

  /* Calls fn(lang) after every change of language, for text a page draws itself. */
  function onChange(fn) {
    listeners.push(fn);
  }

  /* The locale for Intl formatters: the chosen language, or undefined (the browser's) before init. */
  function locale() {
    return started ? lang : undefined;
  }

  /* Fills a <select> with the languages, the current one chosen, and switches on change. */
  function bindSwitcher(select) {
    select.replaceChildren();
    for (const l of LANGUAGES) {
      if (!tables[l.code]) continue;
      const option = document.createElement('option');
      option.value = l.code;
      option.textContent = l.name;
      option.lang = l.code;
      select.appendChild(option);
    }
    select.value = lang;
    select.addEventListener('change', () => setLanguage(select.value));
    onChange((code) => { select.value = code; });
  }

  window.KefuI18n = {
    add, t, errorText, translate, init, setLanguage, onChange, locale, bindSwitcher, match,
    get lang() { return lang; },
    tables,
  };
})();
