"""Pacing calls to an outside service at a configured rate (an async token bucket).

The gateway counts what it admits per second; we never want to find the limit by hitting
it (each 429 is a wasted round trip and, on a real gateway, a warning on the account). The
bucket holds at most ``burst`` tokens and refills at ``rate_per_s``; each call takes one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate = rate_per_s
        self.capacity = max(1.0, burst)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def acquire(self) -> None:
        # One waiter at a time keeps the order fair and the arithmetic simple.
        async with self._lock:
            while (delay := self.wait_time()) > 0:
                await asyncio.sleep(delay)
            self._tokens -= 1


#: Seconds of sending a paced client may catch up after a stall (a GC pause, a ledger write):
#: a burst of ``rate x this`` tokens. A gateway that admits ``rate`` per rolling second (a
#: bucket of ``rate`` tokens) still never sees more than it allows.
CATCH_UP_S = 0.2


def pacer(rate_per_s: float) -> TokenBucket:
    """The limiter for a gateway that admits ``rate_per_s`` calls per second."""
    return TokenBucket(rate_per_s, burst=max(1.0, rate_per_s * CATCH_UP_S))


class Unlimited:
    """The no-op limiter when no rate is configured."""

    async def acquire(self) -> None:
        return None
