"""Break tests of live payouts sent in batches, each batch one chain of blocks.

Each test states the money rule it checks, so a failing test names the rule broken.
"""

from __future__ import annotations

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from core.banano.blocks import StateBlock, build_send
from core.banano.sender import LocalSigner
from core.banano.work import generate_work_local, work_root
from core.banano.work_providers import WorkCache
from core.clock import utc_now
from core.db.locking import SettlementLock
from core.db.models import (
    FINAL_PAYOUT_STATES,
    Accrual,
    AccrualStatus,
    Lease,
    PayoutState,
)
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.faucet_flags import set_paused
from core.services.payout_processor import PayoutProcessor, StepHook
from core.services.payout_retry import RetryKind, retry_payout
from core.services.settlement import SettlementService
from tests.integration.db.helpers_lease import without_lease_file
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    RAW_PER_KILL,
    TEST_LOCK_NAME,
    CrashAt,
    InlineWorkProvider,
    SeededPlayer,
    SimulatedCrash,
    Stack,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
    operator_key,
    pass_through,
    payouts_by_id,
    player_address,
)


async def test_held_chain_after_wallet_switch_pays_once(
    database: Database, node: SandboxBananoNode
) -> None:
    """Blocks held behind an unsettled block, then the operator switches to the node wallet.

    Money rule: a retry resubmits the stored block and never builds a second send for the
    same payout while the first could still land. Each player is paid once.
    """
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    # Batches 1 and 2 go through. In the batch of 4 the second block gets a rejection that
    # is not final ("Gap previous block"), so the third and fourth stay `signed`, held.
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.error("Gap previous block"))
    local = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await local.service.run("test")
    finally:
        await local.aclose()
    assert report.stop_reason is not None
    payouts = await payouts_by_id(world.db)
    signed = [i for i, p in payouts.items() if p.state is PayoutState.SIGNED]
    assert len(signed) == 3

    # The operator switches `signer` to the node wallet and restarts.
    node.clear_faults()
    wallet = build_stack(world.db, node.base_url, make_policy(), sender_kind="wallet")
    try:
        for _ in range(4):
            await wallet.service.run("test")
            node.confirm_all()
            await wallet.service.confirm()
    finally:
        await wallet.aclose()
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url, sender_kind="wallet")
    await assert_paid_exactly_once(world.db, node, players)


def _stack_with_representative(
    db: Database, node_url: str, representative: str, step_hook: StepHook | None = None
) -> Stack:
    """A local-signer stack whose blocks name `representative`, as `banano.representative`."""
    stack = build_stack(db, node_url, make_policy(), step_hook=step_hook)
    key = operator_key()
    signer = LocalSigner(
        stack.node_client,
        key,
        representative,
        WorkCache(InlineWorkProvider(), LOW_WORK_THRESHOLD),
        LOW_WORK_THRESHOLD,
        submit_attempts=2,
        retry_delay_seconds=0.01,
    )
    processor = PayoutProcessor(
        db,
        signer,
        stack.node_client,
        zone=ZoneInfo("UTC"),
        confirmation_timeout=timedelta(seconds=60),
        metrics=stack.metrics,
        step_hook=step_hook,
    )
    service = SettlementService(
        db,
        make_policy(),
        metrics=stack.metrics,
        processor=processor,
        rng=random.Random(7),
        step_hook=step_hook,
    )
    return Stack(service, processor, signer, stack.node_client, stack.metrics)


async def test_new_representative_wallet_switch_pays_once(
    database: Database, node: SandboxBananoNode
) -> None:
    """A stored block the node never got, then the operator switches to the node wallet.

    The local signer names a representative (`banano.representative`) other than the
    account's, so the wallet's own block for the same payout is a different block. Money
    rule: a retry never builds a second send for the same payout while the first could
    still land, so the player is paid exactly once.
    """
    world = World(database)
    player = await world.add_player()
    await world.add_accrual(player, 3)
    new_rep = player_address(999, "representative")
    # The process dies right after the block is stored, before it is submitted.
    local = _stack_with_representative(
        world.db, node.base_url, new_rep, step_hook=CrashAt("signed")
    )
    try:
        with pytest.raises(SimulatedCrash):
            await local.service.run("test")
    finally:
        await local.aclose()
    payouts = await payouts_by_id(world.db)
    assert [p.state for p in payouts.values()] == [PayoutState.SIGNED]

    wallet = build_stack(world.db, node.base_url, make_policy(), sender_kind="wallet")
    try:
        for _ in range(3):
            await wallet.service.run("test")
            node.confirm_all()
            await wallet.service.confirm()
    finally:
        await wallet.aclose()
    await drain(world.db, node, node_url=node.base_url, sender_kind="wallet")
    await assert_paid_exactly_once(world.db, node, [player])


class PauseAtCreated:
    """A step hook that pauses payouts, as `/payouts-pause` does, at the Nth `created` step."""

    def __init__(self, db: Database, nth: int) -> None:
        self.db = db
        self.nth = nth
        self.created = 0
        self.steps: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))
        if step == "created":
            self.created += 1
            if self.created == self.nth:
                async with self.db.write() as session:
                    await set_paused(session, paused=True, at=utc_now(), actor_discord_id=1)


def assert_only_batch_in_flight_sent(steps: list[tuple[str, int]], event: str) -> None:
    """Check the steps of a run whose 64th `created` step committed `event`.

    Batches of 1, 2, 4, 8, 16 and 32 make 63 payouts. The batch of 32 was being sent while
    the 64th payout, the first of the next batch, was created.
    """
    created = [payout_id for step, payout_id in steps if step == "created"]
    in_flight = set(created[31:63])
    event_at = [index for index, (step, _) in enumerate(steps) if step == "created"][63]
    submitted_after = {payout_id for step, payout_id in steps[event_at:] if step == "submitted"}
    assert submitted_after <= in_flight, (
        f"payouts {sorted(submitted_after - in_flight)} were submitted after {event}"
    )
    submitted = {payout_id for step, payout_id in steps if step == "submitted"}
    assert not submitted & set(created[63:])


async def test_pause_during_batch_stops_sends(database: Database, node: SandboxBananoNode) -> None:
    """An admin pauses payouts while a batch of 64 is being created.

    The batch of 64 is created while the batch of 32 before it is signed and submitted, so
    the pause is committed before any block of the 64 is signed. Rule checked: once
    `/payouts-pause` is committed, only the batch already being sent goes out; no payout
    created after the pause is sent.
    """
    world = World(database)
    players = await world.add_players(1 + 2 + 4 + 8 + 16 + 32 + 64)
    for player in players:
        await world.add_accrual(player, 1)
    # Batches 1, 2, 4, 8, 16 and 32 make 63 payouts, so the 64th `created` step is the
    # first payout of the batch of 64.
    hook = PauseAtCreated(world.db, 64)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hook)
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    assert_only_batch_in_flight_sent(hook.steps, "the pause was committed")


class TakeLeaseAtCreated:
    """A step hook: at the Nth `created` step the lease expires and another process takes it."""

    def __init__(self, db: Database, nth: int) -> None:
        self.db = db
        self.nth = nth
        self.created = 0
        self.taken = False
        self.steps: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.steps.append((step, payout_id))
        if step != "created":
            return
        self.created += 1
        if self.created == self.nth:
            async with self.db.write() as session:
                await session.execute(
                    update(Lease)
                    .where(Lease.name == TEST_LOCK_NAME)
                    .values(expires_at=utc_now() - timedelta(seconds=1))
                )
            other = SettlementLock(self.db)
            self.taken = await other.try_acquire(
                TEST_LOCK_NAME, "other-process:1:abc", timedelta(minutes=10)
            )


async def test_lease_lost_during_batch_stops_sends(
    sqlite_database: Database, node: SandboxBananoNode
) -> None:
    """The settlement lease expires and another process takes it while a batch is created.

    Money rule: one settlement runs at a time across every process. Rule checked: once
    another process holds the lease, only the batch already being sent goes out; no payout
    created after that is sent.
    """
    # A live holder's lease lapses only where the lease file cannot be used.
    without_lease_file(sqlite_database, TEST_LOCK_NAME)
    world = World(sqlite_database)
    players = await world.add_players(1 + 2 + 4 + 8 + 16 + 32 + 64)
    for player in players:
        await world.add_accrual(player, 1)
    hook = TakeLeaseAtCreated(world.db, 64)
    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hook)
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    assert hook.taken
    assert_only_batch_in_flight_sent(hook.steps, "another process took the lease")


async def test_claim_conflict_with_splits_keeps_rules(
    database: Database, node: SandboxBananoNode
) -> None:
    """An accrual planned for the batch of 4 is voided while the batch of 2 is created.

    Every payout of the batch of 4 splits an accrual (kill cap of 2). The voided one makes
    the batch's single transaction roll back, splits included, and the savepoint retry
    must create the other three exactly once. Money rules: a payout pays exactly the whole
    accruals it claims; the voided accrual is never paid; everything else is paid once.
    """
    world = World(database)
    players = await world.add_players(7)
    voided: list[int] = []
    for player in players:
        voided.append(await world.add_accrual(player, 3))
    victim = voided[5]  # the third payout of the batch of 4 (players 4 to 7)
    created = 0

    async def void_in_batch_two(step: str, payout_id: int) -> None:
        nonlocal created
        if step != "created":
            return
        created += 1
        if created == 2:
            async with world.db.write() as session:
                await session.execute(
                    update(Accrual).where(Accrual.id == victim).values(status=AccrualStatus.VOIDED)
                )

    policy = make_policy(daily_kills=2)
    stack = build_stack(world.db, node.base_url, policy, step_hook=void_in_batch_two)
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()
    assert len(report.payout_ids) == 6
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    node.confirm_all()
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)
    # The drain has no kill cap, so the six other players got all 3 kills in the end.
    for index, player in enumerate(players):
        expected = 0 if index == 5 else 3 * RAW_PER_KILL
        assert node.total_sent_to(player.address) == expected


def _roll_back_to(node: SandboxBananoNode, keep_hash: str) -> list[str]:
    """Remove every block after `keep_hash` from its account and return their hashes.

    A node does this when the network confirms a fork of the removed blocks.
    """
    ledger = node.ledger
    kept = ledger.blocks[keep_hash]
    account = ledger.accounts[kept.account]
    removed = account.chain[kept.height :]
    for block_hash in removed:
        entry = ledger.blocks.pop(block_hash)
        if entry.subtype == "send" and entry.counterparty is not None:
            ledger.receivable.get(entry.counterparty, {}).pop(block_hash, None)
    del account.chain[kept.height :]
    account.balance_raw = kept.block.balance_raw
    account.representative = kept.block.representative
    account.confirmed_height = min(account.confirmed_height, kept.height)
    kept.successor = None
    return removed


async def test_rolled_back_chain_leaves_nothing_stuck(
    database: Database, node: SandboxBananoNode
) -> None:
    """The node accepted a whole chain, then lost it to a fork from another wallet.

    Another wallet with the operator seed published a different block on the same previous.
    The network confirmed it, and the node rolled back the chain, whose payouts are all
    `submitted`. The first block's place is taken by a confirmed block, so it fails; the
    blocks after it follow a block that can never be confirmed. Rules: no payout is left
    waiting forever for a block that will never come, and every player is paid exactly once.
    """
    world = World(database)
    players = await world.add_players(7)
    for player in players:
        await world.add_accrual(player, 1)
    node.set_auto_confirm(False)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        await stack.service.run("test")
    finally:
        await stack.aclose()
    payouts = await payouts_by_id(world.db)
    assert {p.state for p in payouts.values()} == {PayoutState.SUBMITTED}
    # The blocks of payouts 1 to 3 are confirmed, and the chain of payouts 4 to 7 is not.
    node.confirm(payouts[3].block_hash or "")
    chain_start = StateBlock.from_json_text(payouts[4].block_json or "")
    removed = _roll_back_to(node, chain_start.previous)
    assert len(removed) == 4
    key = operator_key()
    frontier = node.ledger.blocks[chain_start.previous]
    other = build_send(
        key,
        frontier.hash,
        frontier.block.representative,
        frontier.block.balance_raw,
        1,
        node.genesis.address,
    ).signed(key)
    other = other.with_work(generate_work_local(work_root(other), LOW_WORK_THRESHOLD))
    node.ledger.apply(other, 0)
    node.confirm_all()

    await drain(world.db, node, node_url=node.base_url, rounds=10)
    payouts = await payouts_by_id(world.db)
    stuck = {i: p.state.value for i, p in payouts.items() if p.state not in FINAL_PAYOUT_STATES}
    assert not stuck, f"payouts left waiting for a block that will never come: {stuck}"
    await assert_paid_exactly_once(world.db, node, players)


async def test_retry_of_chained_payouts_pays_once(
    database: Database, node: SandboxBananoNode
) -> None:
    """`/payout-retry` on payouts of a chain: failed ones after a final rejection, and held
    ones behind a block without a verdict. Money rule: each player is paid exactly once."""
    world = World(database)
    players = await world.add_players(15)
    for player in players:
        await world.add_accrual(player, 1)
    # Batch of 4 (payouts 4 to 7): the second block is rejected for good, so 5 to 7 fail.
    # The run then goes on in batches that grow again from one.
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.error("Bad signature"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        first = await stack.service.run("test")
    finally:
        await stack.aclose()
    payouts = await payouts_by_id(world.db)
    failed = sorted(i for i, p in payouts.items() if p.state is PayoutState.FAILED)
    assert failed == [5, 6, 7], (first.stop_reason, failed)

    # The admin retries the last one of the failed chain, then the first.
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        retried_last = await retry_payout(stack.service, 7, actor_discord_id=1)
        retried_first = await retry_payout(stack.service, 5, actor_discord_id=1)
    finally:
        await stack.aclose()
    assert retried_last.kind is RetryKind.RETRIED, retried_last.message
    assert retried_first.kind is RetryKind.RETRIED, retried_first.message
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])

    # More accruals, a chain that stops on a block without a verdict, and retries of the
    # held payouts and of the blocker.
    for player in players:
        await world.add_accrual(player, 2)
    node.clear_faults()
    pass_through(node, "process", 4)
    node.inject_fault("process", Fault.error("Gap previous block"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        second = await stack.service.run("test")
        assert second.stop_reason is not None
        payouts = await payouts_by_id(world.db)
        held = sorted(i for i, p in payouts.items() if p.state is PayoutState.SIGNED)
        assert len(held) >= 2, held
        for payout_id in reversed(held):
            outcome = await retry_payout(stack.service, payout_id, actor_discord_id=1)
            assert outcome.kind in (RetryKind.IN_FLIGHT, RetryKind.CONFIRMED), outcome.message
    finally:
        await stack.aclose()
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
    await drain(world.db, node, node_url=node.base_url, rounds=10)
    await assert_paid_exactly_once(world.db, node, players)


async def _pause(db: Database) -> None:
    async with db.write() as session:
        await set_paused(session, paused=True, at=utc_now(), actor_discord_id=1)


def _blocks_to(node: SandboxBananoNode, players: list[SeededPlayer]) -> int:
    return sum(len(node.blocks_sent_to(player.address)) for player in players)


async def test_paused_confirmation_submits_no_held_chain(
    database: Database, node: SandboxBananoNode
) -> None:
    """A chain of 64 is held behind its first block, then an admin pauses payouts.

    The confirmation job (and the reconciliation at the start of a paused run) resubmits
    every stored block whose place is free. `/payout-retry` refuses while paused because
    "a pause stops every send". Rule checked: nothing lands while payouts are paused.
    """
    world = World(database)
    players = await world.add_players(127)
    for player in players:
        await world.add_accrual(player, 1)
    pass_through(node, "process", 63)
    node.inject_fault("process", Fault.error("Gap previous block"))
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        await stack.service.run("test")
        payouts = await payouts_by_id(world.db)
        assert sum(p.state is PayoutState.SIGNED for p in payouts.values()) == 64
        await _pause(world.db)
        before = _blocks_to(node, players)
        await stack.service.confirm()
        paused_run = await stack.service.run("test")
    finally:
        await stack.aclose()
    assert paused_run.outcome.value == "skipped_paused"
    landed_while_paused = _blocks_to(node, players) - before
    assert landed_while_paused == 0, f"{landed_while_paused} payouts were sent while paused"


async def test_paused_confirmation_sends_no_wallet_batch(
    database: Database, node: SandboxBananoNode
) -> None:
    """Node-wallet sender: the process dies right after committing its 64th payout.

    The wallet pays in batches of one, so one payout is left pending. An admin pauses
    payouts before the restart. Repeating the wallet `send` with the payout's id would be a
    new send if the first never went out. Rule checked: nothing is sent while paused.
    """
    world = World(database)
    players = await world.add_players(127)
    for player in players:
        await world.add_accrual(player, 1)
    created = 0

    async def crash_after_batch_of_64(step: str, payout_id: int) -> None:
        nonlocal created
        if step == "created":
            created += 1
            if created == 64:
                raise SimulatedCrash(f"crash after the batch that holds payout {payout_id}")

    stack = build_stack(
        world.db,
        node.base_url,
        make_policy(),
        sender_kind="wallet",
        step_hook=crash_after_batch_of_64,
    )
    try:
        with pytest.raises(SimulatedCrash):
            await stack.service.run("test")
    finally:
        await stack.aclose()
    payouts = await payouts_by_id(world.db)
    assert sum(p.state is PayoutState.PENDING for p in payouts.values()) == 1

    await _pause(world.db)
    before = _blocks_to(node, players)
    restarted = build_stack(world.db, node.base_url, make_policy(), sender_kind="wallet")
    try:
        await restarted.service.confirm()
    finally:
        await restarted.aclose()
    sent_while_paused = _blocks_to(node, players) - before
    assert sent_while_paused == 0, f"{sent_while_paused} payouts were sent while paused"
