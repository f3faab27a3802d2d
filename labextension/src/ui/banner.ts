/**
 * One line at the top: what the user just did ("Notices saved"), or why the live list
 * is stale ("Group server unreachable. Retrying in 8 s") with a button to retry now.
 */

import type { QJMApi } from '../api';
import { fill, h } from '../dom';
import type { JobFeed } from '../feed';
import { describeProblem } from '../model';
import type { NoticeKind } from './parts';

type Notice = { kind: NoticeKind; text: string } | null;

export class Banner {
  readonly node = h('div', { className: 'qjm-banner', hidden: true });

  constructor(
    private readonly api: QJMApi,
    private readonly feed: JobFeed
  ) {
    feed.stateChanged.connect(this.render, this);
  }

  dispose(): void {
    this.feed.stateChanged.disconnect(this.render, this);
  }

  say(kind: NoticeKind, text: string): void {
    this._notice = { kind, text };
    this.render();
  }

  clear(): void {
    this._notice = null;
    this.render();
  }

  render(): void {
    let notice: Notice = this._notice;
    const problem = this.feed.problem;
    const failing = this.api.signedIn && problem && this.feed.state === 'retrying';
    if (failing) {
      const secs = Math.round(this.feed.retryIn / 1000);
      notice = { kind: 'error', text: describeProblem(problem.status, problem.message, secs) };
    }
    this.node.hidden = !notice;
    this.node.className = `qjm-banner qjm-banner-${notice?.kind ?? 'info'}`;
    this.node.setAttribute('role', notice?.kind === 'error' ? 'alert' : 'status');
    if (!notice) {
      fill(this.node);
      return;
    }
    fill(
      this.node,
      h('span', { className: 'qjm-banner-text' }, notice.text),
      h(
        'button',
        {
          type: 'button',
          className: 'qjm-button qjm-button-small',
          onClick: () => (failing ? this.feed.refresh() : this.clear())
        },
        failing ? 'Retry now' : 'Dismiss'
      )
    );
  }

  private _notice: Notice = null;
}
