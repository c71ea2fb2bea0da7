"""Payout rows and their state changes, each inside the caller's transaction.

A payout moves `pending` → `signed` → `submitted` → `confirmed`, or ends `failed` or
`dry_run`. The functions here only touch the database; `payout_processor` drives the sends.

Money rules kept here:
- a payout, its claimed accruals and their `PayoutAccrual` history rows are written in one
  transaction, and its amount is the exact sum of the whole accruals it claims;
- an accrual is claimed only while it is open and unclaimed (`payout_id IS NULL`), with a
  conditional UPDATE, so it can never belong to two live payouts;
- only `fail_payout` clears claims, and its callers use it only for a payout whose block can
  never be confirmed.

A dry-run payout stores the synthetic reference `dryrun-<idempotency key>` in `block_hash`.
The reference contains a hyphen and a block hash is 64 hex digits, so the two can never
collide. The column's unique constraint keeps references unique.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.claims import ClaimRequest, claim_accruals_for, record_claims, release_claims
from core.db.models import (
    FINAL_PAYOUT_STATES,
    Accrual,
    AccrualStatus,
    Payout,
    PayoutState,
)
from core.db.raw_sum import sum_raw_amounts
from core.errors import Pay2SlayError
from core.observability.metrics import Metrics
from core.services.audit import record_audit
from core.services.caps import ClaimPlan, SplitPlan
from core.services.totals import add_to_period_totals

log = structlog.get_logger(__name__)

# The states a live payout passes through before it is final. Queries list them with IN, which
# reads `ix_payouts_state`; NOT IN over the final states would scan every payout ever made.
UNFINISHED_PAYOUT_STATES = tuple(state for state in PayoutState if state not in FINAL_PAYOUT_STATES)

DRY_RUN_REFERENCE_PREFIX = "dryrun-"

# States a payout may be in when it moves to each state.
_ALLOWED_BEFORE: dict[PayoutState, frozenset[PayoutState]] = {
    PayoutState.SIGNED: frozenset({PayoutState.PENDING}),
    PayoutState.SUBMITTED: frozenset({PayoutState.PENDING, PayoutState.SIGNED}),
    PayoutState.CONFIRMED: frozenset(
        {PayoutState.PENDING, PayoutState.SIGNED, PayoutState.SUBMITTED}
    ),
    PayoutState.FAILED: frozenset({PayoutState.PENDING, PayoutState.SIGNED, PayoutState.SUBMITTED}),
}


class ClaimConflictError(Pay2SlayError):
    """An accrual planned for a payout was claimed, split, held or voided in the meantime."""

    safe_message = "Some accruals changed while the payout was being created; nothing was claimed."


class PayoutStateError(Pay2SlayError):
    """A state change that the payout's current state does not allow."""

    safe_message = "The payout is not in a state that allows this change."


@dataclass(frozen=True)
class NewPayout:
    """Everything needed to create one payout row."""

    player_id: int
    destination: str
    plan: ClaimPlan
    dry_run: bool
    settlement_run_id: int | None = None
    # True when the local signer sends it, so its key carries the local prefix. A payout
    # whose key lacks the prefix may have been sent by the node wallet under that key.
    signed_locally: bool = False


# Marks the idempotency key of a live payout created for the local signer.
LOCAL_SIGNER_KEY_PREFIX = "local-"


def new_idempotency_key() -> str:
    """Return a fresh key for the node-wallet `send` id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


def created_for_local_signer(idempotency_key: str) -> bool:
    """Return whether a payout was created for the local signer, so no wallet used its key."""
    return idempotency_key.startswith(LOCAL_SIGNER_KEY_PREFIX)


def dry_run_reference(idempotency_key: str) -> str:
    """Return the synthetic reference stored as a dry-run payout's `block_hash`."""
    return f"{DRY_RUN_REFERENCE_PREFIX}{idempotency_key}"


async def create_payout(
    session: AsyncSession,
    new: NewPayout,
    *,
    at: datetime,
    metrics: Metrics,
    actor_discord_id: int | None = None,
) -> Payout:
    """Create one payout and claim its accruals in the session's transaction.

    See `create_payouts`; raises `ClaimConflictError` the same way.
    """
    [payout] = await create_payouts(
        session, [new], at=at, metrics=metrics, actor_discord_id=actor_discord_id
    )
    return payout


async def create_payouts(
    session: AsyncSession,
    news: Sequence[NewPayout],
    *,
    at: datetime,
    metrics: Metrics,
    actor_discord_id: int | None = None,
) -> list[Payout]:
    """Create payouts and claim their accruals in the session's transaction, in order.

    A planned split marks the parent accrual `split` and adds two children. Each child's
    amount is its kills times the parent's raw per kill, and the payout claims the first
    child. Raises `ClaimConflictError` when any planned accrual is no longer open and
    unclaimed, or the claimed amounts do not add up to a payout's amount; the caller's
    transaction must then roll back. The payouts are inserted in one statement, the claims
    take two, and the claim records and audit entries are one statement each.
    """
    claim_ids: list[list[int]] = []
    for new in news:
        ids = list(new.plan.whole_ids)
        if new.plan.split is not None:
            ids.append(await _split_accrual(session, new.player_id, new.plan.split))
        claim_ids.append(ids)

    payouts = [_new_payout_row(new, at) for new in news]
    session.add_all(payouts)
    await session.flush()

    claimed_by_payout = await claim_accruals_for(
        session,
        [
            ClaimRequest(payout.id, new.player_id, ids)
            for new, payout, ids in zip(news, payouts, claim_ids, strict=True)
        ],
    )
    claims: dict[int, list[int]] = {}
    for new, payout, ids in zip(news, payouts, claim_ids, strict=True):
        claimed = claimed_by_payout[payout.id]
        if claimed.keys() != set(ids):
            raise ClaimConflictError()
        claimed_raw = sum(claimed.values())
        if claimed_raw != payout.amount_raw:
            # The plan was built from rows that changed underneath it; never pay a wrong
            # amount.
            log.error(
                "payout_amount_mismatch",
                payout_id=payout.id,
                amount_raw=payout.amount_raw,
                claimed_raw=claimed_raw,
            )
            raise ClaimConflictError()
        claims[payout.id] = sorted(claimed)
        record_audit(
            session,
            action="payout_dry_run" if new.dry_run else "payout_created",
            at=at,
            actor_discord_id=actor_discord_id,
            player_id=new.player_id,
            payout_id=payout.id,
            detail={
                "amount_raw": payout.amount_raw,
                "kills": payout.kills,
                "accruals": len(ids),
                "split_accrual_id": None if new.plan.split is None else new.plan.split.accrual_id,
                "settlement_run_id": new.settlement_run_id,
            },
        )
    await record_claims(session, claims)
    await session.flush()

    for payout in payouts:
        metrics.count_payout(payout.state.value)
        log.info(
            "payout_created",
            payout_id=payout.id,
            player_id=payout.player_id,
            amount_raw=payout.amount_raw,
            kills=payout.kills,
            state=payout.state.value,
        )
    return payouts


def _new_payout_row(new: NewPayout, at: datetime) -> Payout:
    key = new_idempotency_key()
    if new.signed_locally and not new.dry_run:
        key = f"{LOCAL_SIGNER_KEY_PREFIX}{key}"
    return Payout(
        player_id=new.player_id,
        destination=new.destination,
        amount_raw=new.plan.amount_raw,
        kills=new.plan.kills,
        state=PayoutState.DRY_RUN if new.dry_run else PayoutState.PENDING,
        dry_run=new.dry_run,
        idempotency_key=key,
        block_hash=dry_run_reference(key) if new.dry_run else None,
        attempts=0,
        settlement_run_id=new.settlement_run_id,
        created_at=at,
        updated_at=at,
    )


async def _split_accrual(session: AsyncSession, player_id: int, split: SplitPlan) -> int:
    parent = await session.get(
        Accrual, split.accrual_id, with_for_update=True, populate_existing=True
    )
    if (
        parent is None
        or parent.player_id != player_id
        or parent.status != AccrualStatus.OPEN
        or parent.payout_id is not None
        or not 0 < split.kills_paid < parent.kills
        or parent.amount_raw != parent.kills * parent.raw_per_kill
    ):
        raise ClaimConflictError()

    # The row is locked (FOR UPDATE on PostgreSQL, the write transaction on SQLite), so the
    # checks above still hold when the status changes.
    parent.status = AccrualStatus.SPLIT

    kills_left = parent.kills - split.kills_paid
    cut = parent.cursor_from + split.kills_paid
    paid_part = _child(parent, split.kills_paid, parent.cursor_from, cut)
    open_part = _child(parent, kills_left, cut, parent.cursor_to)
    session.add_all([paid_part, open_part])
    await session.flush()
    log.info(
        "accrual_split",
        accrual_id=parent.id,
        player_id=player_id,
        kills_paid=split.kills_paid,
        kills_left=kills_left,
        paid_accrual_id=paid_part.id,
        open_accrual_id=open_part.id,
    )
    return paid_part.id


def _child(parent: Accrual, kills: int, cursor_from: int, cursor_to: int) -> Accrual:
    # The child keeps the parent's creation time so oldest-first order stays as it was.
    return Accrual(
        player_id=parent.player_id,
        epic_account_id=parent.epic_account_id,
        kills=kills,
        raw_per_kill=parent.raw_per_kill,
        amount_raw=kills * parent.raw_per_kill,
        status=AccrualStatus.OPEN,
        parent_id=parent.id,
        cursor_from=cursor_from,
        cursor_to=cursor_to,
        created_at=parent.created_at,
    )


async def lock_payout(session: AsyncSession, payout_id: int) -> Payout | None:
    """Load a payout for a state change: row-locked on PostgreSQL, and on SQLite inside the
    write transaction that `BEGIN IMMEDIATE` already serializes."""
    return await session.get(Payout, payout_id, with_for_update=True, populate_existing=True)


def _move(payout: Payout, new_state: PayoutState, at: datetime) -> PayoutState:
    old_state = payout.state
    if old_state not in _ALLOWED_BEFORE[new_state]:
        raise PayoutStateError(
            f"Payout {payout.id} is {old_state.value}; it cannot become {new_state.value}."
        )
    payout.state = new_state
    payout.updated_at = at
    return old_state


async def mark_signed(
    session: AsyncSession,
    payout: Payout,
    *,
    block_hash: str,
    block_json: str,
    at: datetime,
    metrics: Metrics,
    flush: bool = True,
) -> None:
    """Store the signed block and its hash; the caller commits before the block is submitted.

    With `flush=False` the caller flushes, once for several payouts.
    """
    _move(payout, PayoutState.SIGNED, at)
    payout.block_hash = block_hash
    # The node-wallet sender stores no block contents: its retries repeat the send id.
    payout.block_json = block_json or None
    payout.signed_at = at
    payout.attempts += 1
    record_audit(
        session,
        action="payout_signed",
        at=at,
        player_id=payout.player_id,
        payout_id=payout.id,
        detail={"block_hash": block_hash, "amount_raw": payout.amount_raw},
    )
    if flush:
        await session.flush()
    metrics.count_payout(PayoutState.SIGNED.value)
    log.info("payout_signed", payout_id=payout.id, block_hash=block_hash)


async def mark_submitted(
    session: AsyncSession,
    payout: Payout,
    *,
    block_hash: str,
    at: datetime,
    metrics: Metrics,
    block_json: str | None = None,
    resubmitted: bool = False,
    flush: bool = True,
) -> None:
    """Record that the node accepted the block or already had it.

    A resubmission of a payout already `submitted` only moves `submitted_at`, from which the
    confirmation time-out is measured again. With `flush=False` the caller flushes.
    """
    if payout.block_hash is not None and payout.block_hash != block_hash:
        # The stored block is the one that was signed; a different hash is a sender bug.
        raise PayoutStateError(f"Payout {payout.id} already has a different block hash.")
    if payout.state != PayoutState.SUBMITTED:
        _move(payout, PayoutState.SUBMITTED, at)
        metrics.count_payout(PayoutState.SUBMITTED.value)
    payout.block_hash = block_hash
    if block_json is not None and payout.block_json is None:
        payout.block_json = block_json
    payout.submitted_at = at
    payout.updated_at = at
    if resubmitted:
        payout.attempts += 1
    record_audit(
        session,
        action="payout_resubmitted" if resubmitted else "payout_submitted",
        at=at,
        player_id=payout.player_id,
        payout_id=payout.id,
        detail={"block_hash": block_hash, "amount_raw": payout.amount_raw},
    )
    if flush:
        await session.flush()
    log.info(
        "payout_resubmitted" if resubmitted else "payout_submitted",
        payout_id=payout.id,
        amount_raw=payout.amount_raw,
        block_hash=block_hash,
    )


async def mark_confirmed(
    session: AsyncSession,
    payout: Payout,
    *,
    at: datetime,
    zone: ZoneInfo,
    metrics: Metrics,
) -> None:
    """Record the confirmation and add the amount to the player's period totals."""
    _move(payout, PayoutState.CONFIRMED, at)
    payout.confirmed_at = at
    await add_to_period_totals(
        session, player_id=payout.player_id, at=at, zone=zone, paid_raw=payout.amount_raw
    )
    record_audit(
        session,
        action="payout_confirmed",
        at=at,
        player_id=payout.player_id,
        payout_id=payout.id,
        detail={"block_hash": payout.block_hash, "amount_raw": payout.amount_raw},
    )
    await session.flush()
    metrics.count_payout(PayoutState.CONFIRMED.value)
    metrics.observe_paid_raw(payout.amount_raw)
    log.info(
        "payout_confirmed",
        payout_id=payout.id,
        amount_raw=payout.amount_raw,
        block_hash=payout.block_hash,
    )


async def fail_payout(
    session: AsyncSession,
    payout: Payout,
    *,
    reason: str,
    at: datetime,
    metrics: Metrics,
    actor_discord_id: int | None = None,
) -> int:
    """Mark a payout failed and release its accruals so a later payout can claim them.

    Call it only when the payout's block can never be confirmed (never sent, rejected for
    good, or its place in the chain taken by another confirmed block). Returns how many
    accruals were released; `PayoutAccrual` keeps the history.

    The block hash moves out of the unique `block_hash` column into the audit entry, and the
    block itself stays in `block_json`. A later payout of the same amount to the same wallet,
    built on the same frontier, is the very same block and gets the same hash.
    """
    _move(payout, PayoutState.FAILED, at)
    payout.failure_reason = reason
    block_hash = payout.block_hash
    payout.block_hash = None
    released_count = await release_claims(session, payout.id)
    record_audit(
        session,
        action="payout_failed",
        at=at,
        actor_discord_id=actor_discord_id,
        player_id=payout.player_id,
        payout_id=payout.id,
        detail={
            "reason": reason,
            "amount_raw": payout.amount_raw,
            "released_accruals": released_count,
            "block_hash": block_hash,
        },
    )
    await session.flush()
    metrics.count_payout(PayoutState.FAILED.value)
    log.warning(
        "payout_failed",
        payout_id=payout.id,
        amount_raw=payout.amount_raw,
        released_accruals=released_count,
        block_hash=block_hash,
        reason=reason,
    )
    return released_count


async def unfinished_payout_ids(session: AsyncSession) -> list[int]:
    """Return the ids of live payouts not yet final, oldest first."""
    rows = await session.scalars(
        select(Payout.id).where(Payout.state.in_(UNFINISHED_PAYOUT_STATES)).order_by(Payout.id)
    )
    return list(rows)


async def lock_payouts(session: AsyncSession, payout_ids: Sequence[int]) -> dict[int, Payout]:
    """Load several payouts for state changes, as `lock_payout` does for one."""
    rows = await session.scalars(
        select(Payout)
        .where(Payout.id.in_(payout_ids))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {payout.id: payout for payout in rows}


async def chained_successors(session: AsyncSession, block_hash: str) -> list[Payout]:
    """Return the unfinished payouts whose stored block follows `block_hash`, row-locked.

    A block needs the block it follows in the chain. When that block can never be confirmed,
    neither can the stored blocks after it, `signed` or already `submitted`.
    """
    rows = await session.scalars(
        select(Payout)
        .where(
            Payout.state.in_([PayoutState.SIGNED, PayoutState.SUBMITTED]),
            Payout.block_json.is_not(None),
        )
        .order_by(Payout.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    previous = block_hash.upper()
    return [payout for payout in rows if _stored_previous(payout.block_json) == previous]


def _stored_previous(block_json: str | None) -> str | None:
    try:
        previous = json.loads(block_json or "").get("previous")
    except (ValueError, AttributeError):
        return None
    return previous.upper() if isinstance(previous, str) else None


async def in_flight_raw(session: AsyncSession) -> int:
    """Return the raw of live payouts that may still leave the operator account.

    The database adds the amounts, so a few rows come back however many payouts are in
    flight. Settlement reads this before every batch, and the payouts it sent stay unfinished
    until the confirmation job runs after it.
    """
    return await sum_raw_amounts(
        session, Payout.amount_raw, Payout.id, Payout.state.in_(UNFINISHED_PAYOUT_STATES)
    )
