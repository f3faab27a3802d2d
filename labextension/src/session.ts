/**
 * Where the qjm JWT lives in a browser: memory, the tab's `sessionStorage`, and the
 * other live tabs of this server, reached over a `BroadcastChannel`.
 *
 * Never `localStorage`: a token there outlives every tab and is readable by any later
 * page of the origin. `sessionStorage` keeps a reload signed in; the channel lets a
 * new tab (a link from an email, "open in new tab") ask a live tab for its session, so
 * the user does not sign in again while one tab of theirs is open. Closing the last
 * tab forgets the token. The channel is same-origin only by the browser's rules, and
 * its name carries the server's API root, so two servers on one origin never mix.
 */

export interface StoredSession {
  token: string;
  /** Epoch ms after which the token is certainly dead; 0 if unknown. */
  expiresAt: number;
  email: string;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface Channel {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

type Message =
  | { type: 'ask' }
  | { type: 'session'; session: StoredSession }
  | { type: 'signout'; token: string };

export interface SessionShareOptions {
  /** `window.sessionStorage` by default; null for memory only. */
  storage?: KeyValueStore | null;
  /** A `BroadcastChannel` by default; null for this tab only. */
  channel?: Channel | null;
  now?: () => number;
}

export function isLive(s: StoredSession | null | undefined, now: number): s is StoredSession {
  return !!s && typeof s.token === 'string' && s.token.length > 0 && !(s.expiresAt && s.expiresAt <= now);
}

export class SessionShare {
  /**
   * @param key names the session: the storage key and the channel name.
   * @param onChange called when another tab signs this one in or out (not for `set`).
   */
  constructor(
    readonly key: string,
    private readonly onChange: (session: StoredSession | null) => void,
    options: SessionShareOptions = {}
  ) {
    this._now = options.now ?? Date.now;
    this._storage = options.storage === undefined ? defaultStorage() : options.storage;
    this._channel = options.channel === undefined ? defaultChannel(key) : options.channel;
    this._current = this._load();
    if (this._channel) {
      this._channel.onmessage = event => this._receive(event.data as Message);
      if (!this._current) {
        this._post({ type: 'ask' });
      }
    }
  }

  get current(): StoredSession | null {
    if (this._current && !isLive(this._current, this._now())) {
      this._current = null;
      this._save();
    }
    return this._current;
  }

  /** This tab signed in (tell the other tabs) or out (`broadcast`: sign them out too). */
  set(session: StoredSession | null, broadcast = true): void {
    const previous = this._current;
    this._current = session;
    this._save();
    if (!broadcast) {
      return;
    }
    if (session) {
      this._post({ type: 'session', session });
    } else if (previous) {
      this._post({ type: 'signout', token: previous.token });
    }
  }

  dispose(): void {
    if (this._channel) {
      this._channel.onmessage = null;
      this._channel.close();
      this._channel = null;
    }
  }

  private _receive(message: Message): void {
    if (!message || typeof message !== 'object') {
      return;
    }
    const mine = this.current;
    if (message.type === 'ask') {
      if (mine) {
        this._post({ type: 'session', session: mine });
      }
    } else if (message.type === 'session') {
      // A tab signed in elsewhere never replaces a session this tab already has.
      if (!mine && isLive(message.session, this._now())) {
        this._current = { token: message.session.token, expiresAt: message.session.expiresAt, email: message.session.email };
        this._save();
        this.onChange(this._current);
      }
    } else if (message.type === 'signout') {
      if (mine && mine.token === message.token) {
        this._current = null;
        this._save();
        this.onChange(null);
      }
    }
  }

  private _post(message: Message): void {
    try {
      this._channel?.postMessage(message);
    } catch {
      // a closed channel: this tab alone
    }
  }

  private _load(): StoredSession | null {
    try {
      const raw = this._storage?.getItem(this.key);
      const s = raw ? (JSON.parse(raw) as StoredSession) : null;
      if (isLive(s, this._now())) {
        return s;
      }
      if (raw) {
        this._storage?.removeItem(this.key);
      }
    } catch {
      // unreadable: start signed out
    }
    return null;
  }

  private _save(): void {
    try {
      if (this._current) {
        this._storage?.setItem(this.key, JSON.stringify(this._current));
      } else {
        this._storage?.removeItem(this.key);
      }
    } catch {
      // storage disabled (privacy mode): memory only
    }
  }

  private _now: () => number;
  private _storage: KeyValueStore | null;
  private _channel: Channel | null;
  private _current: StoredSession | null;
}

function defaultStorage(): KeyValueStore | null {
  try {
    return typeof window !== 'undefined' ? window.sessionStorage : null;
  } catch {
    return null;
  }
}

function defaultChannel(key: string): Channel | null {
  try {
    return typeof BroadcastChannel === 'function' ? (new BroadcastChannel(key) as unknown as Channel) : null;
  } catch {
    return null;
  }
}
