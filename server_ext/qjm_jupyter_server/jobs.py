"""Watched jobs: register/merge, list, update, delete. No tornado.

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from .clock import Clock
from .notify.messages import MessageFactory
from .settings import Settings
from .store import Store


class JobService:
    def __init__(self, store: Store, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        self.store, self.messages, self.settings, self.clock = store, messages, settings, clock
