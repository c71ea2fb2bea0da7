"""Per-player payout and kill caps in calendar windows of the configured reset time zone.

A day starts at local 00:00 and a week on Monday at local 00:00. The payout caps count payouts
created in the window whose state is not `failed`. In dry run the dry-run payouts count too,
so a dry run shows the real cap behaviour. The kill caps count the kills of those payouts.

Zero means different things for the two kinds of cap, following the configuration defaults
(`daily_payout_cap: 1`, `weekly_payout_cap: 3`, kill caps off):
- a payout cap of 0 allows no payouts at all in its window;
- a kill cap of 0 means no kill limit.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Payout, PayoutState


class SkipReason(enum.StrEnum):
    """Reason settlement left a player with open accruals unpaid in a run."""

    DAILY_CAP = "daily_cap"
    WEEKLY_CAP = "weekly_cap"
    KILL_CAP = "kill_cap"
    FLOOR = "floor"
    BATCH = "batch"
    INELIGIBLE = "ineligible"


@dataclass(frozen=True)
class CapLimits:
    """The four caps; payout caps of 0 allow nothing, kill caps of 0 limit nothing."""

    daily_payouts: int
    weekly_payouts: int
    daily_kills: int = 0
    weekly_kills: int = 0

    def __post_init__(self) -> None:
        for name in ("daily_payouts", "weekly_payouts", "daily_kills", "weekly_kills"):
            if getattr(self, name) < 0:
                raise ValueError(f"cap {name} must be 0 or more")


@dataclass(frozen=True)
class CapWindows:
    """The UTC instants at which the current local day and week began."""

    day_start: datetime
    week_start: datetime


@dataclass(frozen=True)
class CapUsage:
    """Payouts and kills a player was already paid in the current windows, failed ones aside."""

    payouts_today: int = 0
    payouts_this_week: int = 0
    kills_today: int = 0
    kills_this_week: int = 0


NO_USAGE = CapUsage()


def local_midnight(day: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant of `day`'s local date in `zone`, as a UTC-comparable datetime.

    Where a DST change skips local midnight, zoneinfo applies the offset in force before the
    change (PEP 495, fold=0). That instant is when the clock jumped, so the day still starts
    exactly once.
    """
    local_date = day.astimezone(zone).date()
    return datetime.combine(local_date, time(0), tzinfo=zone)


def cap_windows(at: datetime, zone: ZoneInfo) -> CapWindows:
    """Return the start of the local day and of the local week (Monday) containing `at`."""
    if at.tzinfo is None:
        raise ValueError("cap windows need a timezone-aware instant")
    day_start = local_midnight(at, zone)
    monday = day_start.date() - timedelta(days=day_start.weekday())
    week_start = datetime.combine(monday, time(0), tzinfo=zone)
    return CapWindows(day_start=day_start, week_start=week_start)


def payout_cap_reached(usage: CapUsage, limits: CapLimits) -> SkipReason | None:
    """Return which payout-count cap stops another payout now, if any."""
    if usage.payouts_today >= limits.daily_payouts:
        return SkipReason.DAILY_CAP
    if usage.payouts_this_week >= limits.weekly_payouts:
        return SkipReason.WEEKLY_CAP
    return None


def kill_allowance(usage: CapUsage, limits: CapLimits) -> int | None:
    """Return how many more kills may be paid in the current windows; None means no limit."""
    remaining: list[int] = []
    if limits.daily_kills > 0:
        remaining.append(limits.daily_kills - usage.kills_today)
    if limits.weekly_kills > 0:
        remaining.append(limits.weekly_kills - usage.kills_this_week)
    if not remaining:
        return None
    return max(0, min(remaining))


def cap_reached(usage: CapUsage, limits: CapLimits) -> SkipReason | None:
    """Return the cap that stops any payout to this player now, if one does."""
    reason = payout_cap_reached(usage, limits)
    if reason is not None:
        return reason
    if kill_allowance(usage, limits) == 0:
        return SkipReason.KILL_CAP
    return None


def counts_toward_caps(*, include_dry_run: bool) -> ColumnElement[bool]:
    """Return the condition for a payout that counts toward the caps of its window.

    A failed payout never counts. Dry-run payouts count only while `include_dry_run` is set:
    a dry run shows real cap behaviour, and a live run ignores simulated payouts, which never
    moved money.
    """
    not_failed = Payout.state != PayoutState.FAILED
    if include_dry_run:
        return not_failed
    return and_(not_failed, Payout.dry_run.is_(False))


def cap_usage_columns(
    *,
    day_start: ColumnElement[datetime],
    week_start: ColumnElement[datetime],
    include_dry_run: bool,
) -> tuple[ColumnElement[int], ColumnElement[int], ColumnElement[int], ColumnElement[int]]:
    """Return aggregates over payouts in `CapUsage` field order, each 0 when nothing counts.

    They suit a query over one player's payouts, such as the `/status` read along
    `ix_payouts_player_created`, while `load_cap_usage` counts the same payouts for many
    players. The window starts are SQL expressions, such as bind parameters for a statement
    that is built once and run with the `CapWindows` of each call.
    """
    counts = counts_toward_caps(include_dry_run=include_dry_run)
    in_day = and_(counts, Payout.created_at >= day_start)
    in_week = and_(counts, Payout.created_at >= week_start)
    return (
        func.coalesce(func.sum(case((in_day, 1), else_=0)), 0),
        func.coalesce(func.sum(case((in_week, 1), else_=0)), 0),
        func.coalesce(func.sum(case((in_day, Payout.kills), else_=0)), 0),
        func.coalesce(func.sum(case((in_week, Payout.kills), else_=0)), 0),
    )


async def load_cap_usage(
    session: AsyncSession,
    windows: CapWindows,
    *,
    include_dry_run: bool,
    player_ids: Sequence[int] | None = None,
) -> dict[int, CapUsage]:
    """Return each player's usage in the current windows, from one grouped query.

    Payouts count as `counts_toward_caps` defines. Without `player_ids` the query covers every
    player paid this week; players missing from the result have no usage.
    """
    this_week = select(Payout.id, Payout.player_id, Payout.created_at, Payout.kills).where(
        Payout.created_at >= windows.week_start,
        counts_toward_caps(include_dry_run=include_dry_run),
    )
    if player_ids is not None:
        this_week = this_week.where(Payout.player_id.in_(list(player_ids)))
    # MATERIALIZED keeps the week's payouts a separate step that reads `ix_payouts_created`.
    # Merged into the grouped query, SQLite walks `ix_payouts_player_created` instead to skip
    # the sort, which reads every payout ever made.
    week = this_week.cte("week_payouts").prefix_with("MATERIALIZED")
    in_day = week.c.created_at >= windows.day_start
    query = select(
        week.c.player_id,
        func.count(week.c.id),
        func.coalesce(func.sum(case((in_day, 1), else_=0)), 0),
        func.coalesce(func.sum(week.c.kills), 0),
        func.coalesce(func.sum(case((in_day, week.c.kills), else_=0)), 0),
    ).group_by(week.c.player_id)

    usage: dict[int, CapUsage] = {}
    for player_id, week_count, day_count, week_kills, day_kills in await session.execute(query):
        usage[int(player_id)] = CapUsage(
            payouts_today=int(day_count),
            payouts_this_week=int(week_count),
            kills_today=int(day_kills),
            kills_this_week=int(week_kills),
        )
    return usage


@dataclass(frozen=True)
class OpenAccrual:
    """The part of an open accrual that claim planning needs."""

    id: int
    kills: int
    raw_per_kill: int
    amount_raw: int


@dataclass(frozen=True)
class SplitPlan:
    """Cut `accrual_id` after `kills_paid` kills: that part is paid, the rest stays open."""

    accrual_id: int
    kills_paid: int


@dataclass(frozen=True)
class ClaimPlan:
    """The accruals one payout claims: whole ones plus at most one split at a kill cap."""

    whole_ids: tuple[int, ...]
    split: SplitPlan | None
    kills: int
    amount_raw: int


def plan_claim(accruals: Sequence[OpenAccrual], allowance: int | None) -> ClaimPlan | None:
    """Choose accruals oldest first up to `allowance` kills (None: all of them).

    The accrual that would cross the allowance is split so the payout ends exactly at the cap.
    The amount of each part is its kills times the accrual's raw per kill, never a scaled
    amount. An accrual whose stored amount is not kills times raw per kill cannot be split
    exactly, so planning stops before it. Returns None when nothing can be paid.
    """
    whole_ids: list[int] = []
    kills = 0
    amount_raw = 0
    split: SplitPlan | None = None

    for accrual in accruals:
        if allowance is None or kills + accrual.kills <= allowance:
            whole_ids.append(accrual.id)
            kills += accrual.kills
            amount_raw += accrual.amount_raw
            continue

        kills_left = allowance - kills
        splittable = accrual.amount_raw == accrual.kills * accrual.raw_per_kill
        if kills_left > 0 and splittable:
            split = SplitPlan(accrual_id=accrual.id, kills_paid=kills_left)
            kills += kills_left
            amount_raw += kills_left * accrual.raw_per_kill
        break

    if amount_raw <= 0:
        return None
    return ClaimPlan(whole_ids=tuple(whole_ids), split=split, kills=kills, amount_raw=amount_raw)
