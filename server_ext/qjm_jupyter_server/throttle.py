"""One store-backed throttle: fixed windows counted in the database, so they hold across
restarts and across the processes sharing it.

Each attempt is ONE atomic check-and-count (`Store.throttle_hit` returns the count
including this attempt): the count goes up
before the work it guards, so attempts in flight at the same moment are counted exactly
like attempts made one after another (checking first and counting after the work let
200 concurrent wrong passwords all through).
"""

from __future__ import annotations

import hashlib

from .clock import Clock
from .domain import ThrottleState
from .errors import TooManyRequests
from .store import Store


def throttle_key(kind: str, *parts: str) -> str:
    """Keys without emails or addresses in clear in the database."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{kind}:{digest}"


class Throttle:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def take(self, key: str, limit: int, window_ms: int) -> ThrottleState | None:
        """Count one attempt; returns its state when within `limit` per window, None when spent."""
        state = await self.store.throttle_hit(key, self.clock.now_ms(), window_ms)
        return state if state.count <= limit else None

    async def take_or_raise(self, key: str, limit: int, window_ms: int, message: str = "too many attempts; try again later") -> ThrottleState:
        """`take`, raising TooManyRequests (with the seconds left in the window) when spent."""
        now = self.clock.now_ms()
        state = await self.store.throttle_hit(key, now, window_ms)
        if state.count > limit:
            raise TooManyRequests(message, retry_after=-(-(state.window_start + window_ms - now) // 1000))
        return state

    async def refund(self, state: ThrottleState) -> None:
        """Give back one attempt that turned out fine (a correct password), if its window still runs."""
        await self.store.throttle_refund(state.key, state.window_start)

    async def clear(self, key: str) -> None:
        await self.store.throttle_clear(key)
