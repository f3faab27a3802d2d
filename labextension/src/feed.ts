/**
 * Keeps the signed-in user's job list current by polling the jobs changes feed.
 *
 * Polling, and not a websocket, because the jobs API is plain REST behind a bearer JWT.
 * The watcher that learns about status changes may run in another process (a group
 * server), so there is no in-process event this server could push. A small
 * `updated_after` request every few seconds is cheap. It survives proxies and server
 * restarts, and it needs nothing from the server beyond the documented API.
 *
 * The feed runs whether or not the panel is visible, because toasts must still arrive
 * when the panel is collapsed. It stops while the browser tab is hidden, and it backs off
 * exponentially after errors.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, JobQuery, QJMApi } from './api';
import {
  applyChanges,
  cursorExpired,
  Job,
  JobList,
  LIST_FIELDS,
  mergeJobs,
  nextDelay,
  removeJob,
  sortJobs,
  ToastDecision,
  toastsFor
} from './model';

const PAGE = 200;
const MAX_PAGES = 10;

export type FeedState = 'idle' | 'live' | 'paused' | 'retrying' | 'signed-out';

export class JobFeed {
  constructor(api: QJMApi) {
    this._api = api;
    document.addEventListener('visibilitychange', this._onVisibility);
    api.sessionChanged.connect((_, signedIn) => {
      if (signedIn) {
        this.refresh();
      } else {
        this._reset('signed-out');
      }
    });
  }

  /** The job list changed (new data, or emptied on sign-out). */
  get changed(): ISignal<this, Job[]> {
    return this._changed;
  }

  /** Transitions the user asked to hear about. */
  get toasts(): ISignal<this, ToastDecision[]> {
    return this._toasts;
  }

  /** Feed state or problem changed. */
  get stateChanged(): ISignal<this, FeedState> {
    return this._stateChanged;
  }

  get jobs(): Job[] {
    return this._jobs;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get state(): FeedState {
    return this._state;
  }

  /** The last failure, cleared by the next success. */
  get problem(): ApiError | null {
    return this._problem;
  }

  /** Milliseconds until the next retry when `state` is 'retrying'. */
  get retryIn(): number {
    return this._delay;
  }

  /** Begin (or resume) polling if signed in. Never blocks: the first fetch is scheduled. */
  start(): void {
    if (!this._api.signedIn) {
      this._setState('signed-out');
      return;
    }
    this._started = true;
    this._schedule(0);
  }

  /** Reload everything now (after sign-in, or the refresh button). */
  refresh(): void {
    this._cursor = null;
    this._failures = 0;
    this.start();
  }

  /** Apply a server answer to a PATCH without waiting for the next poll. */
  upsert(job: Job): void {
    this._jobs = mergeJobs(this._jobs, [job]);
    this._changed.emit(this._jobs);
  }

  remove(id: string): void {
    this._jobs = removeJob(this._jobs, id);
    this._changed.emit(this._jobs);
  }

  dispose(): void {
    document.removeEventListener('visibilitychange', this._onVisibility);
    this._clearTimer();
    this._started = false;
    Signal.clearData(this);
  }

  // -- internals ----------------------------------------------------------------------------

  private _schedule(delay: number): void {
    this._clearTimer();
    this._delay = delay;
    this._timer = window.setTimeout(() => void this._tick(), delay);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private async _tick(): Promise<void> {
    this._timer = null;
    if (!this._started || !this._api.signedIn) {
      return;
    }
    if (document.hidden) {
      // Resumed by the visibilitychange listener.
      this._setState('paused');
      return;
    }
    if (this._inFlight) {
      this._again = true;
      return;
    }
    this._inFlight = true;
    const generation = this._generation;
    try {
      if (cursorExpired(this._cursor)) {
        this._cursor = null; // older than the server's memory of deletions: reload
      }
      const full = this._cursor === null;
      const { jobs, serverTime, deleted } = await this._fetch(this._cursor);
      if (generation !== this._generation) {
        return; // signed out (or in as someone else) meanwhile
      }
      const previous = new Map(this._jobs.map(j => [j.id, j] as [string, Job]));
      const decisions = this._loaded ? toastsFor(previous, jobs) : [];
      this._jobs = full ? sortJobs(jobs) : applyChanges(this._jobs, jobs, deleted);
      const removed = !full && deleted.some(id => previous.has(id));
      this._cursor = serverTime;
      this._failures = 0;
      this._problem = null;
      const first = !this._loaded;
      this._loaded = true;
      if (full || jobs.length > 0 || removed || first) {
        this._changed.emit(this._jobs);
      }
      if (decisions.length > 0) {
        this._toasts.emit(decisions);
      }
      this._setState('live', true);
      this._schedule(nextDelay(0));
    } catch (err) {
      if (generation !== this._generation) {
        return;
      }
      const e =
        err instanceof ApiError ? err : new ApiError(0, 'client', err instanceof Error ? err.message : String(err));
      this._problem = e;
      if (e.status === 401) {
        this._reset('signed-out'); // the api already dropped the token
        return;
      }
      this._failures += 1;
      const delay = nextDelay(this._failures, e.retryAfter);
      this._schedule(delay);
      this._setState('retrying', true);
    } finally {
      this._inFlight = false;
      if (this._again && generation === this._generation) {
        this._again = false;
        this._schedule(0);
      }
    }
  }

  /**
   * One snapshot (cursor null) or every change since the cursor, in pages. Deletions are
   * not paged (every page repeats them), so the first page's list is the whole list.
   */
  private async _fetch(cursor: string | null): Promise<{ jobs: Job[]; serverTime: string; deleted: string[] }> {
    if (cursor === null) {
      const page = await this._list({ limit: PAGE });
      return { jobs: page.jobs, serverTime: page.server_time, deleted: [] };
    }
    const all: Job[] = [];
    let deleted: string[] = [];
    let serverTime = cursor;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await this._list({ updated_after: cursor, limit: PAGE, offset: i * PAGE });
      if (i === 0) {
        // The first page's clock: anything changed after it comes back next time.
        serverTime = page.server_time || cursor;
        deleted = page.deleted || [];
      }
      all.push(...page.jobs);
      if (page.jobs.length < PAGE || (i + 1) * PAGE >= page.total) {
        break;
      }
    }
    return { jobs: all, serverTime, deleted };
  }

  /**
   * `GET jobs` with only the fields a list shows (LIST_FIELDS: about half the bytes of the
   * full record). A group server older than `fields=` answers 422 naming it: then the
   * full records are asked for, from then on.
   */
  private async _list(query: JobQuery): Promise<JobList> {
    if (this._fields) {
      try {
        return await this._api.jobs({ ...query, fields: LIST_FIELDS });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 422 && (err.field || '').startsWith('fields'))) {
          throw err;
        }
        this._fields = false;
      }
    }
    return this._api.jobs(query);
  }

  private _reset(state: FeedState): void {
    this._generation += 1;
    this._clearTimer();
    this._started = false;
    this._cursor = null;
    this._loaded = false;
    this._failures = 0;
    this._jobs = [];
    this._changed.emit(this._jobs);
    this._setState(state);
  }

  private _setState(state: FeedState, force = false): void {
    if (state !== this._state || force) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _onVisibility = (): void => {
    if (!document.hidden && this._started && this._state === 'paused') {
      this._schedule(0);
    }
  };

  private _api: QJMApi;
  private _fields = true;
  private _jobs: Job[] = [];
  private _cursor: string | null = null;
  private _loaded = false;
  private _started = false;
  private _failures = 0;
  private _delay = 0;
  private _timer: number | null = null;
  private _inFlight = false;
  private _again = false;
  private _generation = 0;
  private _problem: ApiError | null = null;
  private _state: FeedState = 'idle';
  private _changed = new Signal<this, Job[]>(this);
  private _toasts = new Signal<this, ToastDecision[]>(this);
  private _stateChanged = new Signal<this, FeedState>(this);
}
