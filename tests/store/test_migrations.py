"""Schema versioning of the SQLite file (`PRAGMA user_version` + the MIGRATIONS list).

The v1 file is written here with raw SQL, the way a released version left it, so the
test keeps checking upgrades from v1 after later migrations are appended.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from qjm_jupyter_server.domain import JobQuery, StatusEvent
from qjm_jupyter_server.store.base import StoreUnavailable
from qjm_jupyter_server.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore

T0 = 1_767_225_600_000


def write_v1_file(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at, is_verified, token_version, notify_default)"
            " VALUES ('u1', 'old@example.org', 'h', ?, ?, 1, 3, '[\"DONE\"]')",
            (T0, T0),
        )
        conn.execute(
            "INSERT INTO jobs (id, user_id, ibm_job_id, registered_at, updated_at, channel, source, notify_status,"
            " \"group\", status, history, notified, watch_state, version)"
            " VALUES ('j1', 'u1', 'd1', ?, ?, 'ibm_quantum_platform', 'ibm', '[\"DONE\",\"ERROR\"]', 'g',"
            " 'RUNNING', '[{\"status\":\"RUNNING\",\"at\":1,\"reason\":null}]', '[]', 'active', 4)",
            (T0, T0 + 1),
        )
        conn.execute(
            "INSERT INTO outbox (id, dedupe_key, user_id, kind, to_addr, subject, text, html, created_at, state)"
            " VALUES ('n1', 'j1:DONE', 'u1', 'job_status', 'old@example.org', 's', 't', 'h', ?, 'pending')",
            (T0,),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_opening_a_v1_file_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    write_v1_file(path)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        u = await store.get_user_by_email("OLD@example.org")
        assert u is not None and (u.id, u.is_verified, u.token_version, u.notify_default) == ("u1", True, 3, ["DONE"])
        [job] = await store.list_jobs(JobQuery(user_id="u1"))
        assert (job.id, job.group, job.status, job.version) == ("j1", "g", "RUNNING", 4)
        assert job.history == [StatusEvent("RUNNING", 1)]
        assert job.notify_status == ["DONE", "ERROR"]
        assert await store.count_outbox("pending") == 1
        # and the upgraded file is fully usable
        assert await store.cas_job("j1", 4, {"status": "DONE"}) is not None
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


async def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    for _ in range(2):
        store = SQLiteStore(str(path))
        await store.open()  # a second CREATE TABLE would raise
        await store.close()


async def test_empty_existing_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    path.touch()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.count_users() == 0
    finally:
        await store.close()


async def test_a_newer_schema_is_refused_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "qjm.sqlite3"
    write_v1_file(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(str(path))
    with pytest.raises(StoreUnavailable, match="newer"):
        await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1
    finally:
        conn.close()
