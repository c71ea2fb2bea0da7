"""The in-process SQLite write lock against other processes, cancellation and other loops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db import Database
from core.db import session as session_module

HOLD_SECONDS = 1.0

_HOLD_LOCK_SCRIPT = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("CREATE TABLE IF NOT EXISTS other_process (x INTEGER)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def hold_write_lock_in_other_process(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Start a process that holds the file's write lock for `seconds`, once it prints."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK_SCRIPT, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


async def count_rows(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def insert(db: Database, value: int) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})


async def make_table(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (x INTEGER)"))


async def test_other_process_writer_waits_on_busy_timeout(tmp_path: Path) -> None:
    """Another process holds the write lock; this process's writers wait and then commit."""
    path = tmp_path / "two.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await make_table(db)
        child = hold_write_lock_in_other_process(path, HOLD_SECONDS)

        await asyncio.wait_for(asyncio.gather(*(insert(db, i) for i in range(5))), 20)
        child.wait(10)
        # Without the busy timeout each writer would have failed with "database is locked".
        assert await count_rows(db) == 5
    finally:
        await db.dispose()


async def test_cancelled_waiter_frees_the_queue(tmp_path: Path) -> None:
    """A writer cancelled while it waits for the lock does not block the writers after it."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'cancel.db'}")
    try:
        await make_table(db)
        inside = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
                inside.set()
                await release.wait()

        first = asyncio.create_task(holder())
        await inside.wait()
        cancelled = asyncio.create_task(insert(db, 2))
        later = asyncio.create_task(insert(db, 3))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, later), 5)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await count_rows(db) == 2
    finally:
        await db.dispose()


async def test_cancel_during_busy_wait_leaves_no_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer cancelled while its BEGIN waits for another process's lock.

    Its `BEGIN IMMEDIATE` goes on in aiosqlite's thread and takes the lock once the other
    process commits. If the connection is then lost with the transaction open, every later
    writer of either process waits out the busy timeout and fails with "database is locked".
    """
    monkeypatch.setattr(session_module, "SQLITE_BUSY_TIMEOUT_MS", 4_000)
    path = tmp_path / "cancel-busy.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await make_table(db)
        child = hold_write_lock_in_other_process(path, HOLD_SECONDS)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(insert(db, 1), HOLD_SECONDS / 2)
        child.wait(10)
        await asyncio.sleep(0.2)
        await asyncio.wait_for(insert(db, 2), 10)
        assert await count_rows(db) == 1
        # Another process can write too.
        other = hold_write_lock_in_other_process(path, 0)
        assert other.wait(10) == 0
    finally:
        await db.dispose()


# A read that keeps SQLite busy for a few tenths of a second: it counts to two million.
_SLOW_STATEMENT = (
    "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter "
    "WHERE n < 2000000) SELECT count(*) FROM counter"
)


async def test_cancel_during_statement_leaves_no_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer cancelled while a statement of its transaction runs in aiosqlite's thread.

    SQLAlchemy hard-closes its connection. Before the connection rolled back on close, its
    unfinished cursor kept it open, with the transaction and the write lock, until garbage
    collection, so later writers of either process failed with "database is locked".
    """
    monkeypatch.setattr(session_module, "SQLITE_BUSY_TIMEOUT_MS", 10_000)
    path = tmp_path / "cancel-statement.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await make_table(db)

        async def insert_then_read_slowly() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
                await session.execute(text(_SLOW_STATEMENT))

        task = asyncio.create_task(insert_then_read_slowly())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        await insert(db, 2)
        rows = await read_values(db)
        assert rows == [2], "the cancelled transaction must roll back"
        other = hold_write_lock_in_other_process(path, 0)
        assert other.wait(15) == 0
    finally:
        await db.dispose()


async def read_values(db: Database) -> list[int]:
    async with db.read() as session:
        return [int(x) for x in (await session.execute(text("SELECT x FROM t"))).scalars()]


def test_two_threads_with_their_own_loops(tmp_path: Path) -> None:
    """One Database used by two threads, each running its own event loop, at the same time.

    The lock slot is shared, so each thread's loop replaces the other's lock. Writers must
    still all commit, without a hang or a "bound to a different event loop" error.
    """
    path = tmp_path / "threads.db"
    db = Database.from_url(f"sqlite:///{path}")
    asyncio.run(make_table(db))
    errors: list[BaseException] = []
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    async def writers(base: int) -> None:
        async def insert_and_yield(value: int) -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
                await asyncio.sleep(0)

        await asyncio.wait_for(asyncio.gather(*(insert_and_yield(base + i) for i in range(40))), 60)

    def run(base: int) -> None:
        try:
            asyncio.run(writers(base))
        except BaseException as error:
            errors.append(error)

    try:
        threads = [threading.Thread(target=run, args=(n * 1000,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not any(thread.is_alive() for thread in threads), "a writer thread hung"
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    assert asyncio.run(count_rows(db)) == 80
    asyncio.run(db.dispose())


async def test_nested_write_raises(tmp_path: Path) -> None:
    """A `write()` opened inside another `write()` of the same task raises at once.

    The inner one would otherwise wait on the lock that the outer one holds, for good.
    """
    db = Database.from_url(f"sqlite:///{tmp_path / 'nested.db'}")
    try:
        await make_table(db)

        async def nested() -> None:
            async with db.write() as outer:
                await outer.execute(text("INSERT INTO t VALUES (1)"))
                async with db.write() as inner:
                    await inner.execute(text("INSERT INTO t VALUES (2)"))

        with pytest.raises(RuntimeError, match="already open in this task"):
            await asyncio.wait_for(nested(), 10)
        assert await count_rows(db) == 0
        # The lock was released with the outer transaction, so the next write goes through.
        async with db.write() as session:
            await session.execute(text("INSERT INTO t VALUES (3)"))
        assert await count_rows(db) == 1
    finally:
        await db.dispose()
