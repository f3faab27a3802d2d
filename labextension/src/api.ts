/**
 * Typed client for the qjm REST API (server_ext/API.md).
 *
 * It uses plain `fetch` and not `ServerConnection.makeRequest`, because that would add
 * Jupyter's `Authorization: token …` header, and qjm routes want a qjm JWT in that
 * header instead. The JWT is kept in memory plus `sessionStorage`, so a page reload
 * keeps the user signed in for this tab, and closing the tab signs them out. It is
 * never put in `localStorage`, where it would outlive the tab and be shared with
 * every other tab.
 */

import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import type { DeliveryLog, Job, JobList, LoginResult, User } from './model';

const STORAGE_KEY = 'qjm-jupyter:session';
/** Every request gives up after this long, so a stalled server shows up as "unreachable". */
const TIMEOUT_MS = 15000;

/** A failed call. `status` 0 means no HTTP answer (network down, timeout). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly retryAfter: number | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface StoredSession {
  token: string;
  /** Epoch ms after which the token is certainly dead; 0 if unknown. */
  expiresAt: number;
  email: string;
}

type Query = Record<string, string | number | boolean | string[] | null | undefined>;

export interface JobQuery {
  status?: string[];
  active?: boolean;
  label?: string;
  updated_after?: string;
  limit?: number;
  offset?: number;
}

export interface MePatch {
  ibm_quantum_token?: string | null;
  default_instance?: string | null;
  notify_default?: string[];
}

export class QJMApi {
  constructor(baseUrl?: string) {
    this._root = URLExt.join(baseUrl ?? PageConfig.getBaseUrl(), 'qjm', 'api') + '/';
    this._session = QJMApi._load();
  }

  /** Emits whenever the user signs in or out (including a token the server refused). */
  get sessionChanged(): ISignal<this, boolean> {
    return this._sessionChanged;
  }

  get signedIn(): boolean {
    return this._session !== null;
  }

  /** Email of the signed-in account, as given at sign-in (the panel refreshes it from `me`). */
  get email(): string {
    return this._session?.email ?? '';
  }

  /** True when the last sign-out was the server refusing the token (expired or revoked). */
  get expired(): boolean {
    return this._expired;
  }

  get root(): string {
    return this._root;
  }

  // -- auth ---------------------------------------------------------------------------------

  async login(email: string, password: string): Promise<LoginResult> {
    const result = await this._request<LoginResult>('POST', 'auth/login', { email, password }, undefined, false);
    const ttl = Number(result.expires_in) || 0;
    this._session = {
      token: result.access_token,
      expiresAt: ttl > 0 ? Date.now() + ttl * 1000 : 0,
      email: result.user?.email ?? email
    };
    this._expired = false;
    QJMApi._save(this._session);
    this._sessionChanged.emit(true);
    return result;
  }

  /**
   * Forget the token in this tab. Tokens are stateless JWTs, so this only drops the tab's
   * copy; `logoutEverywhere` asks the server to revoke every token.
   */
  signOut(expired = false): void {
    const was = this._session !== null;
    this._expired = expired;
    this._session = null;
    QJMApi._save(null);
    if (was) {
      this._sessionChanged.emit(false);
    }
  }

  async logoutEverywhere(): Promise<void> {
    try {
      await this._request<void>('POST', 'auth/logout-all');
    } finally {
      this.signOut();
    }
  }

  requestVerification(email: string): Promise<{ message: string }> {
    return this._request('POST', 'auth/verify/request', { email }, undefined, false);
  }

  // -- me -----------------------------------------------------------------------------------

  me(): Promise<User> {
    return this._request('GET', 'me');
  }

  updateMe(patch: MePatch): Promise<User> {
    return this._request('PATCH', 'me', patch);
  }

  notifications(limit = 50, offset = 0): Promise<DeliveryLog> {
    return this._request('GET', 'notifications', undefined, { limit, offset });
  }

  // -- jobs ---------------------------------------------------------------------------------

  jobs(query: JobQuery = {}): Promise<JobList> {
    return this._request('GET', 'jobs', undefined, query as Query);
  }

  updateJob(id: string, patch: { notify_status?: string[]; label?: string }): Promise<Job> {
    return this._request('PATCH', `jobs/${encodeURIComponent(id)}`, patch);
  }

  deleteJob(id: string): Promise<void> {
    return this._request('DELETE', `jobs/${encodeURIComponent(id)}`);
  }

  // -- plumbing -----------------------------------------------------------------------------

  private async _request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Query,
    auth = true
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (auth) {
      const session = this._session;
      if (!session || (session.expiresAt && session.expiresAt <= Date.now())) {
        this.signOut(true);
        throw new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.');
      }
      headers['Authorization'] = `Bearer ${session.token}`;
    }
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(this._root + path + encodeQuery(query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // The qjm JWT is the credential. Cookies still go along (same origin) because a
        // JupyterHub proxy in front of this server routes and authorizes by cookie.
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal
      });
    } catch (err) {
      const aborted = controller.signal.aborted;
      throw new ApiError(
        0,
        'unreachable',
        aborted ? `The qjm server did not answer within ${TIMEOUT_MS / 1000} s.` : 'The qjm server cannot be reached.'
      );
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 204) {
      return undefined as T;
    }
    let data: any = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const err = data && typeof data === 'object' && data.error ? data.error : {};
      const retry = Number(response.headers.get('Retry-After')) || null;
      const apiError = new ApiError(
        response.status,
        String(err.code || `http_${response.status}`),
        String(err.message || response.statusText || `HTTP ${response.status}`),
        err.field ? String(err.field) : null,
        retry
      );
      if (response.status === 401 && auth) {
        // Expired, revoked (logout-all) or signed with a rotated secret: ask again.
        this.signOut(true);
      }
      throw apiError;
    }
    return data as T;
  }

  private static _load(): StoredSession | null {
    try {
      const raw = window.sessionStorage.getItem(STORAGE_KEY);
      if (!raw) {
        return null;
      }
      const s = JSON.parse(raw) as StoredSession;
      if (!s || typeof s.token !== 'string' || (s.expiresAt && s.expiresAt <= Date.now())) {
        window.sessionStorage.removeItem(STORAGE_KEY);
        return null;
      }
      return s;
    } catch {
      return null; // storage disabled (privacy mode): the token lives in memory only
    }
  }

  private static _save(s: StoredSession | null): void {
    try {
      if (s) {
        window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(s));
      } else {
        window.sessionStorage.removeItem(STORAGE_KEY);
      }
    } catch {
      // storage disabled: memory only
    }
  }

  private _root: string;
  private _session: StoredSession | null;
  private _expired = false;
  private _sessionChanged = new Signal<this, boolean>(this);
}

/** `?a=1&status=DONE&status=ERROR` (repeated keys for lists, as the server expects). */
export function encodeQuery(query?: Query): string {
  if (!query) {
    return '';
  }
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') {
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
