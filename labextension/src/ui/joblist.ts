/**
 * The live job list: search, status filters, one row per job with its notify editor,
 * unwatch and delete. It holds no job state: the `JobFeed` owns the list, and this part
 * re-renders from it. The Lab panel and the web UI's jobs page both show this part.
 */

import { ApiError } from '../api';
import { fill, h } from '../dom';
import {
  canCancel,
  chipClass,
  countByStatus,
  FINAL_STATUSES,
  filterJobs,
  formatAgo,
  formatTime,
  Job,
  orderStatuses,
  STATUSES,
  statusLabel
} from '../model';
import { cancelJob } from './cancel';
import { notifyEditor } from './notify';
import type { JobPartOptions } from './parts';
import { errorText, focusKey, iconButton, restoreFocus } from './widgets';

export class JobList {
  readonly node = h('section', { className: 'qjm-jobs', 'aria-label': 'Jobs' });

  constructor(private readonly options: JobPartOptions) {
    this._search = h('input', {
      type: 'search',
      className: 'qjm-input qjm-search',
      id: 'qjm-search',
      placeholder: 'Search label, job id, backend, group',
      'aria-label': 'Search jobs by label, job id or backend',
      onInput: () => this.render()
    });
    this.node.append(this._toolbar, this._tableWrap);
    options.feed.changed.connect(this.render, this);
  }

  dispose(): void {
    this.options.feed.changed.disconnect(this.render, this);
  }

  /** Show only what matches (an emailed group link fills the search with the group). */
  setSearch(text: string): void {
    this._search.value = text;
    this.render();
  }

  /** Scroll to a job's row and flash it (a toast's "Show job", an emailed link). */
  highlight(id: string): boolean {
    this._filter.clear();
    this._search.value = '';
    this.render();
    const row = this._tbody.querySelector<HTMLElement>(`tr[data-job="${CSS.escape(id)}"]`);
    if (!row) {
      return false;
    }
    row.scrollIntoView({ block: 'nearest' });
    row.classList.add('qjm-row-flash');
    window.setTimeout(() => row.classList.remove('qjm-row-flash'), 2500);
    row.querySelector<HTMLElement>('a, button')?.focus();
    return true;
  }

  render(): void {
    const { api, feed } = this.options;
    if (!api.signedIn) {
      fill(this._toolbar);
      fill(this._tbody);
      this._tableWrap.replaceChildren();
      return;
    }
    const key = focusKey(this.node);
    const all = feed.jobs;
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
            this.render();
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
    if (!feed.loaded) {
      this._tableWrap.replaceChildren(empty('Loading your jobs…', ''));
    } else if (all.length === 0) {
      this._tableWrap.replaceChildren(
        empty(
          'No jobs yet',
          'Jobs you submit from a notebook with the qjm magics (%qjm_watch) or the JobManagerClient show up here, live.'
        )
      );
    } else if (shown.length === 0) {
      this._tableWrap.replaceChildren(empty('No job matches', 'Clear the search or the status filter.'));
    } else {
      fill(this._tbody, shown.map(job => this._row(job)));
      this._tableWrap.replaceChildren(this._table);
    }
    restoreFocus(this.node, key);
  }

  private _row(job: Job): HTMLElement {
    const { icons } = this.options;
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
    const href = this.options.jobHref?.(job) ?? null;
    const labelText = job.label || 'Unlabelled job';
    const label = href
      ? h(
          'a',
          {
            className: `qjm-job-label qjm-job-page ${job.label ? '' : 'qjm-muted'}`,
            href,
            title: `${labelText}: details and timeline`,
            'data-focus': `page-${job.id}`
          },
          labelText
        )
      : h('span', { className: `qjm-job-label ${job.label ? '' : 'qjm-muted'}`, title: job.label || undefined }, labelText);
    // Cells are laid out as a card by CSS in a narrow side panel, and as table columns
    // when the panel is wide (a container query): the same markup serves both.
    return h(
      'tr',
      { className: `qjm-row ${editing ? 'qjm-row-editing' : ''}`, 'data-job': job.id, 'data-status': job.status },
      h('td', { className: 'qjm-cell-label' }, label, job.group ? h('span', { className: 'qjm-tag', title: 'Group' }, job.group) : null),
      h(
        'td',
        { className: 'qjm-cell-status' },
        h('span', { className: chipClass(job.status), title: history || undefined }, statusLabel(job.status)),
        cancelPending(job)
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
          ? notifyEditor(job, this.options, () => {
              this._editing = null;
              this.render();
            })
          : h(
              'div',
              { className: 'qjm-notify', title: 'Statuses that send you an email and a notice' },
              h('span', { className: 'qjm-bell', 'aria-hidden': 'true' }, icons.bell()),
              notify.length
                ? h('span', { className: 'qjm-notify-list' }, notify.map(statusLabel).join(' · '))
                : h('span', { className: 'qjm-muted' }, 'Not watched')
            )
      ),
      h(
        'td',
        { className: 'qjm-cell-actions' },
        iconButton(
          icons.edit(),
          `Choose notices for ${job.job_id}`,
          () => {
            this._editing = editing ? null : job.id;
            this.render();
            this._tbody.querySelector<HTMLInputElement>(`tr[data-job="${CSS.escape(job.id)}"] input`)?.focus();
          },
          `edit-${job.id}`
        ),
        canCancel(job)
          ? iconButton(icons.stop(), `Cancel job ${job.job_id}`, () => void cancelJob(this.options, job), `cancel-${job.id}`)
          : null,
        iconButton(icons.remove(), `Delete ${job.job_id} from qjm`, () => void this._delete(job), `delete-${job.id}`)
      )
    );
  }

  private async _delete(job: Job): Promise<void> {
    const { api, feed, say, confirm } = this.options;
    const ok = await confirm({
      title: 'Delete job from qjm?',
      body: `${job.label ? `"${job.label}" ` : ''}(${job.job_id}) will be removed from qjm with its history. The job itself on IBM Quantum is not touched.`,
      accept: 'Delete'
    });
    if (!ok) {
      return;
    }
    await deleteJob(api, feed, say, job);
  }

  private _search: HTMLInputElement;
  private _editing: string | null = null;
  private _filter = new Set<string>();
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
}

/** Delete a job and drop it from the feed (a 404: someone else deleted it already). */
export async function deleteJob(
  api: JobPartOptions['api'],
  feed: JobPartOptions['feed'],
  say: JobPartOptions['say'],
  job: Job
): Promise<boolean> {
  try {
    await api.deleteJob(job.id);
    feed.remove(job.id);
    return true;
  } catch (err) {
    if ((err as ApiError).status === 404) {
      feed.remove(job.id);
      return true;
    }
    say('error', `Could not delete ${job.job_id}: ${errorText(err)}`);
    return false;
  }
}

/** "cancel requested" while IBM or the kernel has yet to act on a cancel. */
export function cancelPending(job: Job): HTMLElement | null {
  return job.cancel_requested_at && !FINAL_STATUSES.has(job.status)
    ? h('span', { className: 'qjm-tag qjm-cancel-pending', title: `Cancel requested ${formatTime(job.cancel_requested_at)}` }, 'cancel requested')
    : null;
}

function empty(title: string, text: string): HTMLElement {
  return h(
    'div',
    { className: 'qjm-empty', role: 'status' },
    h('p', { className: 'qjm-empty-title' }, title),
    text ? h('p', { className: 'qjm-muted' }, text) : null
  );
}
