"""Password hashing: bcrypt on a small pool of its own, with bounded work.

bcrypt is slow on purpose, so a burst of logins is a burst of CPU. The pool has one
worker fewer than the cores (the event loop keeps one), and the work waiting for it is
bounded twice: at most `queue` hashes wait server-wide, and one client may have at most
`per_client` logins in flight. Past either bound the answer is an immediate 503 or 429
with Retry-After, never a wait behind strangers' requests: a legitimate login during a
burst is then refused at once or served at once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import bcrypt

from .errors import Busy, Overloaded

log = logging.getLogger("qjm")
T = TypeVar("T")

RETRY_AFTER_S = 2


def _prehash(password: str) -> bytes:
    """SHA-256 then base64 (44 bytes): bcrypt sees every character of any password and
    never hits its 72-byte limit, which bcrypt 5 turns into an error."""
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


class PasswordHasher:
    """bcrypt hashes and checks with bounded waiting; see the module docstring."""

    def __init__(self, rounds: Callable[[], int], queue: Callable[[], int], per_client: Callable[[], int]) -> None:
        self._rounds, self._queue, self._per_client = rounds, queue, per_client
        self.workers = max(1, (os.cpu_count() or 2) - 1)
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0  # hashes queued or running
        self._in_flight: dict[str, int] = {}  # client -> logins in flight
        self._dummy_hash: tuple[int, bytes] | None = None

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qjm-bcrypt")
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """A client's hash: refused at once when the queue is full."""
        if self._pending >= self.workers + max(0, self._queue()):
            log.warning("qjm: %d password hashes waiting; refusing more for now", self._pending)
            raise Overloaded("the server is busy checking passwords; try again in a moment")
        self._pending += 1
        try:
            return await self._off_loop(fn, *args)
        finally:
            self._pending -= 1

    @asynccontextmanager
    async def client_slot(self, client: str) -> AsyncIterator[None]:
        """At most `per_client` logins of one client at a time (checked before any work)."""
        if self._in_flight.get(client, 0) >= max(1, self._per_client()):
            raise Busy("too many logins in flight from your address; try again in a moment", retry_after=RETRY_AFTER_S)
        self._in_flight[client] = self._in_flight.get(client, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[client] - 1
            if left:
                self._in_flight[client] = left
            else:
                del self._in_flight[client]

    async def hash(self, password: str) -> str:
        digest = await self._run(bcrypt.hashpw, _prehash(password), bcrypt.gensalt(self._rounds()))
        return digest.decode("ascii")

    async def check(self, password: str, password_hash: str | None) -> bool:
        """Constant work whether or not the account exists (a dummy hash stands in).
        An empty hash is an account without a password (its host authenticates it)."""
        target = await self._dummy() if not password_hash else password_hash.encode("ascii")
        try:
            ok = await self._run(bcrypt.checkpw, _prehash(password), target)
        except ValueError:  # a corrupt stored hash: refuse, don't 500
            log.error("qjm: a stored password hash is not a bcrypt hash")
            ok = False
        return ok and bool(password_hash)

    async def _dummy(self) -> bytes:
        rounds = self._rounds()
        if self._dummy_hash is None or self._dummy_hash[0] != rounds:
            # made once per cost setting, outside the bounded queue (it is ours, not a client's)
            value = await self._off_loop(bcrypt.hashpw, _prehash(secrets.token_urlsafe(16)), bcrypt.gensalt(rounds))
            self._dummy_hash = (rounds, value)
        return self._dummy_hash[1]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
