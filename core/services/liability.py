"""Liability to players: open accruals not yet paid, and accruals held for review."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Accrual, AccrualStatus, Payout, PayoutState
from core.db.raw_sum import sum_raw_amounts

# Claimed by a payout that is not confirmed still counts as owed: dry-run payouts never move
# money, and in-flight ones may yet fail and release their accruals.
_NOT_CONFIRMED_STATES = tuple(state for state in PayoutState if state is not PayoutState.CONFIRMED)


@dataclass(frozen=True)
class Liability:
    """Raw owed: `open_raw` can be settled now, `held_raw` waits for an admin's review."""

    open_raw: int
    held_raw: int


async def sum_accrual_amounts(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    """Return the exact sum of `amount_raw` over the accruals matching `conditions`.

    The sum is computed by the database, so only a few rows come back whatever the number
    of accruals: PostgreSQL sums NUMERIC exactly, and on SQLite the text amounts are summed
    in slices (see `sum_raw_amounts`).
    """
    return await sum_raw_amounts(session, Accrual.amount_raw, Accrual.id, *conditions)


async def open_liability_raw(session: AsyncSession) -> int:
    """Return the raw of open accruals that no confirmed payout has paid.

    Unclaimed accruals and accruals of unconfirmed payouts are summed apart, so each sum
    reads an index (`ix_accruals_status_created`, then `ix_payouts_state` and
    `ix_accruals_payout`) instead of every open accrual ever paid.
    """
    is_open = Accrual.status == AccrualStatus.OPEN
    unclaimed_raw = await sum_accrual_amounts(session, is_open, Accrual.payout_id.is_(None))
    not_confirmed = select(Payout.id).where(Payout.state.in_(_NOT_CONFIRMED_STATES))
    claimed_raw = await sum_accrual_amounts(session, is_open, Accrual.payout_id.in_(not_confirmed))
    return unclaimed_raw + claimed_raw


async def held_liability_raw(session: AsyncSession) -> int:
    """Return the raw of accruals held for admin review."""
    return await sum_accrual_amounts(session, Accrual.status == AccrualStatus.HELD)


async def load_liability(session: AsyncSession) -> Liability:
    """Return open and held liability in one call."""
    return Liability(
        open_raw=await open_liability_raw(session),
        held_raw=await held_liability_raw(session),
    )
