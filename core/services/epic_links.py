"""State changes of a player's Epic link rows: deactivation, reactivation and relinks.

Audit entries go into the caller's transaction. Only one row per player may be active,
which a partial unique index enforces.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import EpicLink, Player, StatsState
from core.integrations.yunite import YuniteLink
from core.services.audit import record_audit

log = structlog.get_logger(__name__)


async def active_link(session: AsyncSession, player_id: int) -> EpicLink | None:
    """Return the player's active Epic link, locked for update, or None."""
    return await session.scalar(
        select(EpicLink)
        .where(EpicLink.player_id == player_id, EpicLink.active.is_(True))
        .with_for_update()
    )


async def deactivate_link(session: AsyncSession, link: EpicLink, now: datetime) -> None:
    """Deactivate `link`, which freezes its cursor, and flush the change."""
    link.active = False
    link.unlinked_at = now
    # Flushed at once: the partial unique index allows one active row per player, and SQLite
    # checks it per statement, so this row must be inactive before another becomes active.
    await session.flush()


async def deactivate_active_link(
    session: AsyncSession,
    player: Player,
    now: datetime,
    actor_discord_id: int | None,
    *,
    reason: str,
) -> None:
    """Deactivate the player's active Epic link, if any, and audit it with `reason`."""
    active = await active_link(session, player.id)
    if active is None:
        return
    await deactivate_link(session, active, now)
    record_audit(
        session,
        action="epic_link_deactivated",
        at=now,
        actor_discord_id=actor_discord_id,
        player_id=player.id,
        detail={
            "epic_account_id": active.epic_account_id,
            "cursor_kills": active.cursor_kills,
            "reason": reason,
        },
    )
    log.info(
        "epic_link_deactivated",
        player_id=player.id,
        epic_account_id=active.epic_account_id,
        reason=reason,
    )


async def reactivate_link(
    session: AsyncSession,
    player: Player,
    owned: EpicLink,
    previous: EpicLink | None,
    link: YuniteLink,
    now: datetime,
    actor_discord_id: int | None,
) -> bool:
    """Reactivate one of the player's own earlier links; return True if it resumed.

    The link resumes with its cursor when it was the player's latest link and nothing else is
    active. Otherwise it is a relink to an earlier account, which gets a fresh baseline.
    """
    latest_id = await session.scalar(
        select(EpicLink.id)
        .where(EpicLink.player_id == player.id)
        .order_by(EpicLink.linked_at.desc(), EpicLink.id.desc())
        .limit(1)
    )
    owned.active = True
    owned.unlinked_at = None
    owned.date_verified = link.date_verified

    if previous is None and latest_id == owned.id:
        await session.flush()
        record_audit(
            session,
            action="epic_link_resumed",
            at=now,
            actor_discord_id=actor_discord_id,
            player_id=player.id,
            detail={"epic_account_id": owned.epic_account_id, "cursor_kills": owned.cursor_kills},
        )
        log.info("epic_link_resumed", player_id=player.id, epic_account_id=owned.epic_account_id)
        return True

    record_audit(
        session,
        action="epic_link_rebaselined",
        at=now,
        actor_discord_id=actor_discord_id,
        player_id=player.id,
        detail={
            "epic_account_id": owned.epic_account_id,
            "previous_baseline_kills": owned.baseline_kills,
            "previous_cursor_kills": owned.cursor_kills,
        },
    )
    owned.linked_at = now
    owned.baseline_kills = None
    owned.baseline_at = None
    owned.cursor_kills = None
    owned.last_reading_kills = None
    owned.lower_reading_count = 0
    owned.stats_state = StatsState.UNREAD
    owned.stats_state_at = None
    await session.flush()

    if previous is not None:
        audit_relink(session, player, previous, owned.epic_account_id, now, actor_discord_id)
    return False


def audit_relink(
    session: AsyncSession,
    player: Player,
    previous: EpicLink,
    epic_account_id: str,
    now: datetime,
    actor_discord_id: int | None,
) -> None:
    """Audit and log a relink from the `previous` link to `epic_account_id`."""
    record_audit(
        session,
        action="epic_link_relinked",
        at=now,
        actor_discord_id=actor_discord_id,
        player_id=player.id,
        detail={
            "previous_epic_account_id": previous.epic_account_id,
            "previous_cursor_kills": previous.cursor_kills,
            "epic_account_id": epic_account_id,
        },
    )
    log.info(
        "epic_link_relinked",
        player_id=player.id,
        previous_epic_account_id=previous.epic_account_id,
        epic_account_id=epic_account_id,
    )
