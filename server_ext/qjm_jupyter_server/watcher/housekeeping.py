"""Housekeeping: what the server accumulates goes, at most once an hour.

Finished jobs older than `retention_days` and sent emails older than
`outbox_retention_days` (each only when > 0), expired email links and the unsent emails
that carry them, throttle counters whose window is long past, and job tombstones older
than TOMBSTONE_DAYS. Every server process may sweep; each delete is idempotent, so no
lease is needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..clock import Clock
from ..settings import Settings
from ..store import Store

log = logging.getLogger("qjm.watcher")

PURGE_EVERY = 3600.0  # seconds between two sweeps
DAY_MS = 86_400_000
TOMBSTONE_DAYS = 7  # deletions the Lab panel's changes feed can still learn about
# Throttle counters are dropped once their window started longer ago than any window in
# use (login: login_fail_window; mail and test mail: 1 h), with a day's margin.
THROTTLE_KEEP_MS = DAY_MS
HOUR_MS = 3_600_000


class Housekeeping:
    def __init__(self, store: Store, settings: Callable[[], Settings], clock: Clock) -> None:
        self.store, self._settings, self.clock = store, settings, clock
        self._swept_at = 0.0
        self.last: dict[str, int] = {}  # what the last sweep removed, by kind

    async def sweep(self, force: bool = False) -> int:
        """One sweep unless one ran within the hour; returns how many records went."""
        if not force and time.monotonic() - self._swept_at < PURGE_EVERY:
            return 0
        self._swept_at = time.monotonic()
        settings, now = self._settings(), self.clock.now_ms()
        removed: dict[str, int] = {}
        if settings.retention_days > 0:
            cutoff = now - settings.retention_days * DAY_MS
            removed["finished jobs"] = await self.store.purge_jobs(cutoff, now=now)
        if settings.outbox_retention_days > 0:
            removed["sent emails"] = await self.store.purge_outbox(now - settings.outbox_retention_days * DAY_MS)
        removed["expired email links"] = await self.store.purge_action_tokens(now)
        # unsent (pending or failed) mail whose link has expired: the link is dead, and
        # the row would otherwise keep it at rest for ever
        removed["unsent expired links"] = (
            await self.store.purge_outbox_links("verify", now - settings.verify_token_ttl * 1000)
            + await self.store.purge_outbox_links("reset", now - settings.reset_token_ttl * 1000)
        )
        longest_window = max(settings.login_fail_window * 1000, HOUR_MS)
        removed["throttle counters"] = await self.store.purge_throttles(now - longest_window - THROTTLE_KEEP_MS)
        removed["job tombstones"] = await self.store.purge_deleted_jobs(now - TOMBSTONE_DAYS * DAY_MS)
        self.last = removed
        if any(removed.values()):
            log.info("qjm: housekeeping removed %s", ", ".join(f"{n} {kind}" for kind, n in removed.items() if n))
        return sum(removed.values())
