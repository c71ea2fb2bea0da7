"""The one statement behind `/status`: the player, the pause flag, every total, latest payouts.

It reads, without scanning a table:
- the player with wallet, active Epic link and latest verification (unique and partial
  indexes) and the pause flag (primary key);
- the accrual sums (`ix_accruals_open_by_player`);
- the payout sums and cap usage, and the latest payouts (`ix_payouts_player_created`).

On SQLite every statement costs four hand-offs to aiosqlite's worker thread (cursor, execute,
fetch, close) and SQLAlchemy's work around it, which is most of what a status costs: the
reads themselves take well under a millisecond. So they are one statement rather than one
per concept. Raw amounts are summed exactly with `raw_sum_columns`, never through floats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.db.models import (
    ACTIVE_EPIC_LINK,
    FINAL_PAYOUT_STATES,
    Accrual,
    AccrualStatus,
    EpicLink,
    Payout,
    PayoutState,
    Player,
    StatsState,
    VerificationRecord,
    Wallet,
)
from core.db.raw_sum import raw_sum_columns, raw_sum_value
from core.services.caps import CapUsage, CapWindows, cap_usage_columns
from core.services.faucet_flags import paused_flag_value
from core.services.history import PayoutSummary, payout_summary_query


@dataclass(frozen=True, slots=True)
class PlayerRow:
    """The player's stored state that the checklist reads, and the stored pause flag."""

    player_id: int
    guild_member: bool | None
    frozen: bool
    frozen_reason: str | None
    last_verified_at: datetime | None
    wallet_address: str | None
    epic_account_id: str | None
    stats_state: StatsState | None
    last_check_detail: str | None
    paused_flag: str | None


@dataclass(frozen=True, slots=True)
class StatusTotals:
    """The player's kills counted, sums in raw and cap usage, as `PlayerStatus` defines them."""

    kills_counted: int
    open_raw: int
    held_raw: int
    in_flight_raw: int
    paid_total_raw: int
    dry_run_total_raw: int
    usage: CapUsage


@dataclass(frozen=True, slots=True)
class StatusData:
    """Everything `load_status_data` reads for one player, with the latest payouts newest first."""

    player: PlayerRow
    totals: StatusTotals
    latest_payouts: tuple[PayoutSummary, ...]


@dataclass(frozen=True, slots=True)
class _StatusQuery:
    """The status statement and the layout of its rows.

    Each row contains `player_width` columns for `PlayerRow`, the kills counted, each raw sum
    in `sum_widths[name]` columns (see `raw_sum_columns`), the four cap usage counts, and one
    payout in the last `latest_width` columns.
    """

    statement: Select[Any]
    player_width: int
    sum_widths: dict[str, int]
    latest_width: int


def _player_columns() -> list[ColumnElement[Any] | InstrumentedAttribute[Any]]:
    """Select the `PlayerRow` fields, in order, from players joined to wallets and links."""
    last_check = (
        select(VerificationRecord.detail)
        .where(VerificationRecord.player_id == Player.id)
        .order_by(VerificationRecord.checked_at.desc(), VerificationRecord.id.desc())
        .limit(1)
        .correlate(Player)
        .scalar_subquery()
    )
    return [
        Player.id,
        Player.guild_member,
        Player.frozen,
        Player.frozen_reason,
        Player.last_verified_at,
        Wallet.address,
        EpicLink.epic_account_id,
        EpicLink.stats_state,
        last_check,
        paused_flag_value(),
    ]


def _raw_sums(
    buckets: dict[str, ColumnElement[bool]],
    amount: InstrumentedAttribute[int],
    dialect: str,
) -> dict[str, tuple[ColumnElement[Any], ...]]:
    """Return the exact-sum aggregates of `amount` over the rows matching each bucket."""
    return {
        name: raw_sum_columns(case((condition, amount)), dialect)
        for name, condition in buckets.items()
    }


def _columns(sums: dict[str, tuple[ColumnElement[Any], ...]]) -> list[ColumnElement[Any]]:
    return [column for columns in sums.values() for column in columns]


@functools.cache
def _status_query(dialect: str, include_dry_run: bool) -> _StatusQuery:
    """Build the status statement once per dialect and dry-run setting.

    Building a statement and its cache key costs more CPU than the database spends on the
    read, so it is built with bind parameters (`discord_id`, `day_start`, `week_start`,
    `latest_limit`) and reused. SQLAlchemy statements are immutable and can be shared.

    The totals come from two subqueries that aggregate without GROUP BY, so each is one row,
    with NULL sums when the player has no such rows. The latest payouts are left-joined, so
    the statement returns one row per payout (at least one row) for a known player and none
    for an unknown one. The subqueries find the player's id by `discord_id` themselves,
    because SQLite has no LATERAL join to pass them the outer row's. OR-ed equalities stand
    in for IN, which SQLAlchemy renders again on every execution.
    """
    player_id = (
        select(Player.id).where(Player.discord_id == bindparam("discord_id")).scalar_subquery()
    )

    accrual_sums = _raw_sums(
        {
            "open": and_(Accrual.status == AccrualStatus.OPEN, Accrual.payout_id.is_(None)),
            "held": Accrual.status == AccrualStatus.HELD,
        },
        Accrual.amount_raw,
        dialect,
    )
    accruals = (
        select(func.sum(Accrual.kills), *_columns(accrual_sums))
        .where(
            Accrual.player_id == player_id,
            or_(Accrual.status == AccrualStatus.OPEN, Accrual.status == AccrualStatus.HELD),
        )
        .subquery("accrual_totals")
    )

    in_flight = [state for state in PayoutState if state not in FINAL_PAYOUT_STATES]
    payout_sums = _raw_sums(
        {
            "in_flight": or_(*(Payout.state == state for state in in_flight)),
            "paid": Payout.state == PayoutState.CONFIRMED,
            "dry_run": Payout.state == PayoutState.DRY_RUN,
        },
        Payout.amount_raw,
        dialect,
    )
    usage = cap_usage_columns(
        day_start=bindparam("day_start", type_=Payout.created_at.type),
        week_start=bindparam("week_start", type_=Payout.created_at.type),
        include_dry_run=include_dry_run,
    )
    payouts = (
        select(*_columns(payout_sums), *usage)
        .where(Payout.player_id == player_id)
        .subquery("payout_totals")
    )

    latest = (
        payout_summary_query()
        .where(Payout.player_id == player_id)
        .order_by(Payout.created_at.desc(), Payout.id.desc())
        .limit(bindparam("latest_limit", type_=Integer))
        .subquery("latest_payouts")
    )

    player = _player_columns()
    statement = (
        select(*player, accruals, payouts, latest)
        .select_from(Player)
        .outerjoin(Wallet, Wallet.player_id == Player.id)
        .outerjoin(EpicLink, and_(EpicLink.player_id == Player.id, ACTIVE_EPIC_LINK))
        .join(accruals, true())
        .join(payouts, true())
        .outerjoin(latest, true())
        .where(Player.discord_id == bindparam("discord_id"))
    )
    widths = {name: len(columns) for name, columns in (accrual_sums | payout_sums).items()}
    return _StatusQuery(statement, len(player), widths, len(latest.c))


async def load_status_data(
    session: AsyncSession,
    discord_id: int,
    windows: CapWindows,
    *,
    include_dry_run: bool,
    latest_limit: int,
    dialect: str,
) -> StatusData | None:
    """Read a player's status data in one statement; None for an unknown player.

    The cap usage counts payouts created in `windows`, dry-run payouts only with
    `include_dry_run`. `latest_limit` is the number of latest payouts to read. `dialect` is
    the session's dialect name, `sqlite` or `postgresql`.
    """
    query = _status_query(dialect, include_dry_run)
    parameters = {
        "discord_id": discord_id,
        "day_start": windows.day_start,
        "week_start": windows.week_start,
        "latest_limit": latest_limit,
    }
    rows = (await session.execute(query.statement, parameters)).all()
    if not rows:
        return None

    # A player without payouts gets one row whose payout columns are NULL. The join returns
    # rows in no defined order, so the payouts are sorted newest first here.
    summaries = [PayoutSummary(*row[-query.latest_width :]) for row in rows]
    latest = sorted(
        (summary for summary in summaries if summary.id is not None),
        key=lambda summary: (summary.created_at, summary.id),
        reverse=True,
    )

    first = rows[0]
    values = iter(first[query.player_width : -query.latest_width])
    kills_counted = int(next(values) or 0)
    amounts = {
        name: raw_sum_value([next(values) for _ in range(width)])
        for name, width in query.sum_widths.items()
    }
    payouts_today, payouts_this_week, kills_today, kills_this_week = (int(v) for v in values)
    totals = StatusTotals(
        kills_counted=kills_counted,
        open_raw=amounts["open"],
        held_raw=amounts["held"],
        in_flight_raw=amounts["in_flight"],
        paid_total_raw=amounts["paid"],
        dry_run_total_raw=amounts["dry_run"],
        usage=CapUsage(
            payouts_today=payouts_today,
            payouts_this_week=payouts_this_week,
            kills_today=kills_today,
            kills_this_week=kills_this_week,
        ),
    )
    return StatusData(PlayerRow(*first[: query.player_width]), totals, tuple(latest))
