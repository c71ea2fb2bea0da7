"""Cursor moves that accrue nothing: after a break in eligibility, and after a real reset.

Both move the baseline and the cursor of an Epic link to the reading's kill count and are
audited as `cursor_rebaselined`. The `reason` in the detail names which:

- `resumed_after_break`: the first OK reading after the link or its player became eligible
  again (back in the guild, unfrozen, link restored) was above the cursor. The kills in
  between were made while ineligible and never pay; `skipped_kills` in the detail counts them.
- `kill_count_drop`: readings stayed below the cursor long enough to count as a reset of the
  player's stats. A `kill_count_drop` flag is opened as well, and accruals below the old
  cursor are held while it is open.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import EpicLink
from core.observability.metrics import Metrics
from core.services.abuse import KILL_COUNT_DROP, open_flag
from core.services.audit import record_audit

log = structlog.get_logger(__name__)

CURSOR_REBASELINED = "cursor_rebaselined"
REASON_RESUMED_AFTER_BREAK = "resumed_after_break"
REASON_KILL_COUNT_DROP = "kill_count_drop"


def rebaseline_after_break(
    session: AsyncSession, link: EpicLink, kills: int, *, now: datetime
) -> int:
    """Move the cursor up to `kills` without accruing, audit it, and return the kills skipped.

    `kills` must be above the cursor.
    """
    cursor = link.cursor_kills
    if cursor is None or kills <= cursor:
        raise ValueError("a re-baseline after a break needs a reading above the cursor")

    # NOTE: kills made between the last reading before the break and the break itself are
    # skipped as well, because the kill count at the moment of the break is never read. That
    # is at most one polling interval of kills.
    skipped = kills - cursor
    resumed_at = link.resumed_at
    link.baseline_kills = kills
    link.baseline_at = now
    link.cursor_kills = kills
    link.lower_reading_count = 0

    record_audit(
        session,
        action=CURSOR_REBASELINED,
        at=now,
        player_id=link.player_id,
        detail={
            "reason": REASON_RESUMED_AFTER_BREAK,
            "epic_account_id": link.epic_account_id,
            "epic_link_id": link.id,
            "previous_cursor_kills": cursor,
            "cursor_kills": kills,
            "skipped_kills": skipped,
            "resumed_at": None if resumed_at is None else resumed_at.isoformat(),
        },
    )
    log.info(
        "kill_cursor_rebaselined",
        epic_link_id=link.id,
        player_id=link.player_id,
        reason=REASON_RESUMED_AFTER_BREAK,
        previous_cursor_kills=cursor,
        cursor_kills=kills,
        skipped_kills=skipped,
    )
    return skipped


def rebaseline_after_drop(
    session: AsyncSession,
    link: EpicLink,
    kills: int,
    *,
    lower_readings: int,
    now: datetime,
    metrics: Metrics,
) -> None:
    """Move the cursor down to `kills` after `lower_readings` lower readings; audit and flag it."""
    cursor = link.cursor_kills
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
        "lower_readings": lower_readings,
    }
    record_audit(
        session,
        action=CURSOR_REBASELINED,
        at=now,
        player_id=link.player_id,
        detail={"reason": REASON_KILL_COUNT_DROP, **detail},
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
        reason=REASON_KILL_COUNT_DROP,
        previous_cursor_kills=cursor,
        cursor_kills=kills,
    )
