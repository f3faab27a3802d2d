"""What every outbox sender shares: the background drain loop and the row bookkeeping.

The email sender (SMTP) and the channel sender (Apprise) differ in how they send; they
drain the same outbox the same way: drain until nothing is due, then wait for a wake-up
or the idle pause; after each attempt record sent, retry later with backoff, or failed
(permanent, or still failing after a day).
"""

from __future__ import annotations

import asyncio
import logging
import random

from ..clock import Clock
from ..domain import Notification
from ..store import Store
from .outcomes import GIVE_UP_MS, backoff_ms

log = logging.getLogger("qjm.mail")


class Drainer:
    idle_seconds: float = 2.0  # pause between empty drains (wake() cuts it short)
    task_name = "qjm-outbox"
    what = "delivery"  # how logs name a row

    def __init__(self, store: Store, clock: Clock, owner: str) -> None:
        self.store, self.clock, self.owner = store, clock, owner
        self.running = False
        self.rng = random.Random()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False

    async def drain_once(self) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.task_name)
        self.running = True

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        self.running = False
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def wake(self) -> None:
        """Drain now instead of after the idle pause (after an enqueue, say)."""
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                handled = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a store hiccup must not end the sender
                log.exception("qjm: %s drain failed; trying again shortly", self.what)
                handled = 0
            if handled:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def record(self, row: Notification, failure: tuple[bool, str] | None) -> None:
        """Settle one attempt: `failure` None = sent, else (temporary?, reason)."""
        now = self.clock.now_ms()
        if failure is None:
            ok = await self.store.mark_sent(row.id, self.owner, now)
        elif not failure[0]:
            log.warning("qjm: %s %s (%s) failed for good: %s", self.what, row.id, row.kind, failure[1])
            ok = await self.store.mark_failed(row.id, self.owner, failure[1], now)
        elif now - row.created_at >= GIVE_UP_MS:
            reason = f"gave up after {row.attempts} attempts: {failure[1]}"
            log.warning("qjm: %s %s (%s) %s", self.what, row.id, row.kind, reason)
            ok = await self.store.mark_failed(row.id, self.owner, reason, now)
        else:
            delay = backoff_ms(row.attempts, self.rng)
            log.info("qjm: %s %s (%s) deferred %.0f s: %s", self.what, row.id, row.kind, delay / 1000, failure[1])
            ok = await self.store.mark_retry(row.id, self.owner, now + delay, failure[1])
        if not ok:
            log.warning("qjm: lost the lease on %s %s before recording its outcome", self.what, row.id)
