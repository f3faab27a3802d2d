"""Releasing held job mail (quiet hours, digests) as one summary mail per user.

Crash-safe in the outbox's usual way: the summary is enqueued first (its dedupe key
names the first held row and the count), the held rows are marked 'digested' second; a
crash in between re-enqueues the same key, which the outbox ignores.
"""

from __future__ import annotations

from ..domain import Notification
from ..store import Store
from .messages import MessageFactory

BATCH = 500


async def release_held(store: Store, messages: MessageFactory, now: int) -> int:
    """Summarise every held mail that is due; returns how many summaries were queued."""
    held = await store.list_held(now, BATCH)
    by_user: dict[str, list[Notification]] = {}
    for row in held:
        if row.user_id:
            by_user.setdefault(row.user_id, []).append(row)
    queued = 0
    for user_id, rows in by_user.items():
        user = await store.get_user(user_id)
        if user is not None and user.mail_stopped_at is None:
            queued += await store.enqueue([messages.digest(user, rows, now)])
        await store.mark_digested([r.id for r in rows], now)
    return queued
