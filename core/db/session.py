"""Async engine and session factories for SQLite (aiosqlite) and PostgreSQL (asyncpg).

On SQLite every connection runs in WAL mode with a busy timeout, foreign keys on and
`synchronous=NORMAL`. The sqlite3 driver's own transaction handling is switched off so that
the `BEGIN` this module emits is the one SQLite executes: write transactions start with
`BEGIN IMMEDIATE`, which takes the write lock up front. A second writer then waits on the
busy timeout at its `BEGIN` instead of failing with "database is locked" when it tries to
upgrade a read transaction at its first write or at commit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from core.config.urls import mask_url_secrets
from core.errors import Pay2SlayError

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution options read by the SQLite `begin` listener. They travel with the engine proxy
# that a session factory is bound to, so one pool serves read and write transactions.
_BEGIN_MODE_OPTION = "pay2slay_sqlite_begin"
_QUERY_ONLY_OPTION = "pay2slay_sqlite_query_only"
_FOREIGN_KEYS_OPTION = "pay2slay_sqlite_foreign_keys"

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_BEGIN_STATEMENTS = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseUrlError(Pay2SlayError):
    """The database URL is malformed or names a driver Pay2Slay does not support."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and select the async driver for its backend.

    `sqlite:///path` becomes `sqlite+aiosqlite:///path` and `postgresql://...` becomes
    `postgresql+asyncpg://...`. Raises `DatabaseUrlError` for a URL that cannot be parsed and
    for other backends or drivers. The message never repeats the URL, which may contain a
    password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # make_url raises ValueError for a malformed port or IPv6 host, with part of the URL
        # in its text.
        raise DatabaseUrlError(
            "The database URL is invalid. Use a URL such as "
            "sqlite:///data/pay2slay.db or postgresql+asyncpg://user@host:5432/name."
        ) from None

    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"The database driver {parsed.drivername!r} is not supported. "
            "Use sqlite+aiosqlite or postgresql+asyncpg."
        )
    return parsed.set(drivername=driver)


def masked_url(url: URL) -> str:
    """Render `url` for logs and messages, with its password and secret query parameters masked.

    SQLAlchemy's `hide_password` masks only the password of the user part, while asyncpg also
    takes `?password=` and `?sslpassword=` in the query.
    """
    return mask_url_secrets(url.render_as_string(hide_password=False))


def sqlite_file_path(url: URL) -> Path | None:
    """Return the file a SQLite URL opens, or None for an in-memory or non-SQLite database."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if url.query.get("mode") == "memory":
        return None
    return Path(database)


class Database:
    """An `AsyncEngine` with the session factories and transaction helpers Pay2Slay uses.

    `write()` and `sessionmaker` start transactions that may write: on SQLite they begin with
    `BEGIN IMMEDIATE`. `read()` starts a deferred, read-only transaction on both databases,
    so an accidental write in it raises instead of being lost.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect_name = engine.dialect.name

        if self._dialect_name == "sqlite":
            _install_sqlite_listeners(engine)
            write_options: dict[str, Any] = {_BEGIN_MODE_OPTION: "IMMEDIATE"}
            read_options: dict[str, Any] = {
                _BEGIN_MODE_OPTION: "DEFERRED",
                _QUERY_ONLY_OPTION: True,
            }
        else:
            write_options = {}
            read_options = {"postgresql_readonly": True}

        self._write_engine = engine.execution_options(**write_options)
        self._read_engine = engine.execution_options(**read_options)
        self._sessionmaker = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessionmaker = async_sessionmaker(self._read_engine, expire_on_commit=False)

    @classmethod
    def from_url(
        cls, url: str | URL, *, echo: bool = False, search_path: str | None = None
    ) -> Database:
        """Create the engine for `url`, creating a SQLite file's parent directory if missing.

        `search_path` (PostgreSQL only) names the schema that contains Pay2Slay's tables, for
        a database shared with other applications or tests.
        """
        parsed = normalize_url(url)
        options: dict[str, Any] = {"echo": echo}

        if parsed.get_backend_name() == "sqlite":
            if search_path is not None:
                raise DatabaseUrlError("A search_path applies to PostgreSQL only, not SQLite.")
            path = sqlite_file_path(parsed)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            # The sqlite3 driver's own timeout is its busy timeout, in seconds.
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            server_settings = {"application_name": "pay2slay", "timezone": "UTC"}
            if search_path is not None:
                if not _SCHEMA_NAME.fullmatch(search_path):
                    raise DatabaseUrlError(
                        f"The schema name {search_path!r} is invalid. Use lower-case letters, "
                        "digits and underscores, starting with a letter or underscore."
                    )
                server_settings["search_path"] = search_path
            options.update(
                pool_size=5,
                max_overflow=10,
                pool_timeout=30,
                pool_recycle=1800,
                pool_pre_ping=True,
                connect_args={"timeout": 10, "server_settings": server_settings},
            )

        engine = create_async_engine(parsed, **options)
        log.debug("database_engine_created", dialect=engine.dialect.name, url=masked_url(parsed))
        return cls(engine)

    @property
    def engine(self) -> AsyncEngine:
        """The engine without Pay2Slay's transaction options, for DDL and tools."""
        return self._engine

    @property
    def write_engine(self) -> AsyncEngine:
        """The engine proxy whose transactions begin with `BEGIN IMMEDIATE` on SQLite."""
        return self._write_engine

    @property
    def dialect_name(self) -> str:
        """The SQLAlchemy dialect name: `sqlite` or `postgresql`."""
        return self._dialect_name

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """Session factory for transactions that may write (`BEGIN IMMEDIATE` on SQLite)."""
        return self._sessionmaker

    @property
    def read_sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """Session factory for read-only transactions, in which a write raises an error."""
        return self._read_sessionmaker

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """Run a transaction that commits when the block exits and rolls back on an error."""
        async with self._sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Run a read-only transaction that ends when the block exits.

        Closing the session ends the transaction and detaches the objects it loaded, which
        keep their loaded attributes for use after the block.
        """
        async with self._read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    def __repr__(self) -> str:
        return f"Database({masked_url(self._engine.url)!r})"


def _install_sqlite_listeners(engine: AsyncEngine) -> None:
    # A second Database around the same engine must not add a second BEGIN.
    sync_engine = engine.sync_engine
    if not event.contains(sync_engine, "connect", _configure_sqlite_connection):
        event.listen(sync_engine, "connect", _configure_sqlite_connection)
    if not event.contains(sync_engine, "begin", _begin_sqlite_transaction):
        event.listen(sync_engine, "begin", _begin_sqlite_transaction)


def _configure_sqlite_connection(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # With isolation_level None the sqlite3 driver never emits BEGIN itself, so the listener
    # below controls every transaction. COMMIT and ROLLBACK still go through the driver.
    dbapi_connection.isolation_level = None

    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()

    record.info["pay2slay_sqlite_pragmas"] = {"query_only": False, "foreign_keys": True}


def _begin_sqlite_transaction(connection: Connection) -> None:
    options: Mapping[str, Any] = connection.get_execution_options()
    mode = options.get(_BEGIN_MODE_OPTION, "DEFERRED")
    statement = _BEGIN_STATEMENTS.get(mode)
    if statement is None:
        raise ValueError(f"unknown SQLite begin mode {mode!r}, expected DEFERRED or IMMEDIATE")

    # These pragmas are per connection and cannot change inside a transaction, so they are
    # set just before BEGIN and only when the pooled connection has a different value.
    pragmas: dict[str, bool] = connection.info.setdefault(
        "pay2slay_sqlite_pragmas", {"query_only": False, "foreign_keys": True}
    )
    required = {
        "query_only": bool(options.get(_QUERY_ONLY_OPTION, False)),
        "foreign_keys": bool(options.get(_FOREIGN_KEYS_OPTION, True)),
    }
    for name, value in required.items():
        if pragmas.get(name) != value:
            connection.exec_driver_sql(f"PRAGMA {name}={'ON' if value else 'OFF'}")
            pragmas[name] = value

    connection.exec_driver_sql(statement)


def without_foreign_keys(engine: AsyncEngine) -> AsyncEngine:
    """Return an engine proxy whose SQLite write transactions run with foreign keys off.

    Alembic's batch mode rebuilds a SQLite table by copying it, dropping the original and
    renaming the copy. With foreign keys on, dropping a table that other rows reference
    fails, so migrations run with them off and check them with `PRAGMA foreign_key_check`
    before committing. On PostgreSQL the engine is returned unchanged.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(
        **{_BEGIN_MODE_OPTION: "IMMEDIATE", _FOREIGN_KEYS_OPTION: False}
    )
