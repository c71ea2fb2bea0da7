"""A controllable clock, monotonic timer and sleep for tests of retries and rate limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

START = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


class FakeTime:
    """Wall clock and monotonic timer that move only when a test sleeps or advances them.

    `sleep` records each requested delay and moves both clocks by it. It then yields once to
    the event loop so that other tasks can run, and no real time passes.
    """

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._monotonic = 10_000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)
