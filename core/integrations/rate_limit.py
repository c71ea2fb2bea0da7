"""A request budget shared by every caller of one upstream API."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOW_SECONDS = 60.0

# The maximum pause in seconds that one 429 reply can cause. Reset headers are upstream input,
# and a broken or hostile value (a reset time thousands of years away) would otherwise stop
# every caller for good. After a capped pause, a further 429 pauses again.
MAX_PAUSE_SECONDS = 300.0


class RateLimiter:
    """Allow at most `per_minute` acquisitions in any rolling 60-second window.

    Waiting callers are served in the order they called `acquire` (first come, first served),
    because only the caller at the head of the queue holds the lock while it sleeps.
    `pause_until` blocks every caller, which is how a 429 reset time from the upstream API
    reaches callers that did not see it.

    A pause longer than `max_pause_seconds` from now is cut to that length and logged.

    The counters `acquired`, `waits`, `waited_seconds` and `pauses` only grow. `on_wait`,
    when given, is called with the seconds each waiting caller waited.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
        max_pause_seconds: float = MAX_PAUSE_SECONDS,
    ) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError(f"per_minute must be a positive integer, got {per_minute!r}")
        if not math.isfinite(max_pause_seconds) or max_pause_seconds < 0:
            raise ValueError(
                f"max_pause_seconds must be a finite number of seconds, got {max_pause_seconds!r}"
            )

        self._per_minute = per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._on_wait = on_wait
        self._max_pause_seconds = max_pause_seconds
        self._granted_at: deque[float] = deque()
        self._paused_until = -math.inf
        self._lock = asyncio.Lock()

        self.acquired = 0
        self.waits = 0
        self.waited_seconds = 0.0
        self.pauses = 0

    @property
    def per_minute(self) -> int:
        """The number of acquisitions allowed in any 60 seconds."""
        return self._per_minute

    @property
    def paused_until(self) -> float | None:
        """The monotonic time until which every caller waits, or None when not paused."""
        if self._paused_until <= self._monotonic():
            return None
        return self._paused_until

    async def acquire(self) -> None:
        """Wait until one more request fits in the budget and the limiter is not paused."""
        async with self._lock:
            started = self._monotonic()
            now = started
            while True:
                ready_at = self._ready_at(now)
                if ready_at <= now:
                    break
                await self._sleep(ready_at - now)
                now = self._monotonic()

            self._granted_at.append(now)
            self.acquired += 1

            waited = now - started
            if waited > 0:
                self.waits += 1
                self.waited_seconds += waited
                if self._on_wait is not None:
                    self._on_wait(waited)

    def pause_until(self, resume_at: float) -> None:
        """Make every caller wait until the monotonic time `resume_at`.

        A pause never shortens an earlier, longer one, and never ends more than
        `max_pause_seconds` from now.
        """
        now = self._monotonic()
        latest = now + self._max_pause_seconds
        if not resume_at <= latest:
            log.warning(
                "rate_limiter_pause_clamped",
                requested_seconds=round(resume_at - now, 3),
                max_pause_seconds=self._max_pause_seconds,
            )
            resume_at = latest
        if resume_at <= self._paused_until:
            return
        self._paused_until = resume_at
        self.pauses += 1
        log.info("rate_limiter_paused", resume_in_seconds=round(resume_at - now, 3))

    def pause_for(self, seconds: float) -> None:
        """Make every caller wait `seconds` from now."""
        self.pause_until(self._monotonic() + max(0.0, seconds))

    def _ready_at(self, now: float) -> float:
        while self._granted_at and self._granted_at[0] <= now - WINDOW_SECONDS:
            self._granted_at.popleft()

        ready_at = now
        if len(self._granted_at) >= self._per_minute:
            ready_at = self._granted_at[0] + WINDOW_SECONDS
        return max(ready_at, self._paused_until)
