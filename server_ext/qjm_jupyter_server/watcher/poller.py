"""The poller task: claims poll units, asks IBM, applies transitions.

Work is split in poll units, one per (user, instance) (domain.PollUnit). A cycle
claims every due unit under a lease, and per unit makes ONE listing call
(`pending_jobs`, `GET /jobs?pending=true`) plus one `get_job` per watched job that left
the pending list, so IBM calls grow with users and finished jobs, not with watched
jobs. Several server processes may run this loop on one database: the lease
decides who polls a unit, the job compare-and-set decides whose write counts, and
the outbox dedupe key makes a doubly-detected change one email.

A cycle reads each unit's jobs as light `JobRef`s and a full `Job` only for a job it
writes: almost every job is unchanged, and decoding full records for all of them was
the watcher's main CPU cost once thousands of jobs were active.

Errors act by their `IBMError.kind`: an invalid key pauses the user's units and mails
once, a forbidden instance pauses that unit, rate limits and transient failures back
off per unit, and a job IBM no longer knows is marked lost only after MISSES_BEFORE_LOST
404s in a row. Nothing here deletes a job except the hourly retention sweep
(`purge_expired`); a unit is deleted only when it has no active job left (registration
touches it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from qjm_jupyter.statuses import FINAL_STATUSES, UnknownStatus

from ..clock import Clock
from ..domain import Job, JobQuery, JobRef, PollUnit, User
from ..notify.messages import MessageFactory
from ..secrets import KeyRing
from ..settings import Settings
from ..store import Store
from .ibm import IBMClient, IBMError, IBMJobState
from ..throttle import Throttle, throttle_key
from .housekeeping import Housekeeping
from .rules import status_changes
from .transitions import IBMFacts, apply_observation, may_mail

log = logging.getLogger("qjm.watcher")

CLAIM_BATCH = 200  # units leased per store call
MISSES_BEFORE_LOST = 3  # consecutive 404s before a job is declared lost
RETRY_AFTER_CAP = 300.0  # seconds: a Retry-After is honoured up to this
TRANSIENT_CAP = 600.0  # seconds: transient backoff never exceeds 10 min
RATE_LIMIT_CAP = 900.0  # seconds: 429 without Retry-After, up to 15 min
FORBIDDEN_RETRY = 3600.0  # seconds: a unit refused access (403) is asked again after 1 h ...
FORBIDDEN_RETRIES = 3  # ... at most this many times, then it stays paused until the key changes
FORBIDDEN_ERROR = "no access to this IBM Quantum instance"
JITTER = 0.10  # ± share of the poll interval, so units spread out over time
# Jobs compared with IBM's answer between two turns given to the event loop: a unit with
# thousands of watched jobs otherwise held the API's loop for the whole comparison (the
# soak's p99 grew with the watched set).
YIELD_EVERY = 200
COUNT_REFRESH = 5.0  # seconds between two recounts of active jobs for has_work()
# "No access" mails: one per user per window, whatever the number of instances refused
# (each instance is a poll unit; one registration could otherwise queue a mail per unit).
FORBIDDEN_MAILS_PER_WINDOW = 1
FORBIDDEN_MAIL_WINDOW_MS = 6 * 3_600_000


@dataclass
class CycleStats:
    """What one cycle did; tests and the benchmark read it instead of sleeping."""

    units: int = 0  # units claimed
    listings: int = 0  # pending_jobs calls
    gets: int = 0  # get_job calls
    observations: int = 0  # jobs whose status was applied (changed or not)
    changes: int = 0  # jobs whose status changed
    errors: dict[str, int] = field(default_factory=dict)  # IBMError kind -> count
    paused: int = 0  # units paused (key invalid, forbidden)
    deleted: int = 0  # units deleted (nothing left to watch)
    lost: int = 0  # jobs declared lost
    duration_ms: float = 0.0

    @property
    def ibm_calls(self) -> int:
        return self.listings + self.gets

    def add_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class ActiveJobCount:
    """How many jobs are being watched, counted at most every COUNT_REFRESH seconds: what
    `has_work()` answers (the status endpoint, Jupyter's idle culling), for the poller and for
    the supervisor of a watcher process alike."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.value = 0
        self._at = float("-inf")

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._at >= COUNT_REFRESH

    async def refresh(self, force: bool = False) -> None:
        if not force and not self.stale:
            return
        self._at = time.monotonic()
        try:
            self.value = await self.store.count_jobs(JobQuery(user_id=None, active=True, limit=1))
        except Exception:  # noqa: BLE001 - has_work() is advisory
            log.debug("qjm: could not count active jobs", exc_info=True)


class Poller:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, ibm: IBMClient, settings: Settings, clock: Clock, owner: str) -> None:
        self.store, self.keyring, self.messages, self.ibm = store, keyring, messages, ibm
        self.settings, self.clock, self.owner = settings, clock, owner
        self.running = False
        self.last_stats: CycleStats | None = None
        self.cycles = 0
        self._task: asyncio.Task[None] | None = None
        self._cycle: asyncio.Task[CycleStats] | None = None
        self.active = ActiveJobCount(store)
        self.housekeeping = Housekeeping(store, lambda: self.settings, clock)
        self.throttle = Throttle(store, clock)
        # Leases handed back together (group commit): releases queue here while one write of
        # the previous ones is in flight, so a cycle makes a few writes, not one per unit.
        self._releases: list[tuple[str, dict[str, Any]]] = []
        self._releasing: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self.running = True
        await self.active.refresh(force=True)
        self._task = asyncio.create_task(self._loop(), name="qjm-poller")

    async def stop(self) -> None:
        """Cancel the loop and any cycle in flight, and wait for both to end."""
        self.running = False
        for task in (self._task, self._cycle):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._task, self._cycle):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._cycle = None
        if self._releasing is not None:  # leases already decided are still handed back
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._releasing

    def has_work(self) -> bool:
        """Jobs are being watched (a cached count, refreshed by the loop)."""
        return self.active.value > 0

    @property
    def tick(self) -> float:
        """How often due units are claimed: an eighth of the interval, at most 1 s. A unit
        waits up to one tick past its due time, so at a 2 s interval a 1 s tick alone took
        half the interval out of the detection budget; a claim is one indexed query."""
        return max(0.05, min(self.settings.poll_interval / 8, 1.0))

    async def _loop(self) -> None:
        while self.running:
            started = time.monotonic()
            if self._cycle is None or self._cycle.done():
                # A cycle still in flight is not doubled: this tick is skipped.
                self._cycle = asyncio.create_task(self._guarded_cycle(), name="qjm-poll-cycle")
            await asyncio.wait([self._cycle], timeout=self.tick)
            # A cycle that ran a whole tick or longer is followed at once: the units that fell
            # due meanwhile are claimed now, not at the next tick. Otherwise, wait out the tick.
            if self._cycle.done() and self._cycle_overran():
                continue
            await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    def _cycle_overran(self) -> bool:
        stats = self.last_stats
        return stats is not None and stats.units > 0 and stats.duration_ms >= self.tick * 1000

    async def _guarded_cycle(self) -> CycleStats:
        try:
            await self.purge_expired()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - housekeeping must never stop watching
            log.exception("qjm: housekeeping sweep failed; retrying in an hour")
        try:
            return await self.run_cycle()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad cycle (database down) must not end watching
            log.exception("qjm: poll cycle failed; retrying next tick")
            return CycleStats()

    async def purge_expired(self, force: bool = False) -> int:
        """Housekeeping (its own module), run from the poll loop at most once an hour."""
        return await self.housekeeping.sweep(force)

    @property
    def last_purge(self) -> dict[str, int]:
        return self.housekeeping.last

    # -- one cycle ---------------------------------------------------------------------------
    async def run_cycle(self) -> CycleStats:
        """Poll every unit due now, once; returns what was done. Never sleeps."""
        started = time.perf_counter()
        stats = CycleStats()
        lease_ms = int(self.settings.lease_seconds * 1000)
        seen: set[str] = set()
        inflight: set[asyncio.Task[None]] = set()
        room = asyncio.Event()  # set when half of the units in flight are done

        def finished(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            if len(inflight) <= CLAIM_BATCH // 2:
                room.set()

        try:
            while True:
                now = self.clock.now_ms()
                claimed = await self.store.claim_poll_units(self.owner, now, lease_ms, CLAIM_BATCH)
                units = [u for u in claimed if u.key not in seen]
                # A unit polled earlier in this cycle can be due again when the cycle is longer than
                # poll_interval: hand its lease straight back, or it would sit out the whole lease.
                for again in (u for u in claimed if u.key in seen):
                    self._release(again.key, {})
                if not units:
                    break
                seen.update(u.key for u in units)
                stats.units += len(units)
                # IBM calls in flight are sized to the units due per interval (watcher/concurrency.py).
                self.ibm.limit.plan(len(units), self.settings.poll_interval)
                for unit in units:
                    task = asyncio.create_task(self._poll_unit_safely(unit, stats))
                    inflight.add(task)
                    task.add_done_callback(finished)
                if len(units) < CLAIM_BATCH:
                    break
                # Pipelined: the next batch is claimed once half of the units in flight are
                # done, not all of them, so the slowest unit of a batch (a long listing, a
                # retry) no longer holds up the batch behind it. An event, not asyncio.wait over
                # the tasks in flight, which re-registered a callback on each of them per wake-up.
                while len(inflight) > CLAIM_BATCH // 2:
                    room.clear()
                    await room.wait()
            if inflight:
                await asyncio.gather(*inflight)
        finally:
            for task in inflight:
                task.cancel()
            if self._releasing is not None:
                await asyncio.shield(self._releasing)  # a cycle ends with its leases handed back
        self.cycles += 1
        stats.duration_ms = (time.perf_counter() - started) * 1000
        self.last_stats = stats
        await self.active.refresh(force=stats.changes > 0 or stats.deleted > 0)
        return stats

    async def _poll_unit_safely(self, unit: PollUnit, stats: CycleStats) -> None:
        try:
            release = await self._poll_unit(unit, stats)
        except Exception as exc:  # noqa: BLE001 - a store error or a bug: back off, keep the lease fenced
            log.exception("qjm: polling unit %s failed", _unit_label(unit))
            stats.add_error("internal")
            release = self._backoff(unit, "internal", f"internal error: {type(exc).__name__}", None)
        if release is None:
            return  # deleted
        self._release(unit.key, release)

    def _release(self, key: str, changes: dict[str, Any]) -> None:
        self._releases.append((key, changes))
        if self._releasing is None or self._releasing.done():
            self._releasing = asyncio.create_task(self._write_releases(), name="qjm-poll-release")

    async def _write_releases(self) -> None:
        while self._releases:
            batch, self._releases = self._releases, []
            try:
                await self.store.release_poll_units(self.owner, batch)
            except Exception:  # noqa: BLE001 - the leases run out by themselves; the units are polled then
                log.warning("qjm: could not hand back %d poll leases; they expire on their own", len(batch), exc_info=True)

    def _next_poll(self, now: int) -> int:
        interval = self.settings.poll_interval
        return now + int(interval * 1000 * random.uniform(1 - JITTER, 1 + JITTER))

    async def _poll_unit(self, unit: PollUnit, stats: CycleStats) -> dict[str, Any] | None:
        """Poll one unit; returns the release changes, or None when the unit was deleted."""
        user = await self.store.get_user(unit.user_id)
        refs = await self.store.list_active_job_refs(unit.user_id, unit.instance) if user else []
        if user is None or not user.is_active or not refs:
            await self.store.delete_poll_unit(unit.key, self.owner)
            stats.deleted += 1
            return None
        if not user.ibm_key_cipher or user.ibm_key_state == "invalid":
            # Nothing to poll with: wait for a new key (accounts wakes the unit).
            stats.paused += 1
            return {"paused_reason": "key_invalid", "last_error": "no valid IBM Quantum API key"}
        by_ibm_id = {r.ibm_job_id: r for r in refs}

        try:
            key = self.keyring.decrypt(user.id, user.ibm_key_cipher)
        except Exception:  # noqa: BLE001 - token_keys changed without rotation: no usable key
            log.error("qjm: the stored IBM key of user %s cannot be decrypted (token_keys changed?)", user.id)
            stats.paused += 1
            return {"paused_reason": "key_invalid", "last_error": "stored IBM Quantum API key cannot be decrypted"}
        try:
            pending = await self._call(stats, self.ibm.pending_jobs(key, unit.instance), listing=True)
        except IBMError as exc:
            if exc.kind == "auth_invalid":
                self.ibm.forget_key(key)
            return await self._unit_error(unit, user, exc, stats)

        missing: list[JobRef] = []
        for n, (ibm_id, job) in enumerate(by_ibm_id.items(), 1):
            state = pending.get(ibm_id)
            if state is None:
                missing.append(job)
            else:
                await self._observe(user, job, state, stats, key, unit.instance)
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # unchanged jobs never await: let requests in between

        for job in missing:
            try:
                state = await self._call(stats, self.ibm.get_job(key, unit.instance, job.ibm_job_id), listing=False)
            except IBMError as exc:
                if exc.kind == "not_found":
                    await self._missed(user, job, stats)
                    continue
                if exc.kind == "forbidden":
                    await self._job_forbidden(user, job, unit.instance, exc, stats)
                    continue
                if exc.kind == "protocol":
                    stats.add_error("protocol")
                    await self._job_error(job, f"protocol: {exc}")
                    continue
                if exc.kind == "auth_invalid":
                    self.ibm.forget_key(key)
                return await self._unit_error(unit, user, exc, stats)
            await self._observe(user, job, state, stats, key, unit.instance)
        del key
        return {"next_poll_at": self._next_poll(self.clock.now_ms()), "failures": 0, "last_error": None}

    async def _call(self, stats: CycleStats, coro: Any, *, listing: bool) -> Any:
        """Count the call; the IBM client's limit bounds the requests in flight."""
        if listing:
            stats.listings += 1
        else:
            stats.gets += 1
        return await coro

    # -- applying what IBM said ---------------------------------------------------------------
    async def _observe(self, user: User, ref: JobRef, state: IBMJobState, stats: CycleStats, key: str, instance: str) -> None:
        stats.observations += 1
        if not _needs_write(ref, state.status):
            return  # the common case: read no full job, write nothing
        job = await self.store.get_job(ref.id)
        if job is None:
            return  # deleted since the listing: nothing left to record
        facts = await self._facts(job, state, stats, key, instance)
        try:
            after = await apply_observation(
                self.store, self.messages, user, job, state.status, state.reason, self.clock.now_ms(), facts=facts
            )
        except UnknownStatus:
            # Never notify on a status we do not know (a "protocol" error): keep it for the log.
            stats.add_error("protocol")
            await self._job_error(job, f"unknown status {state.raw_status!r}")
            return
        if after is not None and after.status != job.status:
            stats.changes += 1

    async def _facts(self, job: Job, state: IBMJobState, stats: CycleStats, key: str, instance: str) -> IBMFacts:
        """IBM's own figures for a job that starts or ends now: one metrics call (timestamps,
        usage) per such change, best effort; the mail falls back to observation times."""
        facts = IBMFacts(backend=state.backend, created=state.created)
        if state.status not in ("RUNNING", *FINAL_STATUSES) or not status_changes(job.status, state.status):
            return facts
        try:
            times = await self.ibm.job_metrics(key, instance, job.ibm_job_id)  # not in stats.gets: those are status reads
        except IBMError as exc:
            log.info("qjm: no metrics for job %s (%s); mail uses observed times", job.id, exc.kind)
            return facts
        return IBMFacts(
            backend=state.backend, created=state.created or times.created,
            started=times.running, finished=times.finished, usage_seconds=times.usage_seconds,
        )

    async def _job_error(self, job: Job | JobRef, message: str) -> None:
        await self.store.cas_job(job.id, job.version, {"last_error": message[:500], "last_poll_at": self.clock.now_ms()})

    async def _missed(self, user: User, ref: JobRef, stats: CycleStats) -> None:
        """IBM says 404: confirm over several cycles (eventual consistency) before giving up."""
        now = self.clock.now_ms()
        misses = ref.misses + 1
        if misses < MISSES_BEFORE_LOST:
            await self.store.cas_job(ref.id, ref.version, {"misses": misses, "last_error": "not found on IBM Quantum", "last_poll_at": now})
            return
        job = await self.store.get_job(ref.id)  # the mail names the job: the one full read
        if job is None:
            return  # deleted since the listing
        if may_mail(user, self.messages):
            await self.store.enqueue([self.messages.job_lost(user, job, now)])
        written = await self.store.cas_job(
            ref.id, ref.version,
            {"misses": misses, "watch_state": "lost", "last_error": "not found on IBM Quantum", "last_poll_at": now, "updated_at": now},
        )
        if written is not None:
            stats.lost += 1

    async def _job_forbidden(self, user: User, ref: JobRef, instance: str, exc: IBMError, stats: CycleStats) -> None:
        """The key may read the instance but not this job: pause the job alone, tell once.

        `instance` is the unit's, which is the job's: units list only their instance's jobs."""
        stats.add_error("forbidden")
        now = self.clock.now_ms()
        if instance:
            await self._tell_forbidden(user, instance, now)
        await self.store.cas_job(
            ref.id, ref.version,
            {"watch_state": "paused", "last_error": f"forbidden: {exc}"[:500], "last_poll_at": now, "updated_at": now},
        )

    # -- unit-level errors ---------------------------------------------------------------------
    async def _unit_error(self, unit: PollUnit, user: User, exc: IBMError, stats: CycleStats) -> dict[str, Any]:
        stats.add_error(exc.kind)
        now = self.clock.now_ms()
        if exc.kind == "auth_invalid":
            log.warning("qjm: IBM rejected the API key of user %s; their watching is paused", user.id)
            updated = await self.store.update_user(user.id, {"ibm_key_state": "invalid"}) or user
            if may_mail(user, self.messages):
                await self.store.enqueue([self.messages.key_invalid(updated, now)])
            stats.paused += 1
            return {"paused_reason": "key_invalid", "last_error": "IBM Quantum rejected the API key", "failures": 0}
        if exc.kind == "forbidden":
            return await self._forbidden(unit, user, stats, now)
        log.info("qjm: %s from IBM for unit %s: %s", exc.kind, _unit_label(unit), exc)
        return self._backoff(unit, exc.kind, f"{exc.kind}: {exc}", exc.retry_after)

    async def _forbidden(self, unit: PollUnit, user: User, stats: CycleStats, now: int) -> dict[str, Any]:
        """403 on the listing: access may be granted later (an invitation being accepted),
        so retry after a long backoff a few times, then pause until the key changes.

        `failures` counts the 403s in a row: a unit whose last error was not a 403 starts
        a new streak. The user hears of it once, at the first 403 of a streak (and the
        outbox dedupe key keeps it to one email per instance anyway).
        """
        streak = unit.failures + 1 if (unit.last_error or "").startswith(FORBIDDEN_ERROR) else 1
        if streak == 1:
            await self._tell_forbidden(user, unit.instance, now)
        if streak > FORBIDDEN_RETRIES:
            log.warning("qjm: user %s still has no access to instance %s; paused", user.id, _short(unit.instance))
            stats.paused += 1
            return {"paused_reason": "forbidden", "last_error": FORBIDDEN_ERROR, "failures": 0}
        log.warning(
            "qjm: user %s has no access to instance %s; retry %d of %d in %d min",
            user.id, _short(unit.instance), streak, FORBIDDEN_RETRIES, FORBIDDEN_RETRY // 60,
        )
        return {
            "next_poll_at": now + int(FORBIDDEN_RETRY * 1000),
            "failures": streak,
            "last_error": f"{FORBIDDEN_ERROR} (retry {streak} of {FORBIDDEN_RETRIES} in 1 h)",
        }

    async def _tell_forbidden(self, user: User, instance: str, now: int) -> None:
        """The "no access" mail, at most once per user per window (the first instance refused
        is named; the Lab panel shows every paused job)."""
        if not may_mail(user, self.messages):
            return
        key = throttle_key("forbidden-mail", user.id)
        if await self.throttle.take(key, FORBIDDEN_MAILS_PER_WINDOW, FORBIDDEN_MAIL_WINDOW_MS) is None:
            return
        await self.store.enqueue([self.messages.instance_forbidden(user, instance, now)])

    def _backoff(self, unit: PollUnit, kind: str, message: str, retry_after: float | None) -> dict[str, Any]:
        """Next poll of a failing unit; its jobs keep their last known status."""
        failures = unit.failures + 1
        base = min(self.settings.poll_interval, 30.0)
        cap = RATE_LIMIT_CAP if kind == "rate_limited" else TRANSIENT_CAP
        delay = min(cap, base * (2 ** failures)) * random.uniform(0.8, 1.2)
        if kind == "rate_limited" and retry_after is not None:
            delay = max(delay, min(float(retry_after), RETRY_AFTER_CAP))
        return {
            "next_poll_at": self.clock.now_ms() + int(delay * 1000),
            "failures": failures,
            "last_error": message[:500],
        }


def _needs_write(ref: JobRef, observed: str) -> bool:
    """Would `apply_observation` write anything for this observation? Misses or an error
    to clear, or a status change (rules.status_changes, the same test `decide` makes).
    A status we do not know answers True: the full path then handles it as before."""
    if ref.misses or ref.last_error:
        return True
    try:
        return status_changes(ref.status, observed)
    except UnknownStatus:
        return True


def _short(instance: str) -> str:
    """Instances are CRNs; the last non-empty field is enough in a log line."""
    parts = [p for p in instance.split(":") if p]
    return parts[-1] if parts else instance


def _unit_label(unit: PollUnit) -> str:
    return f"{unit.user_id}|{_short(unit.instance)}"
