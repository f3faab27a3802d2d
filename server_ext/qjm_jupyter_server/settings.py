"""Every setting of the extension, declared once: name, type, default, help.

How to add a setting
--------------------
Add ONE field to `Settings` below::

    my_limit: int = setting(10, "What it limits, and why an operator would change it.")

That is all. `QJMServerApp` (app.py) turns every field into a config trait, so the
operator sets it as `c.QJMServerApp.my_limit = 20` (config file), `--QJMServerApp.my_limit=20`
(command line) or `QJM_MY_LIMIT=20` (environment, used only when config and command line
leave it unset); `--help-all` shows the help and the variable. Services read
`self.settings.my_limit`; tests build `Settings(my_limit=3)`. Supported types: str, int,
float, bool and tuple[str, ...] (a list trait; comma-separated in the environment).
Do not add traits to app.py or copy values field by field: there is no second list.

Services never read traitlets or the environment themselves: the app builds one frozen
`Settings` from its traits when it starts, and `__post_init__` normalizes values (URL
slashes, email case, status aliases) so a test's `Settings(...)` gets the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from qjm_jupyter.statuses import DEFAULT_NOTIFY_STATUS, normalize_statuses

from .addresses import normalize_email

ENV_PREFIX = "QJM_"
SMTP_SECURITY = ("tls", "starttls", "none")
IDENTITY_SOURCES = ("", "jupyter", "accounts", "hub")  # "": the app picks (identity/mode.py)
WATCHER_PLACES = ("", "inline", "process", "external")  # "": the app picks (QJMServerApp.settings_now)


def setting(default: Any, help: str) -> Any:  # noqa: A002 - the traitlets word
    """A field that is also a documented `c.QJMServerApp.<name>` / `QJM_<NAME>` setting."""
    return field(default=default, metadata={"help": help})


def env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


@dataclass(frozen=True)
class Settings:
    # -- storage and secrets (read when the app builds its store and key ring) ----------------
    db_url: str = setting("", "sqlite:///path (default: qjm.sqlite3 in data_dir), mongodb:// or mongodb+srv://")
    data_dir: str = setting("", "Where the SQLite file and generated secrets live (default: <jupyter data dir>/qjm).")
    jwt_secret: str = setting("", "HS256 signing secret, at least 32 bytes; generated and kept in a 0600 file when empty.")
    token_keys: str = setting(
        "", "Fernet keys for IBM API keys at rest, ';'-separated, the first encrypts; generated when empty."
    )
    # -- accounts --------------------------------------------------------------------------------
    public_url: str = setting(
        "", "Base URL users reach this server at, for links in emails (default: the server's own URL)."
    )
    jwt_lifetime: int = setting(3600, "Lifetime of an access token, in seconds.")
    jwt_issuer: str = setting("qjm-jupyter", "The `iss` claim of access tokens (servers sharing a database must agree).")
    bcrypt_rounds: int = setting(12, "bcrypt cost factor for password hashes.")
    admin_emails: tuple[str, ...] = setting(
        (), "Accounts with these emails are admins once their address is verified (`jupyter qjm create-admin` promotes at once)."
    )
    default_notify_status: tuple[str, ...] = setting(
        DEFAULT_NOTIFY_STATUS, "Statuses notified when a job is registered without notify_status."
    )
    require_verified_email: bool = setting(True, "Send job notifications only to verified addresses.")
    verify_token_ttl: int = setting(24 * 3600, "Seconds an emailed verification link stays valid.")
    reset_token_ttl: int = setting(30 * 60, "Seconds an emailed password-reset link stays valid.")
    login_fail_limit: int = setting(10, "Failed logins (and account emails) allowed per window, per account and per client address.")
    login_fail_window: int = setting(15 * 60, "The window of login_fail_limit, in seconds.")
    max_jobs_per_request: int = setting(1000, "Most jobs one POST jobs may register.")
    max_instances_per_user: int = setting(
        20, "Distinct IBM Quantum instances one user may watch jobs on (each is a poll unit, IBM calls and maybe a mail)."
    )
    login_queue: int = setting(
        4,
        "Password checks allowed to wait for a bcrypt worker (beyond one per worker); past it logins get 503 with "
        "Retry-After at once, so no login waits behind more than this many strangers' checks.",
    )
    login_per_client: int = setting(
        2, "Logins of one client address in flight at once; more get 429 with Retry-After at once."
    )
    retention_days: int = setting(0, "Delete finished jobs this many days after they finished (0 keeps them).")
    outbox_retention_days: int = setting(
        30,
        "Delete sent emails from the outbox (the delivery log) this many days after sending (0 keeps them). "
        "Their bodies are already cleared on send; pending and failed emails are never deleted.",
    )
    # -- watcher ---------------------------------------------------------------------------------
    poll_interval: float = setting(60.0, "Seconds between two polls of a user's jobs on one instance.")
    lease_seconds: float = setting(120.0, "How long a server process owns a unit of polling work.")
    watcher: str = setting(
        "",
        "Where the watcher (IBM polling, with a mailer beside it) runs: 'process' (a child process this server "
        "starts, restarts if it dies and stops with it; the default for jupyter qjm, so requests never wait "
        "behind a poll cycle), 'inline' (in this server's event loop; the default inside jupyter lab) or "
        "'external' (none here: run `jupyter qjm watch` on the same database yourself).",
    )
    ibm_iam_url: str = setting("https://iam.cloud.ibm.com", "IBM Cloud IAM endpoint for API-key exchange.")
    ibm_api_url: str = setting(
        "", "IBM Quantum Platform API base URL (default: derived from each instance CRN's region)."
    )
    ibm_api_version: str = setting("2026-04-15", "The IBM-API-Version header sent to IBM Quantum Platform.")
    ibm_connect_timeout: float = setting(5.0, "Seconds to connect to IBM Cloud.")
    ibm_read_timeout: float = setting(30.0, "Seconds to wait for an answer from IBM Cloud.")
    ibm_concurrency: int = setting(
        64,
        "Most requests in flight to IBM Cloud from this process, and the connections kept open to it. "
        "The watcher sizes its concurrency to the work below this cap: polls due per interval times "
        "the measured IBM latency (at least 8, or this cap if lower).",
    )
    # -- mail ------------------------------------------------------------------------------------
    smtp_host: str = setting("", "SMTP relay host; empty disables email (notifications stay in the outbox and the Lab panel).")
    smtp_port: int = setting(0, "SMTP port (0: 465 for tls, 587 for starttls, 25 for none).")
    smtp_username: str = setting("", "SMTP login name.")
    smtp_password: str = setting("", "SMTP password.")
    smtp_security: str = setting("starttls", "tls (implicit, port 465) | starttls (required, 587) | none (local relays only).")
    smtp_timeout: float = setting(10.0, "Seconds for each SMTP connect, command and answer.")
    smtp_ca_file: str = setting("", "Extra CA bundle to verify the SMTP server's certificate (system store otherwise).")
    mail_from: str = setting("qjm-jupyter <qjm@localhost>", "From: address of notification emails.")
    mail_rate_per_minute: int = setting(120, "At most this many emails a minute.")
    mail_concurrency: int = setting(2, "Emails sent at once by this process.")
    mail_lease_seconds: float = setting(
        120.0,
        "How long a server process owns an email it is sending; after a crash, another resends it after this "
        "(keep it above the longest send of a burst).",
    )
    templates_dir: str = setting("", "Directory with email templates that override the built-in ones.")
    # -- channels (Apprise URLs) ----------------------------------------------------------------
    channel_schemes: tuple[str, ...] = setting(
        (),
        "Apprise schemes users may add as channels (e.g. ntfys, slack, discord, jsons); empty allows any "
        "notification scheme except those acting on the server's own machine.",
    )
    channel_allowed_hosts: tuple[str, ...] = setting(
        (),
        "Channel hosts (names or IPs) exempt from the refusal of loopback, private and link-local addresses. "
        "Empty by default: channels reach only public hosts.",
    )
    channel_timeout: float = setting(10.0, "Seconds per channel delivery attempt.")
    channel_concurrency: int = setting(4, "Channel deliveries in flight at once in this process.")
    channels_per_user: int = setting(10, "Most channels one account may add.")
    # -- remote mode (a member's Jupyter server) ---------------------------------------------------
    remote_url: str = setting(
        "",
        "URL of a group server (`jupyter qjm`). When set, this server keeps no store and runs no watcher or "
        "mailer: it forwards {base_url}qjm/ (API and web UI) to the group server, and its panel and kernels "
        "use the group's accounts and jobs.",
    )
    remote_timeout: float = setting(
        30.0, "Seconds the group server may take to answer a forwarded request (connecting: at most 5 s)."
    )
    # -- identity (identity/) ----------------------------------------------------------------------
    identity_source: str = setting(
        "",
        "Who a request is: 'jupyter' (the user Jupyter's own auth accepted; the default inside jupyter lab), "
        "'accounts' (qjm accounts with JWTs; the default for jupyter qjm) or 'hub' (JupyterHub OAuth; the default "
        "when jupyter qjm runs as a JupyterHub service). qjm JWTs are accepted in every mode.",
    )
    hub_service: str = setting(
        "",
        "In a member's single-user server under JupyterHub: the name of the Hub service running jupyter qjm for "
        "the group. The Lab panel then talks to that service through the Hub's proxy, with the token Lab holds.",
    )

    def __post_init__(self) -> None:
        security = self.smtp_security.lower()
        if security not in SMTP_SECURITY:
            raise ValueError(f"smtp_security must be tls, starttls or none (got {self.smtp_security!r})")
        source = self.identity_source.strip().lower()
        if source not in IDENTITY_SOURCES:
            raise ValueError(f"identity_source must be jupyter, accounts or hub (got {self.identity_source!r})")
        watcher = self.watcher.strip().lower()
        if watcher not in WATCHER_PLACES:
            raise ValueError(f"watcher must be process, inline or external (got {self.watcher!r})")
        normalized = {
            "watcher": watcher,
            "smtp_security": security,
            "identity_source": source,
            "public_url": self.public_url.rstrip("/") + "/" if self.public_url else "",
            "ibm_iam_url": self.ibm_iam_url.rstrip("/"),
            "ibm_api_url": self.ibm_api_url.rstrip("/"),
            "admin_emails": tuple(normalize_email(e) for e in self.admin_emails if e.strip()),
            "default_notify_status": tuple(normalize_statuses(self.default_notify_status)),
            "channel_schemes": tuple(x.strip().lower() for x in self.channel_schemes if x.strip()),
            "channel_allowed_hosts": tuple(h.strip() for h in self.channel_allowed_hosts if h.strip()),
        }
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_object(cls, source: object) -> Settings:
        """Read every setting from same-named attributes (the app's traits)."""
        return cls(**{f.name: getattr(source, f.name) for f in fields(cls)})

    @property
    def effective_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"tls": 465, "starttls": 587}.get(self.smtp_security, 25)

    @property
    def mail_enabled(self) -> bool:
        """Email goes out only with a relay; without one, notifications stay in the outbox."""
        return bool(self.smtp_host)
