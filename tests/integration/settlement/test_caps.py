"""Payout and kill caps in calendar windows of a non-UTC reset time zone, with time-machine."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from core.db.models import Accrual, AccrualStatus, Payout, PayoutState
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import SettlementPolicy, SettlementReport
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    SeededPlayer,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
)


async def settle_at(
    world: World, node: SandboxBananoNode, policy: SettlementPolicy, at: datetime
) -> SettlementReport:
    with time_machine.travel(at, tick=False):
        stack = build_stack(world.db, node.base_url, policy)
        try:
            report = await stack.service.run("test")
            node.confirm_all()
            await stack.service.confirm()
        finally:
            await stack.aclose()
    return report


async def payout_count(world: World, player: SeededPlayer) -> int:
    async with world.db.read() as session:
        payouts = await session.scalars(select(Payout.id).where(Payout.player_id == player.id))
        return len(list(payouts))


async def test_daily_cap_resets_at_local_midnight(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    policy = make_policy(daily_payouts=1, weekly_payouts=10, zone="Asia/Tokyo")
    await world.add_accrual(player, 1)

    # 14:50 UTC is 23:50 in Tokyo on Tuesday 6 January.
    first = await settle_at(world, node, policy, datetime(2026, 1, 6, 14, 50, tzinfo=UTC))
    await world.add_accrual(player, 2)
    same_day = await settle_at(world, node, policy, datetime(2026, 1, 6, 14, 55, tzinfo=UTC))
    # 15:05 UTC is still 6 January in UTC but already 00:05 on 7 January in Tokyo.
    next_day = await settle_at(world, node, policy, datetime(2026, 1, 6, 15, 5, tzinfo=UTC))

    assert len(first.payout_ids) == 1
    assert same_day.payout_ids == []
    assert same_day.skipped["daily_cap"] == 1
    assert len(next_day.payout_ids) == 1
    await assert_paid_exactly_once(world.db, node, [player])
    assert node.total_sent_to(player.address) == 3 * RAW_PER_KILL


async def test_weekly_cap_resets_on_local_monday(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    policy = make_policy(daily_payouts=1, weekly_payouts=2, zone="America/Sao_Paulo")

    # Friday 9 and Saturday 10 January, noon in Sao Paulo (UTC-3).
    for day in (9, 10):
        await world.add_accrual(player, 1)
        report = await settle_at(world, node, policy, datetime(2026, 1, day, 15, tzinfo=UTC))
        assert len(report.payout_ids) == 1

    await world.add_accrual(player, 4)
    # Sunday 23:30 in Sao Paulo is Monday 02:30 UTC: the local week has not turned yet.
    sunday = await settle_at(world, node, policy, datetime(2026, 1, 12, 2, 30, tzinfo=UTC))
    # Monday 00:30 in Sao Paulo starts the new week.
    monday = await settle_at(world, node, policy, datetime(2026, 1, 12, 3, 30, tzinfo=UTC))

    assert sunday.payout_ids == []
    assert sunday.skipped["weekly_cap"] == 1
    assert len(monday.payout_ids) == 1
    assert await payout_count(world, player) == 3
    await assert_paid_exactly_once(world.db, node, [player])


async def test_kill_cap_splits_accrual(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    first_id = await world.add_accrual(player, 3)
    second_id = await world.add_accrual(player, 4)
    policy = make_policy(daily_payouts=5, daily_kills=5, zone="Asia/Tokyo")

    day_one = await settle_at(world, node, policy, datetime(2026, 1, 6, 3, tzinfo=UTC))
    ledger = await assert_money_rules(world.db, node, [(player.id, player.address)])
    parent = ledger.accruals[second_id]
    parts = sorted(
        (a for a in ledger.accruals.values() if a.parent_id == second_id), key=lambda a: a.id
    )
    payout = ledger.payouts[day_one.payout_ids[0]]

    assert parent.status is AccrualStatus.SPLIT
    assert [p.kills for p in parts] == [2, 2]
    assert [p.amount_raw for p in parts] == [2 * RAW_PER_KILL, 2 * RAW_PER_KILL]
    assert [p.cursor_from for p in parts] == [parent.cursor_from, parent.cursor_from + 2]
    assert parts[0].payout_id == payout.id
    assert parts[1].payout_id is None
    assert ledger.accruals[first_id].payout_id == payout.id
    assert payout.kills == 5
    assert payout.amount_raw == 5 * RAW_PER_KILL
    assert node.total_sent_to(player.address) == 5 * RAW_PER_KILL

    # The same local day: the cap is reached, the open part waits.
    later = await settle_at(world, node, policy, datetime(2026, 1, 6, 14, tzinfo=UTC))
    assert later.payout_ids == []
    assert later.skipped["kill_cap"] == 1
    # Midnight in Tokyo is 15:00 UTC.
    day_two = await settle_at(world, node, policy, datetime(2026, 1, 6, 15, 1, tzinfo=UTC))
    assert len(day_two.payout_ids) == 1
    await assert_paid_exactly_once(world.db, node, [player])
    assert node.total_sent_to(player.address) == 7 * RAW_PER_KILL


async def test_weekly_kill_cap_limits_days(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 10)
    policy = make_policy(daily_kills=4, weekly_kills=6, zone="Asia/Tokyo")

    monday = await settle_at(world, node, policy, datetime(2026, 1, 5, 3, tzinfo=UTC))
    tuesday = await settle_at(world, node, policy, datetime(2026, 1, 6, 3, tzinfo=UTC))
    wednesday = await settle_at(world, node, policy, datetime(2026, 1, 7, 3, tzinfo=UTC))
    next_monday = await settle_at(world, node, policy, datetime(2026, 1, 12, 3, tzinfo=UTC))

    async with world.db.read() as session:
        payouts = list(await session.scalars(select(Payout).order_by(Payout.id)))
    assert [p.kills for p in payouts] == [4, 2, 4]
    assert len(monday.payout_ids) == 1
    assert len(tuesday.payout_ids) == 1
    assert len(next_monday.payout_ids) == 1
    assert wednesday.skipped["kill_cap"] == 1
    assert sum(p.amount_raw for p in payouts) == 10 * RAW_PER_KILL
    await assert_paid_exactly_once(world.db, node, [player])


async def test_zero_caps_meaning(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 50)
    at = datetime(2026, 1, 6, 3, tzinfo=UTC)

    no_payouts = make_policy(dry_run=True, daily_payouts=0)
    blocked = await settle_at(world, node, no_payouts, at)
    no_kill_limit = make_policy(dry_run=True, daily_kills=0, weekly_kills=0)
    unlimited = await settle_at(world, node, no_kill_limit, at)

    assert blocked.payout_ids == []
    assert blocked.skipped["daily_cap"] == 1
    assert len(unlimited.payout_ids) == 1
    ledger = await assert_money_rules(world.db)
    assert ledger.payouts[unlimited.payout_ids[0]].kills == 50


async def test_failed_payouts_do_not_count(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 1)
    policy = make_policy(daily_payouts=1)
    at = datetime(2026, 1, 6, 3, tzinfo=UTC)
    # The first send is rejected for good, so its payout fails and releases the accrual.
    node.inject_fault("process", Fault.error("Bad signature"))
    first = await settle_at(world, node, policy, at)
    second = await settle_at(world, node, policy, at)

    async with world.db.read() as session:
        states = list(await session.scalars(select(Payout.state).order_by(Payout.id)))
    assert len(first.payout_ids) == 1
    assert len(second.payout_ids) == 1
    assert states == [PayoutState.FAILED, PayoutState.CONFIRMED]
    await assert_paid_exactly_once(world.db, node, [player])


async def test_dry_run_payouts_count_only_in_dry_run(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 1)
    at = datetime(2026, 1, 6, 3, tzinfo=UTC)
    await settle_at(world, node, make_policy(dry_run=True, daily_payouts=1), at)
    await world.add_accrual(player, 2)

    dry_again = await settle_at(world, node, make_policy(dry_run=True, daily_payouts=1), at)
    live = await settle_at(world, node, make_policy(daily_payouts=1), at)

    assert dry_again.skipped["daily_cap"] == 1
    assert len(live.payout_ids) == 1
    # The live payout pays only the accrual no dry-run payout claims.
    assert node.total_sent_to(player.address) == 2 * RAW_PER_KILL
    await assert_money_rules(world.db, node, [(player.id, player.address)])
    await drain(world.db, node, node_url=node.base_url)
    async with world.db.read() as session:
        claimed = await session.scalar(
            select(Accrual.payout_id).where(Accrual.kills == 1, Accrual.player_id == player.id)
        )
    assert claimed is not None
