"""RateLimiter: rolling-minute budget, first-come-first-served order, pauses and counters."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from core.integrations.rate_limit import MAX_PAUSE_SECONDS, RateLimiter
from tests.unit.integrations.helpers_fake_time import FakeTime


def make_limiter(per_minute: int, time: FakeTime, waits: list[float] | None = None) -> RateLimiter:
    on_wait = None if waits is None else waits.append
    return RateLimiter(per_minute, monotonic=time.monotonic, sleep=time.sleep, on_wait=on_wait)


async def test_budget_allows_per_minute_without_waiting() -> None:
    time = FakeTime()
    limiter = make_limiter(5, time)

    for _ in range(5):
        await limiter.acquire()

    assert time.sleeps == []
    assert limiter.acquired == 5
    assert limiter.waits == 0


async def test_next_acquire_waits_for_oldest_to_leave_window() -> None:
    time = FakeTime()
    waits: list[float] = []
    limiter = make_limiter(3, time, waits)
    start = time.monotonic()

    await limiter.acquire()
    time.advance(10)
    await limiter.acquire()
    await limiter.acquire()
    await limiter.acquire()

    assert time.monotonic() - start == pytest.approx(60)
    assert limiter.waits == 1
    assert limiter.waited_seconds == pytest.approx(50)
    assert waits == [pytest.approx(50)]


async def test_rolling_window_never_exceeds_budget() -> None:
    time = FakeTime()
    limiter = make_limiter(4, time)
    granted: list[float] = []

    for _ in range(20):
        await limiter.acquire()
        granted.append(time.monotonic())
        time.advance(1)

    for index, moment in enumerate(granted):
        in_window = [other for other in granted[index:] if other < moment + 60]
        assert len(in_window) <= 4


async def test_waiters_are_served_in_arrival_order() -> None:
    time = FakeTime()
    limiter = make_limiter(1, time)
    await limiter.acquire()
    order: list[int] = []

    async def caller(number: int) -> None:
        await limiter.acquire()
        order.append(number)

    tasks = []
    for number in range(6):
        tasks.append(asyncio.create_task(caller(number)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)

    assert order == [0, 1, 2, 3, 4, 5]
    assert limiter.waits == 6


async def test_pause_until_blocks_every_caller() -> None:
    time = FakeTime()
    limiter = make_limiter(100, time)
    resume_at = time.monotonic() + 30
    limiter.pause_until(resume_at)
    granted: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        granted.append(time.monotonic())

    await asyncio.gather(*(caller() for _ in range(3)))

    assert granted == [resume_at, resume_at, resume_at]
    assert limiter.pauses == 1
    assert limiter.paused_until is None


async def test_pause_extended_while_caller_waits() -> None:
    time = FakeTime()
    limiter = make_limiter(100, time)
    start = time.monotonic()
    limiter.pause_for(10)

    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.pause_for(40)
    await waiter

    assert time.monotonic() - start >= 40


async def test_shorter_pause_keeps_longer_one() -> None:
    time = FakeTime()
    limiter = make_limiter(10, time)
    limiter.pause_for(30)
    limiter.pause_for(5)

    assert limiter.paused_until == pytest.approx(time.monotonic() + 30)
    assert limiter.pauses == 1


async def test_cancelled_waiter_takes_no_slot() -> None:
    time = FakeTime()
    limiter = RateLimiter(1, monotonic=time.monotonic, sleep=asyncio.sleep)
    await limiter.acquire()

    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert limiter.acquired == 1
    time.advance(60)
    await limiter.acquire()
    assert limiter.acquired == 2


@pytest.mark.parametrize("seconds", [99_999_999_999_999.0, 1e9, float("inf"), float("nan")])
async def test_pause_capped_at_max(seconds: float) -> None:
    time = FakeTime()
    limiter = make_limiter(10, time)
    start = time.monotonic()

    with capture_logs() as logs:
        limiter.pause_until(start + seconds)

    assert limiter.paused_until == pytest.approx(start + MAX_PAUSE_SECONDS)
    events = [entry["event"] for entry in logs]
    assert events == ["rate_limiter_pause_clamped", "rate_limiter_paused"]
    await limiter.acquire()
    assert time.monotonic() - start == pytest.approx(MAX_PAUSE_SECONDS)


async def test_pause_cap_configurable() -> None:
    time = FakeTime()
    limiter = RateLimiter(10, monotonic=time.monotonic, sleep=time.sleep, max_pause_seconds=20.0)

    limiter.pause_for(3600)

    assert limiter.paused_until == pytest.approx(time.monotonic() + 20)


def test_pause_within_cap_not_logged_as_clamped() -> None:
    time = FakeTime()
    limiter = make_limiter(10, time)

    with capture_logs() as logs:
        limiter.pause_for(MAX_PAUSE_SECONDS)

    assert [entry["event"] for entry in logs] == ["rate_limiter_paused"]


@pytest.mark.parametrize("max_pause", [-1.0, float("inf"), float("nan")])
def test_invalid_pause_cap_rejected(max_pause: float) -> None:
    with pytest.raises(ValueError, match="max_pause_seconds"):
        RateLimiter(10, max_pause_seconds=max_pause)


@pytest.mark.parametrize("per_minute", [0, -1, True, 1.5])
def test_invalid_budget_rejected(per_minute: object) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(per_minute)  # type: ignore[arg-type]
