/**
 * Notification settings: desktop notifications, when email arrives (time zone, quiet
 * hours, digest) and channels. The Lab panel shows them in a disclosure under the
 * account; the web UI on its own page (`qjm/notifications`).
 */

import { fill, h } from '../dom';
import { ChannelsSection } from './channels';
import { DesktopSwitch } from './desktop';
import type { PartOptions } from './parts';
import { PreferencesForm } from './preferences';

export interface NotificationOptions extends PartOptions {
  /** The web UI's page: open sections, no disclosure. */
  full?: boolean;
}

export class NotificationSettings {
  readonly node = h('section', { className: 'qjm-notifications', 'aria-label': 'Notifications' });
  readonly desktop: DesktopSwitch;
  readonly preferences: PreferencesForm;
  readonly channels: ChannelsSection;

  constructor(private readonly options: NotificationOptions) {
    this.desktop = new DesktopSwitch(options.say);
    this.preferences = new PreferencesForm(options);
    this.channels = new ChannelsSection(options);
    this._details.addEventListener('toggle', () => {
      this._open = this._details.open;
      if (this._open && !this._loaded) {
        void this.reload();
      }
    });
  }

  dispose(): void {
    this.desktop.dispose();
  }

  /** Load (signed in) or forget (signed out). The panel's disclosure loads when first opened. */
  async reload(): Promise<void> {
    if (!this.options.api.signedIn) {
      this._loaded = false;
      this.render();
      await Promise.all([this.preferences.reload(), this.channels.reload()]);
      return;
    }
    this.render();
    if (!this.options.full && !this._open) {
      this._loaded = false;
      return;
    }
    this._loaded = true;
    await Promise.all([this.preferences.reload(), this.channels.reload()]);
  }

  /** Open the panel's disclosure and move focus there. */
  open(): void {
    this._details.open = true;
    this._open = true;
    const summary = this._details.querySelector<HTMLElement>('summary');
    summary?.scrollIntoView({ block: 'start' });
    summary?.focus();
  }

  render(): void {
    if (!this.options.api.signedIn) {
      fill(this.node);
      return;
    }
    this.desktop.render();
    const body = [this.desktop.node, this.preferences.node, this.channels.node];
    if (this.options.full) {
      fill(this.node, body);
      return;
    }
    fill(this._details, h('summary', {}, 'Notifications'), body);
    fill(this.node, this._details);
  }

  private _details = h('details', { className: 'qjm-details qjm-notifications-details' });
  private _open = false;
  private _loaded = false;
}
