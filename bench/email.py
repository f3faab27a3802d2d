"""Email throughput: our sender (connections reused per burst) vs one connection per message.

Both legs use the same code, the same SQLite outbox and the same local aiosmtpd relay,
in the same run; only `per_connection` differs (100 vs 1). By default the relay speaks
STARTTLS with AUTH (a trustme CA, verified), as production relays do; `--smtp-security
none` measures the bare protocol, where the local relay's own per-message cost dominates. Figures are messages per
second through the whole path (claim, render headers, SMTP, mark sent), and the ratio.

    python -m bench.email [--emails 1000] [--mail-concurrency 2] [--smtp-security starttls|tls|none]
"""

from __future__ import annotations

import sys

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT  # noqa: F401 - puts the repo root on sys.path for `tests.fixtures`


async def _leg(tmp: Path, name: str, n: int, concurrency: int, per_connection: int, security: str) -> dict[str, Any]:
    from qjm_jupyter_server.clock import SystemClock
    from qjm_jupyter_server.domain import User
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
    store = SQLiteStore(str(tmp / f"{name}.sqlite3"))
    await store.open()
    try:
        clock = SystemClock()
        settings = Settings(
            public_url="http://bench.test/", mail_rate_per_minute=10_000_000, mail_concurrency=concurrency,
            smtp_timeout=10.0, **relay.settings(),
        )
        factory = MessageFactory(settings)
        now = clock.now_ms()
        rows = []
        for i in range(n):
            u = User(id=f"u{i}", email=f"user{i}@example.org", password_hash="x", created_at=now, updated_at=now, is_verified=True)
            rows.append(factory.test_message(u, now + i))
        await store.enqueue(rows)
        sender = Sender(store, settings, clock, f"bench-{name}")
        sender.per_connection = per_connection
        t0 = time.perf_counter()
        while await sender.drain_once():
            pass
        elapsed = time.perf_counter() - t0
        sent = await store.count_outbox("sent")
        received = len(relay.messages)
        return {
            "messages": n,
            "sent": sent,
            "received": received,
            "seconds": round(elapsed, 3),
            "msgs_per_s": round(received / elapsed, 1) if elapsed else None,
            "smtp_sessions": sender.sessions_opened,
        }
    finally:
        await store.close()
        relay.stop()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qjm-bench-email-") as tmp:
        d = Path(tmp)
        reused = await _leg(d, "reused", args.emails, args.mail_concurrency, 100, args.smtp_security)
        single = await _leg(d, "single", args.emails, args.mail_concurrency, 1, args.smtp_security)
    ratio = reused["msgs_per_s"] / single["msgs_per_s"] if single["msgs_per_s"] else None
    return {
        "reused_connections": reused,
        "connection_per_message": single,
        "speedup": round(ratio, 2) if ratio else None,
        "mail_concurrency": args.mail_concurrency,
        "smtp_security": args.smtp_security,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd's own deprecation notices, once per session
        return asyncio.run(_bench(args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emails", type=int, default=1000, help="notifications per leg")
    parser.add_argument("--mail-concurrency", type=int, default=2, help="SMTP connections at once")
    parser.add_argument("--smtp-security", choices=("none", "starttls", "tls"), default="starttls",
                        help="relay mode; starttls (with AUTH) is what production relays look like")


if __name__ == "__main__":  # `python -m bench.email`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "email", *sys.argv[1:]]))
