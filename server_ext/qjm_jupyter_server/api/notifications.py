"""Models of the delivery log (`GET notifications`) and the test-email request."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..domain import Notification
from .times import IsoTime


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class NotificationOut(BaseModel):
    id: str
    kind: str = Field(description="job_status | group | key_invalid | forbidden | job_lost | verify | reset | notice | test")
    subject: str
    to: str
    state: str = Field(description="pending (queued or retrying) | sent | failed")
    attempts: int
    last_error: str | None = Field(description="The last SMTP error: why a mail is late or failed")
    created_at: IsoTime
    sent_at: IsoTime | None
    job_id: str | None

    @classmethod
    def from_record(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id,
            kind=n.kind,
            subject=n.subject,
            to=n.to_addr,
            state=n.state,
            attempts=n.attempts,
            last_error=n.last_error,
            created_at=n.created_at,
            sent_at=n.sent_at,
            job_id=n.job_id,
        )


class NotificationList(BaseModel):
    notifications: list[NotificationOut]
    total: int

    @classmethod
    def from_records(cls, rows: list[Notification], total: int) -> NotificationList:
        return cls(notifications=[NotificationOut.from_record(n) for n in rows], total=total)


class QueuedOut(BaseModel):
    message: str
    id: str | None = None
    mail_enabled: bool
