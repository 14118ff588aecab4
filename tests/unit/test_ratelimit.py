"""The pacer never lets more through than the rate (plus its small catch-up burst)."""

from __future__ import annotations

import asyncio

import pytest

from courier.ratelimit import TokenBucket, pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tokens_refill_at_the_rate_and_cap_at_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock)
    assert bucket.wait_time() == 0
    bucket._tokens = 0
    assert bucket.wait_time() == pytest.approx(0.1)
    clock.now = 5.0  # a long idle: still only `burst` tokens
    assert bucket.wait_time() == 0 and bucket._tokens == 2


def test_acquire_paces_calls_over_real_time():
    bucket = TokenBucket(200, burst=1)

    async def take(n: int) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(n):
            await bucket.acquire()
        return loop.time() - start

    elapsed = asyncio.run(take(41))
    assert elapsed == pytest.approx(0.2, abs=0.08)  # 40 refills at 200/s


def test_the_catch_up_burst_stays_under_the_gateways_own_allowance():
    assert pacer(50).capacity == 10  # 0.2 s of catch-up, well under 50 per rolling second
    assert pacer(2).capacity == 1
    with pytest.raises(ValueError):
        TokenBucket(0)
