"""`qjm/api/notifications`: the delivery log, and a test email to oneself."""

from __future__ import annotations

from ..api.notifications import NotificationList, NotificationOut, NotificationQuery, QueuedOut
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("notifications",)


class NotificationsHandler(QJMHandler):
    route = r"/qjm/api/notifications"
    spec = {
        "get": Op(
            "Your delivery log: every email queued for you, newest first, with its state and last SMTP error",
            response=NotificationList, query=NotificationQuery, tags=TAGS, errors=(422,),
        )
    }

    async def get(self) -> None:
        q = self.query(NotificationQuery)
        rows, total = await self.services.outbox.delivery_log(self.user, q.limit, q.offset)
        self.send(NotificationList.from_records(rows, total))


class NotificationTestHandler(QJMHandler):
    route = r"/qjm/api/notifications/test"
    spec = {
        "post": Op(
            "Queue a test email to yourself (at most 5 an hour)",
            response=QueuedOut, status=202, tags=TAGS, errors=(403, 429),
        )
    }

    async def post(self) -> None:
        queued = await self.services.outbox.send_test(self.user)
        self.send(QueuedOut(message=queued.message, id=queued.note.id, mail_enabled=queued.mail_enabled))


HANDLERS: list[type[QJMHandler]] = [NotificationsHandler, NotificationTestHandler]
