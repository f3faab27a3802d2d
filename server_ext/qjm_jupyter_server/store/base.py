"""The one interface between the services and a database.

Two implementations (`sqlite.py`, `mongo.py`) pass one contract suite
(`tests/store/test_contract.py`). Every method is a single atomic operation on one
record (or one SQLite transaction); there are no multi-document transactions, so the
MongoDB backend works on a standalone server as well as on a replica set.

Conventions: times are epoch ms ints; ids are app-made strings; lists come newest
first unless a method says otherwise; "not found" is `None`/`False`, not an exception.

Every way a job leaves the store (`delete_job`, `delete_jobs_of_user`, `delete_user`,
`purge_jobs`) leaves a tombstone `(job_id, user_id, deleted_at)`, so the changes feed
can report deletions; `now` (the tombstone time) is optional on those methods for
backward compatibility and defaults to the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..domain import (
    ActionToken,
    Channel,
    GroupSummary,
    Job,
    JobQuery,
    JobRef,
    Notification,
    PollUnit,
    StatusEvent,
    ThrottleState,
    User,
)


class StoreError(Exception):
    """Base class for errors a store raises on purpose."""


class Conflict(StoreError):
    """A unique constraint was hit (an email already registered, for instance)."""


class StoreUnavailable(StoreError):
    """The database cannot be written (read-only file, disk full, server down)."""


@runtime_checkable
class Store(Protocol):
    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        """Create schema / indexes, run migrations. Idempotent."""

    async def close(self) -> None: ...

    # -- users ------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        """Insert; raises Conflict if the (lower-cased) email is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None: ...

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        """Set the given User fields; returns the updated user. Raises Conflict on a taken email."""

    async def bump_token_version(self, user_id: str, now: int) -> User | None:
        """Atomically increment `token_version` (revokes every JWT issued before)."""

    async def list_users(self, limit: int, offset: int) -> list[User]:
        """Oldest first (stable for admins paging through)."""

    async def count_users(self) -> int: ...

    async def delete_user(self, user_id: str, now: int) -> bool:
        """Delete the user, their jobs (tombstoned at `now`), poll units, action tokens and
        outbox rows (the delivery log holds their addresses and subjects)."""

    # -- external identities (who the host says the requester is) ----------------------
    async def bind_identity(self, identity: str, user_id: str, now: int, *, replace: bool = False) -> None:
        """Bind an external identity (`jupyter:<name>`, `hub:<name>`) to a user. Binding it
        again to the same user is a no-op; to another user it raises Conflict unless
        `replace` (which moves it: linking a host identity to an existing account)."""

    async def get_user_by_identity(self, identity: str) -> User | None: ...

    async def list_identities(self, user_id: str) -> list[str]:
        """The identities bound to a user, sorted. `delete_user` removes them."""

    # -- single-use action tokens -----------------------------------------------------
    async def put_action_token(self, token: ActionToken) -> None: ...

    async def consume_action_token(self, token_hash: str, purpose: str, now: int) -> ActionToken | None:
        """Atomically delete and return the token if it exists, has this purpose and is unexpired."""

    async def delete_action_tokens(self, user_id: str, purpose: str) -> int: ...

    async def purge_action_tokens(self, now: int) -> int:
        """Housekeeping: delete tokens with expires_at <= now (they can never be consumed)."""

    # -- login throttling (fixed windows, shared across processes) ---------------------
    async def throttle_hit(self, key: str, now: int, window_ms: int) -> ThrottleState:
        """Count one failure for key; a window older than window_ms restarts at 1."""

    async def throttle_refund(self, key: str, window_start: int) -> None:
        """Give back one count, only while the window that started at `window_start` runs
        and never below zero (an attempt that turned out fine)."""

    async def throttle_get(self, key: str) -> ThrottleState | None: ...

    async def throttle_clear(self, key: str) -> None: ...

    async def purge_throttles(self, before: int) -> int:
        """Housekeeping: delete counters whose window started before `before`. The caller
        picks `before` older than any window in use, so no live window is lost."""

    # -- jobs ---------------------------------------------------------------------------
    async def register_jobs(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """Insert each job, or merge into the one the user already watches with the same
        `ibm_job_id`: `notify_status` becomes the union (vocabulary order), `label`/`group`/
        `backend`/`instance`/`created` are filled in when given and previously unset, and a
        paused/lost job whose new registration asks for more becomes active again only if it is
        not final. Returns (stored job, created?) in input order."""

    async def get_job(self, job_id: str, user_id: str | None = None) -> Job | None:
        """By our id; with user_id, only that user's job."""

    async def get_job_by_ibm_id(self, user_id: str, ibm_job_id: str) -> Job | None: ...

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        """Newest registration first (registered_at desc, id desc); with `updated_after`,
        ordered by updated_at ascending instead (a changes feed)."""

    async def count_jobs(self, query: JobQuery, cap: int | None = None) -> int:
        """Jobs matching the query's filters (limit and offset aside). With `cap`, counting
        stops there (the answer is min(matches, cap)), so its cost is bounded by the cap and
        not by how many jobs match."""

    async def update_job(self, job_id: str, user_id: str | None, changes: Mapping[str, Any]) -> Job | None:
        """Owner edits (notify_status, label, group, watch_state); bumps updated_at via changes."""

    async def delete_job(self, job_id: str, user_id: str | None, now: int) -> bool:
        """Delete one job (with user_id, only that user's); leaves a tombstone at `now`."""

    async def delete_jobs_of_user(self, user_id: str, now: int) -> int:
        """Delete every job of the user, each leaving a tombstone at `now`."""

    async def list_deleted_jobs(self, user_id: str | None, after: int, limit: int) -> list[tuple[str, int]]:
        """Tombstones `(job_id, deleted_at)` with deleted_at > after, oldest first (deleted_at,
        job_id); user_id None lists every user's. A non-positive limit means nothing."""

    async def purge_deleted_jobs(self, before: int) -> int:
        """Housekeeping: drop tombstones with deleted_at < before. Returns the count."""

    async def group_summary(self, user_id: str, group: str, job_id: str) -> GroupSummary:
        """The user's group as `rules.summarize_group` defines it (`job_id` is the job being
        written: `others_ran` looks at the other jobs), in a bounded number of store calls
        that return counts, never the group's rows."""

    async def list_user_instances(self, user_id: str) -> list[str]:
        """The distinct instances of the user's watched IBM jobs (active or paused), any order."""

    async def list_active_jobs(self, user_id: str, instance: str) -> list[Job]:
        """Jobs with watch_state 'active' and source 'ibm' on this (user, instance)."""

    async def list_active_job_refs(self, user_id: str, instance: str) -> list[JobRef]:
        """The jobs `list_active_jobs` returns, same order, as `JobRef`s: a narrow read
        with no history or list decoding, since the poller reads every active job each cycle."""

    async def cas_job(
        self,
        job_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        append_history: Sequence[StatusEvent] = (),
    ) -> Job | None:
        """Compare-and-set: apply changes (+history, capped at the last 100 events) and
        increment `version` only if the job's version is still expected_version. Returns the
        new job, or None when someone else wrote first (or the job is gone)."""

    async def purge_jobs(self, finished_before: int, now: int) -> int:
        """Retention: delete final/lost jobs whose updated_at is older (tombstoned at `now`).
        Returns the count."""

    # -- poll units (leases for the watcher) ---------------------------------------------
    async def touch_poll_unit(self, user_id: str, instance: str, now: int) -> None:
        """Create the unit if missing; make it due no later than `now`; clears paused_reason
        only via wake_user_units."""

    async def claim_poll_units(self, owner: str, now: int, lease_ms: int, limit: int) -> list[PollUnit]:
        """Atomically lease up to `limit` units with next_poll_at <= now, no live lease
        (lease_until < now) and no paused_reason, earliest due first."""

    async def release_poll_unit(self, key: str, owner: str, changes: Mapping[str, Any]) -> bool:
        """Fenced: apply changes (next_poll_at, failures, last_error, paused_reason) and drop
        the lease only if `owner` still holds it."""

    async def release_poll_units(self, owner: str, releases: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """`release_poll_unit` for many units in one write (one transaction on SQLite, one
        bulk write on Mongo), each fenced on its own; returns how many were released. The
        poller releases a cycle's units together: one write per unit was a tenth of a
        steady cycle's CPU at 1,000 units."""

    async def wake_user_units(self, user_id: str, now: int) -> int:
        """Clear paused_reason and make every unit of the user due now (key replaced)."""

    async def delete_poll_unit(self, key: str, owner: str) -> bool:
        """Fenced delete of a unit with nothing left to watch."""

    async def get_poll_unit(self, key: str) -> PollUnit | None: ...

    # -- outbox ----------------------------------------------------------------------------
    async def enqueue(self, notifications: Sequence[Notification]) -> int:
        """Insert those whose dedupe_key is new; returns how many were inserted."""

    async def claim_outbox(
        self, owner: str, now: int, lease_ms: int, limit: int, channels: bool = False
    ) -> list[Notification]:
        """Lease up to `limit` pending rows with next_attempt_at <= now and no live lease, in
        `records.claim_order` (account mail first, then fair shares per user, oldest first);
        increments `attempts`. Returned in that order. Emails only (`channel_id` None), or with
        `channels` only channel deliveries: each medium has its own sender."""

    async def mark_sent(self, notification_id: str, owner: str, now: int) -> bool:
        """Fenced; state 'sent', sent_at, lease dropped; the body (text/html) is cleared,
        since it may hold a single-use link."""

    async def mark_retry(self, notification_id: str, owner: str, next_attempt_at: int, error: str) -> bool: ...

    async def mark_failed(self, notification_id: str, owner: str, error: str, now: int) -> bool: ...

    async def list_notifications(
        self, user_id: str | None, limit: int, offset: int, channel_id: str | None = None
    ) -> list[Notification]:
        """Newest first; user_id None lists all (admins); with channel_id, that channel's deliveries."""

    async def purge_outbox(self, sent_before: int) -> int:
        """Housekeeping: delete 'sent' rows with sent_at < sent_before (pending and failed
        rows stay: they are still work or still worth reading). Returns the count."""

    async def purge_outbox_links(self, kind: str, created_before: int) -> int:
        """Housekeeping: delete unsent (pending or failed) rows of `kind` created before
        `created_before`: their link has expired, so they are useless and must not keep it."""

    async def count_outbox(
        self, state: str | None = None, user_id: str | None = None, channel_id: str | None = None
    ) -> int:
        """Outbox rows, optionally of one state, one user and/or one channel (the delivery log's total)."""

    async def list_held(self, now: int, limit: int) -> list[Notification]:
        """Rows in state 'held' (quiet hours, digests) whose next_attempt_at <= now, soonest due first."""

    async def mark_digested(self, notification_ids: Sequence[str], now: int) -> int:
        """'held' -> 'digested' (their content went out in a summary mail); bodies cleared. Returns the count."""

    # -- channels (Apprise URLs, encrypted) ---------------------------------------------------------
    async def create_channel(self, channel: Channel) -> None: ...

    async def get_channel(self, channel_id: str, user_id: str | None = None) -> Channel | None:
        """By id; with user_id, only that user's channel."""

    async def list_channels(self, user_id: str) -> list[Channel]:
        """Oldest first."""

    async def update_channel(self, channel_id: str, user_id: str, changes: Mapping[str, Any]) -> Channel | None:
        """Set fields (label, notify_status, enabled, url_cipher/scheme/host); None when not the user's."""

    async def delete_channel(self, channel_id: str, user_id: str) -> bool:
        """Deliveries already in the outbox stay (the delivery log); pending ones fail at send."""
