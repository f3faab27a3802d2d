import { describe, expect, it } from 'vitest';

import {
  canCancel,
  cancelQuestion,
  channelTarget,
  DeliveryRecord,
  describePreferences,
  desktopSwitchState,
  digestMode,
  NotificationPreferences,
  PreferencesDraft,
  preferencesPatch,
  suggestedTimeZone,
  testOutcome
} from '../src/model';
import { job } from './factory';

function record(over: Partial<DeliveryRecord>): DeliveryRecord {
  return {
    id: 'n1',
    kind: 'test',
    subject: '[qjm] test',
    to: 'json://127.0.0.1',
    state: 'pending',
    attempts: 0,
    last_error: null,
    created_at: '2026-12-01T10:00:00Z',
    sent_at: null,
    job_id: null,
    channel_id: 'c1',
    ...over
  };
}

const PREFS: NotificationPreferences = {
  mail_stopped: false,
  mail_stopped_at: null,
  time_zone: 'UTC',
  quiet_start: null,
  quiet_end: null,
  quiet_breakthrough: [],
  digest_minutes: 0
};

const DRAFT: PreferencesDraft = {
  timeZone: 'Europe/Zurich',
  quiet: true,
  quietStart: '22:00',
  quietEnd: '07:30',
  errorsBreakThrough: true,
  digest: 'off',
  every: '60'
};

describe('cancel', () => {
  it('is offered for jobs still going and without a pending cancel', () => {
    expect(canCancel(job({ status: 'QUEUED' }))).toBe(true);
    expect(canCancel(job({ status: 'RUNNING' }))).toBe(true);
    for (const status of ['DONE', 'ERROR', 'CANCELLED']) {
      expect(canCancel(job({ status }))).toBe(false);
    }
    expect(canCancel(job({ status: 'RUNNING', cancel_requested_at: '2026-12-01T10:00:00Z' }))).toBe(false);
  });

  it('asks differently for IBM and local jobs', () => {
    expect(cancelQuestion(job({ label: 'Bell' })).title).toContain('IBM Quantum');
    expect(cancelQuestion(job({ label: 'Bell' })).body).toContain('"Bell" (ibm-j1)');
    const local = cancelQuestion(job({ source: 'local', job_id: 'local-1' }));
    expect(local.title).toContain('local');
    expect(local.body).toContain('kernel');
  });
});

describe('channels', () => {
  it('name a channel by scheme and host only', () => {
    expect(channelTarget({ scheme: 'json', host: '127.0.0.1' })).toBe('json://127.0.0.1');
    expect(channelTarget({ scheme: 'slack', host: '' })).toBe('slack://');
  });

  it('follow a test message through the channel log', () => {
    expect(testOutcome([], 'n1').state).toBe('pending');
    expect(testOutcome([record({ state: 'pending', last_error: 'HTTP 500' })], 'n1')).toEqual({
      state: 'pending',
      text: 'Test queued (retrying: HTTP 500)…'
    });
    expect(testOutcome([record({ id: 'other', state: 'sent' }), record({ state: 'sent' })], 'n1').state).toBe('sent');
    expect(testOutcome([record({ id: 'other', state: 'sent' })], 'n1').state).toBe('pending');
    expect(testOutcome([record({ state: 'failed', last_error: 'HTTP 404' })], 'n1')).toEqual({
      state: 'failed',
      text: 'Test failed: HTTP 404'
    });
    // No id from the server: the newest test in the log.
    expect(testOutcome([record({ state: 'sent' })], null).state).toBe('sent');
  });
});

describe('preferences', () => {
  it('map digest minutes to the three modes', () => {
    expect(digestMode(0)).toEqual({ mode: 'off', every: 60 });
    expect(digestMode(15)).toEqual({ mode: 'every', every: 15 });
    expect(digestMode(1440)).toEqual({ mode: 'daily', every: 60 });
  });

  it('suggest the browser zone only over the default', () => {
    expect(suggestedTimeZone('UTC', 'Europe/Zurich')).toEqual({ zone: 'Europe/Zurich', suggested: true });
    expect(suggestedTimeZone('Asia/Tokyo', 'Europe/Zurich')).toEqual({ zone: 'Asia/Tokyo', suggested: false });
    expect(suggestedTimeZone('UTC', 'UTC')).toEqual({ zone: 'UTC', suggested: false });
    expect(suggestedTimeZone('UTC', null)).toEqual({ zone: 'UTC', suggested: false });
  });

  it('build the PUT body from the form', () => {
    expect(preferencesPatch(DRAFT, PREFS)).toEqual({
      patch: {
        time_zone: 'Europe/Zurich',
        quiet_start: '22:00',
        quiet_end: '07:30',
        quiet_breakthrough: ['ERROR'],
        digest_minutes: 0
      }
    });
    // Quiet hours off clear both times; other stored break-through statuses are kept.
    const off = preferencesPatch({ ...DRAFT, quiet: false, errorsBreakThrough: false, digest: 'daily' }, {
      quiet_breakthrough: ['CANCELLED', 'ERROR']
    });
    expect(off).toEqual({
      patch: { time_zone: 'Europe/Zurich', quiet_start: null, quiet_end: null, quiet_breakthrough: ['CANCELLED'], digest_minutes: 1440 }
    });
    // Browsers may give seconds in a time input.
    const secs = preferencesPatch({ ...DRAFT, quietStart: '22:00:00', digest: 'every', every: '30' }, PREFS);
    expect(secs).toMatchObject({ patch: { quiet_start: '22:00', digest_minutes: 30 } });
  });

  it('name the field of a problem', () => {
    const field = (d: Partial<PreferencesDraft>): string | undefined => {
      const r = preferencesPatch({ ...DRAFT, ...d }, PREFS);
      return 'problem' in r ? r.problem.field : undefined;
    };
    expect(field({ timeZone: ' ' })).toBe('time_zone');
    expect(field({ quietStart: '' })).toBe('quiet_start');
    expect(field({ quietEnd: '25:00' })).toBe('quiet_end');
    expect(field({ quietEnd: '22:00' })).toBe('quiet_end');
    expect(field({ quiet: false, quietStart: '' })).toBeUndefined();
    expect(field({ digest: 'every', every: '0' })).toBe('digest_minutes');
    expect(field({ digest: 'every', every: '1440' })).toBe('digest_minutes');
    expect(field({ digest: 'every', every: '2.5' })).toBe('digest_minutes');
  });

  it('summarise when mail arrives', () => {
    expect(describePreferences(PREFS)).toBe('One email per change.');
    expect(
      describePreferences({ ...PREFS, time_zone: 'Europe/Zurich', quiet_start: '22:00', quiet_end: '07:00', quiet_breakthrough: ['ERROR'], digest_minutes: 30 })
    ).toBe('One summary email every 30 min; quiet 22:00–07:00 Europe/Zurich (Error mail still arrives at once).');
    expect(describePreferences({ ...PREFS, mail_stopped: true })).toContain('stopped');
  });
});

describe('desktop switch', () => {
  it('says what is on and offers what can be done', () => {
    expect(desktopSwitchState(false, 'default', true)).toMatchObject({ on: false, action: 'Turn on desktop notifications' });
    expect(desktopSwitchState(true, 'granted', true)).toMatchObject({ on: true, action: 'Turn off desktop notifications' });
    // Enabled once, then the permission was revoked in the browser: off, and cannot be asked again.
    expect(desktopSwitchState(true, 'denied', true)).toMatchObject({ on: false, action: null });
    expect(desktopSwitchState(false, 'denied', true).text).toContain('Blocked');
    expect(desktopSwitchState(false, 'default', false)).toMatchObject({ on: false, action: null });
    // Granted earlier but turned off here: one click turns it back on.
    expect(desktopSwitchState(false, 'granted', true)).toMatchObject({ on: false, action: 'Turn on desktop notifications' });
  });
});
