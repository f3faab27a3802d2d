"""A token bucket on the injected clock: the sender's messages-per-minute ceiling.

Providers count messages per minute (Exchange Online: 30/min, SES sandbox: 1/s), so
the bucket holds at most one minute's worth and refills continuously. It runs on the
services' clock, so tests move time by hand instead of sleeping.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, per_minute: int, now_ms: int) -> None:
        self.capacity = max(1, int(per_minute))
        self.rate_per_ms = self.capacity / 60_000
        self.tokens = float(self.capacity)
        self.updated = now_ms

    def _refill(self, now_ms: int) -> None:
        elapsed = max(0, now_ms - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_ms)
        self.updated = max(self.updated, now_ms)

    def take(self, wanted: int, now_ms: int) -> int:
        """Grant up to `wanted` whole tokens (maybe 0)."""
        self._refill(now_ms)
        granted = max(0, min(int(wanted), int(self.tokens)))
        self.tokens -= granted
        return granted

    def give_back(self, n: int) -> None:
        """Return tokens that were granted but not used (fewer rows were due)."""
        if n > 0:
            self.tokens = min(self.capacity, self.tokens + n)
