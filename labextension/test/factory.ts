import type { Job } from '../src/model';

/** A job as the server sends it (an IBM job, queued); tests override what they need. */
export function job(over: Partial<Job> = {}): Job {
  const id = over.id ?? 'j1';
  return {
    id,
    job_id: `ibm-${id}`,
    backend: 'ibm_kyiv',
    instance: null,
    channel: null,
    source: 'ibm',
    created: '2026-11-29T10:00:00.000Z',
    notify_status: ['DONE', 'ERROR', 'CANCELLED'],
    label: null,
    group: null,
    status: 'QUEUED',
    history: [{ status: 'QUEUED', at: '2026-11-29T10:00:00.000Z' }],
    watch_state: 'active',
    error_reason: null,
    last_poll_at: null,
    last_error: null,
    registered_at: '2026-11-29T10:00:00.000Z',
    updated_at: '2026-11-29T10:00:00.000Z',
    ibm_url: `https://quantum.cloud.ibm.com/jobs/ibm-${id}`,
    ...over
  };
}
