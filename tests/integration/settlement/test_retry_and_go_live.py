"""Admin retries of payouts and the go-live release of dry-run payouts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db.models import Accrual, AccrualStatus, AuditEntry, Payout, PayoutState, Player
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.go_live import RELEASE_NOTE, GoLiveRefusedError, release_dry_run_payouts
from core.services.payout_retry import RetryKind, retry_payout
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    TEST_LOCK_NAME,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
)

ADMIN_ID = 777


async def payouts_of(world: World) -> list[Payout]:
    async with world.db.read() as session:
        return list(await session.scalars(select(Payout).order_by(Payout.id)))


async def test_retry_confirmed_reports_hash(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        await stack.service.confirm()
        outcome = await retry_payout(stack.service, report.payout_ids[0], ADMIN_ID)
    finally:
        await stack.aclose()

    [payout] = await payouts_of(world)
    assert outcome.kind is RetryKind.CONFIRMED
    assert outcome.block_hash == payout.block_hash
    assert outcome.new_payout_id is None
    assert node.total_sent_to(player.address) == 2 * RAW_PER_KILL


async def test_retry_failed_creates_new_payout(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    await world.add_accrual(player, 1)
    node.inject_fault("process", Fault.error("Bad signature"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        failed_id = report.payout_ids[0]
        outcome = await retry_payout(stack.service, failed_id, ADMIN_ID)
        again = await retry_payout(stack.service, failed_id, ADMIN_ID)
        await stack.service.confirm()
    finally:
        await stack.aclose()

    first, second = await payouts_of(world)
    assert first.state is PayoutState.FAILED
    assert outcome.kind is RetryKind.RETRIED
    assert outcome.new_payout_id == second.id
    assert second.state is PayoutState.CONFIRMED
    assert second.amount_raw == 3 * RAW_PER_KILL
    # Asking again finds the accruals claimed by the retry.
    assert again.kind is RetryKind.ALREADY_CLAIMED
    assert again.other_payout_id == second.id
    await assert_paid_exactly_once(world.db, node, [player])
    async with world.db.read() as session:
        retries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "payout_retry"))
        )
    assert [entry.actor_discord_id for entry in retries] == [ADMIN_ID, ADMIN_ID]


async def test_retry_after_settlement_reports_later_payout(
    world: World, node: SandboxBananoNode
) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("process", Fault.error("Bad signature"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        failed = await stack.service.run("test")
        later = await stack.service.run("test")
        outcome = await retry_payout(stack.service, failed.payout_ids[0], ADMIN_ID)
    finally:
        await stack.aclose()

    assert outcome.kind is RetryKind.ALREADY_CLAIMED
    assert outcome.other_payout_id == later.payout_ids[0]
    assert len(await payouts_of(world)) == 2
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, [player])


async def test_retry_follows_split_accruals(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 4)
    node.inject_fault("process", Fault.error("Bad signature"))
    unlimited = build_stack(world.db, node.base_url, make_policy())
    capped = build_stack(world.db, node.base_url, make_policy(daily_kills=2))
    try:
        failed = await unlimited.service.run("test")
        # The released accrual is split at the kill cap: two kills paid, two left open.
        split_run = await capped.service.run("test")
        outcome = await retry_payout(unlimited.service, failed.payout_ids[0], ADMIN_ID)
        await unlimited.service.confirm()
    finally:
        await unlimited.aclose()
        await capped.aclose()

    assert outcome.kind is RetryKind.RETRIED
    assert outcome.other_payout_id == split_run.payout_ids[0]
    payouts = await payouts_of(world)
    assert [p.kills for p in payouts] == [4, 2, 2]
    await assert_paid_exactly_once(world.db, node, [player])


async def test_retry_in_flight_reconciles(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("process", Fault.error("Gap previous block"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        [stuck] = await payouts_of(world)
        outcome = await retry_payout(stack.service, report.payout_ids[0], ADMIN_ID)
    finally:
        await stack.aclose()

    assert stuck.state is PayoutState.SIGNED
    assert outcome.kind in (RetryKind.IN_FLIGHT, RetryKind.CONFIRMED)
    [payout] = await payouts_of(world)
    assert payout.state in (PayoutState.SUBMITTED, PayoutState.CONFIRMED)
    assert node.total_sent_to(player.address) == 2 * RAW_PER_KILL


async def test_retry_refusals(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("process", Fault.error("Bad signature"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        missing = await retry_payout(stack.service, 9999, ADMIN_ID)
        async with world.db.write() as session:
            row = await session.get(Player, player.id)
            assert row is not None
            row.frozen = True
        frozen = await retry_payout(stack.service, report.payout_ids[0], ADMIN_ID)
        assert await stack.service.lock.try_acquire(TEST_LOCK_NAME, "other", timedelta(minutes=1))
        busy = await retry_payout(stack.service, report.payout_ids[0], ADMIN_ID)
        await stack.service.lock.release(TEST_LOCK_NAME, "other")
    finally:
        await stack.aclose()

    assert missing.kind is RetryKind.NOT_FOUND
    assert frozen.kind is RetryKind.REFUSED
    assert "frozen" in frozen.message
    assert busy.kind is RetryKind.BUSY
    assert len(await payouts_of(world)) == 1
    assert node.total_sent_to(player.address) == 0


async def test_retry_dry_run_payout(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    stack = build_stack(world.db, node.base_url, make_policy(dry_run=True))
    try:
        report = await stack.service.run("test")
        outcome = await retry_payout(stack.service, report.payout_ids[0], ADMIN_ID)
    finally:
        await stack.aclose()

    assert outcome.kind is RetryKind.DRY_RUN
    assert len(await payouts_of(world)) == 1


async def test_go_live_release(world: World, node: SandboxBananoNode) -> None:
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 2)
    dry = build_stack(world.db, node.base_url, make_policy(dry_run=True))
    try:
        await dry.service.run("test")
        with pytest.raises(GoLiveRefusedError):
            await release_dry_run_payouts(
                world.db, dry_run_enabled=True, actor_discord_id=ADMIN_ID, lock_name=TEST_LOCK_NAME
            )
    finally:
        await dry.aclose()

    live = build_stack(world.db, node.base_url, make_policy())
    try:
        before = await live.service.run("test")
        released = await release_dry_run_payouts(
            world.db, dry_run_enabled=False, actor_discord_id=ADMIN_ID, lock_name=TEST_LOCK_NAME
        )
        again = await release_dry_run_payouts(
            world.db, dry_run_enabled=False, actor_discord_id=ADMIN_ID, lock_name=TEST_LOCK_NAME
        )
        after = await live.service.run("test")
        await live.service.confirm()
    finally:
        await live.aclose()

    # Before the release the live run finds nothing open, so no player is paid for the simulation.
    assert before.payout_ids == []
    assert released.payouts == 3
    assert released.accruals == 3
    assert released.amount_raw == 6 * RAW_PER_KILL
    assert again.payouts == 0
    assert len(after.payout_ids) == 3
    await assert_paid_exactly_once(world.db, node, players)
    payouts = await payouts_of(world)
    dry_run_payouts = [p for p in payouts if p.dry_run]
    assert [p.state for p in dry_run_payouts] == [PayoutState.DRY_RUN] * 3
    assert all(p.failure_reason == RELEASE_NOTE for p in dry_run_payouts)
    async with world.db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
        open_claims = list(
            await session.scalars(
                select(Accrual.payout_id).where(Accrual.status == AccrualStatus.OPEN)
            )
        )
    assert actions.count("dry_run_payout_released") == 3
    assert actions.count("go_live_release") == 2
    assert set(open_claims) == {p.id for p in payouts if not p.dry_run}
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_go_live_refused_while_settling(world: World, node: SandboxBananoNode) -> None:
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        assert await stack.service.lock.try_acquire(TEST_LOCK_NAME, "busy", timedelta(minutes=1))
        with pytest.raises(GoLiveRefusedError) as refused:
            await release_dry_run_payouts(
                world.db,
                dry_run_enabled=False,
                actor_discord_id=ADMIN_ID,
                lock=stack.service.lock,
                lock_name=TEST_LOCK_NAME,
            )
        await stack.service.lock.release(TEST_LOCK_NAME, "busy")
    finally:
        await stack.aclose()
    assert "settlement is running" in refused.value.safe_message
