"""Email throughput: our sender (connections reused per burst) vs one connection per message.

Both legs use the same code, the same SQLite outbox and the same local aiosmtpd relay,
in the same run; only `per_connection` differs (100 vs 1). By default the relay speaks
STARTTLS with AUTH (a trustme CA, verified), as production relays do; `--smtp-security
none` measures the bare protocol, where the local relay's own per-message cost dominates. Figures are messages per
second through the whole path (claim, render headers, SMTP, mark sent), and the ratio.

    python -m bench.email [--emails 1000] [--mail-concurrency 2] [--smtp-security starttls|tls|none]
                          [--mail-rtt-ms 20] [--mail-link-emails 200]

`--mail-rtt-ms` repeats both legs through `DelayProxy`, a local TCP proxy adding that
round trip: over a real link each SMTP command and TLS handshake costs a round trip.
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


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that delivers every chunk `one_way` seconds after it was
    read, in each direction: a link with a round trip of 2 x one_way and no bandwidth
    limit. On loopback a TLS handshake or an SMTP command costs next to nothing, so
    connection reuse looks cheap; over the internet each round trip costs tens of ms."""

    def __init__(self, target_host: str, target_port: int, rtt_s: float) -> None:
        self.target = (target_host, target_port)
        self.one_way = rtt_s / 2
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.one_way)  # the SYN's trip
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.sleep(self.one_way)  # the SYN-ACK's trip back
        for src, dst in ((reader, up_w), (up_r, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Chunks keep their order; each is held until one_way after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    dst.close()
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await src.read(65536)
                queue.put_nowait((loop.time() + self.one_way, data))
                if not data:
                    break
            await sender
        except (ConnectionError, asyncio.CancelledError):
            sender.cancel()
            dst.close()


async def _leg(tmp: Path, name: str, n: int, concurrency: int, per_connection: int, security: str,
               rtt_s: float = 0.0) -> dict[str, Any]:
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
    proxy = DelayProxy(relay.host, relay.port, rtt_s) if rtt_s else None
    if proxy is not None:
        await proxy.start()
    store = SQLiteStore(str(tmp / f"{name}.sqlite3"))
    await store.open()
    try:
        clock = SystemClock()
        via = {"smtp_port": proxy.port} if proxy is not None else {}
        settings = Settings(
            public_url="http://bench.test/", mail_rate_per_minute=10_000_000, mail_concurrency=concurrency,
            smtp_timeout=10.0, **relay.settings(**via),
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
        if proxy is not None:
            await proxy.stop()
        relay.stop()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qjm-bench-email-") as tmp:
        d = Path(tmp)
        reused = await _leg(d, "reused", args.emails, args.mail_concurrency, 100, args.smtp_security)
        single = await _leg(d, "single", args.emails, args.mail_concurrency, 1, args.smtp_security)
        link: dict[str, Any] = {}
        if args.mail_rtt_ms > 0:
            rtt = args.mail_rtt_ms / 1000
            n = args.mail_link_emails
            link_reused = await _leg(d, "link-reused", n, args.mail_concurrency, 100, args.smtp_security, rtt)
            link_single = await _leg(d, "link-single", n, args.mail_concurrency, 1, args.smtp_security, rtt)
            link = {
                "rtt_ms": args.mail_rtt_ms,
                "reused_connections": link_reused,
                "connection_per_message": link_single,
                "speedup": round(link_reused["msgs_per_s"] / link_single["msgs_per_s"], 2) if link_single["msgs_per_s"] else None,
            }
    ratio = reused["msgs_per_s"] / single["msgs_per_s"] if single["msgs_per_s"] else None
    return {
        "reused_connections": reused,
        "connection_per_message": single,
        "speedup": round(ratio, 2) if ratio else None,
        "over_link": link,
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
    parser.add_argument("--mail-rtt-ms", type=float, default=20.0,
                        help="also measure both legs through a local proxy adding this round trip (0: skip)")
    parser.add_argument("--mail-link-emails", type=int, default=200, help="notifications per leg over the link")


if __name__ == "__main__":  # `python -m bench.email`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "email", *sys.argv[1:]]))
