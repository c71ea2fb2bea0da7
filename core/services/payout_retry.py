"""Admin retry of one payout, under the settlement lock and through the same state machine.

- A confirmed payout reports its block hash.
- A payout still in flight is reconciled against the ledger, as before a settlement.
- A failed payout is retried as a new payout of the accruals it claimed that are still open
  and unclaimed (for an accrual split since, its open unclaimed parts). When a later payout
  already claimed them, that payout is reported instead.
- A dry-run payout moved no money and keeps its claims until the go-live release.

Nothing here builds a second send for the same accruals: a new payout can only claim
accruals whose `payout_id` is NULL, and only a failed payout's block can never land. The
retry ignores the payout and kill caps, because an admin asked for it and the failed payout it
replaces never counted towards them. Eligibility and the balance floor still apply.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.banano.rpc_errors import NodeError
from core.db.models import (
    ACTIVE_EPIC_LINK,
    Accrual,
    AccrualStatus,
    EpicLink,
    Payout,
    PayoutAccrual,
    PayoutState,
    Player,
    Wallet,
)
from core.services.audit import record_audit
from core.services.caps import ClaimPlan
from core.services.faucet_flags import is_paused
from core.services.payout_processor import PayoutAction
from core.services.payouts import ClaimConflictError, NewPayout, create_payout, in_flight_raw
from core.services.settlement import SettlementService

log = structlog.get_logger(__name__)


class RetryKind(enum.StrEnum):
    """Kind of outcome of a retry request."""

    CONFIRMED = "confirmed"
    IN_FLIGHT = "in_flight"
    RETRIED = "retried"
    ALREADY_CLAIMED = "already_claimed"
    NOTHING_TO_RETRY = "nothing_to_retry"
    DRY_RUN = "dry_run"
    NOT_FOUND = "not_found"
    BUSY = "busy"
    REFUSED = "refused"


@dataclass(frozen=True)
class RetryOutcome:
    """The result of `/payout-retry`; `message` is safe to show to the admin."""

    kind: RetryKind
    payout_id: int
    message: str
    state: PayoutState | None = None
    block_hash: str | None = None
    new_payout_id: int | None = None
    other_payout_id: int | None = None


async def retry_payout(
    service: SettlementService, payout_id: int, actor_discord_id: int | None
) -> RetryOutcome:
    """Handle an admin's retry of `payout_id` under the settlement lock, with an audit entry."""
    holder = service.holder_id()
    async with service.lock.hold(
        service.policy.lock_name, holder, service.policy.lock_ttl
    ) as acquired:
        if not acquired:
            outcome = RetryOutcome(
                RetryKind.BUSY,
                payout_id,
                "A settlement is running right now. Try again in a minute.",
            )
        else:
            outcome = await _retry_locked(service, payout_id, actor_discord_id)

    if outcome.kind is not RetryKind.NOT_FOUND:
        async with service.db.write() as session:
            record_audit(
                session,
                action="payout_retry",
                at=service.now(),
                actor_discord_id=actor_discord_id,
                payout_id=payout_id,
                detail={
                    "outcome": outcome.kind.value,
                    "new_payout_id": outcome.new_payout_id,
                    "other_payout_id": outcome.other_payout_id,
                },
            )
    log.info(
        "payout_retry",
        payout_id=payout_id,
        actor_discord_id=actor_discord_id,
        outcome=outcome.kind.value,
        new_payout_id=outcome.new_payout_id,
    )
    return outcome


async def _retry_locked(
    service: SettlementService, payout_id: int, actor_discord_id: int | None
) -> RetryOutcome:
    async with service.db.read() as session:
        payout = await session.get(Payout, payout_id)
        state = None if payout is None else payout.state
        block_hash = None if payout is None else payout.block_hash

    if state is None:
        return RetryOutcome(RetryKind.NOT_FOUND, payout_id, f"There is no payout {payout_id}.")
    if state is PayoutState.CONFIRMED:
        return RetryOutcome(
            RetryKind.CONFIRMED,
            payout_id,
            f"Payout {payout_id} is confirmed; nothing to retry.",
            state=state,
            block_hash=block_hash,
        )
    if state is PayoutState.DRY_RUN:
        return RetryOutcome(
            RetryKind.DRY_RUN,
            payout_id,
            f"Payout {payout_id} was a dry run and sent nothing. Its kills are paid after the "
            "go-live release of dry-run payouts.",
            state=state,
        )
    async with service.db.read() as session:
        paused = await is_paused(session)
    if paused:
        # A retry may submit a block or send a new payout; a pause stops every send.
        return RetryOutcome(
            RetryKind.REFUSED,
            payout_id,
            f"Payouts are paused by an admin, so payout {payout_id} was not retried. Resume "
            "payouts first, then retry.",
            state=state,
        )
    if state is not PayoutState.FAILED:
        return await _reconcile_in_flight(service, payout_id)
    return await _retry_failed(service, payout_id, actor_discord_id)


async def _reconcile_in_flight(service: SettlementService, payout_id: int) -> RetryOutcome:
    reconciler = service.reconciler
    if reconciler is not None:
        action = await reconciler.reconcile_payout(payout_id)
        log.info("payout_retry_reconciled", payout_id=payout_id, action=action.value)
    async with service.db.read() as session:
        payout = await session.get(Payout, payout_id)
        assert payout is not None
        state, block_hash = payout.state, payout.block_hash
    return RetryOutcome(
        RetryKind.CONFIRMED if state is PayoutState.CONFIRMED else RetryKind.IN_FLIGHT,
        payout_id,
        f"Payout {payout_id} was checked against the ledger and is now {state.value}.",
        state=state,
        block_hash=block_hash,
    )


@dataclass(frozen=True)
class _Claimable:
    """The failed payout's accruals split by what became of them."""

    open_ids: list[int]
    kills: int
    amount_raw: int
    later_payout_ids: list[int]


async def _collect_accruals(session: AsyncSession, payout_id: int) -> _Claimable:
    """Follow the failed payout's accruals, and the parts of those split since, to today."""
    frontier = list(
        await session.scalars(
            select(PayoutAccrual.accrual_id).where(PayoutAccrual.payout_id == payout_id)
        )
    )
    open_ids: list[int] = []
    kills = 0
    amount_raw = 0
    later: set[int] = set()
    while frontier:
        rows = await session.scalars(select(Accrual).where(Accrual.id.in_(frontier)))
        split_ids: list[int] = []
        for accrual in rows:
            if accrual.status is AccrualStatus.SPLIT:
                split_ids.append(accrual.id)
            elif accrual.payout_id is not None and accrual.payout_id != payout_id:
                later.add(accrual.payout_id)
            elif accrual.status is AccrualStatus.OPEN and accrual.payout_id is None:
                open_ids.append(accrual.id)
                kills += accrual.kills
                amount_raw += accrual.amount_raw
        if not split_ids:
            break
        frontier = list(
            await session.scalars(select(Accrual.id).where(Accrual.parent_id.in_(split_ids)))
        )
    return _Claimable(sorted(open_ids), kills, amount_raw, sorted(later))


async def _retry_failed(
    service: SettlementService, payout_id: int, actor_discord_id: int | None
) -> RetryOutcome:
    async with service.db.read() as session:
        claimable = await _collect_accruals(session, payout_id)
        payout = await session.get(Payout, payout_id)
        assert payout is not None
        player_id = payout.player_id
        destination, refusal = await _eligible_destination(session, player_id)

    if not claimable.open_ids:
        if claimable.later_payout_ids:
            other = claimable.later_payout_ids[-1]
            return RetryOutcome(
                RetryKind.ALREADY_CLAIMED,
                payout_id,
                f"Payout {payout_id} failed and payout {other} already covers its kills.",
                state=PayoutState.FAILED,
                other_payout_id=other,
            )
        return RetryOutcome(
            RetryKind.NOTHING_TO_RETRY,
            payout_id,
            f"Payout {payout_id} failed and none of its kills are open now (held or voided).",
            state=PayoutState.FAILED,
        )
    if destination is None:
        return RetryOutcome(RetryKind.REFUSED, payout_id, refusal, state=PayoutState.FAILED)

    floor_refusal = await _floor_refusal(service, claimable.amount_raw)
    if floor_refusal is not None:
        return RetryOutcome(RetryKind.REFUSED, payout_id, floor_refusal, state=PayoutState.FAILED)

    plan = ClaimPlan(
        whole_ids=tuple(claimable.open_ids),
        split=None,
        kills=claimable.kills,
        amount_raw=claimable.amount_raw,
    )
    dry_run = service.policy.dry_run
    try:
        async with service.db.write() as session:
            new_payout = await create_payout(
                session,
                NewPayout(
                    player_id=player_id,
                    destination=destination,
                    plan=plan,
                    dry_run=dry_run,
                    signed_locally=service.processor is not None
                    and service.processor.signs_locally,
                ),
                at=service.now(),
                metrics=service.metrics,
                actor_discord_id=actor_discord_id,
            )
            new_payout_id = new_payout.id
    except ClaimConflictError:
        return RetryOutcome(
            RetryKind.REFUSED,
            payout_id,
            "The payout's kills changed while the retry ran. Run the retry again.",
            state=PayoutState.FAILED,
        )
    await service.after_step("created", new_payout_id)

    action_text = "recorded as a dry run"
    if not dry_run:
        processor = service.processor
        assert processor is not None
        action = await processor.send(new_payout_id)
        action_text = {
            PayoutAction.SUBMITTED: "sent",
            PayoutAction.FAILED: "rejected by the node",
        }.get(action, "sent, with its outcome still unknown")

    partly = ""
    if claimable.later_payout_ids:
        partly = f" Payouts {', '.join(map(str, claimable.later_payout_ids))} cover the rest."
    return RetryOutcome(
        RetryKind.RETRIED,
        payout_id,
        f"Payout {payout_id} was retried as payout {new_payout_id}, {action_text}.{partly}",
        state=PayoutState.FAILED,
        new_payout_id=new_payout_id,
        other_payout_id=claimable.later_payout_ids[-1] if claimable.later_payout_ids else None,
    )


async def _eligible_destination(session: AsyncSession, player_id: int) -> tuple[str | None, str]:
    """Return the player's wallet if they may be paid now, else None and the reason."""
    player = await session.get(Player, player_id)
    if player is None:
        return None, "The payout's player no longer exists."
    if player.frozen:
        return None, "The player is frozen. Unfreeze them before retrying."
    if player.guild_member is not True:
        return None, "The player is not a guild member, so they cannot be paid."
    link = await session.scalar(
        select(EpicLink.id).where(EpicLink.player_id == player_id, ACTIVE_EPIC_LINK)
    )
    if link is None:
        return None, "The player has no Epic link, so they cannot be paid."
    address = await session.scalar(select(Wallet.address).where(Wallet.player_id == player_id))
    if address is None:
        return None, "The player has no wallet registered."
    return address, ""


async def _floor_refusal(service: SettlementService, amount_raw: int) -> str | None:
    if service.policy.dry_run:
        return None
    processor = service.processor
    assert processor is not None
    try:
        balance_raw = await processor.sender.operator_balance_raw()
    except NodeError:
        return "The operator balance could not be read from the Banano node. Try again later."
    async with service.db.read() as session:
        available_raw = balance_raw - await in_flight_raw(session)
    if available_raw - amount_raw < service.policy.min_operator_balance_raw:
        return "The operator balance would fall below the floor. Top up the operator account."
    return None
