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
  return async (url, init) => {
    const headers = new Headers(init.headers);
    headers.set('X-XSRFToken', xsrf);
    const response = await fetch(url, { ...init, headers, credentials: 'same-origin' });
    if (response.status === 401) {
      signInAgain();
    }
    return response;
  };
}

const REAUTH_KEY = 'qjm-host-reauth';
const REAUTH_EVERY_MS = 60000;

/**
 * The host's session for this page ended while it was open (the service's Hub OAuth
 * cookie or Jupyter's login cookie expired): loading the page again signs in again the
 * host's way (through the Hub's OAuth, silently while the Hub session lasts) and lands
 * where the user was. At most once a minute, so a host that keeps refusing shows its
 * error instead of reloading forever.
 */
function signInAgain(): void {
  const last = Number(window.sessionStorage.getItem(REAUTH_KEY) || 0);
  if (Date.now() - last > REAUTH_EVERY_MS) {
    window.sessionStorage.setItem(REAUTH_KEY, String(Date.now()));
    window.location.reload();
  }
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
