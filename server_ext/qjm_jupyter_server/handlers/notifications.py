"""`qjm/api/notifications`: the delivery log, and a test email to oneself."""

from __future__ import annotations

from ..api.notifications import (
    NotificationList,
    NotificationOut,
    NotificationQuery,
    PreferencesIn,
    PreferencesOut,
    QueuedOut,
)
from ..api.spec import Op
from ..domain import User
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


def _prefs(user: User) -> PreferencesOut:
    return PreferencesOut(
        mail_stopped=user.mail_stopped_at is not None,
        mail_stopped_at=user.mail_stopped_at,
        time_zone=user.time_zone or "UTC",
        quiet_start=user.quiet_start,
        quiet_end=user.quiet_end,
        quiet_breakthrough=list(user.quiet_breakthrough),
        digest_minutes=user.digest_minutes,
    )


class PreferencesHandler(QJMHandler):
    route = r"/qjm/api/notifications/preferences"
    spec = {
        "get": Op("Your notification preferences", response=PreferencesOut, tags=TAGS),
        "put": Op(
            "Change your notification preferences: stop/resume email, time zone, quiet hours, digest",
            body=PreferencesIn, response=PreferencesOut, tags=TAGS, errors=(422,),
            description="Only the fields sent change. quiet_start and quiet_end go together (null both to turn quiet "
            "hours off); digest_minutes 0 turns the digest off, otherwise at least 5.",
        ),
    }

    async def get(self) -> None:
        self.send(_prefs(self.user))

    async def put(self) -> None:
        body: PreferencesIn = self.body()
        self.send(_prefs(await self.services.stop.update_preferences(self.user, body.changes())))


HANDLERS: list[type[QJMHandler]] = [NotificationsHandler, NotificationTestHandler, PreferencesHandler]
