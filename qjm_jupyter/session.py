"""The kernel's qjm session: the only state qjm keeps across cells, in one place.

- one `Login` per server URL, shared by every client in this kernel that was made
  without credentials of its own. So `client = JobManagerClient()` followed by
  `%qjm_login` is one session: the magic logs in the very login the client uses.
- the client the magics use (`%qjm_watch`, `%qjm_jobs`),
- the live tables `%qjm_jobs` opened,
- the one local-job watcher thread.

`%unload_ext qjm_jupyter` ends it all (`shutdown`). Nothing else in the package keeps
module-level mutable state. This module imports no other qjm module but `local`
(the watcher class), so every other module may import it without a circle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .local import Checkin, LocalWatcher, Report


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


@dataclass
class Login:
    """Who a client is on one server; shared by the clients of this kernel that talk to it."""

    url: str
    email: str | None = None
    password: str | None = None  # held in memory only, for a transparent re-login
    token: str | None = None


class Session:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._logins: dict[str, Login] = {}
        self._client: Any = None
        self._tables: list[Closable] = []
        self._watcher: LocalWatcher | None = None

    # -- logins -----------------------------------------------------------------------------------
    def login(self, url: str, seed: Callable[[], Login]) -> Login:
        """The kernel's login for `url`, made by `seed` the first time it is asked for."""
        with self._lock:
            login = self._logins.get(url)
            if login is None:
                login = self._logins[url] = seed()
            return login

    # -- the magics' client -------------------------------------------------------------------------
    def client(self, factory: Callable[[], C]) -> C:
        """The client the magics share, made by `factory` on first use."""
        with self._lock:
            if self._client is None:
                self._client = factory()
            return self._client  # type: ignore[no-any-return]

    def current_client(self) -> Any:
        return self._client

    def set_client(self, client: Closable | None) -> None:
        with self._lock:
            old, self._client = self._client, client
        if old is not None and old is not client:
            old.close()

    # -- tables -------------------------------------------------------------------------------------
    def add_table(self, table: Closable) -> None:
        with self._lock:
            self._tables.append(table)

    # -- local jobs ---------------------------------------------------------------------------------
    def watcher(self) -> LocalWatcher:
        """The kernel's one local-job watcher (its thread runs only while there are jobs)."""
        with self._lock:
            if self._watcher is None:
                self._watcher = LocalWatcher()
            return self._watcher

    def watch_local(self, report: Report, jobs: Iterable[tuple[Any, str]], checkin: Checkin | None = None) -> None:
        self.watcher().watch(report, jobs, checkin)

    def forget_local(self, job_ids: Iterable[str] | None) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.forget(job_ids)

    # -- end ------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close the tables, stop the watcher thread, close the magics' client, forget logins."""
        with self._lock:
            tables, self._tables = self._tables, []
            watcher = self._watcher
            self._logins.clear()
        for table in tables:
            try:
                table.close()
            except Exception:  # noqa: BLE001 - unloading must finish
                pass
        if watcher is not None:
            watcher.stop()
        self.set_client(None)


SESSION = Session()


def wait_local_jobs(timeout: float = 60.0) -> bool:
    """Block until every local job this kernel watches has reported its final status (True),
    or `timeout` passed (False). For notebooks that end right after a local job (CI)."""
    return SESSION.watcher().wait_idle(timeout)
