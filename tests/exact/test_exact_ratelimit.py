"""DivisionRateLimiter on real Redis: atomic, shared across processes, corrected by headers."""

from __future__ import annotations

import asyncio

import pytest

from app.exact.errors import RateBudgetExhausted
from app.exact.ratelimit import DivisionRateLimiter

CLIENT = "3f1c9a52-0000-4000-8000-00000000c1d0"
DIV = 123456
MIN = 60_000
DAY = 86_400_000
# 2023-05-12 08:18:30.000 UTC: 30 s into a minute
NOW = 1_683_879_510_000
NEXT_MINUTE = 1_683_879_540_000  # GH#609's minutely reset sample
NEXT_MIDNIGHT = 1_683_936_000_000  # GH#609's daily reset sample


def headers(
    m_rem: int | None = None,
    m_reset: int | None = NEXT_MINUTE,
    d_rem: int | None = None,
    d_reset: int | None = NEXT_MIDNIGHT,
    m_limit: int = 60,
    d_limit: int = 5000,
) -> dict[str, str]:
    out: dict[str, str] = {}
    if m_rem is not None:
        out |= {
            "X-RateLimit-Minutely-Limit": str(m_limit),
            "X-RateLimit-Minutely-Remaining": str(m_rem),
            "X-RateLimit-Minutely-Reset": str(m_reset),
        }
    if d_rem is not None:
        out |= {
            "X-RateLimit-Limit": str(d_limit),
            "X-RateLimit-Remaining": str(d_rem),
            "X-RateLimit-Reset": str(d_reset),
        }
    return out


async def test_defaults_when_nothing_is_known(limiter):
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NOW)
    assert snap["known"] is False
    assert snap["minutely"] == {"limit": 60, "remaining": 60, "reset_ms": NEXT_MINUTE}
    assert snap["daily"] == {"limit": 5000, "remaining": 5000, "reset_ms": NEXT_MIDNIGHT}

    reservation = await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    assert (reservation.minutely_remaining, reservation.daily_remaining) == (59, 4999)
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NOW)
    assert snap["known"] is True
    assert snap["minutely"]["remaining"] == 59 and snap["daily"]["remaining"] == 4999


async def test_100_concurrent_acquires_across_connections_grant_exactly_60(redis_connections):
    limiters = [DivisionRateLimiter(redis_connections()) for _ in range(4)]
    granted = 0
    refusals: list[RateBudgetExhausted] = []

    async def worker(limiter: DivisionRateLimiter, n: int) -> None:
        nonlocal granted
        for _ in range(n):
            try:
                await limiter.acquire(CLIENT, DIV, now_ms=NOW)
                granted += 1
            except RateBudgetExhausted as exc:
                refusals.append(exc)

    # 10 coroutines, 10 acquires each, spread over 4 connections ("processes")
    await asyncio.gather(*(worker(limiters[i % 4], 10) for i in range(10)))

    assert granted == 60
    assert len(refusals) == 40
    assert {r.retry_at_ms for r in refusals} == {NEXT_MINUTE}
    assert all(r.retryable and r.window == "minutely" for r in refusals)
    snap = await limiters[0].snapshot(CLIENT, DIV, now_ms=NOW)
    assert snap["minutely"]["remaining"] == 0
    assert snap["daily"]["remaining"] == 5000 - 60


async def test_refill_after_the_minute_reset(limiter):
    for _ in range(60):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    with pytest.raises(RateBudgetExhausted) as caught:
        await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE - 1)
    assert caught.value.retry_at_ms == NEXT_MINUTE

    reservation = await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE)
    assert reservation.minutely_remaining == 59
    assert reservation.daily_remaining == 5000 - 61  # the day is not refilled


async def test_second_instance_sees_the_same_budget(limiter, redis_connections):
    other = DivisionRateLimiter(redis_connections())
    for _ in range(59):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    await other.acquire(CLIENT, DIV, now_ms=NOW)  # the 60th
    with pytest.raises(RateBudgetExhausted):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    with pytest.raises(RateBudgetExhausted):
        await other.acquire(CLIENT, DIV, now_ms=NOW)
    # another division has its own budget
    await other.acquire(CLIENT, DIV + 1, now_ms=NOW)


async def test_headers_lower_remaining_in_the_same_window(limiter):
    await limiter.acquire(CLIENT, DIV, now_ms=NOW)  # local: 59 / 4999
    # other apps' processes (or earlier calls) used more than we know of
    await limiter.observe(CLIENT, DIV, headers(m_rem=20, d_rem=1200), now_ms=NOW + 10)
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NOW + 10)
    assert snap["minutely"]["remaining"] == 20
    assert snap["daily"] == {"limit": 5000, "remaining": 1200, "reset_ms": NEXT_MIDNIGHT}


async def test_headers_never_raise_remaining_in_the_same_window(limiter):
    for _ in range(10):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)  # local: 50
    # a late response, sent before most of our reservations, still says 58
    await limiter.observe(CLIENT, DIV, headers(m_rem=58, d_rem=4998), now_ms=NOW + 10)
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NOW + 10)
    assert snap["minutely"]["remaining"] == 50
    assert snap["daily"]["remaining"] == 4990


async def test_headers_of_a_newer_window_are_taken_as_truth(limiter):
    for _ in range(60):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    later = NEXT_MINUTE + 5_000
    await limiter.observe(
        CLIENT, DIV, headers(m_rem=95, m_reset=NEXT_MINUTE + MIN, m_limit=100), now_ms=later
    )
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=later)
    assert snap["minutely"] == {"limit": 100, "remaining": 95, "reset_ms": NEXT_MINUTE + MIN}
    # the learned limit is used for the refill of the following window
    reservation = await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE + MIN)
    assert reservation.minutely_remaining == 99


async def test_headers_of_an_older_window_are_ignored(limiter):
    await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE + 1)  # window ends NEXT_MINUTE + MIN
    await limiter.observe(CLIENT, DIV, headers(m_rem=3, m_reset=NEXT_MINUTE), now_ms=NEXT_MINUTE + 2)
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NEXT_MINUTE + 2)
    assert snap["minutely"]["remaining"] == 59


async def test_daily_limit_from_headers_is_learned(limiter):
    await limiter.observe(CLIENT, DIV, headers(d_rem=8000, d_limit=9000), now_ms=NOW)
    reservation = await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    assert reservation.daily_remaining == 7999
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NEXT_MIDNIGHT + 1)
    assert snap["daily"] == {"limit": 9000, "remaining": 9000, "reset_ms": NEXT_MIDNIGHT + DAY}


async def test_daily_exhaustion_defers_to_the_daily_reset(limiter):
    await limiter.observe(CLIENT, DIV, headers(m_rem=40, d_rem=0), now_ms=NOW)
    with pytest.raises(RateBudgetExhausted) as caught:
        await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    assert caught.value.retry_at_ms == NEXT_MIDNIGHT
    assert caught.value.window == "daily"


async def test_429_with_minutely_headers(limiter):
    await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    # while the minute is exhausted Exact sends only the minutely headers
    retry_at = await limiter.on_429(CLIENT, DIV, headers(m_rem=0), now_ms=NOW + 1)
    assert retry_at == NEXT_MINUTE
    with pytest.raises(RateBudgetExhausted) as caught:
        await limiter.acquire(CLIENT, DIV, now_ms=NOW + 2)
    assert caught.value.retry_at_ms == NEXT_MINUTE
    snap = await limiter.snapshot(CLIENT, DIV, now_ms=NOW + 2)
    assert snap["minutely"]["remaining"] == 0
    assert snap["daily"]["remaining"] == 4999  # daily state untouched
    await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE)  # refilled after the reset


async def test_429_without_headers_waits_for_the_next_minute_boundary(limiter):
    retry_at = await limiter.on_429(CLIENT, DIV, {}, now_ms=NOW)
    assert retry_at == NEXT_MINUTE
    with pytest.raises(RateBudgetExhausted):
        await limiter.acquire(CLIENT, DIV, now_ms=NOW + 100)


async def test_429_honours_a_longer_retry_after(limiter):
    retry_at = await limiter.on_429(CLIENT, DIV, {"Retry-After": "90"}, now_ms=NOW)
    assert retry_at == NOW + 90_000
    with pytest.raises(RateBudgetExhausted) as caught:
        await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE + 1)
    assert caught.value.retry_at_ms == NOW + 90_000


async def test_429_on_the_daily_limit(limiter):
    retry_at = await limiter.on_429(CLIENT, DIV, headers(m_rem=12, d_rem=0), now_ms=NOW)
    assert retry_at == NEXT_MIDNIGHT
    with pytest.raises(RateBudgetExhausted) as caught:
        await limiter.acquire(CLIENT, DIV, now_ms=NEXT_MINUTE + 1)
    assert caught.value.window == "daily"


async def test_key_expires_a_while_after_the_daily_reset(limiter, redis_client):
    await limiter.acquire(CLIENT, DIV, now_ms=NOW)
    ttl = await redis_client.pttl(DivisionRateLimiter.key(CLIENT, DIV))
    expected = NEXT_MIDNIGHT + 3_600_000 - NOW
    assert expected - 5_000 < ttl <= expected
    assert DivisionRateLimiter.key(CLIENT, DIV) == f"koppel:exact:ratelimit:{CLIENT}:{DIV}"
