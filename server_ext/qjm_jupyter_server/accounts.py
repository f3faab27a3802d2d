"""Accounts: register, login, JWTs, verification, reset, profile, admin. No tornado.

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from .clock import Clock
from .domain import User
from .notify.messages import MessageFactory
from .secrets import KeyRing
from .settings import Settings
from .store import Store


class AccountService:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        self.store, self.keyring, self.messages, self.settings, self.clock = store, keyring, messages, settings, clock

    async def authenticate(self, bearer_token: str) -> User:
        """Verify a JWT (HS256 pinned, exp/iat/sub/tv) and return the active user; raises Unauthorized."""
        raise NotImplementedError

    async def promote_configured_admins(self) -> None:
        """Mark accounts listed in settings.admin_emails as admins (run once at open)."""
        return None
