"""`qjm/api/notifications`: the delivery log, and a test email to oneself."""

from __future__ import annotations

from ..api.notifications import NotificationList, NotificationOut, NotificationQuery, QueuedOut
from ..api.spec import Op
from ..notify.outbox import OutboxService
from .base import QJMHandler

TAGS = ("notifications",)


class _OutboxMixin(QJMHandler):
    @property
    def outbox(self) -> OutboxService:
        svc = self.services
        existing = getattr(svc, "outbox", None)
        if isinstance(existing, OutboxService):
            return existing
        return OutboxService(svc.store, svc.messages, svc.settings, svc.clock)


class NotificationsHandler(_OutboxMixin):
    route = r"/qjm/api/notifications"
    spec = {
        "get": Op(
            "Your delivery log: every email queued for you, newest first, with its state and last SMTP error",
            response=NotificationList, query=NotificationQuery, tags=TAGS, errors=(422,),
        )
    }

    async def get(self) -> None:
        assert self.user is not None
        q = self.query(NotificationQuery)
        rows, total = await self.outbox.delivery_log(self.user, q.limit, q.offset)
        self.send(NotificationList(notifications=[NotificationOut.from_record(n) for n in rows], total=total))


class NotificationTestHandler(_OutboxMixin):
    route = r"/qjm/api/notifications/test"
    spec = {
        "post": Op(
            "Queue a test email to yourself (at most 5 an hour)",
            response=QueuedOut, status=202, tags=TAGS, errors=(403, 429),
        )
    }

    async def post(self) -> None:
        assert self.user is not None
        note = await self.outbox.queue_test(self.user)
        sender = self.services.sender
        mail_enabled = bool(self.services.settings.smtp_host)
        if mail_enabled and hasattr(sender, "wake"):
            sender.wake()
        message = "test email queued" if mail_enabled else "test email queued, but email is off on this server (no smtp_host)"
        self.send(QueuedOut(message=message, id=note.id, mail_enabled=mail_enabled))


HANDLERS: list[type[QJMHandler]] = [NotificationsHandler, NotificationTestHandler]
