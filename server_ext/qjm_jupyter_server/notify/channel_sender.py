"""The channel sender: drains the outbox's channel rows through Apprise.

The same outbox as email, so channel deliveries get the same guarantees: a row per
channel and message (dedupe key), leases between server processes, retries with backoff,
and the delivery log. Each row is sent on its own (no shared connection as with SMTP), up
to `channel_concurrency` at once. The channel's URL is decrypted and checked again (scheme,
host resolving to public addresses only) right before each send.
"""

from __future__ import annotations

import asyncio
import logging

from ..clock import Clock
from ..domain import Notification
from ..errors import InvalidInput
from ..secrets import KeyRing
from ..settings import Settings
from ..store import Store
from .channels import Delivered, check_reachable, deliver, inspect
from .drainer import Drainer

log = logging.getLogger("qjm.channels")


class ChannelSender(Drainer):
    task_name = "qjm-channel-sender"
    what = "channel delivery"
    batch_limit: int = 100

    def __init__(self, store: Store, keyring: KeyRing, settings: Settings, clock: Clock, owner: str) -> None:
        super().__init__(store, clock, owner)
        self.keyring, self.settings = keyring, settings

    @property
    def lease_ms(self) -> int:
        # A delivery takes at most channel_timeout (+1 s for Apprise to give up); the lease outlives a batch.
        return int(max(self.settings.mail_lease_seconds, self.settings.channel_timeout * 4) * 1000)

    async def drain_once(self) -> int:
        """Claim due channel rows and try each once; returns how many were handled."""
        now = self.clock.now_ms()
        rows = await self.store.claim_outbox(self.owner, now, self.lease_ms, self.batch_limit, channels=True)
        if not rows:
            return 0
        gate = asyncio.Semaphore(max(1, self.settings.channel_concurrency))

        async def one(row: Notification) -> None:
            async with gate:
                outcome = await self._attempt(row)
            await self._settle(row, outcome)

        await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def _attempt(self, row: Notification) -> Delivered:
        assert row.channel_id is not None
        channel = await self.store.get_channel(row.channel_id, row.user_id)
        if channel is None:
            return Delivered(False, temporary=False, reason="the channel was deleted")
        if not channel.enabled:
            return Delivered(False, temporary=False, reason="the channel is turned off")
        try:
            url = self.keyring.decrypt(channel.user_id, channel.url_cipher)
        except Exception:  # noqa: BLE001 - token_keys changed without rotation
            return Delivered(False, temporary=False, reason="the channel URL cannot be decrypted (token_keys changed?)")
        try:
            target = inspect(url, self.settings)
            await check_reachable(target, self.settings)
        except InvalidInput as exc:
            return Delivered(False, temporary=False, reason=f"refused: {exc.message}")
        try:
            return await deliver(url, row.subject, row.text or row.subject, self.settings.channel_timeout)
        except Exception as exc:  # noqa: BLE001 - a plugin bug is one failed attempt, not a dead sender
            return Delivered(False, temporary=True, reason=f"{type(exc).__name__}: {exc}"[:300])

    async def _settle(self, row: Notification, outcome: Delivered) -> None:
        await self.record(row, None if outcome.ok else (outcome.temporary, outcome.reason))
