"""Models of the delivery log (`GET notifications`) and the test-email request."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..domain import Notification
from .jobs import StatusList, StatusOut
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
    state: str = Field(description="pending (queued or retrying) | sent | failed | held (quiet hours or digest) | digested (sent in a summary)")
    attempts: int
    last_error: str | None = Field(description="The last SMTP error: why a mail is late or failed")
    created_at: IsoTime
    sent_at: IsoTime | None
    job_id: str | None
    channel_id: str | None = Field(default=None, description="null: an email; else the channel it went to")

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
            channel_id=n.channel_id,
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


class PreferencesOut(BaseModel):
    mail_stopped: bool = Field(description="true: no job notification email goes out (the mails' \"stop all\" link)")
    mail_stopped_at: IsoTime | None
    time_zone: str = Field(description="IANA time zone of the times below")
    quiet_start: str | None = Field(description="Local HH:MM when quiet hours begin (null: none)")
    quiet_end: str | None = Field(description="Local HH:MM when they end; held mail goes out then, as one summary")
    quiet_breakthrough: list[StatusOut] = Field(description="Statuses mailed even during quiet hours")
    digest_minutes: int = Field(description="0: one mail per change; N: one summary mail per N minutes (1440: daily)")


HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mail_stopped: bool | None = Field(default=None, description="false turns notification email on again")
    time_zone: str | None = Field(default=None, max_length=64, description="IANA name, e.g. Europe/Zurich")
    quiet_start: str | None = Field(default=None, pattern=HHMM)
    quiet_end: str | None = Field(default=None, pattern=HHMM)
    quiet_breakthrough: StatusList | None = None
    digest_minutes: int | None = Field(default=None, ge=0, le=1440)

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}
