"""The poller task: claims poll units, asks IBM, applies transitions.

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from ..clock import Clock
from ..notify.messages import MessageFactory
from ..secrets import KeyRing
from ..settings import Settings
from ..store import Store
from .ibm import IBMClient


class Poller:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, ibm: IBMClient, settings: Settings, clock: Clock, owner: str) -> None:
        self.store, self.keyring, self.messages, self.ibm = store, keyring, messages, ibm
        self.settings, self.clock, self.owner = settings, clock, owner

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def has_work(self) -> bool:
        return False
