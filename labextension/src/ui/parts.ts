/**
 * What every UI part (sign-in, job list, account) is given by its host: the Lab panel
 * wraps them in a Lumino widget, the web UI puts them on pages. Hosts differ in how
 * they ask for confirmation (Lab's dialog, the web UI's `<dialog>`), in their icons
 * (Lab's icons follow its theme) and in where a job links to.
 */

import type { QJMApi } from '../api';
import type { JobFeed } from '../feed';
import type { Job } from '../model';

export type NoticeKind = 'error' | 'info' | 'success';
export type Say = (kind: NoticeKind, text: string) => void;

export interface ConfirmOptions {
  title: string;
  body: string;
  /** The label of the button that goes ahead ("Delete"). */
  accept: string;
}
export type Confirm = (options: ConfirmOptions) => Promise<boolean>;

export interface Icons {
  edit(): Element;
  remove(): Element;
  bell(): Element;
  refresh(): Element;
  account(): Element;
  stop(): Element;
}

export interface PartOptions {
  api: QJMApi;
  say: Say;
  confirm: Confirm;
  icons: Icons;
}

export interface JobPartOptions extends PartOptions {
  feed: JobFeed;
  /** A page of its own for a job (the web UI's `qjm/jobs/{id}`); none in the Lab panel. */
  jobHref?: (job: Job) => string | null;
}
