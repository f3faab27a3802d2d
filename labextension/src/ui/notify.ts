/** The per-job notify editor: which statuses send a notice, save, unwatch, cancel. */

import { h } from '../dom';
import { Job } from '../model';
import type { JobPartOptions } from './parts';
import { errorText, statusChecks } from './widgets';

/**
 * @param done called after a save (true) or cancel (false); the host re-renders.
 */
export function notifyEditor(
  job: Job,
  options: Pick<JobPartOptions, 'api' | 'feed' | 'say'>,
  done: (saved: boolean) => void
): HTMLElement {
  const { api, feed, say } = options;
  const checks = statusChecks(`qjm-notify-${job.id}`, job.notify_status || []);
  const save = async (statuses: string[]): Promise<void> => {
    try {
      feed.upsert(await api.updateJob(job.id, { notify_status: statuses }));
      done(true);
      say('success', statuses.length ? `Notices saved for ${job.job_id}.` : `Stopped watching ${job.job_id}.`);
    } catch (err) {
      say('error', `Could not save notices: ${errorText(err)}`);
    }
  };
  return h(
    'fieldset',
    { className: 'qjm-notify-editor' },
    h('legend', {}, 'Notify me when this job is'),
    checks.node,
    h(
      'div',
      { className: 'qjm-form-actions' },
      h(
        'button',
        {
          type: 'button',
          className: 'qjm-button qjm-button-accent qjm-button-small',
          onClick: () => void save(checks.values())
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
          onClick: () => done(false)
        },
        'Cancel'
      )
    )
  );
}
