"""Applying one kill-count reading to an Epic link: baseline, cursor, accruals and resets.

The rules, all inside the caller's write transaction:

- A reading that is not OK (private, not found, unavailable) only records the stats state.
  It never sets a baseline and never moves the cursor.
- The first OK reading sets the baseline and the cursor to its kill count K. Kills before it
  never pay.
- K above the cursor creates one accrual of K - cursor kills at the configured raw per kill,
  moves the cursor to K and adds the kills to the period totals.
- K below the cursor accrues nothing. It is recorded (log line and `last_reading_kills`) and
  counted. After `reset_lower_readings` lower readings in a row, the stats were really reset:
  the baseline and the cursor move down to K, which is audited and opens a `kill_count_drop`
  flag. K equal to the cursor ends a run of lower readings.
- An accrual whose kills came faster than `kill_rate_per_min` is held for review with a
  `kill_rate` flag. An accrual that covers kill counts below a cursor that an unresolved drop
  moved down is held with a `kill_count_drop` flag, because those kills may have been paid
  before the drop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import (
    AbuseFlag,
    AbuseFlagStatus,
    Accrual,
    AccrualStatus,
    EpicLink,
)
from core.db.models import StatsState as StoredStatsState
from core.integrations.fortnite import StatsReading, StatsState
from core.observability.metrics import Metrics
from core.services.abuse import KILL_COUNT_DROP, KILL_RATE, open_flag, parse_detail
from core.services.audit import record_audit
from core.services.totals import add_to_period_totals

log = structlog.get_logger(__name__)

# The kill rate is measured over at least this long, so two readings moments apart do not
# turn a handful of kills into an enormous rate.
MIN_RATE_WINDOW = timedelta(minutes=1)


class ReadingResult(enum.StrEnum):
    """The effect of one reading on the Epic link."""

    NOT_OK = "not_ok"
    BASELINE_SET = "baseline_set"
    ACCRUED = "accrued"
    HELD = "held"
    UNCHANGED = "unchanged"
    LOWER = "lower"
    REBASELINED = "rebaselined"


@dataclass(frozen=True, slots=True)
class AbusePolicy:
    """Thresholds that hold an accrual for review; see `abuse_heuristics` in integrations.yaml."""

    kill_rate_per_min: Decimal


@dataclass(frozen=True, slots=True)
class ReadingOutcome:
    """The effect of one reading: the result, the cursor after it and any accrual created."""

    result: ReadingResult
    stats_state: StoredStatsState
    cursor_kills: int | None
    accrual_id: int | None = None
    kills: int = 0
    amount_raw: int = 0
    flag_kind: str | None = None


async def apply_reading(
    session: AsyncSession,
    link: EpicLink,
    reading: StatsReading,
    *,
    raw_per_kill: int,
    reset_lower_readings: int,
    zone: ZoneInfo,
    now: datetime,
    abuse_policy: AbusePolicy,
    metrics: Metrics,
) -> ReadingOutcome:
    """Apply `reading` to `link` in the session's transaction and return what it did.

    The caller loads `link` with a row lock in the same transaction and commits afterwards,
    so the accrual and the cursor move together or not at all.
    """
    if reading.epic_account_id != link.epic_account_id:
        raise ValueError("the reading is for a different Epic account than the link")
    if raw_per_kill <= 0:
        raise ValueError("raw_per_kill must be positive")
    if reset_lower_readings < 1:
        raise ValueError("reset_lower_readings must be at least 1")

    previous_state = link.stats_state
    previous_read_at = link.last_read_at
    state = StoredStatsState(reading.state.value)
    if state is not previous_state:
        link.stats_state = state
        link.stats_state_at = now
    link.last_read_at = now

    if reading.state is not StatsState.OK or reading.kills is None:
        return ReadingOutcome(ReadingResult.NOT_OK, state, link.cursor_kills)

    kills = reading.kills
    link.last_reading_kills = kills

    if link.cursor_kills is None:
        link.baseline_kills = kills
        link.baseline_at = now
        link.cursor_kills = kills
        link.lower_reading_count = 0
        log.info(
            "epic_link_baseline_set",
            epic_link_id=link.id,
            player_id=link.player_id,
            baseline_kills=kills,
        )
        return ReadingOutcome(ReadingResult.BASELINE_SET, state, kills)

    cursor = link.cursor_kills
    if kills == cursor:
        link.lower_reading_count = 0
        return ReadingOutcome(ReadingResult.UNCHANGED, state, cursor)

    if kills < cursor:
        return _apply_lower_reading(
            session,
            link,
            kills,
            reset_lower_readings=reset_lower_readings,
            now=now,
            metrics=metrics,
        )

    link.lower_reading_count = 0
    rate_since = await _rate_window_start(session, link, previous_state, previous_read_at)
    return await _accrue(
        session,
        link,
        kills,
        raw_per_kill=raw_per_kill,
        zone=zone,
        now=now,
        rate_since=rate_since,
        abuse_policy=abuse_policy,
        metrics=metrics,
    )


def _apply_lower_reading(
    session: AsyncSession,
    link: EpicLink,
    kills: int,
    *,
    reset_lower_readings: int,
    now: datetime,
    metrics: Metrics,
) -> ReadingOutcome:
    cursor = link.cursor_kills
    assert cursor is not None
    link.lower_reading_count += 1
    log.info(
        "kill_count_below_cursor",
        epic_link_id=link.id,
        player_id=link.player_id,
        kills=kills,
        cursor_kills=cursor,
        lower_reading_count=link.lower_reading_count,
    )
    if link.lower_reading_count < reset_lower_readings:
        return ReadingOutcome(ReadingResult.LOWER, link.stats_state, cursor)

    previous_baseline = link.baseline_kills
    link.baseline_kills = kills
    link.baseline_at = now
    link.cursor_kills = kills
    link.lower_reading_count = 0

    detail: dict[str, str | int | None] = {
        "epic_account_id": link.epic_account_id,
        "epic_link_id": link.id,
        "previous_cursor_kills": cursor,
        "previous_baseline_kills": previous_baseline,
        "cursor_kills": kills,
        "lower_readings": reset_lower_readings,
    }
    record_audit(
        session, action="kill_cursor_rebaselined", at=now, player_id=link.player_id, detail=detail
    )
    open_flag(
        session,
        player_id=link.player_id,
        kind=KILL_COUNT_DROP,
        now=now,
        metrics=metrics,
        detail=detail,
    )
    log.warning(
        "kill_cursor_rebaselined",
        epic_link_id=link.id,
        player_id=link.player_id,
        previous_cursor_kills=cursor,
        cursor_kills=kills,
    )
    return ReadingOutcome(ReadingResult.REBASELINED, link.stats_state, kills)


async def _accrue(
    session: AsyncSession,
    link: EpicLink,
    kills: int,
    *,
    raw_per_kill: int,
    zone: ZoneInfo,
    now: datetime,
    rate_since: datetime,
    abuse_policy: AbusePolicy,
    metrics: Metrics,
) -> ReadingOutcome:
    cursor = link.cursor_kills
    assert cursor is not None
    new_kills = kills - cursor

    hold_kind: str | None = None
    hold_detail: dict[str, str | int | None] = {
        "epic_account_id": link.epic_account_id,
        "cursor_from": cursor,
        "cursor_to": kills,
        "kills": new_kills,
    }
    drop_cursor = await _unresolved_drop_cursor(session, link)
    if drop_cursor is not None and cursor < drop_cursor:
        hold_kind = KILL_COUNT_DROP
        hold_detail["previous_cursor_kills"] = drop_cursor
    elif _rate_exceeded(new_kills, now - rate_since, abuse_policy):
        hold_kind = KILL_RATE
        hold_detail["window_seconds"] = int((now - rate_since).total_seconds())
        hold_detail["kill_rate_per_min"] = str(abuse_policy.kill_rate_per_min)

    accrual = Accrual(
        player_id=link.player_id,
        epic_account_id=link.epic_account_id,
        kills=new_kills,
        raw_per_kill=raw_per_kill,
        amount_raw=new_kills * raw_per_kill,
        status=AccrualStatus.OPEN if hold_kind is None else AccrualStatus.HELD,
        cursor_from=cursor,
        cursor_to=kills,
        created_at=now,
    )
    session.add(accrual)
    link.cursor_kills = kills
    await session.flush()

    if hold_kind is None:
        # Held kills join the leaderboard totals when an admin releases them.
        await add_to_period_totals(
            session, player_id=link.player_id, at=now, zone=zone, kills=new_kills
        )
        metrics.observe_accrual("open", new_kills)
        log.info(
            "accrual_created",
            accrual_id=accrual.id,
            player_id=link.player_id,
            kills=new_kills,
            amount_raw=accrual.amount_raw,
        )
        return ReadingOutcome(
            ReadingResult.ACCRUED,
            link.stats_state,
            kills,
            accrual_id=accrual.id,
            kills=new_kills,
            amount_raw=accrual.amount_raw,
        )

    open_flag(
        session,
        player_id=link.player_id,
        kind=hold_kind,
        now=now,
        metrics=metrics,
        accrual_id=accrual.id,
        detail=hold_detail,
    )
    metrics.observe_accrual("held", new_kills)
    log.warning(
        "accrual_held",
        accrual_id=accrual.id,
        player_id=link.player_id,
        kills=new_kills,
        amount_raw=accrual.amount_raw,
        reason=hold_kind,
    )
    return ReadingOutcome(
        ReadingResult.HELD,
        link.stats_state,
        kills,
        accrual_id=accrual.id,
        kills=new_kills,
        amount_raw=accrual.amount_raw,
        flag_kind=hold_kind,
    )


async def _rate_window_start(
    session: AsyncSession,
    link: EpicLink,
    previous_state: StoredStatsState,
    previous_read_at: datetime | None,
) -> datetime:
    """Return the latest time at which the kill count was known to be at most the cursor.

    After an OK reading that is that reading's time. After a failed one the last OK time is
    not stored, so the window starts when the cursor last moved (the latest accrual of this
    account, or the baseline), which can only make the measured rate lower.
    """
    if previous_state is StoredStatsState.OK and previous_read_at is not None:
        return previous_read_at

    last_accrual_at = await session.scalar(
        select(func.max(Accrual.created_at)).where(
            Accrual.epic_account_id == link.epic_account_id,
            Accrual.parent_id.is_(None),
        )
    )
    candidates = [moment for moment in (last_accrual_at, link.baseline_at) if moment is not None]
    if not candidates:
        return previous_read_at or link.linked_at
    return max(candidates)


def _rate_exceeded(new_kills: int, window: timedelta, policy: AbusePolicy) -> bool:
    window = max(window, MIN_RATE_WINDOW)
    minutes = Decimal(int(window.total_seconds() * 1_000_000)) / Decimal(60_000_000)
    return Decimal(new_kills) > policy.kill_rate_per_min * minutes


async def _unresolved_drop_cursor(session: AsyncSession, link: EpicLink) -> int | None:
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
