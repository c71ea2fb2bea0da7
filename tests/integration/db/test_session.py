"""Transactions from `Database`: SQLite pragmas, BEGIN IMMEDIATE for writers, read-only reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from core.db import Database
from core.db.models import FaucetFlag, RegionCount
from core.db.session import DatabaseUrlError, read_only_sqlite_engine
from tests.integration.db.helpers_rows import NOW

DAY = date(2026, 1, 5)
WRITERS = 20
TRANSACTIONS_PER_WRITER = 5


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for engine in db.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in db.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_sqlite_pragmas(sqlite_database: Database) -> None:
    pragmas = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")

    async with sqlite_database.write() as session:
        written = [(await session.execute(text(f"PRAGMA {name}"))).scalar() for name in pragmas]
    async with sqlite_database.read() as session:
        read = [(await session.execute(text(f"PRAGMA {name}"))).scalar() for name in pragmas]

    # synchronous=NORMAL is 1.
    assert written == ["wal", 1, 30000, 1]
    assert read == written


async def test_sqlite_read_connections_are_query_only(sqlite_database: Database) -> None:
    async with sqlite_database.read() as session:
        read = (await session.execute(text("PRAGMA query_only"))).scalar()
    async with sqlite_database.write() as session:
        written = (await session.execute(text("PRAGMA query_only"))).scalar()

    assert read == 1
    assert written == 0


async def test_sqlite_file_reads_never_switch_query_only(sqlite_database: Database) -> None:
    with recorded_statements(sqlite_database) as statements:
        for value in ("true", "false", "true"):
            async with sqlite_database.write() as session:
                await session.merge(FaucetFlag(key="payouts_paused", value=value, updated_at=NOW))
            async with sqlite_database.read() as session:
                seen = await session.scalar(select(FaucetFlag.value))
            assert seen == value

    assert len(sqlite_database.engines) == 2
    assert [statement for statement in statements if statement.startswith("PRAGMA")] == []


async def test_sqlite_in_memory_reads_and_writes_share_connection() -> None:
    db = Database.from_url("sqlite:///:memory:")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
            await session.execute(text("INSERT INTO probe (id) VALUES (1)"))
        with pytest.raises(DBAPIError, match="readonly"):
            async with db.read() as session:
                await session.execute(text("INSERT INTO probe (id) VALUES (2)"))
        async with db.write() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (3)"))
        async with db.read() as session:
            ids = (await session.execute(text("SELECT id FROM probe ORDER BY id"))).scalars()
            assert list(ids) == [1, 3]
    finally:
        await db.dispose()

    assert len(db.engines) == 1


async def test_read_engine_must_open_same_file(tmp_path: Path) -> None:
    main = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'main.db'}")
    other = read_only_sqlite_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with pytest.raises(ValueError, match="same database file"):
            Database(main, read_engine=other)
        with pytest.raises(ValueError, match="same database file"):
            Database(main, read_engine=main)
    finally:
        await main.dispose()
        await other.dispose()


def test_read_only_engine_needs_file() -> None:
    with pytest.raises(DatabaseUrlError, match="needs a database file"):
        read_only_sqlite_engine("sqlite:///:memory:")


async def test_dispose_closes_read_pool(sqlite_database: Database) -> None:
    async with sqlite_database.read() as session:
        await session.execute(select(1))
    read_pool = sqlite_database.engines[1].sync_engine.pool
    assert isinstance(read_pool, QueuePool)
    assert read_pool.checkedin() == 1

    await sqlite_database.dispose()

    assert read_pool.checkedin() == 0


async def test_sqlite_transactions_roll_back_once(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollbacks: list[str] = []
    original_rollback = aiosqlite.Connection.rollback

    async def counted_rollback(connection: aiosqlite.Connection) -> None:
        rollbacks.append("rollback")
        await original_rollback(connection)

    # Use both engines first, because SQLAlchemy rolls back once after an engine's first connect.
    async with sqlite_database.write() as session:
        await session.execute(select(1))
    async with sqlite_database.read() as session:
        await session.execute(select(1))
    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted_rollback)

    async with sqlite_database.write() as session:
        await session.merge(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))
    assert rollbacks == []

    async with sqlite_database.read() as session:
        await session.execute(select(1))
    assert rollbacks == ["rollback"]


async def test_sqlite_pool_rolls_back_open_transaction(sqlite_database: Database) -> None:
    connection = await sqlite_database.engine.connect()
    raw = await connection.get_raw_connection()
    driver_connection = raw.driver_connection
    assert isinstance(driver_connection, aiosqlite.Connection)
    await driver_connection.execute("BEGIN IMMEDIATE")
    await driver_connection.execute(
        "INSERT INTO faucet_flags (key, value, updated_at) VALUES ('payouts_paused', 'true', '')"
    )
    assert driver_connection.in_transaction

    await connection.close()

    assert not driver_connection.in_transaction
    async with sqlite_database.read() as session:
        assert await session.get(FaucetFlag, "payouts_paused") is None
    async with sqlite_database.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="false", updated_at=NOW))


async def test_sqlite_begin_statements(sqlite_database: Database) -> None:
    with recorded_statements(sqlite_database) as statements:
        async with sqlite_database.write() as session:
            await session.execute(select(1))
        async with sqlite_database.sessionmaker() as session, session.begin():
            await session.execute(select(1))
        async with sqlite_database.read() as session:
            await session.execute(select(1))

    begins = [statement for statement in statements if statement.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE", "BEGIN DEFERRED"]


async def test_write_commits(database: Database) -> None:
    async with database.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))

    async with database.read() as session:
        flag = await session.get(FaucetFlag, "payouts_paused")

    assert flag is not None
    assert flag.value == "true"


async def add_flag_then_fail(db: Database) -> None:
    async with db.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))
        await session.flush()
        raise RuntimeError("stop")


async def add_flag_in_read(db: Database) -> None:
    async with db.read() as session:
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))
        await session.flush()


async def test_write_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError, match="stop"):
        await add_flag_then_fail(database)

    async with database.read() as session:
        assert await session.get(FaucetFlag, "payouts_paused") is None


async def test_read_rejects_writes(database: Database) -> None:
    with pytest.raises(DBAPIError):
        await add_flag_in_read(database)

    async with database.read() as session:
        assert await session.get(FaucetFlag, "payouts_paused") is None
    # The read-only setting must not stick to the pooled connection.
    async with database.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))


async def test_read_objects_usable_after_block(database: Database) -> None:
    async with database.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="true", updated_at=NOW))

    async with database.read() as session:
        flag = await session.get(FaucetFlag, "payouts_paused")

    assert flag is not None
    assert flag.updated_at == NOW


async def test_reader_not_blocked_by_open_writer(database: Database) -> None:
    async with database.write() as session:
        session.add(FaucetFlag(key="payouts_paused", value="false", updated_at=NOW))

    async with database.write() as writer:
        await writer.execute(
            update(FaucetFlag).where(FaucetFlag.key == "payouts_paused").values(value="true")
        )
        async with database.read() as reader:
            seen = await reader.scalar(
                select(FaucetFlag.value).where(FaucetFlag.key == "payouts_paused")
            )
        assert seen == "false"

    async with database.read() as reader:
        assert await reader.scalar(select(FaucetFlag.value)) == "true"


async def increment_counter(url: str, use_sessionmaker: bool) -> None:
    db = Database.from_url(url)
    try:
        for _ in range(TRANSACTIONS_PER_WRITER):
            if use_sessionmaker:
                async with db.sessionmaker() as session, session.begin():
                    await read_modify_write(session)
            else:
                async with db.write() as session:
                    await read_modify_write(session)
    finally:
        await db.dispose()


async def read_modify_write(session: Any) -> None:
    row = await session.get(RegionCount, (DAY, "DE"))
    # Hand the event loop to the other writers between the read and the write.
    await asyncio.sleep(0)
    row.count = row.count + 1


async def test_sqlite_concurrent_writers_all_succeed(sqlite_database: Database) -> None:
    async with sqlite_database.write() as session:
        session.add(RegionCount(day=DAY, country="DE", count=0))
    url = sqlite_database.engine.url.render_as_string(hide_password=False)

    results = await asyncio.gather(
        *(increment_counter(url, use_sessionmaker=index % 2 == 1) for index in range(WRITERS)),
        return_exceptions=True,
    )

    assert [result for result in results if result is not None] == []
    async with sqlite_database.read() as session:
        row = await session.get(RegionCount, (DAY, "DE"))
    assert row is not None
    assert row.count == WRITERS * TRANSACTIONS_PER_WRITER


async def test_from_url_creates_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "pay2slay.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
    finally:
        await db.dispose()

    assert path.is_file()
    assert db.dialect_name == "sqlite"


def test_dialect_names(database: Database) -> None:
    assert database.dialect_name in {"sqlite", "postgresql"}
    assert database.engine.dialect.name == database.dialect_name


async def test_second_wrapper_shares_engine(sqlite_database: Database) -> None:
    wrapper = Database(sqlite_database.engine)

    with recorded_statements(wrapper) as statements:
        async with wrapper.write() as session:
            await session.execute(select(1))

    assert [statement for statement in statements if statement.startswith("BEGIN")] == [
        "BEGIN IMMEDIATE"
    ]


async def test_sqlite_writers_queue_in_process(sqlite_database: Database) -> None:
    # A writer that finds the file locked would sleep in SQLite's busy handler. In one
    # process the second writer waits on a lock instead and starts right after the commit.
    events: list[str] = []
    first_inside = asyncio.Event()

    async def first() -> None:
        async with sqlite_database.write() as session:
            await session.execute(text("SELECT 1"))
            events.append("first began")
            first_inside.set()
            await asyncio.sleep(0.05)
            events.append("first ending")
        events.append("first committed")

    async def second() -> None:
        await first_inside.wait()
        async with sqlite_database.write() as session:
            events.append("second began")
            await session.execute(text("SELECT 1"))

    with recorded_statements(sqlite_database) as statements:
        await asyncio.gather(first(), second())

    assert events == ["first began", "first ending", "first committed", "second began"]
    assert statements.count("BEGIN IMMEDIATE") == 2


def test_sqlite_write_lock_follows_event_loop(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}")

    async def two_writers() -> None:
        async def write() -> None:
            async with db.write() as session:
                await session.execute(text("SELECT 1"))
                await asyncio.sleep(0.01)

        await asyncio.gather(write(), write())

    # Each run has its own event loop, so the lock made for the first must not be reused.
    asyncio.run(two_writers())
    asyncio.run(two_writers())
    asyncio.run(db.dispose())
