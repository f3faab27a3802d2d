import { describe, expect, it } from 'vitest';

import { encodeQuery } from '../src/api';
import {
  applyChanges,
  chipClass,
  CURSOR_MAX_AGE_MS,
  cursorExpired,
  classifyStatus,
  enteredStatuses,
  filterJobs,
  formatAgo,
  keySummary,
  mergeJobs,
  nextDelay,
  orderStatuses,
  POLL_BASE_MS,
  POLL_MAX_MS,
  toastsFor
} from '../src/model';
import { job } from './factory';


describe('mergeJobs', () => {
  it('adds new jobs and replaces changed ones, newest first', () => {
    const a = job({ id: 'a', created: '2026-11-29T09:00:00.000Z' });
    const b = job({ id: 'b', created: '2026-11-29T11:00:00.000Z' });
    const a2 = { ...a, status: 'RUNNING', updated_at: '2026-11-29T12:00:00.000Z' };
    const merged = mergeJobs([a], [b, a2]);
    expect(merged.map(j => j.id)).toEqual(['b', 'a']);
    expect(merged[1].status).toBe('RUNNING');
  });

  it('never rolls a row back to an older record', () => {
    const fresh = job({ status: 'DONE', updated_at: '2026-11-29T12:00:00.000Z' });
    const stale = job({ status: 'RUNNING', updated_at: '2026-11-29T11:00:00.000Z' });
    expect(mergeJobs([fresh], [stale])[0].status).toBe('DONE');
  });

  it('is idempotent for a repeated page', () => {
    const page = [job({ id: 'a' }), job({ id: 'b' })];
    const once = mergeJobs([], page);
    expect(mergeJobs(once, page)).toEqual(once);
  });
});

describe('applyChanges', () => {
  it('drops the rows the feed reports deleted and merges the rest', () => {
    const a = job({ id: 'a', created: '2026-11-29T09:00:00.000Z' });
    const b = job({ id: 'b', created: '2026-11-29T10:00:00.000Z' });
    const c = job({ id: 'c', created: '2026-11-29T11:00:00.000Z' });
    const b2 = { ...b, status: 'DONE', updated_at: '2026-11-29T12:00:00.000Z' };
    const next = applyChanges([a, b, c], [b2], ['a', 'not-held']);
    expect(next.map(j => j.id)).toEqual(['c', 'b']);
    expect(next[1].status).toBe('DONE');
  });

  it('lets a deletion win over a change in the same answer', () => {
    const a = job({ id: 'a' });
    const a2 = { ...a, status: 'RUNNING', updated_at: '2026-11-29T12:00:00.000Z' };
    expect(applyChanges([a], [a2], ['a'])).toEqual([]);
  });

  it('is mergeJobs when nothing was deleted, and idempotent for a repeated answer', () => {
    const page = [job({ id: 'a' }), job({ id: 'b' })];
    expect(applyChanges([], page)).toEqual(mergeJobs([], page));
    const once = applyChanges(page, [], ['a']);
    expect(applyChanges(once, [], ['a'])).toEqual(once);
    expect(once.map(j => j.id)).toEqual(['b']);
  });
});

describe('cursorExpired', () => {
  const now = new Date('2026-12-10T00:00:00.000Z');
  it('keeps a recent cursor and reloads one older than the server remembers deletions', () => {
    expect(cursorExpired(null, now)).toBe(false);
    expect(cursorExpired('2026-12-09T23:59:59.000Z', now)).toBe(false);
    expect(cursorExpired(new Date(now.getTime() - CURSOR_MAX_AGE_MS).toISOString(), now)).toBe(false);
    expect(cursorExpired(new Date(now.getTime() - CURSOR_MAX_AGE_MS - 1).toISOString(), now)).toBe(true);
    expect(cursorExpired('garbage', now)).toBe(true);
  });
});

describe('chipClass', () => {
  it('maps every status to its own chip and unknown ones to a neutral chip', () => {
    expect(chipClass('DONE')).toBe('qjm-chip qjm-chip-done');
    expect(chipClass('ERROR')).toBe('qjm-chip qjm-chip-error');
    expect(chipClass('running')).toBe('qjm-chip qjm-chip-running');
    expect(chipClass('WEIRD')).toBe('qjm-chip qjm-chip-unknown');
    expect(chipClass('')).toBe('qjm-chip qjm-chip-unknown');
  });
});

describe('filterJobs', () => {
  const jobs = [
    job({ id: 'a', label: 'Bell state', status: 'DONE' }),
    job({ id: 'b', label: 'GHZ sweep', status: 'RUNNING', backend: 'ibm_torino' }),
    job({ id: 'c', label: null, status: 'ERROR' })
  ];

  it('filters by status set and by search over label, job id and backend', () => {
    expect(filterJobs(jobs, { statuses: new Set(), search: '' })).toHaveLength(3);
    expect(filterJobs(jobs, { statuses: new Set(['DONE', 'ERROR']), search: '' }).map(j => j.id)).toEqual(['a', 'c']);
    expect(filterJobs(jobs, { statuses: new Set(), search: 'bell' }).map(j => j.id)).toEqual(['a']);
    expect(filterJobs(jobs, { statuses: new Set(), search: 'TORINO' }).map(j => j.id)).toEqual(['b']);
    expect(filterJobs(jobs, { statuses: new Set(), search: 'ibm-c' }).map(j => j.id)).toEqual(['c']);
    expect(filterJobs(jobs, { statuses: new Set(['DONE']), search: 'ghz' })).toEqual([]);
  });
});

describe('toastsFor', () => {
  it('announces a transition into a wanted status', () => {
    const before = job();
    const after = job({
      status: 'DONE',
      label: 'Bell',
      history: [...before.history, { status: 'DONE', at: '2026-11-29T10:05:00.000Z' }]
    });
    const toasts = toastsFor(new Map([[before.id, before]]), [after]);
    expect(toasts).toHaveLength(1);
    expect(toasts[0]).toMatchObject({ jobId: 'j1', status: 'DONE', kind: 'success', url: after.ibm_url });
    expect(toasts[0].message).toContain('Bell');
  });

  it('stays quiet for unwanted statuses, unknown jobs and repeats', () => {
    const before = job();
    const running = job({
      status: 'RUNNING',
      history: [...before.history, { status: 'RUNNING', at: '2026-11-29T10:01:00.000Z' }]
    });
    expect(toastsFor(new Map([[before.id, before]]), [running])).toEqual([]);
    expect(toastsFor(new Map(), [job({ status: 'DONE' })])).toEqual([]);
    const done = job({ status: 'DONE' });
    expect(toastsFor(new Map([[done.id, done]]), [done])).toEqual([]);
    const unwatched = job({ status: 'DONE', notify_status: [] });
    expect(toastsFor(new Map([[before.id, before]]), [unwatched])).toEqual([]);
  });

  it('sees statuses skipped between polls and toasts each wanted one (issue 12: RUNNING was collapsed away)', () => {
    const before = job({ notify_status: ['RUNNING', 'DONE'] });
    const after = job({
      status: 'DONE',
      notify_status: ['RUNNING', 'DONE'],
      history: [
        ...before.history,
        { status: 'RUNNING', at: '2026-11-29T10:01:00.000Z' },
        { status: 'DONE', at: '2026-11-29T10:02:00.000Z' }
      ]
    });
    expect(enteredStatuses(before, after)).toEqual(['RUNNING', 'DONE']);
    const toasts = toastsFor(new Map([[before.id, before]]), [after]);
    expect(toasts.map(t => t.status)).toEqual(['RUNNING', 'DONE']);
  });

  it('says why a job failed', () => {
    const before = job();
    const after = job({ status: 'ERROR', error_reason: 'Qubit out of range', history: [] });
    const [toast] = toastsFor(new Map([[before.id, before]]), [after]);
    expect(toast.kind).toBe('error');
    expect(toast.message).toContain('Qubit out of range');
  });
});

describe('polling', () => {
  it('backs off exponentially up to a cap, and honours Retry-After', () => {
    expect(nextDelay(0)).toBe(POLL_BASE_MS);
    expect(nextDelay(1)).toBe(POLL_BASE_MS * 2);
    expect(nextDelay(2)).toBe(POLL_BASE_MS * 4);
    expect(nextDelay(50)).toBe(POLL_MAX_MS);
    expect(nextDelay(1, 30)).toBe(30000);
  });

  it('classifies failures', () => {
    expect(classifyStatus(0)).toBe('unreachable');
    expect(classifyStatus(401)).toBe('signed-out');
    expect(classifyStatus(429)).toBe('throttled');
    expect(classifyStatus(503)).toBe('server');
    expect(classifyStatus(422)).toBe('rejected');
  });
});

describe('formatting', () => {
  it('shows a key only as its last four characters', () => {
    expect(keySummary({ set: false, last4: null, state: 'none', updated_at: null })).toBe('not set');
    expect(keySummary({ set: true, last4: '1234', state: 'ok', updated_at: null })).toBe('set, ends with …1234');
    expect(keySummary({ set: true, last4: '9z9z', state: 'invalid', updated_at: null })).toContain('rejected');
  });

  it('orders statuses like the vocabulary', () => {
    expect(orderStatuses(['ERROR', 'DONE', 'RUNNING', 'nope'])).toEqual(['RUNNING', 'DONE', 'ERROR']);
  });

  it('says how long ago', () => {
    const now = new Date('2026-11-29T12:00:00.000Z');
    expect(formatAgo('2026-11-29T11:59:50.000Z', now)).toBe('just now');
    expect(formatAgo('2026-11-29T11:55:00.000Z', now)).toBe('5 min ago');
    expect(formatAgo('2026-11-29T09:00:00.000Z', now)).toBe('3 h ago');
    expect(formatAgo(null, now)).toBe('—');
  });

  it('encodes repeated query keys the way the server reads them', () => {
    expect(encodeQuery({ status: ['DONE', 'ERROR'], limit: 5, label: '', x: undefined })).toBe(
      '?status=DONE&status=ERROR&limit=5'
    );
    expect(encodeQuery({ updated_after: '2026-11-29T10:00:00.000Z' })).toBe(
      '?updated_after=2026-11-29T10%3A00%3A00.000Z'
    );
  });
});
