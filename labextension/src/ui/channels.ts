/**
 * Notification channels: Apprise URLs (ntfy, Slack, Teams, Discord, Telegram, Matrix, a
 * JSON webhook…) that hear of job changes besides email. The server never returns a
 * URL, only its scheme and host, so that is all this part can show. Each channel has its
 * statuses, an on/off switch, a "send test" with its result, and its delivery log.
 */

import { ApiError } from '../api';
import { fill, h } from '../dom';
import { Channel, channelTarget, orderStatuses, statusLabel, testOutcome, TestOutcome } from '../model';
import { DeliveryLog } from './account';
import type { PartOptions } from './parts';
import { button, errorText, focusKey, restoreFocus, statusChecks } from './widgets';

/** How long a test's result is awaited in the channel's log before "still queued" stays. */
const TEST_WAIT_MS = 30000;
const TEST_POLL_MS = 1000;

export class ChannelsSection {
  readonly node = h('section', { className: 'qjm-channels', 'aria-labelledby': 'qjm-channels-title' });

  constructor(private readonly options: PartOptions) {
    this._form = this._addForm();
  }

  async reload(): Promise<void> {
    if (!this.options.api.signedIn) {
      this._channels = null;
      this._logs.clear();
      this.render();
      return;
    }
    try {
      this._channels = (await this.options.api.channels()).channels;
      this._error = '';
    } catch (err) {
      this._error = errorText(err);
    }
    this.render();
  }

  render(): void {
    const key = focusKey(this.node);
    const channels = this._channels;
    fill(
      this.node,
      h('h3', { className: 'qjm-section-title', id: 'qjm-channels-title' }, 'Channels'),
      h(
        'p',
        { className: 'qjm-muted' },
        'Job notices can also go to ntfy, Slack, Teams, Discord, Telegram, Matrix, a JSON webhook or any other ',
        h('a', { href: 'https://github.com/caronc/apprise/wiki', target: '_blank', rel: 'noopener noreferrer' }, 'Apprise URL'),
        '. Only the service and its host are shown after saving: the rest of the URL is kept secret.'
      ),
      this._error ? h('p', { className: 'qjm-form-error', role: 'alert' }, this._error) : null,
      channels === null
        ? h('p', { className: 'qjm-muted' }, 'Loading…')
        : channels.length === 0
          ? h('p', { className: 'qjm-muted qjm-channels-empty' }, 'No channel yet: notices go by email only.')
          : h('ul', { className: 'qjm-channel-list', 'aria-label': 'Your channels' }, channels.map(c => this._item(c))),
      this._form
    );
    restoreFocus(this.node, key);
  }

  // -- one channel ----------------------------------------------------------------------

  private _item(channel: Channel): HTMLElement {
    const target = channelTarget(channel);
    const name = channel.label || target;
    const result = this._results.get(channel.id);
    const editing = this._editing === channel.id;
    const statuses = orderStatuses(channel.notify_status);
    return h(
      'li',
      { className: 'qjm-channel', 'data-channel': channel.id, 'data-enabled': channel.enabled ? 'true' : 'false' },
      h(
        'div',
        { className: 'qjm-channel-head' },
        channel.label ? h('span', { className: 'qjm-channel-label' }, channel.label) : null,
        h('code', { className: 'qjm-channel-target' }, target),
        h('span', { className: `qjm-chip ${channel.enabled ? 'qjm-chip-done' : 'qjm-chip-unknown'}` }, channel.enabled ? 'on' : 'off')
      ),
      editing
        ? this._statusEditor(channel)
        : h(
            'p',
            { className: 'qjm-notify qjm-channel-statuses' },
            statuses.length ? `Notify on: ${statuses.map(statusLabel).join(' · ')}` : 'Hears of no status.'
          ),
      h(
        'div',
        { className: 'qjm-form-actions qjm-channel-actions' },
        button('Send test', () => void this._test(channel), {
          'aria-label': `Send a test to ${name}`,
          'data-focus': `test-${channel.id}`
        }),
        button(
          'Statuses',
          () => {
            this._editing = editing ? null : channel.id;
            this.render();
            this.node.querySelector<HTMLInputElement>(`li[data-channel="${CSS.escape(channel.id)}"] fieldset input`)?.focus();
          },
          { 'aria-label': `Choose statuses for ${name}`, 'aria-expanded': editing ? 'true' : 'false', 'data-focus': `edit-${channel.id}` }
        ),
        button(channel.enabled ? 'Turn off' : 'Turn on', () => void this._patch(channel, { enabled: !channel.enabled }), {
          'aria-label': `${channel.enabled ? 'Turn off' : 'Turn on'} ${name}`,
          'aria-pressed': channel.enabled ? 'true' : 'false',
          'data-focus': `enable-${channel.id}`
        }),
        button('Delete', () => void this._delete(channel), {
          className: 'qjm-button-quiet',
          'aria-label': `Delete ${name}`,
          'data-focus': `delete-${channel.id}`
        })
      ),
      result
        ? h('p', { className: `qjm-channel-result qjm-test-${result.state}`, role: 'status', 'data-state': result.state }, result.text)
        : null,
      this._log(channel).node
    );
  }

  private _log(channel: Channel): DeliveryLog {
    let log = this._logs.get(channel.id);
    if (!log) {
      const { api } = this.options;
      log = new DeliveryLog({
        api,
        title: 'Delivery log',
        fetch: limit => api.channelDeliveries(channel.id, limit),
        empty: 'Nothing sent to this channel yet.'
      });
      this._logs.set(channel.id, log);
    }
    return log;
  }

  private _statusEditor(channel: Channel): HTMLElement {
    const checks = statusChecks(`qjm-channel-${channel.id}`, channel.notify_status);
    return h(
      'fieldset',
      { className: 'qjm-notify-editor' },
      h('legend', {}, 'This channel hears when a job is'),
      checks.node,
      h(
        'div',
        { className: 'qjm-form-actions' },
        button('Save statuses', () => void this._patch(channel, { notify_status: checks.values() }).then(() => {
          this._editing = null;
          this.render();
        }), { className: 'qjm-button-accent' }),
        button('Cancel', () => {
          this._editing = null;
          this.render();
        }, { className: 'qjm-button-quiet', 'data-focus': `edit-${channel.id}` })
      )
    );
  }

  private async _patch(channel: Channel, patch: { enabled?: boolean; notify_status?: string[] }): Promise<void> {
    try {
      const updated = await this.options.api.updateChannel(channel.id, patch);
      this._channels = (this._channels ?? []).map(c => (c.id === updated.id ? updated : c));
      this.render();
      const name = channel.label || channelTarget(channel);
      this.options.say(
        'success',
        patch.enabled === undefined ? `Statuses saved for ${name}.` : `${name} is ${updated.enabled ? 'on' : 'off'}.`
      );
    } catch (err) {
      this.options.say('error', `Not saved: ${errorText(err)}`);
    }
  }

  private async _delete(channel: Channel): Promise<void> {
    const name = channel.label || channelTarget(channel);
    const ok = await this.options.confirm({
      title: 'Delete this channel?',
      body: `${name} gets no more job notices. Its URL is deleted; add it again to use it.`,
      accept: 'Delete channel'
    });
    if (!ok) {
      return;
    }
    try {
      await this.options.api.deleteChannel(channel.id);
    } catch (err) {
      if ((err as ApiError).status !== 404) {
        this.options.say('error', `Not deleted: ${errorText(err)}`);
        return;
      }
    }
    this._channels = (this._channels ?? []).filter(c => c.id !== channel.id);
    this._logs.delete(channel.id);
    this._results.delete(channel.id);
    this.render();
    this.options.say('success', `Deleted ${name}.`);
  }

  /** Queue a test, then follow it in the channel's log until it is sent or failed. */
  private async _test(channel: Channel): Promise<void> {
    const show = (outcome: TestOutcome): void => {
      this._results.set(channel.id, outcome);
      this.render();
    };
    let queued: string | null;
    try {
      queued = (await this.options.api.testChannel(channel.id)).id;
    } catch (err) {
      show({ state: 'failed', text: `Test not sent: ${errorText(err)}` });
      return;
    }
    show({ state: 'pending', text: 'Test queued…' });
    const log = this._log(channel);
    log.node.open = true;
    const deadline = Date.now() + TEST_WAIT_MS;
    for (;;) {
      await log.load();
      const outcome = testOutcome(log.items, queued);
      show(outcome);
      if (outcome.state !== 'pending' || Date.now() > deadline || !this.node.isConnected) {
        return;
      }
      await new Promise(resolve => window.setTimeout(resolve, TEST_POLL_MS));
    }
  }

  // -- adding -----------------------------------------------------------------------------

  private _addForm(): HTMLFormElement {
    const fieldError = (id: string): HTMLElement => h('p', { className: 'qjm-form-error qjm-field-error', id, role: 'alert' });
    const urlError = fieldError('qjm-channel-url-error');
    const labelError = fieldError('qjm-channel-label-error');
    const statusError = fieldError('qjm-channel-status-error');
    const generalError = fieldError('qjm-channel-error');
    const url = h('input', {
      type: 'text',
      id: 'qjm-channel-url',
      className: 'qjm-input',
      autocomplete: 'off',
      spellcheck: 'false',
      inputmode: 'url',
      placeholder: 'ntfys://ntfy.sh/my-topic',
      'aria-describedby': 'qjm-channel-url-help qjm-channel-url-error'
    });
    const label = h('input', {
      type: 'text',
      id: 'qjm-channel-label',
      className: 'qjm-input',
      maxlength: 100,
      placeholder: 'e.g. phone, lab chat',
      'aria-describedby': 'qjm-channel-label-error'
    });
    const checks = statusChecks('qjm-channel-new', []);
    const form = h(
      'form',
      { className: 'qjm-form qjm-channel-form', 'aria-labelledby': 'qjm-channel-form-title', novalidate: true },
      h('h4', { className: 'qjm-subtitle', id: 'qjm-channel-form-title' }, 'Add a channel'),
      h('label', { className: 'qjm-label', for: 'qjm-channel-url' }, 'Apprise URL'),
      url,
      h(
        'p',
        { className: 'qjm-muted qjm-help', id: 'qjm-channel-url-help' },
        'For example ntfys://ntfy.sh/topic, slack://T/B/C, discord://id/token or jsons://host/path.'
      ),
      urlError,
      h('label', { className: 'qjm-label', for: 'qjm-channel-label' }, 'Name (optional)'),
      label,
      labelError,
      h(
        'fieldset',
        { className: 'qjm-notify-editor', 'aria-describedby': 'qjm-channel-status-error' },
        h('legend', {}, 'Notify on (none ticked: your defaults)'),
        checks.node
      ),
      statusError,
      generalError,
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-accent qjm-button-small' }, 'Add channel')
      )
    );
    const errors: Record<string, [HTMLElement, HTMLElement | null]> = {
      url: [urlError, url],
      label: [labelError, label],
      notify_status: [statusError, null]
    };
    form.addEventListener('submit', async (event: Event) => {
      event.preventDefault();
      for (const el of [urlError, labelError, statusError, generalError]) {
        el.textContent = '';
      }
      url.removeAttribute('aria-invalid');
      label.removeAttribute('aria-invalid');
      const value = url.value.trim();
      if (!value) {
        urlError.textContent = 'Paste the Apprise URL of the service.';
        url.setAttribute('aria-invalid', 'true');
        url.focus();
        return;
      }
      const statuses = checks.values();
      try {
        const added = await this.options.api.addChannel({
          url: value,
          label: label.value.trim() || null,
          notify_status: statuses.length ? statuses : undefined
        });
        this._channels = [...(this._channels ?? []), added];
        form.reset();
        this.render();
        this.options.say('success', `Channel added: ${added.label || channelTarget(added)}. Send it a test.`);
      } catch (err) {
        const field = (err as ApiError).field ?? '';
        const [where, input] = errors[field] ?? [generalError, null];
        where.textContent = errorText(err);
        if (input) {
          input.setAttribute('aria-invalid', 'true');
          input.focus();
        }
      }
    });
    return form;
  }

  private _channels: Channel[] | null = null;
  private _error = '';
  private _editing: string | null = null;
  private _results = new Map<string, TestOutcome>();
  private _logs = new Map<string, DeliveryLog>();
  private _form: HTMLFormElement;
}
