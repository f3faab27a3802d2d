import { describe, expect, it } from 'vitest';

import { joinUrl } from '../src/api';
import { classifyStatus, connectionLabel, describeProblem, parseDeepLink, stripDeepLink } from '../src/model';
import { parseRoute, routeHref } from '../src/webui/routes';

describe('web UI routes', () => {
  const base = '/user/ada/';
  it.each([
    ['/user/ada/qjm/', '', { page: 'jobs' }],
    ['/user/ada/qjm', '', { page: 'jobs' }],
    ['/user/ada/qjm/', '?group=sweep%201', { page: 'jobs', group: 'sweep 1' }],
    ['/user/ada/qjm/jobs/j_1', '', { page: 'job', id: 'j_1' }],
    ['/user/ada/qjm/jobs/a%2Fb', '', { page: 'job', id: 'a/b' }],
    ['/user/ada/qjm/account', '', { page: 'account' }],
    ['/user/ada/qjm/account/', '', { page: 'account' }],
    ['/user/ada/qjm/admin', '', { page: 'admin-users' }],
    ['/user/ada/qjm/admin/jobs', '', { page: 'admin-jobs' }],
    ['/user/ada/qjm/sign-up', '', { page: 'sign-up' }],
    ['/user/ada/qjm/forgot', '', { page: 'forgot' }],
    ['/user/ada/qjm/nope', '', { page: 'not-found' }],
    ['/user/bob/qjm/', '', { page: 'not-found' }],
    ['/user/ada/qjm/jobs/%E0%A4%A', '', { page: 'not-found' }]
  ])('%s%s', (path, search, route) => {
    expect(parseRoute(path, search, base)).toEqual(route);
  });

  it('round-trips every page through its address', () => {
    for (const route of [
      { page: 'jobs' as const },
      { page: 'jobs' as const, group: 'g/1 &x' },
      { page: 'job' as const, id: 'j_1/?' },
      { page: 'account' as const },
      { page: 'admin-users' as const },
      { page: 'admin-jobs' as const },
      { page: 'sign-in' as const }
    ]) {
      const url = new URL(routeHref(route, base), 'http://x');
      expect(parseRoute(url.pathname, url.search, base)).toEqual(route);
    }
  });
});

describe('emailed deep links into Lab', () => {
  it('reads job, group and settings', () => {
    const none = { job: null, group: null, settings: false, notifications: false };
    expect(parseDeepLink('?qjm-job=j_1')).toEqual({ ...none, job: 'j_1' });
    expect(parseDeepLink('?qjm-settings=1')).toEqual({ ...none, settings: true });
    expect(parseDeepLink('?qjm-notifications=1')).toEqual({ ...none, notifications: true });
    expect(parseDeepLink('?qjm-group=a%20b&reset=')).toEqual({ ...none, group: 'a b' });
    expect(parseDeepLink('?token=x')).toBeNull();
    expect(parseDeepLink('')).toBeNull();
  });

  it('drops only its own parameters from the address', () => {
    expect(stripDeepLink('?qjm-job=j_1')).toBe('');
    expect(stripDeepLink('?reset&qjm-job=j_1&x=1')).toBe('?reset=&x=1');
    expect(stripDeepLink('?qjm-notifications=1&x=1')).toBe('?x=1');
  });
});

describe('remote mode', () => {
  it('names the group server only when there is one', () => {
    expect(connectionLabel(null)).toBeNull();
    expect(connectionLabel({ name: 'qjm-jupyter', version: '1', mode: 'local', remote_url: null })).toBeNull();
    expect(connectionLabel({ name: 'qjm-jupyter', version: '1', mode: 'remote', remote_url: 'https://qjm.lab.org/' })).toBe(
      'Group server: https://qjm.lab.org/'
    );
  });

  it('says "group server unreachable" for 502 and 504, not "qjm server failed"', () => {
    expect(classifyStatus(502)).toBe('upstream');
    expect(classifyStatus(504)).toBe('upstream');
    expect(classifyStatus(500)).toBe('server');
    expect(describeProblem(502, 'bad gateway', 8)).toMatch(/^Group server unreachable .* Retrying in 8 s\.$/);
    expect(describeProblem(0, '', 4)).toMatch(/Can't reach the qjm server/);
  });
});

describe('joinUrl', () => {
  it('joins base URLs and paths with one slash each', () => {
    expect(joinUrl('/', 'qjm', 'api')).toBe('/qjm/api/');
    expect(joinUrl('/user/ada', 'qjm/', '/api')).toBe('/user/ada/qjm/api/');
    expect(joinUrl('http://h:8888/base/', 'qjm')).toBe('http://h:8888/base/qjm/');
  });
});
