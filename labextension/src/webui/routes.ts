/**
 * The web UI's addresses, all under `{base_url}qjm/`. Pure, so it is unit tested: the
 * server's shell handler (handlers/webui.py) serves the same list of pages.
 */

export type Page = 'jobs' | 'job' | 'account' | 'notifications' | 'admin-users' | 'admin-jobs' | 'sign-in' | 'sign-up' | 'forgot' | 'not-found';

export interface Route {
  page: Page;
  /** The job's id on the `job` page. */
  id?: string;
  /** `?group=` on the jobs page (an emailed group link). */
  group?: string;
}

/** Pages a signed-out visitor may see; every other page asks them to sign in first. */
export const PUBLIC_PAGES: ReadonlySet<Page> = new Set<Page>(['sign-in', 'sign-up', 'forgot', 'not-found']);

export function parseRoute(pathname: string, search: string, baseUrl: string): Route {
  const root = appRoot(baseUrl);
  const prefix = new URL(root, 'http://x').pathname;
  let rest = pathname.startsWith(prefix) ? pathname.slice(prefix.length) : pathname === prefix.slice(0, -1) ? '' : null;
  if (rest === null) {
    return { page: 'not-found' };
  }
  rest = rest.replace(/\/+$/, '');
  const group = new URLSearchParams(search).get('group') || undefined;
  switch (rest) {
    case '':
      return group ? { page: 'jobs', group } : { page: 'jobs' };
    case 'account':
      return { page: 'account' };
    case 'notifications':
      return { page: 'notifications' };
    case 'admin':
    case 'admin/users':
      return { page: 'admin-users' };
    case 'admin/jobs':
      return { page: 'admin-jobs' };
    case 'sign-in':
    case 'sign-up':
    case 'forgot':
      return { page: rest };
  }
  const job = /^jobs\/([^/]+)$/.exec(rest);
  if (job) {
    try {
      return { page: 'job', id: decodeURIComponent(job[1]) };
    } catch {
      return { page: 'not-found' };
    }
  }
  return { page: 'not-found' };
}

/** The address of a route (what links and `history.pushState` use). */
export function routeHref(route: Route, baseUrl: string): string {
  const root = appRoot(baseUrl);
  switch (route.page) {
    case 'jobs':
      return route.group ? `${root}?group=${encodeURIComponent(route.group)}` : root;
    case 'job':
      return `${root}jobs/${encodeURIComponent(route.id ?? '')}`;
    case 'admin-users':
      return `${root}admin/users`;
    case 'admin-jobs':
      return `${root}admin/jobs`;
    case 'not-found':
      return root;
    default:
      return `${root}${route.page}`;
  }
}

export function appRoot(baseUrl: string): string {
  return (baseUrl.endsWith('/') ? baseUrl : baseUrl + '/') + 'qjm/';
}

export const TITLES: Record<Page, string> = {
  jobs: 'Your quantum jobs',
  job: 'Job',
  account: 'Account',
  notifications: 'Notifications',
  'admin-users': 'Users',
  'admin-jobs': 'All jobs',
  'sign-in': 'Sign in',
  'sign-up': 'Create an account',
  forgot: 'Forgot password',
  'not-found': 'Not found'
};
