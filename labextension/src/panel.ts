/**
 * The "Quantum jobs" side panel: sign-in, the live job table, and the account section.
 *
 * The panel is plain DOM in a Lumino widget. It holds no job state of its own: the
 * `JobFeed` owns the list, and the panel re-renders from it. Decisions (merging,
 * chips, filters, key display) come from `model.ts`.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { bellIcon, deleteIcon, editIcon, LabIcon, refreshIcon, userIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ApiError, QJMApi } from './api';
import { fill, h } from './dom';
import { FeedState, JobFeed } from './feed';
import {
  chipClass,
  classifyStatus,
  countByStatus,
  DeliveryRecord,
  filterJobs,
  formatAgo,
  formatTime,
  Job,
  keySummary,
  orderStatuses,
  STATUSES,
  statusLabel,
  User
} from './model';

export const PANEL_ID = 'qjm-job-panel';

const ATOM_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="none" stroke="#616161" stroke-width="1.6">
<ellipse cx="12" cy="12" rx="10" ry="4"/>
<ellipse cx="12" cy="12" rx="10" ry="4" transform="rotate(60 12 12)"/>
<ellipse cx="12" cy="12" rx="10" ry="4" transform="rotate(120 12 12)"/></g>
<circle class="jp-icon3" fill="#616161" cx="12" cy="12" r="2"/></svg>`;

export const quantumJobsIcon = new LabIcon({ name: 'qjm-jupyter:atom', svgstr: ATOM_SVG });

type Notice = { kind: 'error' | 'info' | 'success'; text: string } | null;

export interface IPanelOptions {
  api: QJMApi;
  feed: JobFeed;
}

export class JobPanel extends Widget {
  constructor(options: IPanelOptions) {
    super();
    this._api = options.api;
    this._feed = options.feed;
    this.id = PANEL_ID;
    this.addClass('qjm-panel');
    this.title.icon = quantumJobsIcon;
    this.title.caption = 'Quantum jobs';

    this._search = h('input', {
      type: 'search',
      className: 'qjm-input qjm-search',
      id: 'qjm-search',
      placeholder: 'Search label, job id, backend',
      'aria-label': 'Search jobs by label, job id or backend',
      onInput: () => this._renderJobs()
    });

    this.node.append(
      this._header,
      this._banner,
      this._signin,
      h('div', { className: 'qjm-main' }, this._toolbar, this._tableWrap, this._account)
    );
    this._buildSignIn();

    this._feed.changed.connect(this._renderJobs, this);
    this._feed.stateChanged.connect(this._onFeedState, this);
    this._api.sessionChanged.connect(this._onSession, this);
    this._onSession();
    this._timeTicker = window.setInterval(() => {
      if (this.isVisible && this._api.signedIn) {
        this._renderJobs(); // "updated 2 min ago" stays true
      }
    }, 30000);
  }

  dispose(): void {
    window.clearInterval(this._timeTicker);
    super.dispose();
  }

  /** Show the sign-in form and put the cursor in it (the "sign in" command). */
  focusSignIn(): void {
    if (this._api.signedIn) {
      return;
    }
    this._email.focus();
  }

  /** Scroll to a job's row and flash it (a toast's "Show job" action). */
  highlight(id: string): void {
    this._filter.clear();
    this._search.value = '';
    this._renderJobs();
    const row = this._tbody.querySelector<HTMLElement>(`tr[data-job="${CSS.escape(id)}"]`);
    if (row) {
      row.scrollIntoView({ block: 'nearest' });
      row.classList.add('qjm-row-flash');
      window.setTimeout(() => row.classList.remove('qjm-row-flash'), 2500);
      row.querySelector<HTMLElement>('a, button')?.focus();
    }
  }

  // -- sign in ------------------------------------------------------------------------------

  private _buildSignIn(): void {
    const error = h('p', { className: 'qjm-form-error', role: 'alert', id: 'qjm-signin-error' });
    const submit = h('button', { type: 'submit', className: 'qjm-button qjm-button-accent' }, 'Sign in');
    const form = h(
      'form',
      { className: 'qjm-form', 'aria-labelledby': 'qjm-signin-title', novalidate: true },
      h('h3', { id: 'qjm-signin-title', className: 'qjm-section-title' }, 'Sign in to qjm'),
      h(
        'p',
        { className: 'qjm-muted' },
        'Use your qjm account to see your IBM Quantum jobs here and get a notice when they start, finish or fail.'
      ),
      h('label', { className: 'qjm-label', for: 'qjm-email' }, 'Email'),
      this._email,
      h('label', { className: 'qjm-label', for: 'qjm-password' }, 'Password'),
      this._password,
      error,
      h('div', { className: 'qjm-form-actions' }, submit)
    );
    form.addEventListener('submit', async (event: Event) => {
      event.preventDefault();
      const email = this._email.value.trim();
      const password = this._password.value;
      if (!email || !password) {
        error.textContent = 'Enter your email and password.';
        (email ? this._password : this._email).focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Signing in…';
      error.textContent = '';
      try {
        await this._api.login(email, password);
        this._password.value = '';
      } catch (err) {
        const e = err as ApiError;
        error.textContent =
          e.status === 401
            ? 'Wrong email or password.'
            : e.status === 429
              ? `Too many attempts. Try again in ${e.retryAfter ?? 60} s.`
              : e.status === 0
                ? 'The qjm server cannot be reached. Is the qjm server extension running?'
                : e.message;
        this._password.focus();
      } finally {
        submit.disabled = false;
        submit.textContent = 'Sign in';
      }
    });
    fill(this._signin, form);
  }

  private _onSession(): void {
    const signedIn = this._api.signedIn;
    this.node.classList.toggle('qjm-signed-in', signedIn);
    this._signin.hidden = signedIn;
    (this.node.querySelector('.qjm-main') as HTMLElement).hidden = !signedIn;
    this._user = null;
    this._log = null;
    this._editing = null;
    if (signedIn) {
      this._notice = null;
      void this._loadMe();
    } else if (this._api.expired) {
      this._notice = { kind: 'info', text: 'Your session has ended. Sign in again.' };
    }
    this._renderHeader();
    this._renderBanner();
    this._renderJobs();
    this._renderAccount();
  }

  // -- header and banner --------------------------------------------------------------------

  private _onFeedState(_: JobFeed, state: FeedState): void {
    this._renderHeader();
    this._renderBanner();
    if (state === 'live' && !this._feed.loaded) {
      this._renderJobs();
    }
  }

  private _renderHeader(): void {
    const state = this._api.signedIn ? this._feed.state : 'signed-out';
    const live: Record<FeedState, [string, string]> = {
      idle: ['Connecting', 'qjm-dot-idle'],
      live: ['Live', 'qjm-dot-live'],
      paused: ['Paused', 'qjm-dot-idle'],
      retrying: ['Offline', 'qjm-dot-error'],
      'signed-out': ['Signed out', 'qjm-dot-idle']
    };
    const [text, dot] = live[state];
    const buttons: HTMLElement[] = [];
    if (this._api.signedIn) {
      buttons.push(
        this._iconButton(refreshIcon, 'Refresh jobs', () => this._feed.refresh(), 'refresh'),
        this._iconButton(userIcon, 'Account and sign out', () => this._showAccount(), 'account')
      );
    }
    fill(
      this._header,
      h('h2', { className: 'qjm-title' }, 'Quantum jobs'),
      h(
        'span',
        {
          className: 'qjm-live',
          title: state === 'paused' ? 'Updates pause while this browser tab is hidden' : `Updates: ${text}`
        },
        h('span', { className: `qjm-dot ${dot}`, 'aria-hidden': 'true' }),
        text
      ),
      h('span', { className: 'qjm-spacer' }),
      buttons
    );
  }

  private _renderBanner(): void {
    let notice: Notice = this._notice;
    const problem = this._feed.problem;
    if (this._api.signedIn && problem && this._feed.state === 'retrying') {
      const secs = Math.round(this._feed.retryIn / 1000);
      const kind = classifyStatus(problem.status);
      const text =
        kind === 'unreachable'
          ? `Can't reach the qjm server. Retrying in ${secs} s.`
          : kind === 'throttled'
            ? `The server asked us to slow down. Retrying in ${secs} s.`
            : kind === 'server'
              ? `The qjm server failed (${problem.message}). Retrying in ${secs} s.`
              : `${problem.message}. Retrying in ${secs} s.`;
      notice = { kind: 'error', text };
    }
    this._banner.hidden = !notice;
    this._banner.className = `qjm-banner qjm-banner-${notice?.kind ?? 'info'}`;
    this._banner.setAttribute('role', notice?.kind === 'error' ? 'alert' : 'status');
    if (!notice) {
      fill(this._banner);
      return;
    }
    fill(
      this._banner,
      h('span', { className: 'qjm-banner-text' }, notice.text),
      h(
        'button',
        {
          type: 'button',
          className: 'qjm-button qjm-button-small',
          onClick: () => {
            if (notice === this._notice) {
              this._notice = null;
              this._renderBanner();
            } else {
              this._feed.refresh();
            }
          }
        },
        notice === this._notice ? 'Dismiss' : 'Retry now'
      )
    );
  }

  private _say(kind: 'error' | 'info' | 'success', text: string): void {
    this._notice = { kind, text };
    this._renderBanner();
  }

  // -- jobs ---------------------------------------------------------------------------------

  private _renderJobs(): void {
    if (!this._api.signedIn) {
      fill(this._toolbar);
      fill(this._tbody);
      return;
    }
    const focusKey = this._focusKey();
    const all = this._feed.jobs;
    const counts = countByStatus(all);
    const filterButtons = STATUSES.filter(s => counts.has(s) || this._filter.has(s)).map(s =>
      h(
        'button',
        {
          type: 'button',
          className: `qjm-filter ${this._filter.has(s) ? 'qjm-filter-on' : ''}`,
          'aria-pressed': this._filter.has(s) ? 'true' : 'false',
          'data-focus': `filter-${s}`,
          'data-status': s,
          onClick: () => {
            if (this._filter.has(s)) {
              this._filter.delete(s);
            } else {
              this._filter.add(s);
            }
            this._renderJobs();
          }
        },
        h('span', { className: `${chipClass(s)} qjm-chip-dot`, 'aria-hidden': 'true' }),
        `${statusLabel(s)} `,
        h('span', { className: 'qjm-count' }, String(counts.get(s) ?? 0))
      )
    );
    if (!this._toolbar.contains(this._search)) {
      fill(this._toolbar, this._search, this._filters);
    }
    fill(
      this._filters,
      filterButtons.length > 1 || this._filter.size > 0
        ? h('div', { className: 'qjm-filter-group', role: 'group', 'aria-label': 'Filter by status' }, filterButtons)
        : null
    );

    const shown = filterJobs(all, { statuses: this._filter, search: this._search.value });
    if (!this._feed.loaded) {
      this._tableWrap.replaceChildren(this._empty('Loading your jobs…', ''));
    } else if (all.length === 0) {
      this._tableWrap.replaceChildren(
        this._empty(
          'No jobs yet',
          'Jobs you submit from a notebook with the qjm magics (%qjm watch) or the JobManagerClient show up here, live.'
        )
      );
    } else if (shown.length === 0) {
      this._tableWrap.replaceChildren(this._empty('No job matches', 'Clear the search or the status filter.'));
    } else {
      fill(this._tbody, shown.map(job => this._row(job)));
      this._tableWrap.replaceChildren(this._table);
    }
    this._restoreFocus(focusKey);
  }

  private _empty(title: string, text: string): HTMLElement {
    return h(
      'div',
      { className: 'qjm-empty', role: 'status' },
      h('p', { className: 'qjm-empty-title' }, title),
      text ? h('p', { className: 'qjm-muted' }, text) : null
    );
  }

  private _row(job: Job): HTMLElement {
    const idNode = job.ibm_url
      ? h(
          'a',
          {
            className: 'qjm-job-id',
            href: job.ibm_url,
            target: '_blank',
            rel: 'noopener noreferrer',
            title: `${job.job_id}: open in IBM Quantum`,
            'data-focus': `link-${job.id}`
          },
          job.job_id
        )
      : h('span', { className: 'qjm-job-id', title: `${job.job_id} (local job: no IBM Quantum page)` }, job.job_id);
    const notify = orderStatuses(job.notify_status || []);
    const editing = this._editing === job.id;
    const history = (job.history || []).map(e => `${statusLabel(e.status)} ${formatTime(e.at)}`).join(' → ');
    // Cells are laid out as a card by CSS in a narrow side panel, and as table columns
    // when the panel is wide (a container query): the same markup serves both.
    return h(
      'tr',
      { className: `qjm-row ${editing ? 'qjm-row-editing' : ''}`, 'data-job': job.id, 'data-status': job.status },
      h(
        'td',
        { className: 'qjm-cell-label' },
        job.label
          ? h('span', { className: 'qjm-job-label', title: job.label }, job.label)
          : h('span', { className: 'qjm-job-label qjm-muted' }, 'Unlabelled job')
      ),
      h(
        'td',
        { className: 'qjm-cell-status' },
        h('span', { className: chipClass(job.status), title: history || undefined }, statusLabel(job.status))
      ),
      h(
        'td',
        { className: 'qjm-cell-id' },
        idNode,
        job.backend ? h('span', { className: 'qjm-backend', title: 'Backend' }, job.backend) : null
      ),
      h(
        'td',
        { className: 'qjm-cell-times' },
        h(
          'div',
          { className: 'qjm-job-times', title: history || undefined },
          `created ${formatTime(job.created || job.registered_at)} · updated ${formatAgo(job.updated_at)}`
        ),
        job.status === 'ERROR' && job.error_reason ? h('div', { className: 'qjm-job-error' }, job.error_reason) : null
      ),
      h(
        'td',
        { className: 'qjm-cell-notify' },
        editing
          ? this._notifyEditor(job)
          : h(
              'div',
              { className: 'qjm-notify', title: 'Statuses that send you an email and a Lab notice' },
              bellIcon.element({ tag: 'span', className: 'qjm-bell' }),
              notify.length
                ? h('span', { className: 'qjm-notify-list' }, notify.map(statusLabel).join(' · '))
                : h('span', { className: 'qjm-muted' }, 'Not watched')
            )
      ),
      h(
        'td',
        { className: 'qjm-cell-actions' },
        this._iconButton(
          editIcon,
          `Choose notices for ${job.job_id}`,
          () => {
            this._editing = editing ? null : job.id;
            this._draft = new Set(job.notify_status || []);
            this._renderJobs();
            this._tbody.querySelector<HTMLInputElement>(`tr[data-job="${CSS.escape(job.id)}"] input`)?.focus();
          },
          `edit-${job.id}`
        ),
        this._iconButton(deleteIcon, `Delete ${job.job_id} from qjm`, () => void this._delete(job), `delete-${job.id}`)
      )
    );
  }

  private _notifyEditor(job: Job): HTMLElement {
    const boxes = STATUSES.map(s => {
      const id = `qjm-notify-${job.id}-${s}`;
      return h(
        'label',
        { className: 'qjm-check', for: id },
        h('input', {
          type: 'checkbox',
          id,
          value: s,
          checked: this._draft.has(s),
          onChange: (e: Event) => {
            const box = e.target as HTMLInputElement;
            if (box.checked) {
              this._draft.add(s);
            } else {
              this._draft.delete(s);
            }
          }
        }),
        statusLabel(s)
      );
    });
    const save = async (statuses: string[]): Promise<void> => {
      try {
        this._feed.upsert(await this._api.updateJob(job.id, { notify_status: statuses }));
        this._editing = null;
        this._renderJobs();
        this._say('success', statuses.length ? `Notices saved for ${job.job_id}.` : `Stopped watching ${job.job_id}.`);
      } catch (err) {
        this._say('error', `Could not save notices: ${(err as ApiError).message}`);
      }
    };
    return h(
      'fieldset',
      { className: 'qjm-notify-editor' },
      h('legend', {}, 'Notify me when this job is'),
      h('div', { className: 'qjm-checks' }, boxes),
      h(
        'div',
        { className: 'qjm-form-actions' },
        h(
          'button',
          {
            type: 'button',
            className: 'qjm-button qjm-button-accent qjm-button-small',
            onClick: () => void save(orderStatuses(this._draft))
          },
          'Save'
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'qjm-button qjm-button-small',
            title: 'Keep the job listed, send no more notices',
            onClick: () => void save([])
          },
          'Unwatch'
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'qjm-button qjm-button-small qjm-button-quiet',
            'data-focus': `edit-${job.id}`,
            onClick: () => {
              this._editing = null;
              this._renderJobs();
            }
          },
          'Cancel'
        )
      )
    );
  }

  private async _delete(job: Job): Promise<void> {
    const result = await showDialog({
      title: 'Delete job from qjm?',
      body: `${job.label ? `"${job.label}" ` : ''}(${job.job_id}) will be removed from qjm with its history. The job itself on IBM Quantum is not touched.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await this._api.deleteJob(job.id);
      this._feed.remove(job.id);
    } catch (err) {
      const e = err as ApiError;
      if (e.status === 404) {
        this._feed.remove(job.id);
      } else {
        this._say('error', `Could not delete ${job.job_id}: ${e.message}`);
      }
    }
  }

  // -- account ------------------------------------------------------------------------------

  /** Open the account section and move focus there (the header's account button). */
  private _showAccount(): void {
    this._accountOpen = true;
    this._renderAccount();
    const summary = this._account.querySelector<HTMLElement>('summary');
    summary?.scrollIntoView({ block: 'start' });
    summary?.focus();
  }

  private async _loadMe(): Promise<void> {
    try {
      this._user = await this._api.me();
    } catch (err) {
      const e = err as ApiError;
      if (e.status !== 401) {
        this._accountError = e.message;
      }
    }
    this._renderAccount();
  }

  private _renderAccount(): void {
    const user = this._user;
    if (!this._api.signedIn) {
      fill(this._account);
      return;
    }
    const keyInput = h('input', {
      type: 'password',
      id: 'qjm-ibm-key',
      className: 'qjm-input',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: user?.ibm_key.set ? 'New API key to replace it' : 'Paste your IBM Quantum API key'
    });
    const saveKey = async (value: string | null): Promise<void> => {
      try {
        this._user = await this._api.updateMe({ ibm_quantum_token: value });
        keyInput.value = '';
        this._renderAccount();
        this._say('success', value === null ? 'IBM Quantum API key cleared.' : 'IBM Quantum API key saved.');
      } catch (err) {
        this._say('error', `Could not update the key: ${(err as ApiError).message}`);
      }
    };
    const keyForm = h(
      'form',
      { className: 'qjm-key-form' },
      h('label', { className: 'qjm-label', for: 'qjm-ibm-key' }, user?.ibm_key.set ? 'Replace API key' : 'Set API key'),
      h(
        'div',
        { className: 'qjm-inline' },
        keyInput,
        h('button', { type: 'submit', className: 'qjm-button qjm-button-accent qjm-button-small' }, 'Save')
      )
    );
    keyForm.addEventListener('submit', (e: Event) => {
      e.preventDefault();
      const value = keyInput.value.trim();
      if (value) {
        void saveKey(value);
      } else {
        keyInput.focus();
      }
    });

    const email = user?.email ?? this._api.email;
    const verified = user
      ? user.is_verified
        ? h('span', { className: 'qjm-chip qjm-chip-done' }, 'verified')
        : h('span', { className: 'qjm-chip qjm-chip-queued' }, 'not verified')
      : null;
    const resend =
      user && !user.is_verified
        ? h(
            'button',
            {
              type: 'button',
              className: 'qjm-button qjm-button-small',
              onClick: async () => {
                try {
                  await this._api.requestVerification(user.email);
                  this._say('info', `A verification email is on its way to ${user.email}.`);
                } catch (err) {
                  this._say('error', (err as ApiError).message);
                }
              }
            },
            'Resend verification'
          )
        : null;

    const log = h('details', { className: 'qjm-details qjm-log', open: this._logOpen });
    log.addEventListener('toggle', () => {
      this._logOpen = log.open;
      if (log.open) {
        void this._loadLog();
      }
    });
    fill(log, h('summary', {}, 'Email delivery log'), this._logBody);
    this._renderLog();

    const details = h(
      'details',
      { className: 'qjm-details', open: this._accountOpen },
      h('summary', {}, 'Account'),
      h(
        'dl',
        { className: 'qjm-facts' },
        h('dt', {}, 'Email'),
        h('dd', {}, h('span', { className: 'qjm-email' }, email), ' ', verified, ' ', resend),
        h('dt', {}, 'IBM Quantum key'),
        h(
          'dd',
          {},
          h('span', { className: 'qjm-key-summary' }, user ? keySummary(user.ibm_key) : '…'),
          user?.ibm_key.set
            ? h(
                'button',
                {
                  type: 'button',
                  className: 'qjm-button qjm-button-small qjm-button-quiet',
                  onClick: async () => {
                    const r = await showDialog({
                      title: 'Clear the IBM Quantum API key?',
                      body: 'qjm stops checking your IBM Quantum jobs until you set a key again.',
                      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Clear key' })]
                    });
                    if (r.button.accept) {
                      void saveKey(null);
                    }
                  }
                },
                'Clear'
              )
            : null
        )
      ),
      keyForm,
      h(
        'div',
        { className: 'qjm-form-actions qjm-account-actions' },
        h(
          'button',
          { type: 'button', className: 'qjm-button qjm-button-small', 'data-focus': 'signout', onClick: () => this._api.signOut() },
          'Sign out'
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'qjm-button qjm-button-small qjm-button-quiet',
            title: 'Revoke every qjm session of this account: other tabs, kernels and scripts must sign in again',
            onClick: () => void this._api.logoutEverywhere().catch(() => undefined)
          },
          'Sign out everywhere'
        )
      ),
      this._accountError ? h('p', { className: 'qjm-form-error' }, this._accountError) : null,
      log
    );
    details.addEventListener('toggle', () => {
      this._accountOpen = details.open;
    });
    fill(this._account, details);
  }

  private async _loadLog(): Promise<void> {
    try {
      this._log = (await this._api.notifications(20)).notifications;
      this._logError = '';
    } catch (err) {
      this._logError = (err as ApiError).message;
    }
    this._renderLog();
  }

  private _renderLog(): void {
    if (this._logError) {
      fill(this._logBody, h('p', { className: 'qjm-form-error' }, this._logError));
    } else if (this._log === null) {
      fill(this._logBody, h('p', { className: 'qjm-muted' }, 'Loading…'));
    } else if (this._log.length === 0) {
      fill(this._logBody, h('p', { className: 'qjm-muted' }, 'No email sent yet.'));
    } else {
      fill(
        this._logBody,
        h(
          'ul',
          { className: 'qjm-log-list' },
          this._log.map(n =>
            h(
              'li',
              { className: 'qjm-log-item' },
              h('span', { className: `qjm-chip qjm-mail-${n.state}` }, n.state),
              h('span', { className: 'qjm-log-subject', title: n.last_error || n.subject }, n.subject),
              h('span', { className: 'qjm-muted qjm-log-time' }, formatTime(n.sent_at || n.created_at))
            )
          )
        ),
        h(
          'button',
          { type: 'button', className: 'qjm-button qjm-button-small', onClick: () => void this._loadLog() },
          'Reload log'
        )
      );
    }
  }

  // -- helpers ------------------------------------------------------------------------------

  private _iconButton(icon: LabIcon, label: string, onClick: () => void, focusKey: string): HTMLElement {
    return h(
      'button',
      {
        type: 'button',
        className: 'qjm-icon-button',
        'aria-label': label,
        title: label,
        'data-focus': focusKey,
        onClick: () => onClick()
      },
      icon.element({ tag: 'span', className: 'qjm-icon' })
    );
  }

  /** Re-renders replace nodes; keep keyboard focus on "the same" control across them. */
  private _focusKey(): string | null {
    const active = document.activeElement as HTMLElement | null;
    return active && this.node.contains(active) ? active.getAttribute('data-focus') : null;
  }

  private _restoreFocus(key: string | null): void {
    if (!key) {
      return;
    }
    const active = document.activeElement as HTMLElement | null;
    if (active && this.node.contains(active) && active.getAttribute('data-focus') === key) {
      return;
    }
    this.node.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`)?.focus();
  }

  private _api: QJMApi;
  private _feed: JobFeed;
  private _user: User | null = null;
  private _accountError = '';
  private _log: DeliveryRecord[] | null = null;
  private _logError = '';
  private _logOpen = false;
  private _accountOpen = false;
  private _notice: Notice = null;
  private _editing: string | null = null;
  private _draft = new Set<string>();
  private _filter = new Set<string>();
  private _timeTicker: number;
  private _header = h('div', { className: 'qjm-header' });
  private _banner = h('div', { className: 'qjm-banner', hidden: true });
  private _signin = h('section', { className: 'qjm-signin' });
  private _toolbar = h('div', { className: 'qjm-toolbar' });
  private _filters = h('div', { className: 'qjm-filters' });
  private _tbody = h('tbody', {});
  private _table = h(
    'table',
    { className: 'qjm-table', 'aria-label': 'Your quantum jobs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Label'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Job id · backend'),
        h('th', { scope: 'col' }, 'Times'),
        h('th', { scope: 'col' }, 'Notify on'),
        h('th', { scope: 'col' }, h('span', { className: 'qjm-sr-only' }, 'Actions'))
      )
    ),
    this._tbody
  );
  private _tableWrap = h('div', { className: 'qjm-table-wrap' });
  private _account = h('section', { className: 'qjm-account', 'aria-label': 'Account' });
  private _logBody = h('div', { className: 'qjm-log-body' });
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
  private _search: HTMLInputElement;
}
