"""Online backup, verification and restore of the SQLite database file.

A backup uses SQLite's online backup API, so it can run while the bot writes: in WAL mode the
copy is a consistent snapshot of one moment and writers are not blocked. The copy is written
next to its destination under a temporary name with mode 0600, switched to a single file
(journal mode DELETE), checked with `PRAGMA integrity_check` and `PRAGMA foreign_key_check`,
and only then renamed into place.

A restore checks the backup the same way and rejects the restore while a process may hold a
lease of the target database (a settlement is running): its lease file is locked, or its row
has not expired and the lease file does not show that the holder has ended. It keeps the lease
files locked until the copy is done. Unless `keep_previous` is False, it first saves a copy of
the current database. It copies the backup into the target through the backup API, which
writes under SQLite's own locks instead of replacing the file under open connections. Then it
clears the leases the backup contained and pauses payouts, because payouts sent after the
backup was taken are on chain but not in the restored ledger.

NOTE: a bot that is running but between settlements holds no lease, so the lease check cannot
see it. Stop the bot before a restore, as docs/operations.md says; a bot left running keeps
the state it had in memory, such as a payout it is about to send.

PostgreSQL databases are backed up with `pg_dump` instead; docs/operations.md shows how.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, delete, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.db.lease_file import LeaseFile, existing_lease_files, lease_file_path
from core.db.locking import SETTLEMENT_LOCK_NAME
from core.db.migrate import alembic_config
from core.db.models import (
    PAYOUTS_PAUSED,
    PAYOUTS_PAUSED_REASON,
    AuditEntry,
    FaucetFlag,
    Lease,
)
from core.db.session import SQLITE_BUSY_TIMEOUT_MS
from core.errors import Pay2SlayError

log = structlog.get_logger(__name__)

# The pause reason a restore records. Payouts stay paused until an admin resumes them.
RESTORE_PAUSE_REASON = (
    "restored from a backup: compare the operator account's history with the payout history "
    "before resuming"
)

_READ_CHUNK_BYTES = 1024 * 1024


class BackupError(Pay2SlayError):
    """A backup or restore failed or was refused; nothing was changed at its destination."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A checked database file: where it is, its size and digest, and its migration revision."""

    path: Path
    size_bytes: int
    sha256: str
    revision: str | None

    def describe(self) -> str:
        """Return one line for the operator."""
        revision = self.revision or "none"
        return (
            f"{self.path}: {self.size_bytes} bytes, sha256 {self.sha256}, "
            f"migration revision {revision}, integrity ok"
        )


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """Result of a restore: the backup it read and the copy it kept of the replaced database."""

    backup: BackupReport
    target: Path
    previous_copy: Path | None


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease that was still held when a restore was asked for.

    `holder` and `expires_at` are None when a running process has locked a lease file that no
    unexpired row names (it may be taking the lease right now). `name` is then the file's name.
    """

    name: str
    holder: str | None
    expires_at: datetime | None

    def describe(self) -> str:
        """Return the lease's name and who holds it, for a message."""
        holder = "a running process" if self.holder is None else self.holder
        return f"{self.name} (held by {holder})"


def backup_sqlite(source: Path, destination: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the SQLite database at `source` to `destination` and check the copy.

    Raises `BackupError` when `source` is not an existing file, `destination` exists and
    `overwrite` is False, both name the same file, or the copy fails its checks.
    """
    if not source.is_file():
        raise BackupError(f"The database file {source} was not found.")
    if destination.exists():
        if _same_file(source, destination):
            raise BackupError("The backup path is the database file itself; choose another path.")
        if not overwrite:
            raise BackupError(
                f"{destination} already exists. Choose a new path, or pass --overwrite."
            )
        for suffix in ("-wal", "-shm", "-journal"):
            if destination.with_name(destination.name + suffix).exists():
                raise BackupError(
                    f"{destination} is a database that is open or was not closed cleanly (it "
                    f"has a {suffix} file beside it), so it is not overwritten. Choose "
                    "another path."
                )
    destination.parent.mkdir(parents=True, exist_ok=True)

    partial = _partial_path(destination)
    try:
        _create_private_file(partial)
        with _connect(source, read_only=False) as src, _connect(partial) as dst:
            src.backup(dst)
            # The copy inherits WAL mode from the live file; DELETE makes it one self-contained
            # file that can be moved and opened read-only.
            dst.execute("PRAGMA journal_mode=DELETE")
        report = verify_backup(partial)
        _fsync(partial)
        os.replace(partial, destination)
        _fsync_directory(destination.parent)
    except sqlite3.Error as error:
        raise BackupError(f"The backup failed: {_sqlite_reason(error)}.") from error
    except OSError as error:
        raise BackupError(
            f"The backup could not be written to {destination}: {error.strerror or error}."
        ) from error
    finally:
        partial.unlink(missing_ok=True)

    final = BackupReport(destination, report.size_bytes, report.sha256, report.revision)
    log.info(
        "database_backed_up",
        source=str(source),
        destination=str(destination),
        size_bytes=final.size_bytes,
        sha256=final.sha256,
        revision=final.revision,
    )
    return final


def verify_backup(path: Path) -> BackupReport:
    """Check a backup file: SQLite integrity, foreign keys and a Pay2Slay migration revision.

    Opens the file read-only and changes nothing. Raises `BackupError` naming the problem.
    """
    return _check_database(path, read_only=True)


def _check_database(path: Path, *, read_only: bool) -> BackupReport:
    if not path.is_file():
        raise BackupError(f"The database file {path} was not found.")
    try:
        with _connect(path, read_only=read_only) as connection:
            problems = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                shown = "; ".join(problems[:5])
                raise BackupError(f"{path} failed the SQLite integrity check: {shown}.")
            dangling = connection.execute("PRAGMA foreign_key_check").fetchall()
            if dangling:
                tables = ", ".join(sorted({str(row[0]) for row in dangling}))
                raise BackupError(f"{path} has rows that reference missing rows in: {tables}.")
            revision = _read_revision(connection)
    except sqlite3.DatabaseError as error:
        reason = _sqlite_reason(error)
        raise BackupError(f"{path} is not a readable SQLite database: {reason}.") from error

    size, digest = _size_and_digest(path)
    return BackupReport(path, size, digest, revision)


def held_leases(target: Path, now: datetime) -> list[HeldLease]:
    """Return the leases of the database file `target` that a process may still hold at `now`.

    Listed: every lease whose file beside the database a running process has locked, and
    every lease row unexpired at `now` unless its lease file shows that the holder has ended.
    """
    if not target.is_file():
        return []
    with _lease_files_locked(target) as files:
        return _held_leases(target, now, files)


@dataclass(slots=True)
class _LeaseFiles:
    """The lease files of a database: those this process locked, and those others hold."""

    locked: dict[Path, LeaseFile]
    busy: list[Path]


@contextmanager
def _lease_files_locked(target: Path) -> Iterator[_LeaseFiles]:
    """Lock every lease file of `target` for the block, the settlement one created if missing.

    While the block runs, no process that uses these files can take their leases.
    """
    paths = {lease_file_path(target, SETTLEMENT_LOCK_NAME), *existing_lease_files(target)}
    files = _LeaseFiles(locked={}, busy=[])
    try:
        for path in sorted(paths):
            created = not path.exists()
            try:
                lease_file = LeaseFile.try_lock(path)
            except PermissionError as error:
                # The bot, running as another user, may hold this lock.
                raise BackupError(
                    f"The lease file {path} cannot be opened: {error.strerror or error}. Run "
                    "the command as the user the bot runs as, with write access to the "
                    "database's directory."
                ) from error
            except OSError:
                # No process can lock a file of the wrong kind, so the lease rows alone decide.
                continue
            if lease_file is None:
                files.busy.append(path)
                continue
            files.locked[path] = lease_file
            if created:
                _give_to_database_owner(path, target)
        yield files
    finally:
        for lease_file in files.locked.values():
            lease_file.close()


def _give_to_database_owner(path: Path, target: Path) -> None:
    """Give a lease file this command created to the owner of the database file.

    Run as root, the command would otherwise leave a file the bot's user cannot open, and the
    bot's leases would then fall back to their expiry.
    """
    if os.geteuid() != 0 or not target.exists():
        return
    owner = target.stat()
    os.chown(path, owner.st_uid, owner.st_gid)


def _held_leases(target: Path, now: datetime, files: _LeaseFiles) -> list[HeldLease]:
    rows = _unexpired_leases(target, now)
    rows_by_path = {lease_file_path(target, row.name): row for row in rows}
    held: list[HeldLease] = []
    for path in files.busy:
        row = rows_by_path.get(path)
        if row is None:
            # No unexpired row names this lease, so the message names its file.
            held.append(HeldLease(path.name, None, None))
        else:
            held.append(HeldLease(row.name, row.holder, row.expires_at))
    for path, row in rows_by_path.items():
        if path in files.busy:
            continue
        lease_file = files.locked.get(path)
        try:
            ended = lease_file is not None and row.holder in lease_file.recorded_holders()
        except OSError:
            ended = False
        if not ended:
            held.append(HeldLease(row.name, row.holder, row.expires_at))
    return held


def _unexpired_leases(target: Path, now: datetime) -> list[Lease]:
    # A short-lived synchronous engine, because a restore runs outside the event loop and
    # the stdlib driver needs no extra package. The model's column types read the times.
    engine = create_engine(f"sqlite:///{target}")
    try:
        # A database never migrated has no leases table, and so no lease to hold.
        if not inspect(engine).has_table(Lease.__tablename__):
            return []
        with Session(engine) as session:
            # Closing the session detaches the rows, which keep their loaded columns.
            return list(session.scalars(select(Lease).where(Lease.expires_at > now)))
    finally:
        engine.dispose()


def restore_sqlite(
    backup: Path, target: Path, *, now: datetime, keep_previous: bool = True
) -> RestoreReport:
    """Replace the contents of the database file `target` with a checked backup.

    Refuses with `BackupError` when the backup fails its checks, comes from a newer Pay2Slay
    (a migration revision this package does not have), a process may hold a lease of
    `target` (`held_leases`), or a lease file cannot be opened for lack of permission. With
    `keep_previous`, the current `target` is first backed up next to it as
    `<name>.before-restore-<UTC time>`. The restored database has no leases, and its payouts
    are paused with an audit entry (`RESTORE_PAUSE_REASON`).
    """
    report = verify_backup(backup)
    if report.revision is None:
        raise BackupError(f"{backup} is not a Pay2Slay database: it has no migration revision.")
    if not _is_known_revision(report.revision):
        raise BackupError(
            f"{backup} is at migration revision {report.revision}, which this version of "
            "Pay2Slay does not have. Install the version that wrote the backup, or a newer one."
        )
    if target.exists() and _same_file(backup, target):
        raise BackupError("The backup file is the database file itself; nothing to restore.")

    target.parent.mkdir(parents=True, exist_ok=True)
    # The lease files stay locked until the copy is done, so no process that uses them can
    # start a settlement in between.
    with _lease_files_locked(target) as files:
        leases = _held_leases(target, now, files) if target.is_file() else []
        if leases:
            held = ", ".join(lease.describe() for lease in leases)
            raise BackupError(
                f"The database is in use: these leases are held: {held}. Stop the bot, then "
                "restore. A lease that stays after the bot has stopped expires within 10 "
                "minutes."
            )

        # The backup is prepared in a copy first, so a failure before the last step leaves
        # the target as it was.
        # NOTE: a restore killed before its end leaves this hidden copy behind. The next
        # restore does not need it; delete `.<name>.partial-*` files by hand.
        staged = _partial_path(target)
        previous: Path | None = None
        try:
            _create_private_file(staged)
            with _connect(backup, read_only=True) as src, _connect(staged) as dst:
                src.backup(dst)
            _prepare_restored(staged, backup, now)

            if keep_previous and target.is_file():
                stamp = now.strftime("%Y%m%dT%H%M%SZ")
                previous = target.with_name(f"{target.name}.before-restore-{stamp}")
                backup_sqlite(target, previous)
            if target.exists():
                with _connect(staged, read_only=True) as src, _connect(target) as dst:
                    src.backup(dst)
            else:
                # A rename puts the whole file in place at once, so a restore killed midway
                # never leaves a partial database at a new path.
                _fsync(staged)
                os.replace(staged, target)
                _fsync_directory(target.parent)
            # The target may be in WAL mode, which a read-only connection cannot always open.
            restored = _check_database(target, read_only=False)
        except sqlite3.Error as error:
            raise BackupError(f"The restore failed: {_sqlite_reason(error)}.") from error
        except SQLAlchemyError as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise BackupError(f"The restore failed: {reason}.") from error
        except OSError as error:
            raise BackupError(
                f"The restore could not write next to {target}: {error.strerror or error}."
            ) from error
        finally:
            staged.unlink(missing_ok=True)

    log.info(
        "database_restored",
        backup=str(backup),
        target=str(target),
        revision=restored.revision,
        previous_copy=None if previous is None else str(previous),
    )
    return RestoreReport(report, target, previous)


@contextmanager
def _connect(
    path: Path, *, read_only: bool = False, create: bool = False
) -> Iterator[sqlite3.Connection]:
    # Neither mode=ro nor mode=rw creates a file, so a mistyped source path fails instead of
    # producing an empty database. Only a restore target may be created (mode=rwc).
    if read_only:
        mode = "ro"
    elif create:
        mode = "rwc"
    else:
        mode = "rw"
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    with closing(connection):
        yield connection


def _prepare_restored(path: Path, backup: Path, now: datetime) -> None:
    """Clear the leases of the restored copy at `path` and pause its payouts, with an audit entry.

    The backup's leases belonged to processes of its time, and none of them holds a lease now,
    as the restore checked. Payouts sent after the backup was taken are on chain but not in
    the restored ledger, so settling before an operator has compared the two could pay them
    again.
    """
    engine = create_engine(f"sqlite:///{path}")
    try:
        tables = set(inspect(engine).get_table_names())
        required = (Lease.__tablename__, FaucetFlag.__tablename__, AuditEntry.__tablename__)
        missing = [name for name in required if name not in tables]
        if missing:
            raise BackupError(
                f"{backup} is not a complete Pay2Slay database: it has no {', '.join(missing)} "
                "table. Restore a backup made with `pay2slay db backup`."
            )
        with Session(engine) as session, session.begin():
            session.execute(delete(Lease))
            for key, value in (
                (PAYOUTS_PAUSED, "true"),
                (PAYOUTS_PAUSED_REASON, RESTORE_PAUSE_REASON),
            ):
                session.merge(FaucetFlag(key=key, value=value, updated_at=now, updated_by=None))
            detail = {"changed": True, "reason": RESTORE_PAUSE_REASON}
            session.add(
                AuditEntry(
                    created_at=now,
                    actor_discord_id=None,
                    action="payouts_paused",
                    detail=json.dumps(detail, sort_keys=True),
                )
            )
    finally:
        engine.dispose()


def _read_revision(connection: sqlite3.Connection) -> str | None:
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if exists is None:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def _is_known_revision(revision: str) -> bool:
    scripts = ScriptDirectory.from_config(alembic_config())
    return any(script.revision == revision for script in scripts.walk_revisions())


def _partial_path(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.partial-{secrets.token_hex(4)}")


def _create_private_file(path: Path) -> None:
    # The database holds Discord IDs, wallet addresses and signed blocks, so the copy is
    # readable by its owner only, from the moment it exists.
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(descriptor)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False


def _size_and_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sqlite_reason(error: sqlite3.Error) -> str:
    # sqlite3 messages name the failure ("database is locked", "file is not a database")
    # and never contain row data.
    return str(error) or type(error).__name__
