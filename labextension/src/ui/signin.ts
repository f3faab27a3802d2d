/**
 * Sign in, create an account, or ask for a password-reset email: one form whose mode
 * switches in place, each mode owning its fields. The emailed reset link opens the
 * server's `qjm/reset` page, which works whether or not JupyterLab is there.
 */

import { ApiError } from '../api';
import { fill, h } from '../dom';
import type { PartOptions } from './parts';
import { errorText } from './widgets';

export type SignInMode = 'sign-in' | 'sign-up' | 'forgot';

const TITLES: Record<SignInMode, string> = {
  'sign-in': 'Sign in to qjm',
  'sign-up': 'Create a qjm account',
  forgot: 'Reset your password'
};

export interface SignInOptions extends Pick<PartOptions, 'api'> {
  /** Told when the user switches mode (the web UI keeps the address in step). */
  onMode?: (mode: SignInMode) => void;
  /** Said under the title of the sign-in mode. */
  intro?: string;
}

export class SignInForm {
  readonly node = h('section', { className: 'qjm-signin' });

  constructor(private readonly options: SignInOptions) {
    this.setMode('sign-in');
  }

  get mode(): SignInMode {
    return this._mode;
  }

  setMode(mode: SignInMode, message = ''): void {
    this._mode = mode;
    this._build(message);
  }

  /** Put the cursor in the first empty field (the "sign in" command, a new page). */
  focus(): void {
    (this._email.value ? this._password : this._email).focus();
  }

  private _build(message: string): void {
    const mode = this._mode;
    const error = h('p', { className: 'qjm-form-error', role: 'alert', id: 'qjm-signin-error' });
    const info = h('p', { className: 'qjm-form-info', role: 'status', id: 'qjm-signin-info' }, message);
    const label = { 'sign-in': 'Sign in', 'sign-up': 'Create account', forgot: 'Email me a reset link' }[mode];
    const submit = h('button', { type: 'submit', className: 'qjm-button qjm-button-accent' }, label);
    this._password.autocomplete = mode === 'sign-up' ? 'new-password' : 'current-password';
    const switchTo = (target: SignInMode, text: string): HTMLButtonElement =>
      h(
        'button',
        {
          type: 'button',
          className: 'qjm-link-button',
          'data-mode': target,
          onClick: () => {
            this.setMode(target);
            this.options.onMode?.(target);
            this.focus();
          }
        },
        text
      );
    const intro =
      mode === 'sign-in'
        ? this.options.intro ??
          'Use your qjm account to see your IBM Quantum jobs and get a notice when they start, finish or fail.'
        : mode === 'sign-up'
          ? 'You will get an email to confirm your address. Job notices go to confirmed addresses only.'
          : 'Enter the address of your account; we email you a link to choose a new password.';
    const form = h(
      'form',
      { className: 'qjm-form', 'aria-labelledby': 'qjm-signin-title', novalidate: true, 'data-mode': mode },
      h('h3', { id: 'qjm-signin-title', className: 'qjm-section-title' }, TITLES[mode]),
      h('p', { className: 'qjm-muted' }, intro),
      h('label', { className: 'qjm-label', for: 'qjm-email' }, 'Email'),
      this._email,
      mode !== 'forgot' ? h('label', { className: 'qjm-label', for: 'qjm-password' }, 'Password') : null,
      mode !== 'forgot' ? this._password : null,
      mode === 'sign-up' ? h('p', { className: 'qjm-hint qjm-muted' }, 'At least 8 characters.') : null,
      error,
      info,
      h('div', { className: 'qjm-form-actions' }, submit),
      h(
        'p',
        { className: 'qjm-form-links' },
        mode === 'sign-in'
          ? [switchTo('sign-up', 'Create an account'), switchTo('forgot', 'Forgot password?')]
          : [switchTo('sign-in', mode === 'forgot' ? 'Back to sign in' : 'I have an account: sign in')]
      )
    );
    form.addEventListener('submit', (event: Event) => {
      event.preventDefault();
      void this._submit(submit, label, error, info);
    });
    fill(this.node, form);
  }

  private async _submit(submit: HTMLButtonElement, label: string, error: HTMLElement, info: HTMLElement): Promise<void> {
    const { api } = this.options;
    const mode = this._mode;
    const email = this._email.value.trim();
    const password = this._password.value;
    if (!email || (mode !== 'forgot' && !password)) {
      error.textContent = mode === 'forgot' ? 'Enter your email address.' : 'Enter your email and password.';
      (email ? this._password : this._email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Please wait…';
    error.textContent = '';
    info.textContent = '';
    try {
      if (mode === 'sign-in') {
        await api.login(email, password);
        this._password.value = '';
      } else if (mode === 'sign-up') {
        await api.register({ email, password });
        this._password.value = '';
        this.setMode(
          'sign-in',
          `Account created. We sent a confirmation link to ${email}: open it, then sign in here.`
        );
        this.options.onMode?.('sign-in');
        this._password.focus();
        return;
      } else {
        await api.forgotPassword(email);
        this.setMode('sign-in', `If ${email} has an account, a link to choose a new password is on its way.`);
        this.options.onMode?.('sign-in');
        return;
      }
    } catch (err) {
      const e = err as ApiError;
      if (mode === 'sign-in' && e.status === 401) {
        error.textContent = 'Wrong email or password.';
      } else if (e.status === 0) {
        error.textContent = 'The qjm server cannot be reached. Is the qjm server extension running?';
      } else {
        error.textContent = errorText(e);
      }
      (e.field === 'email' ? this._email : mode === 'forgot' ? this._email : this._password).focus();
    } finally {
      if (submit.isConnected) {
        submit.disabled = false;
        submit.textContent = label;
      }
    }
  }

  private _mode: SignInMode = 'sign-in';
  private _email = h('input', {
    type: 'email',
    id: 'qjm-email',
    className: 'qjm-input',
    autocomplete: 'username',
    required: true
  });
  private _password = h('input', {
    type: 'password',
    id: 'qjm-password',
    className: 'qjm-input',
    autocomplete: 'current-password',
    required: true
  });
}
