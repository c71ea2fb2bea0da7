"""Checks that keep kills from being paid at once: implausible counts and fast kills.

- An implausible count (above `MAX_PLAUSIBLE_KILLS`, or new kills worth more than
  2**128 - 1 raw) accrues nothing and opens an `implausible_kills` flag.
- The kill rate is measured from the last OK reading and its kill count, so failed readings
  in between cannot stretch the window.
- An open `kill_count_drop` flag records the cursor a drop moved down from; accruals below it
  are held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.banano.units import MAX_RAW
from core.db.models import AbuseFlag, AbuseFlagStatus, Accrual, EpicLink
from core.integrations.fortnite import MAX_PLAUSIBLE_KILLS
from core.observability.metrics import Metrics
from core.services.abuse import (
    IMPLAUSIBLE_KILLS,
    KILL_COUNT_DROP,
    find_open_flag,
    open_flag,
    parse_detail,
)

log = structlog.get_logger(__name__)

# The kill rate is measured over at least this long, so two readings moments apart do not
# turn a handful of kills into an enormous rate.
MIN_RATE_WINDOW = timedelta(minutes=1)


def implausible_reason(link: EpicLink, kills: int, raw_per_kill: int) -> str | None:
    """Return why `kills` cannot be applied to the link, or None when it can."""
    # The stats client already reports such counts as unavailable; this guards other callers.
    if kills > MAX_PLAUSIBLE_KILLS:
        return "kills_above_limit"

    cursor = link.cursor_kills
    accrues = cursor is not None and not link.rebaseline_pending and kills > cursor
    if accrues and cursor is not None and (kills - cursor) * raw_per_kill > MAX_RAW:
        return "amount_above_max_raw"
    return None


async def flag_implausible(
    session: AsyncSession,
    link: EpicLink,
    kills: int,
    *,
    reason: str,
    now: datetime,
    metrics: Metrics,
) -> None:
    """Log an implausible kill count and open one `implausible_kills` flag for the account.

    The caller keeps the cursor where it is and creates no accrual: its amount could not be
    stored, and no Banano account could ever pay it. The kills stay above the cursor, so
    when later readings are plausible again they accrue under the usual rules.
    """
    log.warning(
        "kill_count_implausible",
        epic_link_id=link.id,
        player_id=link.player_id,
        kills=kills,
        cursor_kills=link.cursor_kills,
        reason=reason,
    )
    existing = await find_open_flag(
        session,
        player_id=link.player_id,
        kind=IMPLAUSIBLE_KILLS,
        subject_key="epic_account_id",
        subject=link.epic_account_id,
    )
    if existing is not None:
        return
    open_flag(
        session,
        player_id=link.player_id,
        kind=IMPLAUSIBLE_KILLS,
        now=now,
        metrics=metrics,
        detail={
            "epic_account_id": link.epic_account_id,
            "epic_link_id": link.id,
            "kills": kills,
            "cursor_kills": link.cursor_kills,
            "reason": reason,
        },
    )


@dataclass(frozen=True, slots=True)
class RateWindow:
    """The start of a kill-rate window: a time and the kill count known at that time."""

    since: datetime
    kills: int


async def rate_window(
    session: AsyncSession,
    link: EpicLink,
    previous_ok_at: datetime | None,
    previous_ok_kills: int | None,
) -> RateWindow:
    """Return the time and kill count that the kill rate of this reading is measured from.

    That is the previous OK reading, however many readings failed after it, with the lower of
    its kill count and the cursor. Some links have no stored time of their last OK reading,
    because it predates the column. They fall back on the time the cursor last moved (the
    latest accrual of this account, or the baseline), which can only make the rate lower.
    """
    cursor = link.cursor_kills
    assert cursor is not None
    start_kills = cursor if previous_ok_kills is None else min(previous_ok_kills, cursor)
    if previous_ok_at is not None:
        return RateWindow(previous_ok_at, start_kills)

    last_accrual_at = await session.scalar(
        select(func.max(Accrual.created_at)).where(
            Accrual.epic_account_id == link.epic_account_id,
            Accrual.parent_id.is_(None),
        )
    )
    candidates = [moment for moment in (last_accrual_at, link.baseline_at) if moment is not None]
    since = max(candidates) if candidates else link.linked_at
    return RateWindow(since, cursor)


def rate_exceeded(window_kills: int, window: timedelta, kill_rate_per_min: Decimal) -> bool:
    """Return whether `window_kills` in `window` (at least `MIN_RATE_WINDOW`) is too fast."""
    window = max(window, MIN_RATE_WINDOW)
    minutes = Decimal(int(window.total_seconds() * 1_000_000)) / Decimal(60_000_000)
    return Decimal(window_kills) > kill_rate_per_min * minutes


async def unresolved_drop_cursor(session: AsyncSession, link: EpicLink) -> int | None:
    """Return the highest cursor that an open drop flag of this account moved down from."""
    flags = await session.scalars(
        select(AbuseFlag).where(
            AbuseFlag.player_id == link.player_id,
            AbuseFlag.kind == KILL_COUNT_DROP,
            AbuseFlag.status == AbuseFlagStatus.OPEN,
            AbuseFlag.accrual_id.is_(None),
        )
    )
    highest: int | None = None
    for flag in flags:
        detail = parse_detail(flag.detail)
        if detail.get("epic_account_id") != link.epic_account_id:
            continue
        previous = detail.get("previous_cursor_kills")
        if isinstance(previous, int) and not isinstance(previous, bool):
            highest = previous if highest is None else max(highest, previous)
    return highest
