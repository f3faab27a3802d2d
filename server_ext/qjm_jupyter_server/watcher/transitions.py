"""Applying an observed status to a stored job: the one write path for status changes.

The poller (IBM jobs) and the kernel report endpoint (local jobs) both come here, so
mail, history and the compare-and-set fence behave the same for both.

Order matters for crash safety: the outbox rows are written FIRST,
the fenced job write SECOND. A crash in between leaves the job at its old status;
the next observation computes the same due statuses, the same dedupe key, and the
outbox ignores the second insert. The other order could lose a mail for good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ..domain import Job, JobQuery, Notification, StatusEvent, User
from ..errors import AlreadyExists, NotFound
from ..notify.messages import MessageFactory
from ..notify.schedule import hold_until
from ..store import Store
from ..store.records import capped_history
from .rules import Decision, decide, group_milestones, hears_milestone

log = logging.getLogger("qjm.watcher")

# Jobs listed in a group milestone email; the counts cover the whole group and the
# email links to the rest in JupyterLab.
GROUP_MAIL_ROWS = 20


def may_mail(user: User, messages: MessageFactory) -> bool:
    """Job mail goes only to verified addresses unless the operator allows otherwise, and
    never to an account whose owner stopped it (the mail footer's "stop all" link)."""
    if user.mail_stopped_at is not None:
        return False
    return user.is_verified or not messages.settings.require_verified_email


@dataclass(frozen=True)
class IBMFacts:
    """What IBM said about the job beyond its status, stored with the status change so
    the mail (and the API) show IBM's own figures: the backend (a job registered by id
    has none), IBM's running/finished times and the billed quantum seconds."""

    backend: str | None = None
    created: int | None = None
    started: int | None = None
    finished: int | None = None
    usage_seconds: float | None = None


def _fact_changes(job: Job, facts: IBMFacts | None) -> dict[str, Any]:
    if facts is None:
        return {}
    out: dict[str, Any] = {}
    if facts.backend and not job.backend:
        out["backend"] = facts.backend
    if facts.created is not None and job.created is None:
        out["created"] = facts.created
    for name in ("started", "finished", "usage_seconds"):
        value = getattr(facts, name)
        if value is not None:
            out[name] = value
    return out


def as_stored(job: Job, changes: dict[str, Any], event: StatusEvent) -> Job:
    """The job as `cas_job(changes, append_history=[event])` will store it: what a mail
    about this change must read (the history includes the status just entered)."""
    return replace(job, **changes, history=capped_history(job.history, [event]))


def _changes(job: Job, d: Decision, reason: str | None, now: int) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "status": d.status,
        "watch_state": d.watch_state,
        "notified": list(d.notified),
        "updated_at": now,
        "last_poll_at": now,
        "misses": 0,
        "last_error": None,
    }
    if d.status in ("ERROR", "CANCELLED"):
        changes["error_reason"] = reason or job.error_reason
    return changes


async def apply_observation(
    store: Store,
    messages: MessageFactory,
    user: User,
    job: Job,
    observed: str,
    reason: str | None,
    now: int,
    *,
    facts: IBMFacts | None = None,
) -> Job | None:
    """Record that `job` was seen in status `observed`; queue the mail that makes due.

    Returns the stored job afterwards (unchanged when the observation changes nothing),
    or None when the job no longer exists. A lost compare-and-set is retried once on a
    fresh read: another process may have applied the very same change, in which case
    the re-read decides there is nothing left to do.
    """
    mail_ok = may_mail(user, messages)
    current: Job | None = job
    for _attempt in range(2):
        assert current is not None
        d = decide(current, observed)
        if d.ignored or not d.changed:
            if current.misses or current.last_error:
                # Seen again after a miss or an error: clear them, status unchanged.
                written = await store.cas_job(current.id, current.version, {"misses": 0, "last_error": None, "last_poll_at": now})
                return written or await store.get_job(current.id)
            return current
        event = StatusEvent(d.status, now, reason)
        rows: list[Notification] = []
        if d.due:
            # The job as it will be stored, so every message shows the status just entered.
            stored = as_stored(current, {**_changes(current, d, reason, now), **_fact_changes(current, facts)}, event)
            rows = await _job_messages(store, messages, user, stored, list(d.due), now, mail_ok)
        if not rows:
            d = replace(d, notified=tuple(current.notified))  # nothing went out: nothing is notified
        changes = {**_changes(current, d, reason, now), **_fact_changes(current, facts)}
        if rows:
            await store.enqueue(rows)
        written = await store.cas_job(current.id, current.version, changes, append_history=[event])
        if written is not None:
            if written.group:
                await _group_mail(store, messages, user, written, d, now, mail_ok)
            return written
        log.debug("qjm: job %s changed under us; re-reading once", current.id)
        current = await store.get_job(current.id)
        if current is None:
            return None
    return await store.get_job(job.id)


async def _job_messages(
    store: Store, messages: MessageFactory, user: User, job: Job, due: list[str], now: int, mail_ok: bool
) -> list[Notification]:
    """The email (when mail may go) and one delivery per enabled channel that wants any of
    the due statuses; each has its own dedupe key, so each goes out once."""
    rows: list[Notification] = []
    if mail_ok:
        mail = messages.job_status(user, job, due, now)
        until = hold_until(user, due, now)
        if until is not None:  # quiet hours or a digest: summarised when they end
            mail.state, mail.next_attempt_at = "held", until
        rows.append(mail)
    for channel in await store.list_channels(user.id):
        wanted = [s for s in due if s in channel.notify_status]
        if channel.enabled and wanted:
            rows.append(messages.job_status_for_channel(user, job, wanted, channel, now))
    return rows


async def _group_mail(
    store: Store, messages: MessageFactory, user: User, job: Job, d: Decision, now: int, mail_ok: bool
) -> None:
    """Group milestones are judged after the job's write, on the group as stored: from a
    summary of counts (a bounded number of store calls whatever the group's size) and,
    only when a milestone is reached, at most GROUP_MAIL_ROWS jobs for the messages.

    A milestone goes by email (when mail may go) and to each enabled channel that hears
    of the statuses behind it, as one message each: never held by quiet hours or a
    digest. Each row's dedupe key names the group, the milestone and the channel, so two
    processes that both see a milestone store it once per channel."""
    assert job.group is not None
    if d.ignored or not d.entered:
        return
    summary = await store.group_summary(user.id, job.group, job.id)
    outcome = group_milestones(d, job, summary)
    if not outcome.milestones:
        return
    channels = [c for c in await store.list_channels(user.id) if c.enabled]
    hearing = {m: [c for c in channels if hears_milestone(c.notify_status, m)] for m in outcome.milestones}
    if not mail_ok and not any(hearing.values()):
        return
    shown = await store.list_jobs(JobQuery(user_id=user.id, group=job.group, limit=GROUP_MAIL_ROWS))
    total, counts = summary.total, summary.final_counts  # the whole group; `shown` is bounded
    rows: list[Notification] = []
    for milestone in outcome.milestones:
        if mail_ok:
            rows.append(messages.group_milestone(user, job.group, shown, milestone, now, total=total, counts=counts))
        rows.extend(
            messages.group_milestone_for_channel(user, job.group, shown, milestone, c, now, total=total, counts=counts)
            for c in hearing[milestone]
        )
    await store.enqueue(rows)


async def report_local_status(
    store: Store,
    messages: MessageFactory,
    user: User,
    job: Job,
    status: str,
    reason: str | None,
    now: int,
) -> Job:
    """A kernel reports the status of a job it runs itself (a simulator job).

    Only `source == "local"` jobs take reports: an IBM job's status comes from IBM,
    and letting a client set it would let a typo mail "DONE" for a job still queued.
    A report on a job already final changes nothing (kernels may re-report).
    """
    if job.user_id != user.id:
        raise NotFound(f"no job {job.ibm_job_id!r}", field="job_id")
    if job.source != "local":
        raise AlreadyExists(
            f"job {job.ibm_job_id!r} is an IBM Quantum job: its status comes from IBM Quantum, "
            "not from the kernel; only jobs registered with source \"local\" take status reports",
            field="job_id",
        )
    after = await apply_observation(store, messages, user, job, status, reason, now)
    if after is None:
        raise NotFound(f"no job {job.ibm_job_id!r}", field="job_id")
    return after
