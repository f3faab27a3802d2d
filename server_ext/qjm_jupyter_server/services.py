"""Wiring: the one place that builds the services and hands them their collaborators.

The app (or a test, or a benchmark) builds a `Services` from a `Settings`, a store and
a key ring; handlers reach the services through it. Nothing here knows tornado.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .accounts import AccountService
from .authcache import tapped
from .clock import Clock, SystemClock
from .cancel import CancelService
from .channels import ChannelService
from .notify.channel_sender import ChannelSender
from .identity import Authenticator, IdentityBinder
from .identity.hub import hub_service_api_path
from .jobs import JobService
from .notify.links import StopLinks, link_key
from .notify.messages import MessageFactory
from .notify.stop import StopService
from .notify.outbox import OutboxService
from .notify.sender import Sender
from .secrets import KeyRing
from .settings import Settings
from .store import Store
from .watcher.ibm import IBMClient
from .watcher.poller import Poller

log = logging.getLogger("qjm")


def worker_name() -> str:
    """Identifies this process in leases, so several servers can share one MongoDB."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Watcher(Protocol):
    """What the server asks of its watcher, wherever it runs: the poller in this process, or
    the supervisor of the watcher process (watcher/process.py)."""

    running: bool

    def has_work(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ServerStatus:
    store: str  # the Store class: SQLiteStore or MongoStore ("remote" on a member server)
    watcher_running: bool
    mail_enabled: bool
    mode: str = "personal"  # personal | group | member (the app knows which)
    remote_url: str | None = None  # the group server of a member server
    identity_source: str = "accounts"  # jupyter/hub: no qjm sign-in where the host already authenticated the user
    api_url: str | None = None  # set: the Lab panel uses this API instead (the group's JupyterHub service)
    watcher: str | None = "inline"  # inline | process | external (None on a member server, which watches nothing)


@dataclass
class Services:
    settings: Settings
    store: Store
    keyring: KeyRing
    clock: Clock = field(default_factory=SystemClock)
    owner: str = field(default_factory=worker_name)
    # Where links in emails point, asked for each email: the app knows its URL only once
    # the server is bound (after the services are built). None: settings.public_url.
    public_url: Callable[[], str] | None = None
    # Does this server serve JupyterLab? Asked for each email too: Lab loads after qjm.
    has_lab: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        # Every user write of this process goes through the tap, so cached logins see revocations.
        self.store = tapped(self.store)
        self.stop_links = StopLinks(link_key(self.keyring.jwt_secret))
        self.messages = MessageFactory(self.settings, self.public_url, self.has_lab, self.stop_links)
        self.stop = StopService(self.store, self.stop_links, self.clock)
        self.accounts = AccountService(self.store, self.keyring, self.messages, self.settings, self.clock)
        self.binder = IdentityBinder(self.store, self.settings, self.clock, self.keyring)
        self.accounts.link_confirmed_email = self.binder.link_by_email
        self.identity = Authenticator(self.settings.identity_source or "accounts", self.accounts, self.binder)
        self.jobs = JobService(self.store, self.messages, self.settings, self.clock)
        self.ibm = IBMClient(self.settings)
        self.poller = Poller(self.store, self.keyring, self.messages, self.ibm, self.settings, self.clock, self.owner)
        self.sender = Sender(self.store, self.settings, self.clock, self.owner, self.keyring, self.messages)
        self.outbox = OutboxService(self.store, self.messages, self.settings, self.clock, self.sender.wake)
        self.channels = ChannelService(self.store, self.keyring, self.messages, self.settings, self.clock)
        self.channel_sender = ChannelSender(self.store, self.keyring, self.settings, self.clock, self.owner)
        self.cancel = CancelService(self.store, self.keyring, self.ibm, self.jobs, self.messages, self.clock)
        # The poller, which runs here for watcher = "inline"; the app puts a WatcherProcess in
        # its place for "process"; "external" starts neither.
        self.watcher: Watcher = self.poller
        self._open_lock = asyncio.Lock()
        self._opened = False

    def status(self) -> ServerStatus:
        """What `GET status` tells anyone (no auth): nothing about users or jobs."""
        return ServerStatus(
            store=type(getattr(self.store, "wrapped", self.store)).__name__,  # the database's, not the auth tap's
            watcher_running=self.watcher.running or self.watcher.has_work(),
            watcher=self.settings.watcher or "inline",
            mail_enabled=self.settings.mail_enabled,
            identity_source=self.identity.source,
            api_url=hub_service_api_path(self.settings.hub_service) or None,
        )

    async def ensure_open(self) -> None:
        """Open the store once (lazily, so the API works before background tasks start)."""
        if self._opened:
            return
        async with self._open_lock:
            if not self._opened:
                await self.store.open()
                await self.accounts.promote_configured_admins()
                self._opened = True

    async def start_background(self) -> None:
        """The watcher (unless it is external) and the mailers. Mailers run in every process
        that shares the store, so the mail a process queues goes out at once."""
        await self.ensure_open()
        if self.settings.watcher != "external":
            await self.watcher.start()
        await self.sender.start()
        await self.channel_sender.start()

    async def close(self) -> None:
        """Stop background work, then close clients and the store; never raises."""
        for name, closer in (
            ("account mail", self.accounts.settle),
            ("watcher", self.watcher.stop),
            ("poller", self.poller.stop),  # the watcher itself, or never started
            ("sender", self.sender.stop),
            ("channel sender", self.channel_sender.stop),
            ("ibm client", self.ibm.aclose),
            ("store", self.store.close),
        ):
            try:
                await closer()
            except Exception:  # noqa: BLE001 - shutdown must go on (jupyter-ai#448)
                log.exception("qjm: error while stopping the %s", name)


def open_services(
    settings: Settings,
    *,
    store_class: Callable[[str], Store] | None = None,
    public_url: Callable[[], str] | None = None,
    has_lab: Callable[[], bool] | None = None,
    log: logging.Logger | None = None,
) -> Services:
    """Resolved settings (data_dir and db_url set) -> key ring, store (not yet open) and
    Services. The server, its commands and the watcher process all build theirs here, so
    they read the same secrets and the same database."""
    from .store import open_store

    keyring = KeyRing.load_or_create(Path(settings.data_dir), settings.jwt_secret or None, settings.token_keys or None, log=log)
    store = store_class(settings.db_url) if store_class else open_store(settings.db_url)
    return Services(settings=settings, store=store, keyring=keyring, clock=SystemClock(), public_url=public_url, has_lab=has_lab)
