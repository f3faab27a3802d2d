"""Store benchmark: the same operations on SQLite and on a MongoDB wire server.

    python -m bench.stores [--stores-jobs 1000] [--stores-mongo-jobs 200] [--stores-backends sqlite,mongo]
    python -m bench --only stores

Operations (each timed on its own, ops/s): register N jobs one call each and in one
batch, list every page of 50, one `cas_job` status write per job, lease N/5 poll units
10 at a time, enqueue N outbox rows then claim (100 at a time) and mark them sent.
Mongo is SecantusDB as a subprocess, started by the test fixture's own code
(`tests/fixtures/mongo.py`), or `QJM_TEST_MONGO_URL` when set (a real mongod). The
SecantusDB figures describe the stand-in, not MongoDB: it is a Python server, so the
ratio mongo/sqlite is an upper bound on the price of the wire protocol, not a forecast.
The Mongo leg runs a smaller job count by default (SecantusDB at 1,000 jobs takes
minutes); the ratio compares it with SQLite at that same count.
"""

from __future__ import annotations

import sys

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import ROOT  # noqa: F401 - puts the repo on sys.path

from qjm_jupyter_server.domain import Job, JobQuery, Notification, StatusEvent, User, new_id  # noqa: E402
from qjm_jupyter_server.store.base import Store  # noqa: E402

T0 = 1_767_225_600_000
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef:bench::"


class _TmpFactory:
    """The one method of pytest's tmp_path_factory the Mongo fixture uses."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=name, dir=self.root))
        return path


@contextmanager
def mongo_server(root: Path) -> Iterator[str]:
    """The session fixture's generator, driven by hand: start (or reuse) the server, stop it on exit."""
    from tests.fixtures import mongo

    gen = mongo.mongo_url.__wrapped__(_TmpFactory(root))  # type: ignore[attr-defined]
    url = next(gen)
    try:
        yield url
    finally:
        gen.close()  # runs the fixture's finally: SIGTERM, wait, kill


def _jobs(user_id: str, n: int, prefix: str) -> list[Job]:
    return [
        Job(id=new_id("j_"), user_id=user_id, ibm_job_id=f"{prefix}{i:05d}", registered_at=T0 + i, updated_at=T0 + i,
            instance=CRN, backend="ibm_bench", notify_status=["DONE", "ERROR"], label=f"job {i}")
        for i in range(n)
    ]


def _notes(n: int, tag: str) -> list[Notification]:
    return [
        Notification(id=new_id("n_"), dedupe_key=f"bench:{tag}:{i}", user_id="u-bench", kind="job_status",
                     to_addr="bench@example.org", subject=f"job {i} DONE", text="done", html="<p>done</p>", created_at=T0 + i)
        for i in range(n)
    ]


async def _timed(results: dict[str, Any], name: str, ops: int, fn: Callable[[], Awaitable[Any]]) -> Any:
    t0 = time.perf_counter()
    out = await fn()
    wall = time.perf_counter() - t0
    results[name] = {"ops": ops, "seconds": round(wall, 3), "ops_per_s": round(ops / wall, 1) if wall else None}
    return out


async def _bench_store(store: Store, n: int) -> dict[str, Any]:
    r: dict[str, Any] = {}
    await store.open()
    try:
        user = User(id=new_id("u_"), email=f"{secrets.token_hex(4)}@bench.test", password_hash="x", created_at=T0, updated_at=T0)
        await store.create_user(user)

        singles = _jobs(user.id, n, "one-")

        async def one_by_one() -> None:
            for job in singles:
                await store.register_jobs([job])

        await _timed(r, "register_one_by_one", n, one_by_one)
        batch = _jobs(user.id, n, "batch-")
        await _timed(r, "register_batch", n, lambda: store.register_jobs(batch))

        total = 2 * n
        pages = -(-total // 50)

        async def list_pages() -> int:
            seen = 0
            for p in range(pages):
                seen += len(await store.list_jobs(JobQuery(user_id=user.id, limit=50, offset=p * 50)))
            return seen

        seen = await _timed(r, "list_pages_of_50", pages, list_pages)
        r["list_pages_of_50"]["jobs_seen"] = seen

        stored = await store.list_jobs(JobQuery(user_id=user.id, limit=n, offset=0))

        async def cas_writes() -> int:
            won = 0
            for i, job in enumerate(stored):
                at = T0 + 10_000 + i
                new = await store.cas_job(job.id, job.version, {"status": "RUNNING", "updated_at": at, "last_poll_at": at},
                                          [StatusEvent("RUNNING", at)])
                won += new is not None
            return won

        won = await _timed(r, "cas_job", len(stored), cas_writes)
        r["cas_job"]["applied"] = won

        units = max(1, n // 5)
        for u in range(units):
            await store.touch_poll_unit(f"u{u:05d}", CRN, T0)

        async def claim_units() -> int:
            claimed = 0
            while batch_ := await store.claim_poll_units("bench-owner", T0 + 1, 60_000, 10):
                claimed += len(batch_)
            return claimed

        claimed = await _timed(r, "claim_poll_units", units, claim_units)
        r["claim_poll_units"]["claimed"] = claimed

        notes = _notes(n, secrets.token_hex(3))

        async def enqueue() -> int:
            inserted = 0
            for note in notes:
                inserted += await store.enqueue([note])
            return inserted

        await _timed(r, "enqueue_one_by_one", n, enqueue)

        async def claim_and_send() -> int:
            sent = 0
            now = T0 + 10_000_000
            while rows := await store.claim_outbox("bench-owner", now, 60_000, 100):
                for row in rows:
                    sent += await store.mark_sent(row.id, "bench-owner", now)
            return sent

        sent = await _timed(r, "claim_outbox_and_mark_sent", n, claim_and_send)
        r["claim_outbox_and_mark_sent"]["sent"] = sent
    finally:
        await store.close()
    return r


def run(args: argparse.Namespace) -> dict[str, Any]:
    baseline = getattr(args, "baseline", "")
    if not baseline:
        return _run(args)
    from .common import compare

    now, before = compare("stores", args, Path(baseline).resolve(), lambda: _run(args), getattr(args, "bench_rounds", 1))
    ratios = {
        backend: {op: round(v["ops_per_s"] / before[backend][op]["ops_per_s"], 2)
                  for op, v in now[backend].items() if before.get(backend, {}).get(op, {}).get("ops_per_s")}
        for backend in ("sqlite", "mongo") if backend in now and backend in before
    }
    return {"this_tree": now, "baseline": before, "this_over_baseline_ops_per_s": ratios}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    full = getattr(args, "full", False)
    n = getattr(args, "stores_jobs", None) or (10_000 if full else 1000)
    n_mongo = getattr(args, "stores_mongo_jobs", None) or (1000 if full else 200)
    backends = [b.strip() for b in (getattr(args, "stores_backends", None) or "sqlite,mongo").split(",") if b.strip()]
    out: dict[str, Any] = {"jobs": n}
    with tempfile.TemporaryDirectory(prefix="qjm-bench-stores-") as tmp:
        root = Path(tmp)
        if "sqlite" in backends:
            from qjm_jupyter_server.store.sqlite import SQLiteStore

            out["sqlite"] = asyncio.run(_bench_store(SQLiteStore(str(root / "bench.sqlite3")), n))
        if "mongo" in backends:
            from qjm_jupyter_server.store.mongo import MongoStore

            with mongo_server(root) as url:
                out["mongo_jobs"] = n_mongo
                out["mongo"] = asyncio.run(_bench_store(MongoStore(url, database=f"qjm_bench_{secrets.token_hex(3)}"), n_mongo))
            if "sqlite" in out:
                # Same job count on both sides: several operations slow down as collections grow.
                same = out["sqlite"] if n == n_mongo else asyncio.run(
                    _bench_store(SQLiteStore(str(root / "ratio.sqlite3")), n_mongo))
                out[f"sqlite_at_{n_mongo}"] = {op: v["ops_per_s"] for op, v in same.items()}
                out["ratio_mongo_over_sqlite_ops_per_s"] = {
                    op: round(out["mongo"][op]["ops_per_s"] / same[op]["ops_per_s"], 3)
                    for op in same
                    if same[op].get("ops_per_s") and out["mongo"].get(op, {}).get("ops_per_s")
                }
    return out


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--stores-jobs", type=int, default=None, help="jobs per backend (default 1000; --full: 10000)")
    parser.add_argument("--stores-mongo-jobs", type=int, default=None,
                        help="jobs on the Mongo leg (default 200; --full: 1000): SecantusDB is a slow Python stand-in")
    parser.add_argument("--stores-backends", default="sqlite,mongo", help="comma-separated: sqlite, mongo")


if __name__ == "__main__":  # `python -m bench.stores`: the shared runner, this benchmark only
    from bench.__main__ import main

    raise SystemExit(main(["--only", "stores", *sys.argv[1:]]))
