"""HealthService against SQLite and PostgreSQL, with working and failing probes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.config import Settings
from core.db import Database
from core.db.models import AccrualStatus, FaucetFlag, PayoutState, SettlementRun
from core.services.health import (
    BalanceProbe,
    FaucetHealth,
    HealthService,
    NodeProbe,
    SettlementRunSummary,
)
from tests.integration.queries.helpers_seed import (
    NOW,
    ODD_RAW,
    RAW_PER_BAN,
    FixedClock,
    add_accrual,
    add_payout,
    add_player,
)

NEXT_RUN = NOW + timedelta(minutes=20)


def fixed_balance(raw: int | None) -> BalanceProbe:
    async def probe() -> int | None:
        return raw

    return probe


async def node_up() -> bool:
    return True


async def node_down() -> bool:
    return False


async def raise_error() -> bool:
    raise ConnectionError("node refused the connection")


async def raise_on_balance() -> int | None:
    raise ConnectionError("node refused the connection")


async def hang() -> int | None:
    await asyncio.sleep(3600)
    return 0


def make_service(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    balance_probe: BalanceProbe | None = None,
    node_probe: NodeProbe = node_up,
    *,
    dry_run: bool = False,
) -> HealthService:
    integrations = settings.integrations.model_copy(update={"dry_run": dry_run})
    return HealthService(
        database,
        integrations,
        clock,
        balance_probe or fixed_balance(100 * RAW_PER_BAN),
        node_probe,
        probe_timeout_seconds=0.2,
    )


async def test_healthy_live_faucet(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    health = await make_service(database, settings, clock).health(NEXT_RUN)

    assert health.operator_balance_raw == 100 * RAW_PER_BAN
    assert health.floor_raw == 50 * RAW_PER_BAN
    assert health.node_reachable is True
    assert health.below_floor is False
    assert health.last_run is None
    assert health.next_settlement_at == NEXT_RUN
    assert health.paused is False
    assert health.dry_run is False
    assert health.checked_at == NOW
    assert health.healthy


async def test_liability_and_in_flight(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        await add_accrual(session, player, 3)
        await add_accrual(session, player, 2, status=AccrualStatus.HELD)
        submitted = await add_payout(session, player, 4 * ODD_RAW, state=PayoutState.SUBMITTED)
        await add_accrual(session, player, 4, payout=submitted)
        confirmed = await add_payout(session, player, 5 * ODD_RAW)
        await add_accrual(session, player, 5, payout=confirmed)

    health = await make_service(
        database, settings, clock, balance_probe=fixed_balance(55 * RAW_PER_BAN)
    ).health(NEXT_RUN)

    assert health.open_liability_raw == 7 * ODD_RAW
    assert health.held_liability_raw == 2 * ODD_RAW
    assert health.in_flight_raw == 4 * ODD_RAW
    assert health.available_raw == 55 * RAW_PER_BAN - 4 * ODD_RAW
    # 55 BAN less 8.4 BAN in flight is below the 50 BAN floor.
    assert health.below_floor is True
    assert not health.healthy


@pytest.mark.parametrize(
    ("balance_probe", "node_probe"),
    [
        (fixed_balance(None), node_down),
        (raise_on_balance, raise_error),
        (hang, node_down),
    ],
)
async def test_failing_probes_are_findings(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    balance_probe: BalanceProbe,
    node_probe: NodeProbe,
) -> None:
    health = await make_service(
        database, settings, clock, balance_probe=balance_probe, node_probe=node_probe
    ).health(None)

    assert health.operator_balance_raw is None
    assert health.available_raw is None
    assert health.below_floor is None
    assert health.node_reachable is False
    assert health.next_settlement_at is None
    assert not health.healthy


async def test_dry_run_needs_no_node(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    health = await make_service(
        database,
        settings,
        clock,
        balance_probe=fixed_balance(None),
        node_probe=node_down,
        dry_run=True,
    ).health(NEXT_RUN)

    assert health.dry_run is True
    assert health.healthy


async def test_latest_run_and_pause(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        session.add(
            SettlementRun(
                started_at=NOW - timedelta(hours=1),
                finished_at=NOW - timedelta(hours=1),
                outcome="completed",
                trigger="schedule",
                dry_run=False,
                payouts_created=4,
                paid_raw=ODD_RAW,
            )
        )
        session.add(
            SettlementRun(
                started_at=NOW - timedelta(minutes=20),
                finished_at=NOW - timedelta(minutes=19),
                outcome="skipped",
                skip_reason="Payouts are paused by an admin.",
                trigger="admin",
                dry_run=False,
                payouts_created=0,
                paid_raw=0,
            )
        )
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))
        session.add(FaucetFlag(key="payouts_paused_reason", value="node upgrade", updated_at=NOW))

    health = await make_service(database, settings, clock).health(NEXT_RUN)

    assert health.last_run == SettlementRunSummary(
        id=2,
        started_at=NOW - timedelta(minutes=20),
        finished_at=NOW - timedelta(minutes=19),
        outcome="skipped",
        skip_reason="Payouts are paused by an admin.",
        trigger="admin",
        dry_run=False,
        payouts_created=0,
        paid_raw=0,
    )
    assert health.paused is True
    assert health.paused_reason == "node upgrade"
    assert not health.healthy


def test_failed_last_run_is_unhealthy() -> None:
    run = SettlementRunSummary(1, NOW, NOW, "failed", "boom", "schedule", True, 0, 0)
    health = FaucetHealth(
        checked_at=NOW,
        operator_balance_raw=None,
        floor_raw=0,
        in_flight_raw=0,
        node_reachable=True,
        last_run=run,
        next_settlement_at=None,
        open_liability_raw=0,
        held_liability_raw=0,
        dry_run=True,
        paused=False,
    )

    assert not health.healthy
