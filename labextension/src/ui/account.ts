/**
 * The account: email and its verification, the IBM Quantum key (shown by its last four
 * characters only), sign-out, and the email delivery log. The Lab panel shows the
 * compact form in a disclosure; the web UI's account page shows the full form, which
 * adds email and password changes, the default instance and notices, a test email and
 * account deletion.
 */

import { ApiError, MePatch } from '../api';
import { fill, h } from '../dom';
import { DeliveryLog as DeliveryLogPage, DeliveryRecord, formatTime, keySummary, User } from '../model';
import type { PartOptions } from './parts';
import { button, errorText, statusChecks } from './widgets';

export interface AccountOptions extends PartOptions {
  /** The web UI's page: every setting, open sections. */
  full?: boolean;
  /** Where the full account page is (the panel links to the web UI's). */
  accountHref?: string;
}

export class AccountSection {
  readonly node = h('section', { className: 'qjm-account', 'aria-label': 'Account' });

  constructor(private readonly options: AccountOptions) {
    this._log = new DeliveryLog(options);
  }

  get user(): User | null {
    return this._user;
  }

  /** Forget the user (signed out) or load them (signed in). */
  async reload(): Promise<void> {
    this._user = null;
    this._error = '';
    if (!this.options.api.signedIn) {
      this._log.clear();
      this.render();
      return;
    }
    this.render();
    try {
      this._user = await this.options.api.me();
    } catch (err) {
      if ((err as ApiError).status !== 401) {
        this._error = errorText(err);
      }
    }
    if (this.options.full) {
      void this._log.load();
    }
    this.render();
  }

  /** Open the compact section and move focus there (the panel header's account button). */
  open(): void {
    this._open = true;
    this.render();
    const summary = this.node.querySelector<HTMLElement>('summary');
    summary?.scrollIntoView({ block: 'start' });
    summary?.focus();
  }

  render(): void {
    const { api, full } = this.options;
    if (!api.signedIn) {
      fill(this.node);
      return;
    }
    if (api.hostIdentity && this._user && !this._user.email && !this._pendingEmail) {
      fill(this.node, this._setupForm());
      return;
    }
    const body = [
      this._facts(),
      this._keyForm(),
      full ? this._defaults() : null,
      full ? this._emailForm() : null,
      full && !api.hostIdentity ? this._passwordForm() : null, // the host signs this account in: no qjm password
      this._signOut(),
      this._error ? h('p', { className: 'qjm-form-error' }, this._error) : null,
      this._log.node,
      full ? this._danger() : null
    ];
    if (full) {
      fill(this.node, body);
      return;
    }
    const details = h(
      'details',
      { className: 'qjm-details', open: this._open },
      h('summary', {}, 'Account'),
      body,
      this.options.accountHref
        ? h(
            'p',
            { className: 'qjm-more' },
            h('a', { href: this.options.accountHref, target: '_blank', rel: 'noopener' }, 'All account settings')
          )
        : null
    );
    details.addEventListener('toggle', () => {
      this._open = details.open;
    });
    fill(this.node, details);
  }

  // -- pieces ----------------------------------------------------------------------------

  private async _save(patch: MePatch, done: string): Promise<boolean> {
    try {
      this._user = await this.options.api.updateMe(patch);
      this.render();
      this.options.say('success', done);
      return true;
    } catch (err) {
      this.options.say('error', `Not saved: ${errorText(err)}`);
      return false;
    }
  }

  /**
   * First open under the host's identity (Jupyter, the Hub): the account exists but has
   * no address yet, so ask for it (confirmed by the emailed link) and, optionally, the
   * IBM Quantum key. Nothing else to set up: no password.
   */
  private _setupForm(): HTMLElement {
    const email = h('input', {
      type: 'email',
      id: 'qjm-setup-email',
      className: 'qjm-input',
      autocomplete: 'email',
      placeholder: 'you@example.org'
    });
    const key = h('input', {
      type: 'password',
      id: 'qjm-setup-key',
      className: 'qjm-input',
      autocomplete: 'off',
      placeholder: 'Optional: your IBM Quantum API key'
    });
    const error = h('p', { className: 'qjm-form-error', role: 'alert' });
    const form = h(
      'form',
      { className: 'qjm-form qjm-setup', 'aria-labelledby': 'qjm-setup-title', novalidate: true },
      h('h3', { id: 'qjm-setup-title', className: 'qjm-section-title' }, 'Where should job notices go?'),
      h('p', { className: 'qjm-muted' }, 'qjm emails you when your IBM Quantum jobs start, finish or fail.'),
      h('label', { className: 'qjm-label', for: 'qjm-setup-email' }, 'Email'),
      email,
      h('label', { className: 'qjm-label', for: 'qjm-setup-key' }, 'IBM Quantum API key (optional)'),
      key,
      error,
      h('div', { className: 'qjm-form-actions' }, h('button', { type: 'submit', className: 'qjm-button qjm-button-accent' }, 'Save'))
    );
    form.addEventListener('submit', async (event: Event) => {
      event.preventDefault();
      const address = email.value.trim();
      if (!address) {
        error.textContent = 'Enter your email address.';
        email.focus();
        return;
      }
      const patch: MePatch = { email: address };
      if (key.value.trim()) {
        patch.ibm_quantum_token = key.value.trim();
      }
      try {
        this._user = await this.options.api.updateMe(patch);
      } catch (err) {
        error.textContent = errorText(err);
        return;
      }
      this._pendingEmail = address;
      this.render();
      this.options.say('info', `A confirmation link is on its way to ${address}. Follow it to start getting notices.`);
    });
    return form;
  }

  private _facts(): HTMLElement {
    const { api, say, confirm } = this.options;
    const user = this._user;
    const email = user?.email || this._pendingEmail || api.email;
    const verified = user
      ? user.is_verified
        ? h('span', { className: 'qjm-chip qjm-chip-done' }, 'verified')
        : h('span', { className: 'qjm-chip qjm-chip-queued' }, 'not verified')
      : null;
    const resend =
      user && !user.is_verified && user.email
        ? button('Resend verification', async () => {
            try {
              await api.requestVerification(user.email);
              say('info', `A verification email is on its way to ${user.email}.`);
            } catch (err) {
              say('error', errorText(err));
            }
          })
        : null;
    const clear = user?.ibm_key.set
      ? button(
          'Clear',
          async () => {
            const ok = await confirm({
              title: 'Clear the IBM Quantum API key?',
              body: 'qjm stops checking your IBM Quantum jobs until you set a key again.',
              accept: 'Clear key'
            });
            if (ok) {
              await this._save({ ibm_quantum_token: null }, 'IBM Quantum API key cleared.');
            }
          },
          { className: 'qjm-button-quiet', 'aria-label': 'Clear the IBM Quantum API key' }
        )
      : null;
    return h(
      'dl',
      { className: 'qjm-facts' },
      h('dt', {}, 'Email'),
      h('dd', {}, h('span', { className: 'qjm-email' }, email), ' ', verified, ' ', resend),
      h('dt', {}, 'IBM Quantum key'),
      h('dd', {}, h('span', { className: 'qjm-key-summary' }, user ? keySummary(user.ibm_key) : '…'), ' ', clear),
      user?.is_admin ? [h('dt', {}, 'Role'), h('dd', {}, 'Administrator')] : null
    );
  }

  private _keyForm(): HTMLElement {
    const user = this._user;
    const input = h('input', {
      type: 'password',
      id: 'qjm-ibm-key',
      className: 'qjm-input',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: user?.ibm_key.set ? 'New API key to replace it' : 'Paste your IBM Quantum API key'
    });
    const form = h(
      'form',
      { className: 'qjm-key-form' },
      h('label', { className: 'qjm-label', for: 'qjm-ibm-key' }, user?.ibm_key.set ? 'Replace API key' : 'Set API key'),
      h(
        'div',
        { className: 'qjm-inline' },
        input,
        h('button', { type: 'submit', className: 'qjm-button qjm-button-accent qjm-button-small' }, 'Save')
      )
    );
    form.addEventListener('submit', (e: Event) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value) {
        input.focus();
        return;
      }
      void this._save({ ibm_quantum_token: value }, 'IBM Quantum API key saved.').then(ok => {
        if (ok) {
          input.value = '';
        }
      });
    });
    return form;
  }

  private _defaults(): HTMLElement {
    const user = this._user;
    const instance = h('input', {
      type: 'text',
      id: 'qjm-default-instance',
      className: 'qjm-input',
      spellcheck: 'false',
      placeholder: 'crn:v1:bluemix:public:quantum-computing:…',
      value: user?.default_instance ?? ''
    });
    const checks = statusChecks('qjm-default', user?.notify_default ?? []);
    const form = h(
      'form',
      { className: 'qjm-form qjm-defaults', 'aria-labelledby': 'qjm-defaults-title' },
      h('h3', { className: 'qjm-section-title', id: 'qjm-defaults-title' }, 'Defaults for new jobs'),
      h('label', { className: 'qjm-label', for: 'qjm-default-instance' }, 'Default IBM Quantum instance (CRN)'),
      instance,
      h(
        'fieldset',
        { className: 'qjm-notify-editor' },
        h('legend', {}, 'Notify me by default when a job is'),
        checks.node
      ),
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-accent qjm-button-small' }, 'Save defaults')
      )
    );
    form.addEventListener('submit', (e: Event) => {
      e.preventDefault();
      const crn = instance.value.trim();
      void this._save(
        { default_instance: crn || null, notify_default: checks.values() },
        'Defaults saved.'
      );
    });
    return form;
  }

  private _emailForm(): HTMLElement {
    // An account the host signs in has no qjm password to ask for.
    const needsPassword = !this.options.api.hostIdentity;
    const email = h('input', { type: 'email', id: 'qjm-new-email', className: 'qjm-input', autocomplete: 'email' });
    const current = h('input', {
      type: 'password',
      id: 'qjm-email-password',
      className: 'qjm-input',
      autocomplete: 'current-password'
    });
    const form = h(
      'form',
      { className: 'qjm-form', 'aria-labelledby': 'qjm-email-title' },
      h('h3', { className: 'qjm-section-title', id: 'qjm-email-title' }, 'Change email'),
      h('label', { className: 'qjm-label', for: 'qjm-new-email' }, 'New email address'),
      email,
      needsPassword ? h('label', { className: 'qjm-label', for: 'qjm-email-password' }, 'Current password') : null,
      needsPassword ? current : null,
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-small' }, 'Change email')
      )
    );
    form.addEventListener('submit', (e: Event) => {
      e.preventDefault();
      const value = email.value.trim();
      if (!value || (needsPassword && !current.value)) {
        (value ? current : email).focus();
        return;
      }
      void this._save(
        needsPassword ? { email: value, current_password: current.value } : { email: value },
        `Email changed. Confirm ${value} with the link we sent there.`
      );
    });
    return form;
  }

  private _passwordForm(): HTMLElement {
    const current = h('input', {
      type: 'password',
      id: 'qjm-current-password',
      className: 'qjm-input',
      autocomplete: 'current-password'
    });
    const next = h('input', {
      type: 'password',
      id: 'qjm-new-password',
      className: 'qjm-input',
      autocomplete: 'new-password',
      minlength: 8
    });
    const form = h(
      'form',
      { className: 'qjm-form', 'aria-labelledby': 'qjm-password-title' },
      h('h3', { className: 'qjm-section-title', id: 'qjm-password-title' }, 'Change password'),
      h('label', { className: 'qjm-label', for: 'qjm-current-password' }, 'Current password'),
      current,
      h('label', { className: 'qjm-label', for: 'qjm-new-password' }, 'New password (at least 8 characters)'),
      next,
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-small' }, 'Change password')
      )
    );
    form.addEventListener('submit', (e: Event) => {
      e.preventDefault();
      if (!current.value || !next.value) {
        (current.value ? next : current).focus();
        return;
      }
      // The server logs every other session out; this tab signs in again with the new one.
      const email = this._user?.email ?? this.options.api.email;
      const password = next.value;
      const { api, say } = this.options;
      void (async () => {
        try {
          this._user = await api.updateMe({ password, current_password: current.value });
        } catch (err) {
          say('error', `Not saved: ${errorText(err)}`);
          return;
        }
        await api.login(email, password).catch(() => undefined);
        say('success', 'Password changed. Every other session was signed out.');
      })();
    });
    return form;
  }

  private _signOut(): HTMLElement {
    const { api } = this.options;
    return h(
      'div',
      { className: 'qjm-form-actions qjm-account-actions' },
      // Under the host's identity there is no qjm session to end.
      api.hostIdentity ? null : button('Sign out', () => api.signOut(), { 'data-focus': 'signout' }),
      api.hostIdentity
        ? null
        : button('Sign out everywhere', () => void api.logoutEverywhere().catch(() => undefined), {
            className: 'qjm-button-quiet',
            title: 'Revoke every qjm session of this account: other tabs, kernels and scripts must sign in again'
          }),
      this.options.full
        ? button('Send a test email', async () => {
            try {
              await api.sendTestEmail();
              this.options.say('info', 'A test email is on its way. It shows up in the delivery log below.');
              window.setTimeout(() => void this._log.load(), 1500);
            } catch (err) {
              this.options.say('error', errorText(err));
            }
          })
        : null
    );
  }

  private _danger(): HTMLElement {
    const { api, confirm, say } = this.options;
    const password = h('input', {
      type: 'password',
      id: 'qjm-delete-password',
      className: 'qjm-input',
      autocomplete: 'current-password'
    });
    const form = h(
      'form',
      { className: 'qjm-form qjm-danger', 'aria-labelledby': 'qjm-delete-title' },
      h('h3', { className: 'qjm-section-title', id: 'qjm-delete-title' }, 'Delete account'),
      h('p', { className: 'qjm-muted' }, 'Deletes the account and every job qjm keeps for it. Jobs on IBM Quantum are not touched.'),
      h('label', { className: 'qjm-label', for: 'qjm-delete-password' }, 'Password'),
      password,
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-small qjm-button-danger' }, 'Delete account')
      )
    );
    form.addEventListener('submit', async (e: Event) => {
      e.preventDefault();
      if (!password.value) {
        password.focus();
        return;
      }
      const ok = await confirm({
        title: 'Delete your qjm account?',
        body: 'The account, its jobs and its delivery log are deleted now. This cannot be undone.',
        accept: 'Delete account'
      });
      if (!ok) {
        return;
      }
      try {
        await api.deleteMe(password.value);
        say('info', 'Your account was deleted.');
      } catch (err) {
        say('error', `Not deleted: ${errorText(err)}`);
      }
    });
    return form;
  }

  private _user: User | null = null;
  private _error = '';
  private _open = false;
  private _pendingEmail = '';
  private _log: DeliveryLog;
}

export interface DeliveryLogOptions extends Pick<AccountOptions, 'api' | 'full'> {
  /** Another log than the account's email (a channel's): its title, its page and what "empty" says. */
  title?: string;
  fetch?: (limit: number) => Promise<DeliveryLogPage>;
  empty?: string;
}

/** The emails sent to this account (or a channel's messages) and how their delivery went. */
export class DeliveryLog {
  readonly node: HTMLDetailsElement;

  constructor(private readonly options: DeliveryLogOptions) {
    this.node = h('details', { className: 'qjm-details qjm-log', open: !!options.full });
    this.node.append(h('summary', {}, options.title ?? 'Email delivery log'), this._body);
    this.node.addEventListener('toggle', () => {
      if (this.node.open) {
        void this.load();
      }
    });
    this._render();
  }

  get items(): DeliveryRecord[] {
    return this._items ?? [];
  }

  clear(): void {
    this._items = null;
    this._error = '';
    this._render();
  }

  async load(): Promise<void> {
    const limit = this.options.full ? 50 : 20;
    try {
      const page = this.options.fetch ? await this.options.fetch(limit) : await this.options.api.notifications(limit);
      this._items = page.notifications;
      this._error = '';
    } catch (err) {
      this._error = errorText(err);
    }
    this._render();
  }

  private _render(): void {
    if (this._error) {
      fill(this._body, h('p', { className: 'qjm-form-error' }, this._error));
    } else if (this._items === null) {
      fill(this._body, h('p', { className: 'qjm-muted' }, 'Loading…'));
    } else if (this._items.length === 0) {
      fill(this._body, h('p', { className: 'qjm-muted' }, this.options.empty ?? 'No email sent yet.'));
    } else {
      fill(
        this._body,
        h(
          'ul',
          { className: 'qjm-log-list' },
          this._items.map(n =>
            h(
              'li',
              { className: 'qjm-log-item', 'data-kind': n.kind, 'data-state': n.state },
              h('span', { className: `qjm-chip qjm-mail-${n.state}` }, n.state),
              h('span', { className: 'qjm-log-subject', title: n.last_error || n.subject }, n.subject),
              h('span', { className: 'qjm-muted qjm-log-time' }, formatTime(n.sent_at || n.created_at)),
              n.state === 'failed' && n.last_error ? h('span', { className: 'qjm-log-error' }, n.last_error) : null
            )
          )
        ),
        button('Reload log', () => void this.load())
      );
    }
  }

  private _items: DeliveryRecord[] | null = null;
  private _error = '';
  private _body = h('div', { className: 'qjm-log-body' });
}
