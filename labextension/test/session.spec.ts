import { afterEach, describe, expect, it } from 'vitest';

import { KeyValueStore, SessionShare, StoredSession } from '../src/session';

class MemoryStore implements KeyValueStore {
  data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
  removeItem(k: string): void {
    this.data.delete(k);
  }
}

const KEY = 'qjm-jupyter:session:/qjm/api/';
const live = (token = 'jwt-1'): StoredSession => ({ token, expiresAt: Date.now() + 3600_000, email: 'ada@example.org' });
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));
/** Messages cross the channel asynchronously: wait for what must happen (a deadline, not a speed check). */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) {
    await sleep(10);
  }
}
/** For what must NOT happen: give the channel ample time to deliver first. */
const settle = (): Promise<void> => sleep(300);

/** Each "tab": its own sessionStorage, a real BroadcastChannel (Node's, same semantics). */
const open: SessionShare[] = [];
function tab(store = new MemoryStore(), key = KEY): { share: SessionShare; changes: (StoredSession | null)[]; store: MemoryStore } {
  const changes: (StoredSession | null)[] = [];
  const share = new SessionShare(key, s => changes.push(s), { storage: store });
  open.push(share);
  return { share, changes, store };
}

afterEach(() => {
  while (open.length) {
    open.pop()!.dispose();
  }
});

describe('SessionShare', () => {
  it('keeps the session in the tab storage across a reload, never elsewhere', () => {
    const a = tab();
    a.share.set(live());
    const reloaded = tab(a.store);
    expect(reloaded.share.current?.token).toBe('jwt-1');
    expect([...a.store.data.keys()]).toEqual([KEY]);
  });

  it('gives a new tab the session of a live tab (an emailed link opened in a new tab)', async () => {
    const a = tab();
    a.share.set(live('jwt-live'));
    const b = tab();
    expect(b.share.current).toBeNull();
    await until(() => b.share.current !== null);
    expect(b.share.current?.token).toBe('jwt-live');
    expect(b.changes.map(s => s?.token)).toEqual(['jwt-live']);
    expect(b.store.getItem(KEY)).toContain('jwt-live');
  });

  it('signs in tabs that wait on the sign-in form, but never replaces a session', async () => {
    const a = tab();
    const b = tab();
    const c = tab();
    c.share.set(live('jwt-c'), false);
    a.share.set(live('jwt-a'));
    await until(() => b.share.current !== null);
    await settle();
    expect(b.share.current?.token).toBe('jwt-a');
    expect(c.share.current?.token).toBe('jwt-c');
  });

  it('signs out the tabs sharing the token when one signs out, not tabs with another token', async () => {
    const a = tab();
    a.share.set(live('jwt-a'));
    const b = tab();
    await until(() => b.share.current !== null);
    const other = tab();
    other.share.set(live('jwt-other'), false);
    a.share.set(null);
    await until(() => b.share.current === null);
    await settle();
    expect(b.share.current).toBeNull();
    expect(b.changes.at(-1)).toBeNull();
    expect(other.share.current?.token).toBe('jwt-other');
  });

  it('an expired token is neither loaded, shared nor adopted', async () => {
    const store = new MemoryStore();
    store.setItem(KEY, JSON.stringify({ token: 'old', expiresAt: Date.now() - 1, email: 'x' }));
    const a = tab(store);
    expect(a.share.current).toBeNull();
    expect(store.getItem(KEY)).toBeNull();
    const b = tab();
    b.share.set({ token: 'dead', expiresAt: Date.now() - 1, email: 'x' });
    await settle();
    expect(a.share.current).toBeNull();
  });

  it('two servers on one origin never share a session', async () => {
    const a = tab(new MemoryStore(), 'qjm-jupyter:session:/user/ada/qjm/api/');
    a.share.set(live('ada'));
    const b = tab(new MemoryStore(), 'qjm-jupyter:session:/user/bob/qjm/api/');
    await settle();
    expect(b.share.current).toBeNull();
  });
});
