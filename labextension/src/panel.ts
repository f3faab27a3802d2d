/**
 * The "Quantum jobs" side panel: a Lumino widget composed of the shared parts (as
 * dask-labextension's sidebar is composed of widgets): the sign-in form, the live job
 * list with its notify editor, and the account section with its delivery log. Each part
 * owns its fields; the web UI (src/webui/) shows the same parts on its pages. The panel
 * itself owns only its header, its banner and which part shows.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { bellIcon, deleteIcon, editIcon, LabIcon, refreshIcon, stopIcon, userIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { joinUrl, QJMApi } from './api';
import { fill, h } from './dom';
import { FeedState, JobFeed } from './feed';
import { connectionLabel, ServerStatus } from './model';
import { AccountSection } from './ui/account';
import { Banner } from './ui/banner';
import { JobList } from './ui/joblist';
import { NotificationSettings } from './ui/notifications';
import type { Confirm, Icons } from './ui/parts';
import { SignInForm } from './ui/signin';
import { iconButton } from './ui/widgets';

export const PANEL_ID = 'qjm-job-panel';

const ATOM_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="none" stroke="#616161" stroke-width="1.6">
<ellipse cx="12" cy="12" rx="10" ry="4"/>
<ellipse cx="12" cy="12" rx="10" ry="4" transform="rotate(60 12 12)"/>
<ellipse cx="12" cy="12" rx="10" ry="4" transform="rotate(120 12 12)"/></g>
<circle class="jp-icon3" fill="#616161" cx="12" cy="12" r="2"/></svg>`;

export const quantumJobsIcon = new LabIcon({ name: 'qjm-jupyter:atom', svgstr: ATOM_SVG });

const labIcon = (icon: LabIcon) => (): Element => icon.element({ tag: 'span', className: 'qjm-icon' });

/** JupyterLab's icons, so the panel follows the Lab theme. */
const LAB_ICONS: Icons = {
  edit: labIcon(editIcon),
  remove: labIcon(deleteIcon),
  bell: labIcon(bellIcon),
  refresh: labIcon(refreshIcon),
  account: labIcon(userIcon),
  stop: labIcon(stopIcon)
};

/** Lab's own dialog, so confirmation looks and behaves like the rest of Lab. */
const labConfirm: Confirm = async ({ title, body, accept }) => {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: accept })]
  });
  return result.button.accept;
};

export interface IPanelOptions {
  api: QJMApi;
  feed: JobFeed;
}

export class JobPanel extends Widget {
  constructor(options: IPanelOptions) {
    super();
    const { api, feed } = options;
    this._api = api;
    this._feed = feed;
    this.id = PANEL_ID;
    this.addClass('qjm-panel');
    this.title.icon = quantumJobsIcon;
    this.title.caption = 'Quantum jobs';

    this._banner = new Banner(api, feed);
    const say = this._banner.say.bind(this._banner);
    const parts = { api, say, confirm: labConfirm, icons: LAB_ICONS };
    this._signin = new SignInForm({ api });
    this._jobs = new JobList({ ...parts, feed });
    this._account = new AccountSection({ ...parts, accountHref: joinUrl(api.baseUrl, 'qjm', 'account') });
    this._notifications = new NotificationSettings(parts);
    this._main = h('div', { className: 'qjm-main' }, this._jobs.node, this._account.node, this._notifications.node);
    this.node.append(this._header, this._connection, this._banner.node, this._signin.node, this._main);

    feed.stateChanged.connect(this._onFeedState, this);
    api.sessionChanged.connect(this._onSession, this);
    this._onSession();
    this._timeTicker = window.setInterval(() => {
      if (this.isVisible && api.signedIn) {
        this._jobs.render(); // "updated 2 min ago" stays true
      }
    }, 30000);
  }

  dispose(): void {
    window.clearInterval(this._timeTicker);
    this._jobs.dispose();
    this._notifications.dispose();
    this._banner.dispose();
    super.dispose();
  }

  /** Show the sign-in form and put the cursor in it (the "sign in" command). */
  focusSignIn(): void {
    if (!this._api.signedIn) {
      this._signin.focus();
    }
  }

  /** Scroll to a job's row and flash it (a toast's "Show job", an emailed link). */
  highlight(id: string): boolean {
    return this._jobs.highlight(id);
  }

  /** Show a group's jobs (an emailed group link). */
  showGroup(group: string): void {
    this._jobs.setSearch(group);
  }

  /** Open the account section (an emailed "update the key" or instance link). */
  showAccount(): void {
    this._account.open();
  }

  /** Open the notification settings (channels, email timing, desktop notifications): an
   * emailed "manage notifications" link. */
  showNotifications(): void {
    this._notifications.open();
  }

  /** Which server the jobs come from, when it is not this one (remote mode). */
  setStatus(status: ServerStatus | null): void {
    const label = connectionLabel(status);
    this._connection.hidden = !label;
    fill(this._connection, label ?? '');
  }

  private _onSession(): void {
    const signedIn = this._api.signedIn;
    this.node.classList.toggle('qjm-signed-in', signedIn);
    this._signin.node.hidden = signedIn;
    this._main.hidden = !signedIn;
    if (signedIn) {
      this._banner.clear();
    } else if (this._api.expired) {
      this._banner.say('info', 'Your session has ended. Sign in again.');
    }
    this._renderHeader();
    this._jobs.render();
    void this._account.reload();
    void this._notifications.reload();
  }

  private _onFeedState(_: JobFeed, state: FeedState): void {
    this._renderHeader();
    if (state === 'live' && !this._feed.loaded) {
      this._jobs.render();
    }
  }

  private _renderHeader(): void {
    const state = this._api.signedIn ? this._feed.state : 'signed-out';
    const live: Record<FeedState, [string, string]> = {
      idle: ['Connecting', 'qjm-dot-idle'],
      live: ['Live', 'qjm-dot-live'],
      paused: ['Paused', 'qjm-dot-idle'],
      retrying: ['Offline', 'qjm-dot-error'],
      'signed-out': ['Signed out', 'qjm-dot-idle']
    };
    const [text, dot] = live[state];
    const buttons: HTMLElement[] = [];
    if (this._api.signedIn) {
      buttons.push(
        iconButton(LAB_ICONS.refresh(), 'Refresh jobs', () => this._feed.refresh(), 'refresh'),
        iconButton(LAB_ICONS.bell(), 'Notification settings', () => this._notifications.open(), 'notifications'),
        iconButton(
          LAB_ICONS.account(),
          this._api.hostIdentity ? 'Account' : 'Account and sign out',
          () => this._account.open(),
          'account'
        )
      );
    }
    fill(
      this._header,
      h('h2', { className: 'qjm-title' }, 'Quantum jobs'),
      h(
        'span',
        {
          className: 'qjm-live',
          title: state === 'paused' ? 'Updates pause while this browser tab is hidden' : `Updates: ${text}`
        },
        h('span', { className: `qjm-dot ${dot}`, 'aria-hidden': 'true' }),
        text
      ),
      h('span', { className: 'qjm-spacer' }),
      buttons
    );
  }

  private _api: QJMApi;
  private _feed: JobFeed;
  private _banner: Banner;
  private _signin: SignInForm;
  private _jobs: JobList;
  private _account: AccountSection;
  private _notifications: NotificationSettings;
  private _main: HTMLElement;
  private _timeTicker: number;
  private _header = h('div', { className: 'qjm-header' });
  private _connection = h('p', { className: 'qjm-connection', hidden: true, role: 'note' });
}
