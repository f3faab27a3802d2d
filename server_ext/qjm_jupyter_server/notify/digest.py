"""Releasing held job mail (quiet hours, digests) as one summary mail per user.

Crash-safe in the outbox's usual way: the summary is enqueued first (its dedupe key
names the first held row and the count), the held rows are marked 'digested' second; a
crash in between re-enqueues the same key, which the outbox ignores.
"""

from __future__ import annotations

from ..domain import Notification
from ..store import Store
from .messages import MessageFactory
from .schedule import hold_until

BATCH = 500
EVER = 2**62  # list every held row, due or not


async def release_held(store: Store, messages: MessageFactory, now: int) -> int:
    """Summarise held mail that is due, or all of a user's held mail once they no longer
    hold any (quiet hours or the digest turned off); returns how many summaries were queued."""
    held = await store.list_held(EVER, BATCH)
    by_user: dict[str, list[Notification]] = {}
    for row in held:
        if row.user_id:
            by_user.setdefault(row.user_id, []).append(row)
    queued = 0
    for user_id, rows in by_user.items():
        user = await store.get_user(user_id)
        if user is not None and hold_until(user, [], now) is not None:
            rows = [r for r in rows if r.next_attempt_at <= now]
        if not rows:
            continue
        if user is not None and user.mail_stopped_at is None:
            queued += await store.enqueue([messages.digest(user, rows, now)])
        await store.mark_digested([r.id for r in rows], now)
    return queued
