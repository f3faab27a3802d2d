"""Helpers for the mail tests: a real SQLite outbox, a sender on a hand-moved clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qjm_jupyter_server.clock import ManualClock
from qjm_jupyter_server.domain import Job, Notification, StatusEvent, User
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.notify.sender import Sender
from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.store.sqlite import SQLiteStore

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def a_user(email: str = "ada@example.org", uid: str = "u_ada") -> User:
    return User(id=uid, email=email, password_hash="x", created_at=T0, updated_at=T0, is_verified=True)


def a_job(**changes: Any) -> Job:
    job = Job(
        id="j_1",
        user_id="u_ada",
        ibm_job_id="d5abc123",
        registered_at=T0,
        updated_at=T0,
        backend="ibm_fez",
        instance="crn:v1:bluemix:public:quantum-computing:us-east:a/1:2::",
        label="bell state",
        status="DONE",
        history=[
            StatusEvent("QUEUED", T0),
            StatusEvent("RUNNING", T0 + 125_000),
            StatusEvent("DONE", T0 + 125_000 + 3_723_000),
        ],
    )
    return dataclasses.replace(job, **changes)


@pytest.fixture
def outbox_store(tmp_path, jp_asyncio_loop) -> Iterator[SQLiteStore]:
    """Sync fixture on pytest-jupyter's loop (it runs async tests, not async fixtures)."""
    store = SQLiteStore(str(tmp_path / "outbox.sqlite3"))
    jp_asyncio_loop.run_until_complete(store.open())
    try:
        yield store
    finally:
        jp_asyncio_loop.run_until_complete(store.close())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_sender(outbox_store, clock) -> Callable[..., Sender]:
    def make(smtp: dict[str, Any] | None = None, owner: str = "test-worker", **settings: Any) -> Sender:
        values = {"public_url": "http://qjm.test/", "mail_concurrency": 1, "mail_rate_per_minute": 10_000, "smtp_timeout": 5.0}
        values.update(smtp or {})
        values.update(settings)
        return Sender(outbox_store, Settings(**values), clock, owner)

    return make


@pytest.fixture
def enqueue(outbox_store, clock) -> Callable[..., Any]:
    """Queue n test messages for distinct users (distinct dedupe keys); returns them."""
    factory = MessageFactory(Settings(public_url="http://qjm.test/"))

    async def put(n: int = 1, to: str = "user{i}@example.org") -> list[Notification]:
        rows = []
        for i in range(n):
            u = a_user(email=to.format(i=i), uid=f"u{i}")
            rows.append(factory.test_message(u, clock.now_ms() + i))
        assert await outbox_store.enqueue(rows) == n
        return rows

    return put
