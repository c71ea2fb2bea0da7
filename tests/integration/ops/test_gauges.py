"""The state gauges: payout age, liability and balance from their sources, and the mode gauges."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from bot.runtime import Runtime, open_services
from core.banano.rpc_errors import NodeUnavailableError
from core.banano.units import RAW_PER_BAN
from core.db.models import AccrualStatus, Payout, PayoutState
from core.db.session import Database
from core.observability.gauges import GaugeRefresher, oldest_unconfirmed_payout_at
from core.observability.metrics import Metrics
from tests.integration.settlement.helpers_world import RAW_PER_KILL, SeededPlayer, World
from tests.unit.cogs.helpers_cogs import FakeMembership, make_settings

# Two days after the players and accruals that `World` creates.
NOW = datetime(2026, 1, 3, tzinfo=UTC)

_payout_numbers = itertools.count(1)


def clock() -> datetime:
    return NOW


class BalanceSource:
    """A balance probe whose result, or error, a test sets."""

    def __init__(self, balance_raw: int | None = None) -> None:
        self.balance_raw = balance_raw
        self.error: Exception | None = None

    async def __call__(self) -> int | None:
        if self.error is not None:
            raise self.error
        return self.balance_raw


async def add_payout(
    db: Database, player: SeededPlayer, state: PayoutState, age: timedelta, *, dry_run: bool = False
) -> None:
    created_at = NOW - age
    async with db.write() as session:
        session.add(
            Payout(
                player_id=player.id,
                destination=player.address,
                amount_raw=RAW_PER_KILL,
                kills=1,
                state=state,
                dry_run=dry_run,
                idempotency_key=f"gauge-test-{next(_payout_numbers)}",
                created_at=created_at,
                updated_at=created_at,
            )
        )


def gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_no_payouts_age_is_zero(database: Database) -> None:
    metrics = Metrics(version="test")
    metrics.set_oldest_unconfirmed_payout_age(99.0)

    await GaugeRefresher(database, metrics, clock).refresh()

    assert await oldest_unconfirmed_payout_at(database) is None
    assert gauge(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 0
    assert gauge(metrics, "pay2slay_open_liability_ban") == 0


async def test_age_of_oldest_unconfirmed_payout(database: Database) -> None:
    world = World(database)
    player = await world.add_player()
    # Final states and dry-run payouts are older, and do not count.
    await add_payout(database, player, PayoutState.CONFIRMED, timedelta(hours=5))
    await add_payout(database, player, PayoutState.FAILED, timedelta(hours=4))
    await add_payout(database, player, PayoutState.DRY_RUN, timedelta(hours=6), dry_run=True)
    await add_payout(database, player, PayoutState.SUBMITTED, timedelta(hours=2))
    await add_payout(database, player, PayoutState.SIGNED, timedelta(hours=1))
    await add_payout(database, player, PayoutState.PENDING, timedelta(minutes=30))
    metrics = Metrics(version="test")

    await GaugeRefresher(database, metrics, clock).refresh()

    assert await oldest_unconfirmed_payout_at(database) == NOW - timedelta(hours=2)
    assert gauge(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 7200


async def test_liability_gauges(database: Database) -> None:
    world = World(database)
    player = await world.add_player()
    await world.add_accrual(player, 3)
    await world.add_accrual(player, 1, status=AccrualStatus.HELD)
    metrics = Metrics(version="test")

    await GaugeRefresher(database, metrics, clock).refresh()

    assert gauge(metrics, "pay2slay_open_liability_ban") == pytest.approx(6.3)
    assert gauge(metrics, "pay2slay_held_liability_ban") == pytest.approx(2.1)


async def test_balance_from_probe(database: Database) -> None:
    metrics = Metrics(version="test")
    source = BalanceSource(75 * RAW_PER_BAN)
    refresher = GaugeRefresher(database, metrics, clock, balance_probe=source)

    await refresher.refresh()
    assert gauge(metrics, "pay2slay_operator_balance_ban") == 75

    # A process without a node or operator account reads no balance and keeps the last one.
    source.balance_raw = None
    await refresher.refresh()
    assert gauge(metrics, "pay2slay_operator_balance_ban") == 75


async def test_failed_probe_logged_once(database: Database) -> None:
    metrics = Metrics(version="test")
    source = BalanceSource(75 * RAW_PER_BAN)
    refresher = GaugeRefresher(database, metrics, clock, balance_probe=source)
    await refresher.refresh()
    world = World(database)
    player = await world.add_player()
    await add_payout(database, player, PayoutState.SUBMITTED, timedelta(minutes=10))
    source.error = NodeUnavailableError()

    with structlog.testing.capture_logs() as logs:
        await refresher.refresh()
        await refresher.refresh()
        source.error = None
        source.balance_raw = 60 * RAW_PER_BAN
        await refresher.refresh()

    events = [entry["event"] for entry in logs]
    assert events.count("gauge_refresh_failed") == 1
    assert events.count("gauge_refresh_recovered") == 1
    failed = next(entry for entry in logs if entry["event"] == "gauge_refresh_failed")
    assert failed["source"] == "operator_balance"
    assert failed["error_type"] == "NodeUnavailableError"
    # The other gauges kept refreshing while the node was down.
    assert gauge(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 600
    assert gauge(metrics, "pay2slay_operator_balance_ban") == 60


async def test_unexpected_error_logged_with_traceback(database: Database) -> None:
    metrics = Metrics(version="test")
    source = BalanceSource()
    source.error = RuntimeError("probe bug")
    refresher = GaugeRefresher(database, metrics, clock, balance_probe=source)

    with structlog.testing.capture_logs() as logs:
        await refresher.refresh()
        await refresher.refresh()

    crashed = [entry for entry in logs if entry["event"] == "gauge_refresh_crashed"]
    assert len(crashed) == 1
    assert crashed[0]["log_level"] == "error"
    assert crashed[0]["exc_info"] is True


async def test_run_forever_stops(database: Database) -> None:
    metrics = Metrics(version="test")
    metrics.set_oldest_unconfirmed_payout_age(99.0)
    stop = asyncio.Event()

    async def balance_then_stop() -> int | None:
        # Called during the first refresh, so the loop ends right after it.
        stop.set()
        return 80 * RAW_PER_BAN

    refresher = GaugeRefresher(database, metrics, clock, balance_probe=balance_then_stop)
    async with asyncio.timeout(10):
        await refresher.run_forever(stop, timedelta(hours=1))

    assert gauge(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 0
    assert gauge(metrics, "pay2slay_operator_balance_ban") == 80


async def test_run_forever_rejects_zero_interval(database: Database) -> None:
    refresher = GaugeRefresher(database, Metrics(version="test"), clock)

    with pytest.raises(ValueError, match="invalid interval"):
        await refresher.run_forever(asyncio.Event(), timedelta(0))


async def test_open_services_sets_mode_gauges(tmp_path: Path) -> None:
    settings = make_settings(
        {
            "P2S_INTEGRATIONS__DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'faucet.db'}",
            "P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN": "12.5",
        }
    )
    metrics = Metrics(version="test")

    services = await open_services(settings, membership=FakeMembership(), metrics=metrics)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(services.aclose)
        runtime = Runtime(services)
        stack.push_async_callback(runtime.stop)
        runtime.start_gauge_refresh(timedelta(seconds=30))

        assert gauge(metrics, "pay2slay_dry_run") == 1
        assert gauge(metrics, "pay2slay_min_operator_balance_ban") == 12.5
