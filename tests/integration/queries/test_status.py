"""StatusService against SQLite and PostgreSQL: checklist, sums, caps and latest payouts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from core.config import Settings
from core.db import Database
from core.db.models import AccrualStatus, Base, FaucetFlag, PayoutState, StatsState
from core.services.status import CheckName, CheckReason, PlayerStatus, StatusService
from core.services.verification import VerificationOutcome
from tests.integration.queries.helpers_seed import (
    NOW,
    ODD_RAW,
    FixedClock,
    add_accrual,
    add_payout,
    add_player,
    add_verification,
    address_for,
)

NEXT_RUN = NOW + timedelta(minutes=20)


def make_service(
    database: Database, settings: Settings, clock: FixedClock, **payout_changes: Any
) -> StatusService:
    payout = settings.payout.model_copy(update=payout_changes)
    return StatusService(database, payout, settings.integrations, clock)


async def status_of(
    database: Database, settings: Settings, clock: FixedClock, discord_id: int = 1
) -> PlayerStatus:
    status = await make_service(database, settings, clock).player_status(discord_id, NEXT_RUN)
    assert status is not None
    return status


async def test_unknown_player_has_no_status(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    service = make_service(database, settings, clock)
    assert await service.player_status(999, NEXT_RUN) is None


async def test_eligible_player_passes_every_check(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        await add_player(session, 1)

    status = await status_of(database, settings, clock)

    assert status.eligible
    assert [check.name for check in status.checks] == list(CheckName)
    assert all(check.passed for check in status.checks)
    assert all(check.reason is CheckReason.OK for check in status.checks)
    assert status.wallet_address == address_for(1)
    assert status.stats_state is StatsState.OK
    assert status.next_settlement_at == NEXT_RUN
    assert status.checked_at == NOW
    assert status.dry_run is True
    assert status.paused is False


@pytest.mark.parametrize(
    ("player_options", "check", "reason", "eligible"),
    [
        ({"guild_member": False}, CheckName.GUILD_MEMBER, CheckReason.NOT_MEMBER, False),
        ({"guild_member": None}, CheckName.GUILD_MEMBER, CheckReason.MEMBERSHIP_UNKNOWN, False),
        ({"epic_account": None}, CheckName.EPIC_LINK, CheckReason.NO_EPIC_LINK, False),
        ({"wallet": False}, CheckName.WALLET_LINKED, CheckReason.NO_WALLET, False),
        ({"frozen": True}, CheckName.NOT_FROZEN, CheckReason.FROZEN, False),
        ({"stats_state": StatsState.PRIVATE}, CheckName.STATS_READABLE, CheckReason.PRIVATE, True),
        (
            {"stats_state": StatsState.NOT_FOUND},
            CheckName.STATS_READABLE,
            CheckReason.NOT_FOUND,
            True,
        ),
        (
            {"stats_state": StatsState.UNAVAILABLE},
            CheckName.STATS_READABLE,
            CheckReason.UNAVAILABLE,
            True,
        ),
        ({"stats_state": StatsState.UNREAD}, CheckName.STATS_READABLE, CheckReason.UNREAD, True),
    ],
)
async def test_checklist_failure_reasons(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    player_options: dict[str, Any],
    check: CheckName,
    reason: CheckReason,
    eligible: bool,
) -> None:
    async with database.write() as session:
        await add_player(session, 1, **player_options)

    status = await status_of(database, settings, clock)

    failed = [item for item in status.checks if not item.passed]
    assert status.check(check).reason is reason
    assert not status.check(check).passed
    # Without an Epic link the stats cannot be read either; otherwise one item fails.
    expected_failures = 2 if check is CheckName.EPIC_LINK else 1
    assert len(failed) == expected_failures
    assert status.eligible is eligible


async def test_missing_epic_link_also_fails_stats(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        await add_player(session, 1, epic_account=None)

    status = await status_of(database, settings, clock)

    assert status.stats_state is None
    assert status.check(CheckName.STATS_READABLE).reason is CheckReason.NO_EPIC_LINK


async def test_epic_account_conflict_from_latest_check(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1, epic_account=None)
        await add_verification(
            session, player, VerificationOutcome.NOT_LINKED.value, checked_at=NOW - timedelta(1)
        )
        await add_verification(session, player, VerificationOutcome.CONFLICT.value)

    status = await status_of(database, settings, clock)

    assert status.check(CheckName.EPIC_LINK).reason is CheckReason.EPIC_ACCOUNT_CONFLICT


async def test_older_conflict_is_not_reported(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1, epic_account=None)
        await add_verification(
            session, player, VerificationOutcome.CONFLICT.value, checked_at=NOW - timedelta(1)
        )
        await add_verification(session, player, VerificationOutcome.NOT_LINKED.value)

    status = await status_of(database, settings, clock)

    assert status.check(CheckName.EPIC_LINK).reason is CheckReason.NO_EPIC_LINK


async def test_frozen_reason_shown_only_while_frozen(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        await add_player(session, 1, frozen=True, frozen_reason="alt account")
        await add_player(session, 2, frozen=False, frozen_reason="old reason")

    assert (await status_of(database, settings, clock, 1)).frozen_reason == "alt account"
    assert (await status_of(database, settings, clock, 2)).frozen_reason is None


async def test_sums_are_exact_per_bucket(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        other = await add_player(session, 2)

        confirmed = await add_payout(session, player, 3 * ODD_RAW, kills=3)
        await add_accrual(session, player, 3, payout=confirmed)
        submitted = await add_payout(session, player, 2 * ODD_RAW, state=PayoutState.SUBMITTED)
        await add_accrual(session, player, 2, payout=submitted)
        dry_run = await add_payout(session, player, 4 * ODD_RAW, state=PayoutState.DRY_RUN)
        await add_accrual(session, player, 4, payout=dry_run)
        await add_payout(session, player, 7 * ODD_RAW, state=PayoutState.FAILED)

        await add_accrual(session, player, 5)
        await add_accrual(session, player, 6)
        await add_accrual(session, player, 7, status=AccrualStatus.HELD)
        await add_accrual(session, player, 8, status=AccrualStatus.VOIDED)
        await add_accrual(session, player, 9, status=AccrualStatus.SPLIT)
        await add_accrual(session, other, 50)
        await add_payout(session, other, 50 * ODD_RAW)

    status = await status_of(database, settings, clock)

    assert status.kills_counted == 3 + 2 + 4 + 5 + 6 + 7
    assert status.open_raw == 11 * ODD_RAW
    assert status.held_raw == 7 * ODD_RAW
    assert status.in_flight_raw == 2 * ODD_RAW
    assert status.paid_total_raw == 3 * ODD_RAW
    assert status.dry_run_total_raw == 4 * ODD_RAW


async def test_sums_beyond_float_precision(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    big = 3 * 10**36 + 7
    async with database.write() as session:
        player = await add_player(session, 1)
        for _ in range(5):
            await add_accrual(session, player, 1, raw_per_kill=big)
            await add_payout(session, player, big)

    status = await status_of(database, settings, clock)

    assert status.open_raw == 5 * big
    assert status.paid_total_raw == 5 * big


async def test_player_without_rows_has_zero_sums(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        await add_player(session, 1)

    status = await status_of(database, settings, clock)

    assert status.kills_counted == 0
    assert status.open_raw == status.held_raw == status.in_flight_raw == 0
    assert status.paid_total_raw == status.dry_run_total_raw == 0
    assert status.latest_payouts == ()


async def test_caps_count_today_and_this_week(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    monday = NOW.replace(hour=0) - timedelta(days=2)
    async with database.write() as session:
        player = await add_player(session, 1)
        await add_payout(session, player, ODD_RAW, kills=4, created_at=NOW - timedelta(hours=1))
        await add_payout(session, player, ODD_RAW, kills=6, created_at=monday)
        await add_payout(session, player, ODD_RAW, state=PayoutState.FAILED, kills=9)
        # Last Sunday belongs to the previous week.
        await add_payout(session, player, ODD_RAW, kills=5, created_at=monday - timedelta(hours=1))

    service = make_service(
        database, settings, clock, daily_kill_cap=10, weekly_kill_cap=12, weekly_payout_cap=3
    )
    status = await service.player_status(1, NEXT_RUN)
    assert status is not None

    caps = status.caps
    assert (caps.payouts_today.used, caps.payouts_today.limit) == (1, 1)
    assert caps.payouts_today.left == 0
    assert (caps.payouts_this_week.used, caps.payouts_this_week.left) == (2, 1)
    assert (caps.kills_today.used, caps.kills_today.left) == (4, 6)
    assert (caps.kills_this_week.used, caps.kills_this_week.left) == (10, 2)
    assert caps.day_ends_at == NOW.replace(hour=0) + timedelta(days=1)
    assert caps.week_ends_at == NOW.replace(hour=0) + timedelta(days=5)


async def test_kill_caps_off_have_no_limit(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        await add_payout(session, player, ODD_RAW, kills=4)

    status = await status_of(database, settings, clock)

    assert status.caps.kills_today.limit is None
    assert status.caps.kills_today.left is None
    assert status.caps.kills_today.used == 4


async def test_dry_run_payouts_count_only_in_dry_run(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        await add_payout(session, player, ODD_RAW, state=PayoutState.DRY_RUN)

    dry = await status_of(database, settings, clock)
    live_settings = settings.integrations.model_copy(update={"dry_run": False})
    live = await StatusService(database, settings.payout, live_settings, clock).player_status(
        1, NEXT_RUN
    )
    assert live is not None

    assert dry.caps.payouts_today.used == 1
    assert live.caps.payouts_today.used == 0
    assert live.dry_run is False


async def test_caps_follow_reset_time_zone(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    # 15:00 UTC is already Thursday 02:00 in Sydney (UTC+11 in January), while 12:00 UTC
    # is still Wednesday there.
    async with database.write() as session:
        player = await add_player(session, 1)
        await add_payout(session, player, ODD_RAW, created_at=NOW - timedelta(hours=3))

    service = make_service(database, settings, clock, reset_tz="Australia/Sydney")
    status = await service.player_status(1, NEXT_RUN)
    assert status is not None

    assert status.caps.payouts_today.used == 0
    assert status.caps.payouts_this_week.used == 1
    assert status.caps.day_ends_at == NOW.replace(hour=13) + timedelta(days=1)


async def test_latest_payouts_newest_first(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        ids = []
        for hours in range(7):
            payout = await add_payout(
                session, player, ODD_RAW, created_at=NOW - timedelta(hours=hours)
            )
            ids.append(payout.id)

    status = await status_of(database, settings, clock)

    assert [payout.id for payout in status.latest_payouts] == ids[:5]
    newest = status.latest_payouts[0]
    assert newest.amount_raw == ODD_RAW
    assert newest.state is PayoutState.CONFIRMED
    assert newest.created_at == NOW
    assert newest.block_hash is not None


async def test_paused_flag(database: Database, settings: Settings, clock: FixedClock) -> None:
    async with database.write() as session:
        await add_player(session, 1)
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))

    assert (await status_of(database, settings, clock)).paused is True


@contextmanager
def captured_selects(database: Database) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    for engine in database.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        for engine in database.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def test_status_reads_only_through_indexes(
    sqlite_database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with sqlite_database.write() as session:
        for discord_id in range(1, 30):
            player = await add_player(session, discord_id)
            await add_accrual(session, player, 3)
            await add_payout(session, player, ODD_RAW)

    with captured_selects(sqlite_database) as statements:
        await status_of(sqlite_database, settings, clock, 7)

    assert len(statements) == 1
    # "SCAN <table>" reads a whole table; scanning a small materialized CTE is fine.
    table_scans = [["SCAN", name] for name in Base.metadata.tables]
    path = sqlite_database.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as connection:
        for statement, parameters in statements:
            plan = connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            details = [row[3] for row in plan]
            scans = [detail for detail in details if detail.split(" ")[:2] in table_scans]
            assert scans == [], f"{statement}\n{details}"
