"""The `store` fixture: every contract test runs on SQLite (a tmp file) and on MongoDB.

pytest-jupyter runs `async def` tests on its own loop and has no async fixtures, so the
store is opened and closed with `jp_asyncio_loop.run_until_complete` on that same loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from qjm_jupyter_server.store.base import Store


def build_store(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Store:
    if kind == "sqlite":
        from qjm_jupyter_server.store.sqlite import SQLiteStore

        return SQLiteStore(str(tmp_path / "data" / "qjm.sqlite3"))
    from qjm_jupyter_server.store.mongo import MongoStore

    url = request.getfixturevalue("mongo_url")
    database = request.getfixturevalue("mongo_database")
    return MongoStore(url, database=database)


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store(request: pytest.FixtureRequest, tmp_path: Any, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[Store]:
    s = build_store(request.param, request, tmp_path)
    jp_asyncio_loop.run_until_complete(s.open())
    try:
        yield s
    finally:
        jp_asyncio_loop.run_until_complete(s.close())
