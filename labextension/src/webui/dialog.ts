/**
 * Confirmation for the web UI: a modal `<dialog>`, which the browser makes keyboard
 * friendly (focus moves in, Escape cancels, focus returns) and which fits a phone.
 */

import { h } from '../dom';
import type { Confirm } from '../ui/parts';

export const dialogConfirm: Confirm = ({ title, body, accept }) =>
  new Promise<boolean>(resolve => {
    const cancel = h('button', { type: 'button', className: 'qjm-button', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', className: 'qjm-button qjm-button-danger', value: 'ok' }, accept);
    const dialog = h(
      'dialog',
      { className: 'qjm-dialog', 'aria-labelledby': 'qjm-dialog-title', 'aria-describedby': 'qjm-dialog-body' },
      h('h2', { id: 'qjm-dialog-title', className: 'qjm-dialog-title' }, title),
      h('p', { id: 'qjm-dialog-body' }, body),
      h('div', { className: 'qjm-form-actions' }, cancel, ok)
    );
    const finish = (answer: boolean): void => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', event => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
