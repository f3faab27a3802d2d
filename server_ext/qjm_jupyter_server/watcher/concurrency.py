"""How many IBM calls may be in flight at once, sized to the work (Little's law).

Why adaptive: a fixed limit is wrong at one end or the other. At a 5 ms round trip a
handful of calls in flight drain a cycle of 1,000 units; at IBM's real latencies (100s of
ms) the same cycle needs ~100 in flight or it outlasts the poll interval. Little's law
gives the number: calls in flight = calls per second x latency. The poller says how many
units fell due (`plan`), every call reports how long it took (`release`), and the limit is

    ceil(units due per interval / interval x calls per unit x latency x HEADROOM)

clamped between a floor and the cap (the `ibm_concurrency` setting, which is also the
connection pool's size, so the limit never asks for more connections than are kept).
HEADROOM 2 aims to finish an interval's work in half of it, leaving room for bursts.

The latency is the shortest call of the last interval or two (as BBR takes its round-trip
time), not the mean: a mean counts the queueing that our own concurrency causes (a server
that slows under load, an event loop busy with the answers), so a limit sized on it fed
itself: more in flight, slower calls, a higher limit, until the cap.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

FLOOR = 8  # the old fixed limit: the low-load behaviour is unchanged
HEADROOM = 2.0


class CallLimit:
    """An asyncio semaphore whose size follows the work: `acquire`/`release(seconds)`."""

    def __init__(self, cap: int, *, floor: int = FLOOR, headroom: float = HEADROOM, clock: Callable[[], float] = time.monotonic) -> None:
        self.cap = max(1, cap)
        self.floor = max(1, min(floor, self.cap))
        self.headroom = headroom
        self.limit = self.floor
        self.in_flight = 0
        self.peak = 0  # most calls in flight so far: for tests and benchmarks
        self.latency: float | None = None  # the shortest call of the current and the last window, seconds
        self._window_start = 0.0
        self._window_min: float | None = None  # this window's shortest call
        self._last_min: float | None = None  # the previous window's
        self._clock = clock
        self._interval = 1.0
        self._units: deque[tuple[float, int]] = deque()  # (when, units) that fell due in the last interval
        self._units_due = 0
        self._units_total = 0
        self._calls_total = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    # -- sizing ----------------------------------------------------------------------------
    def plan(self, units: int, interval: float) -> None:
        """`units` poll units fell due now, each polled once per `interval` seconds."""
        now = self._clock()
        self._interval = max(0.001, interval)
        self._units.append((now, units))
        self._units_due += units
        self._units_total += units
        self._resize(now)

    def wanted(self) -> int:
        """The limit the current work and latency call for, before clamping."""
        if self.latency is None or not self._units_due:
            return self.floor
        per_unit = max(1.0, self._calls_total / self._units_total) if self._units_total else 1.0
        rate = self._units_due / self._interval * per_unit  # calls per second
        return math.ceil(rate * self.latency * self.headroom)

    def _resize(self, now: float) -> None:
        horizon = now - self._interval
        while self._units and self._units[0][0] < horizon:
            self._units_due -= self._units.popleft()[1]
        self.limit = min(self.cap, max(self.floor, self.wanted()))
        self._wake()

    # -- the semaphore -----------------------------------------------------------------------
    async def acquire(self) -> None:
        self._calls_total += 1
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back()  # a slot was handed over as we were cancelled
            else:
                self._waiters.remove(waiter)  # no stale waiter may hold back the fast path
            raise

    def release(self, seconds: float) -> None:
        """One call ended after `seconds`: its slot goes to the next waiter."""
        now = self._clock()
        sample = max(0.0, seconds)
        if now - self._window_start >= self._interval:
            self._window_start, self._last_min, self._window_min = now, self._window_min, None
        self._window_min = sample if self._window_min is None else min(self._window_min, sample)
        self.latency = self._window_min if self._last_min is None else min(self._window_min, self._last_min)
        self._give_back()
        self._resize(now)

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def _give_back(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                self._take()
                waiter.set_result(None)
