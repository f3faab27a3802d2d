"""MongoDB-only behaviour: connection failures, database naming, two clients at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from qjm_jupyter_server.domain import Job
from qjm_jupyter_server.store import open_store
from qjm_jupyter_server.store.base import StoreUnavailable
from qjm_jupyter_server.store.mongo import DEFAULT_DATABASE, MongoStore

pytestmark = pytest.mark.mongo
T0 = 1_767_225_600_000


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def _with_db(url: str, name: str) -> str:
    base, _, params = url.partition("?")
    return f"{base.rstrip('/')}/{name}" + (f"?{params}" if params else "")


async def test_unreachable_server_raises_unavailable() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true", timeout_ms=300)
    try:
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.open()
        with pytest.raises(StoreUnavailable):
            await store.get_user("u1")
    finally:
        await store.close()


def test_database_name_from_argument_url_or_default() -> None:
    assert MongoStore("mongodb://127.0.0.1:1/fromurl", database="explicit").database_name == "explicit"
    assert MongoStore("mongodb://127.0.0.1:1/fromurl?directConnection=true").database_name == "fromurl"
    assert MongoStore("mongodb://127.0.0.1:1/").database_name == DEFAULT_DATABASE


@pytest.fixture
def two_stores(mongo_url: str, mongo_database: str, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[tuple[Any, Any]]:
    """Two stores with their own connection pools on one database: two servers sharing it."""
    a = open_store(_with_db(mongo_url, mongo_database))
    b = MongoStore(mongo_url, database=mongo_database)
    for s in (a, b):
        jp_asyncio_loop.run_until_complete(s.open())
    yield a, b
    for s in (a, b):
        jp_asyncio_loop.run_until_complete(s.close())


async def test_two_clients_register_the_same_job_once(two_stores: tuple[Any, Any]) -> None:
    a, b = two_stores
    jobs = [
        Job(id=f"j{n}", user_id="u1", ibm_job_id="same", registered_at=T0, updated_at=T0 + n, notify_status=[s])
        for n, s in enumerate(["DONE", "RUNNING", "ERROR", "QUEUED"])
    ]
    results = await asyncio.gather(*(s.register_jobs([j]) for s, j in zip([a, b, a, b], jobs)))
    flags = [created for [(_, created)] in results]
    assert flags.count(True) == 1
    stored = await b.get_job_by_ibm_id("u1", "same")
    assert stored is not None
    assert stored.notify_status == ["QUEUED", "RUNNING", "DONE", "ERROR"]  # nothing lost to a race


async def test_two_clients_claim_units_exactly_once(two_stores: tuple[Any, Any]) -> None:
    a, b = two_stores
    for i in range(10):
        await a.touch_poll_unit(f"u{i}", "crn:a", T0)
    batches = await asyncio.gather(*(s.claim_poll_units(f"w{n}", T0, 60_000, 3) for n, s in enumerate([a, b, a, b])))
    claimed = [u.key for batch in batches for u in batch]
    assert len(claimed) == len(set(claimed)) == 10
