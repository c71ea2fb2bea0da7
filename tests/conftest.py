"""Shared fixtures: migrated, empty databases on SQLite and on PostgreSQL.

`database` runs a test once on SQLite and once on PostgreSQL; `sqlite_database` and
`postgres_database` give one of them. Each test gets an empty database at the newest
migration:

- SQLite: the migrations run once per session into a template file, which is copied into
  the test's `tmp_path`.
- PostgreSQL: the migrations run once per session into a schema of its own (named with the
  process id, so parallel runs do not collide). Before each test every row is deleted and
  every id sequence restarts at 1, as in a fresh database. The schema is dropped at the end
  of the session.

PostgreSQL is expected at 127.0.0.1:5432, database `test`; set `PAY2SLAY_TEST_POSTGRES_URL`
to use another URL on this machine. When the server cannot be reached, PostgreSQL tests are
skipped with the connection error as the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from core.db import Database
from core.db.migrate import upgrade_to_head
from core.db.models import Base
from tests.environment import POSTGRES_URL, renamed_variable_errors


def pytest_configure(config: pytest.Config) -> None:
    """Stop the run when a test variable is set under its earlier name, which nothing reads."""
    errors = renamed_variable_errors(os.environ)
    if errors:
        raise pytest.UsageError("; ".join(errors))


def _empty_all_tables_statement() -> str:
    """Build one PL/pgSQL block that deletes every row and restarts every id sequence.

    DELETE is used because TRUNCATE rewrites each table's files and syncs them at commit,
    which costs about a quarter of a second per test for this schema.
    """
    # Table and column names come from the models, never from input.
    steps: list[str] = []
    tables = Base.metadata.sorted_tables
    for table in tables:
        for key in table.foreign_keys:
            if key.column.table is table:
                # A self-reference (a split accrual's parent) must go before its rows can.
                column = key.parent.name
                steps.append(
                    f"UPDATE {table.name} SET {column} = NULL WHERE {column} IS NOT NULL;"  # noqa: S608
                )
    steps.extend(f"DELETE FROM {table.name};" for table in reversed(tables))  # noqa: S608
    for table in tables:
        serial = table.autoincrement_column
        if serial is not None:
            sequence = f"pg_get_serial_sequence('{table.name}', '{serial.name}')"
            steps.append(f"PERFORM setval({sequence}, 1, false);")
    return "DO $$ BEGIN " + " ".join(steps) + " END $$"


_EMPTY_ALL_TABLES = _empty_all_tables_statement()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session. Tests copy it and never open it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"

    async def migrate() -> None:
        db = Database.from_url(f"sqlite:///{path}")
        try:
            await upgrade_to_head(db)
        finally:
            # Closing the last connection checkpoints the WAL into the main file.
            await db.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def sqlite_database(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """An empty SQLite database at head, in a file of its own under `tmp_path`."""
    path = tmp_path / "pay2slay.db"
    shutil.copyfile(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    try:
        yield db
    finally:
        await db.dispose()


def postgres_unreachable_reason() -> str | None:
    """Return why the test PostgreSQL server cannot be used, or None when it can."""

    async def probe() -> None:
        db = Database.from_url(POSTGRES_URL)
        try:
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await db.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout=10))
    except Exception as error:
        shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        return f"PostgreSQL at {shown} is not reachable: {type(error).__name__}: {error}"
    return None


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema migrated to head once per session, dropped when the session ends."""
    reason = postgres_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)

    schema = f"p2s_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def create() -> None:
        admin = Database.from_url(POSTGRES_URL)
        try:
            async with admin.engine.begin() as connection:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            await admin.dispose()
        db = Database.from_url(POSTGRES_URL, search_path=schema)
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()

    async def drop() -> None:
        admin = Database.from_url(POSTGRES_URL)
        try:
            async with admin.engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await admin.dispose()

    asyncio.run(create())
    try:
        yield schema
    finally:
        asyncio.run(drop())


@pytest.fixture
async def postgres_database(postgres_schema: str) -> AsyncIterator[Database]:
    """An empty PostgreSQL database at head: the session schema with every row deleted."""
    db = Database.from_url(POSTGRES_URL, search_path=postgres_schema)
    try:
        async with db.engine.begin() as connection:
            # Fail fast instead of waiting forever behind a connection a test leaked.
            await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            await connection.execute(text(_EMPTY_ALL_TABLES))
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Database:
    """An empty database at head. The test runs once on SQLite and once on PostgreSQL."""
    fixture_name = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    db: Database = request.getfixturevalue(fixture_name)
    return db
