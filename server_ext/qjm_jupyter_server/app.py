"""QJMServerApp: the jupyter-server extension (and the standalone `jupyter qjm` server).

Configuration is traitlets (`c.QJMServerApp.<name>`); every trait falls back to an
environment variable `QJM_<NAME>` when it is not set in a config file or on the
command line, so a container or a group server can be configured either way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode, Type, default

from qjm_jupyter.statuses import DEFAULT_NOTIFY_STATUS, normalize_statuses

from .clock import SystemClock
from .secrets import KeyRing
from .settings import Settings

CLI_COMMANDS = ("rotate-keys", "create-admin")


def default_data_dir() -> Path:
    return Path(jupyter_data_dir()) / "qjm"


class QJMServerApp(ExtensionApp):
    name = "qjm"
    description = "IBM Quantum job notifications for Jupyter: accounts, jobs API, watcher and mailer."
    extension_url = "/qjm/api/status"
    load_other_extensions = True  # inside `jupyter lab`; `main()` (jupyter qjm) turns it off
    serverapp_config = {"open_browser": False}

    # -- storage and secrets ------------------------------------------------------------------
    db_url = Unicode("", config=True, help="sqlite:///path (default: qjm.sqlite3 in the Jupyter data dir), mongodb:// or mongodb+srv://")
    data_dir = Unicode("", config=True, help="Where the SQLite file and generated secrets live (default: <jupyter data dir>/qjm).")
    jwt_secret = Unicode("", config=True, help="HS256 signing secret, at least 32 bytes; generated and kept in a 0600 file when empty.")
    token_keys = Unicode("", config=True, help="Fernet keys for IBM API keys at rest, ';'-separated, the first encrypts; generated when empty.")
    jwt_lifetime = Int(3600, config=True, help="Lifetime of an access token, in seconds.")
    bcrypt_rounds = Int(12, config=True, help="bcrypt cost factor for password hashes.")
    retention_days = Int(0, config=True, help="Delete finished jobs this many days after they finished (0 keeps them).")
    outbox_retention_days = Int(
        30, config=True,
        help="Delete sent emails from the outbox (the delivery log) this many days after sending (0 keeps them). "
        "Their bodies are already cleared on send; pending and failed emails are never deleted.",
    )
    # -- mail -----------------------------------------------------------------------------------
    smtp_host = Unicode("", config=True, help="SMTP relay host; empty disables email (notifications stay in the outbox and the Lab panel).")
    smtp_port = Int(0, config=True, help="SMTP port (0: 465 for tls, 587 for starttls, 25 for none).")
    smtp_username = Unicode("", config=True, help="SMTP login name.")
    smtp_password = Unicode("", config=True, help="SMTP password.")
    smtp_security = Unicode("starttls", config=True, help="tls (implicit, port 465) | starttls (required, 587) | none (local relays only).")
    smtp_ca_file = Unicode("", config=True, help="Extra CA bundle to verify the SMTP server's certificate.")
    mail_from = Unicode("qjm-jupyter <qjm@localhost>", config=True, help="From: address of notification emails.")
    mail_rate_per_minute = Int(120, config=True, help="At most this many emails a minute.")
    mail_lease_seconds = Float(120.0, config=True, help="How long a server process owns an email it is sending; after a crash, another resends it after this.")
    templates_dir = Unicode("", config=True, help="Directory with email templates that override the built-in ones.")
    public_url = Unicode("", config=True, help="Base URL users reach this server at, for links in emails (default: the server's own URL).")
    require_verified_email = Bool(True, config=True, help="Send job notifications only to verified addresses.")
    # -- watcher --------------------------------------------------------------------------------
    poll_interval = Float(60.0, config=True, help="Seconds between two polls of a user's jobs on one instance.")
    lease_seconds = Float(120.0, config=True, help="How long a server process owns a unit of polling work.")
    ibm_iam_url = Unicode("https://iam.cloud.ibm.com", config=True, help="IBM Cloud IAM endpoint for API-key exchange.")
    ibm_api_url = Unicode("", config=True, help="IBM Quantum Platform API base URL (default: derived from each instance CRN's region).")
    # -- accounts and jobs --------------------------------------------------------------------
    admin_emails = List(Unicode(), default_value=[], config=True, help="Accounts with these emails are admins.")
    default_notify_status = List(Unicode(), default_value=list(DEFAULT_NOTIFY_STATUS), config=True, help="Statuses notified when a job is registered without notify_status.")

    store_class = Type(default_value=None, allow_none=True, config=True, help="A Store implementation to use instead of the one db_url selects (tests, plugins).")

    @default("data_dir")
    def _data_dir_default(self) -> str:
        return str(default_data_dir())

    # ---------------------------------------------------------------------------------------------
    def _apply_env_fallbacks(self) -> None:
        """QJM_<NAME> fills every trait that config files and the command line left unset."""
        configured = {
            name for cls in type(self).__mro__ if cls.__name__ in self.config for name in self.config[cls.__name__]
        }
        for name, trait in self.traits(config=True).items():
            env = os.environ.get(f"QJM_{name.upper()}")
            if env is None or name in configured or name == "store_class":
                continue
            if isinstance(trait, List):
                setattr(self, name, [v.strip() for v in env.split(",") if v.strip()])
            else:
                setattr(self, name, trait.from_string(env))

    def build_settings(self) -> Settings:
        public_url = self.public_url
        if not public_url and getattr(self, "serverapp", None) is not None:
            try:
                public_url = self.serverapp.connection_url
            except Exception:  # noqa: BLE001 - not yet bound
                public_url = ""
        return Settings(
            public_url=(public_url or "http://localhost:8888/").rstrip("/") + "/",
            jwt_lifetime=self.jwt_lifetime,
            bcrypt_rounds=self.bcrypt_rounds,
            admin_emails=tuple(e.strip().lower() for e in self.admin_emails),
            default_notify_status=tuple(normalize_statuses(self.default_notify_status)),
            require_verified_email=self.require_verified_email,
            retention_days=self.retention_days,
            outbox_retention_days=self.outbox_retention_days,
            poll_interval=self.poll_interval,
            lease_seconds=self.lease_seconds,
            ibm_iam_url=self.ibm_iam_url.rstrip("/"),
            ibm_api_url=self.ibm_api_url.rstrip("/"),
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_username=self.smtp_username,
            smtp_password=self.smtp_password,
            smtp_security=self.smtp_security.lower(),
            smtp_ca_file=self.smtp_ca_file,
            mail_from=self.mail_from,
            mail_rate_per_minute=self.mail_rate_per_minute,
            mail_lease_seconds=self.mail_lease_seconds,
            templates_dir=self.templates_dir,
        )

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir) / 'qjm.sqlite3'}"

    def build_services(self) -> Any:
        """Settings -> store, key ring -> Services. Shared by the extension and the CLI."""
        from .services import Services
        from .store import open_store

        self._apply_env_fallbacks()
        if self.smtp_security.lower() not in ("tls", "starttls", "none"):
            raise ValueError(f"QJMServerApp.smtp_security must be tls, starttls or none (got {self.smtp_security!r})")
        settings = self.build_settings()
        data_dir = Path(self.data_dir)
        keyring = KeyRing.load_or_create(data_dir, self.jwt_secret or None, self.token_keys or None, log=self.log)
        store = self.store_class(self.resolved_db_url()) if self.store_class else open_store(self.resolved_db_url())
        return Services(settings=settings, store=store, keyring=keyring, clock=SystemClock())

    # -- ExtensionApp hooks ----------------------------------------------------------------------
    def initialize_settings(self) -> None:
        self.services = self.build_services()
        self.log.info("qjm: storage %s", _redact_url(self.resolved_db_url()))

    def initialize_handlers(self) -> None:
        from .handlers import HANDLERS

        for handler in HANDLERS:
            self.handlers.append((handler.route, handler))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # The server's URL is known now; links in emails default to it.
        if not self.public_url:
            self.services.settings = self.build_settings()
            self.services.refresh_settings()
        await self.services.start_background()
        self.log.info("qjm: watcher and mailer started (poll every %ss)", self.poll_interval)

    async def stop_extension(self) -> None:
        services = getattr(self, "services", None)
        if services is not None:
            await services.close()

    def current_activity(self) -> bool:
        """Keep an idle-culled server alive while jobs are being watched."""
        services = getattr(self, "services", None)
        return bool(services and services.poller.has_work())


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main(argv: list[str] | None = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLI_COMMANDS:
        from .cli import main as cli_main

        return cli_main(argv)
    # `jupyter qjm` is the group server: only this extension, not Lab or other extensions.
    QJMServerApp.load_other_extensions = False
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
