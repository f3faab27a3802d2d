"""Remote-mode benchmark: what the member server's forwarding costs per request.

One run starts a group server (`jupyter qjm`, SQLite) and a member (`jupyter server` with
`QJM_REMOTE_URL` pointing at it), then times the same authenticated requests sent
directly to the group server and through the member: `GET me` (small answer) and
`GET jobs?limit=50` (about 20 kB), one at a time and 16 at once. The figure is the
per-request overhead (proxied minus direct, p50 and mean) and the ratio of the two.

    python -m bench.remote [--remote-requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from .api import _load


async def _bench(group: str, member: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        api = group + "qjm/api/"
        email, password = "bench-remote@example.org", "bench password 123"
        await client.post(api + "auth/register", json={"email": email, "password": password})
        r = await client.post(api + "auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        jobs = [{"job_id": f"remote-{i:04d}", "source": "local", "label": f"job {i}", "backend": "aer_simulator"}
                for i in range(50)]
        (await client.post(api + "jobs", json={"jobs": jobs}, headers=headers)).raise_for_status()
        results: dict[str, Any] = {}
        for name, path in (("me", "me"), ("jobs50", "jobs?limit=50")):
            for conc in (1, 16):
                n = max(args.remote_requests, conc * 4)
                for base in (group, member):  # warm both paths (connections, caches)
                    await _load(client, base + "qjm/api/" + path, headers, 20, 4)
                # interleave to spread machine noise over both sides
                direct_a = await _load(client, group + "qjm/api/" + path, headers, n // 2, conc)
                proxied_a = await _load(client, member + "qjm/api/" + path, headers, n // 2, conc)
                direct_b = await _load(client, group + "qjm/api/" + path, headers, n // 2, conc)
                proxied_b = await _load(client, member + "qjm/api/" + path, headers, n // 2, conc)
                direct = {k: round((direct_a[k] + direct_b[k]) / 2, 2) for k in ("p50_ms", "p99_ms", "mean_ms", "rps")}
                proxied = {k: round((proxied_a[k] + proxied_b[k]) / 2, 2) for k in ("p50_ms", "p99_ms", "mean_ms", "rps")}
                results[f"{name}_c{conc}"] = {
                    "direct": direct,
                    "via_member": proxied,
                    "overhead_p50_ms": round(proxied["p50_ms"] - direct["p50_ms"], 2),
                    "overhead_mean_ms": round(proxied["mean_ms"] - direct["mean_ms"], 2),
                    "latency_ratio_p50": round(proxied["p50_ms"] / direct["p50_ms"], 2) if direct["p50_ms"] else None,
                    "errors": direct_a["errors"] + direct_b["errors"] + proxied_a["errors"] + proxied_b["errors"],
                }
        return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fixtures.process import QJMProcess, qjm_env

    with tempfile.TemporaryDirectory(prefix="qjm-bench-remote-") as tmp:
        root = Path(tmp)
        (root / "group").mkdir()
        (root / "member").mkdir()
        group = QJMProcess(data_dir=root / "group", env=qjm_env(root / "group"), extra_args=["--ServerApp.log_level=WARN"])
        group.start()
        try:
            member = QJMProcess(data_dir=root / "member", env=qjm_env(root / "member", remote_url=group.url),
                                command="server", extra_args=["--ServerApp.log_level=WARN"])
            member.start()
            try:
                return asyncio.run(_bench(group.url, member.url, args))
            finally:
                member.stop()
        finally:
            group.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote-requests", type=int, default=300, help="requests per measurement and side")


if __name__ == "__main__":  # `python -m bench.remote`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "remote", *sys.argv[1:]]))
