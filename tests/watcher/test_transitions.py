"""The one write path for status changes, with a real SQLite store: what the mail says
must be the job as it is stored after the change (not one step late)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjm_jupyter_server.domain import Job, Notification, User
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.store.sqlite import SQLiteStore
from qjm_jupyter_server.watcher.transitions import IBMFacts, apply_observation, report_local_status

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def store(tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "t.sqlite3"))
    jp_asyncio_loop.run_until_complete(s.open())
    try:
        yield s
    finally:
        jp_asyncio_loop.run_until_complete(s.close())


def user() -> User:
    return User(id="u_1", email="ada@example.org", password_hash="x", created_at=T0, updated_at=T0, is_verified=True)


async def watched(store: SQLiteStore, **kw: object) -> Job:
    job = Job(id="j_1", user_id="u_1", ibm_job_id="d5job", registered_at=T0, updated_at=T0,
              instance="crn:v1:bluemix:public:quantum-computing:us-east:a/1:i::", notify_status=["RUNNING", "DONE"])
    for k, v in kw.items():
        setattr(job, k, v)
    await store.create_user(user())
    [(stored, _)] = await store.register_jobs([job])
    return stored


async def mails(store: SQLiteStore) -> list[Notification]:
    return list(reversed(await store.list_notifications("u_1", 100, 0)))


async def test_running_mail_shows_running_in_its_timeline_and_the_queue_time(store: SQLiteStore) -> None:
    msgs = MessageFactory(Settings(public_url="http://qjm.test/"))
    job = await watched(store)
    job = await apply_observation(store, msgs, user(), job, "QUEUED", None, T0 + 1_000)
    assert job is not None
    job = await apply_observation(store, msgs, user(), job, "RUNNING", None, T0 + 95_000)
    [mail] = await mails(store)
    assert "(no status observed yet)" not in mail.text
    assert "2026-01-01 00:01:35 UTC  RUNNING" in mail.text  # the new status is in the timeline
    assert "Queued:   1 min 35 s" in mail.text  # registration -> RUNNING


async def test_done_mail_lists_every_status_and_both_times(store: SQLiteStore) -> None:
    msgs = MessageFactory(Settings(public_url="http://qjm.test/"))
    job = await watched(store)
    for status, at in (("QUEUED", 1_000), ("RUNNING", 60_000), ("DONE", 108_000)):
        job = await apply_observation(store, msgs, user(), job, status, None, T0 + at)
        assert job is not None
    running, done = await mails(store)
    assert "Ran:      48 s" in done.text  # RUNNING at 60 s, DONE at 108 s
    assert "Queued:   1 min 00 s" in done.text
    for line in ("00:00:01 UTC  QUEUED", "00:01:00 UTC  RUNNING", "00:01:48 UTC  DONE"):
        assert line in done.text
    assert "Ran:      48 s" in done.html.replace("<td>", " ").replace("</td>", "") or "48 s" in done.html


async def test_ibm_timestamps_and_usage_win_over_observations(store: SQLiteStore) -> None:
    """The poller sees a job only every poll interval; IBM's own times are exact."""
    msgs = MessageFactory(Settings(public_url="http://qjm.test/"))
    job = await watched(store, created=T0 - 30_000)
    job = await apply_observation(store, msgs, user(), job, "QUEUED", None, T0 + 1_000)
    assert job is not None
    facts = IBMFacts(backend="ibm_torino", started=T0 + 50_000, finished=T0 + 98_000, usage_seconds=12.0)
    job = await apply_observation(store, msgs, user(), job, "DONE", None, T0 + 120_000, facts=facts)
    assert job is not None and (job.started, job.finished, job.usage_seconds) == (T0 + 50_000, T0 + 98_000, 12.0)
    assert job.backend == "ibm_torino"
    [mail] = await mails(store)  # RUNNING + DONE in one mail: RUNNING was never observed
    assert "Queued:   1 min 20 s" in mail.text  # created (T0-30 s) -> IBM running (T0+50 s)
    assert "Ran:      48 s" in mail.text  # IBM running -> IBM finished
    assert "Usage:    12 s of quantum time" in mail.text
    assert "ibm_torino" in mail.subject


async def test_local_job_wording_and_backend(store: SQLiteStore) -> None:
    msgs = MessageFactory(Settings(public_url="http://qjm.test/"))
    job = await watched(store, source="local", channel="local", backend="aer_simulator", instance=None)
    job = await report_local_status(store, msgs, user(), job, "RUNNING", None, T0 + 2_000)
    job = await report_local_status(store, msgs, user(), job, "DONE", None, T0 + 7_000)
    running, done = await mails(store)
    for m in (running, done):
        assert "IBM Quantum job" not in m.text and "IBM Quantum job" not in m.html
        assert "local simulator job" in m.text
        assert "aer_simulator" in m.subject
        assert "Instance" not in m.text  # a local job has no IBM instance
    assert "Ran:      5 s" in done.text
