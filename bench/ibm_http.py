"""HTTP client cost per IBM call: httpx, aiohttp and the watcher's own client (watcher/http.py).

`python -m bench --only ibm_http`. The fake IBM API runs in its own process (so its CPU
is not counted); this process makes the same listing call (`GET /api/v1/jobs?pending=true`,
10 jobs, bearer + Service-CRN headers, JSON decoded) N times, C at a time, with each
client, and reports this process's CPU per call and calls per second. aiohttp is
measured only where it is installed (it is not a dependency of qjm-jupyter).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from .common import ROOT  # noqa: F401 - ROOT puts the repo on sys.path
from .fake_process import RemoteFake

IAM_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--http-calls", type=int, default=3000, help="calls per client")
    parser.add_argument("--http-concurrency", type=int, default=8, help="calls in flight")


async def _drive(call: Any, n: int, concurrency: int) -> dict[str, float]:
    await call()  # warm: connect, first token
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us_per_call": round(1e6 * cpu / n, 1), "calls_per_s": round(n / wall, 1)}


async def _measure(base: str, key: str, crn: str, n: int, concurrency: int) -> dict[str, Any]:
    import httpx

    from qjm_jupyter_server.watcher.http import HTTPClient

    params = {"pending": "true", "limit": "200", "offset": "0", "exclude_params": "true"}
    out: dict[str, Any] = {}

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as hx:
        token = (await hx.post(base + "/identity/token", data={"grant_type": IAM_GRANT, "apikey": key})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Service-CRN": crn, "IBM-API-Version": "2026-04-15", "Accept": "application/json"}

        async def httpx_call() -> None:
            r = await hx.get(base + "/api/v1/jobs", params=params, headers=headers)
            assert len(r.json()["jobs"]) == 10

        out["httpx"] = await _drive(httpx_call, n, concurrency)

    try:
        import aiohttp
    except ImportError:
        out["aiohttp"] = "not installed"
    else:
        timeout = aiohttp.ClientTimeout(sock_connect=30, sock_read=30)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as ah:

            async def aiohttp_call() -> None:
                async with ah.get(base + "/api/v1/jobs", params=params, headers=headers, allow_redirects=False) as r:
                    assert len((await r.json())["jobs"]) == 10

            out["aiohttp"] = await _drive(aiohttp_call, n, concurrency)

    own = HTTPClient(connect_timeout=30, read_timeout=30, max_idle=concurrency)

    async def own_call() -> None:
        r = await own.request("GET", base + "/api/v1/jobs", params=params, headers=headers)
        assert len(r.json()["jobs"]) == 10

    out["watcher_http"] = await _drive(own_call, n, concurrency)
    await own.aclose()
    out["ratio_cpu_httpx_over_watcher_http"] = round(out["httpx"]["cpu_us_per_call"] / out["watcher_http"]["cpu_us_per_call"], 2)
    if isinstance(out["aiohttp"], dict):
        out["ratio_cpu_httpx_over_aiohttp"] = round(out["httpx"]["cpu_us_per_call"] / out["aiohttp"]["cpu_us_per_call"], 2)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fakes.ibm_api import make_crn

    fake = RemoteFake()
    fake.start()
    try:
        crn = make_crn(1)
        key = fake.add_key("httpbench-key-0001")
        for j in range(10):
            fake.add_job(f"h{j:03d}", "Queued", instance=crn)
        fake.flush()
        n, c = getattr(args, "http_calls", 3000), getattr(args, "http_concurrency", 8)
        result = asyncio.run(_measure(fake.base, key, crn, n, c))
        result.update({"calls": n, "concurrency": c, "fake": "own process, no added latency"})
        return result
    finally:
        fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ibm_http", description=__doc__)
    add_arguments(parser)
    for k, v in run(parser.parse_args()).items():
        print(k, v)
