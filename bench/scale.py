"""Scaling curves: how cost grows with the work, and each curve's order.

    python -m bench --scale                  # the curves below, a PNG beside latest.json
    python -m bench --scale --scale-sizes 1000,10000,100000

1. List latency against jobs per user: a real `jupyter qjm` process (SQLite); one user's
   jobs are written straight into its database, then `GET jobs` (first page of 50, the
   1,000-job summary page, the panel's feed poll, the exact total) is timed at each size;
   and the first page's store reads alone on SQLite and on the MongoDB wire server.
   `--baseline DIR` times the same requests against that tree first.
2. Poll cycle wall time and process RSS against watched jobs: the real Poller, the real
   IBM client and the fake IBM API (5 ms latency) in one process, 100 users, a steady
   cycle (nothing changes) at each size.
3. Detection -> email queued p99 against users (10 jobs each, 2 s poll interval).

Each curve's order is the slope of log(cost) over log(size) on its last segment (the
end-to-end slope is given beside it): below 0.25 reads O(1), 0.75 to 1.25 O(n),
otherwise O(n^slope). Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from .common import ROOT, percentile, rss_mb

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef:scale::"


def order(sizes: list[int], costs: list[float]) -> dict[str, Any]:
    """The log-log slope of the last segment (the growth where the work is largest, which
    is what a bigger deployment meets; a fixed cost flattens the first segment), the
    end-to-end slope beside it, and the reading of the former."""
    pairs = [(n, c) for n, c in zip(sizes, costs) if c and c > 0]
    if len(pairs) < 2:
        return {"slope": None, "order": "unknown"}
    (n0, c0), (na, ca), (n1, c1) = pairs[0], pairs[-2], pairs[-1]
    slope = math.log(c1 / ca) / math.log(n1 / na)
    overall = math.log(c1 / c0) / math.log(n1 / n0)
    if slope < 0.25:
        reading = "O(1)"
    elif 0.75 <= slope <= 1.25:
        reading = "O(n)"
    else:
        reading = f"O(n^{slope:.2f})"
    return {"slope": round(slope, 2), "slope_end_to_end": round(overall, 2), "order": reading}


# -- 1. list latency ------------------------------------------------------------------------------
async def _insert_jobs(db: Path, user_id: str, start: int, count: int) -> None:
    from qjm_jupyter_server.domain import Job, StatusEvent, new_id
    from qjm_jupyter_server.store.sqlite import SQLiteStore

    store = SQLiteStore(str(db))
    await store.open()
    try:
        # In the past (a ms apart, newest last): a job stamped in the future would count as a
        # change for the feed poll, whose cursor is the server's clock.
        now = int(time.time() * 1000) - 1_000_000
        for base in range(start, start + count, 5000):
            batch = [
                Job(id=new_id("j_"), user_id=user_id, ibm_job_id=f"d{i:019d}", registered_at=now + i, updated_at=now + i,
                    instance=CRN, backend="ibm_brisbane", label=f"sweep {i}", status="DONE", watch_state="final",
                    history=[StatusEvent("QUEUED", now), StatusEvent("RUNNING", now + 1), StatusEvent("DONE", now + 2)])
                for i in range(base, min(start + count, base + 5000))
            ]
            await store.register_jobs(batch)
    finally:
        await store.close()


async def _time_get(client: httpx.AsyncClient, url: str, params: dict[str, str], headers: dict[str, str], n: int) -> float:
    """The fastest of n requests, in ms: on a shared machine the median carries the other
    processes' load (tens of ms), which hides a cost growing by a few ms per 10x jobs."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(url, params=params, headers=headers)
        r.raise_for_status()
        samples.append(time.perf_counter() - t0)
    return min(samples) * 1000


def list_curve(sizes: list[int], repeats: int, code: Path | None = None) -> dict[str, Any]:
    """GET jobs at each size: the first page (50, the defaults), the panel's 1,000-job page
    (the summary view), the panel's 4 s feed poll (`updated_after` with nothing changed: its
    cost must follow the changes, not the jobs) and the exact total alone (`total=exact`;
    on a tree without it, a page past the end, which counted every job). With `code`, the
    server runs that source tree (a baseline)."""
    from tests.fixtures.process import QJMProcess, qjm_env

    out: dict[str, Any] = {"sizes": sizes, "first_page_50_ms": [], "summary_page_1000_ms": [], "feed_poll_ms": [],
                           "count_ms": []}
    with tempfile.TemporaryDirectory(prefix="qjm-bench-scale-") as tmp:
        d = Path(tmp)
        env = qjm_env(d, bcrypt_rounds=4, poll_interval=3600)
        paths = [str(code / "server_ext"), str(code)] if code else []
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT), env.get("PYTHONPATH", "")])
        proc = QJMProcess(data_dir=d, env=env, extra_args=["--ServerApp.log_level=WARN"]).start()
        try:

            async def measure() -> None:
                api = proc.api
                async with httpx.AsyncClient(timeout=120) as client:
                    await client.post(api + "auth/register", json={"email": "scale@example.org", "password": "scale password 1"})
                    r = await client.post(api + "auth/login", json={"email": "scale@example.org", "password": "scale password 1"})
                    r.raise_for_status()
                    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                    user_id = (await client.get(api + "me", headers=headers)).json()["id"]
                    exact = {"limit": "1", "total": "exact"}
                    if (await client.get(api + "jobs", params=exact, headers=headers)).status_code == 422:
                        exact = {}  # a tree that always counts every job
                    have = 0
                    for size in sizes:
                        await _insert_jobs(d / "qjm" / "qjm.sqlite3", user_id, have, size - have)
                        have = size
                        await _time_get(client, api + "jobs", {"limit": "50"}, headers, 3)  # warm the page cache
                        out["first_page_50_ms"].append(round(await _time_get(client, api + "jobs", {"limit": "50"}, headers, repeats), 2))
                        out["summary_page_1000_ms"].append(round(await _time_get(
                            client, api + "jobs", {"limit": "1000", "view": "summary"}, headers, max(3, repeats // 4)), 2))
                        cursor = (await client.get(api + "jobs", params={"limit": "1"}, headers=headers)).json()["server_time"]
                        out["feed_poll_ms"].append(round(await _time_get(
                            client, api + "jobs", {"updated_after": cursor, "limit": "200"}, headers, repeats), 2))
                        total = exact or {"limit": "1", "offset": str(size + 1)}
                        out["count_ms"].append(round(await _time_get(client, api + "jobs", total, headers, repeats), 2))

            asyncio.run(measure())
        finally:
            proc.stop()
    for key in ("first_page_50", "summary_page_1000", "feed_poll", "count"):
        out[f"order_{key}"] = order(sizes, out[f"{key}_ms"])
    return out


async def _store_first_page(store: Any, sizes: list[int], repeats: int) -> dict[str, Any]:
    """One user's jobs grow through `sizes`; at each, the first page's store reads as
    JobService makes them (the page, then its total capped 1,000 past the page) and the
    exact count that made the total before, each the fastest of `repeats`."""
    from qjm_jupyter_server.domain import Job, JobQuery, StatusEvent, new_id
    from qjm_jupyter_server.jobs import TOTAL_BEYOND_PAGE

    out: dict[str, Any] = {"sizes": sizes, "page_50_ms": [], "capped_count_ms": [], "exact_count_ms": []}
    await store.open()
    try:
        query = JobQuery(user_id="scale-user", limit=50)
        now, have = int(time.time() * 1000) - 1_000_000, 0
        for size in sizes:
            for base in range(have, size, 1000):
                await store.register_jobs([
                    Job(id=new_id("j_"), user_id="scale-user", ibm_job_id=f"d{i:019d}", registered_at=now + i,
                        updated_at=now + i, instance=CRN, backend="ibm_brisbane", label=f"sweep {i}", status="DONE",
                        watch_state="final", history=[StatusEvent("QUEUED", now), StatusEvent("DONE", now + 2)])
                    for i in range(base, min(size, base + 1000))])
            have = size

            calls = {
                "page_50_ms": lambda: store.list_jobs(query),
                "capped_count_ms": lambda: store.count_jobs(query, cap=query.limit + TOTAL_BEYOND_PAGE + 1),
                "exact_count_ms": lambda: store.count_jobs(query),
            }
            for key, call in calls.items():
                samples = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - t0)
                out[key].append(round(min(samples) * 1000, 2))
    finally:
        await store.close()
    for key in ("page_50", "capped_count", "exact_count"):
        out[f"order_{key}"] = order(sizes, out[f"{key}_ms"])
    return out


def store_curves(sizes: list[int], mongo_sizes: list[int], repeats: int) -> dict[str, Any]:
    """The first page's store reads on SQLite and on the MongoDB wire server (SecantusDB, a
    Python stand-in: smaller sizes, and its figures describe it, not mongod). SecantusDB
    reads the whole index range of a query whatever its limit (a bare
    `find({user_id}).limit(50)` grows linearly with the user's documents there), so its
    curves are O(n) for every read; on mongod the page and the capped count stop at their
    limits, which tests/store/test_mongo_indexes.py holds the queries to (an index in the
    sort's order, `$limit` straight after `$match`)."""
    import secrets

    from qjm_jupyter_server.store.mongo import MongoStore
    from qjm_jupyter_server.store.sqlite import SQLiteStore

    from .stores import mongo_server

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qjm-bench-scale-store-") as tmp:
        out["sqlite"] = asyncio.run(_store_first_page(SQLiteStore(str(Path(tmp) / "s.sqlite3")), sizes, repeats))
        if mongo_sizes:
            with mongo_server(Path(tmp)) as url:
                store = MongoStore(url, database=f"qjm_scale_{secrets.token_hex(3)}")
                out["mongo"] = asyncio.run(_store_first_page(store, mongo_sizes, max(3, repeats // 4)))
    return out


# -- 2. cycle time and RSS ------------------------------------------------------------------------
async def _cycle_at(users: int, per_user: int, latency: float) -> dict[str, float]:
    from qjm_jupyter_server.clock import SystemClock

    from .watcher import _setup, watcher_rig
    from .watcher import rss_mb as self_rss

    async with watcher_rig("scale", read_timeout=60.0) as rig:
        world = await _setup(rig.store, rig.fake, rig.keyring, users, per_user)
        rig.fake.latency = latency
        walls = []
        for _ in range(3):  # the first cycle moves every job out of INITIALIZING; then steady ones
            now = SystemClock().now_ms()
            for user, _key, jobs in world:
                await rig.store.touch_poll_unit(user.id, jobs[0].instance or "", now)
            stats = await rig.poller.run_cycle()
            walls.append(stats.duration_ms / 1000)
        return {"steady_cycle_s": round(min(walls[1:]), 3), "rss_mb": self_rss()}


def _cycle_in_child(users: int, per_user: int, latency: float) -> dict[str, float]:
    """Each size in a fresh process, so its RSS is its own (a process never gives back the
    peak of an earlier, smaller run's heap either)."""
    import json
    import subprocess
    import sys

    code = ("import asyncio, json, sys; from bench.scale import _cycle_at; "
            "print('@@' + json.dumps(asyncio.run(_cycle_at(*json.loads(sys.argv[1])))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps([users, per_user, latency])], cwd=str(ROOT),
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.rsplit("@@", 1)[1])  # type: ignore[no-any-return]


def cycle_curve(sizes: list[int], users: int, latency: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": sizes, "users": users, "steady_cycle_s": [], "rss_mb": []}
    for size in sizes:
        got = _cycle_in_child(users, max(1, size // users), latency)
        out["steady_cycle_s"].append(got["steady_cycle_s"])
        out["rss_mb"].append(got["rss_mb"])
    out["order_cycle"] = order(sizes, out["steady_cycle_s"])
    out["order_rss"] = order(sizes, out["rss_mb"])
    return out


# -- 3. detection p99 -----------------------------------------------------------------------------
def detection_curve(user_counts: list[int], interval: float, latency: float) -> dict[str, Any]:
    from . import watcher

    out: dict[str, Any] = {"users": user_counts, "poll_interval_s": interval, "p99_s": [], "p50_s": []}
    for users in user_counts:
        args = argparse.Namespace(full=False, watcher_users=users, watcher_jobs=10, watcher_latency=latency,
                                  watcher_interval=interval, watcher_changes=min(200, users * 5),
                                  watcher_naive_sample=1, baseline="")
        got = asyncio.run(watcher._run(args))["detection_to_email"]
        out["p99_s"].append(got["p99_s"])
        out["p50_s"].append(got["p50_s"])
    out["order_p99"] = order(user_counts, out["p99_s"])
    return out


def plot(result: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the optional `bench` extra
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    lc = result.get("list")
    if lc:
        ax = axes[0]
        for key, label in (("first_page_50_ms", "first page (50)"), ("summary_page_1000_ms", "summary page (1,000)"),
                           ("feed_poll_ms", "feed poll (no change)"), ("count_ms", "exact total only")):
            ax.plot(lc["sizes"], lc[key], marker="o", label=f"{label}: {lc['order_' + key.rsplit('_', 1)[0]]['order']}"
                    if f"order_{key.rsplit('_', 1)[0]}" in lc else label)
        ax.set(xscale="log", yscale="log", xlabel="jobs of the user", ylabel="fastest latency (ms)", title="GET jobs")
        ax.legend(fontsize=8)
    cc = result.get("cycle")
    if cc:
        ax = axes[1]
        ax.plot(cc["sizes"], cc["steady_cycle_s"], marker="o", color="tab:red",
                label=f"steady cycle: {cc['order_cycle']['order']}")
        ax.set(xscale="log", yscale="log", xlabel=f"watched jobs ({cc['users']} users)", ylabel="cycle wall time (s)",
               title="Watcher cycle and RSS")
        twin = ax.twinx()
        twin.plot(cc["sizes"], cc["rss_mb"], marker="s", color="tab:blue", label=f"RSS: {cc['order_rss']['order']}")
        twin.set_ylabel("process RSS (MB)")
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
        ax.legend(lines, labels, fontsize=8, loc="upper left")
    dc = result.get("detection")
    if dc:
        ax = axes[2]
        ax.plot(dc["users"], dc["p99_s"], marker="o", label=f"p99: {dc['order_p99']['order']}")
        ax.plot(dc["users"], dc["p50_s"], marker="o", label="p50")
        ax.axhline(dc["poll_interval_s"] + 2, color="grey", linestyle="--", label="goal: interval + 2 s")
        ax.set(xscale="log", xlabel="users (10 jobs each)", ylabel="detection -> email queued (s)",
               title=f"Detection, {dc['poll_interval_s']:g} s interval")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.scale_sizes.split(",")]
    users = [int(s) for s in args.scale_users.split(",")]
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    baseline = Path(args.baseline).resolve() if getattr(args, "baseline", None) else None
    if baseline is not None:
        result["list_baseline"] = list_curve(sizes, args.scale_repeats, baseline)
        result["list_baseline"]["baseline_dir"] = str(baseline)
    result["list"] = list_curve(sizes, args.scale_repeats)
    mongo_sizes = [int(x) for x in args.scale_mongo_sizes.split(",") if x.strip()]
    result["store_first_page"] = store_curves(sizes, mongo_sizes, args.scale_repeats)
    if getattr(args, "scale_only_list", False):
        result["seconds"] = round(time.perf_counter() - t0, 1)
        return result
    result["cycle"] = cycle_curve(sizes, 100, args.watcher_latency if hasattr(args, "watcher_latency") else 0.005)
    result["detection"] = detection_curve(users, 2.0, 0.005)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--scale-sizes", default="1000,10000,100000", help="jobs per user / watched jobs")
    parser.add_argument("--scale-users", default="10,100,1000", help="users for the detection curve")
    parser.add_argument("--scale-repeats", type=int, default=20, help="timed requests per list point")
    parser.add_argument("--scale-mongo-sizes", default="1000,4000,16000",
                        help="jobs per user on the MongoDB wire server (SecantusDB is slow; empty: skip)")
    parser.add_argument("--scale-only-list", action="store_true", help="only the list-latency curve (with --baseline: both trees)")
