"""A file lock beside a SQLite database that shows whether a lease holder is still alive.

On SQLite the `leases` row is the settlement lock, and a row whose holder was killed blocks
every other process until it expires. A holder that takes the lease also takes an exclusive
`flock` on a file next to the database and writes its holder id into it. The kernel drops
the lock when the process ends, however it ends. Another process that gets the file lock and
finds the row's holder id in the file has proof that this holder has ended, so it takes the
lease at once instead of waiting for its expiry.

`flock` needs the file on a filesystem that supports it across processes, as SQLite's own
locking does. On one where it does not, the lease falls back to its expiry.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path

# Maximum bytes of a recorded holder id read back. Holder ids are at most 128 characters.
_MAX_RECORD_BYTES = 512
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def lease_file_path(database_path: Path, lease_name: str) -> Path:
    """Return the lock file of lease `lease_name` for the SQLite file `database_path`."""
    if _PLAIN_NAME.fullmatch(lease_name):
        suffix = lease_name
    else:
        suffix = hashlib.sha256(lease_name.encode()).hexdigest()[:16]
    return database_path.with_name(f"{database_path.name}-lease-{suffix}")


class LeaseFile:
    """An open lease file whose exclusive lock this process holds until `close`."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    @classmethod
    def try_lock(cls, path: Path) -> LeaseFile | None:
        """Open `path` and lock it without waiting. None when another process holds the lock.

        Raises `OSError` when the file cannot be opened or locked for another reason.
        """
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return cls(descriptor)

    def recorded_holder(self) -> str | None:
        """Return the holder id the last lock holder wrote, or None if there is none."""
        content = os.pread(self._open_descriptor(), _MAX_RECORD_BYTES, 0)
        try:
            holder = content.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
        return holder or None

    def record(self, holder: str) -> None:
        """Write `holder` as the id of the process that holds the lock."""
        descriptor = self._open_descriptor()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{holder}\n".encode(), 0)

    def close(self) -> None:
        """Close the file, which releases the lock. Closing again does nothing."""
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            os.close(descriptor)

    def _open_descriptor(self) -> int:
        if self._descriptor is None:
            raise ValueError("the lease file is closed")
        return self._descriptor
