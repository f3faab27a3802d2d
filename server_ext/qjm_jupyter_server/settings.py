"""A frozen snapshot of the extension's configuration, handed to services.

Services never read traitlets or the environment themselves: the app builds one
`Settings` at start (traits -> env fallbacks -> defaults) and tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qjm_jupyter.statuses import DEFAULT_NOTIFY_STATUS


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://localhost:8888/"
    jwt_lifetime: int = 3600  # seconds
    jwt_issuer: str = "qjm-jupyter"
    bcrypt_rounds: int = 12
    admin_emails: tuple[str, ...] = ()
    default_notify_status: tuple[str, ...] = DEFAULT_NOTIFY_STATUS
    require_verified_email: bool = True  # only verified addresses get job mail
    verify_token_ttl: int = 24 * 3600
    reset_token_ttl: int = 30 * 60
    login_fail_limit: int = 10  # failures per window per account / per client address
    login_fail_window: int = 15 * 60
    max_jobs_per_request: int = 1000
    retention_days: int = 0  # 0: keep finished jobs for ever
    outbox_retention_days: int = 30  # sent emails leave the delivery log after this; 0 keeps them
    # watcher
    poll_interval: float = 60.0
    ibm_iam_url: str = "https://iam.cloud.ibm.com"
    ibm_api_url: str = ""  # "" -> derived from each instance CRN's region
    ibm_api_version: str = "2026-04-15"
    ibm_connect_timeout: float = 5.0
    ibm_read_timeout: float = 30.0
    ibm_concurrency: int = 8
    lease_seconds: float = 120.0
    # mail
    smtp_host: str = ""
    smtp_port: int = 0  # 0 -> 465 for tls, 587 for starttls, 25 for none
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = "starttls"  # tls | starttls | none
    smtp_timeout: float = 10.0
    smtp_ca_file: str = ""  # extra CA bundle (private relay); system store otherwise
    mail_from: str = "qjm-jupyter <qjm@localhost>"
    mail_rate_per_minute: int = 120
    mail_concurrency: int = 2
    mail_lease_seconds: float = 120.0  # > the longest send of a burst; bounds resend delay after a crash
    templates_dir: str = ""  # operator overrides, looked up before the built-in templates
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def effective_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"tls": 465, "starttls": 587}.get(self.smtp_security, 25)
