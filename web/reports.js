/* reports.js: the console's "Reports" dialog (docs/UI-CONTRACT.md, "Reports"): a period (the
 * last 7 or 30 days, or dates), a grouping (day, agent, team), the totals as cards, a chart drawn
 * here as inline SVG (no library, nothing from elsewhere), the same figures as a table, and the
 * CSV download (docs/API.md, GET /api/reports). An admin sees everyone's figures, an agent their
 * own; the server decides, the dialog says which. While it is open it follows the desk: a new
 * message or a status change reloads it a few seconds later.
 *
 *   const reports = new KefuReports({dialog, button, api});
 *   reports.changed(); // something happened on the desk
 */
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (root, sel) => root.querySelector(sel);
  const el = (tag, className, text) => window.KefuUI.el(tag, className, text);
  const FOLLOW_MS = 3000; // how long a burst of desk events waits before one reload

  /* "45 s", "2 min 5 s", "1 h 10 min", "3 d 4 h"; "—" for none. */
  function formatDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    let s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d) return d + ' d' + (h ? ' ' + h + ' h' : '');
    if (h) return h + ' h' + (m ? ' ' + m + ' min' : '');
    return m + ' min' + (s ? ' ' + s + ' s' : '');
  }

  const countFmt = new Intl.NumberFormat();

  /* "1 reply", "2 replies". */
  function plural(n, one, many) {
    return countFmt.format(n) + ' ' + (n === 1 ? one : many);
  }

  const dayFmt = new Intl.DateTimeFormat(undefined, {day: 'numeric', month: 'short'});

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
        if (Number.isNaN(from) || Number.isNaN(last)) return {error: 'Choose both dates.'};
        if (last < from) return {error: 'The start date must be on or before the end date.'};
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
        this.lines.say(q.error, true);
        this.csv.removeAttribute('href');
        this.csv.setAttribute('aria-disabled', 'true');
        return;
      }
      this.csv.href = '/api/reports?' + q.text + '&format=csv';
      this.csv.removeAttribute('aria-disabled');
      if (!(opts && opts.quiet)) this.lines.say('Loading…');
      this.dialog.setAttribute('aria-busy', 'true');
      let retry = false;
      await this.lines.run('load the report', async () => {
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
        return Number.isNaN(d) ? row.day : dayFmt.format(d);
      }
      if (group === 'team') return row.team_id === null ? 'No team' : row.name;
      return row.name || 'Agent ' + row.agent_id;
    }

    render(data) {
      this.scope.textContent = data.scope === 'own'
        ? 'Your own figures: the conversations you answered first (or hold unanswered), your messages and notes, and what you resolved.'
        : "Everyone's figures.";
      this.renderCards(data.totals);
      this.renderChart(data);
      this.renderTable(data);
    }

    renderCards(t) {
      const messages = t.visitor_messages + t.agent_messages;
      const cards = [
        ['Conversations', countFmt.format(t.conversations), countFmt.format(t.answered) + ' answered, ' + countFmt.format(t.resolved) + ' resolved'],
        ['Messages', countFmt.format(messages), countFmt.format(t.visitor_messages) + ' from visitors, ' + plural(t.agent_messages, 'reply', 'replies') + ', ' + plural(t.notes, 'note', 'notes')],
        ['Median first response', formatDuration(t.first_response_median_ms), '90th percentile: ' + formatDuration(t.first_response_p90_ms)],
        ['Median resolution', formatDuration(t.resolution_median_ms), '90th percentile: ' + formatDuration(t.resolution_p90_ms)],
        ['Unanswered', countFmt.format(t.unanswered), 'no reply from an agent yet'],
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
      const rows = data.rows || [];
      let figure;
      if (!rows.length) {
        figure = el('p', 'reports-empty', 'Nothing in this period.');
      } else if (data.group === 'day') {
        figure = this.dayChart(rows);
      } else if (data.group === 'agent') {
        figure = this.barChart(rows, 'agent', (r) => r.first_response_median_ms, formatDuration,
          'Median first response per agent');
      } else {
        figure = this.barChart(rows, 'team', (r) => r.conversations, (v) => countFmt.format(v),
          'Conversations per team');
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
      const summary = 'Conversations per day, ' + this.label(rows[0], 'day') + ' to ' +
        this.label(rows[rows.length - 1], 'day') + ': ' + total + ' in all, ' + unanswered +
        ' unanswered; the busiest day ' + this.label(busiest, 'day') + ' with ' + busiest.conversations + '.';
      const root = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'report-svg', role: 'img', 'aria-label': summary});
      root.append(svg('title', {}, summary));
      for (let i = 0; i <= 2; i++) {
        const value = (max * i) / 2;
        const y = top + plotH - (plotH * i) / 2;
        root.append(svg('line', {x1: left, x2: W - 8, y1: y, y2: y, class: 'rs-grid'}));
        root.append(svg('text', {x: left - 6, y: y + 4, class: 'rs-axis', 'text-anchor': 'end'}, countFmt.format(value)));
      }
      const every = Math.max(1, Math.ceil(rows.length / Math.max(1, Math.floor(plotW / 64))));
      rows.forEach((r, i) => {
        const x = left + i * slot;
        const barW = Math.max(2, slot * 0.7);
        const h = (plotH * r.conversations) / max;
        const bar = svg('rect', {x: x + (slot - barW) / 2, y: top + plotH - h, width: barW, height: h, class: 'rs-bar'});
        bar.append(svg('title', {}, this.label(r, 'day') + ': ' + r.conversations + ' conversations, ' + r.unanswered + ' unanswered'));
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
      legend.append(svg('text', {x: left + 14, y: 15, class: 'rs-axis'}, 'Conversations'));
      legend.append(svg('rect', {x: left + 112, y: 6, width: 10, height: 10, class: 'rs-bar-alt'}));
      legend.append(svg('text', {x: left + 126, y: 15, class: 'rs-axis'}, 'Unanswered'));
      root.append(legend);
      return root;
    }

    /* One horizontal bar per agent or team, its name on the left and its value at the bar's
     * end; a row with no value (nobody answered) says so instead of a bar. */
    barChart(rows, group, value, format, title) {
      const W = this.chartWidth();
      const rowH = 30;
      const left = Math.min(180, Math.floor(W * 0.36));
      const chars = Math.max(6, Math.floor(left / 8));
      const top = 8;
      const H = top + rows.length * rowH + 8;
      const values = rows.map(value).filter((v) => v !== null && v !== undefined);
      const max = Math.max(1, ...values);
      const parts = rows.map((r) => this.label(r, group) + ' ' + (value(r) === null ? 'none' : format(value(r))));
      const summary = title + ': ' + parts.join('; ') + '.';
      const root = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'report-svg', role: 'img', 'aria-label': summary});
      root.append(svg('title', {}, summary));
      rows.forEach((r, i) => {
        const y = top + i * rowH;
        let name = this.label(r, group);
        if (name.length > chars) name = name.slice(0, chars - 1) + '…';
        root.append(svg('text', {x: left - 10, y: y + 18, class: 'rs-label', 'text-anchor': 'end'}, name));
        const v = value(r);
        if (v === null || v === undefined) {
          root.append(svg('text', {x: left, y: y + 18, class: 'rs-axis'}, 'no answer yet'));
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
      const head = {day: 'Day', agent: 'Agent', team: 'Team'}[group];
      const columns = [
        [head, null],
        ['Conversations', (r) => countFmt.format(r.conversations)],
        ['Visitor messages', (r) => countFmt.format(r.visitor_messages)],
        ['Replies', (r) => countFmt.format(r.agent_messages)],
        ['Notes', (r) => countFmt.format(r.notes)],
        ['First response, median', (r) => formatDuration(r.first_response_median_ms)],
        ['First response, 90th pct.', (r) => formatDuration(r.first_response_p90_ms)],
        ['Resolved', (r) => countFmt.format(r.resolved)],
        ['Resolution, median', (r) => formatDuration(r.resolution_median_ms)],
        ['Resolution, 90th pct.', (r) => formatDuration(r.resolution_p90_ms)],
        ['Unanswered', (r) => countFmt.format(r.unanswered)],
      ];
      const caption = el('caption', 'sr-only', 'Figures per ' + group);
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
      tfoot.append(line(data.totals, 'Total'));
      this.table.replaceChildren(caption, thead, tbody, tfoot);
    }
  }

  KefuReports.formatDuration = formatDuration;
  window.KefuReports = KefuReports;
})();
