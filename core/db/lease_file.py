"""A file lock beside a SQLite database that shows whether a lease holder is still alive.

On SQLite the `leases` row is the settlement lock, and a row whose holder was killed would
block every other process until it expires. So a process takes a lease only while it holds an
exclusive `flock` on a file next to the database, and keeps that lock as long as the lease.
It writes its holder id into the file before it takes the row. The kernel drops the
lock when the process ends, however it ends. So when a process gets the file lock, no id in
the file belongs to a live holder, and a row in the name of one of them can be taken at once
instead of waiting for its expiry.

`flock` must work across processes on the file's filesystem, as SQLite's own locking must. The
file is opened without following a symbolic link and must be a regular file. Where it cannot
be used, the lease falls back to its expiry.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

# Size of the file's record, padded with newlines. Every write covers the whole record, so a
# process killed mid-write never leaves parts of an older record behind.
RECORD_BYTES = 2048
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def lease_file_path(database_path: Path, lease_name: str) -> Path:
    """Return the lock file of lease `lease_name` for the SQLite file `database_path`.

    Symbolic links in `database_path` are resolved, so that every spelling of one database
    file names the same lease file.
    """
    if _PLAIN_NAME.fullmatch(lease_name):
        suffix = lease_name
    else:
        suffix = hashlib.sha256(lease_name.encode()).hexdigest()[:16]
    prefix = _lease_file_prefix(database_path)
    return prefix.with_name(prefix.name + suffix)


def existing_lease_files(database_path: Path) -> list[Path]:
    """Return the lease files that exist for the SQLite file `database_path`."""
    prefix = _lease_file_prefix(database_path)
    return sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}*"))


def _lease_file_prefix(database_path: Path) -> Path:
    resolved = Path(os.path.realpath(database_path))
    return resolved.with_name(f"{resolved.name}-lease-")


class LeaseFile:
    """An open lease file whose exclusive lock this process holds until `close`."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    @classmethod
    def try_lock(cls, path: Path) -> LeaseFile | None:
        """Open `path` and lock it without waiting. None when another process holds the lock.

        Raises `OSError` when the file cannot be opened or locked for another reason, when
        `path` is a symbolic link, or when it is not a regular file.
        """
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        descriptor = os.open(path, flags, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise OSError(f"{path} is not a regular file")
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return cls(descriptor)

    def recorded_holders(self) -> frozenset[str]:
        """Return the holder ids in the file. While this lock is held, none of them is live."""
        content = os.pread(self._open_descriptor(), RECORD_BYTES, 0)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return frozenset()
        return frozenset(line.strip() for line in text.splitlines() if line.strip())

    def record(self, holders: Iterable[str]) -> None:
        """Replace the file's holder ids with `holders`.

        Raises `ValueError` when they do not fit in `RECORD_BYTES` or one contains a line
        break.
        """
        ids = list(holders)
        if any("\n" in holder or "\r" in holder for holder in ids):
            raise ValueError("a lease holder id must not contain a line break")
        content = "".join(f"{holder}\n" for holder in ids).encode()
        if len(content) > RECORD_BYTES:
            raise ValueError(f"the lease holder ids exceed {RECORD_BYTES} bytes")
        os.pwrite(self._open_descriptor(), content.ljust(RECORD_BYTES, b"\n"), 0)

    def close(self) -> None:
        """Close the file, which releases the lock. Closing again does nothing."""
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            os.close(descriptor)

    def _open_descriptor(self) -> int:
        if self._descriptor is None:
            raise ValueError("the lease file is closed")
        return self._descriptor
