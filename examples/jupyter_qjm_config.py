"""A group qjm server on MongoDB: `jupyter qjm --config examples/jupyter_qjm_config.py`.

Every value falls back to an environment variable so one file serves every deployment
(container, systemd unit, test). Secrets (JWT secret, Fernet keys, SMTP password) come
from the environment only: never commit them. Several server processes can share the
same database; they split the polling work with leases.
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - injected by traitlets

env = os.environ.get

c.QJMServerApp.db_url = env("QJM_DB_URL", "mongodb://127.0.0.1:27017/qjm")
c.QJMServerApp.public_url = env("QJM_PUBLIC_URL", "http://127.0.0.1:8888/")
c.QJMServerApp.admin_emails = [e for e in env("QJM_ADMIN_EMAILS", "").split(",") if e]
c.QJMServerApp.poll_interval = float(env("QJM_POLL_INTERVAL", "60"))

# Mail: a relay that needs STARTTLS and a login is the usual case.
c.QJMServerApp.smtp_host = env("QJM_SMTP_HOST", "")
c.QJMServerApp.smtp_port = int(env("QJM_SMTP_PORT", "0"))
c.QJMServerApp.smtp_security = env("QJM_SMTP_SECURITY", "starttls")
c.QJMServerApp.smtp_username = env("QJM_SMTP_USERNAME", "")
c.QJMServerApp.mail_from = env("QJM_MAIL_FROM", "qjm-jupyter <qjm@localhost>")

# Members reach the server from their own machines.
c.ServerApp.ip = env("QJM_BIND", "0.0.0.0")
c.ServerApp.port = int(env("QJM_PORT", "8888"))
