/**
 * Typed client for the qjm REST API (server_ext/API.md): the one client the Lab panel
 * and the web UI share. Framework-free (no JupyterLab import), so the web UI bundle
 * carries it without Lab.
 *
 * It uses plain `fetch` and not `ServerConnection.makeRequest`, because that would add
 * Jupyter's `Authorization: token …` header, and qjm routes want a qjm JWT in that
 * header instead. Where the JWT lives is `session.ts`'s business: memory,
 * `sessionStorage` and the other live tabs, never `localStorage`.
 *
 * Where the server's identity source is `jupyter` or `hub`, the host (Jupyter, or
 * JupyterHub) has already authenticated the page: requests then go through a `HostFetch`
 * the Lab plugin hands over (Lab's own connection: its token or cookie plus the XSRF
 * header Jupyter requires), and there is nothing to sign in to.
 */

import { ISignal, Signal } from '@lumino/signaling';

import type {
  AdminUserList,
  CancelResult,
  Channel,
  ChannelIn,
  DeliveryLog,
  Job,
  JobList,
  LoginResult,
  NotificationPreferences,
  ServerStatus,
  User
} from './model';
import { SessionShare, SessionShareOptions, StoredSession } from './session';

/** Every request gives up after this long, so a stalled server shows up as "unreachable". */
const TIMEOUT_MS = 15000;

/** Join a server base URL (`/`, `/user/ada/`) and a path without doubling slashes. */
export function joinUrl(base: string, ...parts: string[]): string {
  let out = base.endsWith('/') ? base : base + '/';
  for (const part of parts) {
    out += part.replace(/^\/+/, '');
    if (!out.endsWith('/')) {
      out += '/';
    }
  }
  return out;
}

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

type Query = Record<string, string | number | boolean | string[] | null | undefined>;

export interface JobQuery {
  status?: string[];
  active?: boolean;
  label?: string;
  updated_after?: string;
  limit?: number;
  offset?: number;
  /** Only these JobOut fields (and `id`) per job. */
  fields?: readonly string[];
  /** 'capped' (the default): `total` counts up to 1,000 past the page. */
  total?: 'capped' | 'exact';
}

export interface MePatch {
  email?: string;
  password?: string;
  current_password?: string;
  ibm_quantum_token?: string | null;
  default_instance?: string | null;
  notify_default?: string[];
}

/** Sends a request with the host's credentials (in Lab: `ServerConnection.makeRequest`). */
export type HostFetch = (url: string, init: RequestInit) => Promise<Response>;

export interface RegisterIn {
  email: string;
  password: string;
  ibm_quantum_token?: string;
  default_instance?: string;
}

export class QJMApi {
  /**
   * @param baseUrl the Jupyter server's base URL (`PageConfig.getBaseUrl()` in Lab,
   *   the shell page's `data-qjm-base-url` in the web UI).
   */
  constructor(baseUrl: string, sessionOptions?: SessionShareOptions) {
    this._root = joinUrl(baseUrl, 'qjm', 'api');
    this._base = joinUrl(baseUrl);
    this._share = new SessionShare(
      `qjm-jupyter:session:${this._root}`,
      session => {
        // Another tab signed this one in or out.
        this._expired = false;
        this._sessionChanged.emit(session !== null);
      },
      sessionOptions
    );
  }

  /** The Jupyter server's base URL (the web UI is at `{base}qjm/`). */
  get baseUrl(): string {
    return this._base;
  }

  /** Emits whenever the user signs in or out (including a token the server refused). */
  get sessionChanged(): ISignal<this, boolean> {
    return this._sessionChanged;
  }

  get signedIn(): boolean {
    return this._host !== null || this._share.current !== null;
  }

  /** True when the host's sign-in is the qjm identity (no qjm sign-in form, no sign-out). */
  get hostIdentity(): boolean {
    return this._host !== null;
  }

  /**
   * Ask the server who identifies users; with `jupyter` (or `hub`), send requests through
   * `hostFetch` from now on. A member's Lab under JupyterHub may name the group's service
   * (`api_url`): the panel then talks to it, through the Hub's proxy. Never throws: an
   * unreachable server leaves the sign-in form.
   */
  async detectHostIdentity(hostFetch: HostFetch): Promise<boolean> {
    try {
      let status = await this.status();
      if (status.api_url) {
        this._root = new URL(status.api_url, window.location.href).href;
        status = await this.status();
      }
      if (status.identity_source === 'jupyter' || status.identity_source === 'hub') {
        this.useHostIdentity(hostFetch);
      }
    } catch {
      // leave the sign-in form in place
    }
    return this._host !== null;
  }

  /**
   * The host has signed this page in (the web UI's shell says so): send requests through
   * `hostFetch` from now on, with no qjm sign-in.
   */
  useHostIdentity(hostFetch: HostFetch): void {
    if (this._host === null) {
      this._host = hostFetch;
      this._expired = false;
      this._sessionChanged.emit(true);
    }
  }

  /** Email of the signed-in account, as given at sign-in (the panel refreshes it from `me`). */
  get email(): string {
    return this._share.current?.email ?? '';
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
    const session: StoredSession = {
      token: result.access_token,
      expiresAt: ttl > 0 ? Date.now() + ttl * 1000 : 0,
      email: result.user?.email ?? email
    };
    this._expired = false;
    this._share.set(session);
    this._sessionChanged.emit(true);
    return result;
  }

  /** 202 whether or not the address exists; a verification email is queued. */
  register(body: RegisterIn): Promise<{ message: string }> {
    return this._request('POST', 'auth/register', body, undefined, false);
  }

  forgotPassword(email: string): Promise<{ message: string }> {
    return this._request('POST', 'auth/password/forgot', { email }, undefined, false);
  }

  resetPassword(token: string, password: string): Promise<{ message: string }> {
    return this._request('POST', 'auth/password/reset', { token, password }, undefined, false);
  }

  confirmEmail(token: string): Promise<User> {
    return this._request('POST', 'auth/verify/confirm', { token }, undefined, false);
  }

  status(): Promise<ServerStatus> {
    return this._request('GET', 'status', undefined, undefined, false);
  }

  /**
   * Forget the token in this tab. Tokens are stateless JWTs, so this only drops the tab's
   * copy; `logoutEverywhere` asks the server to revoke every token.
   */
  signOut(expired = false): void {
    const was = this._share.current !== null;
    this._expired = expired;
    // A sign-out the user asked for signs out the tabs sharing this token; an expired
    // token is found out by each tab itself.
    this._share.set(null, !expired);
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

  async deleteMe(password: string): Promise<void> {
    await this._request<void>('DELETE', 'me', { password });
    this.signOut();
  }

  notifications(limit = 50, offset = 0): Promise<DeliveryLog> {
    return this._request('GET', 'notifications', undefined, { limit, offset });
  }

  sendTestEmail(): Promise<unknown> {
    return this._request('POST', 'notifications/test');
  }

  // -- admin --------------------------------------------------------------------------------

  adminUsers(limit = 200, offset = 0): Promise<AdminUserList> {
    return this._request('GET', 'admin/users', undefined, { limit, offset });
  }

  adminUpdateUser(id: string, patch: { is_active?: boolean; is_admin?: boolean }): Promise<User> {
    return this._request('PATCH', `admin/users/${encodeURIComponent(id)}`, patch);
  }

  adminJobs(query: JobQuery = {}): Promise<JobList> {
    return this._request('GET', 'admin/jobs', undefined, query as Query);
  }

  // -- jobs ---------------------------------------------------------------------------------

  jobs(query: JobQuery = {}): Promise<JobList> {
    return this._request('GET', 'jobs', undefined, query as Query);
  }

  job(id: string): Promise<Job> {
    return this._request('GET', `jobs/${encodeURIComponent(id)}`);
  }

  updateJob(id: string, patch: { notify_status?: string[]; label?: string }): Promise<Job> {
    return this._request('PATCH', `jobs/${encodeURIComponent(id)}`, patch);
  }

  deleteJob(id: string): Promise<void> {
    return this._request('DELETE', `jobs/${encodeURIComponent(id)}`);
  }

  /** IBM jobs: cancelled on IBM Quantum with the stored key; local jobs: through their kernel
   * (409 `kernel_gone` when it no longer runs, 409 `already_final` for a finished job). */
  cancelJob(id: string): Promise<CancelResult> {
    return this._request('POST', `jobs/${encodeURIComponent(id)}/cancel`);
  }

  // -- channels (Apprise URLs; the server never returns a URL, only its scheme and host) -------

  channels(): Promise<{ channels: Channel[] }> {
    return this._request('GET', 'channels');
  }

  addChannel(channel: ChannelIn): Promise<Channel> {
    return this._request('POST', 'channels', channel);
  }

  updateChannel(id: string, patch: Partial<ChannelIn> & { enabled?: boolean }): Promise<Channel> {
    return this._request('PATCH', `channels/${encodeURIComponent(id)}`, patch);
  }

  deleteChannel(id: string): Promise<void> {
    return this._request('DELETE', `channels/${encodeURIComponent(id)}`);
  }

  testChannel(id: string): Promise<{ message: string; id: string | null }> {
    return this._request('POST', `channels/${encodeURIComponent(id)}/test`);
  }

  channelDeliveries(id: string, limit = 50, offset = 0): Promise<DeliveryLog> {
    return this._request('GET', `channels/${encodeURIComponent(id)}/deliveries`, undefined, { limit, offset });
  }

  // -- notification preferences -------------------------------------------------------------

  preferences(): Promise<NotificationPreferences> {
    return this._request('GET', 'notifications/preferences');
  }

  updatePreferences(patch: Partial<Omit<NotificationPreferences, 'mail_stopped_at'>>): Promise<NotificationPreferences> {
    return this._request('PUT', 'notifications/preferences', patch);
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
    const host = auth && this._share.current === null ? this._host : null;
    if (auth && host === null) {
      const session = this._share.current;
      if (!session) {
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
    const init: RequestInit = {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // The qjm JWT is the credential. Cookies still go along (same origin) because a
      // JupyterHub proxy in front of this server routes and authorizes by cookie.
      credentials: 'same-origin',
      // Lab's makeRequest turns 'no-store' into an extra `?<timestamp>` parameter, which
      // the API refuses as unknown; 'no-cache' still revalidates every time.
      cache: host ? 'no-cache' : 'no-store',
      signal: controller.signal
    };
    try {
      const url = this._root + path + encodeQuery(query);
      response = host ? await host(url, init) : await fetch(url, init);
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
      if (response.status === 401 && auth && !host) {
        // Expired, revoked (logout-all) or signed with a rotated secret: ask again.
        this.signOut(true);
      }
      throw apiError;
    }
    return data as T;
  }

  private _root: string;
  private _base: string;
  private _share: SessionShare;
  private _expired = false;
  /** Set when the host's identity is the qjm identity (see `detectHostIdentity`). */
  private _host: HostFetch | null = null;
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
