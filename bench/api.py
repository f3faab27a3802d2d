"""API benchmark: authenticated `GET jobs` (50 jobs) at 1, 16 and 64 concurrent clients,
beside a bare tornado JSON handler in the same server (the ceiling); and the p99 of job
lists while 20 bcrypt logins run, against the same p99 without logins.

    python -m bench.api [--requests 400] [--bcrypt-rounds 12]
"""

from __future__ import annotations

import sys

import argparse
import asyncio
import time
from typing import Any

import httpx

from .common import qjm_server, summarize_ms


async def _load(client: httpx.AsyncClient, url: str, headers: dict[str, str], total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            r = await client.get(url, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {**summarize_ms(latencies), "rps": round(len(latencies) / wall, 1), "errors": errors}


async def _bench(base: str, args: argparse.Namespace) -> dict[str, Any]:
    api = base + "qjm/api/"
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        email, password = "bench@example.org", "bench password 123"
        await client.post(api + "auth/register", json={"email": email, "password": password})
        r = await client.post(api + "auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        jobs = [{"job_id": f"bench-{i:04d}", "source": "local", "label": f"job {i}", "backend": "aer_simulator"} for i in range(50)]
        (await client.post(api + "jobs", json={"jobs": jobs}, headers=headers)).raise_for_status()
        listing = await client.get(api + "jobs?limit=50", headers=headers)
        listing.raise_for_status()
        await client.put(base + "bench/bare", content=listing.content)

        results: dict[str, Any] = {"list_bytes": len(listing.content)}
        for conc in (1, 16, 64):
            n = max(args.requests, conc * 4)
            await _load(client, api + "jobs?limit=50", headers, 20, 4)  # warm-up
            qjm = await _load(client, api + "jobs?limit=50", headers, n, conc)
            bare = await _load(client, base + "bench/bare", {}, n, conc)
            results[f"c{conc}"] = {"qjm": qjm, "bare": bare, "rps_ratio_qjm_vs_bare": round(qjm["rps"] / bare["rps"], 3)}

        # Logins (bcrypt, off the loop) must not stall other requests.
        quiet = await _load(client, api + "jobs?limit=50", headers, args.requests, 8)

        async def logins() -> None:
            await asyncio.gather(*(client.post(api + "auth/login", json={"email": email, "password": password}) for _ in range(20)))

        login_task = asyncio.create_task(logins())
        busy = await _load(client, api + "jobs?limit=50", headers, args.requests, 8)
        await login_task
        results["logins"] = {
            "p99_ms_without_logins": quiet["p99_ms"],
            "p99_ms_during_20_logins": busy["p99_ms"],
            "p99_ratio": round(busy["p99_ms"] / quiet["p99_ms"], 2) if quiet["p99_ms"] else None,
        }
        return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    extra = ["--ServerApp.jpserver_extensions=bench.bare_ext=True"]
    with qjm_server("qjm-bench-api-", extra, bcrypt_rounds=args.bcrypt_rounds) as proc:
        return asyncio.run(_bench(proc.url, args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)


if __name__ == "__main__":  # `python -m bench.api`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "api", *sys.argv[1:]]))
