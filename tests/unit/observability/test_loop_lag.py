from __future__ import annotations

import asyncio
import time

import pytest

from core.observability import Metrics, RecentLag, monitor_event_loop_lag

LAG_COUNT = "pay2slay_event_loop_lag_seconds_count"


def lag_count(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value(LAG_COUNT) or 0.0


async def wait_for_samples(metrics: Metrics, count: int) -> None:
    # A Prometheus sample offers no event to wait on, so this polls it.
    while lag_count(metrics) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_records_samples_and_stops() -> None:
    metrics = Metrics()
    recent = RecentLag()
    stop = asyncio.Event()

    task = asyncio.create_task(
        monitor_event_loop_lag(metrics, stop=stop, interval=0.01, recent=recent)
    )
    await asyncio.wait_for(wait_for_samples(metrics, 3), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)

    assert task.done()
    assert lag_count(metrics) >= 3
    assert len(recent) == lag_count(metrics)
    assert recent.max_seconds is not None
    assert recent.max_seconds >= 0.0


async def test_blocking_call_shows_as_lag() -> None:
    metrics = Metrics()
    recent = RecentLag()
    stop = asyncio.Event()

    task = asyncio.create_task(
        monitor_event_loop_lag(metrics, stop=stop, interval=0.01, recent=recent)
    )
    await asyncio.sleep(0)
    # Blocks the loop on purpose: the monitor's timer falls due during the sleep and can only
    # run after it, so at least one sample is at least about 0.2 - 0.01 seconds.
    time.sleep(0.2)  # noqa: ASYNC251
    await asyncio.wait_for(wait_for_samples(metrics, 1), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)

    assert recent.max_seconds is not None
    assert recent.max_seconds > 0.1


async def test_stop_already_set_returns() -> None:
    metrics = Metrics()
    stop = asyncio.Event()
    stop.set()

    await asyncio.wait_for(monitor_event_loop_lag(metrics, stop=stop), timeout=10)

    assert lag_count(metrics) == 0


async def test_cancellation_propagates() -> None:
    metrics = Metrics()
    stop = asyncio.Event()

    task = asyncio.create_task(monitor_event_loop_lag(metrics, stop=stop, interval=0.01))
    await asyncio.wait_for(wait_for_samples(metrics, 1), timeout=10)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_invalid_interval_rejected() -> None:
    with pytest.raises(ValueError, match="invalid interval 0"):
        await monitor_event_loop_lag(Metrics(), stop=asyncio.Event(), interval=0)


def test_recent_lag_window() -> None:
    recent = RecentLag(size=3)

    for seconds in (0.5, 0.1, 0.2, 0.3):
        recent.add(seconds)

    assert len(recent) == 3
    assert recent.max_seconds == 0.3
    assert recent.latest_seconds == 0.3


def test_recent_lag_empty() -> None:
    recent = RecentLag()

    assert recent.max_seconds is None
    assert recent.latest_seconds is None
    assert len(recent) == 0


def test_recent_lag_rejects_empty_size() -> None:
    with pytest.raises(ValueError, match="invalid size 0"):
        RecentLag(size=0)
