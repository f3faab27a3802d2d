"""The user-facing side of the outbox: reading one's delivery log, asking for a test mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..domain import Notification, User
from ..errors import Forbidden
from ..settings import Settings
from ..store import Store
from ..throttle import Throttle
from .messages import MessageFactory

TEST_MAILS_PER_HOUR = 5
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class QueuedTest:
    note: Notification
    mail_enabled: bool  # False: it waits in the outbox (and the delivery log) for a relay

    @property
    def message(self) -> str:
        if self.mail_enabled:
            return "test email queued"
        return "test email queued, but email is off on this server (no smtp_host)"


class OutboxService:
    def __init__(
        self, store: Store, messages: MessageFactory, settings: Settings, clock: Clock,
        wake_sender: Callable[[], None] = lambda: None,
    ) -> None:
        self.store, self.messages, self.settings, self.clock = store, messages, settings, clock
        self.wake_sender = wake_sender
        self.throttle = Throttle(store, clock)

    async def delivery_log(self, user: User, limit: int, offset: int) -> tuple[list[Notification], int]:
        rows = await self.store.list_notifications(user.id, limit, offset)
        return rows, await self.store.count_outbox(user_id=user.id)

    async def send_test(self, user: User) -> QueuedTest:
        """Queue a test mail to oneself and have the sender take it now."""
        note = await self.queue_test(user)
        if self.settings.mail_enabled:
            self.wake_sender()
        return QueuedTest(note=note, mail_enabled=self.settings.mail_enabled)

    async def queue_test(self, user: User) -> Notification:
        """A test mail to oneself, throttled (it is a way to make us send mail)."""
        if self.settings.require_verified_email and not user.is_verified:
            raise Forbidden("verify your email address first: test emails go to verified addresses only", code="not_verified")
        await self.throttle.take_or_raise(f"mailtest:{user.id}", TEST_MAILS_PER_HOUR, HOUR_MS, f"at most {TEST_MAILS_PER_HOUR} test emails an hour")
        now = self.clock.now_ms()
        note = self.messages.test_message(user, now)
        await self.store.enqueue([note])
        return note
