"""Soak: a `jupyter qjm` process under mixed traffic for a while, then an accounting.

    python -m bench --only soak --soak-seconds 600     # the issue's 10 minutes
    python -m bench.soak --soak-seconds 60

One `jupyter qjm` (SQLite, watcher on, mail on; its watcher in a child process, as
`jupyter qjm` runs it by default, or `--soak-watcher inline` in the server's process)
against the fake IBM API (tests/fakes/ibm_api.py, in its own process) and a local
aiosmtpd (tests/fixtures/smtp.py).
Several client tasks, one account each, register IBM jobs, list them (pages and the
changes feed), read one, relabel, delete, log in, and move their jobs on in the fake
(Queued -> Running -> Completed/Failed/Cancelled). Each client is paced (at most
`--soak-rate` requests a second), so the loop is bounded and the 2-core machine stays
usable.

Reported: requests, errors (5xx, transport errors or any unexpected 4xx), p99 per
window (a minute when the run is >= 3 minutes, else a third of it) and the drift (last
window p99 / first window p99), server RSS per window (and the watcher process's). Then traffic stops, the
watcher is given time to converge and the outbox to drain, and:
- every job registered and not deleted is listed (lost_jobs), no deleted one is;
- every due notification (a job that reached a final status it asked for) has exactly
  one outbox row, and every job-status row was delivered exactly once at the SMTP
  server (matched by Message-ID), printed as "lost: N, duplicated: M".
"""

from __future__ import annotations

import sys

import argparse
import asyncio
import os
import random
import re
import secrets
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .common import ROOT, percentile, rss_mb

PASSWORD = "soak password 123"
API_TO_OURS = {"Queued": "QUEUED", "Running": "RUNNING", "Completed": "DONE", "Failed": "ERROR", "Cancelled": "CANCELLED"}
FINAL_OURS = {"DONE", "ERROR", "CANCELLED"}
NOTIFY_CHOICES = (["DONE"], ["DONE", "ERROR", "CANCELLED"], ["RUNNING", "DONE"], ["RUNNING", "DONE", "ERROR", "CANCELLED"])
MESSAGE_ID = re.compile(r"<qjm\.([^@>]+)@")
SETTLE_S = 120.0


@dataclass
class Stats:
    started: float
    samples: list[tuple[float, float, str]] = field(default_factory=list)  # (seconds since start, latency s, op)
    errors: list[str] = field(default_factory=list)
    by_op: Counter[str] = field(default_factory=Counter)


@dataclass
class Client:
    n: int
    crn: str
    email: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)  # IBM job id -> our id, registered and not deleted
    deleted: set[str] = field(default_factory=set)
    requested: dict[str, list[str]] = field(default_factory=dict)
    at_ibm: dict[str, str] = field(default_factory=dict)  # IBM job id -> the status the fake was given
    seq: int = 0


async def _call(http: httpx.AsyncClient, stats: Stats, op: str, expect: int, method: str, url: str, **kw: Any) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        r = await http.request(method, url, **kw)
    except httpx.HTTPError as exc:
        stats.errors.append(f"{op}: {type(exc).__name__}: {exc}"[:300])
        return None
    stats.samples.append((t0 - stats.started, time.perf_counter() - t0, op))
    stats.by_op[op] += 1
    if r.status_code != expect:
        stats.errors.append(f"{op}: {r.status_code} {r.text[:200]}")
        return None
    return r


async def _login(http: httpx.AsyncClient, api: str, c: Client, stats: Stats) -> None:
    r = await _call(http, stats, "login", 200, "POST", api + "auth/login", json={"email": c.email, "password": PASSWORD})
    if r is not None:
        c.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}


_FAKE_LOCK: dict[int, asyncio.Lock] = {}


async def _tell_fake(fake: Any, c: Client, new: Sequence[str] = (), changes: Sequence[tuple[str, str]] = ()) -> None:
    """New jobs and status changes at IBM. A fake in its own process is told off this loop
    (whose clock measures the server's latencies), one client at a time: its buffer is shared."""
    lock = _FAKE_LOCK.setdefault(id(fake), asyncio.Lock())
    async with lock:
        for job_id in new:
            fake.add_job(job_id, "Queued", instance=c.crn)
            c.at_ibm[job_id] = "Queued"
        for job_id, status in changes:
            c.at_ibm[job_id] = status
        if hasattr(fake, "set_statuses"):
            await asyncio.to_thread(fake.set_statuses, list(changes))  # flushes the new jobs first
        else:
            for job_id, status in changes:
                fake.set_status(job_id, status)


async def _client_loop(http: httpx.AsyncClient, api: str, fake: Any, c: Client, stats: Stats, until: float, rate: float,
                       rng: random.Random) -> None:
    pause = 1.0 / rate
    while time.monotonic() < until:
        t0 = time.monotonic()
        roll = rng.random()
        h = c.headers
        if roll < 0.15 or not c.live:  # register 1-5 new IBM jobs
            batch = []
            for _ in range(rng.randint(1, 5)):
                c.seq += 1
                job_id = f"soak{c.n}x{c.seq:06d}"
                notify = list(rng.choice(NOTIFY_CHOICES))
                c.requested[job_id] = notify
                batch.append({"job_id": job_id, "notify_status": notify, "label": f"soak {c.seq}"})
            await _tell_fake(fake, c, new=[b["job_id"] for b in batch])  # at IBM before we register it
            r = await _call(http, stats, "register", 201, "POST", api + "jobs", headers=h, json={"jobs": batch})
            if r is not None:
                for j in r.json()["jobs"]:
                    c.live[j["job_id"]] = j["id"]
        elif roll < 0.50:
            params: dict[str, Any] = {"limit": 50, "offset": rng.choice((0, 0, 50, 100))}
            if rng.random() < 0.3:
                params = {"updated_after": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 5)), "limit": 50}
            await _call(http, stats, "list", 200, "GET", api + "jobs", headers=h, params=params)
        elif roll < 0.60:
            job_id = rng.choice(list(c.live))
            await _call(http, stats, "get", 200, "GET", api + f"jobs/{c.live[job_id]}", headers=h)
        elif roll < 0.70:
            job_id = rng.choice(list(c.live))
            await _call(http, stats, "patch", 200, "PATCH", api + f"jobs/{c.live[job_id]}", headers=h,
                        json={"label": f"relabelled {secrets.token_hex(2)}"})
        elif roll < 0.75:
            job_id = rng.choice(list(c.live))
            our = c.live.pop(job_id)
            c.deleted.add(job_id)  # counted deleted even if the answer is lost: never checked as present
            await _call(http, stats, "delete", 204, "DELETE", api + f"jobs/{our}", headers=h)
        elif roll < 0.78:
            await _login(http, api, c, stats)
        else:  # the job moves on at IBM (no request to our server)
            job_id = rng.choice(list(c.live))
            current = c.at_ibm[job_id]
            if current == "Queued":
                await _tell_fake(fake, c, changes=[(job_id, "Running" if rng.random() < 0.6 else rng.choice(("Completed", "Failed", "Cancelled")))])
            elif current == "Running":
                await _tell_fake(fake, c, changes=[(job_id, rng.choices(("Completed", "Failed", "Cancelled"), (7, 2, 1))[0])])
            continue
        await asyncio.sleep(max(0.0, pause - (time.monotonic() - t0)))


async def _all_pages(http: httpx.AsyncClient, url: str, headers: dict[str, str], key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = await http.get(url, headers=headers, params={"limit": 500, "offset": len(out)})
        r.raise_for_status()
        page = r.json()[key]
        out.extend(page)
        if len(page) < 500:
            return out


async def _settled(http: httpx.AsyncClient, api: str, fake: Any, clients: list[Client]) -> bool:
    """The watcher saw every IBM status, and nothing waits in the outbox."""
    for c in clients:
        jobs = await _all_pages(http, api + "jobs", c.headers, "jobs")
        for j in jobs:
            if j["status"] != API_TO_OURS[c.at_ibm[j["job_id"]]]:
                return False
        notes = await _all_pages(http, api + "notifications", c.headers, "notifications")
        if any(n["state"] == "pending" for n in notes):
            return False
    return True


async def _soak(api: str, pid: int, fake: Any, smtp: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tests.fixtures.process import child_pids

    duration = float(args.soak_seconds)
    window = 60.0 if duration >= 180 else max(1.0, duration / 3)
    rng = random.Random(args.soak_seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        clients = []
        for n in range(args.soak_clients):
            crn = fake.add_instance(_crn(n + 1))
            key = fake.add_key(f"soakkey-{n}-{secrets.token_hex(6)}")
            if hasattr(fake, "flush"):
                fake.flush()
            c = Client(n=n, crn=crn, email=f"soak{n}-{secrets.token_hex(3)}@example.org")
            r = await http.post(api + "auth/register", json={"email": c.email, "password": PASSWORD,
                                                            "ibm_quantum_token": key, "default_instance": crn})
            r.raise_for_status()
            stats0 = Stats(started=time.perf_counter())
            await _login(http, api, c, stats0)
            if not c.headers:
                raise RuntimeError(f"login failed: {stats0.errors}")
            clients.append(c)

        stats = Stats(started=time.perf_counter())
        rss: list[tuple[float, float]] = [(0.0, rss_mb(pid))]
        watcher_rss: list[float] = []

        def sample_watcher() -> None:
            watcher_rss.append(round(sum(rss_mb(child) for child in child_pids(pid)), 1))

        sample_watcher()

        async def sample_rss() -> None:
            while True:
                await asyncio.sleep(window)
                rss.append((round(time.perf_counter() - stats.started, 1), rss_mb(pid)))
                sample_watcher()
                if hasattr(fake, "lock"):
                    with fake.lock:
                        fake.calls.clear()  # the fake's call log would grow for the whole run

        sampler = asyncio.create_task(sample_rss())
        until = time.monotonic() + duration
        await asyncio.gather(*(_client_loop(http, api, fake, c, stats, until, args.soak_rate, random.Random(rng.random()))
                               for c in clients))
        sampler.cancel()
        rss.append((round(time.perf_counter() - stats.started, 1), rss_mb(pid)))
        sample_watcher()
        traffic_s = time.perf_counter() - stats.started

        # Settle: the watcher catches up with IBM and the mailer drains the outbox.
        settle_t0 = time.monotonic()
        settled = False
        while time.monotonic() - settle_t0 < SETTLE_S:
            for c in clients:  # tokens may have expired in a long run
                await _login(http, api, c, Stats(started=time.perf_counter()))
            if await _settled(http, api, fake, clients):
                settled = True
                break
            await asyncio.sleep(1.0)
        settle_s = time.monotonic() - settle_t0

        # Accounting.
        delivered: Counter[str] = Counter()
        for m in smtp.messages:
            if (m["X-QJM-Kind"] or "") == "job_status" and (found := MESSAGE_ID.search(str(m["Message-ID"] or ""))):
                delivered[found.group(1)] += 1
        lost_jobs = ghost_jobs = due = missing_rows = extra_rows = lost_mail = duplicated_mail = 0
        registered = deleted = 0
        for c in clients:
            jobs = {j["job_id"]: j for j in await _all_pages(http, api + "jobs", c.headers, "jobs")}
            rows = [n for n in await _all_pages(http, api + "notifications", c.headers, "notifications") if n["kind"] == "job_status"]
            registered += len(c.live) + len(c.deleted)
            deleted += len(c.deleted)
            lost_jobs += sum(1 for j in c.live if j not in jobs)
            ghost_jobs += sum(1 for j in c.deleted if j in jobs)
            rows_by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for n in rows:
                rows_by_job[n["job_id"]].append(n)
                got = delivered.get(n["id"], 0)
                lost_mail += got == 0
                duplicated_mail += max(0, got - 1)
            for job_id, our in c.live.items():
                j = jobs.get(job_id)
                if j is None or j["status"] not in FINAL_OURS or j["status"] not in c.requested.get(job_id, ()):
                    continue
                due += 1
                finals = [n for n in rows_by_job.get(our, []) if n["subject"].startswith(f"[qjm] {j['status']} ")]
                missing_rows += len(finals) == 0
                extra_rows += max(0, len(finals) - 1)

    latencies = [s for _, s, _ in stats.samples]
    windows: dict[int, list[float]] = defaultdict(list)
    op_windows: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t, s, op in stats.samples:
        windows[int(t // window)].append(s * 1000)
        op_windows[op][int(t // window)].append(s * 1000)
    complete = [k for k in sorted(windows) if (k + 1) * window <= traffic_s + 0.5] or sorted(windows)
    p99s = {f"w{k}": round(percentile(windows[k], 99), 1) for k in complete}
    # Which requests drift: each kind's p99 per window (where the overall p99 comes from).
    op_p99s = {op: [round(percentile(w[k], 99), 1) if w.get(k) else None for k in complete] for op, w in sorted(op_windows.items())}
    first, last = p99s[f"w{complete[0]}"], p99s[f"w{complete[-1]}"]
    lost = lost_jobs + missing_rows + lost_mail
    duplicated = extra_rows + duplicated_mail
    print(f"soak accounting: lost: {lost}, duplicated: {duplicated} "
          f"(jobs {lost_jobs}, outbox rows {missing_rows}/{extra_rows}, mails {lost_mail}/{duplicated_mail})", flush=True)
    return {
        "seconds": round(traffic_s, 1),
        "clients": len(clients),
        "requests": len(stats.samples),
        "requests_by_op": dict(stats.by_op),
        "errors": len(stats.errors),
        "error_samples": stats.errors[:5],
        "rps": round(len(stats.samples) / traffic_s, 1),
        "p50_ms": round(percentile([x * 1000 for x in latencies], 50), 1),
        "p99_ms": round(percentile([x * 1000 for x in latencies], 99), 1),
        "window_s": round(window, 1),
        "p99_ms_per_window": p99s,
        "p99_drift_last_over_first": round(last / first, 2) if first else None,
        "p99_ms_per_window_by_op": op_p99s,
        "server_rss_mb_start": rss[0][1],
        "server_rss_mb_end": rss[-1][1],
        "server_rss_growth_mb": round(rss[-1][1] - rss[0][1], 1),
        "server_rss_mb_per_window": [r for _, r in rss],
        "watcher_process_rss_mb_per_window": watcher_rss,  # 0: the watcher runs in the server's process
        "settled": settled,
        "settle_s": round(settle_s, 1),
        "accounting": {
            "jobs_registered": registered,
            "jobs_deleted": deleted,
            "jobs_lost": lost_jobs,
            "deleted_jobs_still_listed": ghost_jobs,
            "due_final_notifications": due,
            "due_without_outbox_row": missing_rows,
            "due_with_extra_rows": extra_rows,
            "job_mails_delivered": sum(delivered.values()),
            "outbox_rows_not_delivered": lost_mail,
            "mails_delivered_twice_or_more": duplicated_mail,
            "lost": lost,
            "duplicated": duplicated,
        },
    }


def _crn(n: int) -> str:
    from tests.fakes.ibm_api import make_crn

    return make_crn(n)


def run(args: argparse.Namespace) -> dict[str, Any]:
    baseline = getattr(args, "baseline", "")
    if not baseline:
        return _run(args)
    from .common import run_on_tree

    before = run_on_tree("soak", args, Path(baseline).resolve())
    now = _run(args)
    return {"this_tree": now, "baseline": before}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fakes.ibm_api import FakeIBM
    from tests.fixtures.process import QJMProcess, qjm_env
    from tests.fixtures.smtp import SMTPTestServer

    from .fake_process import RemoteFake

    with tempfile.TemporaryDirectory(prefix="qjm-bench-soak-") as tmp:
        d = Path(tmp)
        # In its own process by default, as in the watcher benchmarks: in this process the fake's
        # handler threads (encoding every pending job of every listing) share the GIL with the
        # clients whose clock measures the server's latency.
        fake: Any = RemoteFake() if getattr(args, "soak_fake", "process") == "process" else FakeIBM()
        fake.start()
        smtp = SMTPTestServer(d, mode="none")
        smtp.start()
        proc: QJMProcess | None = None
        try:
            env = qjm_env(d, ibm_iam_url=fake.base, ibm_api_url=fake.base + "/api/v1", require_verified_email="false",
                          poll_interval=args.soak_poll_interval, mail_rate_per_minute=100_000, jwt_lifetime=3600,
                          **smtp.settings())
            if getattr(args, "soak_watcher", ""):
                env["QJM_WATCHER"] = args.soak_watcher  # a baseline tree without the setting ignores it
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
            proc = QJMProcess(data_dir=d, env=env, extra_args=["--ServerApp.log_level=WARN"])
            proc.start()
            assert proc.proc is not None
            result = asyncio.run(_soak(proc.api, proc.proc.pid, fake, smtp, args))
            result["watcher"] = httpx.get(proc.api + "status", timeout=10).json().get("watcher", "inline")
            result["server_log_errors"] = proc.log().count("Traceback")
            result["sqlite_files_mb"] = {f.name: round(f.stat().st_size / 2**20, 1) for f in sorted(d.rglob("*.sqlite3*"))}
            return result
        finally:
            if proc is not None:
                proc.stop()
            smtp.stop()
            fake.stop()


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--soak-seconds", type=float, default=60.0, help="traffic duration (the issue: 600)")
    parser.add_argument("--soak-clients", type=int, default=4, help="client tasks, one account each")
    parser.add_argument("--soak-rate", type=float, default=10.0, help="max requests per second per client")
    parser.add_argument("--soak-poll-interval", type=float, default=0.5, help="watcher poll interval, seconds")
    parser.add_argument("--soak-seed", type=int, default=1234)
    parser.add_argument("--soak-watcher", choices=("", "process", "inline"), default="",
                        help="where the server's watcher runs: its default for jupyter qjm (a child process), or as given")
    parser.add_argument("--soak-fake", choices=("process", "thread"), default="process",
                        help="the fake IBM API in its own process (default) or in the benchmark's, as before")


if __name__ == "__main__":  # `python -m bench.soak`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "soak", *sys.argv[1:]]))
