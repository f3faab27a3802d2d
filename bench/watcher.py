"""Watcher benchmark: IBM calls, wall time and CPU per poll cycle, detection-to-email latency, RSS.

`python -m bench.watcher` (or `python -m bench --only watcher`). The fake IBM API
(tests/fakes/ibm_api.py, with a per-request latency) runs in its own process by default
(bench/fake_process.py), because real IBM's CPU is not the watcher's; `--watcher-fake
thread` runs it in this process as before, where its handler threads share the GIL and
the cores with the poller. Here: a real SQLite store in a temp dir, the real IBM client
and the real Poller. Each user has their own instance, as in a group server. Beside it,
the older design — one IAM exchange + one GET per job, sequentially — runs on a sample of
jobs and is scaled up to the same job count for the ratio. "Email" is the outbox row's
creation (the SMTP hop belongs to the email benchmark). `cpu_ms_per_call` is this
process's CPU per IBM call (the fake's included when it is a thread here);
`fake_cpu_ms_per_call` the fake process's own. RSS is this process's. No assertions:
figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import ROOT, percentile  # noqa: F401 - ROOT puts the repo on sys.path

from qjm_jupyter_server.clock import SystemClock  # noqa: E402
from qjm_jupyter_server.domain import Job, User, new_id  # noqa: E402
from qjm_jupyter_server.notify.messages import MessageFactory  # noqa: E402
from qjm_jupyter_server.secrets import KeyRing  # noqa: E402
from qjm_jupyter_server.settings import Settings  # noqa: E402
from qjm_jupyter_server.store import open_store  # noqa: E402
from qjm_jupyter_server.watcher.ibm import IBMClient  # noqa: E402
from qjm_jupyter_server.watcher.poller import Poller  # noqa: E402
from tests.fakes.ibm_api import FakeIBM, make_crn  # noqa: E402

from .fake_process import RemoteFake  # noqa: E402

JWT_SECRET = "bench-secret-" + "x" * 40


@dataclass
class WatcherRig:
    fake: Any  # FakeIBM, or RemoteFake (the same methods, in another process)
    store: Any
    keyring: KeyRing
    settings: Settings
    poller: Poller


@asynccontextmanager
async def watcher_rig(owner: str, read_timeout: float, fake_mode: str = "process") -> AsyncIterator[WatcherRig]:
    """The fake IBM API, a SQLite store in a temp dir, the real IBM client and a Poller,
    torn down in order: the one set-up the watcher and scaling benchmarks share.

    `fake_mode` "process" runs the fake in its own process (bench/fake_process.py), so its
    CPU is not charged to the watcher, as real IBM's is not; "thread" keeps it in this
    process, as before, to compare."""
    fake: Any = FakeIBM() if fake_mode == "thread" else RemoteFake()
    fake.start()
    tmp = tempfile.TemporaryDirectory(prefix=f"qjm-{owner}-watcher-")
    store = open_store(f"sqlite:///{Path(tmp.name) / 'qjm.sqlite3'}")
    await store.open()
    settings = Settings(public_url="http://bench.test/", poll_interval=3600.0, ibm_iam_url=fake.base,
                        ibm_api_url=fake.base + "/api/v1", ibm_read_timeout=read_timeout, lease_seconds=600.0)
    keyring = KeyRing.load_or_create(Path(tmp.name) / "keys", JWT_SECRET, None)
    ibm = IBMClient(settings)
    poller = Poller(store, keyring, MessageFactory(settings), ibm, settings, SystemClock(), owner=owner)
    try:
        yield WatcherRig(fake, store, keyring, settings, poller)
    finally:
        await poller.stop()
        await ibm.aclose()
        await store.close()
        fake.stop()
        tmp.cleanup()


def _set_statuses(fake: Any, items: list[tuple[str, str]]) -> None:
    if hasattr(fake, "set_statuses"):
        fake.set_statuses(items)  # one request per 2,000 to the fake's process
    else:
        for job_id, status in items:
            fake.set_status(job_id, status)


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--watcher-users", type=int, default=100, help="users (one instance each); --full: 1000")
    parser.add_argument("--watcher-jobs", type=int, default=10, help="watched jobs per user")
    parser.add_argument("--watcher-latency", type=float, default=0.005, help="fake IBM latency per request, seconds")
    parser.add_argument("--watcher-interval", type=float, default=2.0, help="poll interval for the latency run, seconds")
    parser.add_argument("--watcher-changes", type=int, default=200, help="jobs finished during the latency run")
    parser.add_argument("--watcher-naive-sample", type=int, default=100, help="jobs polled by the naive poller")
    parser.add_argument("--watcher-fake", choices=("process", "thread"), default="process",
                        help="the fake IBM API in its own process (default: its CPU is not ours) or a thread of this one")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _setup(store: Any, fake: Any, keyring: KeyRing, users: int, per_user: int) -> list[tuple[User, str, list[Job]]]:
    now = SystemClock().now_ms()
    out = []
    for u in range(users):
        crn = fake.add_instance(make_crn(u + 1))
        key = fake.add_key(f"benchkey-{u:05d}-{random.getrandbits(32):08x}")
        uid = new_id("u_")
        user = User(id=uid, email=f"{uid}@bench.test", password_hash="x", created_at=now, updated_at=now,
                    is_verified=True, ibm_key_cipher=keyring.encrypt(uid, key), ibm_key_last4=key[-4:],
                    ibm_key_state="ok", ibm_key_updated_at=now, default_instance=crn)
        await store.create_user(user)
        jobs = []
        for j in range(per_user):
            ibm_id = f"b{u:05d}x{j:03d}"
            fake.add_job(ibm_id, "Queued", instance=crn)
            jobs.append(Job(id=new_id("j_"), user_id=uid, ibm_job_id=ibm_id, registered_at=now, updated_at=now,
                            instance=crn, notify_status=["DONE", "ERROR", "CANCELLED"]))
        stored = await store.register_jobs(jobs)
        await store.touch_poll_unit(uid, crn, now)
        out.append((user, key, [j for j, _ in stored]))
    if hasattr(fake, "flush"):
        fake.flush()  # RemoteFake sends what it buffered
    return out


async def _naive(fake: Any, sample: list[tuple[str, str, str]], timeout: float) -> dict[str, float]:
    """The older design: per job, exchange the key for a token and GET the job, one after another."""
    import httpx

    calls = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=timeout) as http:
        for key, crn, ibm_id in sample:
            r = await http.post(fake.base + "/identity/token",
                                data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": key})
            token = r.json()["access_token"]
            await http.get(f"{fake.base}/api/v1/jobs/{ibm_id}",
                           headers={"Authorization": f"Bearer {token}", "Service-CRN": crn, "IBM-API-Version": "2026-04-15"})
            calls += 2
    return {"calls": calls, "seconds": time.perf_counter() - started}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    users = 1000 if getattr(args, "full", False) and args.watcher_users == 100 else args.watcher_users
    per_user = args.watcher_jobs
    result: dict[str, Any] = {"users": users, "jobs": users * per_user, "fake_latency_ms": args.watcher_latency * 1000}
    mode = getattr(args, "watcher_fake", "process")
    result["fake"] = mode
    async with watcher_rig("bench", read_timeout=30.0, fake_mode=mode) as rig:
        fake, store, keyring, poller, settings = rig.fake, rig.store, rig.keyring, rig.poller, rig.settings
        t0 = time.perf_counter()
        world = await _setup(store, fake, keyring, users, per_user)
        result["setup_s"] = round(time.perf_counter() - t0, 1)
        result["rss_after_setup_mb"] = rss_mb()
        fake.latency = args.watcher_latency

        async def due_now() -> None:
            now = SystemClock().now_ms()
            for user, _key, jobs in world:
                await store.touch_poll_unit(user.id, jobs[0].instance or "", now)

        # Cycle 1: every job leaves INITIALIZING (a write per job). Cycle 2: steady state, nothing changes.
        async def measured_cycle() -> tuple[Any, dict[str, Any]]:
            """One cycle, with IBM calls counted at the fake and CPU per call: this process's
            (the fake's too when it is a thread here) and, out of process, the fake's own."""
            before = fake.count_calls()
            fake_cpu = fake.cpu_seconds() if hasattr(fake, "cpu_seconds") else 0.0
            cpu = time.process_time()
            stats = await poller.run_cycle()
            cpu = time.process_time() - cpu
            calls = fake.count_calls() - before
            wall = stats.duration_ms / 1000
            figures = {"ibm_calls": calls, "wall_s": round(wall, 2), "calls_per_s": round(calls / max(wall, 1e-9), 1),
                       "cpu_ms_per_call": round(1000 * cpu / max(1, calls), 3)}
            if hasattr(fake, "cpu_seconds"):
                figures["fake_cpu_ms_per_call"] = round(1000 * (fake.cpu_seconds() - fake_cpu) / max(1, calls), 3)
            return stats, figures

        for name in ("first", "steady"):
            await due_now()
            stats, figures = await measured_cycle()
            result[f"cycle_{name}"] = {
                "units": stats.units, "listings": stats.listings, "gets": stats.gets, "changes": stats.changes, **figures,
            }
        # Cycle 3: 10 % of the jobs finished since the last poll: one GET each on top of the listings.
        finished = [jobs[i] for _u, _k, jobs in world for i in range(max(1, per_user // 10))]
        _set_statuses(fake, [(job.ibm_job_id, "Completed") for job in finished])
        await due_now()
        stats, figures = await measured_cycle()
        result["cycle_10pct_done"] = {
            "listings": stats.listings, "gets": stats.gets, "changes": stats.changes,
            "emails_queued": await store.count_outbox(), **figures,
        }

        # Latency: the real loop at a short interval; jobs finish at random moments.
        poller.settings = settings = Settings(**{**settings.__dict__, "poll_interval": args.watcher_interval})
        finished_ids = {j.id for j in finished}  # a set: `j not in finished` compared dataclasses 10^7 times
        pending = [j for _u, _k, jobs in world for j in jobs if j.id not in finished_ids]
        changed = random.sample(pending, min(args.watcher_changes, len(pending)))
        await due_now()
        await poller.start()
        changed_at: dict[str, int] = {}
        window = 2 * args.watcher_interval
        t_start = time.monotonic()
        for job in sorted(changed, key=lambda _j: random.random()):
            await asyncio.sleep(window / max(1, len(changed)))
            changed_at[job.id] = SystemClock().now_ms()  # before the change: a latency is never understated
            await asyncio.to_thread(fake.set_status, job.ibm_job_id, "Completed")
        deadline = time.monotonic() + 20 * args.watcher_interval + 60
        created: dict[str, int] = {}  # job id -> when its email was queued (the newest rows suffice)
        while time.monotonic() < deadline and len(created) < len(changed_at):
            await asyncio.sleep(0.2)
            rows = await store.list_notifications(None, 1000, 0)
            created.update({n.job_id: n.created_at for n in rows if n.job_id in changed_at})
        latencies = [(created[j] - changed_at[j]) / 1000 for j in created]
        await poller.stop()
        backing_off = {}
        for job_id in changed_at.keys() - created.keys():  # why a change went unseen, by unit state
            job = await store.get_job(job_id)
            unit = await store.get_poll_unit(f"{job.user_id}|{job.instance}") if job else None
            reason = "no unit" if unit is None else (unit.paused_reason or (unit.last_error or "due later")[:60])
            backing_off[reason] = backing_off.get(reason, 0) + 1
        result["detection_to_email"] = {
            "poll_interval_s": args.watcher_interval,
            "changes": len(changed_at),
            "detected": len(latencies),  # changes whose email was queued before the deadline
            "p50_s": round(percentile(latencies, 50), 2) if latencies else None,
            "p99_s": round(percentile(latencies, 99), 2) if latencies else None,
            "window_s": round(time.monotonic() - t_start, 1),
            "undetected_by_unit_state": backing_off,
        }
        result["rss_end_mb"] = rss_mb()

        # The older design on a sample, scaled to the same number of jobs.
        sample = [(key, jobs[0].instance or "", j.ibm_job_id) for _u, key, jobs in world for j in jobs][: args.watcher_naive_sample]
        naive = await _naive(fake, sample, 30.0)
        per_job = naive["seconds"] / max(1, len(sample))
        jobs_total = users * per_user
        naive_calls = 2 * jobs_total
        naive_wall = per_job * jobs_total
        batched = result["cycle_steady"]
        result["naive_per_job"] = {
            "sampled_jobs": len(sample), "ibm_calls_per_cycle": naive_calls, "cycle_wall_s_extrapolated": round(naive_wall, 1),
        }
        result["ratio_calls_naive_over_batched"] = round(naive_calls / max(1, batched["ibm_calls"]), 1)
        result["ratio_wall_naive_over_batched"] = round(naive_wall / max(1e-9, batched["wall_s"]), 1)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    for name, default in (("watcher_users", 100), ("watcher_jobs", 10), ("watcher_latency", 0.005),
                          ("watcher_interval", 2.0), ("watcher_changes", 200), ("watcher_naive_sample", 100)):
        if not hasattr(args, name):
            setattr(args, name, default)
    baseline = getattr(args, "baseline", "")
    if not baseline:
        return asyncio.run(_run(args))
    from .common import compare

    now, before = compare("watcher", args, Path(baseline).resolve(), lambda: asyncio.run(_run(args)),
                          getattr(args, "bench_rounds", 1))
    keys = (("cycle_steady", "wall_s"), ("cycle_steady", "cpu_ms_per_call"), ("cycle_10pct_done", "wall_s"),
            ("detection_to_email", "p50_s"), ("detection_to_email", "p99_s"))
    ratios = {f"{a}.{b}": round(now[a][b] / before[a][b], 2) for a, b in keys
              if before[a].get(b) and now[a].get(b) is not None}
    return {"this_tree": now, "baseline": before, "this_over_baseline": ratios}


def _print(result: dict[str, Any], prefix: str = "") -> None:
    for key, value in result.items():
        if isinstance(value, dict):
            _print(value, f"{prefix}{key}.")
        else:
            print(f"{(prefix + key).ljust(48)} {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.watcher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="1,000 users x 10 jobs = 10,000 watched jobs")
    add_arguments(parser)
    _print(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
