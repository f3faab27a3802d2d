"""`qjm/api/channels`: a user's Apprise channels, their test and their delivery log."""

from __future__ import annotations

from ..api.channels import ChannelIn, ChannelList, ChannelOut, ChannelPatch
from ..api.notifications import NotificationList, NotificationOut, NotificationQuery, QueuedOut
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("channels",)


class ChannelsHandler(QJMHandler):
    route = r"/qjm/api/channels"
    spec = {
        "get": Op("Your notification channels (scheme and host only; URLs are never returned)", response=ChannelList, tags=TAGS),
        "post": Op(
            "Add a channel (an Apprise URL)", body=ChannelIn, response=ChannelOut, status=201, tags=TAGS, errors=(422,),
            description="Refused (422 on `url`): schemes that act on the server's own machine, schemes outside the "
            "operator's channel_schemes, and hosts that are or resolve to loopback, private or link-local addresses.",
        ),
    }

    async def get(self) -> None:
        channels = await self.services.channels.list_channels(self.user)
        self.send(ChannelList(channels=[ChannelOut.from_record(c) for c in channels]))

    async def post(self) -> None:
        body: ChannelIn = self.body()
        channel = await self.services.channels.add(self.user, body.url, body.label, body.notify_status)
        self.send(ChannelOut.from_record(channel))


class ChannelHandler(QJMHandler):
    route = r"/qjm/api/channels/(?P<channel_id>[^/]+)"
    spec = {
        "get": Op("One channel", response=ChannelOut, tags=TAGS, errors=(404,)),
        "patch": Op("Change a channel (label, statuses, enabled, or a new URL)", body=ChannelPatch, response=ChannelOut, tags=TAGS, errors=(404, 422)),
        "delete": Op("Delete a channel", response=None, status=204, tags=TAGS, errors=(404,)),
    }

    async def get(self, channel_id: str) -> None:
        self.send(ChannelOut.from_record(await self.services.channels.get(self.user, channel_id)))

    async def patch(self, channel_id: str) -> None:
        patch: ChannelPatch = self.body()
        self.send(ChannelOut.from_record(await self.services.channels.update(self.user, channel_id, patch.changes())))

    async def delete(self, channel_id: str) -> None:
        await self.services.channels.delete(self.user, channel_id)
        self.send(None)


class ChannelTestHandler(QJMHandler):
    route = r"/qjm/api/channels/(?P<channel_id>[^/]+)/test"
    spec = {"post": Op("Send a test notification to a channel (at most 5 an hour)", response=QueuedOut, status=202, tags=TAGS, errors=(404, 429))}

    async def post(self, channel_id: str) -> None:
        note = await self.services.channels.send_test(self.user, channel_id)
        self.services.channel_sender.wake()
        self.send(QueuedOut(message="test notification queued", id=note.id, mail_enabled=bool(self.services.settings.smtp_host)))


class ChannelDeliveriesHandler(QJMHandler):
    route = r"/qjm/api/channels/(?P<channel_id>[^/]+)/deliveries"
    spec = {"get": Op("A channel's delivery log, newest first", response=NotificationList, query=NotificationQuery, tags=TAGS, errors=(404, 422))}

    async def get(self, channel_id: str) -> None:
        q = self.query(NotificationQuery)
        rows, total = await self.services.channels.delivery_log(self.user, channel_id, q.limit, q.offset)
        self.send(NotificationList(notifications=[NotificationOut.from_record(n) for n in rows], total=total))


HANDLERS: list[type[QJMHandler]] = [ChannelsHandler, ChannelTestHandler, ChannelDeliveriesHandler, ChannelHandler]
