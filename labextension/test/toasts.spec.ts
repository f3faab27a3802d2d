import { describe, expect, it } from 'vitest';

import { desktopNotification, Job, toastsFor } from '../src/model';
import { job as makeJob } from './factory';

/** A local simulator job (the shared factory makes IBM jobs). */
function job(over: Partial<Job> = {}): Job {
  return makeJob({ job_id: 'sim-1', backend: 'aer_simulator', channel: 'local', source: 'local', created: null,
    notify_status: ['RUNNING', 'DONE'], label: 'bell', ibm_url: null, ...over });
}

describe('a toast for every requested status', () => {
  it('announces RUNNING even when the job also finished before the next poll', () => {
    const before = job();
    const after = job({
      status: 'DONE',
      history: [
        ...before.history,
        { status: 'RUNNING', at: '2026-11-29T10:00:01.000Z' },
        { status: 'DONE', at: '2026-11-29T10:00:02.000Z' }
      ]
    });
    const toasts = toastsFor(new Map([[before.id, before]]), [after]);
    expect(toasts.map(t => t.status)).toEqual(['RUNNING', 'DONE']);
    expect(toasts[0].message).toBe('Local simulator job bell (sim-1) is running');
    expect(toasts[1].kind).toBe('success');
  });

  it('announces a RUNNING the poller skipped but DONE implies (as the server mails it)', () => {
    const before = job({ source: 'ibm', ibm_url: 'https://quantum.cloud.ibm.com/workloads/d1' });
    const after = job({
      source: 'ibm',
      ibm_url: before.ibm_url,
      status: 'DONE',
      history: [...before.history, { status: 'DONE', at: '2026-11-29T10:05:00.000Z' }]
    });
    const toasts = toastsFor(new Map([[before.id, before]]), [after]);
    expect(toasts.map(t => t.status)).toEqual(['RUNNING', 'DONE']);
    expect(toasts[0].message).toBe('IBM Quantum job bell (sim-1) is running');
  });

  it('does not invent RUNNING for a job cancelled in the queue, nor toast unwanted statuses', () => {
    const before = job({ notify_status: ['RUNNING', 'CANCELLED'] });
    const after = job({
      notify_status: ['RUNNING', 'CANCELLED'],
      status: 'CANCELLED',
      history: [...before.history, { status: 'CANCELLED', at: '2026-11-29T10:05:00.000Z' }]
    });
    expect(toastsFor(new Map([[before.id, before]]), [after]).map(t => t.status)).toEqual(['CANCELLED']);
    const quiet = job({ notify_status: ['DONE'], status: 'RUNNING', history: [...before.history, { status: 'RUNNING', at: 'x' }] });
    expect(toastsFor(new Map([[before.id, job({ notify_status: ['DONE'] })]]), [quiet])).toEqual([]);
  });
});

describe('desktop notifications', () => {
  const toast = { jobId: 'j1', status: 'DONE', kind: 'success' as const, message: 'IBM Quantum job bell is done', url: null };

  it('only when the user turned them on, the browser granted it, and the tab is hidden', () => {
    expect(desktopNotification(toast, { enabled: true, permission: 'granted', hidden: true })).toEqual({
      title: 'Quantum job done',
      body: 'IBM Quantum job bell is done',
      tag: 'qjm:j1:DONE'
    });
    expect(desktopNotification(toast, { enabled: true, permission: 'granted', hidden: false })).toBeNull();
    expect(desktopNotification(toast, { enabled: true, permission: 'default', hidden: true })).toBeNull();
    expect(desktopNotification(toast, { enabled: false, permission: 'granted', hidden: true })).toBeNull();
  });
});
