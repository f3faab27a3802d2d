"""Watched jobs: register/merge, list, update, delete. No tornado.

Every read and write is scoped to the calling user; admins may reach any job. A job
of another user is reported as "not found" (never "forbidden"), so ids cannot be
probed for existence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qjm_jupyter.statuses import UnknownStatus, normalize_statuses

from .clock import Clock
from .domain import Job, JobQuery, JobSource, User, new_id
from .errors import InvalidInput, NotFound
from .notify.messages import MessageFactory
from .settings import Settings
from .store import Store
from .watcher.transitions import report_local_status

LOCAL_CHANNEL = "local"
# Most deletions reported in one feed answer; more move the cursor back (see list_jobs).
DELETED_PER_PAGE = 1000
# A page's `total` counts at most this many jobs past the page (see JobService.list_jobs).
TOTAL_BEYOND_PAGE = 1000


@dataclass
class JobSpec:
    """One registration, already validated by the API layer (statuses normalized)."""

    job_id: str
    backend: str | None = None
    instance: str | None = None
    channel: str | None = None
    created: int | None = None
    notify_status: list[str] | None = None
    label: str | None = None
    group: str | None = None
    source: JobSource = "ibm"


@dataclass
class JobPage:
    jobs: list[Job]
    total: int
    # One ms before the query was read, because the feed filter is strict
    # (`updated_at > updated_after`): a change made in the same millisecond as, or racing
    # with, this read comes back in the next `updated_after=server_time` call. The feed is
    # at-least-once; clients upsert by id.
    server_time: int
    # False: `total` is a lower bound (the count stopped at its cap; there are more).
    total_exact: bool = True
    # With `updated_after`: our ids of jobs deleted after it (oldest first), whatever the
    # other filters, since a tombstone keeps no status or label; clients drop those rows.
    deleted: list[str] = field(default_factory=list)


@dataclass
class Registered:
    jobs: list[Job]  # one per spec, in request order (duplicates share a job)
    created: int
    merged: int


class JobService:
    def __init__(self, store: Store, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        self.store, self.messages, self.settings, self.clock = store, messages, settings, clock
        self._locks: dict[str, asyncio.Lock] = {}

    # -- register --------------------------------------------------------------------------
    async def register(self, user: User, specs: Sequence[JobSpec]) -> Registered:
        """Store (or merge into) the user's watched jobs and wake the watcher for them.

        A registration asking for a status the job has already entered is stored as is;
        whether that fires is the watcher's rule, not ours.
        """
        if not specs:
            raise InvalidInput("send at least one job", field="jobs")
        cap = self.settings.max_jobs_per_request
        if len(specs) > cap:
            raise InvalidInput(f"at most {cap} jobs per request (got {len(specs)})", field="jobs")
        now = self.clock.now_ms()
        default_notify = list(user.notify_default or self.settings.default_notify_status)

        # Entries naming the same job in one request become one registration, so the
        # store sees each job once and the response still has one job per entry.
        unique: dict[str, Job] = {}
        order: list[str] = []
        for i, spec in enumerate(specs):
            job = self._build(user, spec, i, default_notify, now)
            order.append(job.ibm_job_id)
            seen = unique.get(job.ibm_job_id)
            unique[job.ibm_job_id] = job if seen is None else _merge(seen, job)

        async with self._user_lock(user.id):
            await self._check_instances(user, unique.values())
            stored = await self.store.register_jobs(list(unique.values()))
        by_ibm_id = {job.ibm_job_id: (job, created) for job, created in stored}
        created = sum(1 for _, was_created in stored if was_created)

        # One wake-up per (user, instance) so the watcher polls the new jobs soon.
        instances = {
            job.instance
            for job, _ in stored
            if job.source == "ibm" and job.instance and job.watch_state in ("active", "paused")
        }
        for instance in sorted(instances):
            await self.store.touch_poll_unit(user.id, instance, now)

        return Registered(
            jobs=[by_ibm_id[ibm_id][0] for ibm_id in order],
            created=created,
            merged=len(specs) - created,
        )

    def _user_lock(self, user_id: str) -> asyncio.Lock:
        """One registration of a user at a time in this process, so the instance cap is
        checked against what is really stored (concurrent requests cannot each pass it)."""
        lock = self._locks.get(user_id)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    async def _check_instances(self, user: User, jobs: Iterable[Job]) -> None:
        """Each distinct instance is a poll unit, IBM calls and maybe a "no access" mail:
        a user may watch jobs on at most `max_instances_per_user` of them."""
        wanted = {j.instance for j in jobs if j.source == "ibm" and j.instance}
        if not wanted:
            return
        cap = self.settings.max_instances_per_user
        known = set(await self.store.list_user_instances(user.id))
        if len(known | wanted) > cap:
            raise InvalidInput(
                f"at most {cap} distinct IBM Quantum instances per account; this request would make "
                f"{len(known | wanted)} (finished jobs do not count)",
                field="jobs",
            )

    def _build(self, user: User, spec: JobSpec, index: int, default_notify: list[str], now: int) -> Job:
        notify = self._statuses(spec.notify_status, f"jobs.{index}.notify_status")
        instance = spec.instance or None
        channel = spec.channel or None
        if spec.source == "local":
            channel = LOCAL_CHANNEL
        else:
            instance = instance or user.default_instance
            if not instance:
                raise InvalidInput(
                    f"job {spec.job_id!r} has no instance and your account has no default_instance; "
                    "send the instance CRN or set default_instance with PATCH me",
                    field=f"jobs.{index}.instance",
                )
        job = Job(
            id=new_id("j_"),
            user_id=user.id,
            ibm_job_id=spec.job_id,
            registered_at=now,
            updated_at=now,
            backend=spec.backend or None,
            instance=instance,
            source=spec.source,
            created=spec.created,
            notify_status=notify if notify is not None else list(default_notify),
            label=spec.label,
            group=spec.group,
        )
        if channel:
            job.channel = channel
        return job

    @staticmethod
    def _statuses(values: Sequence[str] | None, field: str) -> list[str] | None:
        if values is None:
            return None
        try:
            return normalize_statuses(values)
        except UnknownStatus as exc:
            raise InvalidInput(str(exc), field=field) from None

    # -- read ------------------------------------------------------------------------------
    async def list_jobs(self, actor: User, query: JobQuery, *, all_users: bool = False) -> JobPage:
        """The actor's jobs; with all_users (admins only), everyone's.

        `total` is counted only up to TOTAL_BEYOND_PAGE jobs past the page unless the query
        asks for the exact count. Counting every match made the first page O(n) in the
        user's jobs (a 100,000-job user's first 50 cost a 100,000-row index walk). Every
        client reads `total` only to know whether more pages follow, and a count that
        stops past the page still says that exactly. Exact totals up to about a thousand
        are kept for "N jobs" displays, and `total=exact` is there for the rest.
        A per-user counter kept beside the jobs was rejected: it would have to stay right
        on every write path (register and merge, delete, delete-all, the retention sweep,
        account deletion, identity linking), across processes and crashes, with only
        single-document atomicity on MongoDB. It would also answer only the unfiltered
        count, not `status=`, `active=`, `label=` or the feed.
        """
        if all_users:
            actor.require_admin()
        server_time = self.clock.now_ms() - 1
        scoped = replace(query, user_id=None if all_users else actor.id)
        if scoped.statuses is not None:
            scoped.statuses = self._statuses(scoped.statuses, "status")
        jobs = await self.store.list_jobs(scoped)
        cap = None if scoped.exact_total else scoped.offset + scoped.limit + TOTAL_BEYOND_PAGE
        total = await self.store.count_jobs(scoped, cap=None if cap is None else cap + 1)
        total_exact = cap is None or total <= cap
        deleted: list[str] = []
        if scoped.updated_after is not None:
            stones = await self.store.list_deleted_jobs(scoped.user_id, scoped.updated_after, DELETED_PER_PAGE + 1)
            if len(stones) > DELETED_PER_PAGE:
                stones = stones[:DELETED_PER_PAGE]
                server_time = min(server_time, _resume_after(stones, scoped.updated_after))
            deleted = [job_id for job_id, _ in stones]
        return JobPage(jobs=jobs, total=total, server_time=server_time, total_exact=total_exact, deleted=deleted)

    async def get(self, actor: User, ref: str) -> Job:
        """By our id or by the IBM job id; raises NotFound for anything not visible."""
        job = await self.store.get_job(ref, None if actor.is_admin else actor.id)
        if job is None:
            job = await self.store.get_job_by_ibm_id(actor.id, ref)
        if job is None:
            raise NotFound(f"no job {ref!r}", field="job_id")
        return job

    # -- write -----------------------------------------------------------------------------
    async def update(self, actor: User, ref: str, changes: Mapping[str, Any]) -> Job:
        """Owner edits: `notify_status` (replaced, not merged) and `label` (None clears)."""
        allowed = {"notify_status", "label"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        job = await self.get(actor, ref)
        if not changes:
            return job
        values: dict[str, Any] = dict(changes)
        if "notify_status" in values:
            statuses = self._statuses(values["notify_status"], "notify_status")
            if statuses is None:
                raise InvalidInput("notify_status must be a list of statuses", field="notify_status")
            values["notify_status"] = statuses
        values["updated_at"] = self.clock.now_ms()
        updated = await self.store.update_job(job.id, job.user_id, values)
        if updated is None:  # deleted between the read and the write
            raise NotFound(f"no job {ref!r}", field="job_id")
        return updated

    async def report_status(self, actor: User, ref: str, status: str, reason: str | None) -> Job:
        """A kernel reports the status of a local job it runs; applied like the watcher's
        observations (transitions.py is the one write path for status changes)."""
        job = await self.get(actor, ref)
        return await report_local_status(self.store, self.messages, actor, job, status, reason, self.clock.now_ms())

    async def delete(self, actor: User, ref: str) -> None:
        job = await self.get(actor, ref)
        if not await self.store.delete_job(job.id, job.user_id, now=self.clock.now_ms()):
            raise NotFound(f"no job {ref!r}", field="job_id")

    async def delete_all(self, actor: User) -> int:
        """Every job of the actor (admins included: only their own)."""
        return await self.store.delete_jobs_of_user(actor.id, now=self.clock.now_ms())


def _resume_after(stones: Sequence[tuple[str, int]], after: int) -> int:
    """The cursor after a truncated list of tombstones (oldest first): just before the
    last one reported, so the unreported ones of that millisecond come next time. When
    one millisecond alone holds more than a page, the cursor has to pass it (or it would
    never move) and the rest of that millisecond is skipped; only a bulk delete of more
    than DELETED_PER_PAGE jobs can do that."""
    first, last = stones[0][1], stones[-1][1]
    return last - 1 if first < last else max(after, last)


def _merge(first: Job, later: Job) -> Job:
    """Two entries for one job in one request: union of statuses, first value wins elsewhere."""
    wanted = set(first.notify_status) | set(later.notify_status)
    first.notify_status = normalize_statuses(wanted)
    for name in ("backend", "instance", "created", "label", "group"):
        if getattr(first, name) is None:
            setattr(first, name, getattr(later, name))
    return first
