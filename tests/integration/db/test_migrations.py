"""Migrations build the schema the models describe, on SQLite and on PostgreSQL, and go back."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, inspect, text

from core.db import Database
from core.db.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    is_at_head,
    upgrade_to_head,
)
from core.db.models import Base
from tests.conftest import POSTGRES_URL
from tests.integration.db.helpers_rows import NOW


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_location(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str | None]]:
    """A URL and schema with no tables at all: a new SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'fresh.db'}", None
        return

    # The shared schema fixture skips this test when PostgreSQL is unreachable.
    request.getfixturevalue("postgres_schema")
    schema = f"p2s_migration_{secrets.token_hex(4)}"
    asyncio.run(run_admin_statement(f'CREATE SCHEMA "{schema}"'))
    try:
        yield POSTGRES_URL, schema
    finally:
        asyncio.run(run_admin_statement(f'DROP SCHEMA "{schema}" CASCADE'))


async def run_admin_statement(statement: str) -> None:
    admin = Database.from_url(POSTGRES_URL)
    try:
        async with admin.engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture
async def empty_database(
    empty_database_location: tuple[str, str | None],
) -> AsyncIterator[Database]:
    """A database with no tables at all, on SQLite and on PostgreSQL."""
    url, schema = empty_database_location
    db = Database.from_url(url, search_path=schema)
    try:
        yield db
    finally:
        await db.dispose()


async def inspect_schema(db: Database, reader: Callable[[Connection], Any]) -> Any:
    async with db.engine.connect() as connection:
        return await connection.run_sync(reader)


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_creates_models_schema(empty_database: Database) -> None:
    assert await current_revision(empty_database) is None
    assert not await is_at_head(empty_database)

    await upgrade_to_head(empty_database)

    assert await current_revision(empty_database) == head_revision()
    assert await is_at_head(empty_database)
    assert await inspect_schema(empty_database, schema_differences) == []


async def test_downgrade_to_base_and_up_again(empty_database: Database) -> None:
    await upgrade_to_head(empty_database)

    await downgrade(empty_database, "base")
    assert await current_revision(empty_database) is None
    assert await inspect_schema(empty_database, table_names) == {"alembic_version"}

    await upgrade_to_head(empty_database)
    assert await is_at_head(empty_database)
    assert await inspect_schema(empty_database, schema_differences) == []


async def test_upgrade_twice_is_noop(empty_database: Database) -> None:
    await upgrade_to_head(empty_database)
    await upgrade_to_head(empty_database)

    assert await is_at_head(empty_database)


def check_constraints(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table.name: {str(check["name"]) for check in inspector.get_check_constraints(table.name)}
        for table in Base.metadata.sorted_tables
    }


async def test_check_constraints_match_models(empty_database: Database) -> None:
    expected = {
        table.name: {
            str(constraint.name)
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        for table in Base.metadata.sorted_tables
    }
    await upgrade_to_head(empty_database)

    assert await inspect_schema(empty_database, check_constraints) == expected
    assert expected["accruals"] == {
        "ck_accruals_accrual_status",
        "ck_accruals_kills_non_negative",
        "ck_accruals_raw_per_kill_valid",
        "ck_accruals_amount_raw_valid",
    }


def foreign_keys(connection: Connection) -> set[tuple[Any, ...]]:
    inspector = inspect(connection)
    return {
        (
            table.name,
            key["name"],
            tuple(key["constrained_columns"]),
            key["referred_table"],
            tuple(key["referred_columns"]),
            key["options"].get("ondelete"),
        )
        for table in Base.metadata.sorted_tables
        for key in inspector.get_foreign_keys(table.name)
    }


async def test_foreign_keys_match_models(empty_database: Database) -> None:
    expected = {
        (
            table.name,
            str(constraint.name),
            tuple(constraint.column_keys),
            constraint.referred_table.name,
            tuple(element.column.name for element in constraint.elements),
            constraint.ondelete,
        )
        for table in Base.metadata.sorted_tables
        for constraint in table.foreign_key_constraints
    }
    await upgrade_to_head(empty_database)

    assert await inspect_schema(empty_database, foreign_keys) == expected


def active_link_index(connection: Connection) -> dict[str, Any]:
    indexes = inspect(connection).get_indexes("epic_links")
    (index,) = (entry for entry in indexes if entry["name"] == "uq_epic_links_active_player")
    return dict(index)


async def test_active_link_index_is_partial(empty_database: Database) -> None:
    await upgrade_to_head(empty_database)

    index = await inspect_schema(empty_database, active_link_index)

    assert index["unique"]
    assert index["column_names"] == ["player_id"]
    options = index["dialect_options"]
    where = options.get("sqlite_where", options.get("postgresql_where"))
    assert str(where) == "active"


async def test_upgrade_accepts_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'by-url.db'}"

    await upgrade_to_head(url)

    db = Database.from_url(url)
    try:
        assert await is_at_head(db)
    finally:
        await db.dispose()


def test_migrations_need_no_ini_file() -> None:
    assert not list(MIGRATIONS_DIR.parent.glob("alembic.ini"))
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert head_revision() == "0004"


def test_offline_sql_for_postgresql() -> None:
    config = alembic_config("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    output = io.StringIO()
    config.output_buffer = output

    command.upgrade(config, "head", sql=True)

    sql = output.getvalue()
    assert "CREATE TABLE accruals" in sql
    assert "amount_raw NUMERIC(39, 0) NOT NULL" in sql
    assert (
        "CREATE UNIQUE INDEX uq_epic_links_active_player ON epic_links (player_id) WHERE active"
        in sql
    )


def test_alembic_check_with_own_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'checked.db'}"
    asyncio.run(upgrade_to_head(url))

    # `alembic check` opens its own connection from the URL and fails on any difference.
    command.check(alembic_config(url))


async def test_upgrade_upper_cases_stored_block_hashes(empty_database: Database) -> None:
    await upgrade_to_head(empty_database)
    await downgrade(empty_database, "0003")
    lower = "ef" * 32
    # Plain SQL, because the application's types would already convert the hash.
    amount: object = 10**29 if empty_database.dialect_name == "postgresql" else f"{10**29:039d}"
    async with empty_database.write() as session:
        await session.execute(
            text(
                "INSERT INTO players (id, discord_id, created_at, frozen, payout_dms) "
                "VALUES (1, 77, :now, false, true)"
            ),
            {"now": NOW},
        )
        await session.execute(
            text(
                "INSERT INTO payouts (player_id, destination, amount_raw, kills, state, dry_run, "
                "idempotency_key, block_hash, attempts, created_at, updated_at) "
                "VALUES (1, :destination, :amount, 1, 'pending', false, 'k1', :hash, 0, :now, :now)"
            ),
            {
                "destination": "ban_" + "1" * 60,
                "amount": amount,
                "hash": lower,
                "now": NOW,
            },
        )

        await session.execute(
            text(
                "INSERT INTO payouts (player_id, destination, amount_raw, kills, state, dry_run, "
                "idempotency_key, block_hash, attempts, created_at, updated_at) "
                "VALUES (1, :destination, :amount, 1, 'dry_run', true, 'k2', :hash, 0, :now, :now)"
            ),
            {
                "destination": "ban_" + "1" * 60,
                "amount": amount,
                "hash": "dryrun-ab12",
                "now": NOW,
            },
        )

    result = await upgrade_to_head(empty_database)

    assert result.before == "0003"
    assert result.after == head_revision()
    async with empty_database.read() as session:
        stored = (
            await session.scalars(text("SELECT block_hash FROM payouts ORDER BY idempotency_key"))
        ).all()
    assert stored == [lower.upper(), "dryrun-ab12"]
