"""APScheduler jobs for settlement and confirmation on the bot's event loop.

Both jobs run with `max_instances=1` and `coalesce=True`, so a slow run is never overlapped
and missed runs collapse into one. The settlement lock keeps runs in other processes apart.
The confirmation job first runs at start-up, which is the start-up reconciliation.

APScheduler's asyncio executor cancels running jobs when it shuts down, and a cancelled send
could leave a payout between two states. Each job therefore runs its work in a task of its
own behind `asyncio.shield`, and `SettlementJobs.shutdown` asks the settlement to stop before
its next payout and waits for the work to finish, so every payout reaches a committed state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.clock import Clock, utc_now
from core.services.settlement import SCHEDULED_TRIGGER, SettlementService

log = structlog.get_logger(__name__)

SETTLEMENT_JOB_ID = "settlement"
CONFIRMATION_JOB_ID = "payout_confirmation"

# Blocks confirm within seconds on Banano, so a 30-second poll reports them promptly without
# loading the node.
DEFAULT_CONFIRMATION_INTERVAL = timedelta(seconds=30)


class SettlementJobs:
    """The settlement and confirmation jobs of one process, and their orderly shutdown."""

    def __init__(
        self,
        service: SettlementService,
        *,
        scheduler_minutes: int,
        confirmation_interval: timedelta = DEFAULT_CONFIRMATION_INTERVAL,
        clock: Clock = utc_now,
    ) -> None:
        if scheduler_minutes <= 0:
            raise ValueError("scheduler_minutes must be positive")
        if confirmation_interval <= timedelta(0):
            raise ValueError("confirmation_interval must be positive")
        self._service = service
        self._interval = timedelta(minutes=scheduler_minutes)
        self._confirmation_interval = confirmation_interval
        self._clock = clock
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def install(self, scheduler: AsyncIOScheduler) -> None:
        """Add both jobs to `scheduler` (before or after it starts)."""
        # A run that starts late is still worth doing as long as the next one is not due yet.
        misfire_grace = int(self._interval.total_seconds())
        scheduler.add_job(
            self.run_settlement,
            "interval",
            seconds=int(self._interval.total_seconds()),
            id=SETTLEMENT_JOB_ID,
            name="settlement",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=misfire_grace,
            replace_existing=True,
        )
        scheduler.add_job(
            self.run_confirmation,
            "interval",
            seconds=max(1, int(self._confirmation_interval.total_seconds())),
            id=CONFIRMATION_JOB_ID,
            name="payout confirmation",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(misfire_grace, 60),
            next_run_time=self._clock(),
            replace_existing=True,
        )
        log.info(
            "settlement_jobs_installed",
            settlement_seconds=int(self._interval.total_seconds()),
            confirmation_seconds=int(self._confirmation_interval.total_seconds()),
        )

    async def run_settlement(self) -> None:
        """Job body: one scheduled settlement run."""
        if self._stopping:
            return
        await self._shielded(self._service.run(SCHEDULED_TRIGGER))

    async def run_confirmation(self) -> None:
        """Job body: one reconciliation pass over unfinished payouts."""
        if self._stopping:
            return
        await self._shielded(self._service.confirm())

    async def _shielded(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The scheduler is shutting down; the task keeps running until `shutdown` waits
            # for it.
            log.info("settlement_job_detached")
            raise

    async def shutdown(self, scheduler: AsyncIOScheduler | None, wait_for: timedelta) -> bool:
        """Stop scheduling, let the payout in flight reach a committed state, and wait.

        Returns True when all work finished within `wait_for`. Work still running after it is
        left alone rather than cancelled; the reconciler settles its payout at the next start.
        """
        self._stopping = True
        self._service.request_stop()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

        pending = set(self._in_flight)
        if not pending:
            log.info("settlement_jobs_stopped", waited=False)
            return True
        log.info("settlement_jobs_stopping", in_flight=len(pending))
        _done, still_running = await asyncio.wait(pending, timeout=wait_for.total_seconds())
        if still_running:
            log.warning("settlement_jobs_stop_timed_out", in_flight=len(still_running))
            return False
        log.info("settlement_jobs_stopped", waited=True)
        return True
