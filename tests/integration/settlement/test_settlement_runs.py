"""Settlement runs over several players, in dry run and live, against the sandbox node."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from core.clock import utc_now
from core.db.models import AccrualStatus, AuditEntry, Payout, PayoutState, SettlementRun
from core.sandbox.banano_node import SandboxBananoNode
from core.services.faucet_flags import set_paused
from core.services.settlement import RunOutcome
from core.services.settlement_selection import eligible_candidates, order_candidates
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    make_policy,
    operator_key,
)


async def test_dry_run_pays_every_player_without_ledger_calls(
    world: World, node: SandboxBananoNode
) -> None:
    players = await world.add_players(4)
    for number, player in enumerate(players, start=1):
        await world.add_accrual(player, number)
        await world.add_accrual(player, 2)
    node.request_counts.clear()
    stack = build_stack(world.db, node.base_url, make_policy(dry_run=True))
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert report.outcome is RunOutcome.COMPLETED
    assert len(report.payout_ids) == 4
    assert report.paid_raw == sum(n + 2 for n in range(1, 5)) * RAW_PER_KILL
    assert sum(node.request_counts.values()) == 0
    ledger = await assert_money_rules(world.db)
    references = {p.block_hash for p in ledger.payouts.values()}
    assert len(references) == 4
    for payout in ledger.payouts.values():
        assert payout.state is PayoutState.DRY_RUN
        assert payout.dry_run
        assert payout.block_hash == f"dryrun-{payout.idempotency_key}"


async def test_live_run_pays_every_player_once(world: World, node: SandboxBananoNode) -> None:
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 3)
        await world.add_accrual(player, 1)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        assert report.outcome is RunOutcome.COMPLETED
        assert len(report.payout_ids) == 3
        confirm_report = await stack.service.confirm()
        second = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert confirm_report is not None
    assert confirm_report.counts == {"confirmed": 3}
    assert second.payout_ids == []
    await assert_paid_exactly_once(world.db, node, players)
    for player in players:
        assert node.total_sent_to(player.address) == 4 * RAW_PER_KILL


async def test_ineligible_players_are_not_paid(world: World, node: SandboxBananoNode) -> None:
    paid = await world.add_player()
    not_member = await world.add_player(guild_member=False)
    unknown_member = await world.add_player(guild_member=None)
    frozen = await world.add_player(frozen=True)
    unlinked = await world.add_player(linked=False)
    no_wallet = await world.add_player(wallet=False)
    for player in (paid, not_member, unknown_member, frozen, unlinked, no_wallet):
        await world.add_accrual(player, 1)
    stack = build_stack(world.db, node.base_url, make_policy(dry_run=True))
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    ledger = await assert_money_rules(world.db)
    assert [p.player_id for p in ledger.payouts.values()] == [paid.id]
    assert report.skipped["ineligible"] == 5


async def test_paused_run_pays_nothing(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        async with world.db.write() as session:
            await set_paused(
                session, paused=True, at=stack.service.now(), actor_discord_id=42, reason="test"
            )
        paused = await stack.service.run("admin", actor_discord_id=42)
        async with world.db.write() as session:
            await set_paused(session, paused=False, at=stack.service.now(), actor_discord_id=42)
        resumed = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert paused.outcome is RunOutcome.SKIPPED_PAUSED
    assert paused.payout_ids == []
    assert resumed.outcome is RunOutcome.COMPLETED
    assert len(resumed.payout_ids) == 1
    async with world.db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
        runs = list(await session.scalars(select(SettlementRun).order_by(SettlementRun.id)))
    assert actions.count("payouts_paused") == 1
    assert actions.count("payouts_resumed") == 1
    assert "settlement_requested" in actions
    assert runs[0].outcome == "skipped"
    assert runs[0].skip_reason == "Payouts are paused: test."


async def test_floor_skips_run_with_admin_reason(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 1)
    balance_raw = node.confirmed_balance_of(operator_key().address)
    stack = build_stack(world.db, node.base_url, make_policy(floor_raw=balance_raw + 1))
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert report.outcome is RunOutcome.SKIPPED_FLOOR
    assert report.operator_balance_raw == balance_raw
    assert report.skip_reason is not None
    assert "below the floor" in report.skip_reason
    async with world.db.read() as session:
        run = await session.scalar(select(SettlementRun))
    assert run is not None
    assert run.skip_reason == report.skip_reason
    sample = stack.metrics.registry.get_sample_value(
        "pay2slay_settlement_runs_total", {"outcome": "skipped_floor"}
    )
    assert sample == 1.0


async def test_floor_checked_before_each_payout(world: World, node: SandboxBananoNode) -> None:
    small = await world.add_player()
    large = await world.add_player()
    await world.add_accrual(small, 1)
    await world.add_accrual(large, 50)
    balance_raw = node.confirmed_balance_of(operator_key().address)
    # Room for the small payout only: the large one would take the balance below the floor.
    floor_raw = balance_raw - 10 * RAW_PER_KILL
    stack = build_stack(world.db, node.base_url, make_policy(floor_raw=floor_raw))
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    assert report.outcome is RunOutcome.COMPLETED
    assert report.skipped["floor"] == 1
    ledger = await assert_money_rules(world.db, node, [(small.id, small.address)])
    assert [p.player_id for p in ledger.payouts.values()] == [small.id]
    assert node.balance_of(operator_key().address) >= floor_raw


async def test_random_order_reaches_everyone_over_runs(
    world: World, node: SandboxBananoNode
) -> None:
    players = await world.add_players(9)
    for player in players:
        await world.add_accrual(player, 1)
    stack = build_stack(
        world.db,
        node.base_url,
        make_policy(dry_run=True, order="random", batch_size=3),
        rng=random.Random(11),
    )
    paid_per_run: list[set[int]] = []
    try:
        for _ in range(3):
            report = await stack.service.run("test")
            assert report.skipped["batch"] == 9 - 3 * len(paid_per_run) - 3
            async with world.db.read() as session:
                paid = await session.scalars(
                    select(Payout.player_id).where(Payout.id.in_(report.payout_ids))
                )
                paid_per_run.append(set(paid))
    finally:
        await stack.aclose()

    assert all(len(paid) == 3 for paid in paid_per_run)
    assert set().union(*paid_per_run) == {p.id for p in players}
    await assert_money_rules(world.db)


async def test_random_order_draws_from_whole_set(world: World) -> None:
    players = await world.add_players(12)
    for player in players:
        await world.add_accrual(player, 1)
    async with world.db.read() as session:
        candidates = await eligible_candidates(session)

    first_picks = {
        order_candidates(candidates, "random", random.Random(seed))[0].player_id
        for seed in range(8)
    }
    # Eight seeds over twelve players: the first pick is not stuck on the lowest ids.
    assert len(first_picks) >= 4
    assert max(first_picks) > players[2].id


async def test_oldest_first_order(world: World, node: SandboxBananoNode) -> None:
    newer = await world.add_player()
    older = await world.add_player()
    await world.add_accrual(newer, 1, at=world.created_at + timedelta(hours=2))
    await world.add_accrual(older, 1, at=world.created_at)
    stack = build_stack(world.db, node.base_url, make_policy(dry_run=True, batch_size=1))
    try:
        report = await stack.service.run("test")
    finally:
        await stack.aclose()

    ledger = await assert_money_rules(world.db)
    assert [ledger.payouts[i].player_id for i in report.payout_ids] == [older.id]


async def test_metrics_after_live_run(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    await world.add_accrual(player, 3, status=AccrualStatus.HELD)
    stack = build_stack(world.db, node.base_url, make_policy())
    try:
        await stack.service.run("test")
        await stack.service.confirm()
    finally:
        await stack.aclose()

    registry = stack.metrics.registry
    assert registry.get_sample_value("pay2slay_payouts_total", {"state": "confirmed"}) == 1.0
    assert registry.get_sample_value("pay2slay_payouts_total", {"state": "submitted"}) == 1.0
    assert registry.get_sample_value("pay2slay_paid_ban_total") == 4.2
    assert registry.get_sample_value("pay2slay_open_liability_ban") == 0.0
    assert registry.get_sample_value("pay2slay_held_liability_ban") == 6.3
    assert registry.get_sample_value("pay2slay_settlement_duration_seconds_count") == 1.0
    assert registry.get_sample_value("pay2slay_operator_balance_ban") is not None
    assert (
        registry.get_sample_value("pay2slay_reconciler_actions_total", {"action": "confirmed"})
        == 1.0
    )


async def test_overdue_block_is_resubmitted(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    node.set_auto_confirm(False)
    offset = timedelta(0)
    stack = build_stack(
        world.db,
        node.base_url,
        make_policy(),
        clock=lambda: utc_now() + offset,
        confirmation_timeout=timedelta(minutes=10),
    )
    try:
        await stack.service.run("test")
        waiting = await stack.service.confirm()
        offset = timedelta(minutes=11)
        overdue = await stack.service.confirm()
        node.confirm_all()
        confirmed = await stack.service.confirm()
    finally:
        await stack.aclose()

    assert waiting is not None
    assert waiting.counts == {"still_pending": 1}
    assert overdue is not None
    assert overdue.counts == {"resubmitted": 1}
    assert confirmed is not None
    assert confirmed.counts == {"confirmed": 1}
    registry = stack.metrics.registry
    assert (
        registry.get_sample_value("pay2slay_reconciler_actions_total", {"action": "resubmitted"})
        == 1.0
    )
    await assert_paid_exactly_once(world.db, node, [player])
    async with world.db.read() as session:
        payout = await session.scalar(select(Payout))
    assert payout is not None
    assert payout.attempts == 2
