"""SQLite-only behaviour: file settings, failures of the disk, several processes on one file."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from qjm_jupyter_server.domain import Job, JobQuery, User
from qjm_jupyter_server.store.base import StoreUnavailable
from qjm_jupyter_server.store.sqlite import SCHEMA_VERSION, SQLiteStore

T0 = 1_767_225_600_000
NOBODY = 65534
JobQueryAll = JobQuery(user_id=None)


def user(n: int) -> User:
    return User(id=f"u{n}", email=f"u{n}@example.org", password_hash="h", created_at=T0 + n, updated_at=T0 + n)


def integrity_ok(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


async def test_new_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "qjm.sqlite3"  # parent dirs do not exist yet
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await store.create_user(user(1))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        settings = await store._call(
            lambda c: (
                c.execute("PRAGMA journal_mode").fetchone()[0],
                c.execute("PRAGMA busy_timeout").fetchone()[0],
                c.execute("PRAGMA synchronous").fetchone()[0],
                c.execute("PRAGMA user_version").fetchone()[0],
                c.isolation_level,
            )
        )
        assert settings == ("wal", 5000, 1, SCHEMA_VERSION, None)  # synchronous 1 = NORMAL
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_user("u1")  # closed


async def test_write_refused_midway_raises_unavailable_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    store = SQLiteStore(str(path))
    await store.open()
    await store.create_user(user(1))
    await store._call(lambda c: c.execute("PRAGMA query_only = 1"))  # SQLITE_READONLY on every write
    with pytest.raises(StoreUnavailable, match="read-only"):
        await store.create_user(user(2))
    with pytest.raises(StoreUnavailable, match="read-only"):
        await store.register_jobs([Job(id="j1", user_id="u1", ibm_job_id="x", registered_at=T0, updated_at=T0)])
    assert (await store.get_user("u1")) == user(1)  # reads still work
    await store._call(lambda c: c.execute("PRAGMA query_only = 0"))
    await store.create_user(user(2))  # and the store recovers
    assert await store.count_users() == 2
    await store.close()
    assert integrity_ok(path)


async def test_disk_full_raises_unavailable_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    store = SQLiteStore(str(path))
    await store.open()
    await store.create_user(user(0))
    # Cap the file at its current size: the next page allocation fails with SQLITE_FULL.
    await store._call(lambda c: c.execute("PRAGMA max_page_count = " + str(c.execute("PRAGMA page_count").fetchone()[0])))
    big = [
        Job(id=f"j{i}", user_id="u0", ibm_job_id=f"x{i}", registered_at=T0, updated_at=T0, label="x" * 2000)
        for i in range(50)
    ]
    with pytest.raises(StoreUnavailable, match="full"):
        await store.register_jobs(big)
    assert await store.count_jobs(JobQueryAll) == 0  # the whole transaction rolled back
    await store._call(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
    assert len(await store.register_jobs(big)) == 50
    await store.close()
    assert integrity_ok(path)


def _run_as_nobody(code: str) -> str:
    """Run `code` (an async function body's source) in a forked child that gave up root.

    As root, file modes do not stop writes; a forked child that switched to `nobody`
    meets the read-only file exactly as a user would (no exec needed, so the root-only
    interpreter install does not matter).
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        result = "child crashed"
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            scope: dict[str, object] = {}
            exec(code, globals(), scope)
            result = asyncio.run(scope["main"]())  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            os.write(w, str(result).encode())
            os.close(w)
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the read-only part as root->nobody; see the in-process variant")
def test_read_only_file_raises_unavailable_never_corrupts() -> None:
    # pytest's tmp_path sits under a 0700 directory `nobody` cannot enter.
    shared = Path(tempfile.mkdtemp(prefix="qjm-ro-"))
    try:
        _check_read_only_file(shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _check_read_only_file(shared: Path) -> None:
    os.chmod(shared, 0o777)  # the directory is writable (like /tmp); only the file is not
    path = shared / "qjm.sqlite3"

    async def seed() -> None:
        store = SQLiteStore(str(path))
        await store.open()
        await store.create_user(user(1))
        await store.close()

    asyncio.run(seed())
    os.chmod(path, 0o444)
    code = textwrap.dedent(
        f"""
        async def main():
            store = SQLiteStore({str(path)!r})
            try:
                await store.open()
                await store.create_user(user(2))
                return "no error"
            except StoreUnavailable as exc:
                return "unavailable: " + str(exc)
            finally:
                await store.close()
        """
    )
    outcome = _run_as_nobody(code)
    assert outcome.startswith("unavailable: "), outcome
    assert "read-only" in outcome
    assert str(path) in outcome
    assert integrity_ok(path)
    conn = sqlite3.connect(path)
    try:
        assert [r[0] for r in conn.execute("SELECT id FROM users")] == ["u1"]
    finally:
        conn.close()


async def test_not_a_database_raises_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    store = SQLiteStore(str(path))
    with pytest.raises(StoreUnavailable, match="not a usable SQLite database"):
        await store.open()
    await store.close()


CLAIMER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from qjm_jupyter_server.store.sqlite import SQLiteStore

    async def main(path, owner, go):
        store = SQLiteStore(path)
        await store.open()
        while not os.path.exists(go):
            time.sleep(0.005)
        claimed, empty = [], 0
        while empty < 3:
            units = await store.claim_poll_units(owner, 10**13, 600_000, 3)
            claimed += [u.key for u in units]
            empty = 0 if units else empty + 1
        await store.close()
        print(json.dumps(claimed))

    asyncio.run(main(*sys.argv[1:4]))
    """
)


def test_several_processes_claim_each_unit_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    keys = {f"u{i}|crn:a" for i in range(90)}

    async def seed() -> None:
        store = SQLiteStore(str(path))
        await store.open()
        for i in range(90):
            await store.touch_poll_unit(f"u{i}", "crn:a", T0 + i)
        await store.close()

    asyncio.run(seed())
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path), f"proc{n}", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    go.touch()
    claimed: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        claimed += json.loads(out)
    assert len(claimed) == len(set(claimed)) == len(keys)
    assert set(claimed) == keys



async def test_list_page_and_feed_poll_walk_an_index_not_the_users_jobs(tmp_path: Path) -> None:
    """The reads behind a first page (`GET jobs`: the page, its capped total) and behind the
    panel's 4 s feed poll (`updated_after`: the changes, their total, the tombstones) are
    recorded off the connection and `EXPLAIN QUERY PLAN`ned: each must SEARCH a user-keyed
    index in the order it returns (no full scan, no sort of the user's rows), so their cost
    follows the page or the changes, not the number of jobs the user has."""
    from qjm_jupyter_server.jobs import TOTAL_BEYOND_PAGE

    store = SQLiteStore(str(tmp_path / "qjm.sqlite3"))
    await store.open()
    try:
        await store.create_user(user(1))
        await store.register_jobs([Job(id=f"j{i:05d}", user_id="u1", ibm_job_id=f"d{i}", registered_at=T0 + i,
                                       updated_at=T0 + i) for i in range(300)])
        await store.delete_job("j00007", "u1", now=T0 + 500)
        statements: list[str] = []
        reader = store._reader_connection()
        reader.set_trace_callback(statements.append)
        first = JobQuery(user_id="u1", limit=50)
        feed = JobQuery(user_id="u1", updated_after=T0 + 290, limit=200)
        for query in (first, feed):
            await store.list_jobs(query)
            await store.count_jobs(query, cap=query.offset + query.limit + TOTAL_BEYOND_PAGE + 1)
        await store.list_deleted_jobs("u1", T0 + 290, 1001)
        reader.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 5, statements
        plans = {}
        for sql in selects:
            plan = [row[3] for row in reader.execute("EXPLAIN QUERY PLAN " + sql)]
            plans[sql] = plan
            assert not any(step.startswith("SCAN") and "subquery" not in step.lower() for step in plan), (sql, plan)
            assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
            assert any(step.startswith("SEARCH") and "(user_id=?" in step for step in plan), (sql, plan)
        feed_plans = [p for sql, p in plans.items() if "updated_at >" in sql]
        assert feed_plans and all(any("updated_at>?" in step for step in p) for p in feed_plans), plans
    finally:
        await store.close()
