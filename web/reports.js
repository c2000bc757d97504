/* reports.js: the console's "Reports" dialog (docs/UI-CONTRACT.md, "Reports"): a period (the
 * last 7 or 30 days, or dates), a grouping (day, agent, team), the totals as cards, a chart drawn
 * here as inline SVG (no library, nothing from elsewhere), the same figures as a table, and the
 * CSV download (docs/API.md, GET /api/reports). An admin sees everyone's figures, an agent their
 * own; the server decides, the dialog says which. While it is open it follows the desk: a new
 * message or a status change reloads it a few seconds later.
 *
 * Its words come from the tables (web/i18n.js; keys reports.*), numbers and the days of the
 * axis from Intl in the page's language; a change of language draws the shown report again.
 *
 *   const reports = new KefuReports({dialog, button, api});
 *   reports.changed(); // something happened on the desk
 */
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (root, sel) => root.querySelector(sel);
  const el = (tag, className, text) => window.KefuUI.el(tag, className, text);
  const I18n = window.KefuI18n;
  const t = I18n.t;
  const FOLLOW_MS = 3000; // how long a burst of desk events waits before one reload

  /* Formatters in the page's language (made again when it changes). */
  let formats = null;
  function fmt() {
    const locale = I18n.locale();
    if (!formats || formats.locale !== locale) {
      formats = {
        locale,
        count: new Intl.NumberFormat(locale),
        day: new Intl.DateTimeFormat(locale, {day: 'numeric', month: 'short'}),
      };
    }
    return formats;
  }

  const count = (n) => fmt().count.format(n);

  /* "45 s", "2 min 5 s", "1 h 10 min", "3 d 4 h" (in Chinese "1 小时 10 分钟"); "—" for none.
   * The two largest units only: a report's durations are read at a glance. The units are the
   * tables' rather than Intl's, whose English ("1 hr, 10 min") is not what the console says. */
  function formatDuration(ms) {
    if (ms === null || ms === undefined) return '\u2014';
    let s = Math.round(ms / 1000);
    const unit = (key, n) => t(key, {n: count(n)});
    if (s < 60) return unit('reports.seconds', s);
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const parts = d ? [['reports.days', d], ['reports.hours', h]]
      : h ? [['reports.hours', h], ['reports.minutes', m]]
        : [['reports.minutes', m], ['reports.seconds', s]];
    return parts.filter(([, n], i) => i === 0 || n).map(([key, n]) => unit(key, n)).join(' ');
  }

  /* "1 reply", "2 replies" (a plural entry whose {n} is the number as the language writes it). */
  function plural(key, n) {
    return t(key, {count: n, n: count(n)});
  }

  /* The visitors' ratings (docs/API.md, "Reports": satisfaction {good, bad, share_good}): how
   * many were rated, the share good as a percentage ("—" for none rated), and "2 👍, 1 👎". */
  const rated = (s) => (s ? (s.good | 0) + (s.bad | 0) : 0);
  function share(s) {
    if (!rated(s) || s.share_good === null || s.share_good === undefined) return '\u2014';
    return new Intl.NumberFormat(I18n.locale(), {style: 'percent', maximumFractionDigits: 0}).format(s.share_good);
  }
  function ratedText(s) {
    return rated(s) ? t('reports.satisfactionSub', {good: count(s.good | 0), bad: count(s.bad | 0)})
      : t('reports.noRatings');
  }

  /* A local date's midnight from "YYYY-MM-DD", or NaN. */
  function parseDate(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || '');
    return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime() : NaN;
  }

  function dateInput(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  /* Local midnight n days after ms's (n may be negative): calendar days, whatever DST does. */
  function addDays(ms, n) {
    const d = new Date(ms);
    d.setHours(0, 0, 0, 0);
    d.setDate(d.getDate() + n);
    return d.getTime();
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const k of Object.keys(attrs || {})) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  /* About how wide text is in the chart's 12 px type: a full-width (Chinese) character twice a
   * Latin one. Enough to keep labels apart and cut names; the SVG is built before it is shown,
   * when nothing can be measured. */
  function textWidth(text) {
    let w = 0;
    for (const c of String(text)) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(c) ? 12 : 7;
    return w;
  }

  /* A round top for an axis: 1, 2 or 5 times a power of ten, at or above max (at least 1). */
  function niceMax(max) {
    if (max <= 1) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(max)));
    for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
    return 10 * power;
  }

  class KefuReports {
    constructor(opts) {
      this.dialog = opts.dialog;
      this.api = opts.api;
      this.form = $(this.dialog, '#reports-form');
      this.period = $(this.dialog, '#reports-period');
      this.dates = $(this.dialog, '#reports-dates');
      this.from = $(this.dialog, '#reports-from');
      this.to = $(this.dialog, '#reports-to');
      this.csv = $(this.dialog, '#reports-csv');
      this.scope = $(this.dialog, '#reports-scope');
      this.cards = $(this.dialog, '#reports-cards');
      this.chart = $(this.dialog, '#reports-chart');
      this.table = $(this.dialog, '#reports-table');
      this.status = $(this.dialog, '#reports-status');
      this.lines = window.KefuUI.statusLines(this.status, $(this.dialog, '#reports-error'));
      this.sequence = 0; // the newest load: an older answer arriving late is dropped
      this.followTimer = null;
      this.data = null; // the report shown, drawn again in a new language
      I18n.onChange(() => {
        if (this.data) this.render(this.data);
        if (this.dialog.open) this.load({quiet: true}); // the lines under the title too
      });
      // The chart is drawn at its real width: again when that changes (a phone turned).
      this.drawnWidth = 0;
      window.addEventListener('resize', () => {
        cancelAnimationFrame(this.resizeFrame);
        this.resizeFrame = requestAnimationFrame(() => {
          if (this.dialog.open && this.data && this.chartWidth() !== this.drawnWidth) this.renderChart(this.data);
        });
      });
      opts.button.addEventListener('click', () => this.open());
      $(this.dialog, '#reports-close').addEventListener('click', () => this.dialog.close());
      this.dialog.addEventListener('close', () => clearTimeout(this.followTimer));
      this.form.addEventListener('submit', (e) => e.preventDefault());
      this.form.addEventListener('change', (e) => {
        if (e.target === this.period) this.dates.hidden = this.period.value !== 'custom';
        this.load();
      });
    }

    open() {
      if (!this.from.value) {
        const today = addDays(Date.now(), 0);
        this.from.value = dateInput(addDays(today, -6));
        this.to.value = dateInput(today);
      }
      if (!this.dialog.open) this.dialog.showModal();
      this.load();
    }

    /* Something changed on the desk: reload once things are quiet for a moment. */
    changed() {
      if (!this.dialog.open) return;
      clearTimeout(this.followTimer);
      this.followTimer = setTimeout(() => this.load({quiet: true}), FOLLOW_MS);
    }

    group() {
      const checked = this.form.querySelector('input[name="reports-group"]:checked');
      return checked ? checked.value : 'day';
    }

    /* The period as the API takes it: [from, to) in ms, and the browser's time zone by name
     * (the server cuts the days there, daylight saving time and all), or, on a server that does
     * not know the zone, the offset at the period's start. {error} when the dates make none. */
    query() {
      let from;
      let to;
      if (this.period.value === 'custom') {
        from = parseDate(this.from.value);
        const last = parseDate(this.to.value);
        if (Number.isNaN(from) || Number.isNaN(last)) return {error: 'reports.chooseDates'};
        if (last < from) return {error: 'reports.datesOrder'};
        to = addDays(last, 1);
      } else {
        to = addDays(Date.now(), 1);
        from = addDays(to, -Number(this.period.value));
      }
      const zone = this.zoneKnown !== false ? Intl.DateTimeFormat().resolvedOptions().timeZone : '';
      const where = zone ? 'tz=' + encodeURIComponent(zone) : 'utc_offset=' + -new Date(from).getTimezoneOffset();
      return {text: 'from=' + from + '&to=' + to + '&group=' + this.group() + '&' + where};
    }

    async load(opts) {
      const q = this.query();
      const seq = ++this.sequence;
      if (q.error) {
        this.lines.say(t(q.error), true);
        this.csv.removeAttribute('href');
        this.csv.setAttribute('aria-disabled', 'true');
        return;
      }
      this.csv.href = '/api/reports?' + q.text + '&format=csv';
      this.csv.removeAttribute('aria-disabled');
      if (!(opts && opts.quiet)) this.lines.say(t('reports.loading'));
      this.dialog.setAttribute('aria-busy', 'true');
      let retry = false;
      await this.lines.run(t('reports.loadWhat'), async () => {
        let data;
        try {
          data = await this.api('GET', '/api/reports?' + q.text);
        } catch (e) {
          if (e.status === 400 && /^tz /.test(e.message || '') && this.zoneKnown !== false) {
            this.zoneKnown = false; // a server without that zone file: the offset will do
            retry = true;
            return;
          }
          throw e;
        }
        if (seq !== this.sequence) return;
        this.render(data);
        this.lines.say('');
      });
      if (retry) return this.load(opts);
      if (seq === this.sequence) this.dialog.removeAttribute('aria-busy');
    }

    label(row, group) {
      if (group === 'day') {
        const d = parseDate(row.day);
        return Number.isNaN(d) ? row.day : fmt().day.format(d);
      }
      if (group === 'team') return row.team_id === null ? t('reports.noTeam') : row.name;
      return row.name || t('reports.agentNumbered', {id: row.agent_id});
    }

    render(data) {
      this.data = data;
      this.scope.textContent = t(data.scope === 'own' ? 'reports.scopeOwn' : 'reports.scopeAll');
      this.renderCards(data.totals);
      this.renderChart(data);
      this.renderTable(data);
    }

    renderCards(totals) {
      const messages = totals.visitor_messages + totals.agent_messages;
      const cards = [
        [t('reports.conversations'), count(totals.conversations),
          t('reports.answeredResolved', {answered: count(totals.answered), resolved: count(totals.resolved)})],
        [t('reports.messages'), count(messages), t('reports.messagesSub', {visitors: count(totals.visitor_messages),
          replies: plural('reports.replyCount', totals.agent_messages), notes: plural('reports.noteCount', totals.notes)})],
        [t('reports.medianFirstResponse'), formatDuration(totals.first_response_median_ms),
          t('reports.p90', {value: formatDuration(totals.first_response_p90_ms)})],
        [t('reports.medianResolution'), formatDuration(totals.resolution_median_ms),
          t('reports.p90', {value: formatDuration(totals.resolution_p90_ms)})],
        [t('reports.unanswered'), count(totals.unanswered), t('reports.unansweredSub')],
        [t('reports.satisfaction'), share(totals.satisfaction), ratedText(totals.satisfaction)],
      ];
      this.cards.replaceChildren(...cards.map(([name, value, sub]) => {
        const li = el('li', 'report-card');
        li.append(el('span', 'rc-label', name), el('strong', 'rc-value', value), el('span', 'rc-sub', sub));
        return li;
      }));
    }

    /* The chart's width in pixels: drawn at its real size, so that its text is the size the
     * stylesheet says on a phone as on a desktop. */
    chartWidth() {
      return Math.max(280, Math.floor(this.chart.clientWidth) - 20);
    }

    renderChart(data) {
      this.drawnWidth = this.chartWidth();
      const rows = data.rows || [];
      let figure;
      if (!rows.length) {
        figure = el('p', 'reports-empty', t('reports.empty'));
      } else if (data.group === 'day') {
        figure = this.dayChart(rows);
      } else if (data.group === 'agent') {
        figure = this.barChart(rows, 'agent', (r) => r.first_response_median_ms, formatDuration,
          t('reports.chartAgents'));
      } else {
        figure = this.barChart(rows, 'team', (r) => r.conversations, count, t('reports.chartTeams'));
      }
      this.chart.replaceChildren(figure);
    }

    /* Columns of conversations per day, with the unanswered ones as a second, narrower column
     * in front; a y axis with three ticks; every few days labelled so that labels never
     * overlap. */
    dayChart(rows) {
      const W = this.chartWidth();
      const H = 230;
      const left = 36;
      const bottom = 28;
      const top = 24;
      const plotW = W - left - 8;
      const plotH = H - top - bottom;
      const max = niceMax(Math.max(...rows.map((r) => r.conversations)));
      const slot = plotW / rows.length;
      const total = rows.reduce((n, r) => n + r.conversations, 0);
      const unanswered = rows.reduce((n, r) => n + r.unanswered, 0);
      const busiest = rows.reduce((a, r) => (r.conversations > a.conversations ? r : a), rows[0]);
      const summary = t('reports.chartDays', {from: this.label(rows[0], 'day'), to: this.label(rows[rows.length - 1], 'day'),
        total: count(total), unanswered: count(unanswered), busiest: this.label(busiest, 'day'), most: count(busiest.conversations)});
      const root = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'report-svg', role: 'img', 'aria-label': summary});
      root.append(svg('title', {}, summary));
      for (let i = 0; i <= 2; i++) {
        const value = (max * i) / 2;
        const y = top + plotH - (plotH * i) / 2;
        root.append(svg('line', {x1: left, x2: W - 8, y1: y, y2: y, class: 'rs-grid'}));
        root.append(svg('text', {x: left - 6, y: y + 4, class: 'rs-axis', 'text-anchor': 'end'}, count(value)));
      }
      // A label every so many days, so that the widest (a month's name in some languages) fits.
      const every = Math.max(1, Math.ceil(rows.length / Math.max(1, Math.floor(plotW / 64))));
      rows.forEach((r, i) => {
        const x = left + i * slot;
        const barW = Math.max(2, slot * 0.7);
        const h = (plotH * r.conversations) / max;
        const bar = svg('rect', {x: x + (slot - barW) / 2, y: top + plotH - h, width: barW, height: h, class: 'rs-bar'});
        bar.append(svg('title', {}, t('reports.dayBar', {day: this.label(r, 'day'), conversations: count(r.conversations), unanswered: count(r.unanswered)})));
        root.append(bar);
        if (r.unanswered) {
          const uh = (plotH * r.unanswered) / max;
          const uw = Math.max(1.5, barW * 0.45);
          root.append(svg('rect', {x: x + (slot - uw) / 2, y: top + plotH - uh, width: uw, height: uh, class: 'rs-bar-alt'}));
        }
        if (i % every === 0) {
          root.append(svg('text', {x: x + slot / 2, y: H - 8, class: 'rs-axis', 'text-anchor': 'middle'}, this.label(r, 'day')));
        }
      });
      root.append(svg('line', {x1: left, x2: W - 8, y1: top + plotH, y2: top + plotH, class: 'rs-baseline'}));
      const legend = svg('g', {class: 'rs-legend'});
      legend.append(svg('rect', {x: left, y: 6, width: 10, height: 10, class: 'rs-bar'}));
      const first = t('reports.conversations');
      legend.append(svg('text', {x: left + 14, y: 15, class: 'rs-axis'}, first));
      // The second key after the first's text: about 7 px a Latin letter, 12 a Chinese one.
      const second = left + 14 + Math.max(98, textWidth(first) + 14);
      legend.append(svg('rect', {x: second, y: 6, width: 10, height: 10, class: 'rs-bar-alt'}));
      legend.append(svg('text', {x: second + 14, y: 15, class: 'rs-axis'}, t('reports.unanswered')));
      root.append(legend);
      return root;
    }

    /* One horizontal bar per agent or team, its name on the left and its value at the bar's
     * end; a row with no value (nobody answered) says so instead of a bar. */
    barChart(rows, group, value, format, title) {
      const W = this.chartWidth();
      const rowH = 30;
      const left = Math.min(180, Math.floor(W * 0.36));
      const room = left - 14; // pixels for a name, cut to fit (textWidth's estimate)
      const top = 8;
      const H = top + rows.length * rowH + 8;
      const values = rows.map(value).filter((v) => v !== null && v !== undefined);
      const max = Math.max(1, ...values);
      const parts = rows.map((r) => t('reports.chartPart', {name: this.label(r, group),
        value: value(r) === null || value(r) === undefined ? t('reports.none') : format(value(r))}));
      const summary = t('reports.chartSummary', {title, parts: parts.join(t('reports.chartSeparator'))});
      const root = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'report-svg', role: 'img', 'aria-label': summary});
      root.append(svg('title', {}, summary));
      rows.forEach((r, i) => {
        const y = top + i * rowH;
        let name = this.label(r, group);
        if (textWidth(name) > room) {
          while (name.length > 1 && textWidth(name + '\u2026') > room) name = name.slice(0, -1);
          name += '\u2026';
        }
        root.append(svg('text', {x: left - 10, y: y + 18, class: 'rs-label', 'text-anchor': 'end'}, name));
        const v = value(r);
        if (v === null || v === undefined) {
          root.append(svg('text', {x: left, y: y + 18, class: 'rs-axis'}, t('reports.noAnswer')));
          return;
        }
        const w = Math.max(2, ((W - left - 90) * v) / max);
        root.append(svg('rect', {x: left, y: y + 5, width: w, height: rowH - 10, rx: 3, class: 'rs-bar'}));
        root.append(svg('text', {x: left + w + 6, y: y + 18, class: 'rs-value'}, format(v)));
      });
      return root;
    }

    renderTable(data) {
      const group = data.group;
      const head = {day: 'reports.colDay', agent: 'reports.colAgent', team: 'reports.colTeam'}[group];
      const columns = [
        [t(head), null],
        [t('reports.conversations'), (r) => count(r.conversations)],
        [t('reports.colVisitorMessages'), (r) => count(r.visitor_messages)],
        [t('reports.colReplies'), (r) => count(r.agent_messages)],
        [t('reports.colNotes'), (r) => count(r.notes)],
        [t('reports.colFirstMedian'), (r) => formatDuration(r.first_response_median_ms)],
        [t('reports.colFirstP90'), (r) => formatDuration(r.first_response_p90_ms)],
        [t('reports.colResolved'), (r) => count(r.resolved)],
        [t('reports.colResolutionMedian'), (r) => formatDuration(r.resolution_median_ms)],
        [t('reports.colResolutionP90'), (r) => formatDuration(r.resolution_p90_ms)],
        [t('reports.unanswered'), (r) => count(r.unanswered)],
        [t('reports.colSatisfaction'), (r) => share(r.satisfaction) +
          (rated(r.satisfaction) ? ' (' + ratedText(r.satisfaction) + ')' : '')],
      ];
      const captions = {day: 'reports.captionDay', agent: 'reports.captionAgent', team: 'reports.captionTeam'};
      const caption = el('caption', 'sr-only', t(captions[group]));
      const thead = el('thead');
      const tr = el('tr');
      for (const [name] of columns) {
        const th = el('th', null, name);
        th.scope = 'col';
        tr.append(th);
      }
      thead.append(tr);
      const line = (r, name) => {
        const row = el('tr');
        const th = el('th', null, name);
        th.scope = 'row';
        row.append(th);
        for (const [, cell] of columns.slice(1)) row.append(el('td', null, cell(r)));
        return row;
      };
      const tbody = el('tbody');
      for (const r of data.rows || []) tbody.append(line(r, this.label(r, group)));
      const tfoot = el('tfoot');
      tfoot.append(line(data.totals, t('reports.total')));
      this.table.replaceChildren(caption, thead, tbody, tfoot);
    }
  }

  KefuReports.formatDuration = formatDuration;
  window.KefuReports = KefuReports;
})();
