"""Per-player totals by day, week and all time, kept current for the leaderboard."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import PeriodTotal

ALL_TIME_START = date(1970, 1, 1)
PERIODS = ("day", "week", "all")


def period_starts(at: datetime, zone: ZoneInfo) -> dict[str, date]:
    """Return the first day of the day, week (from Monday) and all-time period containing `at`."""
    local_day = at.astimezone(zone).date()
    return {
        "day": local_day,
        "week": local_day - timedelta(days=local_day.weekday()),
        "all": ALL_TIME_START,
    }


async def add_to_period_totals(
    session: AsyncSession,
    *,
    player_id: int,
    at: datetime,
    zone: ZoneInfo,
    kills: int = 0,
    paid_raw: int = 0,
) -> None:
    """Add kills and paid raw to the player's day, week and all-time rows in this transaction.

    Each row is first created if missing (insert or ignore), then read under a row lock
    (SQLite write transactions begin immediately; PostgreSQL takes FOR UPDATE), so concurrent
    writers cannot lose an update. Raw amounts are added in Python because SQLite stores them
    as text.
    """
    if kills < 0 or paid_raw < 0:
        raise ValueError("period totals only grow")

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for period, start in period_starts(at, zone).items():
        await session.execute(
            insert(PeriodTotal)
            .values(period=period, period_start=start, player_id=player_id, kills=0, paid_raw=0)
            .on_conflict_do_nothing()
        )
        row = await session.scalar(
            select(PeriodTotal)
            .where(
                PeriodTotal.period == period,
                PeriodTotal.period_start == start,
                PeriodTotal.player_id == player_id,
            )
            .with_for_update()
        )
        if row is None:
            raise RuntimeError("period total row vanished inside its transaction")
        row.kills += kills
        row.paid_raw += paid_raw
