"""A settlement run in a child process, for the test that starts two processes at once."""

from __future__ import annotations

import asyncio
import multiprocessing.synchronize
from dataclasses import dataclass
from multiprocessing.queues import Queue

from core.db.session import Database
from tests.integration.settlement.helpers_world import build_stack, make_policy


@dataclass(frozen=True)
class ChildRun:
    """What one child needs: where the database and node are, and the lock name to share."""

    database_url: str
    search_path: str | None
    node_url: str
    lock_name: str
    # How long the child pauses after creating a payout, so the other child tries the lock
    # while this one still holds it.
    pause_seconds: float


def settle_in_child(
    run: ChildRun,
    start: multiprocessing.synchronize.Event,
    results: Queue[tuple[str, int]],
) -> None:
    """Wait for the start signal, run one settlement and put (outcome, payouts) on `results`."""
    results.put(asyncio.run(_settle(run, start)))


async def _settle(run: ChildRun, start: multiprocessing.synchronize.Event) -> tuple[str, int]:
    db = Database.from_url(run.database_url, search_path=run.search_path)

    async def pause(step: str, payout_id: int) -> None:
        if step == "created":
            await asyncio.sleep(run.pause_seconds)

    stack = build_stack(db, run.node_url, make_policy(lock_name=run.lock_name), step_hook=pause)
    try:
        await asyncio.to_thread(start.wait, 30)
        report = await stack.service.run("child")
        return report.outcome.value, len(report.payout_ids)
    finally:
        await stack.aclose()
        await db.dispose()
