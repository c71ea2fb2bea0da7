"""Leaderboards of kills and BAN paid by day, week and all time, from the period totals.

Rows come from `period_totals`, read in metric order along `ix_period_totals_kills` or
`ix_period_totals_paid`, so the top of a board costs a short index walk whatever the number
of players. Kills count when their accrual is created (held kills when an admin releases
them) and BAN when a payout is confirmed, in the period of the reset time zone.

Ranks are competition ranks: players with equal values share a rank and the next rank skips
(1, 2, 2, 4). Equal values are listed in the order the players joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.clock import Clock, utc_now
from core.config.payout import PayoutSettings
from core.db.models import PeriodTotal, Player
from core.db.session import Database
from core.services.totals import period_starts

Period = Literal["day", "week", "all"]
Metric = Literal["kills", "paid"]
PERIODS: tuple[Period, ...] = get_args(Period)
METRICS: tuple[Metric, ...] = get_args(Metric)
MAX_LIMIT = 25


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One ranked player."""

    rank: int
    discord_id: int
    kills: int
    paid_raw: int


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """The top of one board and, when asked for, the caller's own row.

    `caller` is None when no caller was given or the caller has nothing in this period.
    """

    period: Period
    metric: Metric
    period_start: date
    rows: tuple[LeaderboardRow, ...]
    caller_discord_id: int | None
    caller: LeaderboardRow | None


class LeaderboardService:
    """Read leaderboards."""

    def __init__(self, db: Database, payout_settings: PayoutSettings, clock: Clock = utc_now):
        self._db = db
        self._zone = payout_settings.zone
        self._clock = clock

    async def top(
        self,
        period: Period,
        metric: Metric,
        limit: int = 10,
        now: datetime | None = None,
        caller_discord_id: int | None = None,
    ) -> Leaderboard:
        """Return the `limit` best players of `period` by `metric` at `now` (default: the clock).

        Players with 0 in the metric are not ranked. The caller's rank outside the top is a
        count of the index entries ahead of them, so its cost grows linearly with the rank.
        """
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")

        at = self._clock() if now is None else now
        start = period_starts(at, self._zone)[period]
        async with self._db.read() as session:
            rows = await _top_rows(session, period, start, metric, limit)
            caller: LeaderboardRow | None = None
            if caller_discord_id is not None:
                caller = next((row for row in rows if row.discord_id == caller_discord_id), None)
                if caller is None:
                    caller = await _caller_row(session, period, start, metric, caller_discord_id)
        return Leaderboard(period, metric, start, rows, caller_discord_id, caller)


def _metric_column(metric: Metric) -> InstrumentedAttribute[int]:
    return PeriodTotal.kills if metric == "kills" else PeriodTotal.paid_raw


async def _top_rows(
    session: AsyncSession, period: Period, start: date, metric: Metric, limit: int
) -> tuple[LeaderboardRow, ...]:
    column = _metric_column(metric)
    result = await session.execute(
        select(Player.discord_id, PeriodTotal.kills, PeriodTotal.paid_raw)
        .join(Player, Player.id == PeriodTotal.player_id)
        .where(PeriodTotal.period == period, PeriodTotal.period_start == start, column > 0)
        .order_by(column.desc(), PeriodTotal.player_id)
        .limit(limit)
    )

    rows: list[LeaderboardRow] = []
    previous_value: int | None = None
    rank = 0
    for position, (discord_id, kills, paid_raw) in enumerate(result, start=1):
        value = kills if metric == "kills" else paid_raw
        if value != previous_value:
            rank = position
            previous_value = value
        rows.append(LeaderboardRow(rank, discord_id, kills, paid_raw))
    return tuple(rows)


async def _caller_row(
    session: AsyncSession, period: Period, start: date, metric: Metric, discord_id: int
) -> LeaderboardRow | None:
    found = (
        await session.execute(
            select(PeriodTotal.kills, PeriodTotal.paid_raw)
            .join(Player, Player.id == PeriodTotal.player_id)
            .where(
                Player.discord_id == discord_id,
                PeriodTotal.period == period,
                PeriodTotal.period_start == start,
            )
        )
    ).one_or_none()
    if found is None:
        return None
    kills, paid_raw = found
    value = kills if metric == "kills" else paid_raw
    if value <= 0:
        return None

    column = _metric_column(metric)
    ahead = await session.scalar(
        select(func.count())
        .select_from(PeriodTotal)
        .where(PeriodTotal.period == period, PeriodTotal.period_start == start, column > value)
    )
    return LeaderboardRow(int(ahead or 0) + 1, discord_id, kills, paid_raw)
