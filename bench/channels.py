"""One burst of job notifications through a webhook channel vs the same burst by email.

Both legs compose the same job-status notifications, queue them in the same kind of
SQLite outbox and drain them with the server's own senders in the same run: the email
leg with `Sender` over a local aiosmtpd relay (STARTTLS + AUTH by default, as production
relays; connections reused), the webhook leg with `ChannelSender` through Apprise's
json:// plugin to a local HTTP receiver (an HTTP request per delivery, no redirects, the
SSRF check before each send). Figures: deliveries per second through the whole path
(claim, decrypt/check or build, send, mark sent), and webhook/email.

    python -m bench --only channels [--channel-burst 300] [--smtp-security starttls|tls|none]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT  # noqa: F401 - puts the repo root on sys.path for `tests.fixtures`

T0 = 1_767_225_600_000


def _jobs(n: int) -> list[Any]:
    from qjm_jupyter_server.domain import Job, StatusEvent

    return [
        Job(id=f"j{i}", user_id="u_bench", ibm_job_id=f"d{i:06d}", registered_at=T0, updated_at=T0, backend="ibm_fez",
            instance="crn:v1:bluemix:public:quantum-computing:us-east:a/1:i::", status="DONE",
            history=[StatusEvent("QUEUED", T0), StatusEvent("RUNNING", T0 + 60_000), StatusEvent("DONE", T0 + 108_000)])
        for i in range(n)
    ]


def _user() -> Any:
    from qjm_jupyter_server.domain import User

    return User(id="u_bench", email="bench@example.org", password_hash="x", created_at=T0, updated_at=T0, is_verified=True)


async def _email_leg(tmp: Path, n: int, security: str) -> dict[str, Any]:
    from qjm_jupyter_server.clock import SystemClock
    from qjm_jupyter_server.notify.messages import MessageFactory
    from qjm_jupyter_server.notify.sender import Sender
    from qjm_jupyter_server.settings import Settings
    from qjm_jupyter_server.store.sqlite import SQLiteStore
    from tests.fixtures.smtp import SMTPTestServer

    ca = None
    if security != "none":
        import trustme

        ca = trustme.CA()
    relay = SMTPTestServer(tmp, mode=security, auth=security != "none", ca=ca)
    relay.start()
    store = SQLiteStore(str(tmp / "email.sqlite3"))
    await store.open()
    try:
        settings = Settings(public_url="http://bench.test/", mail_rate_per_minute=10_000_000, smtp_timeout=10.0, **relay.settings())
        factory, user = MessageFactory(settings), _user()
        await store.enqueue([factory.job_status(user, job, ["DONE"], T0 + i) for i, job in enumerate(_jobs(n))])
        sender = Sender(store, settings, SystemClock(), "bench-email")
        t0 = time.perf_counter()
        while await sender.drain_once():
            pass
        elapsed = time.perf_counter() - t0
        received = len(relay.messages)
        return {"deliveries": n, "received": received, "seconds": round(elapsed, 3),
                "per_s": round(received / elapsed, 1) if elapsed else None, "smtp_sessions": sender.sessions_opened}
    finally:
        await store.close()
        relay.stop()


async def _webhook_leg(tmp: Path, n: int) -> dict[str, Any]:
    from tests.fixtures.receiver import serving

    with serving() as receiver:
        return await _webhook_drain(tmp, n, receiver)


async def _webhook_drain(tmp: Path, n: int, receiver: Any) -> dict[str, Any]:
    from qjm_jupyter_server.clock import SystemClock
    from qjm_jupyter_server.domain import Channel
    from qjm_jupyter_server.notify.channel_sender import ChannelSender
    from qjm_jupyter_server.notify.messages import MessageFactory
    from qjm_jupyter_server.secrets import KeyRing
    from qjm_jupyter_server.settings import Settings
    from qjm_jupyter_server.store.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp / "webhook.sqlite3"))
    await store.open()
    try:
        settings = Settings(public_url="http://bench.test/", channel_allowed_hosts=("127.0.0.1",), channel_timeout=10.0)
        keyring = KeyRing.load_or_create(tmp / "keys", None, None)
        user = _user()
        await store.create_user(user)
        channel = Channel(id="c_bench", user_id=user.id, url_cipher=keyring.encrypt(user.id, f"json://127.0.0.1:{receiver.port}/hook"),
                          scheme="json", host="127.0.0.1", created_at=T0, updated_at=T0)
        await store.create_channel(channel)
        factory = MessageFactory(settings)
        await store.enqueue([factory.job_status_for_channel(user, job, ["DONE"], channel, T0 + i) for i, job in enumerate(_jobs(n))])
        sender = ChannelSender(store, keyring, settings, SystemClock(), "bench-webhook")
        t0 = time.perf_counter()
        while await sender.drain_once():
            pass
        elapsed = time.perf_counter() - t0
        received = len(receiver.bodies("/hook"))
        return {"deliveries": n, "received": received, "seconds": round(elapsed, 3),
                "per_s": round(received / elapsed, 1) if elapsed else None,
                "concurrency": settings.channel_concurrency}
    finally:
        await store.close()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qjm-bench-channels-") as tmp:
        d = Path(tmp)
        email = await _email_leg(d, args.channel_burst, args.smtp_security)
        webhook = await _webhook_leg(d, args.channel_burst)
    ratio = webhook["per_s"] / email["per_s"] if email["per_s"] and webhook["per_s"] else None
    return {"burst": args.channel_burst, "email": email, "webhook": webhook,
            "webhook_over_email": round(ratio, 2) if ratio else None, "smtp_security": args.smtp_security}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return asyncio.run(_bench(args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel-burst", type=int, default=300, help="notifications in the burst (each leg)")
    if not any(a.dest == "smtp_security" for a in parser._actions):
        parser.add_argument("--smtp-security", choices=("none", "starttls", "tls"), default="starttls",
                            help="relay mode of the email leg")


if __name__ == "__main__":  # `python -m bench.channels`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "channels", *sys.argv[1:]]))
