"""Async engine and session factories for SQLite (aiosqlite) and PostgreSQL (asyncpg).

On SQLite every connection runs in WAL mode with a busy timeout, foreign keys on and
`synchronous=NORMAL`. The sqlite3 driver's own transaction handling is switched off so that
the `BEGIN` this module emits is the one SQLite executes: write transactions start with
`BEGIN IMMEDIATE`, which takes the write lock up front. A second writer then waits on the
busy timeout at its `BEGIN` instead of failing with "database is locked" when it tries to
upgrade a read transaction at its first write or at commit.

Read-only transactions on a SQLite file come from a second, smaller pool whose connections
run `PRAGMA query_only=ON` once when they connect. Sharing one pool would mean switching that
pragma whenever a connection moves between reads and writes, which costs three more hand-offs
to aiosqlite's worker thread each time. An in-memory database has a single connection, so
there reads and writes share it and the pragma is switched before `BEGIN` when needed.

The pools of the engines that `Database.from_url` creates for SQLite roll back a returned
connection only when SQLite reports a transaction still open. A session has ended its
transaction by then, so the pool's default rollback would cost one more hand-off.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from core.config.urls import mask_url_secrets
from core.errors import Pay2SlayError

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Connections kept open for SQLite read transactions. Readers do not block each other in WAL
# mode, so a burst of more concurrent reads opens overflow connections, closed on return.
SQLITE_READ_POOL_SIZE = 2
SQLITE_READ_POOL_MAX_OVERFLOW = 10

# Execution options read by the SQLite `begin` listener. They travel with the engine proxy
# that a session factory is bound to, so one pool can serve read and write transactions when
# there is no separate read engine.
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


@dataclass
class _WriteQueue:
    """The SQLite writers of one event loop: the lock they queue on and the task holding it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: asyncio.Task[Any] | None = None


class Database:
    """An `AsyncEngine` with the session factories and transaction helpers Pay2Slay uses.

    `write()` and `sessionmaker` start transactions that may write: on SQLite they begin with
    `BEGIN IMMEDIATE`. `read()` starts a deferred, read-only transaction on both databases,
    so an accidental write in it raises instead of being lost.

    `read_engine`, SQLite only, is a second engine on the same database whose connections
    are all read-only (see `read_only_sqlite_engine`); `read()` then takes its connections
    from there. Without it, reads and writes share `engine`'s pool.
    """

    def __init__(self, engine: AsyncEngine, *, read_engine: AsyncEngine | None = None) -> None:
        self._engine = engine
        self._dialect_name = engine.dialect.name

        if read_engine is not None and (
            self._dialect_name != "sqlite"
            or read_engine.url != engine.url
            or read_engine.sync_engine is engine.sync_engine
        ):
            raise ValueError(
                "A read engine must be a second SQLite engine on the same database file as "
                f"the main engine; got {masked_url(read_engine.url)} beside "
                f"{masked_url(engine.url)}. Create it with read_only_sqlite_engine."
            )
        self._read_only_engine = read_engine

        if self._dialect_name == "sqlite":
            _install_sqlite_listeners(engine, read_only=False)
            if read_engine is not None:
                _install_sqlite_listeners(read_engine, read_only=True)
            write_options: dict[str, Any] = {_BEGIN_MODE_OPTION: "IMMEDIATE"}
            read_options: dict[str, Any] = {
                _BEGIN_MODE_OPTION: "DEFERRED",
                _QUERY_ONLY_OPTION: True,
            }
        else:
            write_options = {}
            read_options = {"postgresql_readonly": True}

        self._write_engine = engine.execution_options(**write_options)
        self._read_engine = (read_engine or engine).execution_options(**read_options)
        self._sessionmaker = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessionmaker = async_sessionmaker(self._read_engine, expire_on_commit=False)
        # SQLite takes one writer at a time, and a `BEGIN IMMEDIATE` that finds the file
        # locked waits in the busy handler, which sleeps in steps of up to 100 ms. Writers
        # of this process queue on a lock instead, so the next one starts as soon as the
        # last commits. An asyncio lock belongs to one event loop, so there is one per loop.
        self._write_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WriteQueue] = (
            weakref.WeakKeyDictionary()
        )

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
            options["connect_args"] = _sqlite_connect_args()
            options["pool_reset_on_return"] = None
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
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "reset", _reset_sqlite_connection)
        read_engine = None
        if sqlite_file_path(parsed) is not None:
            read_engine = read_only_sqlite_engine(parsed, echo=echo)
        log.debug(
            "database_engine_created",
            dialect=engine.dialect.name,
            url=masked_url(parsed),
            read_pool=read_engine is not None,
        )
        return cls(engine, read_engine=read_engine)

    @property
    def engine(self) -> AsyncEngine:
        """The engine without Pay2Slay's transaction options, for DDL and tools."""
        return self._engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine this database sends statements through: `engine`, then the read engine.

        For event listeners that must see every statement, including those of `read()`.
        """
        if self._read_only_engine is None:
            return (self._engine,)
        return (self._engine, self._read_only_engine)

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
        """Run a transaction that commits when the block exits and rolls back on an error.

        On SQLite the transactions of one process run one after the other, so a `write()`
        must not wait for another `write()` inside it. A task cancelled inside the block
        rolls back, once a statement already running in aiosqlite's thread has ended. A task
        cancelled during the commit gets `CancelledError` although the commit may have
        completed, so read the state again before acting on such a cancelled write.
        """
        queue = self._sqlite_write_queue()
        if queue is None:
            async with self._sessionmaker() as session, session.begin():
                yield session
            return
        task = asyncio.current_task()
        if task is not None and queue.holder is task:
            raise RuntimeError(
                "A write transaction is already open in this task. SQLite has one writer at a "
                "time, so a write() inside another would wait for itself; commit the first "
                "before starting the next."
            )
        async with queue.lock:
            queue.holder = task
            try:
                async with self._sessionmaker() as session, session.begin():
                    yield session
            finally:
                queue.holder = None

    def _sqlite_write_queue(self) -> _WriteQueue | None:
        if self._dialect_name != "sqlite":
            return None
        loop = asyncio.get_running_loop()
        queue = self._write_queues.get(loop)
        if queue is None:
            queue = self._write_queues[loop] = _WriteQueue()
        return queue

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Run a read-only transaction that ends when the block exits.

        Closing the session ends the transaction and detaches the objects it loaded, which
        keep their loaded attributes for use after the block.
        """
        async with self._read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection of every engine."""
        for engine in self.engines:
            await engine.dispose()

    def __repr__(self) -> str:
        return f"Database({masked_url(self._engine.url)!r})"


def read_only_sqlite_engine(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    """Create the engine for `Database(engine, read_engine=...)` on the SQLite file `url`.

    `Database` gives each of its connections the settings of every SQLite connection (WAL,
    busy timeout, foreign keys), then runs `PRAGMA query_only=ON`, which stays on for the life
    of the connection. A write statement on it fails with "attempt to write a readonly
    database".
    """
    parsed = normalize_url(url)
    if sqlite_file_path(parsed) is None:
        raise DatabaseUrlError(
            "A read-only SQLite engine needs a database file. An in-memory database has one "
            "connection, which reads and writes share."
        )
    engine = create_async_engine(
        parsed,
        echo=echo,
        pool_size=SQLITE_READ_POOL_SIZE,
        max_overflow=SQLITE_READ_POOL_MAX_OVERFLOW,
        pool_reset_on_return=None,
        connect_args=_sqlite_connect_args(),
    )
    event.listen(engine.sync_engine, "reset", _reset_sqlite_connection)
    return engine


class _RollbackOnCloseConnection(sqlite3.Connection):
    """A sqlite3 connection that rolls back an open transaction before it closes.

    SQLAlchemy hard-closes a connection whose task was cancelled during a statement, and
    aiosqlite then closes it in its worker thread once the statement ends. A plain `close()`
    with a cursor not yet finalized leaves the connection open until that cursor is garbage
    collected (`sqlite3_close_v2`), and with it the transaction and the file's write lock.
    ROLLBACK ends the transaction even while statements are pending.
    """

    def close(self) -> None:
        try:
            if self.in_transaction:
                self.rollback()
        finally:
            super().close()


def _sqlite_connect_args() -> dict[str, Any]:
    # The sqlite3 driver's own timeout is its busy timeout, in seconds.
    return {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "factory": _RollbackOnCloseConnection}


def _install_sqlite_listeners(engine: AsyncEngine, *, read_only: bool) -> None:
    # A second Database around the same engine must not add a second BEGIN.
    sync_engine = engine.sync_engine
    configure = _configure_sqlite_read_connection if read_only else _configure_sqlite_connection
    if not event.contains(sync_engine, "connect", configure):
        event.listen(sync_engine, "connect", configure)
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


def _configure_sqlite_read_connection(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # WAL must be set before query_only, because switching a new file to WAL writes to it.
    _configure_sqlite_connection(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()

    record.info["pay2slay_sqlite_pragmas"] = {"query_only": True, "foreign_keys": True}


def _reset_sqlite_connection(
    dbapi_connection: Any, record: ConnectionPoolEntry | None, state: PoolResetState
) -> None:
    # Replaces the pool's rollback on return (`pool_reset_on_return=None`). A session ends its
    # transaction before it returns the connection, so that rollback would be a second one,
    # one more hand-off to aiosqlite's worker thread per transaction. This one rolls back only
    # when SQLite reports a transaction still open. Like the pool's own reset, it does nothing
    # when the connection is garbage-collected outside the event loop.
    if not state.asyncio_safe:
        return
    driver_connection = None if record is None else record.driver_connection
    if driver_connection is None or driver_connection.in_transaction:
        dbapi_connection.rollback()


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
