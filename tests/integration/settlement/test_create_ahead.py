"""The batch created ahead once the current chain is stored (`on_stored`), under faults.

The next batch is created by a task that `send_many(..., on_stored=...)` starts once the
current batch's blocks are stored. These tests raise in that task and in the callback, and
cancel the run at each await around it, on the sandbox node over real HTTP, then check the
money rules and that a drain pays every player exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, update

from core.db.models import PayoutState, Player, SettlementRun
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import RunOutcome, SettlementService
from tests.integration.settlement.helpers_world import (
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
    payouts_by_id,
)


class CreationFailure(RuntimeError):
    """Stands for a database error in the creation task (a lost connection, a busy lock)."""


class Steps:
    """A step hook that records steps and runs an action at the nth step of a kind."""

    def __init__(
        self, step: str = "", nth: int = 0, action: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.steps: list[tuple[str, int]] = []
        self.step = step
        self.nth = nth
        self.action = action
        self.seen = 0
        self.changed = asyncio.Event()

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))
        self.changed.set()
        if step == self.step:
            self.seen += 1
            if self.seen == self.nth and self.action is not None:
                await self.action()

    def count(self, step: str) -> int:
        return sum(1 for name, _ in self.steps if name == step)

    async def wait_for(self, step: str, count: int) -> None:
        while self.count(step) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=20)


def creation_tasks() -> list[asyncio.Task[object]]:
    """Tasks still creating a batch ahead."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "_create_batch" in repr(task.get_coro())
    ]


async def run_row(db: Database, run_id: int | None) -> SettlementRun:
    async with db.read() as session:
        row = await session.get(SettlementRun, run_id)
    assert row is not None
    return row


async def pending_unsigned(db: Database) -> list[int]:
    return [
        payout_id
        for payout_id, payout in (await payouts_by_id(db)).items()
        if payout.state is PayoutState.PENDING and payout.block_hash is None
    ]


async def test_creation_error_keeps_sent_report(
    database: Database, node: SandboxBananoNode
) -> None:
    """The task creating the batch of 2 raises after committing it, while payout 1 is sent.

    Payout 1 was submitted, and the run's report and `settlement_runs` row must show it:
    `paid_raw` is what admins see the run paid. The two payouts created ahead are committed
    but were never signed; the run must not end with them pending and their accruals claimed.
    """
    world = World(database)
    players = await world.add_players(5)
    for player in players:
        await world.add_accrual(player, 1)

    async def fail() -> None:
        raise CreationFailure("connection lost")

    hook = Steps("created", 2, fail)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hook)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    payouts = await payouts_by_id(world.db)
    submitted_raw = sum(p.amount_raw for p in payouts.values() if p.state is PayoutState.SUBMITTED)
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    assert report.outcome is RunOutcome.FAILED
    assert submitted_raw > 0
    failures: list[str] = []
    if report.paid_raw != submitted_raw:
        failures.append(f"report.paid_raw {report.paid_raw} != submitted {submitted_raw}")
    row = await run_row(world.db, report.run_id)
    if int(row.paid_raw) != submitted_raw:
        failures.append(f"settlement_runs.paid_raw {row.paid_raw} != submitted {submitted_raw}")
    left = await pending_unsigned(world.db)
    if left:
        failures.append(f"payouts {left} created ahead are left pending with accruals claimed")

    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)
    assert not failures, "; ".join(failures)


async def test_error_in_on_stored_callback_keeps_rules(
    database: Database, node: SandboxBananoNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The callback raises once the chain of 2 is stored, after it started the creation.

    The chain's blocks are stored but never submitted; the reconciler of the next run
    submits them. No creation task outlives the run, and each player is paid once.
    """
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    original = SettlementService._create_ahead
    calls: list[int] = []

    def create_ahead_then_raise(self: SettlementService, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 2:
            raise CreationFailure("callback failed")

    monkeypatch.setattr(SettlementService, "_create_ahead", create_ahead_then_raise)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        assert creation_tasks() == []
    finally:
        await stack.aclose()
    monkeypatch.undo()

    assert report.outcome is RunOutcome.FAILED
    payouts = await payouts_by_id(world.db)
    # Payout 1 went alone; payouts 2 and 3 were stored as one chain and not submitted.
    assert payouts[1].state is PayoutState.SUBMITTED
    assert {payouts[2].state, payouts[3].state} == {PayoutState.SIGNED}
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def _cancel_run_when(
    service: SettlementService, ready: Callable[[], Awaitable[None]]
) -> asyncio.Task[object]:
    run = asyncio.create_task(service.run("test"))
    await ready()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # Let a creation task that was cancelled, or not, reach its next step.
    await asyncio.sleep(0.05)
    return run


async def test_cancel_while_the_node_checks_the_chain(
    database: Database, node: SandboxBananoNode
) -> None:
    """The run is cancelled while the node checks the batch of 4 and the batch of 8 exists.

    Nothing is left running, the lock is free for the next run, and each player is paid once.
    """
    world = World(database)
    players = await world.add_players(15)
    for player in players:
        await world.add_accrual(player, 1)
    steps = Steps()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    # The third and fourth sends' blocks (payouts 4 to 7) are slow to be checked.
    node.inject_fault("process", Fault.delay(0), times=3)
    node.inject_fault("process", Fault.delay(0.5), times=4)
    try:

        async def batch_of_eight_created() -> None:
            await steps.wait_for("created", 15)

        await _cancel_run_when(stack.service, batch_of_eight_created)
        assert creation_tasks() == []
    finally:
        await stack.aclose()

    ahead = await pending_unsigned(world.db)
    assert len(ahead) == 8
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_cancel_while_the_creation_ahead_runs(
    database: Database, node: SandboxBananoNode
) -> None:
    """The run is cancelled while the task creating the batch of 4 is between two steps.

    The creation task is cancelled with the run and does not outlive it. Its committed
    payouts stay pending unsigned; the next run fails them as never sent.
    """
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    blocked = asyncio.Event()

    async def block_forever() -> None:
        blocked.set()
        await asyncio.Event().wait()

    # Creation steps: 1, then 2 and 3 (the batch of 2), then 4 to 7 (the batch of 4).
    steps = Steps("created", 4, block_forever)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:

        async def creation_blocked() -> None:
            await asyncio.wait_for(blocked.wait(), timeout=20)

        await _cancel_run_when(stack.service, creation_blocked)
        assert creation_tasks() == []
    finally:
        await stack.aclose()

    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_cancel_while_awaiting_creation(database: Database, node: SandboxBananoNode) -> None:
    """The batch of 2 is submitted and recorded while the batch of 4 is still being created.

    The run then awaits the creation task outside the send's error handling. A cancel
    there must still stop that task, and each player is paid once.
    """
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    release = asyncio.Event()

    async def wait_for_release() -> None:
        await release.wait()

    steps = Steps("created", 4, wait_for_release)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:

        async def chain_submitted() -> None:
            await steps.wait_for("submitted", 3)

        await _cancel_run_when(stack.service, chain_submitted)
        assert creation_tasks() == []
        release.set()
        await asyncio.sleep(0.05)
    finally:
        await stack.aclose()

    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


async def test_cancelled_run_closes_its_row(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """A cancelled run's `settlement_runs` row is closed as failed, not left `running`."""
    world = World(sqlite_database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    steps = Steps()
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    try:

        async def chain_stored() -> None:
            await steps.wait_for("signed", 3)

        await _cancel_run_when(stack.service, chain_stored)
    finally:
        await stack.aclose()
    async with world.db.read() as session:
        rows = (await session.scalars(select(SettlementRun))).all()
    assert [row.outcome for row in rows] == ["failed"]
    assert rows[0].finished_at is not None


async def test_callback_once_per_stored_chain(
    database: Database, node: SandboxBananoNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chain send calls back exactly once. The players of the batch of 2 are frozen
    after it is created, so no block of that chain is stored: no call back, nothing created
    ahead, and the next payouts go out in sends of 1 again."""
    world = World(database)
    players = await world.add_players(6)
    for player in players:
        await world.add_accrual(player, 1)

    async def freeze_batch_of_two() -> None:
        async with world.db.write() as session:
            await session.execute(
                update(Player)
                .where(Player.id.in_([players[1].id, players[2].id]))
                .values(frozen=True)
            )

    steps = Steps("created", 3, freeze_batch_of_two)
    processor_calls: list[tuple[int, int]] = []
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=steps)
    assert stack.processor is not None
    original = stack.processor.send_many

    async def counting_send_many(payout_ids, on_stored=None):  # type: ignore[no-untyped-def]
        count = 0

        def counted() -> None:
            nonlocal count
            count += 1
            assert on_stored is not None
            on_stored()

        actions = await original(payout_ids, on_stored=counted)
        processor_calls.append((len(payout_ids), count))
        return actions

    monkeypatch.setattr(stack.processor, "send_many", counting_send_many)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()
    assert report.outcome is RunOutcome.COMPLETED
    # 1 alone, then 2 and 3 frozen (no block, no call back), then 4 alone, then 5 and 6.
    assert processor_calls == [(1, 1), (2, 0), (1, 1), (2, 1)]
    payouts = await payouts_by_id(world.db)
    assert [p.state for _, p in sorted(payouts.items())] == [
        PayoutState.SUBMITTED,
        PayoutState.FAILED,
        PayoutState.FAILED,
        PayoutState.SUBMITTED,
        PayoutState.SUBMITTED,
        PayoutState.SUBMITTED,
    ]
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
