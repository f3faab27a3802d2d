import { describe, expect, it } from 'vitest';

import { Job, LIST_FIELDS, mergeJobs, sortJobs, toastsFor } from '../src/model';
import { job } from './factory';

/** A job as the feed receives it: `GET jobs?fields=LIST_FIELDS`. */
function listed(full: Job): Job {
  const out: Record<string, unknown> = {};
  for (const name of LIST_FIELDS) {
    out[name] = full[name];
  }
  return out as unknown as Job;
}

describe('the list view (LIST_FIELDS) carries what the feed logic reads', () => {
  const before = [
    job({ id: 'a', created: null, registered_at: '2026-11-29T09:00:00.000Z', notify_status: ['RUNNING', 'ERROR'] }),
    job({ id: 'b', created: '2026-11-29T11:00:00.000Z', label: 'sweep', group: 'g' }),
    job({ id: 'c', source: 'local', ibm_url: null })
  ];
  const after = [
    job({
      id: 'a',
      created: null,
      registered_at: '2026-11-29T09:00:00.000Z',
      notify_status: ['RUNNING', 'ERROR'],
      status: 'ERROR',
      error_reason: 'boom',
      updated_at: '2026-11-29T12:00:00.000Z',
      history: [
        { status: 'QUEUED', at: '2026-11-29T10:00:00.000Z' },
        { status: 'RUNNING', at: '2026-11-29T10:01:00.000Z' },
        { status: 'ERROR', at: '2026-11-29T10:02:00.000Z', reason: 'boom' }
      ]
    }),
    job({
      id: 'c',
      source: 'local',
      ibm_url: null,
      status: 'DONE',
      updated_at: '2026-11-29T12:00:00.000Z',
      history: [{ status: 'QUEUED', at: '2026-11-29T10:00:00.000Z' }, { status: 'DONE', at: '2026-11-29T10:03:00.000Z' }]
    })
  ];

  it('gives the same toasts, order and merge as whole records', () => {
    const held = (jobs: Job[]): Map<string, Job> => new Map(jobs.map(j => [j.id, j] as [string, Job]));
    const full = toastsFor(held(before), after);
    expect(full.map(t => [t.jobId, t.status])).toEqual([
      ['a', 'RUNNING'],
      ['a', 'ERROR'],
      ['c', 'DONE']
    ]);
    expect(toastsFor(held(before.map(listed)), after.map(listed))).toEqual(full);
    expect(sortJobs(before.map(listed)).map(j => j.id)).toEqual(sortJobs(before).map(j => j.id));
    expect(mergeJobs(before.map(listed), after.map(listed)).map(j => [j.id, j.status])).toEqual(
      mergeJobs(before, after).map(j => [j.id, j.status])
    );
  });

  it('leaves out only what a list does not show', () => {
    const omitted = Object.keys(job()).filter(k => !(LIST_FIELDS as readonly string[]).includes(k));
    expect(omitted.sort()).toEqual(['channel', 'instance', 'last_error', 'last_poll_at']);
  });
});
