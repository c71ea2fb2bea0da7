"""The batch created ahead while another batch is sent: shutdown, a lost lease, the floor.

Each test names the rule it checks.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from core.banano.rpc import NodeClient
from core.clock import utc_now
from core.db.locking import SettlementLock
from core.db.models import Lease, PayoutState
from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from core.services.payout_processor import PayoutSnapshot
from core.services.settlement import SettlementService
from tests.integration.db.helpers_lease import without_lease_file
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    TEST_LOCK_NAME,
    WALLET_ID,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
    operator_key,
    payouts_by_id,
    player_address,
)


class StopAtCreated:
    """A step hook that requests shutdown, as the bot does on SIGTERM, at the Nth `created`."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.created = 0
        self.service: SettlementService | None = None
        self.steps: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))
        if step == "created":
            self.created += 1
            if self.created == self.nth:
                assert self.service is not None
                self.service.request_stop()


async def test_shutdown_stops_batch_created_ahead(
    database: Database, node: SandboxBananoNode
) -> None:
    """Shutdown is requested while the batch of 8 is created and the batch of 4 is sent.

    `SettlementService.request_stop` promises that the service sends nothing more after it,
    except the payout in flight finishing its step. The batch of 4 is in flight. The batch of
    8 was not handed to the sender yet, so none of its payouts may be submitted.
    """
    world = World(database)
    players = await world.add_players(1 + 2 + 4 + 8)
    for player in players:
        await world.add_accrual(player, 1)
    # Batches 1, 2 and 4 make 7 payouts, so the 8th `created` step is the first of the 8.
    hook = StopAtCreated(8)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hook)
    hook.service = stack.service
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    created = [payout_id for step, payout_id in hook.steps if step == "created"]
    ahead = set(created[7:])
    submitted = {payout_id for step, payout_id in hook.steps if step == "submitted"}
    payouts = await payouts_by_id(world.db)
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    assert not submitted & ahead, (
        f"payouts {sorted(submitted & ahead)} created after the shutdown request were sent; "
        f"stop reason {report.stop_reason!r}; states "
        f"{sorted((i, payouts[i].state.value) for i in ahead)}"
    )


async def test_stale_reconciler_read_fails_nothing(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """The lease lapses right after process A's last check before it signs the ahead batch.

    Process B takes the lease and reconciles. B reads the ahead payout while it is still
    pending without a block, A then stores the chain, and B fails the payout from its stale
    reading and releases its accruals. A submits the stored block. Money rules: only a block
    that can never be confirmed lets its accruals be claimed again; no accrual is paid twice.
    """
    # A live holder's lease lapses only where the lease file cannot be used.
    without_lease_file(sqlite_database, TEST_LOCK_NAME)
    world = World(sqlite_database)
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 1)

    a_stored = asyncio.Event()
    b_failed = asyncio.Event()
    b_tasks: list[asyncio.Task[object]] = []
    b_stack = build_stack(world.db, node.base_url, make_policy())
    assert b_stack.processor is not None
    b_processor = b_stack.processor
    original_snapshot = b_processor.snapshot

    async def stale_snapshot(payout_id: int) -> PayoutSnapshot | None:
        snapshot = await original_snapshot(payout_id)
        if snapshot is not None and snapshot.state is PayoutState.PENDING:
            # B's read happened; A's store of the chain commits before B acts on it.
            await a_stored.wait()
        return snapshot

    b_processor.snapshot = stale_snapshot  # type: ignore[method-assign]

    async def a_hook(step: str, payout_id: int) -> None:
        if step == "signed" and b_tasks and not a_stored.is_set():
            a_stored.set()
            # Let B finish its reconciliation before A submits the stored chain.
            await asyncio.wait_for(b_failed.wait(), 5)

    a_stack = build_stack(world.db, node.base_url, make_policy(), step_hook=a_hook)
    a_lock = a_stack.service.lock
    original_is_held = a_lock.is_held
    held_checks = 0

    async def lapsing_is_held(name: str, holder: str) -> bool:
        nonlocal held_checks
        held = await original_is_held(name, holder)
        held_checks += 1
        # The checks: before batch 1 is created, before it is signed, before the ahead batch 2
        # is created, and before batch 2 is signed. The lease lapses just after the last one.
        if held_checks == 4 and not b_tasks:
            async with world.db.write() as session:
                await session.execute(
                    update(Lease)
                    .where(Lease.name == TEST_LOCK_NAME)
                    .values(expires_at=utc_now() - timedelta(seconds=1))
                )
            other = SettlementLock(world.db)
            assert await other.try_acquire(TEST_LOCK_NAME, "process-b:1:x", timedelta(minutes=10))

            async def b_reconcile() -> object:
                try:
                    assert b_stack.service.reconciler is not None
                    return await b_stack.service.reconciler.run()
                finally:
                    b_failed.set()

            b_tasks.append(asyncio.create_task(b_reconcile()))
            await asyncio.sleep(0.05)
        return held

    a_lock.is_held = lapsing_is_held  # type: ignore[method-assign]
    try:
        await a_stack.service.run("test")
        await asyncio.gather(*b_tasks)
    finally:
        await a_stack.aclose()
        await b_stack.aclose()
    assert b_tasks, "the interleaving was not reached"

    async with world.db.write() as session:
        await session.execute(update(Lease).values(expires_at=utc_now() - timedelta(seconds=1)))
    await drain(world.db, node, node_url=node.base_url)
    overpaid = {
        player.id: node.total_sent_to(player.address) // 10**28
        for player in players
        if node.total_sent_to(player.address) != 21 * 10**28
    }
    assert not overpaid, f"players paid other than 2.1 BAN (in units of 0.1 BAN): {overpaid}"
    await assert_paid_exactly_once(world.db, node, players)


class DrainAtLastSubmitted:
    """A step hook: after the Nth `submitted` step, another wallet with the operator's seed
    sends all but `left_raw` of the operator balance away, and the node confirms it."""

    def __init__(self, node: SandboxBananoNode, nth: int, left_raw: int) -> None:
        self.node = node
        self.nth = nth
        self.left_raw = left_raw
        self.submitted = 0
        self.steps: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))
        if step != "submitted":
            return
        self.submitted += 1
        if self.submitted != self.nth:
            return
        key = operator_key()
        amount = self.node.balance_of(key.address) - self.left_raw
        async with NodeClient(self.node.base_url) as client:
            await client.send(WALLET_ID, key.address, player_address(999, "elsewhere"), amount, "x")
        self.node.confirm_all()


async def test_balance_drop_keeps_the_floor(database: Database, node: SandboxBananoNode) -> None:
    """The operator balance drops after the batch of 8 was created ahead, before it is sent.

    Rule: each payout is sent only while the balance after it stays at or above
    `min_operator_balance_ban`. The balance left (floor plus 2 payouts) covers 2 of the 8.
    """
    world = World(database)
    players = await world.add_players(1 + 2 + 4 + 8)
    for player in players:
        await world.add_accrual(player, 1)
    floor_raw = 1000 * 10**29
    # Batches 1, 2 and 4 make 7 payouts; the 7th `submitted` ends the batch of 4.
    hook = DrainAtLastSubmitted(node, 7, floor_raw + 2 * RAW_PER_KILL)
    stack = build_stack(world.db, node.base_url, make_policy(floor_raw=floor_raw), step_hook=hook)
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    node.confirm_all()
    balance = node.balance_of(operator_key().address)
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    assert balance >= floor_raw, (
        f"operator balance {balance} raw is below the floor {floor_raw} raw by "
        f"{(floor_raw - balance) // RAW_PER_KILL} payouts"
    )
