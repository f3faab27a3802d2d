"""A user's notification channels: add (checked, encrypted), list (scheme and host only),
change, delete, send a test. No tornado; Apprise specifics live in notify/channels.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qjm_jupyter.statuses import UnknownStatus, normalize_statuses

from .clock import Clock
from .domain import Channel, Notification, User, new_id
from .errors import InvalidInput, NotFound, TooManyRequests
from .notify.channels import check_reachable, inspect
from .notify.messages import MessageFactory
from .secrets import KeyRing
from .settings import Settings
from .store import Store

TESTS_PER_HOUR = 5


class ChannelService:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        self.store, self.keyring, self.messages, self.settings, self.clock = store, keyring, messages, settings, clock

    async def _checked(self, url: str) -> tuple[str, str]:
        target = inspect(url, self.settings)
        await check_reachable(target, self.settings)
        return target.scheme, target.host

    @staticmethod
    def _statuses(values: Sequence[str] | None) -> list[str] | None:
        if values is None:
            return None
        try:
            return normalize_statuses(values)
        except UnknownStatus as exc:
            raise InvalidInput(str(exc), field="notify_status") from None

    async def list_channels(self, user: User) -> list[Channel]:
        return await self.store.list_channels(user.id)

    async def get(self, user: User, channel_id: str) -> Channel:
        channel = await self.store.get_channel(channel_id, user.id)
        if channel is None:
            raise NotFound(f"no channel {channel_id!r}", field="channel_id")
        return channel

    async def add(self, user: User, url: str, label: str | None, notify_status: Sequence[str] | None) -> Channel:
        if len(await self.store.list_channels(user.id)) >= self.settings.channels_per_user:
            raise InvalidInput(f"at most {self.settings.channels_per_user} channels per account", field="url")
        scheme, host = await self._checked(url)
        now = self.clock.now_ms()
        channel = Channel(
            id=new_id("c_"),
            user_id=user.id,
            url_cipher=self.keyring.encrypt(user.id, url.strip()),
            scheme=scheme,
            host=host,
            created_at=now,
            updated_at=now,
            label=label,
            notify_status=self._statuses(notify_status) or list(user.notify_default or self.settings.default_notify_status),
        )
        await self.store.create_channel(channel)
        return channel

    async def update(self, user: User, channel_id: str, changes: dict[str, Any]) -> Channel:
        await self.get(user, channel_id)
        values: dict[str, Any] = {}
        if "url" in changes:
            url = changes["url"] or ""
            values["scheme"], values["host"] = await self._checked(url)
            values["url_cipher"] = self.keyring.encrypt(user.id, url.strip())
        if "notify_status" in changes:
            values["notify_status"] = self._statuses(changes["notify_status"] or [])
        for name in ("label", "enabled"):
            if name in changes:
                values[name] = changes[name]
        values["updated_at"] = self.clock.now_ms()
        updated = await self.store.update_channel(channel_id, user.id, values)
        if updated is None:
            raise NotFound(f"no channel {channel_id!r}", field="channel_id")
        return updated

    async def delete(self, user: User, channel_id: str) -> None:
        if not await self.store.delete_channel(channel_id, user.id):
            raise NotFound(f"no channel {channel_id!r}", field="channel_id")

    async def send_test(self, user: User, channel_id: str) -> Notification:
        channel = await self.get(user, channel_id)
        now = self.clock.now_ms()
        hour = 3_600_000
        state = await self.store.throttle_hit(f"channeltest:{user.id}", now, hour)
        if state.count > TESTS_PER_HOUR:
            raise TooManyRequests(f"at most {TESTS_PER_HOUR} channel tests an hour", retry_after=(state.window_start + hour - now) // 1000)
        note = self.messages.channel_test(user, channel, now)
        await self.store.enqueue([note])
        return note

    async def delivery_log(self, user: User, channel_id: str, limit: int, offset: int) -> tuple[list[Notification], int]:
        await self.get(user, channel_id)
        rows = await self.store.list_notifications(user.id, limit, offset, channel_id=channel_id)
        return rows, await self.store.count_outbox(user_id=user.id, channel_id=channel_id)
