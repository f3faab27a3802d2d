"""Backend-neutral rules both stores share, so SQLite and MongoDB cannot drift apart.

The registration merge and the history cap are domain semantics of the `Store`
protocol, not storage details; keeping them in one pure module means the contract
suite tests one rule through two backends instead of two copies of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from qjm_jupyter.statuses import STATUSES, is_final

from ..domain import Channel, Job, PollUnit, StatusEvent, User

HISTORY_CAP = 100
# A job that was ever in one of these has run (watcher.rules.has_run); group summaries
# look for them in the status and the history.
RAN_STATUSES: tuple[str, ...] = ("RUNNING", "DONE")
# Fields a merge may fill in when the stored job has none yet.
FILLABLE_JOB_FIELDS: tuple[str, ...] = ("label", "group", "backend", "instance", "created")

USER_FIELDS = frozenset(f.name for f in fields(User))
JOB_FIELDS = frozenset(f.name for f in fields(Job))
CHANNEL_FIELDS = frozenset(f.name for f in fields(Channel))
_IMMUTABLE_CHANNEL = frozenset({"id", "user_id"})
POLL_UNIT_FIELDS = frozenset(f.name for f in fields(PollUnit))

# Fields callers may never rewrite through a generic `changes` mapping.
_IMMUTABLE_USER = frozenset({"id"})
_IMMUTABLE_JOB = frozenset({"id", "user_id", "ibm_job_id", "version"})
_IMMUTABLE_UNIT = frozenset({"key", "user_id", "instance", "lease_owner", "lease_until"})


def vocabulary_union(*lists: Iterable[str]) -> list[str]:
    """Union of status lists, in vocabulary order (input is already normalized)."""
    wanted = {s for lst in lists for s in lst}
    return [s for s in STATUSES if s in wanted]


def merge_registration(existing: Job, new: Job) -> dict[str, Any]:
    """Changes that merge a repeated registration into the stored job ({} if none).

    A re-registration must never lose what the user asked for before, hence union and
    fill-if-unset; it revives a paused/lost job only when it asks for more and the job
    can still change, since a final job has nothing left to report.
    """
    changes: dict[str, Any] = {}
    merged = vocabulary_union(existing.notify_status, new.notify_status)
    asks_for_more = set(merged) != set(existing.notify_status)
    if merged != existing.notify_status:
        changes["notify_status"] = merged
    for name in FILLABLE_JOB_FIELDS:
        value = getattr(new, name)
        if value is not None and getattr(existing, name) is None:
            changes[name] = value
    if (
        asks_for_more
        and existing.watch_state in ("paused", "lost")
        and not is_final(existing.status)
    ):
        changes["watch_state"] = "active"
    if changes:
        changes["updated_at"] = max(existing.updated_at, new.updated_at)
    return changes


def capped_history(history: Sequence[StatusEvent], append: Sequence[StatusEvent]) -> list[StatusEvent]:
    combined = list(history) + list(append)
    return combined[-HISTORY_CAP:]


def check_changes(changes: Mapping[str, Any], allowed: frozenset[str], immutable: frozenset[str], what: str) -> None:
    """Reject unknown or fenced field names: a typo must fail loudly, not write a column."""
    bad = [k for k in changes if k not in allowed or k in immutable]
    if bad:
        raise ValueError(f"cannot change {what} field(s): {', '.join(sorted(bad))}")


def check_user_changes(changes: Mapping[str, Any]) -> None:
    check_changes(changes, USER_FIELDS, _IMMUTABLE_USER, "user")


def check_job_changes(changes: Mapping[str, Any]) -> None:
    check_changes(changes, JOB_FIELDS, _IMMUTABLE_JOB, "job")


def check_channel_changes(changes: Mapping[str, Any]) -> None:
    check_changes(changes, CHANNEL_FIELDS, _IMMUTABLE_CHANNEL, "channel")


def check_unit_changes(changes: Mapping[str, Any]) -> None:
    check_changes(changes, POLL_UNIT_FIELDS, _IMMUTABLE_UNIT, "poll unit")


def events_to_plain(events: Iterable[StatusEvent]) -> list[dict[str, Any]]:
    return [asdict(e) for e in events]


def events_from_plain(items: Iterable[Mapping[str, Any]]) -> list[StatusEvent]:
    return [StatusEvent(status=i["status"], at=int(i["at"]), reason=i.get("reason")) for i in items]


def poll_unit_key(user_id: str, instance: str) -> str:
    return f"{user_id}|{instance}"



# Mail about the account itself (links to verify an address or reset a password, security
# notices): sent before any job mail, however much job mail is waiting.
ACCOUNT_MAIL_KINDS = frozenset({"verify", "reset", "notice"})


def claim_order(rows: Iterable[tuple[str, str | None, str, int, str]]) -> list[str]:
    """The order the outbox hands out due rows `(id, user_id, kind, created_at, to_addr)`.

    Account mail first; then a round robin over owners (the user, or the address for
    rows without one): every owner's oldest row, then every owner's second, and so on,
    oldest first within a round. One user queuing a thousand mails then delays another
    user's mail by one row, not by a thousand.
    """
    keyed = []
    seen: dict[tuple[int, str], int] = {}
    for row_id, user_id, kind, created_at, to_addr in sorted(rows, key=lambda r: (r[3], r[0])):
        klass = 0 if kind in ACCOUNT_MAIL_KINDS else 1
        owner = (klass, user_id or f"@{to_addr}")
        rank = seen.get(owner, 0)
        seen[owner] = rank + 1
        keyed.append(((klass, rank, created_at, row_id), row_id))
    keyed.sort()
    return [row_id for _, row_id in keyed]


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """Clamp paging: a non-positive limit means "nothing" in both backends (SQLite
    reads LIMIT -1 as unlimited and MongoDB limit 0 as unlimited), offsets start at 0."""
    return max(0, limit), max(0, offset)
