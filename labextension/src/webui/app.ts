/**
 * The web UI at `{base_url}qjm/`: the same parts as the Lab panel (sign-in, job list,
 * account) on pages of their own, plus a page per job and the administrators' pages.
 * Every page is a real address (links, back button, a reload stays where it was), and
 * links are real `<a href>`s, followed in place by `history.pushState`.
 */

import { QJMApi } from '../api';
import { fill, h } from '../dom';
import { FeedState, JobFeed } from '../feed';
import { connectionLabel, User } from '../model';
import { AccountSection } from '../ui/account';
import { Banner } from '../ui/banner';
import { svgIcons } from '../ui/icons';
import { toDesktop } from '../ui/desktop';
import { JobList } from '../ui/joblist';
import { NotificationSettings } from '../ui/notifications';
import { SignInForm, SignInMode } from '../ui/signin';
import { AdminJobs, AdminUsers } from './admin';
import { dialogConfirm } from './dialog';
import { JobPage } from './jobpage';
import { appRoot, parseRoute, PUBLIC_PAGES, Route, routeHref, TITLES } from './routes';

const LIVE: Record<FeedState, string> = {
  idle: 'Connecting',
  live: 'Live',
  paused: 'Paused',
  retrying: 'Offline',
  'signed-out': 'Signed out'
};

export class WebApp {
  /**
   * @param signOutUrl under the host's identity, where signing out goes (the host's
   *   logout, which ends its session for this server); null: forget the qjm token.
   */
  constructor(
    root: HTMLElement,
    private readonly api: QJMApi,
    private readonly signOutUrl: string | null = null
  ) {
    this.feed = new JobFeed(api);
    this.banner = new Banner(api, this.feed);
    const say = this.banner.say.bind(this.banner);
    const parts = { api, say, confirm: dialogConfirm, icons: svgIcons };
    this.signin = new SignInForm({
      api,
      onMode: mode => this._replace({ page: mode }),
      intro: 'Sign in to see your IBM Quantum jobs live and choose what you are told about.'
    });
    this.jobs = new JobList({ ...parts, feed: this.feed, jobHref: job => routeHref({ page: 'job', id: job.id }, api.baseUrl) });
    this.account = new AccountSection({ ...parts, full: true });
    this.notifications = new NotificationSettings({ ...parts, full: true });
    this.adminUsers = new AdminUsers(api, say, () => this.account.user);
    this.adminJobs = new AdminJobs(api);
    this._parts = parts;

    fill(
      root,
      h('a', { className: 'qjm-skip', href: '#qjm-main' }, 'Skip to content'),
      this.header,
      h('div', { className: 'qjm-page' }, this.banner.node, this.main),
      this.footer
    );
    root.addEventListener('click', this._onClick);
    window.addEventListener('popstate', () => this.render(true));
    this.feed.stateChanged.connect(() => this._renderHeader());
    this.feed.toasts.connect((_, decisions) => {
      for (const d of decisions) {
        this.banner.say(d.kind === 'error' ? 'error' : d.kind === 'success' ? 'success' : 'info', d.message);
      }
      toDesktop(decisions);
    });
    api.sessionChanged.connect(this._onSession, this);
    window.setInterval(() => {
      if (api.signedIn && this._route.page === 'jobs') {
        this.jobs.render(); // "updated 2 min ago" stays true
      }
    }, 30000);
    api.status().then(
      status => {
        const label = connectionLabel(status);
        fill(this.footer, label ? h('span', { className: 'qjm-connection' }, label) : null, ` qjm-jupyter ${status.version}`);
      },
      () => undefined
    );
    this._onSession();
  }

  /** Show the page of the current address. `focus`: move focus to its heading (navigation). */
  render(focus = false): void {
    this._route = parseRoute(window.location.pathname, window.location.search, this.api.baseUrl);
    const route = this._route;
    this._page?.dispose?.();
    this._page = null;
    const signedIn = this.api.signedIn;
    if (signedIn && (route.page === 'sign-in' || route.page === 'sign-up' || route.page === 'forgot')) {
      this._replace({ page: 'jobs' });
      return this.render(focus);
    }
    document.title = `${TITLES[route.page]} · qjm`;
    this._renderHeader();
    if (!signedIn && !PUBLIC_PAGES.has(route.page)) {
      // Ask to sign in here, and show the page asked for once signed in.
      this.signin.setMode('sign-in');
      fill(this.main, this.signin.node);
      if (focus) {
        this.signin.focus();
      }
      return;
    }
    switch (route.page) {
      case 'sign-in':
      case 'sign-up':
      case 'forgot':
        if (this.signin.mode !== route.page) {
          this.signin.setMode(route.page as SignInMode);
        }
        fill(this.main, this.signin.node);
        if (focus) {
          this.signin.focus();
        }
        return;
      case 'jobs':
        if (route.group) {
          this.jobs.setSearch(route.group);
        }
        this.jobs.render();
        fill(this.main, h('h1', { className: 'qjm-page-title', tabindex: '-1' }, 'Your quantum jobs'), this.jobs.node);
        break;
      case 'job': {
        const page = new JobPage(route.id ?? '', {
          ...this._parts,
          feed: this.feed,
          allJobsHref: routeHref({ page: 'jobs' }, this.api.baseUrl),
          onDeleted: () => this.navigate({ page: 'jobs' })
        });
        this._page = page;
        fill(this.main, page.node);
        break;
      }
      case 'account':
        this.account.render();
        fill(this.main, h('h1', { className: 'qjm-page-title', tabindex: '-1' }, 'Account'), this.account.node);
        break;
      case 'notifications':
        void this.notifications.reload();
        fill(
          this.main,
          h('h1', { className: 'qjm-page-title', tabindex: '-1' }, 'Notifications'),
          this.notifications.node
        );
        break;
      case 'admin-users':
      case 'admin-jobs': {
        const user = this.account.user;
        if (user && !user.is_admin) {
          fill(
            this.main,
            h('h1', { className: 'qjm-page-title', tabindex: '-1' }, 'Administration'),
            h('p', { className: 'qjm-form-error', role: 'alert' }, 'This page is for administrators of this qjm server.')
          );
          break;
        }
        const part = route.page === 'admin-users' ? this.adminUsers : this.adminJobs;
        void part.load();
        fill(this.main, this.adminTabs(route), part.node);
        break;
      }
      default:
        fill(
          this.main,
          h('h1', { className: 'qjm-page-title', tabindex: '-1' }, 'Not found'),
          h('p', {}, 'No such page. ', h('a', { href: appRoot(this.api.baseUrl) }, 'Go to your jobs'))
        );
    }
    if (focus) {
      this.main.querySelector<HTMLElement>('.qjm-page-title')?.focus();
    }
  }

  navigate(route: Route): void {
    window.history.pushState(null, '', routeHref(route, this.api.baseUrl));
    this.render(true);
  }

  private adminTabs(route: Route): HTMLElement {
    const tab = (page: 'admin-users' | 'admin-jobs', text: string): HTMLElement =>
      h(
        'a',
        {
          href: routeHref({ page }, this.api.baseUrl),
          className: `qjm-tab ${route.page === page ? 'qjm-tab-on' : ''}`,
          'aria-current': route.page === page ? 'page' : null
        },
        text
      );
    return h('nav', { className: 'qjm-tabs', 'aria-label': 'Administration' }, tab('admin-users', 'Users'), tab('admin-jobs', 'All jobs'));
  }

  private _replace(route: Route): void {
    window.history.replaceState(null, '', routeHref(route, this.api.baseUrl));
    document.title = `${TITLES[route.page]} · qjm`;
  }

  private _onSession(): void {
    if (this.api.signedIn) {
      this.banner.clear();
      this.feed.start();
      void this.account.reload().then(() => {
        this._renderHeader();
        if (this._route.page.startsWith('admin') || this._route.page === 'account') {
          this.render();
        }
      });
    } else {
      void this.account.reload();
      if (this.api.expired) {
        this.banner.say('info', 'Your session has ended. Sign in again.');
      }
    }
    this.render();
  }

  private _renderHeader(): void {
    const signedIn = this.api.signedIn;
    const user: User | null = this.account.user;
    const route = this._route;
    const link = (r: Route, text: string, current: boolean): HTMLElement =>
      h('a', { href: routeHref(r, this.api.baseUrl), className: 'qjm-nav-link', 'aria-current': current ? 'page' : null }, text);
    const state = signedIn ? this.feed.state : 'signed-out';
    fill(
      this.header,
      h('a', { className: 'qjm-brand', href: appRoot(this.api.baseUrl) }, h('span', { 'aria-hidden': 'true' }, '⚛'), ' qjm'),
      signedIn
        ? h(
            'nav',
            { className: 'qjm-nav', 'aria-label': 'Main' },
            link({ page: 'jobs' }, 'Jobs', route.page === 'jobs' || route.page === 'job'),
            link({ page: 'notifications' }, 'Notifications', route.page === 'notifications'),
            link({ page: 'account' }, 'Account', route.page === 'account'),
            user?.is_admin ? link({ page: 'admin-users' }, 'Admin', route.page.startsWith('admin')) : null
          )
        : h('span', { className: 'qjm-spacer' }),
      signedIn
        ? h(
            'span',
            { className: 'qjm-live', title: `Updates: ${LIVE[state]}` },
            h('span', { className: `qjm-dot ${state === 'live' ? 'qjm-dot-live' : state === 'retrying' ? 'qjm-dot-error' : 'qjm-dot-idle'}`, 'aria-hidden': 'true' }),
            h('span', { className: 'qjm-live-text' }, LIVE[state])
          )
        : null,
      signedIn
        ? h(
            'button',
            { type: 'button', className: 'qjm-button qjm-button-small qjm-button-quiet', onClick: () => this._signOut() },
            'Sign out'
          )
        : null
    );
  }

  private _signOut(): void {
    if (this.api.hostIdentity && this.signOutUrl) {
      window.location.assign(this.signOutUrl);
    } else {
      this.api.signOut();
    }
  }

  /** Follow links to our own pages in place; everything else (IBM, new tabs) as usual. */
  private _onClick = (event: MouseEvent): void => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    const a = (event.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) {
      return;
    }
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin || !url.pathname.startsWith(new URL(appRoot(this.api.baseUrl), window.location.href).pathname)) {
      return;
    }
    if (url.hash && url.pathname === window.location.pathname) {
      return; // the skip link
    }
    event.preventDefault();
    window.history.pushState(null, '', url.pathname + url.search);
    this.render(true);
  };

  private readonly feed: JobFeed;
  private readonly banner: Banner;
  private readonly signin: SignInForm;
  private readonly jobs: JobList;
  private readonly account: AccountSection;
  private readonly notifications: NotificationSettings;
  private readonly adminUsers: AdminUsers;
  private readonly adminJobs: AdminJobs;
  private readonly _parts: { api: QJMApi; say: Banner['say']; confirm: typeof dialogConfirm; icons: typeof svgIcons };
  private _route: Route = { page: 'jobs' };
  private _page: { dispose?: () => void } | null = null;
  private readonly header = h('header', { className: 'qjm-topbar' });
  private readonly main = h('main', { id: 'qjm-main', className: 'qjm-main-region', tabindex: '-1' });
  private readonly footer = h('footer', { className: 'qjm-footer qjm-muted' });
}
