/** Administrators' pages: every account (activate, deactivate, promote) and every job. */

import type { QJMApi } from '../api';
import { fill, h } from '../dom';
import { chipClass, formatAgo, formatTime, Job, statusLabel, User } from '../model';
import type { Say } from '../ui/parts';
import { button, errorText } from '../ui/widgets';

const yesNo = (v: boolean): HTMLElement =>
  h('span', { className: `qjm-chip ${v ? 'qjm-chip-done' : 'qjm-chip-unknown'}` }, v ? 'yes' : 'no');

export class AdminUsers {
  readonly node = h('section', { className: 'qjm-admin', 'aria-labelledby': 'qjm-admin-users' });

  constructor(
    private readonly api: QJMApi,
    private readonly say: Say,
    private readonly me: () => User | null
  ) {}

  async load(): Promise<void> {
    this._render(null, '');
    try {
      const list = await this.api.adminUsers();
      this._users = list.users;
      this._total = list.total;
      this._render(this._users, '');
    } catch (err) {
      this._render(null, errorText(err));
    }
  }

  private async _patch(user: User, patch: { is_active?: boolean; is_admin?: boolean }, done: string): Promise<void> {
    try {
      const updated = await this.api.adminUpdateUser(user.id, patch);
      this._users = (this._users ?? []).map(u => (u.id === updated.id ? updated : u));
      this._render(this._users, '');
      this.say('success', done);
      this.node.querySelector<HTMLElement>(`tr[data-user="${CSS.escape(user.id)}"] button`)?.focus();
    } catch (err) {
      this.say('error', `Not changed: ${errorText(err)}`);
    }
  }

  private _render(users: User[] | null, error: string): void {
    const me = this.me();
    const rows = (users ?? []).map(u =>
      h(
        'tr',
        { 'data-user': u.id },
        h('th', { scope: 'row', className: 'qjm-admin-email' }, u.email),
        h('td', { 'data-label': 'Verified' }, yesNo(u.is_verified)),
        h('td', { 'data-label': 'Active' }, yesNo(u.is_active)),
        h('td', { 'data-label': 'Admin' }, yesNo(u.is_admin)),
        h('td', { 'data-label': 'Since' }, formatTime(u.created_at)),
        h(
          'td',
          { className: 'qjm-admin-actions' },
          u.id === me?.id
            ? h('span', { className: 'qjm-muted' }, 'you')
            : [
                u.is_active
                  ? button('Deactivate', () => void this._patch(u, { is_active: false }, `${u.email} deactivated.`), {
                      'aria-label': `Deactivate ${u.email}`
                    })
                  : button('Activate', () => void this._patch(u, { is_active: true }, `${u.email} activated.`), {
                      'aria-label': `Activate ${u.email}`
                    }),
                u.is_admin
                  ? button('Demote', () => void this._patch(u, { is_admin: false }, `${u.email} is no longer an admin.`), {
                      'aria-label': `Demote ${u.email}`,
                      className: 'qjm-button-quiet'
                    })
                  : button('Promote', () => void this._patch(u, { is_admin: true }, `${u.email} is now an admin.`), {
                      'aria-label': `Promote ${u.email} to admin`,
                      className: 'qjm-button-quiet'
                    })
              ]
        )
      )
    );
    fill(
      this.node,
      h('h1', { className: 'qjm-page-title', id: 'qjm-admin-users', tabindex: '-1' }, 'Users'),
      error ? h('p', { className: 'qjm-form-error', role: 'alert' }, error) : null,
      users === null && !error ? h('p', { className: 'qjm-muted', role: 'status' }, 'Loading…') : null,
      users
        ? [
            h('p', { className: 'qjm-muted' }, `${this._total} account${this._total === 1 ? '' : 's'}`),
            h(
              'table',
              { className: 'qjm-admin-table', 'aria-label': 'Accounts' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Email', 'Verified', 'Active', 'Admin', 'Since'].map(t => h('th', { scope: 'col' }, t)),
                  h('th', { scope: 'col' }, h('span', { className: 'qjm-sr-only' }, 'Actions'))
                )
              ),
              h('tbody', {}, rows)
            )
          ]
        : null
    );
  }

  private _users: User[] | null = null;
  private _total = 0;
}

export class AdminJobs {
  readonly node = h('section', { className: 'qjm-admin', 'aria-labelledby': 'qjm-admin-jobs' });

  constructor(private readonly api: QJMApi) {}

  async load(): Promise<void> {
    this._render(null, '', 0);
    try {
      const list = await this.api.adminJobs({ limit: 200, total: 'exact' }); // "N jobs over every account"
      this._render(list.jobs, '', list.total);
    } catch (err) {
      this._render(null, errorText(err), 0);
    }
  }

  private _render(jobs: Job[] | null, error: string, total: number): void {
    fill(
      this.node,
      h('h1', { className: 'qjm-page-title', id: 'qjm-admin-jobs', tabindex: '-1' }, 'All jobs'),
      h('div', { className: 'qjm-form-actions' }, button('Reload', () => void this.load())),
      error ? h('p', { className: 'qjm-form-error', role: 'alert' }, error) : null,
      jobs === null && !error ? h('p', { className: 'qjm-muted', role: 'status' }, 'Loading…') : null,
      jobs
        ? [
            h('p', { className: 'qjm-muted' }, `${total} job${total === 1 ? '' : 's'} over every account (newest 200 shown)`),
            h(
              'table',
              { className: 'qjm-admin-table', 'aria-label': 'Every job' },
              h('thead', {}, h('tr', {}, ['Label', 'Status', 'Job id', 'Backend', 'Updated'].map(t => h('th', { scope: 'col' }, t)))),
              h(
                'tbody',
                {},
                jobs.map(j =>
                  h(
                    'tr',
                    { 'data-job': j.id },
                    h('th', { scope: 'row' }, j.label || h('span', { className: 'qjm-muted' }, 'Unlabelled')),
                    h('td', { 'data-label': 'Status' }, h('span', { className: chipClass(j.status) }, statusLabel(j.status))),
                    h('td', { 'data-label': 'Job id', className: 'qjm-job-id' }, j.job_id),
                    h('td', { 'data-label': 'Backend' }, j.backend || '—'),
                    h('td', { 'data-label': 'Updated' }, formatAgo(j.updated_at))
                  )
                )
              )
            )
          ]
        : null
    );
  }
}
