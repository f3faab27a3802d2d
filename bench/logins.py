"""Login bursts: how long a legitimate login takes while 100 logins for unknown accounts
arrive at once, against the same login on a quiet server (the baseline, same run).

Two bursts: from ONE client address (127.0.0.2), and spread over 100 addresses
(127.0.1.x, what a throttle per address cannot stop). The legitimate user logs in from
127.0.0.1 one second after the burst starts, as in the attack that found the problem.
Also reports what the burst's requests were answered (401 / 429 / 503) and how long the
slowest burst request waited for its answer.

    python -m bench.logins [--bcrypt-rounds 12] [--login-burst 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from typing import Any

import httpx

from .common import qjm_server, summarize_ms

EMAIL, PASSWORD = "legit@example.org", "a legitimate password"


def _client(base: str, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, timeout=300, transport=httpx.AsyncHTTPTransport(local_address=ip, limits=httpx.Limits(max_connections=200))
    )


async def _timed_login(client: httpx.AsyncClient) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = await client.post("auth/login", json={"email": EMAIL, "password": PASSWORD})
    return time.perf_counter() - t0, r.status_code


async def _burst(api: str, spread: bool, size: int) -> dict[str, Any]:
    addresses = [f"127.0.1.{1 + n % 250}" for n in range(size)] if spread else ["127.0.0.2"]
    clients = {ip: _client(api, ip) for ip in addresses}
    legit = _client(api, "127.0.0.1")
    try:
        async def one(n: int) -> tuple[float, int]:
            client = clients[addresses[n % len(addresses)]]
            t0 = time.perf_counter()
            r = await client.post("auth/login", json={"email": f"ghost{n}@example.org", "password": "guess"})
            return time.perf_counter() - t0, r.status_code

        burst = [asyncio.create_task(one(n)) for n in range(size)]
        await asyncio.sleep(1.0)
        latency, status = await _timed_login(legit)
        answers = await asyncio.gather(*burst)
        return {
            "legit_login_ms": round(latency * 1000, 1),
            "legit_status": status,
            "burst_statuses": dict(sorted(Counter(code for _, code in answers).items())),
            "burst_slowest_ms": round(max(t for t, _ in answers) * 1000, 1),
        }
    finally:
        await asyncio.gather(legit.aclose(), *(c.aclose() for c in clients.values()))


async def _bench(base: str, args: argparse.Namespace) -> dict[str, Any]:
    api = base + "qjm/api/"
    async with _client(api, "127.0.0.1") as client:
        await client.post("auth/register", json={"email": EMAIL, "password": PASSWORD})
        quiet = []
        for _ in range(5):
            latency, status = await _timed_login(client)
            assert status == 200, status
            quiet.append(latency)
    baseline = summarize_ms(quiet)["p50_ms"]
    results: dict[str, Any] = {"quiet_login_p50_ms": baseline}
    for name, spread in (("one_client", False), ("spread_clients", True)):
        got = await _burst(api, spread, args.login_burst)
        got["legit_vs_quiet"] = round(got["legit_login_ms"] / baseline, 1) if baseline else None
        results[name] = got
        await asyncio.sleep(2.0)  # let the pool drain between the two bursts
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    with qjm_server("qjm-bench-logins-", bcrypt_rounds=getattr(args, "bcrypt_rounds", 12)) as proc:
        return asyncio.run(_bench(proc.url, args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--login-burst", type=int, default=100, help="logins in the burst")
    # --bcrypt-rounds (default 12) is the api benchmark's option, shared


if __name__ == "__main__":  # `python -m bench.logins`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "logins", *sys.argv[1:]]))
