'use strict';
// reports.test.js: the Reports dialog (docs/UI-CONTRACT.md, "Reports"; docs/API.md, GET
// /api/reports). A small known history: Vera writes, Bo claims and answers her, Ana writes a
// note and resolves it; Wu writes and nobody answers. Ana (an admin) opens Reports and sees the
// totals, the chart and the table; switches to per agent; downloads the CSV and reads it (Bo's
// name needs quoting); a new visitor's message shows up in the open dialog by itself. Bo (an
// agent) sees only his own figures. Screenshots at 1280×800 and 390×844 go to
// $KEFU_SHOTS (default: a temporary directory).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { scenario, closeBrowser, agentLogin, newVisitor, visitorSend, agentSend, DEFAULT_AGENTS } = require('./harness');
const { openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;
const BO_NAME = 'Bo, "the second"';
const SHOTS = process.env.KEFU_SHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'kefu-reports-'));

async function card(page, name) {
  const item = page.locator('#reports-cards .report-card', { has: page.locator('.rc-label', { hasText: new RegExp(`^${name}$`) }) });
  return (await item.locator('.rc-value').textContent()).trim();
}

async function waitCard(page, name, value) {
  await page.waitForFunction(([n, v]) => {
    const cards = [...document.querySelectorAll('#reports-cards .report-card')];
    const c = cards.find((x) => x.querySelector('.rc-label').textContent === n);
    return c && c.querySelector('.rc-value').textContent === v;
  }, [name, value], { timeout: T });
}

async function openReports(agent) {
  await agent.page.getByRole('button', { name: 'Reports' }).click();
  await agent.page.waitForSelector('#reports-dialog[open]', { timeout: T });
  await agent.page.locator('#reports-cards .report-card').first().waitFor({ timeout: T });
}

test('reports in the console: an admin sees the desk, groups by agent, downloads the CSV, sees it follow the desk; an agent sees his own', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await agentLogin(srv, ANA.email, ANA.password);
    const bo = await agentLogin(srv, BO.email, BO.password);
    let r = await srv.api('PATCH', `/api/agents/${bo.agent.id}`, { cookie: ana.cookie, csrf: ana.csrf, body: { name: BO_NAME } });
    assert.equal(r.status, 200, r.text);

    const vera = await newVisitor(srv, 'Vera');
    const first = await visitorSend(srv, vera.token, 'Where is my parcel?');
    const conv = first.conversation_id;
    r = await srv.api('POST', `/api/conversations/${conv}/claim`, { cookie: bo.cookie, csrf: bo.csrf });
    assert.equal(r.status, 200, r.text);
    await agentSend(srv, bo, conv, 'It left this morning.');
    r = await srv.api('POST', `/api/conversations/${conv}/messages`, { cookie: ana.cookie, csrf: ana.csrf, body: { body: 'VIP customer', private: true } });
    assert.equal(r.status, 201, r.text);
    r = await srv.api('POST', `/api/conversations/${conv}/status`, { cookie: ana.cookie, csrf: ana.csrf, body: { status: 'resolved' } });
    assert.equal(r.status, 200, r.text);
    const wu = await newVisitor(srv, 'Wu');
    await visitorSend(srv, wu.token, 'Hello? Anyone?');

    // Ana opens Reports: the last 7 days, per day.
    const A = await openAgent(env, srv, 'sse', ANA);
    await A.page.setViewportSize({ width: 1280, height: 800 });
    await openReports(A);
    const dlg = A.page.locator('#reports-dialog');
    assert.equal(await dlg.getByLabel('Period').inputValue(), '7');
    assert.ok(await dlg.getByRole('radio', { name: 'Day' }).isChecked());
    assert.equal(await A.page.locator('#reports-scope').textContent(), "Everyone's figures.");
    assert.equal(await card(A.page, 'Conversations'), '2');
    assert.equal(await card(A.page, 'Messages'), '3'); // two from visitors, one reply; the note is not one
    assert.equal(await card(A.page, 'Unanswered'), '1');
    // Nobody has rated: no share of none (tests/e2e/rating.test.js rates).
    assert.equal(await card(A.page, 'Satisfaction'), '\u2014');
    assert.equal(await dlg.locator('.report-card', { hasText: 'Satisfaction' }).locator('.rc-sub').textContent(), 'no ratings yet');
    assert.match(await card(A.page, 'Median first response'), /^\d+ s$|^\d+ min/);
    assert.match(await dlg.locator('.report-card', { hasText: 'Messages' }).locator('.rc-sub').textContent(), /^2 from visitors, 1 reply, 1 note$/);
    const chart = dlg.locator('#reports-chart svg[role="img"]');
    assert.match(await chart.getAttribute('aria-label'), /Conversations per day, .*: 2 in all, 1 unanswered/);
    assert.equal(await chart.locator('title').first().textContent(), await chart.getAttribute('aria-label'));
    assert.equal(await dlg.locator('#reports-table tbody tr').count(), 7, 'one line a day');
    const total = dlg.locator('#reports-table tfoot tr');
    assert.equal(await total.locator('th').textContent(), 'Total');
    assert.equal(await total.locator('td').first().textContent(), '2');
    await A.page.screenshot({ path: path.join(SHOTS, 'reports-desktop-day.png') });

    // Per agent: Bo answered first (one conversation), Ana wrote the note.
    await dlg.getByRole('radio', { name: 'Agent' }).check();
    await A.page.waitForFunction(() => document.querySelector('#reports-table thead th').textContent === 'Agent', null, { timeout: T });
    const rows = dlg.locator('#reports-table tbody tr');
    assert.equal(await rows.count(), 2);
    const boRow = rows.filter({ has: A.page.locator('th', { hasText: BO_NAME }) });
    assert.equal(await boRow.locator('td').nth(0).textContent(), '1', 'Bo: one conversation');
    assert.equal(await boRow.locator('td').nth(2).textContent(), '1', 'Bo: one reply');
    const anaRow = rows.filter({ has: A.page.locator('th', { hasText: /^Ana$/ }) });
    assert.equal(await anaRow.locator('td').nth(3).textContent(), '1', 'Ana: one note');
    assert.match(await dlg.locator('#reports-chart svg').getAttribute('aria-label'), /^Median first response per agent: /);
    await A.page.screenshot({ path: path.join(SHOTS, 'reports-desktop-agent.png') });

    // The browser's zone goes with the query, so days are cut where the browser's are.
    assert.match(await dlg.getByRole('link', { name: 'Download CSV' }).getAttribute('href'), /[?&]tz=[^&]+.*&format=csv$/);
    // Per team: nobody's conversation is in a team.
    await dlg.getByRole('radio', { name: 'Team' }).check();
    await A.page.waitForFunction(() => document.querySelector('#reports-table thead th').textContent === 'Team', null, { timeout: T });
    assert.deepEqual(await dlg.locator('#reports-table tbody th').allTextContents(), ['No team']);
    assert.match(await dlg.locator('#reports-chart svg').getAttribute('aria-label'), /^Conversations per team: No team 2\.$/);
    await dlg.getByRole('radio', { name: 'Agent' }).check();
    await A.page.waitForFunction(() => document.querySelector('#reports-table thead th').textContent === 'Agent', null, { timeout: T });

    // The CSV, as the link downloads it.
    const [download] = await Promise.all([A.page.waitForEvent('download'), dlg.getByRole('link', { name: 'Download CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^kefu-report-agent-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    const lines = csv.split('\r\n');
    assert.equal(lines[0], 'agent_id,agent,conversations,visitor_messages,agent_messages,notes,answered,first_response_median_s,first_response_p90_s,resolved,resolution_median_s,resolution_p90_s,unanswered,satisfaction_good,satisfaction_bad,satisfaction_share_good');
    assert.ok(lines.some((l) => l.startsWith(`${bo.agent.id},"Bo, ""the second""",1,0,1,0,1,`)), csv);
    assert.ok(lines.some((l) => l.startsWith(',total,2,2,1,1,1,')), csv);

    // The phone: the same dialog, one column.
    await A.page.setViewportSize({ width: 390, height: 844 });
    await dlg.getByRole('radio', { name: 'Day' }).check();
    await A.page.waitForFunction(() => document.querySelector('#reports-table thead th').textContent === 'Day', null, { timeout: T });
    await A.page.screenshot({ path: path.join(SHOTS, 'reports-phone-day.png') });
    await dlg.locator('#reports-chart').scrollIntoViewIfNeeded();
    await A.page.screenshot({ path: path.join(SHOTS, 'reports-phone-chart.png') });
    await A.page.setViewportSize({ width: 1280, height: 800 });

    // A new visitor writes while it is open: it follows, no reload.
    const xu = await newVisitor(srv, 'Xu');
    await visitorSend(srv, xu.token, 'Hi there');
    await waitCard(A.page, 'Conversations', '3');
    await waitCard(A.page, 'Unanswered', '2');

    // Custom dates the wrong way round: said, nothing asked.
    await dlg.getByLabel('Period').selectOption('custom');
    await dlg.getByLabel('From').fill('2030-01-02');
    await dlg.getByLabel('To (included)').fill('2030-01-01');
    await dlg.getByLabel('To (included)').dispatchEvent('change');
    await A.page.waitForFunction(() => /start date must be on or before/.test(document.querySelector('#reports-error').textContent), null, { timeout: T });

    // Bo sees his own only.
    const B = await openAgent(env, srv, 'ws', BO);
    await openReports(B);
    assert.match(await B.page.locator('#reports-scope').textContent(), /^Your own figures/);
    assert.equal(await card(B.page, 'Conversations'), '1');
    assert.equal(await card(B.page, 'Messages'), '1');
    assert.equal(await card(B.page, 'Unanswered'), '0');
    await B.page.locator('#reports-dialog').getByRole('radio', { name: 'Agent' }).check();
    await B.page.waitForFunction(() => document.querySelector('#reports-table thead th').textContent === 'Agent', null, { timeout: T });
    const own = B.page.locator('#reports-table tbody tr');
    assert.equal(await own.count(), 1);
    assert.equal(await own.locator('th').textContent(), BO_NAME);
    assertNoPageProblems(A, B);
  }));
