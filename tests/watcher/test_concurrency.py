"""The IBM call limit (watcher/concurrency.py): sized by Little's law, clamped, and a fair semaphore.

A manual clock drives the sizing; the semaphore runs on the real event loop. The poller
over the fake IBM API at a real latency is tested in test_poller.py."""

from __future__ import annotations

import asyncio

import pytest

from qjm_jupyter_server.watcher.concurrency import CallLimit


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def sized(latency: float, units: int, interval: float, cap: int = 64, floor: int = 8) -> CallLimit:
    limit = CallLimit(cap, floor=floor, clock=Clock())
    limit.plan(units, interval)
    await limit.acquire()
    limit.release(latency)
    return limit


@pytest.mark.parametrize(
    ("latency", "units", "interval", "expected"),
    [
        (0.005, 1000, 2.0, 8),  # 500 calls/s x 5 ms x 2 = 5: the floor
        (0.05, 1000, 2.0, 50),  # 500 x 0.05 x 2
        (0.2, 1000, 2.0, 64),  # 200 wanted: the cap
        (0.2, 1000, 60.0, 8),  # the default interval: 17 calls/s need few
        (0.2, 10_000, 60.0, 64),
    ],
)
async def test_the_limit_is_littles_law_clamped(latency: float, units: int, interval: float, expected: int) -> None:
    limit = await sized(latency, units, interval)
    assert limit.limit == expected


async def test_without_a_latency_or_work_the_limit_is_the_floor() -> None:
    limit = CallLimit(64, floor=8, clock=Clock())
    assert limit.limit == 8
    limit.plan(1000, 1.0)
    assert limit.limit == 8  # no call measured yet
    assert CallLimit(4, floor=8).limit == 4  # a cap below the floor wins


async def test_calls_per_unit_and_the_window_count() -> None:
    clock = Clock()
    limit = CallLimit(1000, floor=1, clock=clock)
    limit.plan(100, 1.0)
    for _ in range(300):  # three calls per unit (IAM, listing, a get)
        await limit.acquire()
        limit.release(0.1)
    assert limit.limit == 60  # 100 units/s x 3 calls x 0.1 s x 2
    clock.t += 1.5  # the units fell out of the interval and none came due since
    limit.plan(0, 1.0)
    assert limit.limit == 1


async def test_latency_is_the_shortest_call_of_the_last_windows() -> None:
    clock = Clock()
    limit = CallLimit(64, floor=8, clock=clock)
    limit.plan(1000, 2.0)
    for seconds in (0.05, 0.4, 0.9):  # queueing behind our own calls does not raise it
        await limit.acquire()
        limit.release(seconds)
    assert limit.latency == 0.05 and limit.limit == 50
    clock.t += 2.5  # a new window: the last one's minimum still counts
    await limit.acquire()
    limit.release(0.2)
    assert limit.latency == 0.05
    clock.t += 2.5  # two windows on: only calls as slow as 0.2 s and 0.3 s remain
    await limit.acquire()
    limit.release(0.3)
    assert limit.latency == 0.2


async def test_never_more_in_flight_than_the_limit_and_waiters_wake_when_it_grows() -> None:
    limit = CallLimit(16, floor=2, clock=Clock())
    in_flight = 0
    peak = 0
    gate = asyncio.Event()

    async def call() -> None:
        nonlocal in_flight, peak
        await limit.acquire()
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        limit.release(0.1)

    tasks = [asyncio.create_task(call()) for _ in range(40)]
    await asyncio.sleep(0.01)
    assert in_flight == 2 and limit.in_flight == 2  # the floor
    limit.latency = 0.1
    limit.plan(40, 1.0)  # 40 calls/s x 0.1 x 2 = 8
    await asyncio.sleep(0.01)
    assert in_flight == 8 and limit.limit == 8
    gate.set()
    await asyncio.gather(*tasks)
    assert peak <= limit.cap and limit.in_flight == 0 and limit.peak == peak


async def test_a_cancelled_waiter_gives_no_slot_away() -> None:
    limit = CallLimit(1, floor=1)
    await limit.acquire()
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release(0.01)
    assert limit.in_flight == 0
    await asyncio.wait_for(limit.acquire(), 1.0)  # the slot is free, not leaked to the cancelled waiter
    assert limit.in_flight == 1
