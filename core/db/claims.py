"""Claiming accruals for a payout, the rule that keeps an accrual in at most one live payout.

`accruals.payout_id` is the id of the one live payout that claims an accrual. A claim is a single
conditional UPDATE that sets it only where it is still NULL, so two payouts racing for the
same accrual cannot both get it: the database applies one UPDATE first, and the other then
matches no row. Settlement compares the returned count with the number of accruals it asked
for and rolls back on a shortfall, because a payout must pay exactly the accruals it claims.
Every claim is also recorded in `payout_accruals`, which keeps the history after a failed
payout's claims are released.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Accrual, AccrualStatus, Payout, PayoutAccrual


async def claim_accruals(session: AsyncSession, payout_id: int, accrual_ids: Iterable[int]) -> int:
    """Point each unclaimed open accrual of the payout's player at the payout.

    Returns how many accruals were claimed. An accrual is skipped when another payout
    already claims it, when it is held, voided or split, or when it belongs to another
    player. Runs inside the caller's transaction.
    """
    payout_player = select(Payout.player_id).where(Payout.id == payout_id).scalar_subquery()
    claimed = await _claim(session, payout_id, payout_player, accrual_ids)
    await record_claims(session, {payout_id: list(claimed)})
    return len(claimed)


@dataclass(frozen=True)
class ClaimRequest:
    """The accruals that one payout of `player_id` is to claim."""

    payout_id: int
    player_id: int
    accrual_ids: Sequence[int]


async def claim_accruals_for(
    session: AsyncSession, requests: Sequence[ClaimRequest]
) -> dict[int, dict[int, int]]:
    """Claim as `claim_accruals` does, for several payouts in two statements, unrecorded.

    Returns a mapping from payout id to the accruals that the payout now claims, each accrual
    id mapped to its amount in raw. A payout that claimed nothing maps to an empty mapping.
    The caller compares them with its requests and records the claims with `record_claims`.

    One UPDATE runs once per accrual (executemany), then one SELECT reads back which accruals
    point at these payouts. Reading back, instead of counting updated rows, works the same on
    both databases, because asyncpg's executemany returns no row count.
    """
    payout_ids = [claim.payout_id for claim in requests]
    if len(set(payout_ids)) != len(payout_ids):
        raise ValueError("Each payout may appear only once in a batch of claims.")
    rows = [
        {
            "claimed_accrual": accrual_id,
            "claiming_payout": claim.payout_id,
            "payout_player": claim.player_id,
        }
        for claim in requests
        for accrual_id in sorted(set(claim.accrual_ids))
    ]
    claimed: dict[int, dict[int, int]] = {payout_id: {} for payout_id in payout_ids}
    if not rows:
        return claimed
    connection = await session.connection()
    await connection.execute(
        update(Accrual)
        .where(
            Accrual.id == bindparam("claimed_accrual"),
            Accrual.payout_id.is_(None),
            Accrual.status == AccrualStatus.OPEN,
            Accrual.player_id == bindparam("payout_player"),
        )
        .values(payout_id=bindparam("claiming_payout")),
        rows,
    )
    result = await connection.execute(
        select(Accrual.payout_id, Accrual.id, Accrual.amount_raw).where(
            Accrual.payout_id.in_(payout_ids)
        )
    )
    for payout_id, accrual_id, amount_raw in result:
        # The IN condition leaves out accruals with no payout.
        claimed[cast(int, payout_id)][accrual_id] = amount_raw
    return claimed


async def record_claims(session: AsyncSession, claims: Mapping[int, Iterable[int]]) -> None:
    """Record in `payout_accruals` the accruals each payout claimed, keyed by payout id."""
    rows = [
        {"payout_id": payout_id, "accrual_id": accrual_id}
        for payout_id, accrual_ids in claims.items()
        for accrual_id in accrual_ids
    ]
    if rows:
        await session.execute(insert(PayoutAccrual), rows)


async def _claim(
    session: AsyncSession,
    payout_id: int,
    player: int | ColumnElement[int],
    accrual_ids: Iterable[int],
) -> dict[int, int]:
    wanted = sorted(set(accrual_ids))
    if not wanted:
        return {}
    result = await session.execute(
        update(Accrual)
        .where(
            Accrual.id.in_(wanted),
            Accrual.payout_id.is_(None),
            Accrual.status == AccrualStatus.OPEN,
            Accrual.player_id == player,
        )
        .values(payout_id=payout_id)
        .returning(Accrual.id, Accrual.amount_raw)
        .execution_options(synchronize_session=False)
    )
    return {accrual_id: amount_raw for accrual_id, amount_raw in result.all()}


async def release_claims(session: AsyncSession, payout_id: int) -> int:
    """Clear the payout's claim on its accruals so a later payout can claim them again.

    Call this only for a payout that can never be confirmed. Returns how many accruals were
    released. Their `payout_accruals` rows stay as history.
    """
    result = await session.execute(
        update(Accrual)
        .where(Accrual.payout_id == payout_id)
        .values(payout_id=None)
        .returning(Accrual.id)
        .execution_options(synchronize_session=False)
    )
    return len(list(result.scalars()))
