"""The faucet's health for admins: operator balance, node, settlement runs and what is owed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog
from sqlalchemy import select

from core.clock import Clock
from core.config.integrations import IntegrationsSettings
from core.db.models import SettlementRun
from core.db.session import Database
from core.services.faucet_flags import is_paused, pause_reason
from core.services.liability import load_liability
from core.services.payouts import in_flight_raw

log = structlog.get_logger(__name__)

BalanceProbe = Callable[[], Awaitable[int | None]]
NodeProbe = Callable[[], Awaitable[bool]]

DEFAULT_PROBE_TIMEOUT_SECONDS = 10.0

_ProbeResult = TypeVar("_ProbeResult")


@dataclass(frozen=True, slots=True)
class SettlementRunSummary:
    """One settlement run: `outcome` is running, completed, skipped or failed."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    skip_reason: str | None
    trigger: str
    dry_run: bool
    payouts_created: int
    paid_raw: int


@dataclass(frozen=True, slots=True)
class FaucetHealth:
    """The data behind `/faucet-health`; amounts in raw.

    `operator_balance_raw` is None when the balance could not be read. Settlement compares
    the balance less the payouts in flight with the floor, and so does `below_floor`.
    `open_liability_raw` includes open accruals claimed by payouts that are not confirmed.
    """

    checked_at: datetime
    operator_balance_raw: int | None
    floor_raw: int
    in_flight_raw: int
    node_reachable: bool
    last_run: SettlementRunSummary | None
    next_settlement_at: datetime | None
    open_liability_raw: int
    held_liability_raw: int
    dry_run: bool
    paused: bool
    # The reason given with the pause, when payouts are paused and one was given.
    paused_reason: str | None = None

    @property
    def available_raw(self) -> int | None:
        """Balance left for new payouts after those in flight, or None when unknown."""
        if self.operator_balance_raw is None:
            return None
        return self.operator_balance_raw - self.in_flight_raw

    @property
    def below_floor(self) -> bool | None:
        """Whether a settlement would skip for the balance floor, or None when unknown."""
        available = self.available_raw
        if available is None:
            return None
        return available < self.floor_raw

    @property
    def healthy(self) -> bool:
        """Whether nothing here needs an admin.

        Payouts must not be paused and the last run must not have failed. A live faucet also
        needs a reachable node and a known balance above the floor; a dry run calls neither.
        """
        if self.paused:
            return False
        if self.last_run is not None and self.last_run.outcome == "failed":
            return False
        if self.dry_run:
            return True
        return self.node_reachable and self.below_floor is False


class HealthService:
    """Gather the faucet's health from the database and two probes of the Banano node.

    A probe that raises an Exception or runs past `probe_timeout_seconds` counts as a failed
    reading (no balance, node not reachable), and the failure is logged instead of raised.
    """

    def __init__(
        self,
        db: Database,
        integration_settings: IntegrationsSettings,
        clock: Clock,
        balance_probe: BalanceProbe,
        node_probe: NodeProbe,
        *,
        probe_timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self._db = db
        self._floor_raw = integration_settings.min_operator_balance_raw
        self._dry_run = integration_settings.dry_run
        self._clock = clock
        self._balance_probe = balance_probe
        self._node_probe = node_probe
        self._probe_timeout = probe_timeout_seconds

    async def health(self, next_settlement_at: datetime | None) -> FaucetHealth:
        """Return the faucet's health now; `next_settlement_at` comes from the scheduler."""
        balance_raw, node_reachable = await asyncio.gather(
            self._probe("balance", self._balance_probe, None),
            self._probe("node", self._node_probe, False),
        )

        async with self._db.read() as session:
            liability = await load_liability(session)
            in_flight = await in_flight_raw(session)
            paused = await is_paused(session)
            reason = await pause_reason(session) if paused else None
            run = await session.scalar(
                select(SettlementRun)
                .order_by(SettlementRun.started_at.desc(), SettlementRun.id.desc())
                .limit(1)
            )
            last_run = None if run is None else _summary(run)

        return FaucetHealth(
            checked_at=self._clock(),
            operator_balance_raw=balance_raw,
            floor_raw=self._floor_raw,
            in_flight_raw=in_flight,
            node_reachable=bool(node_reachable),
            last_run=last_run,
            next_settlement_at=next_settlement_at,
            open_liability_raw=liability.open_raw,
            held_liability_raw=liability.held_raw,
            dry_run=self._dry_run,
            paused=paused,
            paused_reason=reason,
        )

    async def _probe(
        self,
        name: str,
        probe: Callable[[], Awaitable[_ProbeResult]],
        failed: _ProbeResult,
    ) -> _ProbeResult:
        try:
            return await asyncio.wait_for(probe(), timeout=self._probe_timeout)
        except TimeoutError:
            log.warning("health_probe_timed_out", probe=name, timeout_seconds=self._probe_timeout)
        except Exception as error:
            # Any failure of a probe is a health finding, not an error of the command.
            log.warning("health_probe_failed", probe=name, error_type=type(error).__name__)
        return failed


def _summary(run: SettlementRun) -> SettlementRunSummary:
    return SettlementRunSummary(
        id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,
        skip_reason=run.skip_reason,
        trigger=run.trigger,
        dry_run=run.dry_run,
        payouts_created=run.payouts_created,
        paid_raw=run.paid_raw,
    )
