"""How Epic links are stored and found: the active-link query plan and the 0003 migration."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from core.db import Database
from core.db.migrate import downgrade, upgrade_to_head
from core.services.epic_links import active_link
from tests.conftest import POSTGRES_URL


async def test_active_link_uses_partial_index(sqlite_database: Database) -> None:
    statements: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    for engine in sqlite_database.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with sqlite_database.read() as session:
            assert await active_link(session, 1) is None
    finally:
        for engine in sqlite_database.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", remember)

    (statement, parameters) = next(
        (sql, params) for sql, params in statements if "FROM epic_links" in sql
    )
    async with sqlite_database.engine.connect() as connection:
        plan = (
            await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "uq_epic_links_active_player" in details


async def _run_admin_statement(statement: str) -> None:
    admin = Database.from_url(POSTGRES_URL)
    try:
        async with admin.engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_location(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str | None]]:
    """A URL and schema of a database with no tables: a new SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'at-0002.db'}", None
        return

    # The shared schema fixture skips this test when PostgreSQL is unreachable.
    request.getfixturevalue("postgres_schema")
    schema = f"p2s_links_{secrets.token_hex(4)}"
    asyncio.run(_run_admin_statement(f'CREATE SCHEMA "{schema}"'))
    try:
        yield POSTGRES_URL, schema
    finally:
        asyncio.run(_run_admin_statement(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
async def database_at_0002(fresh_location: tuple[str, str | None]) -> AsyncIterator[Database]:
    """A database of its own, migrated to head and then downgraded to revision 0002."""
    url, schema = fresh_location
    db = Database.from_url(url, search_path=schema)
    try:
        await upgrade_to_head(db)
        await downgrade(db, "0002")
        yield db
    finally:
        await db.dispose()


async def test_migration_fills_last_ok_read_at(database_at_0002: Database) -> None:
    read_at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    async with database_at_0002.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO players (id, discord_id, created_at, frozen, payout_dms) "
                "VALUES (1, 400000000000000001, :at, false, true)"
            ),
            {"at": read_at},
        )
        for link_id, state in ((1, "ok"), (2, "private")):
            await connection.execute(
                text(
                    "INSERT INTO epic_links (id, player_id, epic_account_id, active, linked_at, "
                    "last_read_at, stats_state, lower_reading_count) "
                    "VALUES (:id, 1, :account, false, :at, :at, :state, 0)"
                ),
                {"id": link_id, "account": f"{link_id:032x}", "at": read_at, "state": state},
            )

    await upgrade_to_head(database_at_0002)

    async with database_at_0002.engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT id, last_ok_read_at IS NOT NULL, resumed_at IS NULL, "
                    "rebaseline_pending FROM epic_links ORDER BY id"
                )
            )
        ).all()
    assert [(row[0], bool(row[1]), bool(row[2]), bool(row[3])) for row in rows] == [
        (1, True, True, False),
        (2, False, True, False),
    ]
