"""A crash after each step of a payout, then a restart: every accrual is paid exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import utc_now
from core.db.locking import SettlementLock
from core.db.models import Payout, PayoutState
from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import RunOutcome
from tests.integration.db.helpers_lease import without_lease_file
from tests.integration.settlement.helpers_world import (
    TEST_LOCK_NAME,
    CrashAt,
    SimulatedCrash,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
)

# "replied" is the moment after the node applied the block and before its reply is recorded.
STEPS = ["created", "signed", "replied", "submitted", "confirmed"]


async def crash_then_restart(
    world: World, node: SandboxBananoNode, step: str, sender_kind: str
) -> list[int]:
    players = await world.add_players(3)
    for kills, player in enumerate(players, start=1):
        await world.add_accrual(player, kills)
        await world.add_accrual(player, 2)

    crash = CrashAt(step)
    stack = build_stack(
        world.db, node.base_url, make_policy(), step_hook=crash, sender_kind=sender_kind
    )

    async def settle_and_confirm() -> None:
        await stack.service.run("test")
        # Confirmation is a later step than the run itself.
        await stack.service.confirm()

    try:
        with pytest.raises(SimulatedCrash):
            await settle_and_confirm()
    finally:
        await stack.aclose()
    assert crash.crashed_payout_ids, f"the run never reached {step}"
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    await drain(world.db, node, node_url=node.base_url, sender_kind=sender_kind)
    await assert_paid_exactly_once(world.db, node, players)
    return crash.crashed_payout_ids


async def check_crashed_payout(world: World, payout_id: int, step: str, sender_kind: str) -> None:
    async with world.db.read() as session:
        crashed = await session.get(Payout, payout_id)
    assert crashed is not None
    if sender_kind == "local" and step == "created":
        # Nothing was signed, so nothing was sent: the payout fails and a new one pays.
        assert crashed.state is PayoutState.FAILED
    else:
        # A stored block is resubmitted and a node-wallet send repeated with the same id.
        assert crashed.state is PayoutState.CONFIRMED


@pytest.mark.parametrize("sender_kind", ["local", "wallet"])
@pytest.mark.parametrize("step", STEPS)
async def test_crash_after_step(
    sqlite_database: Database, node: SandboxBananoNode, step: str, sender_kind: str
) -> None:
    world = World(sqlite_database)
    crashed = await crash_then_restart(world, node, step, sender_kind)
    await check_crashed_payout(world, crashed[0], step, sender_kind)


@pytest.mark.parametrize("sender_kind", ["local", "wallet"])
async def test_crash_after_each_step_postgres(
    postgres_database: Database, node: SandboxBananoNode, sender_kind: str
) -> None:
    world = World(postgres_database)
    for step in STEPS:
        crashed = await crash_then_restart(world, node, step, sender_kind)
        await check_crashed_payout(world, crashed[0], step, sender_kind)


async def test_stale_lease_expires(sqlite_database: Database, node: SandboxBananoNode) -> None:
    """A crashed process's lease delays the next run until it expires; nothing is lost.

    That is the case where the lease file cannot be used; otherwise the lease is free at once.
    """
    without_lease_file(sqlite_database, TEST_LOCK_NAME)
    world = World(sqlite_database)
    player = await world.add_player()
    await world.add_accrual(player, 2)
    crashed = SettlementLock(sqlite_database)
    assert await crashed.try_acquire(TEST_LOCK_NAME, "crashed-process", timedelta(minutes=1))

    blocked = build_stack(world.db, node.base_url, make_policy())
    later = build_stack(
        world.db,
        node.base_url,
        make_policy(),
        clock=lambda: utc_now() + timedelta(minutes=2),
    )
    try:
        skipped = await blocked.service.run("test")
        paid = await later.service.run("test")
    finally:
        await blocked.aclose()
        await later.aclose()

    assert skipped.outcome is RunOutcome.SKIPPED_LOCKED
    assert skipped.payout_ids == []
    assert len(paid.payout_ids) == 1
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, [player])
