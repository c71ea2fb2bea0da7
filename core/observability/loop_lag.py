"""Measurement of asyncio event loop lag: how late the loop runs a timer that is due."""

from __future__ import annotations

import asyncio
from collections import deque

import structlog

from core.observability.metrics import Metrics

log = structlog.get_logger(__name__)


class RecentLag:
    """The latest lag samples, for a health or readiness check to read.

    Holds the last `size` samples, so with the default interval of 0.5 s and size 120 it covers
    about the last minute.
    """

    def __init__(self, size: int = 120) -> None:
        if size < 1:
            raise ValueError(f"invalid size {size}: expected at least 1")
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        """Record one lag sample."""
        self._samples.append(seconds)

    @property
    def max_seconds(self) -> float | None:
        """The largest lag among the samples held, or None before the first sample."""
        return max(self._samples) if self._samples else None

    @property
    def latest_seconds(self) -> float | None:
        """The most recent lag sample, or None before the first sample."""
        return self._samples[-1] if self._samples else None

    def __len__(self) -> int:
        return len(self._samples)


async def monitor_event_loop_lag(
    metrics: Metrics,
    *,
    stop: asyncio.Event,
    interval: float = 0.5,
    recent: RecentLag | None = None,
) -> None:
    """Measure event loop lag every `interval` seconds until `stop` is set or the task is cancelled.

    Each sample is how much later than `interval` the loop woke this coroutine, observed in
    `metrics.event_loop_lag_seconds` and, when given, added to `recent`. A blocking call on the
    loop shows up as lag of about its duration.
    """
    if interval <= 0:
        raise ValueError(f"invalid interval {interval}: expected a positive number of seconds")

    loop = asyncio.get_running_loop()
    log.info("event_loop_lag_monitor_started", interval_seconds=interval)
    try:
        while not stop.is_set():
            started = loop.time()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
            else:
                break

            # asyncio may run a timer up to its clock resolution early, which would give a
            # slightly negative lag.
            lag = max(0.0, loop.time() - started - interval)
            metrics.event_loop_lag_seconds.observe(lag)
            if recent is not None:
                recent.add(lag)
    finally:
        log.info("event_loop_lag_monitor_stopped")
