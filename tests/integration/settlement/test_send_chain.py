"""Live payouts sent in batches, each batch one chain of blocks from the local signer.

A run commits a batch of payouts, stores every block of the chain, then submits the blocks
in order; the next batch is committed while one is submitted. These tests check the batch
sizes, what happens to the blocks after one the node does not accept, and that every
outcome still keeps the money rules, on the sandbox node over real HTTP.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from core.banano.blocks import StateBlock
from core.banano.sender import LocalSigner, SendOutcome, SendRequest, SignedBlock
from core.db.models import Accrual, AccrualStatus, Payout, PayoutState
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services import settlement as settlement_module
from core.services.settlement import SEND_BATCH_LIMIT
from tests.integration.settlement.helpers_world import (
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
    pass_through,
    payouts_by_id,
)


class StepLog:
    """A step hook that records each step with its payout id, in order."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))

    def sends(self) -> list[list[int]]:
        """The payout ids of each send: the payouts whose blocks were stored together."""
        sends: list[list[int]] = []
        previous_step = ""
        for step, payout_id in self.steps:
            if step == "signed":
                if previous_step != "signed":
                    sends.append([])
                sends[-1].append(payout_id)
            previous_step = step
        return sends


async def created_batches(db: Database) -> list[list[int]]:
    """The payout ids of each batch: a batch is committed in one transaction, at one time."""
    async with db.read() as session:
        rows = (
            await session.execute(select(Payout.id, Payout.created_at).order_by(Payout.id))
        ).all()
    batches: list[list[int]] = []
    for index, (payout_id, created_at) in enumerate(rows):
        if index == 0 or created_at != rows[index - 1][1]:
            batches.append([])
        batches[-1].append(payout_id)
    return batches


async def ignore_signed(_: SignedBlock) -> None:
    return None


async def test_batches_grow_while_the_node_accepts_everything(
    database: Database, node: SandboxBananoNode
) -> None:
    """Batches of 1, 2, 4 and so on, each one chain stored whole before its first submission."""
    world = World(database)
    players = await world.add_players(12)
    for player in players:
        await world.add_accrual(player, 1)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert [len(batch) for batch in await created_batches(world.db)] == [1, 2, 4, 5]
    for batch in await created_batches(world.db):
        positions = {
            (step, payout_id): index
            for index, (step, payout_id) in enumerate(steps.steps)
            if payout_id in batch
        }
        last_signed = max(positions[("signed", payout_id)] for payout_id in batch)
        first_submitted = min(positions[("submitted", payout_id)] for payout_id in batch)
        assert last_signed < first_submitted

    payouts = await payouts_by_id(world.db)
    assert len(report.payout_ids) == 12
    assert {payout.state for payout in payouts.values()} == {PayoutState.SUBMITTED}
    # Each block follows the previous payout's block, in the order of the payout ids.
    chain = [StateBlock.from_json_text(payouts[i].block_json or "") for i in sorted(payouts)]
    for before, after in itertools.pairwise(chain):
        assert after.previous == before.hash()
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_batch_size_is_capped(sqlite_database: Database, node: SandboxBananoNode) -> None:
    """No batch contains more payouts than the limit, however long the node keeps accepting."""
    world = World(sqlite_database)
    players = await world.add_players(2 * SEND_BATCH_LIMIT + 10)
    for player in players:
        await world.add_accrual(player, 1)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    sizes = [len(batch) for batch in await created_batches(world.db)]
    assert max(sizes) == SEND_BATCH_LIMIT
    assert sum(sizes) == len(players) == len(report.payout_ids)
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_final_rejection_fails_the_blocks_after_it(
    database: Database, node: SandboxBananoNode
) -> None:
    """A block rejected for good fails, with every stored block after it, in one step."""
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    # Payouts 1 to 3 go through in batches of 1 and 2. The third batch has four: its
    # second block is rejected, so its third and fourth can never land.
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.error("Bad signature"))
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    batches = await created_batches(world.db)
    assert [len(batch) for batch in batches] == [1, 2, 4]
    rejected, after_rejected = batches[2][1], batches[2][2:]
    payouts = await payouts_by_id(world.db)
    assert payouts[rejected].state is PayoutState.FAILED
    assert "Bad signature" in (payouts[rejected].failure_reason or "")
    for payout_id in after_rejected:
        assert payouts[payout_id].state is PayoutState.FAILED
        assert payouts[payout_id].failure_reason is not None
        assert "never be confirmed" in payouts[payout_id].failure_reason
        assert payouts[payout_id].block_hash is None
    submitted = [i for i, payout in payouts.items() if payout.state is PayoutState.SUBMITTED]
    assert sorted(submitted) == sorted(batches[0] + batches[1] + batches[2][:1])
    # A batch that was not accepted whole is followed by a batch of one.
    assert report.stop_reason is None
    assert sum(len(batch) for batch in batches) == len(report.payout_ids) == 7

    async with world.db.read() as session:
        released = (
            await session.scalars(
                select(Accrual).where(
                    Accrual.status == AccrualStatus.OPEN, Accrual.payout_id.is_(None)
                )
            )
        ).all()
    assert len(released) == 3
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_unknown_outcome_holds_the_rest_of_the_chain(
    database: Database, node: SandboxBananoNode
) -> None:
    """A block with no reply stops the run. The blocks after it wait and land later in order."""
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    pass_through(node, "process", 4)
    # Both attempts at the fifth block are applied, and neither reply arrives.
    node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    batches = await created_batches(world.db)
    lost, held = batches[2][1], batches[2][2:]
    assert report.stop_reason is not None
    assert f"payout {lost}" in report.stop_reason
    payouts = await payouts_by_id(world.db)
    assert payouts[lost].state is PayoutState.SIGNED
    for payout_id in held:
        assert payouts[payout_id].state is PayoutState.SIGNED
        block = StateBlock.from_json_text(payouts[payout_id].block_json or "")
        assert node.block(block.hash()) is None
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    # The next run reconciles the lost block and submits the held ones on top of it.
    await drain(world.db, node, node_url=node.base_url)
    payouts = await payouts_by_id(world.db)
    for payout_id in [lost, *held]:
        assert payouts[payout_id].state is PayoutState.CONFIRMED
    await assert_paid_exactly_once(world.db, node, players)


async def test_reconciler_fails_blocks_chained_after_a_failed_one(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A block failed by the reconciler takes the stored blocks after it with it.

    Here the operator account is used elsewhere while the run's outcome is unknown. A
    confirmed block takes the lost block's place, so the lost block and the blocks chained
    after it can never land. The next run fails all of them and pays the players again.
    """
    world = World(sqlite_database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    pass_through(node, "process", 4)
    # The fifth block's attempts get no verdict and change nothing.
    node.inject_fault("process", Fault.http_500(), times=2)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    batches = await created_batches(world.db)
    unsettled = batches[2][1:]

    # Another wallet with the same seed sends from the operator account.
    elsewhere = build_stack(world.db, node.base_url, make_policy())
    try:
        assert isinstance(elsewhere.sender, LocalSigner)
        result = await elsewhere.sender.send(
            SendRequest(0, "elsewhere", node.genesis.address, 1), ignore_signed
        )
    finally:
        await elsewhere.aclose()
    assert result.outcome is SendOutcome.ACCEPTED
    node.confirm_all()

    await drain(world.db, node, node_url=node.base_url)
    payouts = await payouts_by_id(world.db)
    first, rest = unsettled[0], unsettled[1:]
    assert payouts[first].state is PayoutState.FAILED
    assert "took this block's place" in (payouts[first].failure_reason or "")
    for payout_id in rest:
        assert payouts[payout_id].state is PayoutState.FAILED
        assert f"payout {payout_id - 1}" in (payouts[payout_id].failure_reason or "")
    async with sqlite_database.read() as session:
        failed_audits = (
            await session.scalars(select(Payout.id).where(Payout.state == PayoutState.FAILED))
        ).all()
    assert sorted(failed_audits) == sorted(unsettled)
    await assert_paid_exactly_once(world.db, node, players)


async def test_work_failure_cuts_the_chain_before_storing(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """Blocks whose work never came are neither stored nor sent; the earlier ones are."""
    world = World(sqlite_database)
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 1)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    signer = stack.sender
    assert signer is not None
    cache = signer.work_cache  # type: ignore[attr-defined]

    class FailSecond:
        """Work for the first two roots asked for, then none."""

        def __init__(self) -> None:
            self.calls = 0

        async def generate(self, root_hex: str, threshold: int) -> str:
            self.calls += 1
            if self.calls > 2:
                raise OSError("work server down")
            return await original.generate(root_hex, threshold)

    original = cache._provider
    cache._provider = FailSecond()
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    payouts = await payouts_by_id(world.db)
    states = {payout_id: payouts[payout_id].state for payout_id in report.payout_ids}
    assert list(states.values()).count(PayoutState.SUBMITTED) == 2
    failed = [i for i, state in states.items() if state is PayoutState.FAILED]
    assert len(failed) == 1
    assert payouts[failed[0]].block_json is None
    assert "not sent" in (payouts[failed[0]].failure_reason or "")
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


def test_step_log_groups_sends() -> None:
    """The helper groups consecutive `signed` steps into one send."""
    steps = StepLog()
    steps.steps = [
        ("created", 1),
        ("signed", 1),
        ("submitted", 1),
        ("created", 2),
        ("created", 3),
        ("signed", 2),
        ("signed", 3),
        ("created", 4),
        ("submitted", 2),
        ("signed", 4),
    ]
    assert steps.sends() == [[1], [2, 3], [4]]


async def test_batches_keep_growing_across_candidate_chunks(
    sqlite_database: Database, node: SandboxBananoNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run reads its candidates' accruals in chunks; the batch size carries over."""
    monkeypatch.setattr(settlement_module, "ACCRUAL_CHUNK", 5)
    world = World(sqlite_database)
    players = await world.add_players(15)
    for player in players:
        await world.add_accrual(player, 1)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()

    # Chunks of 5: the first gives batches of 1, 2 and 2 (the chunk's end). Each accepted
    # batch doubles the size, so each later chunk goes out as one batch of 5.
    assert [len(batch) for batch in await created_batches(world.db)] == [1, 2, 2, 5, 5]
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])


async def test_payouts_created_ahead_wait_after_a_refused_block(
    database: Database, node: SandboxBananoNode
) -> None:
    """The batch of 8 is created while the batch of 4 is sent, and the node refuses its block.

    After a send the node did not accept whole, the payouts already created go out in sends
    of 1, 2, 4 again, never all at once, and each of them is paid.
    """
    world = World(database)
    players = await world.add_players(15)
    for player in players:
        await world.add_accrual(player, 1)
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.error("Bad signature"))
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    batches = await created_batches(world.db)
    assert [len(batch) for batch in batches] == [1, 2, 4, 8]
    created_ahead = batches[3]
    assert [len(send) for send in steps.sends()] == [1, 2, 4, 1, 2, 4, 1]
    assert [i for send in steps.sends()[3:] for i in send] == created_ahead
    payouts = await payouts_by_id(world.db)
    assert {payouts[i].state for i in created_ahead} == {PayoutState.SUBMITTED}
    assert report.stop_reason is None
    assert [p.state for p in payouts.values()].count(PayoutState.FAILED) == 3
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_unknown_outcome_fails_the_payouts_created_ahead(
    database: Database, node: SandboxBananoNode
) -> None:
    """A block with no reply stops the run; the batch created meanwhile is failed unsent.

    Its payouts never had a block, so failing them frees their accruals for the next run.
    """
    world = World(database)
    players = await world.add_players(15)
    for player in players:
        await world.add_accrual(player, 1)
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)
    steps = StepLog()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    batches = await created_batches(world.db)
    assert [len(batch) for batch in batches] == [1, 2, 4, 8]
    lost = batches[2][1]
    assert report.stop_reason is not None
    assert f"payout {lost}" in report.stop_reason
    payouts = await payouts_by_id(world.db)
    for payout_id in batches[3]:
        assert payouts[payout_id].state is PayoutState.FAILED
        assert payouts[payout_id].block_hash is None
        assert (payouts[payout_id].failure_reason or "").startswith("not sent: ")
    async with world.db.read() as session:
        claimed = await session.scalars(select(Accrual.id).where(Accrual.payout_id.in_(batches[3])))
        assert claimed.all() == []
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)
