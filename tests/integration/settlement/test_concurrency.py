"""Two settlements started at once, in one process and in two: exactly one of them pays."""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.queues import Queue

import pytest

from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from core.services.payout_processor import StepHook
from core.services.settlement import RunOutcome, SettlementReport
from tests.integration.settlement.helpers_process import ChildRun, settle_in_child
from tests.integration.settlement.helpers_world import (
    TEST_LOCK_NAME,
    World,
    assert_paid_exactly_once,
    build_stack,
    drain,
    make_policy,
)


async def test_two_runs_in_one_process(world: World, node: SandboxBananoNode) -> None:
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 2)
    finished = {"a": asyncio.Event(), "b": asyncio.Event()}

    def wait_for(other: str) -> StepHook:
        async def hook(step: str, payout_id: int) -> None:
            # The run that got the lock holds it until the other run has given up.
            if step == "created":
                await asyncio.wait_for(finished[other].wait(), timeout=10)

        return hook

    stack_a = build_stack(world.db, node.base_url, make_policy(), step_hook=wait_for("b"))
    stack_b = build_stack(world.db, node.base_url, make_policy(), step_hook=wait_for("a"))

    async def run(stack_name: str) -> SettlementReport:
        stack = stack_a if stack_name == "a" else stack_b
        try:
            return await stack.service.run("test")
        finally:
            finished[stack_name].set()

    try:
        reports = await asyncio.gather(run("a"), run("b"))
    finally:
        await stack_a.aclose()
        await stack_b.aclose()

    outcomes = sorted(report.outcome.value for report in reports)
    assert outcomes == ["completed", "skipped_locked"]
    assert sorted(len(report.payout_ids) for report in reports) == [0, 3]
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)


def child_run(database: Database, node: SandboxBananoNode, schema: str | None) -> ChildRun:
    return ChildRun(
        database_url=database.engine.url.render_as_string(hide_password=False),
        search_path=schema,
        node_url=node.base_url,
        lock_name=TEST_LOCK_NAME,
        pause_seconds=0.3,
    )


@pytest.mark.slow
async def test_two_runs_in_two_processes(
    world: World, node: SandboxBananoNode, request: pytest.FixtureRequest
) -> None:
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 2)
    schema = None
    if world.db.dialect_name == "postgresql":
        schema = request.getfixturevalue("postgres_schema")
    run = child_run(world.db, node, schema)

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results: Queue[tuple[str, int]] = context.Queue()
    children = [
        context.Process(target=settle_in_child, args=(run, start, results)) for _ in range(2)
    ]
    for child in children:
        child.start()
    try:
        start.set()
        # The node runs on this event loop, so wait for the children off the loop.
        outcomes = [await asyncio.to_thread(results.get, True, 60) for _ in children]
    finally:
        for child in children:
            await asyncio.to_thread(child.join, 30)
            if child.is_alive():
                child.kill()

    assert sorted(outcomes) == [
        (RunOutcome.COMPLETED.value, 3),
        (RunOutcome.SKIPPED_LOCKED.value, 0),
    ]
    assert [child.exitcode for child in children] == [0, 0]
    await drain(world.db, node, node_url=node.base_url)
    await assert_paid_exactly_once(world.db, node, players)
