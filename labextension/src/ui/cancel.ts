/**
 * "Cancel job", shared by the job list and the web UI's job page: confirm, ask the server
 * (IBM's cancel endpoint for IBM jobs; the kernel for local ones), show its answer, and
 * put the job as the server returns it into the feed so the row changes at once.
 */

import { cancelQuestion, Job } from '../model';
import type { JobPartOptions } from './parts';
import { errorText } from './widgets';

export async function cancelJob(
  options: Pick<JobPartOptions, 'api' | 'feed' | 'say' | 'confirm'>,
  job: Job
): Promise<boolean> {
  const { api, feed, say, confirm } = options;
  if (!(await confirm(cancelQuestion(job)))) {
    return false;
  }
  try {
    const result = await api.cancelJob(job.id);
    feed.upsert(result.job);
    say(result.state === 'cancelled' ? 'success' : 'info', `${job.job_id}: ${result.message}.`);
    return true;
  } catch (err) {
    say('error', `Could not cancel ${job.job_id}: ${errorText(err)}`);
    return false;
  }
}
