"""Backup and restore of a real SQLite file with ledger rows, through the API and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.cli import main
from core.clock import utc_now
from core.db import Database
from core.db import backup as backup_module
from core.db.backup import (
    RESTORE_PAUSE_REASON,
    BackupError,
    backup_sqlite,
    held_leases,
    restore_sqlite,
    verify_backup,
)
from core.db.lease_file import LeaseFile, lease_file_path
from core.db.locking import SettlementLock
from core.db.migrate import head_revision
from core.db.models import AuditEntry, FaucetFlag, Lease, Payout, PayoutState, Player
from core.services.faucet_flags import is_paused
from tests.integration.db.helpers_lease import holder_process
from tests.integration.ops.helpers_ops import NOW, add_ledger, ledger_counts


@pytest.fixture
async def live(tmp_path: Path, sqlite_template: Path) -> tuple[Path, Database]:
    path = tmp_path / "data" / "pay2slay.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    await add_ledger(db, 5)
    return path, db


async def test_backup_while_writing_then_restore(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    path, db = live
    backup = tmp_path / "backups" / "first.db"
    try:
        before = await ledger_counts(db)

        # A writer keeps committing while the backup runs; the copy is one consistent snapshot.
        writer = asyncio.create_task(add_ledger(db, 20, first=100))
        report = await asyncio.to_thread(backup_sqlite, path, backup)
        await writer

        assert report.revision == head_revision()
        assert report.size_bytes == backup.stat().st_size
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert verify_backup(backup).sha256 == report.sha256

        # Change the live database after the backup; the restore must undo this.
        async with db.write() as session:
            await session.execute(update(Player).values(frozen=True))
            await session.execute(update(Payout).values(state=PayoutState.FAILED))
        assert (await ledger_counts(db)).players == before.players + 20
    finally:
        await db.dispose()

    restored = restore_sqlite(backup, path, now=NOW)

    assert restored.previous_copy is not None
    assert restored.previous_copy.exists()
    db = Database.from_url(f"sqlite:///{path}")
    try:
        counts = await ledger_counts(db)
    finally:
        await db.dispose()
    snapshot = Database.from_url(f"sqlite:///{backup}")
    try:
        in_backup = await ledger_counts(snapshot)
    finally:
        await snapshot.dispose()
    assert counts == in_backup
    # add_ledger commits all its players in one transaction, so the snapshot has all or none.
    assert counts.players in (before.players, before.players + 20)
    assert counts.accruals == 2 * counts.players
    assert counts.paid_raw == counts.payouts * 3 * 21 * 10**28
    db = Database.from_url(f"sqlite:///{path}")
    try:
        async with db.read() as session:
            frozen = (await session.scalars(select(Player).where(Player.frozen))).all()
            states = set((await session.scalars(select(Payout.state))).all())
    finally:
        await db.dispose()
    assert frozen == []
    assert states == {PayoutState.CONFIRMED}


async def test_restore_refused_while_lease_held(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    path, db = live
    backup = tmp_path / "b.db"
    try:
        backup_sqlite(path, backup)
        lock = SettlementLock(db, clock=lambda: NOW)
        assert await lock.try_acquire("settlement", "host:1:abc", timedelta(minutes=10))

        with pytest.raises(BackupError, match=r"settlement \(held by host:1:abc\)"):
            restore_sqlite(backup, path, now=NOW)
        assert [lease.name for lease in held_leases(path, NOW)] == ["settlement"]
        # A live holder keeps its lease file locked, so even an expired row counts.
        later = NOW + timedelta(minutes=11)
        assert [lease.holder for lease in held_leases(path, later)] == [None]
        await lock.release("settlement", "host:1:abc")
    finally:
        await db.dispose()
    report = restore_sqlite(backup, path, now=NOW, keep_previous=False)
    assert report.previous_copy is None


async def test_restore_waits_for_unrecorded_lease_expiry(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    """A lease row whose holder the lease file never named counts until it expires."""
    path, db = live
    backup = tmp_path / "b.db"
    try:
        backup_sqlite(path, backup)
        async with db.write() as session:
            session.add(
                Lease(
                    name="settlement",
                    holder="host:3:old",
                    acquired_at=NOW,
                    expires_at=NOW + timedelta(minutes=10),
                )
            )
    finally:
        await db.dispose()

    with pytest.raises(BackupError, match=r"held by host:3:old"):
        restore_sqlite(backup, path, now=NOW)
    report = restore_sqlite(backup, path, now=NOW + timedelta(minutes=11), keep_previous=False)
    assert report.previous_copy is None


async def test_restore_clears_backup_leases(live: tuple[Path, Database], tmp_path: Path) -> None:
    """A backup taken during a settlement contains its lease, which no process holds now."""
    path, db = live
    backup = tmp_path / "b.db"
    try:
        lock = SettlementLock(db, clock=lambda: NOW)
        assert await lock.try_acquire("settlement", "host:4:then", timedelta(minutes=10))
        backup_sqlite(path, backup)
        await lock.release("settlement", "host:4:then")
    finally:
        await db.dispose()

    restore_sqlite(backup, path, now=NOW, keep_previous=False)

    assert held_leases(path, NOW) == []
    restored = Database.from_url(f"sqlite:///{path}")
    try:
        async with restored.read() as session:
            assert list(await session.scalars(select(Lease))) == []
    finally:
        await restored.dispose()


async def test_restore_after_lease_holder_killed(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    """A killed bot's lease has not expired, but its lease file shows the holder is gone."""
    path, db = live
    backup = tmp_path / "b.db"
    await db.dispose()
    backup_sqlite(path, backup)

    with holder_process(path, "host:2:killed") as holder:
        now = utc_now()
        with pytest.raises(BackupError, match=r"held by host:2:killed"):
            restore_sqlite(backup, path, now=now)
        holder.kill()
        holder.wait(30)

    assert held_leases(path, now) == []
    report = restore_sqlite(backup, path, now=now, keep_previous=False)
    assert report.previous_copy is None


def test_backup_refuses_existing_destination(tmp_path: Path, sqlite_template: Path) -> None:
    source = tmp_path / "live.db"
    shutil.copyfile(sqlite_template, source)
    destination = tmp_path / "b.db"
    destination.write_bytes(b"keep me")

    with pytest.raises(BackupError, match="already exists"):
        backup_sqlite(source, destination)
    assert destination.read_bytes() == b"keep me"

    backup_sqlite(source, destination, overwrite=True)
    assert verify_backup(destination).revision == head_revision()

    with pytest.raises(BackupError, match="database file itself"):
        backup_sqlite(source, source, overwrite=True)
    assert not list(tmp_path.glob(".*partial*"))


def test_corrupt_backup_rejected(tmp_path: Path, sqlite_template: Path) -> None:
    target = tmp_path / "live.db"
    shutil.copyfile(sqlite_template, target)
    original = target.read_bytes()
    corrupt = tmp_path / "corrupt.db"
    data = bytearray(sqlite_template.read_bytes())
    # Overwrite the middle of the file, past the header, with garbage.
    data[8192:12288] = b"\xff" * 4096
    corrupt.write_bytes(bytes(data))

    with pytest.raises(BackupError, match=r"integrity check|not a readable SQLite database"):
        restore_sqlite(corrupt, target, now=NOW)
    assert target.read_bytes() == original

    not_sqlite = tmp_path / "text.db"
    not_sqlite.write_text("hello")
    with pytest.raises(BackupError, match="not a readable SQLite database"):
        verify_backup(not_sqlite)


def test_backup_from_unknown_revision_rejected(tmp_path: Path, sqlite_template: Path) -> None:
    newer = tmp_path / "newer.db"
    shutil.copyfile(sqlite_template, newer)
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()

    with pytest.raises(BackupError, match="revision 9999"):
        restore_sqlite(newer, tmp_path / "live.db", now=NOW)

    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).close()
    with pytest.raises(BackupError, match="no migration revision"):
        restore_sqlite(plain, tmp_path / "live.db", now=NOW)


async def test_cli_backup_and_restore(
    live: tuple[Path, Database], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, db = live
    await db.dispose()
    url = f"sqlite+aiosqlite:///{path}"
    backup = tmp_path / "cli.db"

    code = await asyncio.to_thread(main, ["db", "backup", str(backup), "--database-url", url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "integrity ok" in captured.out

    path.unlink()
    code = await asyncio.to_thread(
        main, ["db", "restore", str(backup), "--yes", "--database-url", url]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"restored {path}" in captured.out
    assert "payouts are paused" in captured.out
    assert "/payouts-resume" in captured.out

    db = Database.from_url(url)
    try:
        assert (await ledger_counts(db)).players == 5
    finally:
        await db.dispose()


async def test_restore_keeps_lease_file_locked(
    live: tuple[Path, Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the backup is copied in, no process can take the settlement lease."""
    path, db = live
    backup = tmp_path / "b.db"
    await db.dispose()
    backup_sqlite(path, backup)
    original_check = backup_module._check_database
    seen_during_copy: list[bool] = []

    def check_while_locked(checked: Path, *, read_only: bool) -> object:
        # The restore checks the backup first, then the database it copied in.
        if checked == path:
            lease_file = LeaseFile.try_lock(lease_file_path(path, "settlement"))
            seen_during_copy.append(lease_file is None)
            if lease_file is not None:
                lease_file.close()
        return original_check(checked, read_only=read_only)

    monkeypatch.setattr(backup_module, "_check_database", check_while_locked)
    restore_sqlite(backup, path, now=NOW, keep_previous=False)

    assert seen_during_copy == [True]
    lease_file = LeaseFile.try_lock(lease_file_path(path, "settlement"))
    assert lease_file is not None
    lease_file.close()


async def test_restore_pauses_payouts(live: tuple[Path, Database], tmp_path: Path) -> None:
    """Payouts sent after the backup are not in it, so settling at once could pay them again."""
    path, db = live
    backup = tmp_path / "b.db"
    await db.dispose()
    backup_sqlite(path, backup)

    restore_sqlite(backup, path, now=NOW, keep_previous=False)

    restored = Database.from_url(f"sqlite:///{path}")
    try:
        async with restored.read() as session:
            assert await is_paused(session)
            flag = await session.get(FaucetFlag, "payouts_paused")
            entries = list(await session.scalars(select(AuditEntry)))
    finally:
        await restored.dispose()
    assert flag is not None
    assert flag.updated_at == NOW
    assert flag.updated_by is None
    paused = [entry for entry in entries if entry.action == "payouts_paused"]
    assert len(paused) == 1
    assert paused[0].created_at == NOW
    assert json.loads(paused[0].detail) == {"changed": True, "reason": RESTORE_PAUSE_REASON}


async def test_restore_refused_without_lease_file_access(
    live: tuple[Path, Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as another user, the restore cannot see whether the bot holds the lease file."""
    path, db = live
    backup = tmp_path / "b.db"
    await db.dispose()
    backup_sqlite(path, backup)
    before = path.read_bytes()

    def denied(lease_path: Path) -> LeaseFile | None:
        raise PermissionError(13, "Permission denied", str(lease_path))

    monkeypatch.setattr(LeaseFile, "try_lock", staticmethod(denied))
    with pytest.raises(BackupError, match="as the user the bot runs as"):
        restore_sqlite(backup, path, now=NOW, keep_previous=False)
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_backup_refuses_overwriting_open_database(
    tmp_path: Path, sqlite_template: Path, suffix: str
) -> None:
    source = tmp_path / "live.db"
    shutil.copyfile(sqlite_template, source)
    destination = tmp_path / "other.db"
    destination.write_bytes(b"another database")
    destination.with_name(destination.name + suffix).write_bytes(b"")

    with pytest.raises(BackupError, match=f"has a {suffix} file"):
        backup_sqlite(source, destination, overwrite=True)
    assert destination.read_bytes() == b"another database"


async def test_restore_of_incomplete_database_changes_nothing(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    """A file with a known revision but without Pay2Slay's tables is refused before the copy."""
    path, db = live
    await db.dispose()
    before = path.read_bytes()
    crafted = tmp_path / "crafted.db"
    with sqlite3.connect(crafted) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES (?)", (head_revision(),))
    connection.close()

    with pytest.raises(BackupError, match="no leases, faucet_flags, audit_log table"):
        restore_sqlite(crafted, path, now=NOW)
    assert path.read_bytes() == before
    left = [entry.name for entry in path.parent.iterdir() if "partial" in entry.name]
    assert left == []
    previous_copies = [e.name for e in path.parent.iterdir() if "before-restore" in e.name]
    assert previous_copies == []


async def test_restore_to_new_path_is_private(live: tuple[Path, Database], tmp_path: Path) -> None:
    path, db = live
    await db.dispose()
    backup = tmp_path / "b.db"
    backup_sqlite(path, backup)
    target = tmp_path / "new" / "pay2slay.db"

    restore_sqlite(backup, target, now=NOW, keep_previous=False)

    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
async def test_restore_as_root_gives_lease_file_to_owner(
    live: tuple[Path, Database], tmp_path: Path
) -> None:
    path, db = live
    await db.dispose()
    backup = tmp_path / "b.db"
    backup_sqlite(path, backup)
    os.chown(path, 1000, 1000)
    lease_path = lease_file_path(path, "settlement")
    assert not lease_path.exists()

    restore_sqlite(backup, path, now=NOW, keep_previous=False)

    owner = lease_path.stat()
    assert (owner.st_uid, owner.st_gid) == (1000, 1000)
