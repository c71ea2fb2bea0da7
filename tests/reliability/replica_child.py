"""A settlement replica: a process that settles on a schedule, as the bot's settlement job does.

A run starts every `interval_seconds`, never two at once in the process, like the scheduler's
job with `max_instances=1`. The settlement lock reports through the campaign's pipe when it
was taken and, just before, when it is given up, so the campaign can tell who held it when.
Times are `time.monotonic()` readings, which on Linux come from one clock shared by every
process of the machine (CLOCK_MONOTONIC).

Events: `started`, `acquired TIME`, `releasing TIME`, the settlement steps (`created ID`,
`signed ID`, ...) and `ran OUTCOME START` after each run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection

from core.db.locking import SettlementLock
from core.db.session import Database
from core.services.settlement import SCHEDULED_TRIGGER, SettlementService
from tests.integration.settlement.helpers_world import build_stack, make_policy
from tests.reliability.settle_child import UNCAPPED, Channel, PipeChannel, log_to_file


@dataclass(frozen=True)
class ReplicaOptions:
    """What one replica process needs."""

    database_url: str
    search_path: str | None
    node_url: str
    lock_name: str
    interval_seconds: float
    lock_ttl_seconds: float
    log_path: str | None = None


class AnnouncingLock(SettlementLock):
    """The settlement lock, reporting each time it is taken and just before it is given up.

    Reporting after taking it and before giving it up makes each reported interval lie
    inside the real one, so two reported intervals that overlap prove a real overlap.
    """

    def __init__(self, db: Database, channel: Channel) -> None:
        super().__init__(db)
        self._channel = channel

    async def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        acquired = await super().try_acquire(name, holder, ttl)
        if acquired:
            self._channel.announce("acquired", str(time.monotonic()))
        return acquired

    async def release(self, name: str, holder: str) -> None:
        self._channel.announce("releasing", str(time.monotonic()))
        await super().release(name, holder)


async def run_replica(options: ReplicaOptions, channel: Channel) -> None:
    """Settle every `interval_seconds` until killed, reporting each run and each lock change."""
    db = Database.from_url(options.database_url, search_path=options.search_path)

    async def announce_step(step: str, payout_id: int) -> None:
        channel.announce(step, str(payout_id))

    policy = dataclasses.replace(
        make_policy(daily_payouts=UNCAPPED, weekly_payouts=UNCAPPED, lock_name=options.lock_name),
        lock_ttl=timedelta(seconds=options.lock_ttl_seconds),
    )
    stack = build_stack(db, options.node_url, policy, step_hook=announce_step)
    assert stack.processor is not None
    service = SettlementService(
        db,
        policy,
        metrics=stack.metrics,
        processor=stack.processor,
        lock=AnnouncingLock(db, channel),
        rng=random.Random(),
        step_hook=announce_step,
    )
    try:
        channel.announce("started", "")
        while True:
            started = time.monotonic()
            report = await service.run(SCHEDULED_TRIGGER)
            channel.announce("ran", f"{report.outcome.value} {started}")
            # The next run starts one interval after this one started, or at once if late.
            await asyncio.sleep(max(0.0, started + options.interval_seconds - time.monotonic()))
    finally:
        await stack.aclose()
        await db.dispose()


def replica_process_main(options: ReplicaOptions, connection: Connection) -> None:
    """Entry point of a replica process, started through multiprocessing."""
    log_to_file(options.log_path)
    asyncio.run(run_replica(options, PipeChannel(connection)))
