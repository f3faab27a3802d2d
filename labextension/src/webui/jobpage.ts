/** `qjm/jobs/{id}`: one job, its facts, its notices and its status timeline, live. */

import { ApiError } from '../api';
import { fill, h } from '../dom';
import { canCancel, chipClass, formatAgo, formatTime, Job, orderStatuses, statusLabel } from '../model';
import { cancelJob } from '../ui/cancel';
import { cancelPending, deleteJob } from '../ui/joblist';
import { notifyEditor } from '../ui/notify';
import type { JobPartOptions } from '../ui/parts';
import { button, errorText, focusKey, restoreFocus } from '../ui/widgets';

export interface JobPageOptions extends JobPartOptions {
  /** Where to go after the job is deleted. */
  onDeleted: () => void;
  allJobsHref: string;
}

export class JobPage {
  readonly node = h('article', { className: 'qjm-job-page' });

  constructor(
    private readonly id: string,
    private readonly options: JobPageOptions
  ) {
    options.feed.changed.connect(this._fromFeed, this);
    this._fromFeed();
  }

  dispose(): void {
    this.options.feed.changed.disconnect(this._fromFeed, this);
  }

  /**
   * The feed holds the newest copy of a listed job, with the fields a list shows
   * (LIST_FIELDS); the full record (instance, poll details) is read once, and the feed's
   * newer fields are laid over it. A job the feed lacks is read once too.
   */
  private _fromFeed(): void {
    const job = this.options.feed.jobs.find(j => j.id === this.id || j.job_id === this.id);
    if (job) {
      const full = this._full;
      this._job = full && full.updated_at > job.updated_at ? { ...job, ...full } : { ...full, ...job };
      this._missing = '';
      this.render();
      if (!this._fetched && this.options.api.signedIn) {
        this._fetched = true;
        this.options.api.job(job.id).then(
          j => {
            this._full = j;
            this._fromFeed();
          },
          () => undefined // the listed fields are shown; the rest stays unknown
        );
      }
    } else if (!this._fetched && this.options.api.signedIn) {
      this._fetched = true;
      this.render();
      this.options.api.job(this.id).then(
        j => {
          this._job = this._full = j;
          this.render();
        },
        (err: ApiError) => {
          this._missing = err.status === 404 ? 'No such job: it was deleted, or it belongs to another account.' : errorText(err);
          this.render();
        }
      );
    } else if (this._job && this.options.feed.loaded && !this._missing) {
      // Listed before and gone now: deleted elsewhere.
      this._missing = 'This job was deleted.';
      this.render();
    }
  }

  /** Drawn again on every feed change and when the full record arrives: the focus (the
   * heading, after navigation) stays where it was. */
  render(): void {
    const key = focusKey(this.node);
    this._render();
    restoreFocus(this.node, key);
  }

  private _render(): void {
    const back = h('a', { href: this.options.allJobsHref, className: 'qjm-back' }, '← All jobs');
    const job = this._job;
    if (!job) {
      fill(
        this.node,
        back,
        h('h1', { className: 'qjm-page-title', tabindex: '-1', 'data-focus': 'title' }, 'Job'),
        h('p', { className: this._missing ? 'qjm-form-error' : 'qjm-muted', role: 'status' }, this._missing || 'Loading…')
      );
      return;
    }
    const title = job.label || job.job_id;
    const idNode = job.ibm_url
      ? h('a', { href: job.ibm_url, target: '_blank', rel: 'noopener noreferrer' }, job.job_id)
      : h('span', {}, job.job_id, h('span', { className: 'qjm-muted' }, ' (local job)'));
    const fact = (name: string, value: Node | string | null): (HTMLElement | null)[] =>
      value === null || value === '' ? [null] : [h('dt', {}, name), h('dd', {}, value)];
    const notify = orderStatuses(job.notify_status || []);
    const notices = this._editing
      ? notifyEditor(job, this.options, () => {
          this._editing = false;
          this.render();
        })
      : h(
          'p',
          { className: 'qjm-notify' },
          notify.length ? `Notify on: ${notify.map(statusLabel).join(' · ')}` : 'Not watched: no notices.',
          ' ',
          button('Change notices', () => {
            this._editing = true;
            this.render();
            this.node.querySelector<HTMLInputElement>('.qjm-notify-editor input')?.focus();
          })
        );
    const history = job.history || [];
    fill(
      this.node,
      back,
      this._missing ? h('p', { className: 'qjm-form-error', role: 'status' }, this._missing) : null,
      h(
        'header',
        { className: 'qjm-job-head' },
        h('h1', { className: 'qjm-page-title', tabindex: '-1', 'data-focus': 'title' }, title),
        h('span', { className: chipClass(job.status), 'data-status': job.status }, statusLabel(job.status)),
        cancelPending(job)
      ),
      job.status === 'ERROR' && job.error_reason ? h('p', { className: 'qjm-job-error' }, job.error_reason) : null,
      h(
        'dl',
        { className: 'qjm-facts qjm-job-facts' },
        fact('IBM job id', idNode),
        fact('Backend', job.backend),
        fact('Instance', job.instance),
        fact('Group', job.group),
        fact('Watching', job.watch_state),
        fact('Created', formatTime(job.created || job.registered_at)),
        fact('Last checked', job.last_poll_at ? formatAgo(job.last_poll_at) : null),
        fact('Updated', formatAgo(job.updated_at)),
        fact('Last problem', job.last_error)
      ),
      h('section', { 'aria-labelledby': 'qjm-notices-title' }, h('h2', { id: 'qjm-notices-title', className: 'qjm-section-title' }, 'Notices'), notices),
      h(
        'section',
        { 'aria-labelledby': 'qjm-timeline-title' },
        h('h2', { id: 'qjm-timeline-title', className: 'qjm-section-title' }, 'Timeline'),
        history.length
          ? h(
              'ol',
              { className: 'qjm-timeline' },
              history.map(e =>
                h(
                  'li',
                  { className: 'qjm-timeline-item', 'data-status': e.status },
                  h('span', { className: chipClass(e.status) }, statusLabel(e.status)),
                  h('time', { datetime: e.at, className: 'qjm-muted' }, formatTime(e.at)),
                  e.reason ? h('span', { className: 'qjm-timeline-reason' }, e.reason) : null
                )
              )
            )
          : h('p', { className: 'qjm-muted' }, 'No status seen yet.')
      ),
      h(
        'div',
        { className: 'qjm-form-actions' },
        canCancel(job) ? button('Cancel job', () => void cancelJob(this.options, job), { 'data-focus': 'cancel-job' }) : null,
        button(
          'Delete from qjm',
          async () => {
            const ok = await this.options.confirm({
              title: 'Delete job from qjm?',
              body: `${title} (${job.job_id}) will be removed from qjm with its history. The job on IBM Quantum is not touched.`,
              accept: 'Delete'
            });
            if (ok && (await deleteJob(this.options.api, this.options.feed, this.options.say, job))) {
              this.options.say('success', `Deleted ${job.job_id} from qjm.`);
              this.options.onDeleted();
            }
          },
          { className: 'qjm-button-danger' }
        )
      )
    );
  }

  private _job: Job | null = null;
  private _full: Job | null = null;
  private _fetched = false;
  private _missing = '';
  private _editing = false;
}
