"""Operator commands: `jupyter qjm rotate-keys`, `jupyter qjm create-admin EMAIL` and `jupyter qjm watch`.

Each is a traitlets subcommand of `jupyter qjm` (a `JupyterApp`, as jupyter_server's own
`jupyter server list` is), so `jupyter qjm --help` lists them and each has its own
`--help`. They read the same configuration as the server (jupyter_server_config and
jupyter_qjm_config files, `--QJMServerApp.<name>=...`, then QJM_* variables), so they
act on the same database with the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, field

from jupyter_core.application import JupyterApp
from traitlets import Unicode

from .app import QJMServerApp, exit_usage
from .errors import QJMError
from .secrets import UndecryptableKey
from .services import Services

PAGE = 200


class UsageError(Exception):
    """A command line the command cannot run: reported in one line, exit status 2."""


class QJMCommand(JupyterApp):
    """A maintenance command run on the server's database; `run` does the work."""

    # The server's own config file names: the command must see what the server sees.
    config_file_name = Unicode("jupyter_qjm_config")
    classes = [QJMServerApp]
    usage = ""

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        """jupyter_server_config first (where `jupyter lab` users put c.QJMServerApp), then
        jupyter_qjm_config (the standalone server's), as the server reads them."""
        for name in ("jupyter_server_config", "jupyter_qjm_config"):
            self.config_file_name = name
            super().load_config_file(suppress_errors=suppress_errors)

    def build_services(self) -> Services:
        return QJMServerApp(config=self.config).build_services()

    def parse_args(self) -> None:
        """Check `self.extra_args` (positional arguments); raise UsageError."""
        if self.extra_args:
            raise UsageError(f"{self.name} takes no arguments (got {' '.join(self.extra_args)!r}); see --help")

    async def run(self, services: Services) -> int:
        raise NotImplementedError

    def start(self) -> None:
        try:
            self.parse_args()
        except UsageError as exc:
            exit_usage(f"{self.name}: {exc}")
        sys.exit(asyncio.run(self._run()))

    async def _run(self) -> int:
        services = self.build_services()
        try:
            await services.ensure_open()
            return await self.run(services)
        except QJMError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        finally:
            await services.store.close()


@dataclass
class Rotation:
    """What rotate-keys did: secrets re-encrypted, and those no configured key opens."""

    keys: int = 0
    channels: int = 0
    broken_keys: list[str] = field(default_factory=list)  # user ids
    broken_channels: list[str] = field(default_factory=list)  # channel ids


async def rotate_keys(services: Services) -> Rotation:
    """Re-encrypt every secret the key ring holds: IBM API keys and channel URLs (a
    channel's URL carries its webhook token), so dropping an old key loses neither."""
    store, keyring = services.store, services.keyring
    done = Rotation()
    offset = 0
    while True:
        users = await store.list_users(PAGE, offset)
        if not users:
            break
        offset += len(users)
        for user in users:
            if user.ibm_key_cipher:
                try:
                    cipher = keyring.rotate(user.id, user.ibm_key_cipher)
                except UndecryptableKey:
                    done.broken_keys.append(user.id)
                else:
                    await store.update_user(user.id, {"ibm_key_cipher": cipher})
                    done.keys += 1
            for channel in await store.list_channels(user.id):
                try:
                    cipher = keyring.rotate(user.id, channel.url_cipher)
                except UndecryptableKey:
                    done.broken_channels.append(channel.id)
                else:
                    await store.update_channel(channel.id, user.id, {"url_cipher": cipher})
                    done.channels += 1
    return done


class RotateKeysApp(QJMCommand):
    name = "rotate-keys"
    description = (
        "Re-encrypt every stored IBM API key and channel URL with the first key of token_keys. Put the new Fernet "
        "key first in c.QJMServerApp.token_keys / QJM_TOKEN_KEYS (keep the old ones after it), run this, then remove "
        "the old keys."
    )

    async def run(self, services: Services) -> int:
        done = await rotate_keys(services)
        print(f"rotated {done.keys} stored IBM API key(s) and {done.channels} channel URL(s) to the newest key")
        if done.broken_keys:
            print(
                f"{len(done.broken_keys)} key(s) could not be decrypted with the configured token_keys "
                f"(users: {', '.join(done.broken_keys)}); they were left unchanged",
                file=sys.stderr,
            )
        if done.broken_channels:
            print(
                f"{len(done.broken_channels)} channel URL(s) could not be decrypted with the configured token_keys "
                f"(channels: {', '.join(done.broken_channels)}); they were left unchanged",
                file=sys.stderr,
            )
        return 1 if done.broken_keys or done.broken_channels else 0


class CreateAdminApp(QJMCommand):
    name = "create-admin"
    description = "Make an existing account an administrator: jupyter qjm create-admin EMAIL"
    examples = "jupyter qjm create-admin lead@example.org"

    email = ""

    def parse_args(self) -> None:
        if len(self.extra_args) != 1:
            raise UsageError(f"expects one EMAIL (got {len(self.extra_args)} arguments); see --help")
        self.email = self.extra_args[0]

    async def run(self, services: Services) -> int:
        user = await services.accounts.promote(self.email)
        print(f"{user.email} is an administrator")
        return 0


class WatchApp(QJMCommand):
    name = "watch"
    description = (
        "Run the watcher and mailer alone, on the server's database, until SIGTERM or Ctrl-C: for a server "
        "configured with watcher = 'external' (for instance on another host sharing its MongoDB)"
    )
    examples = "jupyter qjm watch --QJMServerApp.db_url=mongodb://db.example.org/qjm"

    def build_services(self) -> Services:
        app = QJMServerApp(config=self.config)
        app.watcher = "inline"  # this process is the watcher, whatever the server's config says ("external")
        return app.build_services()

    async def run(self, services: Services) -> int:
        from .watcher.process import serve

        if not logging.getLogger().handlers:  # the watcher's own log lines, as the server prints them
            logging.basicConfig(level=self.log_level, format="[qjm watch %(asctime)s %(levelname)s] %(message)s")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C ends asyncio.run instead
                loop.add_signal_handler(sig, stop.set)
        await serve(services, stop)
        return 0
