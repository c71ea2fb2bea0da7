"""Regression tests for money findings from a break test of settlement."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from core.banano.sender import LocalSigner, SendRequest, SignedBlock
from core.db.models import Accrual, AccrualStatus, AuditEntry, Payout, PayoutState, Player
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.banano_replies import block_info as block_info_reply
from core.services.faucet_flags import set_paused
from core.services.payout_processor import PayoutAction
from core.services.payout_retry import RetryKind, retry_payout
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
    operator_key,
)


async def test_lagging_node_keeps_payout_pending(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A node that lost track of a landed block must not make the payout fail and pay again.

    The block lands but the submit reply is lost. The node then reports the block as not found
    and that its previous block has no successor, while the account's confirmed height is
    already past that place. No other block is identified, so the payout stays in doubt.
    """
    world = World(sqlite_database)
    player = await world.add_player()
    await world.add_accrual(player, 2)
    await world.add_accrual(player, 3)
    node.inject_fault("process", Fault.reply_lost_after_apply())
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        run = await stack.service.run("test")
        payout_id = run.payout_ids[0]
        async with world.db.read() as session:
            payout = await session.get(Payout, payout_id)
        assert payout is not None
        assert payout.block_hash is not None
        landed = node.block(payout.block_hash)
        assert landed is not None
        node.confirm_all()

        previous = landed.block.previous
        previous_reply = block_info_reply(node.ledger, {"hash": previous})
        previous_reply["successor"] = "0" * 64
        node.inject_fault("block_info", Fault.raw_body(json.dumps({"error": "Block not found"})))
        node.inject_fault("block_info", Fault.raw_body(json.dumps(previous_reply)))

        assert stack.processor is not None
        action = await stack.processor.reconcile(payout_id)
        assert action is not PayoutAction.FAILED
        async with world.db.read() as session:
            kept = await session.get(Payout, payout_id)
        assert kept is not None
        assert kept.state is not PayoutState.FAILED
        await assert_money_rules(world.db, node, [(player.id, player.address)])

        node.clear_faults()
        await stack.processor.reconcile(payout_id)
    finally:
        await stack.aclose()

    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, [player])
    async with world.db.read() as session:
        settled = await session.get(Payout, payout_id)
    assert settled is not None
    assert settled.state is PayoutState.CONFIRMED


async def test_pause_mid_run_stops_payouts(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A pause set while a run is paying stops the run before its next payout."""
    world = World(sqlite_database)
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 1)

    async def pause_after_first(step: str, _payout_id: int) -> None:
        if step != "created":
            return
        async with world.db.write() as session:
            await set_paused(session, paused=True, at=stack.service.now(), actor_discord_id=42)

    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=pause_after_first)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert len(report.payout_ids) == 1
    assert report.stop_reason is not None
    assert "paused" in report.stop_reason
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_balance_read_before_each_payout(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A balance that drops during a run stops payouts that would go below the floor."""
    world = World(sqlite_database)
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 1)
    operator = node.ledger.accounts[operator_key().address]
    floor_raw = operator.balance_raw - 10 * RAW_PER_KILL
    drained = False

    async def drain_after_first(step: str, _payout_id: int) -> None:
        nonlocal drained
        if step != "created" or drained:
            return
        drained = True
        sender = stack.sender
        assert isinstance(sender, LocalSigner)

        async def ignore(_: SignedBlock) -> None:
            return None

        request = SendRequest(
            payout_id=0,
            idempotency_key="drain",
            destination=node.genesis.address,
            amount_raw=9 * RAW_PER_KILL,
        )
        await sender.send(request, ignore)
        node.confirm_all()

    stack = build_stack(
        world.db, node.base_url, make_policy(floor_raw=floor_raw), step_hook=drain_after_first
    )
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    # The first payout was sent on the old balance. After the drain only 1 kill's worth is
    # left above the floor, and the first payout in flight already uses it.
    assert len(report.payout_ids) == 1
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_retry_rejected_while_paused(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """An admin's retry sends nothing while payouts are paused."""
    world = World(sqlite_database)
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("process", Fault.error("Block work is less than threshold"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        payout_id = report.payout_ids[0]
        async with world.db.read() as session:
            failed = await session.get(Payout, payout_id)
        assert failed is not None
        assert failed.state is PayoutState.FAILED
        async with world.db.write() as session:
            await set_paused(session, paused=True, at=stack.service.now(), actor_discord_id=42)

        outcome = await retry_payout(stack.service, payout_id, 42)
    finally:
        await stack.aclose()

    assert outcome.kind is RetryKind.REFUSED
    assert outcome.new_payout_id is None
    assert "paused" in outcome.message
    async with world.db.read() as session:
        count = len((await session.scalars(select(Payout.id))).all())
    assert count == 1


async def test_frozen_before_send_not_paid(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A player frozen after the claim and before the send is not paid; accruals go back."""
    world = World(sqlite_database)
    player = await world.add_player()
    await world.add_accrual(player, 2)

    async def freeze_after_claim(step: str, _payout_id: int) -> None:
        if step != "created":
            return
        async with world.db.write() as session:
            await session.execute(update(Player).where(Player.id == player.id).values(frozen=True))

    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=freeze_after_claim)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert len(report.payout_ids) == 1
    async with world.db.read() as session:
        payout = await session.get(Payout, report.payout_ids[0])
        open_accruals = (
            await session.scalars(
                select(Accrual.id).where(
                    Accrual.player_id == player.id, Accrual.status == AccrualStatus.OPEN
                )
            )
        ).all()
    assert payout is not None
    assert payout.state is PayoutState.FAILED
    assert payout.failure_reason == "player frozen before send"
    assert payout.block_hash is None
    assert len(open_accruals) == 1
    await assert_money_rules(world.db, node, [(player.id, player.address)])


async def test_sender_switch_keeps_payout_pending(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A node-wallet payout whose replies were lost is not failed by a local-signer reconciler."""
    world = World(sqlite_database)
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("send", Fault.reply_lost_after_apply(), times=4)
    wallet = build_stack(world.db, node.base_url, make_policy(), sender_kind="wallet")
    try:
        report = await wallet.service.run("test")
    finally:
        await wallet.aclose()
    payout_id = report.payout_ids[0]
    async with world.db.read() as session:
        pending = await session.get(Payout, payout_id)
    assert pending is not None
    assert pending.state is PayoutState.PENDING
    assert pending.block_hash is None
    node.clear_faults()

    local = build_stack(world.db, node.base_url, make_policy())
    try:
        assert local.processor is not None
        action = await local.processor.reconcile(payout_id)
        await local.service.run("test")
    finally:
        await local.aclose()

    assert action is PayoutAction.UNKNOWN
    async with world.db.read() as session:
        kept = await session.get(Payout, payout_id)
        notes = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.payout_id == payout_id)
            )
        ).all()
    assert kept is not None
    assert kept.state is PayoutState.PENDING
    assert "payout_needs_operator" in notes
    await assert_money_rules(world.db, node, [(player.id, player.address)])

    # Back on the node wallet, the same send id settles the payout once.
    await drain(world.db, node, node_url=node.base_url, sender_kind="wallet")
    await assert_paid_exactly_once(world.db, node, [player])
