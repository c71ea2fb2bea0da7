"""Applying one kill-count reading to an Epic link: baseline, cursor, accruals and resets.

The rules, all inside the caller's write transaction:

- A reading fetched before the link was linked or last came back after a break is stale and
  changes nothing: it may show kills made on another account's watch or while ineligible.
- A reading that is not OK (private, not found, unavailable) only records the stats state.
  It never sets a baseline and never moves the cursor.
- A kill count above `MAX_PLAUSIBLE_KILLS`, or new kills worth more than 2**128 - 1 raw (more
  than any Banano account can hold), accrues nothing: the cursor stays and an
  `implausible_kills` flag is opened for review.
- The first OK reading sets the baseline and the cursor to its kill count K. Kills before it
  never pay.
- The link or its player may come back after a break (back in the guild, unfrozen, link
  restored). The first OK reading after that moves the baseline and the cursor up to K without
  accruing. It is audited as `cursor_rebaselined` with reason `resumed_after_break` and the
  skipped kill count. Kills made while ineligible never pay, and earlier accruals are kept.
- K above the cursor creates one accrual of K - cursor kills at the configured raw per kill,
  moves the cursor to K and adds the kills to the period totals.
- K below the cursor accrues nothing. It is recorded (log line and `last_reading_kills`) and
  counted. After `reset_lower_readings` lower readings in a row, the stats were really reset:
  the baseline and the cursor move down to K, which is audited (`cursor_rebaselined` with
  reason `kill_count_drop`) and opens a `kill_count_drop` flag. K equal to the cursor ends a
  run of lower readings.
- An accrual whose kills came faster than `kill_rate_per_min` is held for review with a
  `kill_rate` flag. The rate is measured from the last OK reading, whatever failed after it.
  An accrual that covers kill counts below a cursor that an unresolved drop moved down is held
  with a `kill_count_drop` flag, because those kills may have been paid before the drop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Accrual, AccrualStatus, EpicLink
from core.db.models import StatsState as StoredStatsState
from core.integrations.fortnite import StatsReading, StatsState
from core.observability.metrics import Metrics
from core.services.abuse import IMPLAUSIBLE_KILLS, KILL_COUNT_DROP, KILL_RATE, open_flag
from core.services.accrual_holds import (
    RateWindow,
    flag_implausible,
    implausible_reason,
    rate_exceeded,
    rate_window,
    unresolved_drop_cursor,
)
from core.services.rebaseline import rebaseline_after_break, rebaseline_after_drop
from core.services.totals import add_to_period_totals

log = structlog.get_logger(__name__)


class ReadingResult(enum.StrEnum):
    """The effect of one reading on the Epic link."""

    STALE = "stale"
    NOT_OK = "not_ok"
    IMPLAUSIBLE = "implausible"
    BASELINE_SET = "baseline_set"
    REBASELINED_AFTER_BREAK = "rebaselined_after_break"
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
    """The effect of one reading: the result, the cursor after it and any accrual created.

    `skipped_kills` is the number of kills a re-baseline after a break left unpaid.
    """

    result: ReadingResult
    stats_state: StoredStatsState
    cursor_kills: int | None
    accrual_id: int | None = None
    kills: int = 0
    amount_raw: int = 0
    flag_kind: str | None = None
    skipped_kills: int = 0


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

    valid_from = readings_valid_from(link)
    if reading.read_at < valid_from:
        log.info(
            "stats_reading_stale",
            epic_link_id=link.id,
            player_id=link.player_id,
            read_at=reading.read_at,
            valid_from=valid_from,
        )
        return ReadingOutcome(ReadingResult.STALE, link.stats_state, link.cursor_kills)

    link.last_read_at = now
    if reading.state is not StatsState.OK or reading.kills is None:
        state = StoredStatsState(reading.state.value)
        _record_state(link, state, now)
        return ReadingOutcome(ReadingResult.NOT_OK, state, link.cursor_kills)

    kills = reading.kills
    implausible = implausible_reason(link, kills, raw_per_kill)
    if implausible is not None:
        _record_state(link, StoredStatsState.UNAVAILABLE, now)
        await flag_implausible(session, link, kills, reason=implausible, now=now, metrics=metrics)
        return ReadingOutcome(
            ReadingResult.IMPLAUSIBLE,
            link.stats_state,
            link.cursor_kills,
            flag_kind=IMPLAUSIBLE_KILLS,
        )

    _record_state(link, StoredStatsState.OK, now)
    previous_ok_at = link.last_ok_read_at
    previous_ok_kills = link.last_reading_kills
    link.last_ok_read_at = now
    link.last_reading_kills = kills

    if link.cursor_kills is None:
        return _set_baseline(link, kills, now)

    if link.rebaseline_pending:
        link.rebaseline_pending = False
        if kills > link.cursor_kills:
            skipped = rebaseline_after_break(session, link, kills, now=now)
            return ReadingOutcome(
                ReadingResult.REBASELINED_AFTER_BREAK,
                StoredStatsState.OK,
                kills,
                skipped_kills=skipped,
            )
        # Not above the cursor: there are no kills from the break to skip, and the equal or
        # lower reading follows the usual rules below.

    cursor = link.cursor_kills
    if kills == cursor:
        link.lower_reading_count = 0
        return ReadingOutcome(ReadingResult.UNCHANGED, StoredStatsState.OK, cursor)

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
    window = await rate_window(session, link, previous_ok_at, previous_ok_kills)
    return await _accrue(
        session,
        link,
        kills,
        raw_per_kill=raw_per_kill,
        zone=zone,
        now=now,
        window=window,
        abuse_policy=abuse_policy,
        metrics=metrics,
    )


def readings_valid_from(link: EpicLink) -> datetime:
    """Return the earliest fetch time of a reading that may change the link.

    That is when the link was made (or remade by a relink) or last came back after a break,
    whichever is later. An older reading may show kills made on another account's watch or
    while the player was ineligible.
    """
    if link.resumed_at is not None and link.resumed_at > link.linked_at:
        return link.resumed_at
    return link.linked_at


def _set_baseline(link: EpicLink, kills: int, now: datetime) -> ReadingOutcome:
    link.baseline_kills = kills
    link.baseline_at = now
    link.cursor_kills = kills
    link.lower_reading_count = 0
    link.rebaseline_pending = False
    log.info(
        "epic_link_baseline_set",
        epic_link_id=link.id,
        player_id=link.player_id,
        baseline_kills=kills,
    )
    return ReadingOutcome(ReadingResult.BASELINE_SET, StoredStatsState.OK, kills)


def _record_state(link: EpicLink, state: StoredStatsState, now: datetime) -> None:
    if state is not link.stats_state:
        link.stats_state = state
        link.stats_state_at = now


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

    rebaseline_after_drop(
        session,
        link,
        kills,
        lower_readings=reset_lower_readings,
        now=now,
        metrics=metrics,
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
    window: RateWindow,
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
    drop_cursor = await unresolved_drop_cursor(session, link)
    window_kills = kills - window.kills
    if drop_cursor is not None and cursor < drop_cursor:
        hold_kind = KILL_COUNT_DROP
        hold_detail["previous_cursor_kills"] = drop_cursor
    elif rate_exceeded(window_kills, now - window.since, abuse_policy.kill_rate_per_min):
        hold_kind = KILL_RATE
        hold_detail["window_seconds"] = int((now - window.since).total_seconds())
        hold_detail["window_kills"] = window_kills
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
