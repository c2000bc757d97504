'use strict';
// i18n_check.js: the languages check of make lint (scripts/lint.js runs it; docs/UI-CONTRACT.md,
// "Languages", states the rule it enforces):
//  1. web/i18n_en.js and web/i18n_zh-CN.js have the same keys, each with the same {placeholders}
//     and the plural forms its language needs (English: one and other; Chinese: other);
//  2. every key the translated files name (t('key'), data-i18n="key", ...) is in the tables, and
//     the English text inline in the HTML (what the HTML says before the tables fill it) is the
//     English table's;
//  3. the translated files put no text of their own on the screen: in their JavaScript, no string
//     that reads as words (see wordy()) is assigned to textContent, title, placeholder, a label
//     attribute or document.title, nor handed to el() or showError(); in their HTML every text
//     node and label attribute is filled from a key.
// check(root) returns one line per problem.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const LANGUAGES = { en: 'web/i18n_en.js', 'zh-CN': 'web/i18n_zh-CN.js' };
const PLURAL_FORMS = { en: ['one', 'other'], 'zh-CN': ['other'] };
// Every script and page under web/ is checked, but for these: the tables and i18n.js itself (the
// languages' own names), and the widget's loader (web/widget.js), which runs on other sites'
// pages, cannot load the tables and keeps its three texts per language in itself
// (docs/UI-CONTRACT.md, "The website widget").
const NOT_CHECKED = ['web/i18n.js', 'web/i18n_en.js', 'web/i18n_zh-CN.js', 'web/widget.js'];

function webFiles(root, ext) {
  return fs.readdirSync(path.join(root, 'web'))
    .filter((name) => name.endsWith(ext))
    .map((name) => `web/${name}`)
    .filter((file) => !NOT_CHECKED.includes(file))
    .sort();
}

function loadTable(root, file) {
  const tables = {};
  const sandbox = { window: { KefuI18n: { add: (code, table) => { tables[code] = table; } } } };
  vm.runInNewContext(fs.readFileSync(path.join(root, file), 'utf8'), sandbox, { filename: file });
  return tables;
}

function placeholders(value) {
  const texts = typeof value === 'string' ? [value] : Object.values(value);
  const names = new Set();
  for (const text of texts) for (const m of String(text).matchAll(/\{(\w+)\}/g)) names.add(m[1]);
  return [...names].sort().join(',');
}

// A string literal's text that a person would read: it has a letter of a script without case
// (Chinese), a capital, a space between letters, or ends a sentence. Lower-case single tokens
// ('connected', 'button', 'msg-retry') are code: states, class names, element names.
function wordy(text) {
  if (!/\p{L}/u.test(text)) return false;
  if (/[\p{Lo}]/u.test(text)) return true;
  return /^\s*\p{Lu}/u.test(text) || /\p{L}\s+\p{L}/u.test(text) || /\p{L}[.!?\u2026]\s*$/u.test(text);
}

const LITERAL = /'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`/g;

// Where text goes on the screen (or to a screen reader). The statement from here to its `;`
// must not hold a wordy literal outside t('key', ...).
const SINKS = [
  /\.(?:textContent|innerText|innerHTML|title|placeholder|alt|label)\s*=(?!=)/g,
  /document\.title\s*=(?!=)/g,
  /setAttribute\(\s*['"](?:aria-label|aria-description|title|placeholder|alt)['"]\s*,/g,
  /\bel\(\s*[^,()]+,\s*[^,()]+,/g,
  // Text in an element's properties (el(tag, {textContent: ...})), an option, a drawing's text.
  /\b(?:textContent|title|placeholder|label)\s*:/g,
  /['"](?:aria-label|title)['"]\s*:/g,
  /new\s+Option\(/g,
  /\bsvg\(\s*'(?:text|title)'/g,
  /\b(?:showError|alert|confirm|prompt)\(/g,
  /new\s+Notification\(/g,
];

function stripComments(source) {
  // Comments become spaces (keeping the offsets and line numbers); strings are left alone.
  return source.replace(/('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g,
    (m, literal) => literal || m.replace(/[^\n]/g, ' '));
}

function lineOf(text, offset) {
  return text.slice(0, offset).split('\n').length;
}

function unescape(text) {
  return text.replace(/\\u([0-9a-fA-F]{4})/g, (m, h) => String.fromCharCode(parseInt(h, 16)));
}

/* Where the value of an object's property that starts at `start` ends: the first `,`, `}` or
 * `;` outside brackets and string literals. */
function valueEnd(source, start) {
  let depth = 0;
  for (let i = start; i < source.length; i++) {
    const c = source[i];
    if (c === "'" || c === '"' || c === '`') {
      const literal = new RegExp(LITERAL.source, 'y'); // LITERAL's own lastIndex stays 0
      literal.lastIndex = i;
      const lit = literal.exec(source);
      if (lit) i += lit[0].length - 1;
    } else if ('([{'.includes(c)) {
      depth++;
    } else if (')]}'.includes(c)) {
      if (depth === 0) return i;
      depth--;
    } else if ((c === ',' || c === ';') && depth === 0) {
      return i;
    }
  }
  return -1;
}

function checkScript(root, file, keys, problems) {
  const source = stripComments(fs.readFileSync(path.join(root, file), 'utf8'));
  // Keys built at run time ('conn.' + state) are not checked here: each part must be a key.
  for (const m of source.matchAll(/\bt\(\s*'([\w.-]+)'\s*[,)]/g)) {
    if (!keys.has(m[1])) problems.push(`${file}:${lineOf(source, m.index)}: t('${m[1]}') names a key not in the tables`);
  }
  for (const sink of SINKS) {
    for (const m of source.matchAll(sink)) {
      const start = m.index + m[0].length;
      // A property's value ends at its object's next comma; anything else at the statement's end.
      const end = /:$/.test(m[0]) ? valueEnd(source, start) : source.indexOf(';', start);
      // t('key', ...) and its key are the way text is meant to go; what is left must be code.
      const statement = source.slice(start, end < 0 ? undefined : end).replace(/\bt\(\s*'[\w.-]+'/g, 't(');
      for (const lit of statement.matchAll(LITERAL)) {
        const text = unescape(lit[1] ?? lit[2] ?? lit[3]);
        if (wordy(text)) {
          problems.push(`${file}:${lineOf(source, m.index)}: inline text ${JSON.stringify(text)}: put it in the tables (web/i18n_en.js, web/i18n_zh-CN.js) and use t()`);
        }
      }
    }
  }
}

function decode(text) {
  return text.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/\s+/g, ' ').trim();
}

function checkPage(root, file, keys, en, problems) {
  const raw = fs.readFileSync(path.join(root, file), 'utf8');
  // What a person never reads: comments, scripts, styles and drawings.
  const html = raw.replace(/<!--[\s\S]*?-->|<![^>]*>|<(script|style|svg)\b[\s\S]*?<\/\1>/gi, (m) => m.replace(/[^\n]/g, ' '));
  const LABELS = { placeholder: 'data-i18n-placeholder', title: 'data-i18n-title', 'aria-label': 'data-i18n-aria-label' };
  let open = null; // the tag just before a text node, when it opens an element
  for (const m of html.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*)>|([^<]+)/g)) {
    const at = `${file}:${lineOf(html, m.index)}`;
    if (m[4] !== undefined) {
      const text = decode(m[4]);
      if (!/\p{L}/u.test(text)) continue;
      const key = open && /\sdata-i18n="([^"]+)"/.exec(open)?.[1];
      if (!key) problems.push(`${at}: text ${JSON.stringify(text)} without data-i18n on its element`);
      else if (keys.has(key) && typeof en[key] === 'string' && en[key] !== text) {
        problems.push(`${at}: the inline text of ${key} differs from the English table's ${JSON.stringify(en[key])}`);
      }
      open = null;
      continue;
    }
    const attrs = m[3] || '';
    open = m[1] ? null : attrs;
    for (const a of attrs.matchAll(/\s(data-i18n(?:-[\w-]+)?)="([^"]*)"/g)) {
      if (!keys.has(a[2])) problems.push(`${at}: ${a[1]}="${a[2]}" names a key not in the tables`);
    }
    for (const [attr, data] of Object.entries(LABELS)) {
      const value = new RegExp(`\\s${attr}="([^"]*)"`).exec(attrs);
      if (!value || !/\p{L}/u.test(value[1])) continue;
      const key = new RegExp(`\\s${data}="([^"]*)"`).exec(attrs);
      if (!key) problems.push(`${at}: ${attr}="${value[1]}" without ${data}`);
      else if (keys.has(key[1]) && en[key[1]] !== decode(value[1])) {
        problems.push(`${at}: the inline ${attr} differs from the English table's ${JSON.stringify(en[key[1]])}`);
      }
    }
  }
}

function check(root) {
  const problems = [];
  const tables = {};
  for (const [code, file] of Object.entries(LANGUAGES)) {
    try {
      tables[code] = loadTable(root, file)[code];
    } catch (e) {
      problems.push(`${file}: does not load: ${e.message}`);
    }
    if (!tables[code]) {
      problems.push(`${file}: adds no ${code} table`);
      tables[code] = {};
    }
  }
  const codes = Object.keys(LANGUAGES);
  const all = new Set(codes.flatMap((c) => Object.keys(tables[c])));
  for (const key of all) {
    for (const code of codes) {
      const value = tables[code][key];
      if (value === undefined) {
        problems.push(`${LANGUAGES[code]}: no "${key}" (the other table has it)`);
        continue;
      }
      if (typeof value === 'object' && value !== null) {
        for (const form of PLURAL_FORMS[code]) {
          if (typeof value[form] !== 'string') problems.push(`${LANGUAGES[code]}: "${key}" has no plural form "${form}"`);
        }
      } else if (typeof value !== 'string' || value === '') {
        problems.push(`${LANGUAGES[code]}: "${key}" is not a text`);
      }
    }
    const shapes = codes.filter((c) => tables[c][key] !== undefined).map((c) => placeholders(tables[c][key]));
    if (new Set(shapes).size > 1) problems.push(`web/i18n: "${key}" has different placeholders in its languages (${shapes.join(' / ')})`);
  }
  const keys = new Set(codes.map((c) => Object.keys(tables[c])).reduce((a, b) => a.filter((k) => b.includes(k))));
  for (const file of webFiles(root, '.js')) checkScript(root, file, keys, problems);
  for (const file of webFiles(root, '.html')) checkPage(root, file, keys, tables.en, problems);
  return problems;
}

module.exports = { check, wordy };

if (require.main === module) {
  const problems = check(path.resolve(__dirname, '..'));
  for (const p of problems) console.error(`i18n: ${p}`);
  process.exit(problems.length > 0 ? 1 : 0);
}
