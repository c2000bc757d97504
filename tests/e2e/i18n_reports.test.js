'use strict';
// i18n_reports.test.js: the console's reports, teams, snooze, notifications and visitor panel in
// Simplified Chinese (issue 14, "Languages" and "Reports"; docs/UI-CONTRACT.md, "Languages").
// Ana, an admin whose browser reads zh-CN, opens Reports on a small known history: headings,
// the period and grouping controls, the cards, the chart's legend and labels, the table's column
// headers, durations and day names are the zh-CN table's (and Intl's in zh-CN); per agent and
// per team too; the CSV downloads as before; dates the wrong way round are said in Chinese. The
// language changes while the dialog is open: the report is drawn again in English, no reload.
// Then the Teams dialog (a team made, its assignment and members saved), the Team settings rows,
// the Snooze dialog, the Notifications dialog and the visitor panel, all in Chinese.
// Screenshots at 1280×800 and 390×844 go to $KEFU_SCREENSHOTS when it names a directory.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { scenario, closeBrowser, browser, agentLogin, newVisitor, visitorSend, agentSend, eventually, DEFAULT_AGENTS } = require('./harness');
const { trackDialogs, pageUrl, waitConnected, selectConv, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;

// The tables themselves, so that the test says which text it expects by key.
function table(code, file) {
  const tables = {};
  vm.runInNewContext(fs.readFileSync(path.join(__dirname, '..', '..', 'web', file), 'utf8'),
    { window: { KefuI18n: { add: (c, t) => { tables[c] = t; } } } });
  return tables[code];
}
const ZH = table('zh-CN', 'i18n_zh-CN.js');
const EN = table('en', 'i18n_en.js');
const fill = (text, params) => (typeof text === 'object' ? text.other : text).replace(/\{(\w+)\}/g, (m, k) => String(params[k]));

async function screenshot(page, name) {
  const dir = process.env.KEFU_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// The console in a browser whose language is zh-CN, logged in.
async function openAgentIn(env, srv, agent, locale) {
  const ctx = await (await browser()).newContext({ locale, viewport: { width: 1280, height: 800 } });
  env.contexts.push(ctx);
  const page = await ctx.newPage();
  const dialogs = trackDialogs(page);
  await page.goto(pageUrl(srv, '/agent', 'sse'));
  await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
  await page.fill('#login-email', agent.email);
  await page.fill('#login-password', agent.password);
  await page.click('#login-submit');
  await page.waitForFunction((name) => document.querySelector('#agent-name')?.textContent.includes(name), agent.name, { timeout: T });
  await waitConnected(page);
  return { page, dialogs, label: `agent ${agent.name} (${locale})` };
}

const texts = (locator) => locator.allTextContents().then((all) => all.map((s) => s.trim()));
const firstHead = (page) => page.$eval('#reports-table thead th', (th) => th.textContent);

test('the console in zh-CN: reports, teams, team settings, snooze, notifications and the visitor panel', { timeout: 180000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);

    // Vera writes from a Mac in Paris; Bo claims and answers; Wu writes and nobody answers.
    const vera = await newVisitor(srv, 'Vera');
    let r = await srv.api('POST', '/api/visitor/page', { token: vera.token, body: {
      url: 'https://shop.example/cart', title: '购物车', referrer: 'https://news.example/',
      user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
      language: 'fr-FR', timezone: 'Europe/Paris', utc_offset: 60,
    } });
    assert.equal(r.status, 200, r.text);
    const first = await visitorSend(srv, vera.token, 'Where is my parcel?');
    const conv = first.conversation_id;
    r = await srv.api('POST', `/api/conversations/${conv}/claim`, { cookie: bo.cookie, csrf: bo.csrf });
    assert.equal(r.status, 200, r.text);
    await agentSend(srv, bo, conv, 'It left this morning.');
    const wu = await newVisitor(srv, 'Wu');
    await visitorSend(srv, wu.token, 'Hello? Anyone?');

    const A = await openAgentIn(env, srv, ANA, 'zh-CN');
    const page = A.page;
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');

    // ---- Reports, per day
    await page.click('#reports-button');
    const dlg = page.getByRole('dialog', { name: ZH['reports.title'] });
    await dlg.waitFor({ timeout: T });
    await dlg.locator('#reports-cards .report-card').first().waitFor({ timeout: T });
    assert.equal(await dlg.getByLabel(ZH['reports.period']).inputValue(), '7');
    assert.deepEqual(await texts(dlg.locator('#reports-period option')), [ZH['reports.last7'], ZH['reports.last30'], ZH['reports.custom']]);
    assert.equal((await dlg.locator('.reports-group legend').textContent()).trim(), ZH['reports.groupBy']);
    assert.equal(await dlg.getByRole('radio', { name: ZH['reports.byDay'] }).isChecked(), true);
    assert.equal(await dlg.getByRole('link', { name: ZH['reports.csv'] }).count(), 1);
    assert.equal(await dlg.getByRole('list', { name: ZH['reports.totals'] }).count(), 1);
    assert.equal(await page.locator('#reports-scope').textContent(), ZH['reports.scopeAll']);
    assert.equal((await dlg.locator('.reports-note').textContent()).trim(), ZH['reports.note']);

    assert.deepEqual(await texts(dlg.locator('.rc-label')), [ZH['reports.conversations'], ZH['reports.messages'],
      ZH['reports.medianFirstResponse'], ZH['reports.medianResolution'], ZH['reports.unanswered'], ZH['reports.satisfaction']]);
    const subs = await texts(dlg.locator('.rc-sub'));
    assert.equal(subs[0], fill(ZH['reports.answeredResolved'], { answered: 1, resolved: 0 }));
    assert.equal(subs[1], fill(ZH['reports.messagesSub'], { visitors: 2, replies: fill(ZH['reports.replyCount'], { n: 1 }), notes: fill(ZH['reports.noteCount'], { n: 0 }) }));
    assert.equal(subs[4], ZH['reports.unansweredSub']);
    assert.equal(subs[5], ZH['reports.noRatings']);
    const values = await texts(dlg.locator('.rc-value'));
    assert.deepEqual([values[0], values[4]], ['2', '1']);
    // A duration in Chinese units (Bo answered within seconds, or a minute on a slow machine).
    assert.match(values[2], /^\d+ (秒|分钟)( \d+ 秒)?$/);
    assert.equal(values[3], '\u2014', 'nothing resolved yet');
    assert.match(subs[2], new RegExp('^' + fill(ZH['reports.p90'], { value: '' }) + '\\d+ (秒|分钟)'));

    // The chart: its legend, its days as zh-CN writes them ("12月5日"), its summary.
    const chart = dlg.locator('#reports-chart svg');
    const legend = await texts(chart.locator('.rs-legend text'));
    assert.deepEqual(legend, [ZH['reports.conversations'], ZH['reports.unanswered']]);
    const axis = await texts(chart.locator(':scope > text.rs-axis'));
    assert.ok(axis.some((s) => /^\d{1,2}月\d{1,2}日$/.test(s)), `days of the axis in Chinese: ${axis}`);
    const summary = await chart.getAttribute('aria-label');
    // (Both conversations started today, unless the test ran across midnight.)
    assert.match(summary, /^每日会话数，\d{1,2}月\d{1,2}日 至 \d{1,2}月\d{1,2}日：共 2 个，未回复 1 个；最忙的一天是 \d{1,2}月\d{1,2}日，共 [12] 个。$/);
    assert.equal(await chart.locator('title').first().textContent(), summary);
    assert.match(await chart.locator('rect.rs-bar title').last().textContent(), /^\d{1,2}月\d{1,2}日：[12] 个会话，[01] 个未回复$/);

    // The table: every column header, the total row.
    const columns = [ZH['reports.colDay'], ZH['reports.conversations'], ZH['reports.colVisitorMessages'], ZH['reports.colReplies'],
      ZH['reports.colNotes'], ZH['reports.colFirstMedian'], ZH['reports.colFirstP90'], ZH['reports.colResolved'],
      ZH['reports.colResolutionMedian'], ZH['reports.colResolutionP90'], ZH['reports.unanswered'], ZH['reports.colSatisfaction']];
    assert.deepEqual(await texts(dlg.locator('#reports-table thead th')), columns);
    assert.equal(await dlg.locator('#reports-table tfoot th').textContent(), ZH['reports.total']);
    assert.equal(await dlg.locator('#reports-table caption').textContent(), ZH['reports.captionDay']);
    assert.match((await texts(dlg.locator('#reports-table tbody th')))[0], /^\d{1,2}月\d{1,2}日$/);
    await screenshot(page, 'zh-reports-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'zh-reports-phone');
    await dlg.locator('#reports-chart').scrollIntoViewIfNeeded();
    await screenshot(page, 'zh-reports-phone-chart');
    await dlg.locator('#reports-table').scrollIntoViewIfNeeded();
    await screenshot(page, 'zh-reports-phone-table');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Per agent: Bo's bar with his median in Chinese units; Ana, who answered nothing, has none.
    await dlg.getByRole('radio', { name: ZH['reports.byAgent'] }).check();
    await page.waitForFunction((h) => document.querySelector('#reports-table thead th').textContent === h, ZH['reports.colAgent'], { timeout: T });
    assert.match(await chart.getAttribute('aria-label'), new RegExp(`^${ZH['reports.chartAgents']}：.*Bo \\d+ (秒|分钟).*。$`));
    await screenshot(page, 'zh-reports-agents');
    // Per team: nobody's conversation is in a team.
    await dlg.getByRole('radio', { name: ZH['reports.byTeam'] }).check();
    await page.waitForFunction((h) => document.querySelector('#reports-table thead th').textContent === h, ZH['reports.colTeam'], { timeout: T });
    assert.deepEqual(await texts(dlg.locator('#reports-table tbody th')), [ZH['reports.noTeam']]);
    assert.equal(await chart.getAttribute('aria-label'), `${ZH['reports.chartTeams']}：${ZH['reports.noTeam']} 2。`);

    // The CSV downloads as in English (its columns are the API's names, not the page's words).
    const [download] = await Promise.all([page.waitForEvent('download'), dlg.getByRole('link', { name: ZH['reports.csv'] }).click()]);
    assert.match(download.suggestedFilename(), /^kefu-report-team-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync(await download.path(), 'utf8').split('\r\n');
    assert.match(csv[0], /^team_id,team,conversations,/);
    assert.ok(csv.some((l) => l.startsWith(',total,2,2,1,0,1,')), csv.join('\n'));

    // Dates the wrong way round: said in Chinese.
    await dlg.getByLabel(ZH['reports.period']).selectOption('custom');
    await dlg.getByLabel(ZH['reports.from']).fill('2030-01-02');
    await dlg.getByLabel(ZH['reports.to']).fill('2030-01-01');
    await dlg.getByLabel(ZH['reports.to']).dispatchEvent('change');
    await eventually(async () => (await page.locator('#reports-error').textContent()) === ZH['reports.datesOrder'], { timeout: T, what: 'the dates error in Chinese' });

    // The language changes with the dialog open: all of it in English at once, no reload.
    await dlg.getByLabel(ZH['reports.period']).selectOption('7');
    await page.waitForFunction(() => document.querySelector('#reports-error').hidden, null, { timeout: T });
    await page.evaluate(() => window.KefuI18n.setLanguage('en'));
    assert.equal(await page.locator('#reports-title').textContent(), EN['reports.title']);
    assert.equal(await firstHead(page), EN['reports.colTeam']);
    // (The dialog is named "Reports" now: found by its id.)
    assert.deepEqual((await texts(page.locator('#reports-cards .rc-label'))).slice(0, 2), [EN['reports.conversations'], EN['reports.messages']]);
    assert.equal(await page.locator('#reports-scope').textContent(), EN['reports.scopeAll']);
    assert.deepEqual(await texts(page.locator('#reports-table tbody th')), [EN['reports.noTeam']]);
    await page.evaluate(() => window.KefuI18n.setLanguage('zh-CN'));
    assert.equal(await firstHead(page), ZH['reports.colTeam']);
    await dlg.getByRole('button', { name: ZH['details.close'] }).click();
    await dlg.waitFor({ state: 'hidden', timeout: T });

    // ---- Teams: a team made, then its assignment and a member saved.
    await page.click('#teams-button');
    const teams = page.getByRole('dialog', { name: ZH['teams.title'] });
    await teams.waitFor({ timeout: T });
    assert.equal((await teams.locator('#teams-list-title').textContent()).trim(), ZH['teams.listTitle']);
    assert.equal((await teams.locator('.canned-help').textContent()).trim(), ZH['teams.help']);
    assert.equal((await teams.locator('#teams-empty').textContent()).trim(), ZH['teams.empty']);
    await teams.getByLabel(ZH['teams.addName']).fill('售后');
    await teams.getByRole('button', { name: ZH['teams.add'], exact: true }).click();
    await eventually(async () => (await page.locator('#teams-status').textContent()) === fill(ZH['teams.added'], { name: '售后' }), { timeout: T, what: 'the team added, in Chinese' });
    const row = teams.locator('.teams-row').first();
    await row.waitFor({ timeout: T });
    assert.deepEqual(await texts(row.locator('.teams-fields .field > span')), [ZH['teams.name'], ZH['teams.mode'], ZH['teams.after']]);
    const mode = row.getByLabel(fill(ZH['teams.modeOf'], { team: '售后' }));
    assert.deepEqual(await texts(mode.locator('option')), [ZH['teams.modeOff'], ZH['teams.modeRoundRobin'], ZH['teams.modeLeastBusy']]);
    assert.equal((await row.locator('legend').textContent()).trim(), ZH['teams.members']);
    await mode.selectOption('round_robin');
    await row.getByLabel(fill(ZH['teams.memberIn'], { name: 'Bo', team: '售后' })).check();
    assert.equal(await row.getByLabel(fill(ZH['teams.memberIn'], { name: fill(ZH['teams.you'], { name: 'Ana' }), team: '售后' })).isChecked(), false);
    await row.getByRole('button', { name: fill(ZH['teams.saveOf'], { team: '售后' }) }).click();
    await eventually(async () => (await page.locator('#teams-status').textContent()) ===
      fill(ZH['teams.saved'], { name: '售后', count: 1, mode: ZH['teams.modeRoundRobin'] }), { timeout: T, what: 'the team saved, in Chinese' });
    await screenshot(page, 'zh-teams-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'zh-teams-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await teams.getByRole('button', { name: ZH['details.close'] }).click();
    await teams.waitFor({ state: 'hidden', timeout: T });

    // ---- Team settings: the agents' rows.
    await page.click('#team-settings-button');
    const boRow = page.locator('#team-admin-rows tr', { hasText: 'bo@example.com' });
    await boRow.waitFor({ timeout: T });
    assert.deepEqual(await texts(boRow.getByLabel(fill(ZH['teamAdmin.roleOf'], { name: 'Bo' })).locator('option')), [ZH['teamAdmin.agent'], ZH['teamAdmin.admin']]);
    assert.equal(await boRow.getByRole('button', { name: fill(ZH['teamAdmin.disableOf'], { name: 'Bo' }) }).textContent(), ZH['teamAdmin.disable']);
    assert.equal(await boRow.locator('.ta-load').textContent(), fill(ZH['teamAdmin.openCount'], { count: 1 }));
    assert.equal(await page.locator('#team-admin-rows tr', { hasText: 'ana@example.com' }).locator('.ta-label').textContent(), fill(ZH['teams.you'], { name: 'Ana' }));
    await boRow.getByLabel(fill(ZH['teamAdmin.capacityOf'], { name: 'Bo' })).fill('3');
    await boRow.getByLabel(fill(ZH['teamAdmin.capacityOf'], { name: 'Bo' })).dispatchEvent('change');
    await eventually(async () => (await page.locator('#team-admin-status').textContent()) === fill(ZH['teamAdmin.capacityNow'], { name: 'Bo', count: 3 }), { timeout: T, what: 'the capacity saved, in Chinese' });
    await page.keyboard.press('Escape');
    await page.locator('#team-dialog').waitFor({ state: 'hidden', timeout: T });

    // ---- The visitor panel of Vera's conversation.
    const a = { page, label: A.label };
    await selectConv(a, conv);
    const panel = page.locator('#visitor-panel');
    await eventually(async () => (await page.locator('#visitor-page .vp-link').count()) === 1, { timeout: T, what: 'the visitor panel loaded' });
    assert.equal(await page.locator('#visitor-panel-title').textContent(), ZH['vpanel.title']);
    assert.deepEqual(await texts(panel.locator('dt')), [ZH['vpanel.name'], ZH['vpanel.email'], ZH['vpanel.page'], ZH['vpanel.localTime'],
      ZH['vpanel.referrer'], ZH['vpanel.browser'], ZH['vpanel.language']]);
    assert.equal(await page.locator('#visitor-email').textContent(), ZH['vpanel.notGiven']);
    assert.equal(await page.locator('#visitor-browser').textContent(), fill(ZH['vpanel.browserOn'], { browser: 'Safari 17', os: 'macOS' }));
    assert.match(await page.locator('#visitor-local-time').textContent(), /^\d\d:\d\d（Europe\/Paris）$/);
    assert.equal(await page.locator('#visitor-pages-title').textContent(), ZH['vpanel.pages']);
    assert.equal(await page.locator('#visitor-conversations-title').textContent(), ZH['vpanel.earlier']);
    assert.equal(await page.locator('#visitor-conversations-empty').textContent(), ZH['vpanel.none']);
    assert.equal(await page.locator('#visitor-edit').textContent(), ZH['vpanel.edit']);
    await page.locator('#visitor-edit').click();
    assert.equal(await page.getByLabel(ZH['vpanel.editName']).inputValue(), 'Vera');
    assert.equal(await page.locator('#visitor-edit-form button[type="submit"]').textContent(), ZH['vpanel.save']);
    await page.getByRole('button', { name: ZH['vpanel.cancel'] }).click();
    // In English at once, the browser as the server labels it; and back.
    await page.evaluate(() => window.KefuI18n.setLanguage('en'));
    assert.equal(await page.locator('#visitor-email').textContent(), EN['vpanel.notGiven']);
    assert.equal(await page.locator('#visitor-browser').textContent(), 'Safari 17 on macOS');
    assert.equal((await texts(panel.locator('dt')))[3], EN['vpanel.localTime']);
    await page.evaluate(() => window.KefuI18n.setLanguage('zh-CN'));
    assert.equal(await page.locator('#visitor-email').textContent(), ZH['vpanel.notGiven']);
    await screenshot(page, 'zh-visitor-panel-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#visitor-panel-toggle').click();
    assert.equal(await page.locator('#visitor-panel-toggle').textContent(), ZH['vpanel.details']);
    await panel.scrollIntoViewIfNeeded();
    await screenshot(page, 'zh-visitor-panel-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // ---- Snooze: the choices in Chinese, with their times as zh-CN writes them; the past refused.
    await page.locator('#status-select').selectOption('snoozed');
    const snooze = page.getByRole('dialog', { name: ZH['snooze.title'] });
    await snooze.waitFor({ timeout: T });
    assert.equal((await snooze.locator('.snooze-help').textContent()).trim(), ZH['snooze.help']);
    const choices = snooze.getByRole('list', { name: ZH['snooze.choices'] }).getByRole('button');
    assert.deepEqual(await texts(choices.locator('span:not(.snooze-when)')), [ZH['snooze.hour'], ZH['snooze.hours4'], ZH['snooze.tomorrow'], ZH['snooze.nextWeek']]);
    for (const when of await texts(choices.locator('.snooze-when'))) assert.match(when, /^\d{1,2}月\d{1,2}日周[一二三四五六日] \d\d:\d\d$/);
    await snooze.getByLabel(ZH['snooze.until']).fill('2020-01-01T09:00');
    await snooze.getByRole('button', { name: ZH['snooze.submit'], exact: true }).click();
    await eventually(async () => (await snooze.getByRole('alert').textContent()) === ZH['snooze.future'], { timeout: T, what: 'the past refused, in Chinese' });
    await screenshot(page, 'zh-snooze-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'zh-snooze-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await snooze.getByRole('button', { name: ZH['details.close'] }).click();
    await snooze.waitFor({ state: 'hidden', timeout: T });

    // ---- Notifications: every control named in Chinese.
    await page.click('#notify-button');
    const notify = page.getByRole('dialog', { name: ZH['notify.title'] });
    await notify.waitFor({ timeout: T });
    for (const key of ['notify.soundConversation', 'notify.soundMessage', 'notify.whileFocused', 'notify.desktopBackground']) {
      assert.equal(await notify.getByRole('checkbox', { name: ZH[key] }).count(), 1, key);
    }
    assert.equal(await notify.getByRole('button', { name: ZH['notify.test'] }).count(), 1);
    const remind = notify.getByLabel(ZH['notify.remind']);
    assert.deepEqual(await texts(remind.locator('option')), [ZH['notify.minute1'], ZH['notify.minutes2'], ZH['notify.minutes5'], ZH['notify.minutes10'], ZH['notify.never']]);
    assert.deepEqual(await texts(notify.locator('h3')), [ZH['notify.sound'], ZH['notify.waiting'], ZH['notify.desktop']]);
    await screenshot(page, 'zh-notify-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'zh-notify-phone');
    await notify.getByRole('button', { name: ZH['details.close'] }).click();

    assert.deepEqual(A.dialogs, []);
    assertNoPageProblems(A);
  }));

// The serious and critical axe violations (WCAG 2.1 A/AA) on the page as it is now, one line each
// (as tests/e2e/a11y.test.js counts them).
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
async function violations(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${what}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

for (const [w, h, size] of [[1280, 800, 'desktop'], [390, 844, 'phone']]) {
  test(`accessibility in zh-CN (${size}): the reports, teams, snooze and notifications dialogs and the visitor panel`, { timeout: 120000 }, (t) =>
    scenario(t, async (env) => {
      const srv = await env.server();
      const v = await newVisitor(srv, '陈美');
      const m = await visitorSend(srv, v.token, '我的退款什么时候到账？');
      // The context bypasses the CSP for axe's script only (the pages' own scripts are unchanged).
      const ctx = await (await browser()).newContext({ locale: 'zh-CN', viewport: { width: w, height: h }, bypassCSP: true, reducedMotion: 'reduce' });
      env.contexts.push(ctx);
      const page = await ctx.newPage();
      await page.goto(`${srv.base}/agent`);
      await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
      await page.fill('#login-email', ANA.email);
      await page.fill('#login-password', ANA.password);
      await page.click('#login-submit');
      await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
      const found = [];
      await page.click(`#conversation-list .conv-item[data-id="${m.conversation_id}"]`);
      await page.waitForSelector('#visitor-name:not(:empty)', { state: 'attached', timeout: T });
      if (size === 'phone') await page.click('#visitor-panel-toggle');
      found.push(...await violations(page, 'the visitor panel'));
      await page.locator('#status-select').selectOption('snoozed');
      await page.waitForSelector('#snooze-dialog[open]', { timeout: T });
      found.push(...await violations(page, '#snooze-dialog'));
      await page.keyboard.press('Escape');
      await page.waitForSelector('#snooze-dialog:not([open])', { state: 'attached', timeout: T });
      if (await page.isVisible('#back-button')) await page.click('#back-button');
      for (const [button, dialog] of [['#notify-button', '#notify-dialog'], ['#teams-button', '#teams-dialog'], ['#reports-button', '#reports-dialog']]) {
        await page.click(button);
        await page.waitForSelector(`${dialog}[open]`, { timeout: T });
        if (dialog === '#reports-dialog') await page.waitForSelector('#reports-chart svg', { timeout: T });
        found.push(...await violations(page, dialog));
        await page.keyboard.press('Escape');
        await page.waitForSelector(`${dialog}:not([open])`, { state: 'attached', timeout: T });
      }
      assert.deepEqual(found, [], found.join('\n'));
    }),
  );
}
