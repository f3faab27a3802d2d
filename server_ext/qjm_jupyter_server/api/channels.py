"""Models of the channels API. A channel's URL goes in and never comes out: responses
show only its scheme and host (the rest of an Apprise URL is usually the secret)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..domain import Channel
from .jobs import StatusList, StatusOut, Text
from .times import IsoTime


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text(2000, 1) = Field(  # type: ignore[valid-type]
        description="An Apprise URL: ntfys://ntfy.sh/topic, slack://T/B/C, discord://id/token, jsons://host/path, ..."
    )
    label: Text(100) | None = None  # type: ignore[valid-type]
    notify_status: StatusList | None = Field(default=None, description="Statuses this channel hears of (and the group milestones behind them: RUNNING for the first job running, a final status for all jobs final); defaults to your notify_default.")


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text(2000, 1) | None = Field(default=None, description="Replace the URL (checked like a new one).")  # type: ignore[valid-type]
    label: Text(100) | None = None  # type: ignore[valid-type]
    notify_status: StatusList | None = None
    enabled: bool | None = None

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ChannelOut(BaseModel):
    id: str
    scheme: str = Field(description="The Apprise scheme (ntfys, slack, json, ...)")
    host: str = Field(description="The host it delivers to; empty for services addressed by tokens only (Slack, Discord)")
    label: str | None
    notify_status: list[StatusOut]
    enabled: bool
    created_at: IsoTime
    updated_at: IsoTime

    @classmethod
    def from_record(cls, c: Channel) -> ChannelOut:
        return cls(id=c.id, scheme=c.scheme, host=c.host, label=c.label, notify_status=list(c.notify_status),
                   enabled=c.enabled, created_at=c.created_at, updated_at=c.updated_at)


class ChannelList(BaseModel):
    channels: list[ChannelOut]
