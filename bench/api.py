"""API benchmark: authenticated `GET jobs` (50 jobs) at 1, 16 and 64 concurrent clients,
beside a bare tornado JSON handler in the same server (the ceiling); a user's 1,000 jobs
listed by 8 clients (full and summary views); and the p99 of job lists while 20 bcrypt
logins run, against the same p99 without logins.

The host leg (`host`): a server whose identity source is `jupyter` (personal mode), where
the request carries the Jupyter token and the qjm account is the one bound to the host
identity; the same small listing with a qjm JWT in the same server, alternating with it,
is its baseline (`c1.p50_ratio_host_vs_jwt`: 1.0 when a host-authenticated request costs
no more than a JWT one).

    python -m bench.api [--requests 400] [--bcrypt-rounds 12] [--baseline DIR] [--host-only]

`--baseline DIR` runs the same workload against the server code in DIR (e.g. main,
unpacked with `git archive main | tar -x -C DIR`) in the same run, alternating rounds,
and reports this tree's figures over it.
"""

from __future__ import annotations

import sys

import argparse
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx

from .common import ROOT, best_of, qjm_server, summarize_ms


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


async def _listings(client: httpx.AsyncClient, api: str, headers: dict[str, str], view: dict[str, str] | None,
                    page: int, total: int, seconds: float, concurrency: int) -> dict[str, Any]:
    """Whole listings of `total` jobs per second (following pages of `page`)."""
    done = 0
    latencies: list[float] = []
    nbytes = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, nbytes
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            size = 0
            for offset in range(0, total, page):  # bodies are not parsed: the client must not be the bottleneck
                params = {"limit": str(page), "offset": str(offset), **(view or {})}
                r = await client.get(api + "jobs", params=params, headers=headers)
                r.raise_for_status()
                size += len(r.content)
            nbytes = size
            latencies.append(time.perf_counter() - t0)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"listings_per_s": round(done / wall, 2), **summarize_ms(latencies), "bytes_per_job": round(nbytes / total)}


async def _jwt_user(client: httpx.AsyncClient, api: str, email: str) -> dict[str, str]:
    """Register and log in a qjm account; its `Authorization` header."""
    password = "bench password 123"
    await client.post(api + "auth/register", json={"email": email, "password": password})
    r = await client.post(api + "auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _list_thousand(client: httpx.AsyncClient, api: str, args: argparse.Namespace) -> dict[str, Any]:
    """A second user with 1,000 jobs; 8 clients list them whole: the largest page the server
    accepts (500 on main, 1,000 here), full view, and the summary view where there is one."""
    headers = await _jwt_user(client, api, "bench1000@example.org")
    for start in range(0, 1000, 250):
        batch = [{"job_id": f"d{i:019d}", "source": "ibm", "instance": CRN, "backend": "ibm_brisbane",
                  "label": f"sweep point {i}"} for i in range(start, start + 250)]
        (await client.post(api + "jobs", json={"jobs": batch}, headers=headers)).raise_for_status()
    page = 1000 if (await client.get(api + "jobs", params={"limit": "1000"}, headers=headers)).status_code == 200 else 500
    out: dict[str, Any] = {"page": page}
    await _listings(client, api, headers, None, page, 1000, 1.0, 2)  # warm-up
    out["full"] = await _listings(client, api, headers, None, page, 1000, args.list_seconds, 8)
    views = {"summary": {"view": "summary"}, "panel": {"fields": ",".join(panel_fields())},
             "kernel_table": {"fields": ",".join(kernel_table_fields())}}
    for name, view in views.items():
        if (await client.get(api + "jobs", params=view, headers=headers)).status_code == 200:
            out[name] = await _listings(client, api, headers, view, page, 1000, args.list_seconds, 8)
    return out


def panel_fields() -> list[str]:
    """The Lab panel's and web UI's list fields (`LIST_FIELDS` in labextension/src/model.ts)."""
    text = (ROOT / "labextension" / "src" / "model.ts").read_text()
    block = re.search(r"LIST_FIELDS = \[(.*?)\]", text, re.S)
    return re.findall(r"'([a-z_]+)'", block.group(1)) if block else []


def kernel_table_fields() -> list[str]:
    from qjm_jupyter.widget import FIELDS

    return list(FIELDS)


CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef:inst-1::"


async def _bench(base: str, args: argparse.Namespace) -> dict[str, Any]:
    api = base + "qjm/api/"
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        email, password = "bench@example.org", "bench password 123"
        headers = await _jwt_user(client, api, email)
        jobs = [{"job_id": f"bench-{i:04d}", "source": "local", "label": f"job {i}", "backend": "aer_simulator"} for i in range(50)]
        (await client.post(api + "jobs", json={"jobs": jobs}, headers=headers)).raise_for_status()
        listing = await client.get(api + "jobs?limit=50", headers=headers)
        listing.raise_for_status()
        await client.put(base + "bench/bare", content=listing.content)

        results: dict[str, Any] = {"list_bytes": len(listing.content)}
        results["list1000"] = await _list_thousand(client, api, args)
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


async def _paired(client: httpx.AsyncClient, url: str, a: dict[str, str], b: dict[str, str], pairs: int) -> dict[str, Any]:
    """One client, requests of `a` and `b` alternating (order swapped every pair), so load
    drift on a shared machine falls on both alike; the figure is their p50 ratio."""
    la: list[float] = []
    lb: list[float] = []
    for i in range(pairs):
        for headers, out in ((a, la), (b, lb)) if i % 2 == 0 else ((b, lb), (a, la)):
            t0 = time.perf_counter()
            r = await client.get(url, headers=headers)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    sa, sb = summarize_ms(la), summarize_ms(lb)
    return {"host": sa, "jwt": sb, "p50_ratio_host_vs_jwt": round(sa["p50_ms"] / sb["p50_ms"], 3)}


async def _bench_host(base: str, jupyter_token: str, args: argparse.Namespace) -> dict[str, Any]:
    """A small `GET jobs` (5 jobs, so authentication is a large part of it) as the host's user
    (Jupyter token) and as a qjm JWT user of the same server, alternating; then 16 clients."""
    api = base + "qjm/api/"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        host = {"Authorization": f"token {jupyter_token}"}
        jwt = await _jwt_user(client, api, "bench-host@example.org")
        jobs = [{"job_id": f"host-{i:04d}", "source": "local", "label": f"job {i}", "backend": "aer_simulator"} for i in range(50)]
        for headers in (host, jwt):  # the host's account is made on its first request
            (await client.post(api + "jobs", json={"jobs": jobs}, headers=headers)).raise_for_status()
        url = api + "jobs?limit=5"
        await _paired(client, url, host, jwt, 50)  # warm-up
        out: dict[str, Any] = {"c1": await _paired(client, url, host, jwt, args.requests)}
        n = max(args.requests, 64)
        via_host = await _load(client, url, host, n, 16)
        via_jwt = await _load(client, url, jwt, n, 16)
        out["c16"] = {"host": via_host, "jwt": via_jwt, "rps_ratio_host_vs_jwt": round(via_host["rps"] / via_jwt["rps"], 3)}
        return out


def _measure(args: argparse.Namespace, code: Path | None) -> dict[str, Any]:
    """One server (this tree's code, or the tree at `code`) in a fresh data dir, and one in
    personal mode for the host leg."""
    results: dict[str, Any] = {}
    if not getattr(args, "host_only", False):
        extra = ["--ServerApp.jpserver_extensions=bench.bare_ext=True"]
        with qjm_server("qjm-bench-api-", extra, code=code, bcrypt_rounds=args.bcrypt_rounds, max_jobs_per_request=1000) as proc:
            results = asyncio.run(_bench(proc.url, args))
    with qjm_server("qjm-bench-api-host-", (), code=code, bcrypt_rounds=4, identity_source="jupyter") as proc:
        results["host"] = asyncio.run(_bench_host(proc.url, proc.jupyter_token, args))
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    baseline = Path(args.baseline).resolve() if getattr(args, "baseline", None) else None
    if baseline is None:
        return _measure(args, None)
    here: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    for _ in range(max(1, args.api_rounds)):
        base.append(_measure(args, baseline))
        here.append(_measure(args, None))
    now, before = best_of(here), best_of(base)
    ratios: dict[str, Any] = {}
    if "list1000" in now and "list1000" in before:
        ratios.update({
            "list1000_full_listings_per_s": round(now["list1000"]["full"]["listings_per_s"] / before["list1000"]["full"]["listings_per_s"], 2),
            "c1_rps": round(now["c1"]["qjm"]["rps"] / before["c1"]["qjm"]["rps"], 2),
            "c64_p99": round(now["c64"]["qjm"]["p99_ms"] / before["c64"]["qjm"]["p99_ms"], 2),
        })
    ratios["host_c1_p50"] = round(now["host"]["c1"]["host"]["p50_ms"] / before["host"]["c1"]["host"]["p50_ms"], 2)
    ratios["host_c16_rps"] = round(now["host"]["c16"]["host"]["rps"] / before["host"]["c16"]["host"]["rps"], 2)
    return {"this_tree": now, "baseline": before, "baseline_dir": str(baseline), "rounds": len(here),
            "this_over_baseline": ratios}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--list-seconds", type=float, default=8.0, help="seconds per 1,000-job listing measurement")
    parser.add_argument("--api-rounds", type=int, default=2, help="alternating rounds with --baseline (best of)")
    parser.add_argument("--host-only", action="store_true", help="only the host leg (personal-mode identity)")


if __name__ == "__main__":  # `python -m bench.api`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "api", *sys.argv[1:]]))
