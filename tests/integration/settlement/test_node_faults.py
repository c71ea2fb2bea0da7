"""Each node fault at each step of a payout: no double payment, no lost accrual, right end state."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from core.banano.sender import LocalSigner, Sender, SendRequest, SignedBlock
from core.db.models import Payout, PayoutState
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.payout_processor import PayoutAction
from tests.integration.settlement.helpers_world import (
    SeededPlayer,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
)

# Longer than the test clients' RPC time-out, so the client gives up and the node still acts.
SLOW_SECONDS = 0.6
CLIENT_TIMEOUT_SECONDS = 0.3


@dataclass(frozen=True)
class FaultCase:
    fault: Fault
    # Payout states after the drain, oldest first: a rejection for good fails the first
    # payout and a second one pays the same accruals.
    final_states: tuple[PayoutState, ...] = (PayoutState.CONFIRMED,)


FAULTS: dict[str, FaultCase] = {
    "timeout": FaultCase(Fault.delay(SLOW_SECONDS)),
    "lost_reply": FaultCase(Fault.reply_lost_after_apply()),
    "fork": FaultCase(Fault.error("Fork")),
    "gap_previous": FaultCase(Fault.error("Gap previous block")),
    "old_block": FaultCase(Fault.error("Old block")),
    "insufficient_work": FaultCase(
        Fault.error("Block work is less than threshold"),
        (PayoutState.FAILED, PayoutState.CONFIRMED),
    ),
    "http_500": FaultCase(Fault.http_500()),
    "unknown_error": FaultCase(Fault.error("Something unexpected happened")),
    "malformed_json": FaultCase(Fault.malformed_json()),
}


async def run_with_fault(
    world: World,
    node: SandboxBananoNode,
    action: str,
    fault: Fault,
    *,
    times: int,
    sender_kind: str = "local",
) -> SeededPlayer:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    await world.add_accrual(player, 3)
    node.inject_fault(action, fault, times=times)
    stack = build_stack(
        world.db,
        node.base_url,
        make_policy(),
        sender_kind=sender_kind,
        rpc_timeout_seconds=CLIENT_TIMEOUT_SECONDS,
    )
    try:
        await stack.service.run("test")
        await assert_money_rules(world.db, node, [(player.id, player.address)])
        # A second pass with the fault possibly still queued: the reconciler's turn.
        await stack.service.run("test")
        await stack.service.confirm()
        await assert_money_rules(world.db, node, [(player.id, player.address)])
    finally:
        await stack.aclose()

    await drain(world.db, node, node_url=node.base_url, sender_kind=sender_kind)
    await assert_paid_exactly_once(world.db, node, [player])
    return player


async def payout_states(world: World, player: SeededPlayer) -> tuple[PayoutState, ...]:
    async with world.db.read() as session:
        return tuple(
            await session.scalars(
                select(Payout.state).where(Payout.player_id == player.id).order_by(Payout.id)
            )
        )


@pytest.fixture
def sqlite_world(sqlite_database: Database) -> World:
    """The fault matrix runs on SQLite; `test_faults_on_postgres` covers PostgreSQL."""
    return World(sqlite_database)


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_fault_on_first_submit(
    sqlite_world: World, node: SandboxBananoNode, name: str
) -> None:
    case = FAULTS[name]
    player = await run_with_fault(sqlite_world, node, "process", case.fault, times=1)
    assert await payout_states(sqlite_world, player) == case.final_states


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_fault_on_every_submit(
    sqlite_world: World, node: SandboxBananoNode, name: str
) -> None:
    # Four times: the first submission and its repeat, then the reconciler's resubmissions.
    player = await run_with_fault(sqlite_world, node, "process", FAULTS[name].fault, times=4)
    states = await payout_states(sqlite_world, player)
    assert states[-1] is PayoutState.CONFIRMED
    assert states.count(PayoutState.CONFIRMED) == 1


@pytest.mark.parametrize("name", ["timeout", "http_500", "unknown_error", "malformed_json"])
async def test_fault_on_block_lookup(
    sqlite_world: World, node: SandboxBananoNode, name: str
) -> None:
    player = await run_with_fault(sqlite_world, node, "block_info", FAULTS[name].fault, times=3)
    assert await payout_states(sqlite_world, player) == (PayoutState.CONFIRMED,)


@pytest.mark.parametrize("name", ["timeout", "http_500", "unknown_error", "malformed_json"])
async def test_fault_on_account_read(
    sqlite_world: World, node: SandboxBananoNode, name: str
) -> None:
    player = await run_with_fault(sqlite_world, node, "account_info", FAULTS[name].fault, times=3)
    states = await payout_states(sqlite_world, player)
    assert states[-1] is PayoutState.CONFIRMED
    assert states.count(PayoutState.CONFIRMED) == 1


@pytest.mark.parametrize(
    "name", ["timeout", "lost_reply", "http_500", "unknown_error", "malformed_json"]
)
async def test_fault_on_wallet_send(
    sqlite_world: World, node: SandboxBananoNode, name: str
) -> None:
    player = await run_with_fault(
        sqlite_world, node, "send", FAULTS[name].fault, times=3, sender_kind="wallet"
    )
    assert await payout_states(sqlite_world, player) == (PayoutState.CONFIRMED,)


async def test_faults_on_postgres(postgres_database: Database, node: SandboxBananoNode) -> None:
    world = World(postgres_database)
    for name in ("lost_reply", "fork", "insufficient_work", "timeout"):
        case = FAULTS[name]
        player = await run_with_fault(world, node, "process", case.fault, times=1)
        assert await payout_states(world, player) == case.final_states, name
    player = await run_with_fault(
        world, node, "send", FAULTS["lost_reply"].fault, times=1, sender_kind="wallet"
    )
    assert await payout_states(world, player) == (PayoutState.CONFIRMED,)


async def test_fork_with_confirmed_other_block_fails(world: World, node: SandboxBananoNode) -> None:
    """A stored block whose place another confirmed block took fails and releases."""
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.inject_fault("process", Fault.error("Gap previous block"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        first = await stack.service.run("test")
        # Another wallet with the operator seed sends from the same frontier meanwhile.
        other = build_stack(world.db, node.base_url, make_policy())
        try:
            async with world.db.read() as session:
                stuck = await session.get(Payout, first.payout_ids[0])
            assert stuck is not None
            assert stuck.state is PayoutState.SIGNED
            await other_send(other.sender, node)
        finally:
            await other.aclose()
        node.confirm_all()
        assert stack.processor is not None
        action = await stack.processor.reconcile(first.payout_ids[0])
    finally:
        await stack.aclose()

    assert action is PayoutAction.FAILED
    async with world.db.read() as session:
        failed = await session.get(Payout, first.payout_ids[0])
    assert failed is not None
    assert failed.failure_reason is not None
    assert "took this block's place" in failed.failure_reason
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, [player])


async def other_send(sender: Sender | None, node: SandboxBananoNode) -> None:
    assert isinstance(sender, LocalSigner)

    async def ignore(_: SignedBlock) -> None:
        return None

    request = SendRequest(
        payout_id=0,
        idempotency_key="other",
        destination=node.genesis.address,
        amount_raw=1,
    )
    result = await sender.send(request, ignore)
    assert result.block_hash is not None
    assert node.block(result.block_hash) is not None
