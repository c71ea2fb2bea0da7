"""Benchmark data sets: bulk loads into SQLite or PostgreSQL, and a cache of SQLite files.

Rows come from `dataset_rows.RowGenerator`, a batch of players at a time, and are loaded with
`executemany` on a plain sqlite3 connection, or with COPY on PostgreSQL. Every value goes
through the bind processor of its model column first, so the stored text (zero-padded raw
amounts, timestamps) is exactly what the ORM writes.

A generated SQLite file is cached under tests/benchmarks/results/ by size, generator version
and migration head; benchmarks work on a copy. PostgreSQL data sets go into a schema of
their own in the `test` database at 127.0.0.1:5432, dropped after the benchmark.

Run `python -m tests.benchmarks.datasets --players 1000,10000,100000` to build the cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from core.db import Database
from core.db.migrate import head_revision, upgrade_to_head
from core.db.models import SettlementRun
from tests.benchmarks.dataset_rows import (
    FIRST_DISCORD_ID,
    GENERATOR_VERSION,
    TABLE_COLUMNS,
    RowGenerator,
)

RESULTS_DIR = Path(__file__).parent / "results"
WORK_DIR = RESULTS_DIR / "work"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PLAYERS_PER_BATCH = 2_000


@dataclass
class DatasetInfo:
    """What a generated data set holds, stored next to a cached file as JSON."""

    players: int
    anchor: str
    generator_version: int
    migration_head: str
    row_counts: dict[str, int] = field(default_factory=dict)
    load_seconds: float = 0.0

    @property
    def anchor_at(self) -> datetime:
        """The instant the history ends at; benchmarks use it as their `now`."""
        return datetime.fromisoformat(self.anchor)

    def discord_id(self, index: int) -> int:
        """Return the Discord ID of player `index` (1-based)."""
        return FIRST_DISCORD_ID + index


def _processors(table: Table, columns: Sequence[str], dialect: Dialect) -> list[Any]:
    return [table.c[name].type.bind_processor(dialect) for name in columns]


def _processed(
    rows: Sequence[tuple[Any, ...]], processors: Sequence[Callable[[Any], Any] | None]
) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(
            value if processor is None or value is None else processor(value)
            for value, processor in zip(row, processors, strict=True)
        )


def _batches(players: int) -> Iterator[tuple[int, int]]:
    for first in range(1, players + 1, PLAYERS_PER_BATCH):
        yield first, min(players, first + PLAYERS_PER_BATCH - 1)


def default_anchor() -> datetime:
    """Return the current hour, the end of a newly generated history."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def _upgrade(path: Path) -> None:
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()


def _migrate_sqlite(path: Path) -> None:
    """Migrate a SQLite file to head, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_upgrade(path))
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, _upgrade(path)).result()


def generate_sqlite(
    path: Path, players: int, *, seed: int = 7, anchor: datetime | None = None
) -> DatasetInfo:
    """Create a SQLite file at `path` with `players` players, migrated to head."""
    anchor = anchor or default_anchor()
    started = time.perf_counter()
    path.unlink(missing_ok=True)
    _migrate_sqlite(path)

    dialect = sqlite.dialect()
    generator = RowGenerator(players, anchor, seed)
    counts: dict[str, int] = {table.name: 0 for table in TABLE_COLUMNS}
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA foreign_keys=ON")
        statements = {
            table: (
                f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
                f"VALUES ({', '.join('?' for _ in columns)})",
                _processors(table, columns, dialect),
            )
            for table, columns in TABLE_COLUMNS.items()
        }

        def load(batch: dict[Table, list[tuple[Any, ...]]]) -> None:
            connection.execute("BEGIN")
            for table, table_rows in batch.items():
                if table_rows:
                    statement, processors = statements[table]
                    connection.executemany(statement, _processed(table_rows, processors))
                    counts[table.name] += len(table_rows)
            connection.execute("COMMIT")

        load({SettlementRun.__table__: generator.settlement_runs()})
        for first, last in _batches(players):
            load(generator.batch(first, last))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()

    return DatasetInfo(
        players=players,
        anchor=anchor.isoformat(),
        generator_version=GENERATOR_VERSION,
        migration_head=head_revision(),
        row_counts=counts,
        load_seconds=round(time.perf_counter() - started, 1),
    )


def cached_sqlite(players: int, *, seed: int = 7, verbose: bool = True) -> tuple[Path, DatasetInfo]:
    """Return the cached SQLite file for `players` players, generating it when missing.

    Never write to the returned file: copy it with `working_copy` first.
    """
    stem = f"dataset-{players}-g{GENERATOR_VERSION}-m{head_revision()}-s{seed}"
    path = RESULTS_DIR / f"{stem}.db"
    info_path = RESULTS_DIR / f"{stem}.json"
    if path.exists() and info_path.exists():
        return path, DatasetInfo(**json.loads(info_path.read_text(encoding="utf-8")))

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    older = _older_migration(players, seed)
    if older is not None:
        # Same rows at an older migration: copying and migrating is faster than generating.
        if verbose:
            print(f"Migrating {older.name} to {head_revision()} ...", flush=True)
        info = DatasetInfo(**json.loads(older.with_suffix(".json").read_text(encoding="utf-8")))
        working_copy(older, partial)
        _migrate_sqlite(partial)
        info.migration_head = head_revision()
        older.unlink()
        older.with_suffix(".json").unlink()
    else:
        if verbose:
            print(f"Generating the SQLite data set with {players:,} players ...", flush=True)
        info = generate_sqlite(partial, players, seed=seed)
    partial.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    info_path.write_text(json.dumps(info.__dict__, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print(f"Data set ready: {path.name}, rows {info.row_counts}", flush=True)
    return path, info


def _older_migration(players: int, seed: int) -> Path | None:
    pattern = f"dataset-{players}-g{GENERATOR_VERSION}-m*-s{seed}.db"
    for candidate in sorted(RESULTS_DIR.glob(pattern)):
        if candidate.with_suffix(".json").exists():
            return candidate
    return None


def working_copy(source: Path, destination: Path) -> Path:
    """Copy a cached data set file to `destination` for a benchmark that writes to it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{destination}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, destination)
    return destination


@dataclass
class PostgresDataset:
    """A data set loaded into its own schema of the test database; drop it when done."""

    schema: str
    info: DatasetInfo

    @property
    def url(self) -> str:
        """The database URL; open it with `Database.from_url(url, search_path=schema)`."""
        return POSTGRES_URL

    def database(self) -> Database:
        """Open the schema as a `Database`."""
        return Database.from_url(POSTGRES_URL, search_path=self.schema)

    async def drop(self) -> None:
        """Drop the schema and every row in it."""
        connection = await asyncpg.connect(POSTGRES_DSN)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await connection.close()


async def generate_postgres(
    players: int, *, seed: int = 7, anchor: datetime | None = None, schema: str | None = None
) -> PostgresDataset:
    """Load `players` players into a new schema of the test database with COPY."""
    anchor = anchor or default_anchor()
    schema = schema or f"p2s_bench_{players}_{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()

    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await connection.close()
    dataset = PostgresDataset(
        schema, DatasetInfo(players, anchor.isoformat(), GENERATOR_VERSION, head_revision())
    )
    db = dataset.database()
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()

    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    processors = {
        table: _processors(table, columns, dialect) for table, columns in TABLE_COLUMNS.items()
    }
    generator = RowGenerator(players, anchor, seed)
    counts = dataset.info.row_counts = {table.name: 0 for table in TABLE_COLUMNS}
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:

        async def load(batch: dict[Table, list[tuple[Any, ...]]]) -> None:
            async with connection.transaction():
                # The rows are consistent by construction, so the per-row foreign key
                # triggers are skipped for the load, as pg_restore --disable-triggers does.
                await connection.execute("SET LOCAL session_replication_role = replica")
                for table, table_rows in batch.items():
                    if not table_rows:
                        continue
                    await connection.copy_records_to_table(
                        table.name,
                        records=list(_processed(table_rows, processors[table])),
                        columns=list(TABLE_COLUMNS[table]),
                        schema_name=schema,
                    )
                    counts[table.name] += len(table_rows)

        await load({SettlementRun.__table__: generator.settlement_runs()})
        for first, last in _batches(players):
            await load(generator.batch(first, last))

        # The ids were given explicitly, so each sequence must move past them.
        for table in TABLE_COLUMNS:
            serial = table.autoincrement_column
            if serial is None:
                continue
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{schema}\".{table.name}', "  # noqa: S608
                f"'{serial.name}'), GREATEST(1, (SELECT COALESCE(MAX({serial.name}), 0) "
                f'FROM "{schema}".{table.name})))'
            )
        await connection.execute(f'SET search_path TO "{schema}"')
        await connection.execute("ANALYZE")
    finally:
        await connection.close()

    dataset.info.load_seconds = round(time.perf_counter() - started, 1)
    return dataset


async def load_small(db: Database, players: int, *, anchor: datetime, seed: int = 7) -> DatasetInfo:
    """Insert a small data set into a migrated, empty database through SQLAlchemy.

    Slower per row than the bulk loaders, but it works on any `Database`, such as the test
    fixtures; meant for a few hundred players.
    """
    generator = RowGenerator(players, anchor, seed)
    counts = {table.name: 0 for table in TABLE_COLUMNS}
    async with db.write_engine.begin() as connection:
        for batch in [{SettlementRun.__table__: generator.settlement_runs()}] + [
            generator.batch(first, last) for first, last in _batches(players)
        ]:
            for table, table_rows in batch.items():
                if not table_rows:
                    continue
                columns = TABLE_COLUMNS[table]
                await connection.execute(
                    table.insert(), [dict(zip(columns, row, strict=True)) for row in table_rows]
                )
                counts[table.name] += len(table_rows)
        if db.dialect_name == "postgresql":
            for table in TABLE_COLUMNS:
                serial = table.autoincrement_column
                if serial is not None:
                    await connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{serial.name}'), "  # noqa: S608
                        f"GREATEST(1, (SELECT COALESCE(MAX({serial.name}), 0) FROM {table.name})))"
                    )
    return DatasetInfo(players, anchor.isoformat(), GENERATOR_VERSION, head_revision(), counts)


@asynccontextmanager
async def open_dataset(
    database: str, players: int, *, verbose: bool = True
) -> AsyncIterator[tuple[Database, DatasetInfo]]:
    """Open a data set of `players` players on `database` (sqlite or postgresql).

    SQLite opens a copy of the cached file and PostgreSQL a new schema; both are removed
    when the block exits, so benchmarks may write freely.
    """
    if database == "sqlite":
        source, info = cached_sqlite(players, verbose=verbose)
        copy = working_copy(source, WORK_DIR / f"{uuid.uuid4().hex[:8]}-{players}.db")
        db = Database.from_url(f"sqlite:///{copy}")
        try:
            yield db, info
        finally:
            await db.dispose()
            for suffix in ("", "-wal", "-shm"):
                copy.with_name(copy.name + suffix).unlink(missing_ok=True)
        return

    if verbose:
        print(f"Loading {players:,} players into PostgreSQL ...", flush=True)
    dataset = await generate_postgres(players)
    if verbose:
        print(f"Loaded in {dataset.info.load_seconds} s", flush=True)
    db = dataset.database()
    try:
        yield db, dataset.info
    finally:
        await db.dispose()
        await dataset.drop()


def parse_sizes(text: str) -> list[int]:
    """Parse a comma-separated list of player counts such as `1000,10000,100000`."""
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError(f"invalid player counts {text!r}: expected positive integers")
    return sizes


def main() -> None:
    """Generate (or reuse) the cached SQLite data sets named on the command line."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate the cached benchmark data sets.")
    parser.add_argument("--players", default="1000,10000,100000", help="comma-separated counts")
    parser.add_argument("--postgresql", action="store_true", help="also time a PostgreSQL load")
    arguments = parser.parse_args()
    for players in parse_sizes(arguments.players):
        _, info = cached_sqlite(players)
        print(f"SQLite {players:,} players: {info.row_counts} (load {info.load_seconds} s)")
        if arguments.postgresql:
            dataset = asyncio.run(generate_postgres(players))
            print(f"PostgreSQL {players:,} players: load {dataset.info.load_seconds} s")
            asyncio.run(dataset.drop())


if __name__ == "__main__":
    main()
