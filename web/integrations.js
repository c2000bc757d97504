/* integrations.js: the "API tokens" and "Webhooks" sections of the admin's Settings dialog
 * (docs/UI-CONTRACT.md, "Integrations"; docs/API.md, "API tokens" and "Webhooks"). An admin
 * makes a token (its secret shown once, to copy), sees each one's scope and last use, and
 * revokes it; adds a webhook (a URL and the events it takes), copies its signing secret, reads
 * its delivery log, and deletes it. Every console re-reads the lists on an "integrations" event,
 * so a change in one shows in all.
 *   const integrations = new KefuIntegrations({dialog, api});
 *   integrations.load();     // when the dialog opens, and on each "integrations" event
 */
(function () {
  'use strict';

  const {el, formatFull} = window.KefuUI;
  const I18n = window.KefuI18n;
  const t = I18n.t;
  const EVENTS = ['message.created', 'conversation.created', 'conversation.assigned', 'conversation.resolved', 'rating.created'];

  class KefuIntegrations {
    /* o: {dialog, api(method, path, body)} */
    constructor(o) {
      this.dialog = o.dialog;
      this.api = o.api;
      const $ = (id) => document.getElementById(id);
      this.status = $('settings-status');
      this.error = $('integrations-error');
      this.tokenList = $('token-list');
      this.tokenForm = $('token-form');
      this.tokenName = $('token-name');
      this.tokenScope = $('token-scope');
      this.tokenNew = $('token-new');
      this.tokenNewValue = $('token-new-value');
      this.webhookList = $('webhook-list');
      this.webhookForm = $('webhook-form');
      this.webhookUrl = $('webhook-url');
      this.eventBoxes = $('webhook-events');
      for (const name of EVENTS) {
        const label = el('label', 'settings-check webhook-event');
        const box = el('input');
        box.type = 'checkbox';
        box.value = name;
        box.checked = name === 'message.created';
        label.append(box, ' ', el('span', 'webhook-event-name', name));
        this.eventBoxes.appendChild(label);
      }
      this.tokenForm.addEventListener('submit', (e) => {
        e.preventDefault();
        this.createToken();
      });
      this.webhookForm.addEventListener('submit', (e) => {
        e.preventDefault();
        this.createWebhook();
      });
      $('token-new-copy').addEventListener('click', () => this.copy(this.tokenNewValue.value, 'integrations.tokenCopied'));
      this.tokenNewValue.addEventListener('focus', () => this.tokenNewValue.select());
      this.logs = new Set(); // webhooks whose log is open
      I18n.onChange(() => {
        if (this.dialog.open) this.load();
      });
    }

    fail(what, e) {
      this.error.textContent = t('action.failed', {what: t(what), reason: I18n.errorText(e)});
      this.error.hidden = false;
    }

    async load() {
      try {
        const [tokens, hooks] = await Promise.all([this.api('GET', '/api/tokens'), this.api('GET', '/api/webhooks')]);
        this.showTokens(tokens.tokens);
        this.showWebhooks(hooks.webhooks);
      } catch (e) {
        if (e.status !== 403) this.fail('integrations.loadWhat', e);
      }
    }

    showTokens(tokens) {
      this.tokenList.replaceChildren();
      if (!tokens.length) this.tokenList.appendChild(el('li', 'integration-empty', t('integrations.noTokens')));
      for (const token of tokens) {
        const li = el('li', 'integration-item');
        li.dataset.tokenId = token.id;
        const main = el('div', 'integration-main');
        main.append(el('span', 'integration-name', token.name), el('span', 'integration-badge', t('integrations.scope.' + token.scope)));
        const meta = el('div', 'integration-meta', t('integrations.tokenMeta', {
          created: formatFull(token.created_at),
          used: token.last_used_at ? formatFull(token.last_used_at) : t('integrations.neverUsed'),
        }));
        const revoke = el('button', 'btn btn-ghost btn-sm integration-danger', t('integrations.revoke'));
        revoke.type = 'button';
        revoke.setAttribute('aria-label', t('integrations.revokeNamed', {name: token.name}));
        this.armed(revoke, t('integrations.revokeSure'), t('integrations.revokeSureNamed', {name: token.name}), () => this.revokeToken(token));
        const text = el('div', 'integration-text');
        text.append(main, meta);
        li.append(text, revoke);
        this.tokenList.appendChild(li);
      }
    }

    async createToken() {
      this.error.hidden = true;
      const name = this.tokenName.value.trim();
      if (!name) {
        this.tokenName.focus();
        return;
      }
      try {
        const data = await this.api('POST', '/api/tokens', {name, scope: this.tokenScope.value});
        this.tokenName.value = '';
        this.tokenNewValue.value = data.token.token;
        this.tokenNew.hidden = false;
        this.tokenNewValue.focus();
        this.status.textContent = t('integrations.tokenCreated', {name: data.token.name});
        await this.load();
      } catch (e) {
        this.fail('integrations.createTokenWhat', e);
      }
    }

    async revokeToken(token) {
      this.error.hidden = true;
      try {
        await this.api('DELETE', '/api/tokens/' + token.id);
        this.status.textContent = t('integrations.tokenRevoked', {name: token.name});
        this.tokenNew.hidden = true;
        await this.load();
      } catch (e) {
        this.fail('integrations.revokeWhat', e);
      }
    }

    /* A button that asks once more before it acts (a second click within a few seconds): what
     * it undoes cannot be had back. */
    armed(button, sureText, sureLabel, act) {
      const text = button.textContent;
      const label = button.getAttribute('aria-label');
      let timer = null;
      button.addEventListener('click', () => {
        if (timer === null) {
          button.textContent = sureText;
          button.setAttribute('aria-label', sureLabel);
          timer = setTimeout(() => {
            timer = null;
            button.textContent = text;
            button.setAttribute('aria-label', label);
          }, 5000);
          return;
        }
        clearTimeout(timer);
        timer = null;
        act();
      });
    }

    async copy(text, done) {
      try {
        await navigator.clipboard.writeText(text);
        this.status.textContent = t(done);
      } catch (e) {
        this.status.textContent = t('deskSettings.copyFailed');
      }
    }

    showWebhooks(hooks) {
      this.webhookList.replaceChildren();
      if (!hooks.length) this.webhookList.appendChild(el('li', 'integration-empty', t('integrations.noWebhooks')));
      for (const hook of hooks) {
        const li = el('li', 'integration-item integration-hook');
        li.dataset.webhookId = hook.id;
        const text = el('div', 'integration-text');
        text.append(el('div', 'integration-name integration-url', hook.url), el('div', 'integration-meta', hook.events.join(', ')));
        const secret = el('button', 'btn btn-ghost btn-sm', t('integrations.copySecret'));
        secret.type = 'button';
        secret.setAttribute('aria-label', t('integrations.copySecretOf', {url: hook.url}));
        secret.addEventListener('click', () => this.copy(hook.secret, 'integrations.secretCopied'));
        const logButton = el('button', 'btn btn-ghost btn-sm', t('integrations.log'));
        logButton.type = 'button';
        logButton.setAttribute('aria-expanded', String(this.logs.has(hook.id)));
        logButton.setAttribute('aria-label', t('integrations.logOf', {url: hook.url}));
        const remove = el('button', 'btn btn-ghost btn-sm integration-danger', t('integrations.delete'));
        remove.type = 'button';
        remove.setAttribute('aria-label', t('integrations.deleteOf', {url: hook.url}));
        this.armed(remove, t('integrations.deleteSure'), t('integrations.deleteSureOf', {url: hook.url}), () => this.deleteWebhook(hook));
        const actions = el('div', 'integration-actions');
        actions.append(secret, logButton, remove);
        const log = el('ol', 'webhook-log');
        log.setAttribute('aria-label', t('integrations.logOf', {url: hook.url}));
        log.hidden = !this.logs.has(hook.id);
        logButton.addEventListener('click', () => {
          if (this.logs.has(hook.id)) this.logs.delete(hook.id);
          else this.logs.add(hook.id);
          log.hidden = !this.logs.has(hook.id);
          logButton.setAttribute('aria-expanded', String(!log.hidden));
          if (!log.hidden) this.loadLog(hook, log);
        });
        li.append(text, actions, log);
        this.webhookList.appendChild(li);
        if (!log.hidden) this.loadLog(hook, log);
      }
    }

    async loadLog(hook, log) {
      try {
        const data = await this.api('GET', `/api/webhooks/${hook.id}/deliveries`);
        log.replaceChildren();
        if (!data.deliveries.length) log.appendChild(el('li', 'integration-empty', t('integrations.noDeliveries')));
        for (const d of data.deliveries) {
          const li = el('li', 'webhook-attempt');
          li.dataset.outcome = d.outcome;
          const time = el('time', 'webhook-attempt-time', formatFull(d.at));
          time.dateTime = new Date(d.at).toISOString();
          const what = el('span', 'webhook-attempt-event', d.event);
          const outcome = el('span', 'webhook-attempt-outcome', t('integrations.outcome.' + d.outcome, {
            status: d.status === null ? t('integrations.noAnswer') : d.status,
            next: d.next_at ? formatFull(d.next_at) : '',
          }));
          li.append(time, what, outcome);
          if (d.error) li.appendChild(el('span', 'webhook-attempt-error', d.error));
          log.appendChild(li);
        }
      } catch (e) {
        this.fail('integrations.logWhat', e);
      }
    }

    async createWebhook() {
      this.error.hidden = true;
      const url = this.webhookUrl.value.trim();
      const events = [...this.eventBoxes.querySelectorAll('input:checked')].map((b) => b.value);
      try {
        const data = await this.api('POST', '/api/webhooks', {url, events});
        this.webhookUrl.value = '';
        this.status.textContent = t('integrations.webhookCreated', {url: data.webhook.url});
        await this.load();
      } catch (e) {
        this.fail('integrations.createWebhookWhat', e);
      }
    }

    async deleteWebhook(hook) {
      this.error.hidden = true;
      try {
        await this.api('DELETE', '/api/webhooks/' + hook.id);
        this.logs.delete(hook.id);
        this.status.textContent = t('integrations.webhookDeleted', {url: hook.url});
        await this.load();
      } catch (e) {
        this.fail('integrations.deleteWhat', e);
      }
    }
  }

  window.KefuIntegrations = KefuIntegrations;
})();
