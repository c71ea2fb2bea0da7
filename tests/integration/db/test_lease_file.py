"""SQLite leases: the file lock beside the database that frees a killed holder's lease at once."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from core.db import Database
from core.db.lease_file import LeaseFile, lease_file_path
from core.db.locking import SettlementLock
from core.db.models import Lease
from tests.integration.db.helpers_lease import holder_process
from tests.integration.db.helpers_rows import FakeClock

NAME = "settlement"
TTL = timedelta(minutes=10)


def database_path(db: Database) -> Path:
    assert db.engine.url.database is not None
    return Path(db.engine.url.database)


async def lease_holder(db: Database) -> str | None:
    async with db.read() as session:
        return await session.scalar(select(Lease.holder).where(Lease.name == NAME))


async def test_killed_holder_lease_taken_at_once(sqlite_database: Database) -> None:
    path = database_path(sqlite_database)
    lock = SettlementLock(sqlite_database)

    with holder_process(path, "holder-killed") as child:
        assert not await lock.try_acquire(NAME, "holder-b", TTL)
        child.kill()
        child.wait(30)

    with structlog.testing.capture_logs() as logs:
        assert await lock.try_acquire(NAME, "holder-b", TTL)
    assert await lease_holder(sqlite_database) == "holder-b"
    taken = [entry for entry in logs if entry["event"] == "lease_taken_from_ended_holder"]
    assert [entry["ended"] for entry in taken] == ["holder-killed"]
    await lock.release(NAME, "holder-b")


async def test_live_holder_in_other_process_keeps_lease(sqlite_database: Database) -> None:
    path = database_path(sqlite_database)
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)

    with holder_process(path, "holder-live"):
        assert not await lock.try_acquire(NAME, "holder-b", TTL)
        assert await lease_holder(sqlite_database) == "holder-live"


async def test_unrecorded_holder_waits_for_expiry(sqlite_database: Database) -> None:
    """A row whose holder never wrote the file, as from a release without the file lock."""
    clock = FakeClock()
    async with sqlite_database.write() as session:
        session.add(
            Lease(name=NAME, holder="holder-old", acquired_at=clock.now, expires_at=clock.now + TTL)
        )
    lock = SettlementLock(sqlite_database, clock=clock)

    assert not await lock.try_acquire(NAME, "holder-b", TTL)
    clock.advance(TTL)
    assert await lock.try_acquire(NAME, "holder-b", TTL)
    await lock.release(NAME, "holder-b")


async def test_holder_recorded_while_held(sqlite_database: Database) -> None:
    path = lease_file_path(database_path(sqlite_database), NAME)
    lock = SettlementLock(sqlite_database, clock=FakeClock())

    assert await lock.try_acquire(NAME, "holder-a", TTL)
    assert LeaseFile.try_lock(path) is None
    await lock.release(NAME, "holder-a")

    lease_file = LeaseFile.try_lock(path)
    assert lease_file is not None
    assert lease_file.recorded_holder() == "holder-a"
    lease_file.close()


async def test_second_lock_object_in_process_busy(sqlite_database: Database) -> None:
    clock = FakeClock()
    first = SettlementLock(sqlite_database, clock=clock)
    second = SettlementLock(sqlite_database, clock=clock)

    assert await first.try_acquire(NAME, "holder-a", TTL)
    assert not await second.try_acquire(NAME, "holder-b", TTL)
    await first.release(NAME, "holder-a")
    assert await second.try_acquire(NAME, "holder-b", TTL)
    await second.release(NAME, "holder-b")


async def test_unusable_lease_file_falls_back_to_expiry(sqlite_database: Database) -> None:
    path = lease_file_path(database_path(sqlite_database), NAME)
    path.mkdir()
    clock = FakeClock()
    first = SettlementLock(sqlite_database, clock=clock)
    second = SettlementLock(sqlite_database, clock=clock)

    with structlog.testing.capture_logs() as logs:
        assert await first.try_acquire(NAME, "holder-a", TTL)
    assert [entry["event"] for entry in logs].count("lease_file_unavailable") == 1
    assert not await second.try_acquire(NAME, "holder-b", TTL)
    clock.advance(TTL)
    assert await second.try_acquire(NAME, "holder-b", TTL)


def test_lease_file_path_names() -> None:
    database = Path("/data/pay2slay.db")

    assert lease_file_path(database, "settlement") == Path("/data/pay2slay.db-lease-settlement")
    hashed = lease_file_path(database, "../../etc/passwd")
    assert hashed.parent == Path("/data")
    assert hashed.name.startswith("pay2slay.db-lease-")
    assert "/" not in hashed.name.removeprefix("pay2slay.db-lease-")


def test_closed_lease_file_rejects_use(tmp_path: Path) -> None:
    lease_file = LeaseFile.try_lock(tmp_path / "lease")
    assert lease_file is not None
    lease_file.close()
    lease_file.close()

    with pytest.raises(ValueError, match="closed"):
        lease_file.record("holder-a")


def test_lease_file_mode_is_private(tmp_path: Path) -> None:
    lease_file = LeaseFile.try_lock(tmp_path / "lease")
    assert lease_file is not None
    lease_file.close()

    assert os.stat(tmp_path / "lease").st_mode & 0o777 == 0o600
