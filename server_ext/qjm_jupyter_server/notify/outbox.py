"""The user-facing side of the outbox: reading one's delivery log, asking for a test mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..domain import Notification, User
from ..errors import Forbidden, TooManyRequests
from ..settings import Settings
from ..store import Store
from .messages import MessageFactory

TEST_MAILS_PER_HOUR = 5


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
        now = self.clock.now_ms()
        hour = 3_600_000
        state = await self.store.throttle_hit(f"mailtest:{user.id}", now, hour)
        if state.count > TEST_MAILS_PER_HOUR:
            retry_after = (state.window_start + hour - now) // 1000
            raise TooManyRequests(f"at most {TEST_MAILS_PER_HOUR} test emails an hour", retry_after=retry_after)
        note = self.messages.test_message(user, now)
        await self.store.enqueue([note])
        return note
