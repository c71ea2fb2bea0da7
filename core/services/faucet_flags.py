"""Faucet-wide switches that admins change at run time, such as pausing payouts."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import structlog
from sqlalchemy import ScalarSelect, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import PAYOUTS_PAUSED, PAYOUTS_PAUSED_REASON, FaucetFlag
from core.services.audit import record_audit

log = structlog.get_logger(__name__)

_TRUE = "true"
_FALSE = "false"


def paused_flag_value() -> ScalarSelect[str]:
    """Select the stored pause flag as a scalar subquery, for the columns of another query.

    The value is NULL when the flag was never set, and `paused_from_flag` turns it into a bool.
    """
    return select(FaucetFlag.value).where(FaucetFlag.key == PAYOUTS_PAUSED).scalar_subquery()


def paused_from_flag(value: str | None) -> bool:
    """Return whether the stored pause flag `value` means paused.

    None, for a flag that was never set, means not paused.
    """
    return value == _TRUE


async def is_paused(session: AsyncSession) -> bool:
    """Return whether an admin paused payouts; a missing flag means not paused."""
    value = await session.scalar(select(FaucetFlag.value).where(FaucetFlag.key == PAYOUTS_PAUSED))
    return paused_from_flag(value)


async def pause_reason(session: AsyncSession) -> str | None:
    """Return the reason given with the current pause, or None when none was given."""
    value = await session.scalar(
        select(FaucetFlag.value).where(FaucetFlag.key == PAYOUTS_PAUSED_REASON)
    )
    return value or None


async def set_paused(
    session: AsyncSession,
    *,
    paused: bool,
    at: datetime,
    actor_discord_id: int | None,
    reason: str = "",
) -> bool:
    """Pause or resume payouts in the session's transaction, with an audit entry.

    Returns True when the switch changed, False when it already had that value (still
    audited, so every admin action leaves a trace).
    """
    flag = await session.get(FaucetFlag, PAYOUTS_PAUSED, with_for_update=True)
    new_value = _TRUE if paused else _FALSE
    old_value = _FALSE if flag is None else flag.value
    changed = old_value != new_value
    if flag is None:
        flag = FaucetFlag(key=PAYOUTS_PAUSED, value=new_value, updated_at=at)
        session.add(flag)
    flag.value = new_value
    flag.updated_at = at
    flag.updated_by = actor_discord_id
    await _store_reason(session, reason if paused else None, at, actor_discord_id)

    record_audit(
        session,
        action="payouts_paused" if paused else "payouts_resumed",
        at=at,
        actor_discord_id=actor_discord_id,
        detail={"changed": changed, "reason": reason},
    )
    log.info(
        "payouts_paused" if paused else "payouts_resumed",
        actor_discord_id=actor_discord_id,
        changed=changed,
    )
    return changed


async def _store_reason(
    session: AsyncSession, reason: str | None, at: datetime, actor_discord_id: int | None
) -> None:
    flag = await session.get(FaucetFlag, PAYOUTS_PAUSED_REASON, with_for_update=True)
    # Control and format characters (line breaks, right-to-left overrides) would change how
    # terminals and logs show the text around the reason.
    reason = "".join(
        " " if unicodedata.category(character) in ("Cc", "Cf") else character
        for character in reason or ""
    ).strip()
    if not reason:
        if flag is not None:
            await session.delete(flag)
        return
    if flag is None:
        flag = FaucetFlag(key=PAYOUTS_PAUSED_REASON, value=reason, updated_at=at)
        session.add(flag)
    flag.value = reason
    flag.updated_at = at
    flag.updated_by = actor_discord_id
