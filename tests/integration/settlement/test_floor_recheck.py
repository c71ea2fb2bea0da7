"""The balance checked again before a batch created ahead is signed: unreadable, dropped, stopped.

Each test names the rule it checks and ends by draining, so the players a run left out are
paid by the next run.
"""

from __future__ import annotations

from core.banano.rpc import NodeClient
from core.banano.rpc_errors import NodeTimeoutError
from core.db.models import PayoutState
from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import SettlementService
from tests.integration.settlement.helpers_world import (
    OPERATOR_FUNDS_RAW,
    RAW_PER_KILL,
    WALLET_ID,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    fund_operator,
    make_policy,
    operator_key,
    payouts_by_id,
    player_address,
)


def fail_nth_balance_read(service: SettlementService, nth: int) -> list[int]:
    """Make the `nth` operator balance read of `service` raise a node time-out."""
    processor = service.processor
    assert processor is not None
    sender = processor.sender
    original = sender.operator_balance_raw
    calls: list[int] = []

    async def balance() -> int:
        calls.append(len(calls) + 1)
        if len(calls) == nth:
            raise NodeTimeoutError("account_info timed out")
        return await original()

    sender.operator_balance_raw = balance  # type: ignore[method-assign]
    return calls


async def test_unreadable_balance_before_ahead_batch(
    database: Database, node: SandboxBananoNode
) -> None:
    """The balance read before the ahead batch of 2 is signed fails.

    Reads: the run's first (1), batch 1's creation (2), batch 2's creation ahead (3), and the
    check before batch 2 is signed (4). Rule: nothing is sent without a balance reading; the
    unsent payouts fail and free their accruals, and the next run pays those players once.
    """
    world = World(database)
    players = await world.add_players(1 + 2 + 4)
    for player in players:
        await world.add_accrual(player, 1)
    stack = build_stack(world.db, node.base_url, make_policy(floor_raw=10**29))
    calls = fail_nth_balance_read(stack.service, 4)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()
    assert len(calls) >= 4, f"only {len(calls)} balance reads; the ahead check was not reached"

    payouts = await payouts_by_id(world.db)
    states = sorted((payout_id, p.state.value) for payout_id, p in payouts.items())
    assert report.stop_reason is not None
    assert "could not be read" in report.stop_reason, report.stop_reason
    sent = [p for p in payouts.values() if p.block_hash is not None]
    assert len(sent) == 1, f"only batch 1 may be signed; states {states}"
    failed = [p for p in payouts.values() if p.state is PayoutState.FAILED]
    assert len(failed) == 2, f"the ahead batch of 2 fails unsent; states {states}"
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def run_with_spend_after_first_payout(
    database: Database, node: SandboxBananoNode
) -> tuple[World, int]:
    """Run a settlement of 1 + 2 + 4 players and return the world and the floor.

    Another wallet spends after the first payout is submitted and confirmed. It leaves the
    floor plus 1 payout.
    """
    world = World(database)
    players = await world.add_players(1 + 2 + 4)
    for player in players:
        await world.add_accrual(player, 1)
    floor_raw = 1000 * 10**29
    key = operator_key()
    drained: list[int] = []

    async def spend_elsewhere(step: str, payout_id: int) -> None:
        # After the first payout is submitted, batch 2 is being created ahead or is created.
        if step != "submitted" or drained:
            return
        node.confirm_all()
        amount = node.balance_of(key.address) - floor_raw - RAW_PER_KILL
        async with NodeClient(node.base_url) as client:
            await client.send(WALLET_ID, key.address, player_address(999, "elsewhere"), amount, "y")
        node.confirm_all()
        drained.append(amount)

    stack = build_stack(
        world.db, node.base_url, make_policy(floor_raw=floor_raw), step_hook=spend_elsewhere
    )
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    assert drained
    node.confirm_all()
    return world, floor_raw


async def test_balance_drop_then_next_run_pays_the_rest(
    database: Database, node: SandboxBananoNode
) -> None:
    """Rule: a payout is sent only while the balance after it stays at or above the floor.

    The payouts dropped for the floor roll over. Once the account is topped up, the next run
    pays each of those players exactly once.
    """
    world, floor_raw = await run_with_spend_after_first_payout(database, node)
    players = world.players
    balance = node.balance_of(operator_key().address)
    assert balance >= floor_raw, f"balance {balance} below floor {floor_raw}"
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    fund_operator(node, OPERATOR_FUNDS_RAW)
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_shutdown_at_ahead_batch_then_next_run_pays(
    database: Database, node: SandboxBananoNode
) -> None:
    """Shutdown is requested while the batch of 4 is created ahead; a new process drains.

    Rule: the payouts created ahead and never sent fail unsent, and the next run pays each of
    those players exactly once.
    """
    from tests.integration.settlement.test_ahead_batch import StopAtCreated

    world = World(database)
    players = await world.add_players(1 + 2 + 4)
    for player in players:
        await world.add_accrual(player, 1)
    # Batches 1 and 2 make 3 payouts, so the 4th `created` step is the first of the 4.
    hook = StopAtCreated(4)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hook)
    hook.service = stack.service
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    payouts = await payouts_by_id(world.db)
    unsent = [p for p in payouts.values() if p.block_hash is None]
    assert unsent, "no payout was created ahead"
    assert all(p.state is PayoutState.FAILED for p in unsent), [
        (p.id, p.state.value) for p in unsent
    ]
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)
