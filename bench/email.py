"""Email throughput: our sender (connections reused per burst) vs one connection per message.

Every leg uses the same code, the same SQLite outbox and the same local aiosmtpd relay
(which advertises PIPELINING, as production relays do), in the same run:
- `connection_per_message`: `per_connection` 1, one reply at a time (the baseline);
- `reused_connections`: `per_connection` 100, one reply at a time (the sender before
  pipelining: four round trips per message);
- `pipelined`: `per_connection` 100 with RFC 2920 pipelining (about one round trip
  per message).
By default the relay speaks STARTTLS with AUTH (a trustme CA, verified), as production
relays do; `--smtp-security none` measures the bare protocol, where the local relay's
own per-message cost dominates. Figures are messages per second through the whole path
(claim, render headers, SMTP, mark sent), and the ratios.

    python -m bench.email [--emails 1000] [--mail-concurrency 2] [--smtp-security starttls|tls|none]
                          [--mail-rtt-ms 20] [--mail-link-emails 200] [--mail-rounds 1]

`--mail-rtt-ms` repeats the legs through `DelayProxy` (tests/fixtures/tcp_proxy.py), a
local TCP proxy adding that round trip: over a real link each SMTP command and TLS
handshake costs a round trip, on loopback next to nothing.
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
from tests.fixtures.tcp_proxy import DelayProxy


def _relay_process(conn: Any, tmp: str, security: str, rtt_s: float) -> None:
    """The relay (aiosmtpd) and the link (DelayProxy) in their own process, as they would
    be on other machines: in the sender's process they would take its CPU and its GIL,
    and every reply would wait for the sender's own work (and the other way round)."""
    import warnings

    warnings.simplefilter("ignore")  # aiosmtpd's own deprecation notices
    from tests.fixtures.smtp import SMTPTestServer

    async def serve() -> None:
        ca = None
        if security != "none":
            import trustme

            ca = trustme.CA()
        relay = SMTPTestServer(Path(tmp), mode=security, auth=security != "none", ca=ca)
        relay.start()
        proxy = DelayProxy(relay.host, relay.port, rtt_s) if rtt_s else None
        try:
            if proxy is not None:
                await proxy.start()
            conn.send(relay.settings(**({"smtp_port": proxy.port} if proxy is not None else {})))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
            conn.send({"received": len(relay.handler.raw), "client_writes": proxy.chunks_up if proxy is not None else None})
        finally:
            if proxy is not None:
                await proxy.stop()
            relay.stop()

    asyncio.run(serve())


async def _leg(tmp: Path, name: str, n: int, concurrency: int, per_connection: int, security: str,
               rtt_s: float = 0.0, pipelining: bool = False) -> dict[str, Any]:
    import multiprocessing

    from qjm_jupyter_server.clock import SystemClock
    from qjm_jupyter_server.domain import User
    from qjm_jupyter_server.notify.messages import MessageFactory
    from qjm_jupyter_server.notify.sender import Sender
    from qjm_jupyter_server.settings import Settings
    from qjm_jupyter_server.store.sqlite import SQLiteStore

    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    relay = ctx.Process(target=_relay_process, args=(child_conn, str(tmp), security, rtt_s), daemon=True)
    relay.start()
    store = SQLiteStore(str(tmp / f"{name}.sqlite3"))
    await store.open()
    try:
        if not await asyncio.to_thread(conn.poll, 60):
            raise RuntimeError("the relay process did not start")
        relay_settings: dict[str, Any] = conn.recv()
        clock = SystemClock()
        settings = Settings(
            public_url="http://bench.test/", mail_rate_per_minute=10_000_000, mail_concurrency=concurrency,
            smtp_timeout=10.0, **relay_settings,
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
        sender.pipelining = pipelining
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        while await sender.drain_once():
            pass
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        sent = await store.count_outbox("sent")
        conn.send("stop")
        if not await asyncio.to_thread(conn.poll, 60):
            raise RuntimeError("the relay process did not answer")
        relay_stats: dict[str, Any] = conn.recv()
        received = relay_stats["received"]
        return {
            "messages": n,
            "sent": sent,
            "received": received,
            "seconds": round(elapsed, 3),
            "msgs_per_s": round(received / elapsed, 1) if elapsed else None,
            "sender_cpu_ms_per_msg": round(cpu * 1000 / n, 2),
            "smtp_sessions": sender.sessions_opened,
            "client_writes": relay_stats["client_writes"],
        }
    finally:
        await store.close()
        await asyncio.to_thread(relay.join, 20)
        if relay.is_alive():
            relay.terminate()


def _ratio(leg: dict[str, Any], base: dict[str, Any]) -> float | None:
    return round(leg["msgs_per_s"] / base["msgs_per_s"], 2) if leg["msgs_per_s"] and base["msgs_per_s"] else None


async def _legs(d: Path, label: str, n: int, args: argparse.Namespace, rtt: float = 0.0) -> dict[str, Any]:
    """The three legs, in alternating rounds (`--mail-rounds`); each keeps its best round,
    so a burst of load from elsewhere on the machine does not decide a ratio."""
    c, sec = args.mail_concurrency, args.smtp_security
    legs = {
        "connection_per_message": dict(per_connection=1, pipelining=False),
        "reused_connections": dict(per_connection=100, pipelining=False),
        "pipelined": dict(per_connection=100, pipelining=True),
    }
    best: dict[str, dict[str, Any]] = {}
    rounds: dict[str, list[float | None]] = {name: [] for name in legs}
    for r in range(max(1, args.mail_rounds)):
        for name, how in legs.items():
            got = await _leg(d, f"{label}{name}-{r}", n, c, how["per_connection"], sec, rtt, pipelining=how["pipelining"])
            rounds[name].append(got["msgs_per_s"])
            if name not in best or (got["msgs_per_s"] or 0) > (best[name]["msgs_per_s"] or 0):
                best[name] = got
    single, reused, piped = best["connection_per_message"], best["reused_connections"], best["pipelined"]
    for name, leg in best.items():
        leg["rounds_msgs_per_s"] = rounds[name]
    return {
        **best,
        "speedup": _ratio(reused, single),  # reused, one reply at a time, vs one connection per message
        "pipelined_speedup": _ratio(piped, single),
        "pipelined_vs_reused": _ratio(piped, reused),
    }


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qjm-bench-email-") as tmp:
        d = Path(tmp)
        result = await _legs(d, "", args.emails, args)
        link: dict[str, Any] = {}
        if args.mail_rtt_ms > 0:
            link = {"rtt_ms": args.mail_rtt_ms, **await _legs(d, "link-", args.mail_link_emails, args, args.mail_rtt_ms / 1000)}
    return {
        **result,
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
    parser.add_argument("--mail-rounds", type=int, default=1, help="alternating rounds of the legs; each keeps its best")


if __name__ == "__main__":  # `python -m bench.email`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "email", *sys.argv[1:]]))
