'use strict';
// team_settings.test.js: the console's Team settings dialog (docs/UI-CONTRACT.md), as people use
// it: an admin adds an agent who can then sign in, makes an agent an admin, disables an agent whose
// open console is logged out at once, and enables them again; an agent sees only their own account
// there, renames themselves (everyone's team list follows) and changes their password (a wrong
// current one is refused, saying so).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { scenario, closeBrowser, agentLogin, DEFAULT_AGENTS } = require('./harness');
const { openAgent, assertNoPageProblems } = require('./pages');

after(closeBrowser);

const [ANA, BO] = DEFAULT_AGENTS;
const T = 15000;
const CY = { email: 'cy@example.com', name: 'Cy', password: 'cy has a long password' };

async function openSettings(page) {
  await page.getByRole('button', { name: 'Team settings' }).click();
  await page.waitForSelector('#team-dialog[open]', { timeout: T });
}

function row(page, name) {
  return page.locator('#team-admin-rows tr', { has: page.locator('.ta-label', { hasText: name }) });
}

test('team settings: an admin adds an agent, makes one an admin, disables one (their console is logged out at once) and enables them again', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await openAgent(env, srv, 'ws', ANA);
    const bo = await openAgent(env, srv, 'sse', BO);
    await openSettings(ana.page);
    const dlg = ana.page.locator('#team-dialog');
    await dlg.locator('#team-admin-rows tr').nth(1).waitFor({ timeout: T });
    assert.deepEqual(await dlg.locator('.ta-label').allTextContents(), ['Ana (you)', 'Bo']);

    // Add Cy.
    await dlg.getByLabel('Name', { exact: true }).fill(CY.name);
    await dlg.getByLabel('E-mail').fill(CY.email);
    await dlg.getByLabel('Password', { exact: true }).fill(CY.password);
    await dlg.getByRole('button', { name: 'Add agent' }).click();
    await row(ana.page, 'Cy').waitFor({ timeout: T });
    assert.match(await dlg.locator('#team-admin-status').textContent(), /Cy can sign in now/);
    await agentLogin(srv, CY.email, CY.password);
    // A taken e-mail says why.
    await dlg.getByLabel('Name', { exact: true }).fill('Cy again');
    await dlg.getByLabel('E-mail').fill(CY.email);
    await dlg.getByLabel('Password', { exact: true }).fill(CY.password);
    await dlg.getByRole('button', { name: 'Add agent' }).click();
    await dlg.locator('#team-admin-error:not([hidden])').waitFor({ timeout: T });
    assert.match(await dlg.locator('#team-admin-error').textContent(), /Could not add the agent/);

    // Cy becomes an admin.
    await row(ana.page, 'Cy').getByLabel('Role of Cy').selectOption('admin');
    await ana.page.waitForFunction(() => /Cy is an admin now/.test(document.querySelector('#team-admin-status').textContent), null, { timeout: T });
    const cy = await agentLogin(srv, CY.email, CY.password);
    assert.equal((await srv.api('GET', '/api/agent/me', { cookie: cy.cookie })).json.agent.role, 'admin');

    // Bo is disabled: his open console lands on the login form, saying why.
    assert.equal(await row(ana.page, 'Ana').getByRole('button').count(), 0, 'no Disable for oneself');
    await row(ana.page, 'Bo').getByRole('button', { name: 'Disable Bo' }).click();
    await bo.page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    assert.match(await bo.page.$eval('#login-error', (e) => e.textContent), /disabled/);
    await row(ana.page, 'Bo').getByText('Disabled').waitFor({ timeout: T });
    // ...and gone from the team list.
    await ana.page.waitForFunction(() => ![...document.querySelectorAll('#team-list .team-name')].some((e) => e.textContent === 'Bo'), null, { timeout: T });

    // Enabled again, he signs in.
    await row(ana.page, 'Bo').getByRole('button', { name: 'Enable Bo' }).click();
    await ana.page.waitForFunction(() => /Bo can sign in again/.test(document.querySelector('#team-admin-status').textContent), null, { timeout: T });
    await bo.page.fill('#login-email', BO.email);
    await bo.page.fill('#login-password', BO.password);
    await bo.page.click('#login-submit');
    await bo.page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    await ana.page.keyboard.press('Escape');
    await ana.page.waitForFunction(() => !document.querySelector('#team-dialog').open, null, { timeout: T });
    assertNoPageProblems(ana, bo);
  }));

test('team settings: an agent sees only their own account; renames themselves (everyone sees it) and changes their password', { timeout: 120000 }, (t) =>
  scenario(t, async (env) => {
    const srv = await env.server();
    const ana = await openAgent(env, srv, 'ws', ANA);
    const bo = await openAgent(env, srv, 'longpoll', BO);
    await openSettings(bo.page);
    assert.equal(await bo.page.isHidden('#team-admin-part'), true, 'no agents list, no Add agent for an agent');
    const dlg = bo.page.locator('#team-dialog');
    assert.equal(await dlg.getByLabel('Your name').inputValue(), 'Bo');

    await dlg.getByLabel('Your name').fill('Bo Li');
    await dlg.getByRole('button', { name: 'Save name' }).click();
    await bo.page.waitForFunction(() => document.querySelector('#agent-name').textContent === 'Bo Li', null, { timeout: T });
    await ana.page.waitForFunction(() => [...document.querySelectorAll('#team-list .team-name')].some((e) => e.textContent === 'Bo Li'), null, { timeout: T });

    await dlg.getByLabel('Current password').fill('not his password');
    await dlg.getByLabel('New password', { exact: true }).fill('bo has a brand new password');
    await dlg.getByLabel('New password, again').fill('bo has a brand new password');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await dlg.locator('#team-admin-error:not([hidden])').waitFor({ timeout: T });
    assert.match(await dlg.locator('#team-admin-error').textContent(), /current password is wrong/);

    await dlg.getByLabel('Current password').fill(BO.password);
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await bo.page.waitForFunction(() => /Your password is changed/.test(document.querySelector('#team-admin-status').textContent), null, { timeout: T });
    assert.equal(await bo.page.isHidden('#team-admin-error'), true);
    await agentLogin(srv, BO.email, 'bo has a brand new password');
    // His console goes on (its stream reconnects with its own cookie).
    await bo.page.keyboard.press('Escape');
    await bo.page.waitForSelector('#conn-state[data-state="connected"]', { timeout: T });
    assertNoPageProblems(ana, bo);
  }));
