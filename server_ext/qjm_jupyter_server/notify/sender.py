"""The sender task: drains the outbox over SMTP (aiosmtplib).

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from ..clock import Clock
from ..settings import Settings
from ..store import Store


class Sender:
    def __init__(self, store: Store, settings: Settings, clock: Clock, owner: str) -> None:
        self.store, self.settings, self.clock, self.owner = store, settings, clock, owner

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
