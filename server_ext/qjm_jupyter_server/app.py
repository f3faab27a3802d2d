"""QJMServerApp: the jupyter-server extension (and the standalone `jupyter qjm` server).

Its configuration is the `Settings` dataclass (settings.py), declared there once: every
field becomes a config trait here (`c.QJMServerApp.<name>`), whose default is the
environment variable `QJM_<NAME>` when set, so a container or a group server can be
configured either way, and config files and the command line still win.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields, replace
from pathlib import Path
from typing import Any, NoReturn

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Float, HasTraits, Int, List, TraitType, Type, Unicode

from .api.openapi import build_openapi
from .handlers import HANDLERS, MEMBER_HANDLERS, STATIC_HANDLERS
from .services import ServerStatus, Services, open_services
from .settings import Settings, env_name
from .version import __version__

_TRAIT_TYPES: dict[Any, type[TraitType[Any, Any]]] = {str: Unicode, int: Int, float: Float, bool: Bool}


def default_data_dir() -> Path:
    return Path(jupyter_data_dir()) / "qjm"


def _trait(setting: Field[Any], annotation: Any) -> TraitType[Any, Any]:
    """The config trait of one `Settings` field: same name, type, default and help."""
    assert setting.default is not MISSING, f"Settings.{setting.name} needs a default"
    help_text = f"{setting.metadata['help']} Env: {env_name(setting.name)}."
    if annotation == tuple[str, ...]:
        return List(Unicode(), default_value=list(setting.default), config=True, help=help_text)
    return _TRAIT_TYPES[annotation](setting.default, config=True, help=help_text)


def _env_default(name: str, trait: TraitType[Any, Any]) -> Callable[[HasTraits], Any]:
    """A dynamic default: `QJM_<NAME>` if set, else the declared default. traitlets asks
    for it only when neither a config file nor the command line set the trait."""

    def default(self: HasTraits) -> Any:
        raw = os.environ.get(env_name(name))
        if raw is None:
            return trait.default()
        if isinstance(trait, List):
            return [v.strip() for v in raw.split(",") if v.strip()]
        return trait.from_string(raw)

    return default


def _settings_traits() -> type[HasTraits]:
    """A traits mixin with one trait (and one env-reading default) per `Settings` field."""
    hints = typing.get_type_hints(Settings)
    namespace: dict[str, Any] = {"__module__": __name__, "__doc__": "The traits of `Settings` (generated)."}
    for setting in fields(Settings):
        trait = _trait(setting, hints[setting.name])
        namespace[setting.name] = trait
        namespace[f"_{setting.name}_default"] = _env_default(setting.name, trait)
    return type(HasTraits)("SettingsTraits", (HasTraits,), namespace)  # type: ignore[no-any-return]


SettingsTraits = _settings_traits()


class StandaloneServer(ServerApp):
    """The Jupyter server under `jupyter qjm`. It serves the qjm API to a group, not
    notebooks, and its start-up banner says so (jupyter_server's speaks of "serving
    notebooks from local directory")."""

    def running_server_info(self, kernel_count: bool = True) -> str:
        return f"qjm-jupyter {__version__} (Jupyter Server {ServerApp.version}) is running at:\n{self.display_url}"


class QJMServerApp(SettingsTraits, ExtensionApp):  # type: ignore[misc,valid-type]
    name = "qjm"
    description = (
        "The qjm-jupyter group server: IBM Quantum job notifications (accounts, jobs API, watcher and mailer). "
        "As root (a container), add --allow-root."
    )
    extension_url = "/qjm/api/status"
    serverapp_config = {"open_browser": False}
    # Both only shape the standalone `jupyter qjm` (ExtensionApp.launch_instance); inside
    # `jupyter lab` the extension is loaded into Lab's own server.
    load_other_extensions = False  # the group server runs this extension alone, not Lab
    serverapp_class = StandaloneServer
    # By import path: the commands import this module, not the other way round.
    subcommands = {
        "rotate-keys": ("qjm_jupyter_server.cli.RotateKeysApp", "Re-encrypt the stored IBM API keys with the newest of token_keys."),
        "create-admin": ("qjm_jupyter_server.cli.CreateAdminApp", "Make an existing account an administrator: create-admin EMAIL."),
        "watch": ("qjm_jupyter_server.cli.WatchApp", "Run the watcher and mailer alone on the server's database (watcher = 'external')."),
    }

    store_class = Type(default_value=None, allow_none=True, config=True, help="A Store implementation to use instead of the one db_url selects (tests, plugins).")

    services: Services | None = None  # None on a member server (remote mode), which keeps no store
    group: Any = None  # remote.GroupServer on a member server
    _openapi: dict[str, dict[str, Any]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._openapi = {}

    # ---------------------------------------------------------------------------------------------
    def settings_now(self) -> Settings:
        """The configuration as it stands (config files, command line, QJM_* variables);
        an unset identity source becomes this kind of server's default (identity/mode.py)."""
        from .identity import default_identity_source

        settings = Settings.from_object(self)
        if not settings.identity_source:
            source = default_identity_source(group_server=self.standalone)
            settings = dataclasses.replace(settings, identity_source=source)
        if not settings.watcher:
            # A group server's watcher work grows with every member's pending jobs: in its own
            # process it never delays a request (watcher/process.py). One person's Lab keeps it.
            settings = dataclasses.replace(settings, watcher="process" if self.standalone else "inline")
        return settings

    @property
    def standalone(self) -> bool:
        """`jupyter qjm` (its own server class), not the extension inside someone's Jupyter server."""
        return isinstance(getattr(self, "serverapp", None), StandaloneServer)

    @property
    def mode(self) -> str:
        """personal (own Lab), group (`jupyter qjm`, which turns other extensions off) or member (remote_url)."""
        if self.remote_url:
            return "member"
        # Not load_other_extensions: that class attribute only shapes `jupyter qjm`'s own
        # launch and is False inside `jupyter lab` too.
        return "group" if self.standalone else "personal"

    def status(self) -> ServerStatus:
        """What `GET status` answers, in every mode."""
        if self.services is None:
            return ServerStatus(store="remote", watcher_running=False, mail_enabled=False, mode="member",
                                remote_url=self.group.url, watcher=None)
        return replace(self.services.status(), mode=self.mode)

    def links_base(self) -> str:
        """Where links in emails point: public_url, else the server's own URL once it is
        bound. Asked for each email, so the URL the server ends up on is used."""
        if self.public_url:
            return str(self.public_url)
        serverapp = getattr(self, "serverapp", None)
        if serverapp is not None:
            try:
                return str(serverapp.connection_url)
            except Exception:  # noqa: BLE001 - not yet bound
                pass
        return "http://localhost:8888/"

    def build_services(self) -> Services:
        """Settings -> store, key ring -> Services. Shared by the extension and the CLI."""
        settings = self.settings_now()
        settings = replace(settings, data_dir=str(settings.data_dir or default_data_dir()), db_url=self.db_url_now(settings))
        return open_services(settings, store_class=self.store_class, public_url=self.links_base, has_lab=self.has_lab, log=self.log)

    def has_lab(self) -> bool:
        """Whether JupyterLab is loaded in this server (`jupyter lab`, a Hub's single-user
        server), so emailed links may open the Lab panel; `jupyter qjm` has no Lab and
        links to the qjm web UI instead. Asked lazily: extensions load after this one."""
        manager = getattr(getattr(self, "serverapp", None), "extension_manager", None)
        return manager is not None and "jupyterlab" in getattr(manager, "extension_apps", {})

    @staticmethod
    def db_url_now(settings: Settings) -> str:
        return settings.db_url or f"sqlite:///{Path(settings.data_dir or default_data_dir()) / 'qjm.sqlite3'}"

    # -- ExtensionApp hooks ----------------------------------------------------------------------
    def initialize_settings(self) -> None:
        if self.remote_url:
            from .remote import GroupServer

            self.group = GroupServer(self.remote_url, local_base=self.serverapp.base_url,
                                     connect_timeout=min(5.0, self.remote_timeout), read_timeout=self.remote_timeout)
            self.log.info("qjm: member of the group server %s (no local store, watcher or mailer)", self.group.url)
            return
        self.services = self.build_services()
        self.log.info("qjm: storage %s", _redact_url(self.db_url_now(self.services.settings)))

    def initialize_handlers(self) -> None:
        # A member forwards all of qjm/ (web UI files too: they match the group's pages).
        routes = MEMBER_HANDLERS if self.remote_url else [*HANDLERS, *STATIC_HANDLERS]
        self.handlers.extend((handler.route, handler) for handler in routes)

    def openapi(self, base_url: str) -> dict[str, Any]:
        """The OpenAPI document of the routes served, one per base_url (they never change)."""
        if base_url not in self._openapi:
            self._openapi[base_url] = build_openapi(HANDLERS, version=__version__, base_url=base_url)
        return self._openapi[base_url]

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.services is None:
            return
        services = self.services
        place = services.settings.watcher
        if place == "process":
            from .watcher.process import WatcherProcess, WorkerSpec

            spec = WorkerSpec.of(services.settings, self.store_class, self.links_base(), self.has_lab(), serverapp.log.level or 20)
            services.watcher = WatcherProcess(spec, services.store)
        await services.start_background()
        where = {"inline": "in this process", "process": "in its own process", "external": "external (jupyter qjm watch)"}
        self.log.info("qjm: mailer started; watcher %s (poll every %ss)", where[place], services.settings.poll_interval)

    async def stop_extension(self) -> None:
        if self.group is not None:
            await self.group.aclose()
        services = getattr(self, "services", None)
        if services is not None:
            await services.close()

    def current_activity(self) -> bool:
        """Keep an idle-culled server alive while jobs are being watched."""
        services = getattr(self, "services", None)
        return bool(services and services.watcher.has_work())


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def exit_usage(message: str) -> NoReturn:
    """A command line `jupyter qjm` cannot run: one line on stderr, exit status 2."""
    print(f"jupyter qjm: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> Any:
    """`jupyter qjm [subcommand]`: the group server, or one of its maintenance commands."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-") and argv[0] not in QJMServerApp.subcommands:
        # jupyter_server would take it as a file to open; here it is a mistyped command.
        commands = ", ".join(QJMServerApp.subcommands)
        exit_usage(f"unknown command {argv[0]!r}; the commands are {commands} (none starts the server); see --help")
    from .identity.hub import hub_service_args
    from .identity.mode import runs_as_hub_service

    # Started by JupyterHub as a service: listen where the Hub says, sign users in with Hub OAuth.
    wants_hub = os.environ.get("QJM_IDENTITY_SOURCE", "hub") == "hub" and not any(
        a.startswith("--QJMServerApp.identity_source=") and not a.endswith("=hub") for a in argv
    )
    if wants_hub and runs_as_hub_service():
        argv = [*hub_service_args(), *argv]
    return QJMServerApp.launch_instance(argv)


def run_server(argv: list[str] | None = None, **config: Any) -> Any:
    """Start the standalone server from Python, as the older project's `run_server()` did.

    Keyword arguments set `QJMServerApp` traits (`run_server(db_url="mongodb://...")`);
    `port=`/`ip=` set the ServerApp's.
    """
    args = list(argv or [])
    for key, value in config.items():
        section = "ServerApp" if key in ("port", "ip", "allow_root", "base_url") else "QJMServerApp"
        args.append(f"--{section}.{key}={value}")
    return main(args)


if __name__ == "__main__":  # pragma: no cover
    main()
