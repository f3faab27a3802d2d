/**
 * Pure panel state and decisions: no DOM, no fetch, no JupyterLab imports.
 *
 * Everything the panel decides (how a changes-feed page merges into the list, which
 * transitions deserve a toast, how long to wait after an error) lives here so it can
 * be unit tested in plain Node (`jlpm test`).
 */

/** The server's status vocabulary (qjm_jupyter/statuses.py, mirrored; the server normalizes). */
export const STATUSES = [
  'INITIALIZING',
  'QUEUED',
  'VALIDATING',
  'RUNNING',
  'CANCELLED',
  'DONE',
  'ERROR'
] as const;
export type Status = (typeof STATUSES)[number];

export const FINAL_STATUSES: ReadonlySet<string> = new Set(['DONE', 'ERROR', 'CANCELLED']);

export interface StatusEvent {
  status: string;
  at: string;
  reason?: string | null;
}

/** `JobOut` of server_ext/API.md. */
export interface Job {
  id: string;
  job_id: string;
  backend: string | null;
  instance: string | null;
  channel: string | null;
  source: string;
  created: string | null;
  notify_status: string[];
  label: string | null;
  group: string | null;
  status: string;
  history: StatusEvent[];
  watch_state: string;
  error_reason: string | null;
  last_poll_at: string | null;
  last_error: string | null;
  registered_at: string;
  updated_at: string;
  ibm_url: string | null;
  /** IBM Quantum's own running/finished times and billed seconds, once reported. */
  started?: string | null;
  finished?: string | null;
  usage_seconds?: number | null;
  /** A local job's pending cancel (its kernel acts on it). */
  cancel_requested_at?: string | null;
}

/**
 * The job fields the panel's and the web UI's job list show (`GET jobs?fields=`), toasts
 * included: the row (label, group, status with its timeline, backend, link, times, error,
 * a pending cancel), the notices editor (`notify_status`), Cancel (`source`), sorting
 * (`created`, `registered_at`) and merging (`updated_at`). `history` stays because toasts
 * tell which statuses a job passed through between two polls; `watch_state` keeps a job's
 * open page current. The page reads the rest (instance, poll details) once with
 * `GET jobs/{id}`. A field a list shows must be added here.
 */
export const LIST_FIELDS = [
  'id',
  'job_id',
  'backend',
  'source',
  'created',
  'notify_status',
  'label',
  'group',
  'status',
  'history',
  'watch_state',
  'error_reason',
  'registered_at',
  'updated_at',
  'ibm_url',
  'cancel_requested_at'
] as const;

/** A job as a list carries it (LIST_FIELDS). */
export type ListedJob = Pick<Job, (typeof LIST_FIELDS)[number]>;

export interface CancelResult {
  state: 'cancelled' | 'requested';
  message: string;
  job: Job;
}

/** A notification channel as the server shows it: never its URL (which holds its secret). */
export interface Channel {
  id: string;
  scheme: string;
  host: string;
  label: string | null;
  notify_status: string[];
  enabled: boolean;
  created_at: string;
  updated_at: string;
}

export interface ChannelIn {
  url: string;
  label?: string | null;
  notify_status?: string[];
}

export interface NotificationPreferences {
  mail_stopped: boolean;
  mail_stopped_at: string | null;
  /** IANA zone of the local times below. */
  time_zone: string;
  quiet_start: string | null;
  quiet_end: string | null;
  /** Statuses mailed even during quiet hours. */
  quiet_breakthrough: string[];
  /** 0: a mail per change; N: one summary per N minutes (1440: daily). */
  digest_minutes: number;
}

export interface JobList {
  jobs: Job[];
  /** Jobs matching the filters; a lower bound when `total_exact` is false (more follow). */
  total: number;
  total_exact?: boolean;
  limit: number;
  offset: number;
  server_time: string;
  /** With `updated_after`: ids of jobs deleted since (by another tab, a kernel, retention). */
  deleted?: string[];
}

export interface IbmKeyState {
  set: boolean;
  last4: string | null;
  state: 'none' | 'ok' | 'invalid' | string;
  updated_at: string | null;
}

/** `UserOut` of server_ext/API.md. */
export interface User {
  id: string;
  email: string;
  is_verified: boolean;
  is_admin: boolean;
  is_active: boolean;
  created_at: string;
  default_instance: string | null;
  notify_default: string[] | null;
  ibm_key: IbmKeyState;
}

export interface LoginResult {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export interface DeliveryRecord {
  id: string;
  kind: string;
  subject: string;
  to: string;
  state: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  sent_at: string | null;
  job_id: string | null;
  /** null: an email; else the channel this delivery went to. */
  channel_id?: string | null;
}

export interface DeliveryLog {
  notifications: DeliveryRecord[];
  total: number;
}

export interface AdminUserList {
  users: User[];
  total: number;
}

/** `GET status`. `mode` and `remote_url` come from servers that forward to a group server. */
export interface ServerStatus {
  name: string;
  version: string;
  store?: string;
  watcher_running?: boolean;
  mail_enabled?: boolean;
  mode?: string;
  remote_url?: string | null;
  /** `jupyter` / `hub`: the host's sign-in is the qjm identity (no qjm sign-in form). */
  identity_source?: string;
  /** Where the Lab panel sends its calls instead (a member's Lab: the group's Hub service). */
  api_url?: string | null;
}

/** What the UI says about where its jobs come from; null when it is this server itself. */
export function connectionLabel(status: ServerStatus | null): string | null {
  if (!status || !status.remote_url) {
    return null;
  }
  return `Group server: ${status.remote_url}`;
}

// ---------------------------------------------------------------------------------------
// Job list

/** Newest first, like `GET jobs` without `updated_after`; ties broken by id for stability. */
export function sortJobs(jobs: Job[]): Job[] {
  const key = (j: Job): string => j.created || j.registered_at || '';
  return [...jobs].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) {
      return ka < kb ? 1 : -1;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

/**
 * Fold one changes-feed page into the list. The feed may repeat a job (its
 * `updated_after` bound is not guaranteed exclusive), so a record only replaces the
 * one we hold when it is at least as recent: a late page can never roll a row back.
 */
export function mergeJobs(current: Job[], changes: Job[]): Job[] {
  const byId = new Map<string, Job>();
  for (const job of current) {
    byId.set(job.id, job);
  }
  for (const job of changes) {
    const held = byId.get(job.id);
    if (!held || (job.updated_at || '') >= (held.updated_at || '')) {
      byId.set(job.id, job);
    }
  }
  return sortJobs([...byId.values()]);
}

export function removeJob(current: Job[], id: string): Job[] {
  return current.filter(j => j.id !== id);
}

/**
 * Fold one changes-feed answer into the list: changed jobs merge as in `mergeJobs`, and
 * jobs the server reports deleted go. A deletion wins over a change in the same answer:
 * ids are never reused, so a deleted job cannot come back.
 */
export function applyChanges(current: Job[], changes: Job[], deleted: readonly string[] = []): Job[] {
  const merged = mergeJobs(current, changes);
  if (deleted.length === 0) {
    return merged;
  }
  const gone = new Set(deleted);
  return merged.filter(j => !gone.has(j.id));
}

/**
 * The server remembers deletions for 7 days (server_ext/API.md). A cursor older than
 * that (a tab left hidden for a week) could miss some, so the feed reloads instead; a
 * day of margin covers clock skew between browser and server.
 */
export const CURSOR_MAX_AGE_MS = 6 * 24 * 3600 * 1000;

export function cursorExpired(cursor: string | null, now: Date = new Date()): boolean {
  if (cursor === null) {
    return false;
  }
  const t = new Date(cursor).getTime();
  return Number.isNaN(t) || now.getTime() - t > CURSOR_MAX_AGE_MS;
}

/** CSS class of a status chip; unknown statuses get a neutral chip instead of breaking. */
export function chipClass(status: string): string {
  const s = (status || '').toUpperCase();
  const known = (STATUSES as readonly string[]).includes(s);
  return `qjm-chip qjm-chip-${known ? s.toLowerCase() : 'unknown'}`;
}

/** Human label for a status ("DONE" -> "Done"). */
export function statusLabel(status: string): string {
  const s = (status || '?').toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export interface JobFilter {
  /** Empty: every status. */
  statuses: ReadonlySet<string>;
  /** Case-insensitive substring of label, job id or backend. */
  search: string;
}

export const NO_FILTER: JobFilter = { statuses: new Set(), search: '' };

export function filterJobs(jobs: Job[], filter: JobFilter): Job[] {
  const needle = filter.search.trim().toLowerCase();
  return jobs.filter(job => {
    if (filter.statuses.size > 0 && !filter.statuses.has(job.status)) {
      return false;
    }
    if (!needle) {
      return true;
    }
    return [job.label, job.job_id, job.backend, job.group].some(
      v => typeof v === 'string' && v.toLowerCase().includes(needle)
    );
  });
}

/** How many jobs sit in each status, for the filter buttons' counts. */
export function countByStatus(jobs: Job[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of jobs) {
    counts.set(job.status, (counts.get(job.status) || 0) + 1);
  }
  return counts;
}

/** Keep the vocabulary's order so the checkboxes and the PATCH body are stable. */
export function orderStatuses(values: Iterable<string>): string[] {
  const wanted = new Set(values);
  return STATUSES.filter(s => wanted.has(s));
}

// ---------------------------------------------------------------------------------------
// Toasts

export type ToastKind = 'success' | 'error' | 'info' | 'warning';

export interface ToastDecision {
  jobId: string;
  status: string;
  kind: ToastKind;
  message: string;
  url: string | null;
}

export function toastKind(status: string): ToastKind {
  switch (status) {
    case 'DONE':
      return 'success';
    case 'ERROR':
      return 'error';
    case 'CANCELLED':
      return 'warning';
    default:
      return 'info';
  }
}

export function jobName(job: Job): string {
  return job.label ? `${job.label} (${job.job_id})` : job.job_id;
}

/** Rank along a job's life (qjm_jupyter/statuses.py ORDER, mirrored). */
const ORDER: Record<string, number> = {
  INITIALIZING: 0,
  VALIDATING: 1,
  QUEUED: 2,
  RUNNING: 3,
  DONE: 4,
  ERROR: 4,
  CANCELLED: 4
};

/**
 * Statuses a job must have passed through between `previous` and `observed`, the
 * server's rule (watcher/rules.py): a non-final status or DONE implies the non-final
 * statuses ranked between; ERROR and CANCELLED imply nothing (a job can fail or be
 * cancelled in the queue without ever running).
 */
export function impliedStatuses(previous: string, observed: string): string[] {
  if (FINAL_STATUSES.has(observed) && observed !== 'DONE') {
    return [];
  }
  const low = ORDER[previous] ?? 0;
  const high = ORDER[observed] ?? 0;
  return STATUSES.filter(s => !FINAL_STATUSES.has(s) && ORDER[s] > low && ORDER[s] < high).sort(
    (a, b) => ORDER[a] - ORDER[b]
  );
}

/**
 * Which statuses a job entered between what we held (`before`) and what the feed says
 * now (`after`), oldest first, including the ones a poll skipped that the later status
 * proves (QUEUED then DONE passed RUNNING), as the server's mail reports them. The history
 * is authoritative; without history we fall back to comparing the current status.
 */
export function enteredStatuses(before: Job, after: Job): string[] {
  const seen = before.history ? before.history.length : 0;
  let fresh = (after.history || []).slice(seen).map(e => e.status);
  if (fresh.length === 0 && after.status !== before.status) {
    fresh = [after.status];
  }
  const out: string[] = [];
  let previous = before.status;
  for (const status of fresh) {
    for (const implied of impliedStatuses(previous, status)) {
      if (!out.includes(implied)) {
        out.push(implied);
      }
    }
    out.push(status);
    previous = status;
  }
  return out;
}

/** How a toast names a job: by where it runs (a local simulator job is no IBM Quantum job). */
export function jobNoun(job: Job): string {
  return job.source === 'local' ? 'Local simulator job' : 'IBM Quantum job';
}

/**
 * Toasts for one merge: one per status the user asked for (`notify_status`) that a job
 * entered since we last held it, RUNNING included, in order, even when the job also
 * finished before this poll. Only jobs we already held are announced (a job first seen
 * in the feed was just registered, or we were signed out).
 */
export function toastsFor(previous: ReadonlyMap<string, Job>, changes: Job[]): ToastDecision[] {
  const latest = new Map<string, Job>();
  for (const job of changes) {
    latest.set(job.id, job);
  }
  const out: ToastDecision[] = [];
  for (const job of latest.values()) {
    const before = previous.get(job.id);
    if (!before) {
      continue;
    }
    const wanted = new Set(job.notify_status || []);
    const hits = enteredStatuses(before, job).filter(s => wanted.has(s));
    for (const status of new Set(hits)) {
      const reason = status === 'ERROR' && job.error_reason ? `: ${job.error_reason}` : '';
      out.push({
        jobId: job.id,
        status,
        kind: toastKind(status),
        message: `${jobNoun(job)} ${jobName(job)} is ${statusLabel(status).toLowerCase()}${reason}`,
        url: job.ibm_url
      });
    }
  }
  return out;
}

/** What decides whether a toast also becomes a desktop notification. */
export interface DesktopContext {
  /** The user turned desktop notifications on (from the panel; never by default). */
  enabled: boolean;
  /** `Notification.permission` of the browser. */
  permission: 'default' | 'granted' | 'denied';
  /** `document.hidden`: nobody is looking at the Lab tab. */
  hidden: boolean;
}

export interface DesktopNotice {
  title: string;
  body: string;
  /** Same job and status: the browser replaces instead of stacking. */
  tag: string;
}

/** A desktop notification for a toast, or null when one is not wanted right now. */
export function desktopNotification(toast: ToastDecision, ctx: DesktopContext): DesktopNotice | null {
  if (!ctx.enabled || ctx.permission !== 'granted' || !ctx.hidden) {
    return null;
  }
  return {
    title: `Quantum job ${statusLabel(toast.status).toLowerCase()}`,
    body: toast.message,
    tag: `qjm:${toast.jobId}:${toast.status}`
  };
}

// ---------------------------------------------------------------------------------------
// Polling and errors

export const POLL_BASE_MS = 4000;
export const POLL_MAX_MS = 60000;

/** Exponential back-off after consecutive failures, capped; a 429's Retry-After wins. */
export function nextDelay(failures: number, retryAfterSeconds?: number | null): number {
  if (retryAfterSeconds && retryAfterSeconds > 0) {
    return Math.min(POLL_MAX_MS * 5, retryAfterSeconds * 1000);
  }
  if (failures <= 0) {
    return POLL_BASE_MS;
  }
  return Math.min(POLL_MAX_MS, POLL_BASE_MS * 2 ** Math.min(failures, 10));
}

export type Problem = 'unreachable' | 'upstream' | 'signed-out' | 'throttled' | 'server' | 'rejected';

/**
 * What the panel should tell the user about a failed call (0 = no HTTP answer at all).
 * 502 and 504 come from a server forwarding to a group server that is down or slow.
 */
export function classifyStatus(status: number): Problem {
  if (status === 0) {
    return 'unreachable';
  }
  if (status === 502 || status === 504) {
    return 'upstream';
  }
  if (status === 401) {
    return 'signed-out';
  }
  if (status === 429) {
    return 'throttled';
  }
  if (status === 404 || status >= 500) {
    // 404 on our routes: the qjm server extension is not loaded in this Jupyter server.
    return 'server';
  }
  return 'rejected';
}

/** The banner text for a feed that keeps failing, retrying in `secs` seconds. */
export function describeProblem(status: number, message: string, secs: number): string {
  switch (classifyStatus(status)) {
    case 'unreachable':
      return `Can't reach the qjm server. Retrying in ${secs} s.`;
    case 'upstream':
      return `Group server unreachable (${message}). Retrying in ${secs} s.`;
    case 'throttled':
      return `The server asked us to slow down. Retrying in ${secs} s.`;
    case 'server':
      return `The qjm server failed (${message}). Retrying in ${secs} s.`;
    default:
      return `${message}. Retrying in ${secs} s.`;
  }
}

// ---------------------------------------------------------------------------------------
// Links into the UI

/** What an emailed link into JupyterLab asks the panel to show (`lab?qjm-job=…`). */
export interface DeepLink {
  job: string | null;
  group: string | null;
  /** the account section (a refused IBM key or instance) */
  settings: boolean;
  /** channels, quiet hours and digests ("Manage notifications") */
  notifications: boolean;
}

export const DEEP_LINK_PARAMS = ['qjm-job', 'qjm-group', 'qjm-settings', 'qjm-notifications'] as const;

export function parseDeepLink(search: string): DeepLink | null {
  const q = new URLSearchParams(search);
  const job = q.get('qjm-job');
  const group = q.get('qjm-group');
  const settings = q.get('qjm-settings') === '1';
  const notifications = q.get('qjm-notifications') === '1';
  if (!job && !group && !settings && !notifications) {
    return null;
  }
  return { job: job || null, group: group || null, settings, notifications };
}

/** `search` without the deep-link parameters (kept: everything else, in order). */
export function stripDeepLink(search: string): string {
  const q = new URLSearchParams(search);
  for (const name of DEEP_LINK_PARAMS) {
    q.delete(name);
  }
  const rest = q.toString();
  return rest ? `?${rest}` : '';
}

// ---------------------------------------------------------------------------------------
// Formatting

/** The only way the panel ever shows a stored IBM key. */
export function keySummary(key: IbmKeyState | null | undefined): string {
  if (!key || !key.set) {
    return 'not set';
  }
  const tail = key.last4 ? `, ends with …${key.last4}` : '';
  const state = key.state === 'invalid' ? ' (rejected by IBM Quantum)' : '';
  return `set${tail}${state}`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Local "YYYY-MM-DD HH:MM"; today's times lose the date. */
export function formatTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return '—';
  }
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const sameDay =
    d.getFullYear() === now.getFullYear() &&
    d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate();
  return sameDay ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function formatAgo(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) {
    return '—';
  }
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) {
    return '—';
  }
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 45) {
    return 'just now';
  }
  if (s < 3600) {
    return `${Math.max(1, Math.round(s / 60))} min ago`;
  }
  if (s < 86400) {
    return `${Math.round(s / 3600)} h ago`;
  }
  return formatTime(iso, now);
}

// ---------------------------------------------------------------------------------------
// Cancel

/** A job can be cancelled while it is not final and no cancel is pending for it already. */
export function canCancel(job: Job): boolean {
  return !FINAL_STATUSES.has(job.status) && !job.cancel_requested_at;
}

/** The confirmation a cancel asks for: what happens depends on where the job runs. */
export function cancelQuestion(job: Job): { title: string; body: string; accept: string } {
  const name = job.label ? `"${job.label}" (${job.job_id})` : job.job_id;
  if (job.source === 'local') {
    return {
      title: 'Cancel this local job?',
      body: `${name} is stopped by the kernel that runs it, if that kernel is still running.`,
      accept: 'Cancel job'
    };
  }
  return {
    title: 'Cancel this job on IBM Quantum?',
    body: `${name} is cancelled on IBM Quantum with your stored API key. A cancelled job cannot be resumed.`,
    accept: 'Cancel job'
  };
}

// ---------------------------------------------------------------------------------------
// Channels

/** How a channel is named on screen: its scheme and host only (the rest of the URL is secret). */
export function channelTarget(channel: Pick<Channel, 'scheme' | 'host'>): string {
  return channel.host ? `${channel.scheme}://${channel.host}` : `${channel.scheme}://`;
}

export interface TestOutcome {
  state: 'pending' | 'sent' | 'failed';
  text: string;
}

/** How a channel's test message fared, from the channel's delivery log (`id`: the queued test). */
export function testOutcome(records: DeliveryRecord[], id: string | null): TestOutcome {
  const record = records.find(r => r.id === id) ?? (id === null ? records.find(r => r.kind === 'test') : undefined);
  if (!record || record.state === 'pending' || record.state === 'held') {
    const retry = record?.last_error ? ` (retrying: ${record.last_error})` : '';
    return { state: 'pending', text: `Test queued${retry}…` };
  }
  if (record.state === 'failed') {
    return { state: 'failed', text: `Test failed: ${record.last_error || 'the service refused it'}` };
  }
  return { state: 'sent', text: 'Test delivered.' };
}

// ---------------------------------------------------------------------------------------
// Notification preferences

export type DigestMode = 'off' | 'every' | 'daily';

export const DAILY_MINUTES = 1440;

export function digestMode(minutes: number): { mode: DigestMode; every: number } {
  if (!minutes || minutes <= 0) {
    return { mode: 'off', every: 60 };
  }
  if (minutes >= DAILY_MINUTES) {
    return { mode: 'daily', every: 60 };
  }
  return { mode: 'every', every: minutes };
}

/**
 * The zone the form shows: the stored one, unless it is only the server's default (UTC)
 * while this browser is elsewhere; then the browser's zone, marked as a suggestion to save.
 */
export function suggestedTimeZone(stored: string, browser: string | null | undefined): { zone: string; suggested: boolean } {
  if ((!stored || stored === 'UTC') && browser && browser !== 'UTC' && browser !== 'Etc/UTC') {
    return { zone: browser, suggested: true };
  }
  return { zone: stored || 'UTC', suggested: false };
}

export interface PreferencesDraft {
  timeZone: string;
  quiet: boolean;
  quietStart: string;
  quietEnd: string;
  /** ERROR mail arrives during quiet hours too. */
  errorsBreakThrough: boolean;
  digest: DigestMode;
  /** Minutes between digests in the `every` mode, as typed. */
  every: string;
}

export type PreferencesPatch = Partial<Omit<NotificationPreferences, 'mail_stopped_at'>>;

export interface FieldProblem {
  field: string;
  message: string;
}

const HHMM = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

/**
 * The `PUT notifications/preferences` body for a filled-in form, or the first problem
 * (named by the API's field, so the form shows it by that field, as it does the server's).
 * Other break-through statuses already stored are kept.
 */
export function preferencesPatch(
  draft: PreferencesDraft,
  current: Pick<NotificationPreferences, 'quiet_breakthrough'>
): { patch: PreferencesPatch } | { problem: FieldProblem } {
  const zone = draft.timeZone.trim();
  if (!zone) {
    return { problem: { field: 'time_zone', message: 'Choose a time zone, e.g. Europe/Zurich.' } };
  }
  const patch: PreferencesPatch = { time_zone: zone };
  if (draft.quiet) {
    const start = draft.quietStart.slice(0, 5);
    const end = draft.quietEnd.slice(0, 5);
    if (!HHMM.test(start)) {
      return { problem: { field: 'quiet_start', message: 'Give the time quiet hours begin (HH:MM).' } };
    }
    if (!HHMM.test(end)) {
      return { problem: { field: 'quiet_end', message: 'Give the time quiet hours end (HH:MM).' } };
    }
    if (start === end) {
      return { problem: { field: 'quiet_end', message: 'Quiet hours must end at another time than they begin.' } };
    }
    patch.quiet_start = start;
    patch.quiet_end = end;
  } else {
    patch.quiet_start = null;
    patch.quiet_end = null;
  }
  const others = (current.quiet_breakthrough || []).filter(s => s !== 'ERROR');
  patch.quiet_breakthrough = orderStatuses(draft.errorsBreakThrough ? [...others, 'ERROR'] : others);
  if (draft.digest === 'off') {
    patch.digest_minutes = 0;
  } else if (draft.digest === 'daily') {
    patch.digest_minutes = DAILY_MINUTES;
  } else {
    const n = Number(draft.every);
    if (!Number.isInteger(n) || n < 1 || n >= DAILY_MINUTES) {
      return { problem: { field: 'digest_minutes', message: 'Every 1 to 1439 minutes (or choose daily).' } };
    }
    patch.digest_minutes = n;
  }
  return { patch };
}

/** One line saying when mail arrives, for the form's summary. */
export function describePreferences(p: NotificationPreferences): string {
  if (p.mail_stopped) {
    return 'Notification email is stopped for this account.';
  }
  const parts: string[] = [];
  const { mode, every } = digestMode(p.digest_minutes);
  parts.push(mode === 'off' ? 'One email per change' : mode === 'daily' ? 'One summary email a day' : `One summary email every ${every} min`);
  if (p.quiet_start && p.quiet_end) {
    const through = p.quiet_breakthrough.length ? ` (${p.quiet_breakthrough.map(statusLabel).join(', ')} mail still arrives at once)` : '';
    parts.push(`quiet ${p.quiet_start}–${p.quiet_end} ${p.time_zone}${through}`);
  }
  return parts.join('; ') + '.';
}

// ---------------------------------------------------------------------------------------
// Desktop notifications (the panel's switch)

export interface DesktopSwitchState {
  /** What the switch says now. */
  text: string;
  /** The button's label, or null when there is nothing to click. */
  action: string | null;
  on: boolean;
}

export function desktopSwitchState(enabled: boolean, permission: DesktopContext['permission'], supported: boolean): DesktopSwitchState {
  if (!supported) {
    return { text: 'This browser has no desktop notifications.', action: null, on: false };
  }
  if (permission === 'denied') {
    return {
      text: 'Blocked: this browser denied desktop notifications for this site. Allow them in the site settings to use them.',
      action: null,
      on: false
    };
  }
  if (enabled && permission === 'granted') {
    return { text: 'On: job notices also show on the desktop while this tab is hidden.', action: 'Turn off desktop notifications', on: true };
  }
  return {
    text: 'Off. Turning them on asks the browser for permission.',
    action: 'Turn on desktop notifications',
    on: false
  };
}
