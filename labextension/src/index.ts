/**
 * qjm-jupyter's JupyterLab plugin: the "Quantum jobs" side panel, its commands, and job
 * toasts.
 *
 * `activate()` only wires things up. The first request goes out from a timer after
 * activation, so a slow or missing qjm server never delays JupyterLab's start
 * (jupyter-scheduler#479).
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { HostFetch, QJMApi } from './api';
import { JobFeed } from './feed';
import { parseDeepLink, stripDeepLink, ToastDecision } from './model';
import { JobPanel, PANEL_ID } from './panel';
import { desktopEnabled, onDesktopChange, toDesktop, toggleDesktop } from './ui/desktop';
import type { Say } from './ui/parts';

export namespace CommandIDs {
  export const open = 'qjm:open-panel';
  export const signIn = 'qjm:sign-in';
  export const signOut = 'qjm:sign-out';
  export const refresh = 'qjm:refresh';
  export const desktop = 'qjm:desktop-notifications';
}

const CATEGORY = 'Quantum jobs';
const TOAST_MS = 12000;

/** Messages of the desktop switch when it is used from the command palette. */
const labSay: Say = (kind, text) => {
  if (kind === 'error') {
    Notification.warning(text, { autoClose: TOAST_MS });
  } else {
    Notification.info(text, { autoClose: TOAST_MS });
  }
};

function announce(app: JupyterFrontEnd, panel: JobPanel, decisions: ToastDecision[]): void {
  for (const d of decisions) {
    const actions: Notification.IAction[] = [
      {
        label: 'Show job',
        caption: 'Open the Quantum jobs panel at this job',
        callback: () => {
          app.shell.activateById(panel.id);
          panel.highlight(d.jobId);
        }
      }
    ];
    if (d.url) {
      const url = d.url;
      actions.push({
        label: 'Open in IBM Quantum',
        displayType: 'link',
        callback: () => {
          window.open(url, '_blank', 'noopener,noreferrer');
        }
      });
    }
    const options = { autoClose: d.kind === 'error' ? (false as const) : TOAST_MS, actions };
    switch (d.kind) {
      case 'success':
        Notification.success(d.message, options);
        break;
      case 'error':
        Notification.error(d.message, options);
        break;
      case 'warning':
        Notification.warning(d.message, options);
        break;
      default:
        Notification.info(d.message, options);
    }
  }
}

/**
 * Requests with Lab's own credentials: `makeRequest` (token or cookie, plus the XSRF
 * header Jupyter requires) for this server; for a JupyterHub service on the same proxy,
 * the token Lab holds (the Hub's OAuth token for this user), which needs no XSRF.
 */
function hostFetch(settings: ServerConnection.ISettings): HostFetch {
  return (url, init) => {
    if (url.startsWith(settings.baseUrl)) {
      return ServerConnection.makeRequest(url, init, settings);
    }
    const headers = new Headers(init.headers);
    if (settings.token) {
      headers.set('Authorization', `token ${settings.token}`);
    }
    return fetch(url, { ...init, headers });
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'qjm-jupyter:plugin',
  description: 'Quantum jobs side panel: live IBM Quantum job status, notices and toasts.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, palette: ICommandPalette | null): void => {
    const api = new QJMApi(PageConfig.getBaseUrl());
    const feed = new JobFeed(api);
    const panel = new JobPanel({ api, feed });
    app.shell.add(panel, 'left', { rank: 900 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }

    feed.toasts.connect((_, decisions) => {
      announce(app, panel, decisions);
      toDesktop(decisions);
    });

    const { commands } = app;
    commands.addCommand(CommandIDs.open, {
      label: 'Open Quantum Jobs Panel',
      caption: 'Show your IBM Quantum jobs',
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });
    commands.addCommand(CommandIDs.signIn, {
      label: 'Sign In to qjm',
      isEnabled: () => !api.signedIn,
      execute: () => {
        app.shell.activateById(panel.id);
        panel.focusSignIn();
      }
    });
    commands.addCommand(CommandIDs.signOut, {
      label: 'Sign Out of qjm',
      isEnabled: () => api.signedIn,
      execute: () => api.signOut()
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Quantum Jobs',
      isEnabled: () => api.signedIn,
      execute: () => feed.refresh()
    });
    commands.addCommand(CommandIDs.desktop, {
      label: 'Desktop Notifications for Quantum Jobs (when Lab is hidden)',
      caption: 'Also show job toasts as desktop notifications while this tab is hidden; asks the browser first',
      isToggled: () => desktopEnabled(),
      execute: async () => {
        await toggleDesktop(labSay);
      }
    });
    onDesktopChange(() => commands.notifyCommandChanged(CommandIDs.desktop));
    api.sessionChanged.connect(() => commands.notifyCommandChanged());

    if (palette) {
      for (const command of [CommandIDs.open, CommandIDs.signIn, CommandIDs.signOut, CommandIDs.refresh, CommandIDs.desktop]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    // Deferred: the first requests leave after activation has returned. Under Jupyter's
    // identity (or the Hub's) the panel uses Lab's own connection and shows no sign-in form.
    window.setTimeout(() => {
      void api.detectHostIdentity(hostFetch(app.serviceManager.serverSettings)).then(() => {
        feed.start();
        api.status().then(
          status => panel.setStatus(status),
          () => panel.setStatus(null)
        );
      });
    }, 0);
    void app.restored.then(() => followDeepLink(app, panel, feed, api));
  }
};

/**
 * An emailed link (`lab?qjm-job=…`, `lab?qjm-settings=1`, `lab?qjm-notifications=1`,
 * `lab?qjm-group=…`) opens the panel where the email points. The parameters leave the
 * address bar at once, so a reload does not jump again. The job may only arrive with the first poll (or after a
 * live tab shares its session), so the highlight waits for the list.
 */
function followDeepLink(app: JupyterFrontEnd, panel: JobPanel, feed: JobFeed, api: QJMApi): void {
  const link = parseDeepLink(window.location.search);
  if (!link) {
    return;
  }
  // Lab may still rewrite the address after restoring (a second tab gets its own
  // `workspaces/auto-…`), carrying the parameters along: strip them again once it settles.
  stripAddress();
  window.setTimeout(stripAddress, 2000);
  app.shell.activateById(panel.id);
  if (link.settings || link.notifications) {
    // Now, or right after the user signs in (or a live tab shares its session).
    const open = (): void => {
      if (api.signedIn) {
        api.sessionChanged.disconnect(open);
        if (link.settings) {
          panel.showAccount();
        }
        if (link.notifications) {
          panel.showNotifications();
        }
      }
    };
    api.sessionChanged.connect(open);
    open();
  }
  if (link.group) {
    panel.showGroup(link.group);
  }
  if (link.job) {
    const job = link.job;
    const tryShow = (): void => {
      if (panel.highlight(job)) {
        feed.changed.disconnect(tryShow);
        stripAddress();
      }
    };
    feed.changed.connect(tryShow);
    tryShow();
  }
}

export default plugin;

function stripAddress(): void {
  const url = new URL(window.location.href);
  const search = stripDeepLink(url.search);
  if (search !== url.search) {
    window.history.replaceState(window.history.state, '', url.pathname + search + url.hash);
  }
}
