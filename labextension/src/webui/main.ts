/** Entry point of the web UI bundle (esbuild → qjm_jupyter_server/webui/static/webui.js). */

import '../../style/base.css';
import './webui.css';

import { HostFetch, QJMApi } from '../api';
import { WebApp } from './app';

/**
 * Requests with the cookie the host set for this page (Jupyter's login, or the Hub OAuth
 * cookie of this service) and the XSRF token the server put in the page: a cookie alone
 * is refused, by Jupyter for unsafe requests and by the Hub for any `fetch`.
 */
function cookieFetch(xsrf: string): HostFetch {
  return (url, init) => {
    const headers = new Headers(init.headers);
    headers.set('X-XSRFToken', xsrf);
    return fetch(url, { ...init, headers, credentials: 'same-origin' });
  };
}

function boot(): void {
  const root = document.getElementById('qjm-app');
  if (!root) {
    return;
  }
  const data = document.body.dataset;
  const api = new QJMApi(data.qjmBaseUrl || '/');
  // Under the host's identity the shell says the host signed this page in: no qjm sign-in.
  if (data.qjmIdentity && data.qjmXsrf) {
    api.useHostIdentity(cookieFetch(data.qjmXsrf));
  }
  new WebApp(root, api, data.qjmSignOut || null);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot);
} else {
  boot();
}
