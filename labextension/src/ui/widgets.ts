/** Small DOM helpers the parts share (buttons, focus kept across re-renders). */

import { h } from '../dom';
import { orderStatuses, STATUSES, statusLabel } from '../model';

export function iconButton(icon: Element, label: string, onClick: () => void, focusKey: string): HTMLButtonElement {
  return h(
    'button',
    {
      type: 'button',
      className: 'qjm-icon-button',
      'aria-label': label,
      title: label,
      'data-focus': focusKey,
      onClick: () => onClick()
    },
    icon
  );
}

export function button(
  label: string,
  onClick: () => void,
  attrs: Record<string, string | boolean | undefined> = {}
): HTMLButtonElement {
  const { className, ...rest } = attrs;
  return h(
    'button',
    { type: 'button', className: `qjm-button qjm-button-small ${className ?? ''}`.trim(), onClick: () => onClick(), ...rest },
    label
  );
}

/** Re-renders replace nodes; keep keyboard focus on "the same" control across them. */
export function focusKey(root: Element): string | null {
  const active = document.activeElement as HTMLElement | null;
  return active && root.contains(active) ? active.getAttribute('data-focus') : null;
}

export function restoreFocus(root: Element, key: string | null): void {
  if (!key) {
    return;
  }
  const active = document.activeElement as HTMLElement | null;
  if (active && root.contains(active) && active.getAttribute('data-focus') === key) {
    return;
  }
  root.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}

/** The message for a failed call the user made (sign-in, save): short, actionable. */
export function errorText(err: unknown): string {
  const e = err as { status?: number; message?: string; retryAfter?: number | null };
  if (e && e.status === 429) {
    return `Too many attempts. Try again in ${e.retryAfter ?? 60} s.`;
  }
  if (e && e.status === 0) {
    return 'The qjm server cannot be reached.';
  }
  if (e && (e.status === 502 || e.status === 504)) {
    return `The group server is unreachable: ${e.message}`;
  }
  return (e && e.message) || String(err);
}

/** One checkbox per status (a job's notices, a channel's statuses, the defaults): the group and its ticked values, in order. */
export function statusChecks(idPrefix: string, checked: Iterable<string>): { node: HTMLElement; values: () => string[] } {
  const wanted = new Set(checked);
  const inputs = STATUSES.map(s =>
    h('input', { type: 'checkbox', id: `${idPrefix}-${s}`, value: s, checked: wanted.has(s) })
  );
  const node = h(
    'div',
    { className: 'qjm-checks' },
    inputs.map(input => h('label', { className: 'qjm-check', for: input.id }, input, statusLabel(input.value)))
  );
  return { node, values: () => orderStatuses(inputs.filter(i => i.checked).map(i => i.value)) };
}
