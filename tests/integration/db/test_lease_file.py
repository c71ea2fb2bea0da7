"""SQLite leases: the file lock beside the database that frees a killed holder's lease at once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

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
    takeovers = [entry for entry in logs if entry["event"] == "lease_taken_from_ended_holder"]
    assert [entry["ended"] for entry in takeovers] == ["holder-killed"]
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
    assert path.read_text().split() == ["holder-a"]
    await lock.release(NAME, "holder-a")

    lease_file = LeaseFile.try_lock(path)
    assert lease_file is not None
    assert lease_file.recorded_holders() == frozenset()
    lease_file.close()


async def test_busy_lease_file_refuses_reused_holder(sqlite_database: Database) -> None:
    """A holder id used again while another process checks the file gets no lease.

    Taking the row without the file lock would leave the file naming this live holder from
    its earlier tenure, so the next process to get the lock would take its lease.
    """
    path = lease_file_path(database_path(sqlite_database), NAME)
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-a", TTL)
    await lock.release(NAME, "holder-a")

    checker = LeaseFile.try_lock(path)
    assert checker is not None
    assert not await lock.try_acquire(NAME, "holder-a", TTL)
    checker.close()
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    other = SettlementLock(sqlite_database, clock=clock)
    assert not await other.try_acquire(NAME, "holder-b", TTL)
    assert await lease_holder(sqlite_database) == "holder-a"
    await lock.release(NAME, "holder-a")


@pytest.mark.parametrize(
    ("row_holder", "recorded"),
    [
        ("holder-dead", ["holder-next", "holder-dead"]),
        ("holder-next", ["holder-next", "holder-dead"]),
    ],
    ids=["killed-before-row", "killed-after-row"],
)
async def test_killed_mid_acquire_lease_free(
    sqlite_database: Database, row_holder: str, recorded: list[str]
) -> None:
    """A process killed while taking a dead holder's lease leaves a file naming both."""
    clock = FakeClock()
    async with sqlite_database.write() as session:
        session.add(
            Lease(name=NAME, holder=row_holder, acquired_at=clock.now, expires_at=clock.now + TTL)
        )
    path = lease_file_path(database_path(sqlite_database), NAME)
    lease_file = LeaseFile.try_lock(path)
    assert lease_file is not None
    lease_file.record(recorded)
    lease_file.close()

    lock = SettlementLock(sqlite_database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-c", TTL)
    assert await lease_holder(sqlite_database) == "holder-c"
    await lock.release(NAME, "holder-c")


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


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
async def test_odd_lease_path_falls_back(sqlite_database: Database, kind: str) -> None:
    path = lease_file_path(database_path(sqlite_database), NAME)
    target = path.with_name("unrelated.txt")
    target.write_text("keep me")
    if kind == "symlink":
        path.symlink_to(target)
    else:
        os.mkfifo(path)
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)

    with structlog.testing.capture_logs() as logs:
        assert await lock.try_acquire(NAME, "holder-a", TTL)
    assert [entry["event"] for entry in logs].count("lease_file_unavailable") == 1
    assert target.read_text() == "keep me"
    await lock.release(NAME, "holder-a")


def test_lease_file_path_resolves_links(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    real.touch()
    link = tmp_path / "link.db"
    link.symlink_to(real)

    assert lease_file_path(link, NAME) == lease_file_path(real, NAME)
    assert lease_file_path(link, NAME).name == "real.db-lease-settlement"


async def test_holder_with_line_break_rejected(sqlite_database: Database) -> None:
    lock = SettlementLock(sqlite_database)

    with pytest.raises(ValueError, match="line break"):
        await lock.try_acquire(NAME, "holder-a\nholder-b", TTL)


def test_lease_file_path_names(tmp_path: Path) -> None:
    database = tmp_path / "pay2slay.db"

    assert lease_file_path(database, "settlement") == tmp_path / "pay2slay.db-lease-settlement"
    hashed = lease_file_path(database, "../../etc/passwd")
    assert hashed.parent == tmp_path
    assert hashed.name.startswith("pay2slay.db-lease-")
    assert "/" not in hashed.name.removeprefix("pay2slay.db-lease-")


def test_closed_lease_file_rejects_use(tmp_path: Path) -> None:
    lease_file = LeaseFile.try_lock(tmp_path / "lease")
    assert lease_file is not None
    lease_file.close()
    lease_file.close()

    with pytest.raises(ValueError, match="closed"):
        lease_file.record(["holder-a"])


def test_lease_file_mode_is_private(tmp_path: Path) -> None:
    lease_file = LeaseFile.try_lock(tmp_path / "lease")
    assert lease_file is not None
    lease_file.close()

    assert os.stat(tmp_path / "lease").st_mode & 0o777 == 0o600


async def test_live_holder_keeps_lease_past_expiry(sqlite_database: Database) -> None:
    clock = FakeClock()
    holder = SettlementLock(sqlite_database, clock=clock)
    successor = SettlementLock(sqlite_database, clock=clock)
    assert await holder.try_acquire(NAME, "holder-a", TTL)

    clock.advance(TTL * 2)

    assert not await successor.try_acquire(NAME, "holder-b", TTL)
    assert await lease_holder(sqlite_database) == "holder-a"
    await holder.release(NAME, "holder-a")


@pytest.mark.parametrize(("failing_write", "acquired"), [(1, False), (2, True)])
async def test_lease_file_write_error(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch, failing_write: int, acquired: bool
) -> None:
    """A write error before the row is taken gives no lease; one after it keeps the file lock.

    Either way the lease never ends up held without the file lock, which the next process to
    get that lock would take as a dead holder's.
    """
    path = lease_file_path(database_path(sqlite_database), NAME)
    original_record = LeaseFile.record
    writes = 0

    def failing_record(self: LeaseFile, holders: list[str]) -> None:
        nonlocal writes
        writes += 1
        if writes == failing_write:
            raise OSError(5, "Input/output error")
        original_record(self, holders)

    monkeypatch.setattr(LeaseFile, "record", failing_record)
    lock = SettlementLock(sqlite_database, clock=FakeClock())

    assert await lock.try_acquire(NAME, "holder-a", TTL) is acquired
    if acquired:
        assert await lease_holder(sqlite_database) == "holder-a"
        assert LeaseFile.try_lock(path) is None
        await lock.release(NAME, "holder-a")
    else:
        assert await lease_holder(sqlite_database) is None
    lease_file = LeaseFile.try_lock(path)
    assert lease_file is not None
    lease_file.close()


async def test_failed_release_leaves_lease_takeable(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release whose row delete fails leaves the row named in the file, for the next one."""
    clock = FakeClock()
    lock = SettlementLock(sqlite_database, clock=clock)
    assert await lock.try_acquire(NAME, "holder-a", TTL)

    @asynccontextmanager
    async def failing_write() -> AsyncIterator[None]:
        raise OperationalError("DELETE FROM leases", {}, Exception("disk I/O error"))
        yield

    with monkeypatch.context() as patch:
        patch.setattr(sqlite_database, "write", failing_write)
        with pytest.raises(OperationalError):
            await lock.release(NAME, "holder-a")

    assert await lease_holder(sqlite_database) == "holder-a"
    successor = SettlementLock(sqlite_database, clock=clock)
    assert await successor.try_acquire(NAME, "holder-b", TTL)
    assert await lease_holder(sqlite_database) == "holder-b"
    await successor.release(NAME, "holder-b")
