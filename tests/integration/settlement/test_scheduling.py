"""The APScheduler jobs: their options, start-up reconciliation and an orderly shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from core.db.models import Payout, PayoutState
from core.sandbox.banano_node import SandboxBananoNode
from core.services.scheduling import CONFIRMATION_JOB_ID, SETTLEMENT_JOB_ID, SettlementJobs
from tests.integration.settlement.helpers_world import (
    RAW_PER_KILL,
    CrashAt,
    SimulatedCrash,
    World,
    assert_money_rules,
    build_stack,
    make_policy,
)


async def test_jobs_options(world: World, node: SandboxBananoNode) -> None:
    stack = build_stack(world.db, node.base_url, make_policy())
    scheduler = AsyncIOScheduler()
    jobs = SettlementJobs(stack.service, scheduler_minutes=20)
    try:
        jobs.install(scheduler)
        settlement = scheduler.get_job(SETTLEMENT_JOB_ID)
        confirmation = scheduler.get_job(CONFIRMATION_JOB_ID)
    finally:
        await stack.aclose()

    assert settlement is not None
    assert confirmation is not None
    for job in (settlement, confirmation):
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time >= 60
    assert settlement.trigger.interval == timedelta(minutes=20)
    assert settlement.misfire_grace_time == 20 * 60


async def test_startup_reconciles_unfinished_payouts(world: World, node: SandboxBananoNode) -> None:
    player = await world.add_player()
    await world.add_accrual(player, 2)
    crashed = build_stack(world.db, node.base_url, make_policy(), step_hook=CrashAt("signed"))
    try:
        with contextlib.suppress(SimulatedCrash):
            await crashed.service.run("test")
    finally:
        await crashed.aclose()

    stack = build_stack(world.db, node.base_url, make_policy())
    scheduler = AsyncIOScheduler()
    jobs = SettlementJobs(stack.service, scheduler_minutes=20)
    try:
        jobs.install(scheduler)
        scheduler.start()
        for _ in range(100):
            async with world.db.read() as session:
                state = await session.scalar(select(Payout.state))
            if state is not PayoutState.SIGNED:
                break
            await asyncio.sleep(0.05)
        stopped = await jobs.shutdown(scheduler, timedelta(seconds=10))
    finally:
        await stack.aclose()

    assert stopped
    # The start-up pass found the stored block missing from the node and resubmitted it.
    assert state is PayoutState.SUBMITTED
    assert node.total_sent_to(player.address) == 2 * RAW_PER_KILL
    await assert_money_rules(world.db, node, [(player.id, player.address)])


async def start_run_past_startup_pass(
    jobs: SettlementJobs, reached: asyncio.Event
) -> asyncio.Task[None]:
    """Start a settlement run and return it once it has reached `reached`.

    The confirmation job runs once at start-up under the settlement lease, so a run that
    starts meanwhile is skipped. Such a run is started again.
    """
    for _ in range(100):
        run = asyncio.create_task(jobs.run_settlement())
        waiter = asyncio.create_task(reached.wait())
        await asyncio.wait({run, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if reached.is_set():
            return run
        waiter.cancel()
        await run
        await asyncio.sleep(0.05)
    raise AssertionError("every settlement run was skipped while the start-up pass ran")


async def test_shutdown_waits_for_payout_in_flight(world: World, node: SandboxBananoNode) -> None:
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 1)
    reached = asyncio.Event()
    release = asyncio.Event()

    async def hold_first_payout(step: str, payout_id: int) -> None:
        if step == "created" and not reached.is_set():
            reached.set()
            await release.wait()

    stack = build_stack(world.db, node.base_url, make_policy(), step_hook=hold_first_payout)
    scheduler = AsyncIOScheduler()
    jobs = SettlementJobs(stack.service, scheduler_minutes=20)
    try:
        jobs.install(scheduler)
        scheduler.start()
        run = await start_run_past_startup_pass(jobs, reached)
        shutdown = asyncio.create_task(jobs.shutdown(scheduler, timedelta(seconds=10)))
        await asyncio.sleep(0.05)
        assert not shutdown.done()
        release.set()
        stopped = await shutdown
        await run
    finally:
        await stack.aclose()

    assert stopped
    async with world.db.read() as session:
        states = list(await session.scalars(select(Payout.state)))
    # The payout in flight was sent and recorded; the other players roll over.
    assert states == [PayoutState.SUBMITTED]
    await assert_money_rules(world.db, node, [(p.id, p.address) for p in players])
