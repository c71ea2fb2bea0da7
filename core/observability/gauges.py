"""Refreshing the gauges that describe the faucet's state, on a timer.

Settlement sets the balance and liability gauges at the end of each run, which by default is
20 minutes apart, and nothing sets them before the first run after a start. `GaugeRefresher`
reads the same values from the database and the node on its own interval, together with the
age of the oldest unconfirmed payout, so the alert rules see current values.

This module reads the database, so `core.observability` does not import it; the process
wiring does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from core.clock import Clock
from core.db.models import Payout, PayoutState
from core.db.session import Database
from core.errors import Pay2SlayError
from core.observability.metrics import Metrics
from core.services.liability import load_liability

log = structlog.get_logger(__name__)

DEFAULT_REFRESH_INTERVAL = timedelta(seconds=30)

# Live payouts whose outcome is still open: claimed, signed or submitted, not yet confirmed.
UNCONFIRMED_PAYOUT_STATES = (PayoutState.PENDING, PayoutState.SIGNED, PayoutState.SUBMITTED)

BalanceProbe = Callable[[], Awaitable[int | None]]


async def oldest_unconfirmed_payout_at(db: Database) -> datetime | None:
    """Return when the oldest live payout that is not confirmed or failed was created."""
    async with db.read() as session:
        created_at: datetime | None = await session.scalar(
            select(func.min(Payout.created_at)).where(
                Payout.state.in_(UNCONFIRMED_PAYOUT_STATES), Payout.dry_run.is_(False)
            )
        )
    return created_at


class GaugeRefresher:
    """Sets the payout age, liability and operator balance gauges from their sources.

    `balance_probe` returns the operator account's confirmed balance in raw, or None when
    the process has no node or operator account to read it from. A failed reading leaves
    the gauge at its last value. Failures are logged when they start and when they stop,
    not on every refresh.
    """

    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        clock: Clock,
        balance_probe: BalanceProbe | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._balance_probe = balance_probe
        self._failing: set[str] = set()

    async def refresh(self) -> None:
        """Read every value once and set its gauge. A failed reading is logged, not raised."""
        await self._guarded("payouts", self._refresh_payout_age)
        await self._guarded("liability", self._refresh_liability)
        if self._balance_probe is not None:
            await self._guarded("operator_balance", self._refresh_balance)

    async def run_forever(self, stop: asyncio.Event, interval: timedelta) -> None:
        """Refresh now and then every `interval` until `stop` is set."""
        seconds = interval.total_seconds()
        if seconds <= 0:
            raise ValueError(f"invalid interval {interval}: expected a positive duration")

        log.info("gauge_refresh_started", interval_seconds=seconds)
        try:
            while not stop.is_set():
                await self.refresh()
                try:
                    await asyncio.wait_for(stop.wait(), timeout=seconds)
                except TimeoutError:
                    continue
        finally:
            log.info("gauge_refresh_stopped")

    async def _refresh_payout_age(self) -> None:
        created_at = await oldest_unconfirmed_payout_at(self._db)
        age_seconds = 0.0
        if created_at is not None:
            age_seconds = (self._clock() - created_at).total_seconds()
        self._metrics.set_oldest_unconfirmed_payout_age(age_seconds)

    async def _refresh_liability(self) -> None:
        async with self._db.read() as session:
            liability = await load_liability(session)
        self._metrics.set_open_liability_raw(liability.open_raw)
        self._metrics.set_held_liability_raw(liability.held_raw)

    async def _refresh_balance(self) -> None:
        assert self._balance_probe is not None
        balance_raw = await self._balance_probe()
        if balance_raw is not None:
            self._metrics.set_operator_balance_raw(balance_raw)

    async def _guarded(self, source: str, refresh: Callable[[], Awaitable[None]]) -> None:
        try:
            await refresh()
        except (Pay2SlayError, SQLAlchemyError, OSError) as error:
            # Node and database outages: OSError covers time-outs and refused connections.
            if source not in self._failing:
                self._failing.add(source)
                log.warning("gauge_refresh_failed", source=source, error_type=type(error).__name__)
            return
        except Exception:
            # A bug: logged with its traceback once, and the other gauges keep refreshing.
            if source not in self._failing:
                self._failing.add(source)
                log.exception("gauge_refresh_crashed", source=source)
            return
        if source in self._failing:
            self._failing.discard(source)
            log.info("gauge_refresh_recovered", source=source)
