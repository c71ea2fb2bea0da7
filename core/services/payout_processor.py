"""Driving live payouts through the sender and the ledger: first sends and reconciliation.

Every state change is committed in its own transaction before the next network call. After
a crash at any point, a payout's state shows how far it got:
- `pending` without a block hash: with the local signer nothing was submitted (the block is
  stored before it is submitted); with the node-wallet sender the send may have happened and
  is repeated with the same id, which returns the first block;
- `signed` or `submitted`: the stored hash is looked up and the stored block resubmitted
  exactly, or, once another confirmed block took its place in the chain, the payout fails.

An unknown outcome never releases accruals; `fail_payout` runs only when the block can never
be confirmed.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select

from core.banano.blocks import StateBlock
from core.banano.errors import InvalidBlockError
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import NodeError
from core.banano.sender import (
    LocalSigner,
    Sender,
    SendOutcome,
    SendRequest,
    SendResult,
    SignedBlock,
)
from core.clock import Clock, utc_now
from core.db.models import FINAL_PAYOUT_STATES, Payout, PayoutState, Player
from core.db.session import Database
from core.observability.metrics import Metrics
from core.observability.tracing import span
from core.services.audit import record_audit
from core.services.ledger_check import SlotState, block_state, inspect_slot, is_final_rejection
from core.services.payouts import (
    chained_successors,
    created_for_local_signer,
    fail_payout,
    lock_payout,
    lock_payouts,
    mark_confirmed,
    mark_signed,
    mark_submitted,
)

log = structlog.get_logger(__name__)

# Called after each committed step with the step's name and the payout id; tests use it to
# simulate a crash at that point. Steps: created, signed, replied, submitted, confirmed, failed.
StepHook = Callable[[str, int], Awaitable[None]]


class PayoutAction(enum.StrEnum):
    """Effect of one send or reconciliation on a payout; also the reconciler metric's labels."""

    CONFIRMED = "confirmed"
    SUBMITTED = "submitted"
    RESUBMITTED = "resubmitted"
    FAILED = "failed"
    STILL_PENDING = "still_pending"
    UNKNOWN = "unknown"
    FINAL = "final"


@dataclass(frozen=True)
class PayoutSnapshot:
    """The fields of a payout that a send or a reconciliation reads, outside any transaction."""

    id: int
    player_id: int
    state: PayoutState
    destination: str
    amount_raw: int
    idempotency_key: str
    block_hash: str | None
    block_json: str | None
    last_sent_at: datetime

    @classmethod
    def of(cls, payout: Payout) -> PayoutSnapshot:
        """Copy the fields out of an ORM row."""
        return cls(
            id=payout.id,
            player_id=payout.player_id,
            state=payout.state,
            destination=payout.destination,
            amount_raw=payout.amount_raw,
            idempotency_key=payout.idempotency_key,
            block_hash=payout.block_hash,
            block_json=payout.block_json,
            last_sent_at=payout.submitted_at or payout.signed_at or payout.created_at,
        )

    @property
    def request(self) -> SendRequest:
        """The send request for this payout, with its own idempotency key."""
        return SendRequest(
            payout_id=self.id,
            idempotency_key=self.idempotency_key,
            destination=self.destination,
            amount_raw=self.amount_raw,
        )

    @property
    def stored_block(self) -> SignedBlock | None:
        """The stored block, or None while nothing was stored."""
        if self.block_hash is None:
            return None
        return SignedBlock(block_hash=self.block_hash, block_json=self.block_json or "")


class PayoutProcessor:
    """Sends live payouts and reconciles unfinished ones against the ledger."""

    def __init__(
        self,
        db: Database,
        sender: Sender,
        node: NodeClient,
        *,
        zone: ZoneInfo,
        confirmation_timeout: timedelta,
        metrics: Metrics,
        clock: Clock = utc_now,
        step_hook: StepHook | None = None,
    ) -> None:
        self._db = db
        self._sender = sender
        self._node = node
        self._zone = zone
        self._confirmation_timeout = confirmation_timeout
        self._metrics = metrics
        self._clock = clock
        self._step_hook = step_hook
        # Only the local signer stores its block before anything reaches the node. With any
        # other sender a pending payout may already have been sent.
        self._stores_before_send = isinstance(sender, LocalSigner)

    @property
    def sender(self) -> Sender:
        """The sender of the operator account."""
        return self._sender

    @property
    def signs_locally(self) -> bool:
        """Whether the sender is the local signer, which stores each block before sending it."""
        return self._stores_before_send

    async def snapshot(self, payout_id: int) -> PayoutSnapshot | None:
        """Read a payout's current fields; None when it does not exist."""
        async with self._db.read() as session:
            payout = await session.get(Payout, payout_id)
            return None if payout is None else PayoutSnapshot.of(payout)

    async def send(self, payout_id: int) -> PayoutAction:
        """Send a pending payout for the first time and record what became of it."""
        with span("payout.send", payout_id=payout_id) as current:
            action = await self._send(payout_id)
            current.set_attributes(action=action.value)
        return action

    async def _send(self, payout_id: int) -> PayoutAction:
        snapshot = await self.snapshot(payout_id)
        if snapshot is None or snapshot.state != PayoutState.PENDING:
            raise ValueError(f"payout {payout_id} is not pending")
        if self._stores_before_send and snapshot.block_hash is None:
            # Nothing was signed yet, so a player frozen since the claim can be failed safely.
            # A node-wallet send cannot be known to be unsent, so that sender goes ahead.
            async with self._db.read() as session:
                frozen = await session.scalar(
                    select(Player.frozen).where(Player.id == snapshot.player_id)
                )
            if frozen:
                log.info("payout_player_frozen", payout_id=payout_id, player_id=snapshot.player_id)
                return await self._fail(payout_id, "player frozen before send", unsigned_only=True)

        async def store_signed_block(signed: SignedBlock) -> None:
            with span("payout.record_signed", payout_id=payout_id, block_hash=signed.block_hash):
                async with self._db.write() as session:
                    payout = await lock_payout(session, payout_id)
                    if payout is None or payout.state != PayoutState.PENDING:
                        # Raising here stops the sender before it submits anything.
                        raise RuntimeError(f"payout {payout_id} changed state before signing")
                    await mark_signed(
                        session,
                        payout,
                        block_hash=signed.block_hash,
                        block_json=signed.block_json,
                        at=self._clock(),
                        metrics=self._metrics,
                    )
            await self._after("signed", payout_id)

        result = await self._sender.send(snapshot.request, store_signed_block)
        await self._after("replied", payout_id)
        return await self._apply_result(payout_id, result, resubmitted=False)

    async def send_many(
        self, payout_ids: Sequence[int], on_stored: Callable[[], None] | None = None
    ) -> list[PayoutAction]:
        """Send pending payouts for the first time, in order; return one action per payout.

        With the local signer the payouts become one chain of blocks (see
        `LocalSigner.send_chain`): one transaction stores every block before the first is
        submitted, and one records every block the node accepted. Other senders send one
        payout at a time. Either way the sends stop at the first payout whose outcome is
        neither submitted nor failed, and the actions list ends there.

        `on_stored` is called once the chain is stored, before its first submission, so the
        caller can use the database while the node works. A chain that stores no block does
        not call it. With one payout at a time it is called before the first send, whatever
        becomes of that send.
        """
        if not isinstance(self._sender, LocalSigner) or len(payout_ids) < 2:
            if on_stored is not None:
                on_stored()
            actions: list[PayoutAction] = []
            for payout_id in payout_ids:
                action = await self.send(payout_id)
                actions.append(action)
                if action not in (PayoutAction.SUBMITTED, PayoutAction.FAILED):
                    break
            return actions
        with span("payout.send_chain", payouts=len(payout_ids)) as current:
            chain_actions = await self._send_chain(self._sender, payout_ids, on_stored)
            current.set_attributes(submitted=chain_actions.count(PayoutAction.SUBMITTED))
        return chain_actions

    async def _send_chain(
        self,
        sender: LocalSigner,
        payout_ids: Sequence[int],
        on_stored: Callable[[], None] | None,
    ) -> list[PayoutAction]:
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(Payout, Player.frozen)
                    .join(Player, Player.id == Payout.player_id)
                    .where(Payout.id.in_(payout_ids))
                )
            ).all()
            found = {
                payout.id: (PayoutSnapshot.of(payout), bool(frozen)) for payout, frozen in rows
            }

        actions: dict[int, PayoutAction] = {}
        requests: list[SendRequest] = []
        for payout_id in payout_ids:
            entry = found.get(payout_id)
            if entry is None or entry[0].state != PayoutState.PENDING or entry[0].block_hash:
                raise ValueError(f"payout {payout_id} is not pending")
            snapshot, frozen = entry
            if frozen:
                # Nothing was signed yet, so a player frozen since the claim is failed safely.
                log.info("payout_player_frozen", payout_id=payout_id, player_id=snapshot.player_id)
                actions[payout_id] = await self._fail(
                    payout_id, "player frozen before send", unsigned_only=True
                )
                continue
            requests.append(snapshot.request)

        async def store_chain(signed: Sequence[tuple[SendRequest, SignedBlock]]) -> None:
            at = self._clock()
            ids = [request.payout_id for request, _ in signed]
            with span("payout.record_signed_chain", payouts=len(ids)):
                async with self._db.write() as session:
                    payouts = await lock_payouts(session, ids)
                    for request, block in signed:
                        payout = payouts.get(request.payout_id)
                        if payout is None or payout.state != PayoutState.PENDING:
                            # Raising here stops the sender before it submits anything.
                            raise RuntimeError(
                                f"payout {request.payout_id} changed state before signing"
                            )
                        await mark_signed(
                            session,
                            payout,
                            block_hash=block.block_hash,
                            block_json=block.block_json,
                            at=at,
                            metrics=self._metrics,
                            flush=False,
                        )
                    await session.flush()
            for payout_id in ids:
                await self._after("signed", payout_id)
            if on_stored is not None:
                on_stored()

        results = await sender.send_chain(requests, store_chain) if requests else []
        for request in requests:
            await self._after("replied", request.payout_id)

        accepted = [
            (request.payout_id, result.block_hash)
            for request, result in zip(requests, results, strict=True)
            if result.outcome is SendOutcome.ACCEPTED and result.block_hash is not None
        ]
        await self._record_chain_submitted(accepted)
        for payout_id, _ in accepted:
            actions[payout_id] = PayoutAction.SUBMITTED

        for request, result in zip(requests, results, strict=True):
            if request.payout_id in actions:
                continue
            if result.outcome is SendOutcome.HELD:
                # Failing the block it follows failed this one too. If that block is in
                # doubt, this one waits for the reconciler.
                actions[request.payout_id] = await self._held_action(request.payout_id)
            else:
                actions[request.payout_id] = await self._apply_result(
                    request.payout_id, result, resubmitted=False
                )

        ordered: list[PayoutAction] = []
        for payout_id in payout_ids:
            action = actions[payout_id]
            ordered.append(action)
            if action not in (PayoutAction.SUBMITTED, PayoutAction.FAILED):
                break
        return ordered

    async def fail_unsent(self, payout_id: int, reason: str) -> PayoutAction:
        """Fail a pending payout that was never handed to the sender, so nothing was sent."""
        snapshot = await self.snapshot(payout_id)
        if snapshot is None or snapshot.state != PayoutState.PENDING or snapshot.block_hash:
            raise ValueError(f"payout {payout_id} is not an unsent pending payout")
        return await self._fail(payout_id, f"not sent: {reason}", unsigned_only=True)

    async def _held_action(self, payout_id: int) -> PayoutAction:
        snapshot = await self.snapshot(payout_id)
        if snapshot is None:
            return PayoutAction.FINAL
        if snapshot.state is PayoutState.FAILED:
            return PayoutAction.FAILED
        log.info("payout_block_held", payout_id=payout_id, block_hash=snapshot.block_hash)
        return PayoutAction.UNKNOWN

    async def _record_chain_submitted(self, accepted: Sequence[tuple[int, str]]) -> None:
        if not accepted:
            return
        at = self._clock()
        with span("payout.record_submitted_chain", payouts=len(accepted)):
            async with self._db.write() as session:
                payouts = await lock_payouts(session, [payout_id for payout_id, _ in accepted])
                for payout_id, block_hash in accepted:
                    payout = payouts.get(payout_id)
                    if payout is None or payout.state in FINAL_PAYOUT_STATES:
                        continue
                    await mark_submitted(
                        session,
                        payout,
                        block_hash=block_hash,
                        at=at,
                        metrics=self._metrics,
                        flush=False,
                    )
                await session.flush()
        for payout_id, _ in accepted:
            await self._after("submitted", payout_id)

    async def reconcile(self, payout_id: int, *, may_send: bool = True) -> PayoutAction:
        """Check one unfinished payout against the ledger and move it on.

        With `may_send` False (payouts are paused) nothing is submitted or repeated: the
        payout is only confirmed, or failed when its block can never be confirmed.
        """
        with span("payout.reconcile", payout_id=payout_id) as current:
            action = await self._reconcile(payout_id, may_send)
            current.set_attributes(action=action.value)
        return action

    async def _reconcile(self, payout_id: int, may_send: bool) -> PayoutAction:
        snapshot = await self.snapshot(payout_id)
        if snapshot is None or snapshot.state in FINAL_PAYOUT_STATES:
            return PayoutAction.FINAL

        if snapshot.block_hash is None:
            return await self._reconcile_unsigned(snapshot, may_send)

        try:
            confirmed = await block_state(self._node, snapshot.block_hash)
        except NodeError as error:
            log.info("payout_lookup_failed", payout_id=payout_id, error=type(error).__name__)
            return PayoutAction.UNKNOWN

        if confirmed is True:
            return await self._confirm(payout_id)
        if confirmed is False:
            return await self._wait_or_resubmit(snapshot, may_send)
        return await self._reconcile_missing_block(snapshot, may_send)

    async def _reconcile_unsigned(self, snapshot: PayoutSnapshot, may_send: bool) -> PayoutAction:
        if self._stores_before_send and created_for_local_signer(snapshot.idempotency_key):
            reason = "no block was signed before the send stopped, so nothing was sent"
            return await self._fail(snapshot.id, reason, unsigned_only=True)
        if self._stores_before_send:
            # Created for the node wallet (the sender was switched since): the wallet may have
            # sent it under its key, so only an operator can settle it. It stays pending.
            log.error(
                "payout_sender_switched",
                payout_id=snapshot.id,
                player_id=snapshot.player_id,
            )
            async with self._db.write() as session:
                record_audit(
                    session,
                    action="payout_needs_operator",
                    at=self._clock(),
                    player_id=snapshot.player_id,
                    payout_id=snapshot.id,
                    detail={"reason": "sent by another sender; check the node wallet"},
                )
            return PayoutAction.UNKNOWN

        if not may_send:
            return _waits_for_resume(snapshot)
        # The node-wallet send may have happened: repeat it with the same id.
        result = await self._sender.resubmit(snapshot.request, None)
        return await self._apply_result(snapshot.id, result, resubmitted=True)

    async def _wait_or_resubmit(self, snapshot: PayoutSnapshot, may_send: bool) -> PayoutAction:
        assert snapshot.block_hash is not None
        if snapshot.state == PayoutState.SIGNED:
            # The node has the block, so the submission went through before the reply was lost.
            await self._record_submitted(snapshot.id, snapshot.block_hash, resubmitted=False)
            return PayoutAction.SUBMITTED

        waited = self._clock() - snapshot.last_sent_at
        if waited < self._confirmation_timeout:
            return PayoutAction.STILL_PENDING
        if not may_send:
            return _waits_for_resume(snapshot)

        log.warning(
            "payout_confirmation_overdue",
            payout_id=snapshot.id,
            block_hash=snapshot.block_hash,
            waited_seconds=int(waited.total_seconds()),
        )
        result = await self._sender.resubmit(snapshot.request, snapshot.stored_block)
        return await self._apply_result(snapshot.id, result, resubmitted=True)

    async def _reconcile_missing_block(
        self, snapshot: PayoutSnapshot, may_send: bool
    ) -> PayoutAction:
        assert snapshot.block_hash is not None
        block = _stored_state_block(snapshot)
        if block is None:
            # NOTE: a node-wallet block whose hash the node returned but no longer has cannot
            # be placed in the chain without its contents. Repeating the send id on a node
            # that forgot it would send again, so the payout waits for an operator.
            log.error(
                "payout_block_missing_without_contents",
                payout_id=snapshot.id,
                block_hash=snapshot.block_hash,
            )
            return PayoutAction.UNKNOWN

        slot = await inspect_slot(self._node, block)
        if slot.state is SlotState.TAKEN_CONFIRMED:
            reason = f"confirmed block {slot.other_hash or 'unknown'} took this block's place"
            return await self._fail(snapshot.id, reason)
        if slot.state is SlotState.FREE:
            if not may_send:
                return _waits_for_resume(snapshot)
            result = await self._sender.resubmit(snapshot.request, snapshot.stored_block)
            return await self._apply_result(snapshot.id, result, resubmitted=True)

        log.info(
            "payout_block_waiting",
            payout_id=snapshot.id,
            block_hash=snapshot.block_hash,
            slot=slot.state.value,
        )
        if slot.state is SlotState.TAKEN_UNCONFIRMED:
            return PayoutAction.STILL_PENDING
        return PayoutAction.UNKNOWN

    async def _apply_result(
        self, payout_id: int, result: SendResult, *, resubmitted: bool
    ) -> PayoutAction:
        if result.outcome is SendOutcome.ACCEPTED and result.block_hash is not None:
            await self._record_submitted(payout_id, result.block_hash, resubmitted=resubmitted)
            return PayoutAction.RESUBMITTED if resubmitted else PayoutAction.SUBMITTED

        if result.outcome is SendOutcome.REJECTED:
            return await self._judge_rejection(payout_id, result)

        log.warning(
            "payout_outcome_unknown",
            payout_id=payout_id,
            block_hash=result.block_hash,
            reason=result.reason,
        )
        return PayoutAction.UNKNOWN

    async def _judge_rejection(self, payout_id: int, result: SendResult) -> PayoutAction:
        snapshot = await self.snapshot(payout_id)
        if snapshot is None or snapshot.state in FINAL_PAYOUT_STATES:
            return PayoutAction.FINAL
        reason = result.reason or "rejected by the node"

        if result.block_hash is None:
            if self._stores_before_send:
                return await self._fail(payout_id, f"not sent: {reason}", unsigned_only=True)
            # A refused repeat of a node-wallet send does not prove the first one never
            # happened, so the payout stays pending and the same id is repeated later.
            log.warning("payout_send_refused", payout_id=payout_id, reason=reason)
            return PayoutAction.UNKNOWN

        try:
            confirmed = await block_state(self._node, result.block_hash)
        except NodeError as error:
            log.info("payout_lookup_failed", payout_id=payout_id, error=type(error).__name__)
            return PayoutAction.UNKNOWN
        if confirmed is not None:
            # The node has the block after all, so the rejection was about a copy of it.
            await self._record_submitted(payout_id, result.block_hash, resubmitted=False)
            return PayoutAction.SUBMITTED

        if is_final_rejection(result.reason):
            return await self._fail(payout_id, f"rejected by the node: {reason}")

        block = _stored_state_block(snapshot)
        if block is not None:
            slot = await inspect_slot(self._node, block)
            if slot.state is SlotState.TAKEN_CONFIRMED:
                other = slot.other_hash or "unknown"
                return await self._fail(
                    payout_id, f"{reason}: confirmed block {other} took its place"
                )
        log.warning("payout_rejection_unsettled", payout_id=payout_id, reason=reason)
        return PayoutAction.UNKNOWN

    async def _record_submitted(
        self, payout_id: int, block_hash: str, *, resubmitted: bool
    ) -> None:
        with span(
            "payout.record_submitted",
            payout_id=payout_id,
            block_hash=block_hash,
            resubmitted=resubmitted,
        ):
            async with self._db.write() as session:
                payout = await lock_payout(session, payout_id)
                if payout is None or payout.state in FINAL_PAYOUT_STATES:
                    return
                await mark_submitted(
                    session,
                    payout,
                    block_hash=block_hash,
                    at=self._clock(),
                    metrics=self._metrics,
                    resubmitted=resubmitted,
                )
        await self._after("submitted", payout_id)

    async def _confirm(self, payout_id: int) -> PayoutAction:
        with span("payout.record_confirmed", payout_id=payout_id):
            async with self._db.write() as session:
                payout = await lock_payout(session, payout_id)
                if payout is None or payout.state in FINAL_PAYOUT_STATES:
                    return PayoutAction.FINAL
                await mark_confirmed(
                    session, payout, at=self._clock(), zone=self._zone, metrics=self._metrics
                )
        await self._after("confirmed", payout_id)
        return PayoutAction.CONFIRMED

    async def _fail(
        self, payout_id: int, reason: str, *, unsigned_only: bool = False
    ) -> PayoutAction:
        """Fail a payout whose block can never be confirmed, with every stored block after it.

        A block that follows a block which can never be confirmed can never be confirmed
        either, so the unfinished payouts chained after it fail in the same transaction. A
        crash can then never leave one of them waiting for a block that will not come.

        With `unsigned_only` the reason is that nothing was signed, which the caller read
        before this transaction. If the locked row has a block by now (another process that
        still took itself for the lease holder stored one), nothing is failed and the result
        is UNKNOWN, so the block is reconciled like any other.
        """
        failed = [payout_id]
        with span("payout.record_failed", payout_id=payout_id):
            async with self._db.write() as session:
                payout = await lock_payout(session, payout_id)
                if payout is None or payout.state in FINAL_PAYOUT_STATES:
                    return PayoutAction.FINAL
                if unsigned_only and (
                    payout.state is not PayoutState.PENDING or payout.block_hash is not None
                ):
                    log.error(
                        "payout_signed_meanwhile",
                        payout_id=payout_id,
                        state=payout.state.value,
                        block_hash=payout.block_hash,
                    )
                    return PayoutAction.UNKNOWN
                at = self._clock()
                block_hash = payout.block_hash
                await fail_payout(session, payout, reason=reason, at=at, metrics=self._metrics)
                unchecked = [] if block_hash is None else [(payout_id, block_hash)]
                while unchecked:
                    before_id, before_hash = unchecked.pop()
                    for successor in await chained_successors(session, before_hash):
                        if successor.block_hash is not None:
                            unchecked.append((successor.id, successor.block_hash))
                        await fail_payout(
                            session,
                            successor,
                            reason=f"not sent: it follows the block of payout {before_id}, "
                            "which can never be confirmed",
                            at=at,
                            metrics=self._metrics,
                        )
                        failed.append(successor.id)
        for failed_id in failed:
            await self._after("failed", failed_id)
        return PayoutAction.FAILED

    async def _after(self, step: str, payout_id: int) -> None:
        if self._step_hook is not None:
            await self._step_hook(step, payout_id)


def _waits_for_resume(snapshot: PayoutSnapshot) -> PayoutAction:
    log.info("payout_send_waits_for_resume", payout_id=snapshot.id, state=snapshot.state.value)
    return PayoutAction.STILL_PENDING


def _stored_state_block(snapshot: PayoutSnapshot) -> StateBlock | None:
    if not snapshot.block_json:
        return None
    try:
        block = StateBlock.from_json_text(snapshot.block_json)
    except InvalidBlockError:
        log.error("stored_block_unreadable", payout_id=snapshot.id)
        return None
    if block.hash() != (snapshot.block_hash or "").upper():
        log.error("stored_block_mismatch", payout_id=snapshot.id, block_hash=snapshot.block_hash)
        return None
    return block
