"""LeaderboardService against SQLite and PostgreSQL: order, ties, periods and the caller's rank."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from core.config import Settings
from core.db import Database
from core.services.leaderboard import LeaderboardService
from tests.integration.queries.helpers_seed import NOW, FixedClock, add_period_total, add_player

TODAY = NOW.date()
MONDAY = TODAY - timedelta(days=TODAY.weekday())
ALL_TIME = date(1970, 1, 1)


async def seed_day(database: Database, values: dict[int, tuple[int, int]]) -> None:
    """Add players (by Discord ID) with today's (kills, paid_raw)."""
    async with database.write() as session:
        for discord_id, (kills, paid_raw) in values.items():
            player = await add_player(session, discord_id)
            await add_period_total(session, player, "day", TODAY, kills=kills, paid_raw=paid_raw)


def service(database: Database, settings: Settings, clock: FixedClock) -> LeaderboardService:
    return LeaderboardService(database, settings.payout, clock)


async def test_kills_ordered_with_shared_ranks(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    await seed_day(database, {11: (5, 0), 12: (9, 0), 13: (5, 0), 14: (1, 0), 15: (9, 0)})

    board = await service(database, settings, clock).top("day", "kills")

    assert [(row.rank, row.discord_id, row.kills) for row in board.rows] == [
        (1, 12, 9),
        (1, 15, 9),
        (3, 11, 5),
        (3, 13, 5),
        (5, 14, 1),
    ]
    assert board.period_start == TODAY
    assert board.caller is None


async def test_paid_ordered_by_exact_amount(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    # Amounts that differ only in their last raw, and one with more digits.
    base = 10**35
    await seed_day(database, {21: (0, base + 1), 22: (0, base), 23: (0, 9 * 10**30), 24: (0, 0)})

    board = await service(database, settings, clock).top("day", "paid")

    assert [(row.rank, row.discord_id) for row in board.rows] == [(1, 21), (2, 22), (3, 23)]
    assert board.rows[0].paid_raw == base + 1


async def test_zero_rows_are_not_ranked(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    await seed_day(database, {31: (0, 5), 32: (2, 0)})

    kills = await service(database, settings, clock).top("day", "kills")
    paid = await service(database, settings, clock).top("day", "paid")

    assert [row.discord_id for row in kills.rows] == [32]
    assert [row.discord_id for row in paid.rows] == [31]


async def test_limit_cuts_the_list(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    await seed_day(database, {40 + n: (n + 1, 0) for n in range(8)})

    board = await service(database, settings, clock).top("day", "kills", limit=3)

    assert [row.discord_id for row in board.rows] == [47, 46, 45]


async def test_periods_read_their_own_rows(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 50)
        await add_period_total(session, player, "day", TODAY - timedelta(days=1), kills=7)
        await add_period_total(session, player, "day", TODAY, kills=2)
        await add_period_total(session, player, "week", MONDAY, kills=9)
        await add_period_total(session, player, "week", MONDAY - timedelta(days=7), kills=40)
        await add_period_total(session, player, "all", ALL_TIME, kills=49)

    leaderboard = service(database, settings, clock)
    day = await leaderboard.top("day", "kills")
    week = await leaderboard.top("week", "kills")
    all_time = await leaderboard.top("all", "kills")
    yesterday = await leaderboard.top("day", "kills", now=NOW - timedelta(days=1))

    assert [row.kills for row in day.rows] == [2]
    assert [row.kills for row in week.rows] == [9]
    assert week.period_start == MONDAY
    assert [row.kills for row in all_time.rows] == [49]
    assert [row.kills for row in yesterday.rows] == [7]


async def test_caller_inside_the_top(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    await seed_day(database, {61: (3, 0), 62: (8, 0)})

    board = await service(database, settings, clock).top("day", "kills", caller_discord_id=61)

    assert board.caller_discord_id == 61
    assert board.caller is not None
    assert (board.caller.rank, board.caller.kills) == (2, 3)


async def test_caller_below_the_top(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    await seed_day(database, {70 + n: (10 - n, 10 - n) for n in range(6)} | {80: (5, 5)})

    leaderboard = service(database, settings, clock)
    kills = await leaderboard.top("day", "kills", limit=2, caller_discord_id=80)
    paid = await leaderboard.top("day", "paid", limit=2, caller_discord_id=80)

    # 10, 9, 8, 7, 6 are ahead; 80 ties with 75 at 5.
    assert kills.caller is not None
    assert (kills.caller.rank, kills.caller.kills) == (6, 5)
    assert paid.caller is not None
    assert paid.caller.rank == 6


@pytest.mark.parametrize("caller", [90, 91, 999])
async def test_caller_without_a_rank(
    database: Database, settings: Settings, clock: FixedClock, caller: int
) -> None:
    await seed_day(database, {90: (0, 4), 92: (3, 0)})
    async with database.write() as session:
        await add_player(session, 91)

    board = await service(database, settings, clock).top("day", "kills", caller_discord_id=caller)

    assert board.caller_discord_id == caller
    assert board.caller is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"period": "month", "metric": "kills"}, "period"),
        ({"period": "day", "metric": "deaths"}, "metric"),
        ({"period": "day", "metric": "kills", "limit": 0}, "limit"),
        ({"period": "day", "metric": "kills", "limit": 26}, "limit"),
    ],
)
async def test_invalid_arguments(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    arguments: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        await service(database, settings, clock).top(**arguments)
