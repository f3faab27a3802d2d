/**
 * When job email arrives: the user's time zone (suggested from the browser), quiet hours
 * (mail is held and sent as one summary when they end; errors may break through) and a
 * digest mode (one summary every N minutes, or a day). Saved with
 * `PUT notifications/preferences`; a refused value is shown by its field.
 */

import { ApiError } from '../api';
import { fill, h } from '../dom';
import {
  describePreferences,
  digestMode,
  formatTime,
  NotificationPreferences,
  preferencesPatch,
  suggestedTimeZone
} from '../model';
import type { PartOptions } from './parts';
import { errorText } from './widgets';

function browserZone(): string | null {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}

function knownZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf ? intl.supportedValuesOf('timeZone') : [];
  } catch {
    return [];
  }
}

export class PreferencesForm {
  readonly node = h('section', { className: 'qjm-preferences', 'aria-labelledby': 'qjm-prefs-title' });

  constructor(private readonly options: PartOptions) {}

  get preferences(): NotificationPreferences | null {
    return this._prefs;
  }

  async reload(): Promise<void> {
    if (!this.options.api.signedIn) {
      this._prefs = null;
      fill(this.node);
      return;
    }
    try {
      this._prefs = await this.options.api.preferences();
      this._error = '';
    } catch (err) {
      this._error = errorText(err);
    }
    this.render();
  }

  render(): void {
    const prefs = this._prefs;
    const title = h('h3', { className: 'qjm-section-title', id: 'qjm-prefs-title' }, 'When email arrives');
    if (!prefs) {
      fill(
        this.node,
        title,
        h('p', { className: this._error ? 'qjm-form-error' : 'qjm-muted' }, this._error || 'Loading…')
      );
      return;
    }
    fill(this.node, title, h('p', { className: 'qjm-muted qjm-prefs-summary', role: 'status' }, describePreferences(prefs)), this._stopped(prefs), this._form(prefs));
  }

  private _stopped(prefs: NotificationPreferences): HTMLElement | null {
    if (!prefs.mail_stopped) {
      return null;
    }
    return h(
      'div',
      { className: 'qjm-notice qjm-mail-stopped' },
      h('p', {}, `Notification email was stopped ${formatTime(prefs.mail_stopped_at)} (from a mail's "stop all" link).`),
      h(
        'button',
        {
          type: 'button',
          className: 'qjm-button qjm-button-small qjm-button-accent',
          onClick: () => void this._save({ mail_stopped: false }, 'Notification email is on again.')
        },
        'Turn email back on'
      )
    );
  }

  private _form(prefs: NotificationPreferences): HTMLFormElement {
    const zone = suggestedTimeZone(prefs.time_zone, browserZone());
    const fieldError = (field: string): HTMLElement =>
      h('p', { className: 'qjm-form-error qjm-field-error', id: `qjm-pref-${field}-error`, role: 'alert' });
    const errors: Record<string, HTMLElement> = {
      time_zone: fieldError('time_zone'),
      quiet_start: fieldError('quiet_start'),
      quiet_end: fieldError('quiet_end'),
      digest_minutes: fieldError('digest_minutes'),
      other: fieldError('other')
    };
    const tz = h('input', {
      type: 'text',
      id: 'qjm-pref-tz',
      className: 'qjm-input',
      list: 'qjm-pref-tz-list',
      autocomplete: 'off',
      spellcheck: 'false',
      value: zone.zone,
      'aria-describedby': 'qjm-pref-tz-hint qjm-pref-time_zone-error'
    });
    const zones = h('datalist', { id: 'qjm-pref-tz-list' }, knownZones().map(z => h('option', { value: z })));
    const quietOn = !!(prefs.quiet_start && prefs.quiet_end);
    const quiet = h('input', { type: 'checkbox', id: 'qjm-pref-quiet', checked: quietOn });
    const time = (id: string, field: string, value: string): HTMLInputElement =>
      h('input', { type: 'time', id, className: 'qjm-input qjm-input-time', value, 'aria-describedby': `qjm-pref-${field}-error` });
    const start = time('qjm-pref-quiet-start', 'quiet_start', prefs.quiet_start ?? '22:00');
    const end = time('qjm-pref-quiet-end', 'quiet_end', prefs.quiet_end ?? '07:00');
    const breakthrough = h('input', {
      type: 'checkbox',
      id: 'qjm-pref-breakthrough',
      checked: !quietOn || prefs.quiet_breakthrough.includes('ERROR')
    });
    const times = h(
      'div',
      { className: 'qjm-time-range' },
      h('span', { className: 'qjm-time-field' }, h('label', { className: 'qjm-label', for: 'qjm-pref-quiet-start' }, 'From'), start),
      h('span', { className: 'qjm-time-field' }, h('label', { className: 'qjm-label', for: 'qjm-pref-quiet-end' }, 'Until'), end)
    );
    const syncQuiet = (): void => {
      for (const el of [start, end, breakthrough]) {
        el.disabled = !quiet.checked;
      }
    };
    quiet.addEventListener('change', syncQuiet);
    syncQuiet();

    const digest = digestMode(prefs.digest_minutes);
    const radio = (value: string, text: string | Node[]): HTMLElement =>
      h(
        'label',
        { className: 'qjm-check', for: `qjm-pref-digest-${value}` },
        h('input', { type: 'radio', name: 'qjm-digest', id: `qjm-pref-digest-${value}`, value, checked: digest.mode === value }),
        text
      );
    const every = h('input', {
      type: 'number',
      id: 'qjm-pref-digest-minutes',
      className: 'qjm-input qjm-input-number',
      min: 1,
      max: 1439,
      step: 1,
      value: String(digest.every),
      'aria-label': 'Minutes between summaries',
      'aria-describedby': 'qjm-pref-digest_minutes-error'
    });
    const form = h(
      'form',
      { className: 'qjm-form qjm-prefs-form', 'aria-labelledby': 'qjm-prefs-title', novalidate: true },
      h('label', { className: 'qjm-label', for: 'qjm-pref-tz' }, 'Time zone'),
      tz,
      zones,
      h(
        'p',
        { className: 'qjm-muted qjm-help', id: 'qjm-pref-tz-hint' },
        zone.suggested ? `Suggested from this browser (saved: ${prefs.time_zone}). Save to use it.` : 'Quiet hours are in this zone.'
      ),
      errors.time_zone,
      h(
        'fieldset',
        { className: 'qjm-fieldset' },
        h('legend', {}, 'Quiet hours'),
        h('label', { className: 'qjm-check', for: 'qjm-pref-quiet' }, quiet, 'Hold job email during quiet hours, then send one summary'),
        times,
        errors.quiet_start,
        errors.quiet_end,
        h('label', { className: 'qjm-check', for: 'qjm-pref-breakthrough' }, breakthrough, 'Errors still arrive at once')
      ),
      h(
        'fieldset',
        { className: 'qjm-fieldset' },
        h('legend', {}, 'Digest'),
        h(
          'div',
          { className: 'qjm-radios' },
          radio('off', 'One email per change'),
          h(
            'div',
            { className: 'qjm-digest-every' },
            radio('every', 'One summary every'),
            h('span', { className: 'qjm-time-field' }, every, h('span', { 'aria-hidden': 'true' }, 'min'))
          ),
          radio('daily', 'One summary a day')
        ),
        errors.digest_minutes
      ),
      errors.other,
      h(
        'div',
        { className: 'qjm-form-actions' },
        h('button', { type: 'submit', className: 'qjm-button qjm-button-accent qjm-button-small' }, 'Save email timing')
      )
    );
    every.addEventListener('focus', () => {
      (form.querySelector('#qjm-pref-digest-every') as HTMLInputElement).checked = true;
    });
    form.addEventListener('submit', (event: Event) => {
      event.preventDefault();
      for (const el of Object.values(errors)) {
        el.textContent = '';
      }
      const mode = (form.querySelector('input[name="qjm-digest"]:checked') as HTMLInputElement | null)?.value ?? 'off';
      const result = preferencesPatch(
        {
          timeZone: tz.value,
          quiet: quiet.checked,
          quietStart: start.value,
          quietEnd: end.value,
          errorsBreakThrough: breakthrough.checked,
          digest: mode as 'off' | 'every' | 'daily',
          every: every.value
        },
        prefs
      );
      if ('problem' in result) {
        (errors[result.problem.field] ?? errors.other).textContent = result.problem.message;
        return;
      }
      void this._save(result.patch, 'Email timing saved.', errors);
    });
    return form;
  }

  private async _save(
    patch: Parameters<PartOptions['api']['updatePreferences']>[0],
    done: string,
    errors?: Record<string, HTMLElement>
  ): Promise<void> {
    try {
      this._prefs = await this.options.api.updatePreferences(patch);
      this.render();
      this.options.say('success', done);
    } catch (err) {
      const field = (err as ApiError).field ?? 'other';
      const where = errors ? errors[field] ?? errors.other : null;
      if (where) {
        where.textContent = errorText(err);
      } else {
        this.options.say('error', `Not saved: ${errorText(err)}`);
      }
    }
  }

  private _prefs: NotificationPreferences | null = null;
  private _error = '';
}
