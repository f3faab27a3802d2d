"""The database stops taking writes while the server runs: read-only file, full disk.

Simulated the way the store's own tests do it (tests/store/test_sqlite.py), but seen
through the real server's HTTP API: `PRAGMA query_only` makes every write fail with
SQLITE_READONLY, and `PRAGMA max_page_count` capped at the current size makes the next
page allocation fail with SQLITE_FULL, exactly what a read-only mount or a full disk
do to the one connection the store writes through. What must hold: writes answer a
JSON 503 (never a 500), reads keep working, nothing half-written, the file passes
`PRAGMA integrity_check`, and once the disk is fine again everything works.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

UNLIMITED_PAGES = 1073741823


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def db_path(qjm_config: dict[str, Any]) -> Path:
    return Path(qjm_config["db_url"].removeprefix("sqlite:///"))


async def pragma(services: Any, statement: str) -> None:
    await services.store._call(lambda c: c.execute(statement))


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.request.method, str(r.request.url), r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    assert int(r.headers["Retry-After"]) > 0
    err = r.json()["error"]
    assert err["code"] == "unavailable"
    assert "internal error" not in err["message"]
    assert "/" not in err["message"]  # no server file paths in answers


async def test_read_only_database_answers_503_on_writes_and_keeps_reads(
    api: httpx.AsyncClient, make_user: Any, qjm_services: Any, qjm_config: dict[str, Any]
) -> None:
    user = await make_user()
    h = user.headers
    r = await api.post("jobs", headers=h, json={"jobs": [{"job_id": "ro-1", "source": "local", "notify_status": ["DONE"]}]})
    assert r.status_code == 201, r.text
    job = r.json()["jobs"][0]

    await pragma(qjm_services, "PRAGMA query_only = 1")
    try:
        assert_unavailable(await api.post("jobs", headers=h, json={"jobs": [{"job_id": "ro-2", "source": "local"}]}))
        assert_unavailable(await api.patch(f"jobs/{job['id']}", headers=h, json={"label": "renamed"}))
        assert_unavailable(await api.post(f"jobs/{job['id']}/status", headers=h, json={"status": "DONE"}))
        assert_unavailable(await api.delete(f"jobs/{job['id']}", headers=h))
        assert_unavailable(await api.patch("me", headers=h, json={"notify_default": ["DONE"]}))
        assert_unavailable(await api.post("auth/register", json={"email": "ro-new@example.org", "password": "correct horse battery"}))
        assert_unavailable(await api.post("auth/login", json={"email": user.email, "password": "wrong password here"}))

        # Reads still work, authenticated ones too.
        r = await api.get("jobs", headers=h)
        assert r.status_code == 200, r.text
        assert [(j["job_id"], j["label"], j["status"]) for j in r.json()["jobs"]] == [("ro-1", None, "INITIALIZING")]
        assert (await api.get(f"jobs/{job['id']}", headers=h)).status_code == 200
        assert (await api.get("me", headers=h)).status_code == 200
        assert (await api.get("status")).status_code == 200
    finally:
        await pragma(qjm_services, "PRAGMA query_only = 0")

    # Writable again: everything works, and nothing from the outage was half-applied.
    r = await api.post("jobs", headers=h, json={"jobs": [{"job_id": "ro-2", "source": "local"}]})
    assert r.status_code == 201, r.text
    r = await api.post(f"jobs/{job['id']}/status", headers=h, json={"status": "DONE"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "DONE"
    assert sorted(j["job_id"] for j in (await api.get("jobs", headers=h)).json()["jobs"]) == ["ro-1", "ro-2"]
    r = await api.post("auth/register", json={"email": "ro-new@example.org", "password": "correct horse battery"})
    assert r.status_code == 202, r.text
    assert integrity(db_path(qjm_config)) == "ok"


async def test_full_disk_answers_503_and_rolls_back(
    api: httpx.AsyncClient, make_user: Any, qjm_services: Any, qjm_config: dict[str, Any]
) -> None:
    user = await make_user()
    h = user.headers
    r = await api.post("jobs", headers=h, json={"jobs": [{"job_id": "full-0", "source": "local"}]})
    assert r.status_code == 201, r.text
    # Cap the file at its current size: the next page it needs is refused with SQLITE_FULL.
    pages = await qjm_services.store._call(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    await pragma(qjm_services, f"PRAGMA max_page_count = {pages}")
    big = {"jobs": [{"job_id": f"full-{i}", "source": "local", "label": "x" * 180, "group": "g" * 180} for i in range(1, 400)]}
    try:
        assert_unavailable(await api.post("jobs", headers=h, json=big))
        r = await api.get("jobs", headers=h, params={"limit": 500})
        assert r.status_code == 200, r.text
        assert [j["job_id"] for j in r.json()["jobs"]] == ["full-0"]  # the batch rolled back as a whole
    finally:
        await pragma(qjm_services, f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    r = await api.post("jobs", headers=h, json=big)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 399
    assert integrity(db_path(qjm_config)) == "ok"
