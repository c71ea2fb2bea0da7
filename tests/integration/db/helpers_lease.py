"""SQLite lease helpers: a process that holds a lease until it is killed, and no lease file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.db import Database
from core.db.lease_file import lease_file_path

REPO_ROOT = Path(__file__).resolve().parents[3]

# Takes the lease with a real clock, reports it and then waits to be killed.
_HOLDER_SCRIPT = """
import asyncio, sys, time
from datetime import timedelta
from core.db import Database
from core.db.locking import SettlementLock

async def take() -> None:
    db = Database.from_url(f"sqlite:///{sys.argv[1]}")
    acquired = await SettlementLock(db).try_acquire(sys.argv[3], sys.argv[2], timedelta(hours=1))
    print("held" if acquired else "busy", flush=True)

asyncio.run(take())
time.sleep(120)
"""


@contextmanager
def holder_process(
    path: Path, holder: str, name: str = "settlement"
) -> Iterator[subprocess.Popen[str]]:
    """Run a process that holds lease `name` of the SQLite file `path` until it is killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_SCRIPT, str(path), holder, name],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert child.stdout is not None
        # Log lines come first on the same output.
        answer = ""
        for line in child.stdout:
            answer = line.strip()
            if answer in ("held", "busy"):
                break
        assert answer == "held"
        yield child
    finally:
        child.kill()
        child.wait(30)


def without_lease_file(db: Database, name: str) -> None:
    """Put a directory where lease `name`'s file goes, so the lease relies on its expiry alone.

    With a usable lease file no other process takes a live holder's lease, even after its
    expiry, as on PostgreSQL. Tests of a lease that lapses, or of a holder that crashed
    without the file, run this way.
    """
    assert db.engine.url.database is not None
    lease_file_path(Path(db.engine.url.database), name).mkdir()
