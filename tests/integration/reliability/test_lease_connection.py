"""The lease renewal and `is_held` share one PostgreSQL connection without losing the lock.

On PostgreSQL the advisory lock lives on one dedicated connection. The renewal task and
`is_held` both query it, and asyncpg raises when a second query starts on a connection that
is still busy. That error used to be taken for a lost connection: the lock was given up in
the middle of a run, and the run stopped with "the settlement lock was lost".
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from core.db.locking import SettlementLock, new_holder_id
from core.db.session import Database

LOCK_NAME = "reliability-lease-connection"
CHECKS = 200


async def test_is_held_during_fast_renewals(database: Database) -> None:
    lock = SettlementLock(database)
    holder = new_holder_id()
    answers: list[bool] = []

    with structlog.testing.capture_logs() as logs:
        async with lock.hold(
            LOCK_NAME, holder, timedelta(seconds=30), renew_every=timedelta(milliseconds=1)
        ) as acquired:
            assert acquired
            for _ in range(CHECKS):
                answers.append(await lock.is_held(LOCK_NAME, holder))

    assert all(answers), f"is_held returned False {answers.count(False)} times"
    events = [entry["event"] for entry in logs]
    assert "lease_connection_lost" not in events
    assert "lease_lost" not in events


async def test_concurrent_is_held_calls(database: Database) -> None:
    lock = SettlementLock(database)
    holder = new_holder_id()

    async with lock.hold(LOCK_NAME, holder, timedelta(seconds=30)) as acquired:
        assert acquired
        answers = await asyncio.gather(*(lock.is_held(LOCK_NAME, holder) for _ in range(50)))
        still_held = await lock.is_held(LOCK_NAME, holder)

    assert all(answers)
    assert still_held


async def test_lock_free_after_hold_with_renewals(database: Database) -> None:
    lock = SettlementLock(database)
    first = new_holder_id()
    second = new_holder_id()

    async with lock.hold(
        LOCK_NAME, first, timedelta(seconds=30), renew_every=timedelta(milliseconds=1)
    ) as acquired:
        assert acquired
        await asyncio.gather(*(lock.is_held(LOCK_NAME, first) for _ in range(20)))

    other = SettlementLock(database)
    taken = await other.try_acquire(LOCK_NAME, second, timedelta(seconds=30))
    await other.release(LOCK_NAME, second)
    assert taken
