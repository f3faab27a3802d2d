/**
 * Desktop notifications through the browser's Notification API: off until the user
 * turns them on with a click (the panel's switch, the web UI's, or Lab's command),
 * which is when the browser is asked for permission, never on load. The choice is kept
 * per browser in localStorage (it holds no secret).
 */

import { fill, h } from '../dom';
import { DesktopContext, desktopNotification, desktopSwitchState, ToastDecision } from '../model';
import type { Say } from './parts';

const KEY = 'qjm-jupyter:desktop-notifications';
const listeners = new Set<() => void>();

export function desktopSupported(): boolean {
  return typeof window !== 'undefined' && typeof window.Notification !== 'undefined';
}

export function desktopEnabled(): boolean {
  try {
    return window.localStorage.getItem(KEY) === 'on';
  } catch {
    return false;
  }
}

export function browserPermission(): DesktopContext['permission'] {
  return desktopSupported() ? window.Notification.permission : 'denied';
}

/** Called whenever the choice changes (Lab's command shows it as toggled). */
export function onDesktopChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed(): void {
  for (const listener of [...listeners]) {
    listener();
  }
}

/** Turn off, or turn on after asking the browser (from the user's click). Returns the new state. */
export async function toggleDesktop(say: Say): Promise<boolean> {
  if (desktopEnabled()) {
    window.localStorage.removeItem(KEY);
    changed();
    return false;
  }
  if (!desktopSupported()) {
    say('error', 'This browser has no desktop notifications.');
    return false;
  }
  const permission = await window.Notification.requestPermission();
  if (permission === 'granted') {
    window.localStorage.setItem(KEY, 'on');
    say('success', 'Desktop notifications are on while this tab is hidden.');
  } else {
    say('error', 'The browser did not allow desktop notifications.');
  }
  changed();
  return permission === 'granted';
}

/** Show the toasts as desktop notifications when wanted (on, allowed, and the tab hidden). */
export function toDesktop(decisions: ToastDecision[]): void {
  if (!desktopSupported()) {
    return;
  }
  const ctx: DesktopContext = { enabled: desktopEnabled(), permission: browserPermission(), hidden: document.hidden };
  for (const d of decisions) {
    const notice = desktopNotification(d, ctx);
    if (notice) {
      new window.Notification(notice.title, { body: notice.body, tag: notice.tag });
    }
  }
}

/** The switch: the current state in words and one button. */
export class DesktopSwitch {
  readonly node = h('section', { className: 'qjm-desktop', 'aria-labelledby': 'qjm-desktop-title' });

  constructor(private readonly say: Say) {
    this._off = onDesktopChange(() => this.render());
    this.render();
  }

  dispose(): void {
    this._off();
  }

  render(): void {
    const state = desktopSwitchState(desktopEnabled(), browserPermission(), desktopSupported());
    fill(
      this.node,
      h('h3', { className: 'qjm-section-title', id: 'qjm-desktop-title' }, 'Desktop notifications'),
      h('p', { className: 'qjm-desktop-state', 'data-on': state.on ? 'true' : 'false', role: 'status' }, state.text),
      state.action
        ? h(
            'button',
            {
              type: 'button',
              className: `qjm-button qjm-button-small ${state.on ? '' : 'qjm-button-accent'}`,
              'data-focus': 'desktop',
              onClick: () => void toggleDesktop(this.say).then(() => this.render())
            },
            state.action
          )
        : null
    );
  }

  private _off: () => void;
}
