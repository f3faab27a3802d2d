"""Real `jupyter qjm` processes: a crash mid-cycle, and three servers on one MongoDB.

What must hold: no status change is lost and no email is sent twice. Both come from
the design, not from luck: outbox rows are written before the fenced job write, each
row has a unique dedupe key, and units and outbox rows are leased.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.process import QJMProcess, qjm_env

DEADLINE = 90.0
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow


def wait_until(check: Callable[[], bool], what: str, procs: list[QJMProcess]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(p.log()[-1500:] for p in procs)
            pytest.fail(f"gave up waiting for {what}\n{logs}")
        time.sleep(0.1)


def account(proc: QJMProcess, key: str, instance: str) -> dict[str, str]:
    """Register and log in (verification is switched off for these servers)."""
    email = f"mp-{secrets.token_hex(4)}@example.org"
    r = httpx.post(proc.api + "auth/register", json={"email": email, "password": PASSWORD,
                                                     "ibm_quantum_token": key, "default_instance": instance}, timeout=20)
    assert r.status_code == 202, r.text
    r = httpx.post(proc.api + "auth/login", json={"email": email, "password": PASSWORD}, timeout=20)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "X-Email": email}


def jobs_of(proc: QJMProcess, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = httpx.get(proc.api + "jobs", params={"limit": 500}, headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    return {j["job_id"]: j for j in r.json()["jobs"]}


def job_mail(smtp: Any, email: str) -> list[EmailMessage]:
    return [m for m in smtp.messages if email in (m["To"] or "") and "Confirm your email" not in m["Subject"]]


def notifications(proc: QJMProcess, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(proc.api + "notifications", params={"limit": 500}, headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    return [n for n in r.json()["notifications"] if n["kind"] == "job_status"]


def settings_for(fake_ibm: Any, **extra: Any) -> dict[str, Any]:
    return {
        "ibm_iam_url": fake_ibm.base,
        "ibm_api_url": fake_ibm.api_url,
        "require_verified_email": "false",
        "poll_interval": "0.3",
        "lease_seconds": "2",
        **extra,
    }


def assert_one_mail_per_job(mails: list[EmailMessage], job_ids: list[str]) -> None:
    subjects = [m["Subject"] for m in mails]
    assert len(subjects) == len(set(subjects)), f"duplicate emails: {sorted(subjects)}"
    for job_id in job_ids:
        assert sum(1 for s in subjects if job_id in s) == 1, (job_id, subjects)


def test_killed_mid_cycle_loses_nothing_and_sends_no_duplicate(start_qjm: Any, fake_ibm: Any, smtp_server: Any, tmp_path: Path) -> None:
    n = 24
    data_dir = tmp_path / "crash"
    data_dir.mkdir()
    # Phase 1: mail off, so every email of the crash window waits in the outbox.
    # The poller in the server's own process, so SIGKILL stops it mid-cycle; a watcher child
    # would stop cleanly on its pipe's end instead (test_watcher_process.py kills the child).
    env = qjm_env(data_dir, **settings_for(fake_ibm, smtp_host="", watcher="inline"))
    first: QJMProcess = start_qjm(data_dir=data_dir, env=env)
    headers = account(first, fake_ibm.key(), fake_ibm.default_crn)
    ids = [f"crash-{i:02d}" for i in range(n)]
    for job_id in ids:
        fake_ibm.add_job(job_id, "Queued")
    r = httpx.post(first.api + "jobs", headers=headers, json={"jobs": [{"job_id": j, "notify_status": ["DONE"]} for j in ids]}, timeout=20)
    assert r.status_code == 201, r.text
    wait_until(lambda: all(j["status"] == "QUEUED" for j in jobs_of(first, headers).values()), "the first poll", [first])

    fake_ibm.latency = 0.05  # a cycle of n GETs now takes a while: room to die in the middle
    for job_id in ids:
        fake_ibm.set_status(job_id, "Completed")
    wait_until(lambda: any(j["status"] == "DONE" for j in jobs_of(first, headers).values()), "the first DONE", [first])
    first.kill()
    fake_ibm.latency = 0.0

    # Phase 2: same database and keys, mail on.
    env2 = {**env, **{f"QJM_{k.upper()}": str(v) for k, v in smtp_server.settings().items()}}
    second: QJMProcess = start_qjm(data_dir=data_dir, env=env2)
    wait_until(lambda: all(j["status"] == "DONE" for j in jobs_of(second, headers).values()), "every job DONE", [second])
    wait_until(lambda: all(x["state"] == "sent" for x in notifications(second, headers))
               and len(notifications(second, headers)) == n, "the outbox to drain", [second])
    rows = notifications(second, headers)
    assert len(rows) == n
    assert_one_mail_per_job(job_mail(smtp_server, headers["X-Email"]), ids)
    assert len(job_mail(smtp_server, headers["X-Email"])) == n


@pytest.mark.mongo
def test_three_servers_on_one_mongodb_send_each_mail_once(
    start_qjm: Any, fake_ibm: Any, smtp_server: Any, mongo_url: str, mongo_database: str
) -> None:
    base, _, query = mongo_url.partition("/?")
    db_url = f"{base}/{mongo_database}?{query}"
    settings = {**settings_for(fake_ibm, db_url=db_url), **smtp_server.settings()}
    token_keys = qjm_env(Path("/nonexistent"))["QJM_TOKEN_KEYS"]  # one key ring for all three
    procs: list[QJMProcess] = [start_qjm(token_keys=token_keys, **settings) for _ in range(3)]

    users = [account(procs[i], fake_ibm.key(), fake_ibm.default_crn) for i in range(3)]
    ids: dict[str, list[str]] = {}
    for u, headers in enumerate(users):
        ids[headers["X-Email"]] = [f"mp{u}-{i:02d}" for i in range(8)]
        for job_id in ids[headers["X-Email"]]:
            fake_ibm.add_job(job_id, "Queued")
        r = httpx.post(procs[u].api + "jobs", headers=headers, timeout=20,
                       json={"jobs": [{"job_id": j, "notify_status": ["RUNNING", "DONE"]} for j in ids[headers["X-Email"]]]})
        assert r.status_code == 201, r.text
    for u, headers in enumerate(users):
        wait_until(lambda h=headers: all(j["status"] == "QUEUED" for j in jobs_of(procs[0], h).values()), "the first poll", procs)
    for job_ids in ids.values():
        for job_id in job_ids:
            fake_ibm.set_status(job_id, "Completed")  # RUNNING skipped: one mail with both

    for headers in users:
        email = headers["X-Email"]
        wait_until(lambda h=headers: all(j["status"] == "DONE" for j in jobs_of(procs[2], h).values()), "every job DONE", procs)
        wait_until(lambda h=headers: len(notifications(procs[1], h)) == 8
                   and all(x["state"] == "sent" for x in notifications(procs[1], h)), "the outbox to drain", procs)
        mails = job_mail(smtp_server, email)
        assert len(mails) == 8
        assert_one_mail_per_job(mails, ids[email])


def test_two_servers_on_one_sqlite_file_send_each_group_milestone_once_per_channel(
    start_qjm: Any, fake_ibm: Any, receiver: Any, tmp_path: Path
) -> None:
    """Two `jupyter qjm` processes share one SQLite file and one key ring; both poll and
    both drain the outbox. A group of jobs runs and ends: each of the user's webhook
    channels gets each job's message and each group milestone exactly once."""
    shared = tmp_path / "shared"
    shared.mkdir()
    env = qjm_env(shared, **settings_for(fake_ibm, smtp_host="", channel_allowed_hosts="127.0.0.1"))
    procs = [start_qjm(data_dir=shared, env=env), start_qjm(data_dir=shared, env=env)]
    headers = account(procs[0], fake_ibm.key(), fake_ibm.default_crn)
    for path, statuses in (("/chat", ["RUNNING", "DONE", "ERROR"]), ("/phone", ["DONE", "ERROR"])):
        r = httpx.post(procs[1].api + "channels", headers=headers, timeout=20,
                       json={"url": f"json://{receiver.base}{path}", "notify_status": statuses})
        assert r.status_code == 201, r.text
    ids = [f"mpg-{i}" for i in range(6)]
    for job_id in ids:
        fake_ibm.add_job(job_id, "Queued")
    r = httpx.post(procs[0].api + "jobs", headers=headers, timeout=20, json={
        "jobs": [{"job_id": j, "notify_status": ["RUNNING", "DONE", "ERROR"], "group": "mp-sweep"} for j in ids]})
    assert r.status_code == 201, r.text
    wait_until(lambda: all(j["status"] == "QUEUED" for j in jobs_of(procs[1], headers).values()), "the first poll", procs)
    fake_ibm.set_status(ids[0], "Running")
    wait_until(lambda: any("first job running" in b["title"] for b in receiver.bodies("/chat")), "first running", procs)
    for job_id in ids[:-1]:
        fake_ibm.set_status(job_id, "Completed")
    fake_ibm.set_status(ids[-1], "Failed", reason="boom")

    def group_titles(path: str) -> list[str]:
        return [b["title"] for b in receiver.bodies(path) if "group mp-sweep" in b["title"]]

    wait_until(lambda: all("all 6" in " ".join(group_titles(p)) for p in ("/chat", "/phone")), "all final", procs)
    time.sleep(3)  # two more poll cycles and sender pauses: a duplicate would arrive now
    final = "[qjm] group mp-sweep: all 6 jobs finished (5 DONE, 1 ERROR)"
    assert group_titles("/chat") == ["[qjm] group mp-sweep: first job running", final]
    assert group_titles("/phone") == [final]
    job_titles = [b["title"] for b in receiver.bodies("/phone") if "group" not in b["title"]]
    assert len(job_titles) == len(set(job_titles)) == 6, job_titles
