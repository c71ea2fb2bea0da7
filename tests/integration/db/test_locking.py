"""SettlementLock: one holder at a time, takeover after a crash, advisory locks on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core.db import Database
from core.db.locking import SettlementLock, advisory_key, new_holder_id
from core.db.models import Lease
from tests.integration.db.helpers_lease import without_lease_file
from tests.integration.db.helpers_rows import NOW, FakeClock

NAME = "settlement"
TTL = timedelta(minutes=10)


async def lease_row(db: Database) -> Lease | None:
    async with db.read() as session:
        return await session.scalar(select(Lease).where(Lease.name == NAME))


async def test_only_one_holder_acquires(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())

    assert await lock.try_acquire(NAME, "holder-a", TTL)
    assert not await lock.try_acquire(NAME, "holder-b", TTL)

    assert await lock.is_held(NAME, "holder-a")
    assert not await lock.is_held(NAME, "holder-b")
    await lock.release(NAME, "holder-a")


async def test_release_frees_lease(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    await lock.release(NAME, "holder-a")

    assert await lease_row(database) is None
    assert await lock.try_acquire(NAME, "holder-b", TTL)
    await lock.release(NAME, "holder-b")


async def test_release_by_other_holder_ignored(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    await lock.release(NAME, "holder-b")

    assert await lock.is_held(NAME, "holder-a")
    assert not await lock.try_acquire(NAME, "holder-b", TTL)
    await lock.release(NAME, "holder-a")


async def test_same_holder_reacquires_and_extends(database: Database) -> None:
    clock = FakeClock()
    lock = SettlementLock(database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    clock.advance(timedelta(minutes=5))
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    row = await lease_row(database)
    assert row is not None
    assert row.holder == "holder-a"
    assert row.acquired_at == NOW
    assert row.expires_at == NOW + timedelta(minutes=15)
    await lock.release(NAME, "holder-a")


async def test_renew_extends_only_for_holder(database: Database) -> None:
    clock = FakeClock()
    lock = SettlementLock(database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    clock.advance(timedelta(minutes=8))
    assert await lock.renew(NAME, "holder-a", TTL)
    assert not await lock.renew(NAME, "holder-b", TTL)

    row = await lease_row(database)
    assert row is not None
    assert row.expires_at == NOW + timedelta(minutes=18)
    await lock.release(NAME, "holder-a")


async def test_separate_lock_objects_compete(database: Database) -> None:
    first = SettlementLock(database, clock=FakeClock())
    second = SettlementLock(database, clock=FakeClock())

    assert await first.try_acquire(NAME, "holder-a", TTL)
    assert not await second.try_acquire(NAME, "holder-b", TTL)

    await first.release(NAME, "holder-a")
    assert await second.try_acquire(NAME, "holder-b", TTL)
    await second.release(NAME, "holder-b")


async def test_racing_acquirers_one_wins(database: Database) -> None:
    locks = [SettlementLock(database, clock=FakeClock()) for _ in range(8)]

    results = await asyncio.gather(
        *(lock.try_acquire(NAME, f"holder-{index}", TTL) for index, lock in enumerate(locks))
    )

    assert results.count(True) == 1
    winner = results.index(True)
    row = await lease_row(database)
    assert row is not None
    assert row.holder == f"holder-{winner}"
    await locks[winner].release(NAME, f"holder-{winner}")


async def test_hold_releases_on_exit(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())

    async with lock.hold(NAME, "holder-a", TTL) as acquired:
        assert acquired
        assert not await lock.try_acquire(NAME, "holder-b", TTL)

    assert await lease_row(database) is None
    assert await lock.try_acquire(NAME, "holder-b", TTL)
    await lock.release(NAME, "holder-b")


async def fail_while_holding(lock: SettlementLock) -> None:
    async with lock.hold(NAME, "holder-a", TTL) as acquired:
        assert acquired
        raise RuntimeError("settlement failed")


async def test_hold_releases_on_error(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())

    with pytest.raises(RuntimeError, match="settlement failed"):
        await fail_while_holding(lock)

    assert await lease_row(database) is None


async def test_hold_busy_leaves_other_lease(database: Database) -> None:
    lock = SettlementLock(database, clock=FakeClock())
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    async with lock.hold(NAME, "holder-b", TTL) as acquired:
        assert not acquired

    row = await lease_row(database)
    assert row is not None
    assert row.holder == "holder-a"
    await lock.release(NAME, "holder-a")


async def test_hold_renews_while_running(database: Database) -> None:
    clock = FakeClock()
    lock = SettlementLock(database, clock=clock)

    async with lock.hold(NAME, "holder-a", TTL, renew_every=timedelta(milliseconds=10)):
        clock.advance(timedelta(minutes=9))
        # Wait for the renewal task to write an expiry based on the advanced clock.
        for _ in range(500):
            row = await lease_row(database)
            if row is not None and row.expires_at == clock.now + TTL:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the lease was not renewed")

        clock.advance(timedelta(minutes=9))
        other = SettlementLock(database, clock=clock)
        assert not await other.try_acquire(NAME, "holder-b", TTL)


async def test_sqlite_hold_notices_lost_lease(sqlite_database: Database) -> None:
    without_lease_file(sqlite_database, NAME)
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)
    successor = SettlementLock(sqlite_database, clock=clock)

    async with lock.hold(NAME, "holder-a", TTL, renew_every=timedelta(hours=1)) as acquired:
        assert acquired
        clock.advance(TTL)
        assert await successor.try_acquire(NAME, "holder-b", TTL)

        assert not await lock.is_held(NAME, "holder-a")
        assert not await lock.renew(NAME, "holder-a", TTL)

    # Leaving the block released only holder-a's lease, which it no longer had.
    row = await lease_row(sqlite_database)
    assert row is not None
    assert row.holder == "holder-b"


@pytest.mark.parametrize(
    ("name", "holder", "ttl"),
    [
        ("", "holder-a", TTL),
        ("n" * 65, "holder-a", TTL),
        (NAME, "", TTL),
        (NAME, "h" * 129, TTL),
        (NAME, "holder-a", timedelta(0)),
    ],
)
async def test_invalid_arguments_rejected(
    sqlite_database: Database, name: str, holder: str, ttl: timedelta
) -> None:
    lock = SettlementLock(sqlite_database)

    with pytest.raises(ValueError, match="lease"):
        await lock.try_acquire(name, holder, ttl)


async def test_sqlite_expired_lease_taken_over(sqlite_database: Database) -> None:
    without_lease_file(sqlite_database, NAME)
    clock = FakeClock()
    crashed = SettlementLock(sqlite_database, clock=clock)
    assert await crashed.try_acquire(NAME, "holder-a", TTL)

    clock.advance(TTL - timedelta(seconds=1))
    successor = SettlementLock(sqlite_database, clock=clock)
    assert not await successor.try_acquire(NAME, "holder-b", TTL)

    clock.advance(timedelta(seconds=1))
    assert await successor.try_acquire(NAME, "holder-b", TTL)

    assert not await crashed.is_held(NAME, "holder-a")
    assert not await crashed.renew(NAME, "holder-a", TTL)
    row = await lease_row(sqlite_database)
    assert row is not None
    assert row.holder == "holder-b"
    assert row.acquired_at == clock.now


async def test_sqlite_expired_lease_not_held(sqlite_database: Database) -> None:
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    clock.advance(TTL)

    assert not await lock.is_held(NAME, "holder-a")


async def schema_key(db: Database) -> int:
    async with db.read() as session:
        schema = await session.scalar(text("SELECT current_schema()"))
    return advisory_key(NAME, str(schema))


async def test_postgres_advisory_lock_blocks_other_connection(
    postgres_database: Database,
) -> None:
    key = await schema_key(postgres_database)
    lock = SettlementLock(postgres_database)
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    async with postgres_database.engine.connect() as other:
        taken = await other.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        assert taken is False

        await lock.release(NAME, "holder-a")

        taken = await other.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        assert taken is True
        await other.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


async def test_postgres_lease_row_shows_holder(postgres_database: Database) -> None:
    lock = SettlementLock(postgres_database, clock=FakeClock())
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    row = await lease_row(postgres_database)

    assert row is not None
    assert row.holder == "holder-a"
    assert row.expires_at == NOW + TTL
    await lock.release(NAME, "holder-a")


async def test_postgres_live_holder_keeps_lock_past_ttl(postgres_database: Database) -> None:
    clock = FakeClock()
    holder = SettlementLock(postgres_database, clock=clock)
    assert await holder.try_acquire(NAME, "holder-a", TTL)

    clock.advance(TTL * 2)
    other = SettlementLock(postgres_database, clock=clock)

    assert not await other.try_acquire(NAME, "holder-b", TTL)
    assert await holder.is_held(NAME, "holder-a")
    await holder.release(NAME, "holder-a")


async def test_postgres_crashed_holder_lock_taken_over(postgres_database: Database) -> None:
    crashed = SettlementLock(postgres_database)
    assert await crashed.try_acquire(NAME, "holder-a", TTL)

    await terminate_lock_session(postgres_database, await schema_key(postgres_database))

    successor = SettlementLock(postgres_database)
    assert await successor.try_acquire(NAME, "holder-b", TTL)
    assert not await crashed.is_held(NAME, "holder-a")
    row = await lease_row(postgres_database)
    assert row is not None
    assert row.holder == "holder-b"
    await successor.release(NAME, "holder-b")


async def terminate_lock_session(db: Database, key: int) -> None:
    """End the server session holding the advisory lock, as if its process had died."""
    # pg_locks splits a bigint key into two unsigned 32-bit halves.
    unsigned = key & (2**64 - 1)
    async with db.engine.connect() as connection:
        terminated = await connection.scalar(
            text(
                "SELECT bool_and(pg_terminate_backend(pid, 5000)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND classid::bigint = :high AND objid::bigint = :low"
            ),
            {"high": unsigned >> 32, "low": unsigned & (2**32 - 1)},
        )
    assert terminated is True


def test_new_holder_ids_unique() -> None:
    first, second = new_holder_id(), new_holder_id()

    assert first != second
    assert len(first) <= 128


def test_advisory_key_stable() -> None:
    key = advisory_key(NAME, "public")

    assert key == advisory_key(NAME, "public")
    assert key != advisory_key("other", "public")
    assert key != advisory_key(NAME, "pay2slay")
    assert -(2**63) <= key < 2**63
