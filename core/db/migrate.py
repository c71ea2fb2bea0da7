"""Apply and inspect Alembic migrations, the only way the schema is created or changed.

The migration scripts ship inside the package (`core/db/migrations`), and the Alembic
`Config` is built in code, so an installed wheel migrates without an `alembic.ini`.

Each command runs in one transaction. On PostgreSQL it first takes a transaction-level
advisory lock, so two processes starting at once migrate one after the other. On SQLite the
transaction begins with `BEGIN IMMEDIATE`, which serializes them the same way, and runs with
foreign keys off because batch mode rebuilds tables by copy, drop and rename. A
`PRAGMA foreign_key_check` before the commit rejects a migration that leaves a dangling
reference.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from core.db.locking import advisory_key
from core.db.session import Database, without_foreign_keys
from core.errors import Pay2SlayError

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Passes the open connection from this module to env.py.
CONNECTION_ATTRIBUTE = "connection"

_MIGRATION_LOCK_NAME = "schema-migration"


class MigrationError(Pay2SlayError):
    """A migration failed, and its transaction was rolled back."""


class UnknownRevisionError(MigrationError):
    """The database is at a revision that this release does not have: a newer release made it."""


@dataclass(frozen=True)
class MigrationResult:
    """The revisions before and after a migration command; None is base (no tables).

    Both are read inside the command's transaction, after its lock is taken, so of two
    processes that upgrade at once only the first reports a change.
    """

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        """Whether the command applied or reverted any migration."""
        return self.before != self.after


def alembic_config(url: str | URL | None = None) -> Config:
    """Build the Alembic configuration for the packaged migrations.

    `url` is only needed when Alembic opens its own connection, for example to autogenerate
    a revision with `alembic.command.revision(config, autogenerate=True)`.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        # ConfigParser treats % as interpolation, and a password may contain one.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """Return the newest revision id among the packaged migrations.

    The result is cached because the packaged scripts do not change while the process runs,
    and readiness probes call this often.
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("No migrations were found in the installed package.")
    return head


@functools.cache
def known_revisions() -> frozenset[str]:
    """Return the ids of every packaged migration, cached like `head_revision`."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def unknown_revision_message(revision: str) -> str:
    """Describe a database at `revision`, which is not among this release's migrations."""
    return (
        f"The database is at revision {revision}, which this release does not have "
        f"(its newest is {head_revision()}), so a newer release of Pay2Slay migrated it. "
        "Run that release, or restore a backup made before the upgrade."
    )


async def current_revision(db: Database) -> str | None:
    """Return the revision the database is at, or None when it has never been migrated."""
    async with db.read() as session:
        connection = await session.connection()
        return await connection.run_sync(_read_revision)


async def is_at_head(db: Database) -> bool:
    """Return whether the database is at the newest packaged revision."""
    return await current_revision(db) == head_revision()


async def upgrade_to_head(db_or_url: Database | str) -> MigrationResult:
    """Apply every migration the database does not have yet.

    Raises `UnknownRevisionError` when the database is at a revision this release does not
    have, instead of Alembic's "Can't locate revision".
    """
    async with _opened(db_or_url) as db:
        return await _run_command(db, "head", upgrade=True)


async def downgrade(db_or_url: Database | str, revision: str) -> MigrationResult:
    """Revert migrations down to `revision` (`base` removes every table)."""
    async with _opened(db_or_url) as db:
        return await _run_command(db, revision, upgrade=False)


@asynccontextmanager
async def _opened(db_or_url: Database | str) -> AsyncIterator[Database]:
    if isinstance(db_or_url, Database):
        yield db_or_url
        return

    db = Database.from_url(db_or_url)
    try:
        yield db
    finally:
        await db.dispose()


async def _run_command(db: Database, revision: str, *, upgrade: bool) -> MigrationResult:
    config = alembic_config()
    engine = without_foreign_keys(db.engine)

    async with engine.begin() as connection:
        if db.dialect_name == "postgresql":
            schema = await connection.scalar(text("SELECT current_schema()"))
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": advisory_key(_MIGRATION_LOCK_NAME, str(schema))},
            )

        before = await connection.run_sync(_read_revision)
        if before is not None and before not in known_revisions():
            raise UnknownRevisionError(unknown_revision_message(before))
        await connection.run_sync(_apply, config, revision, upgrade)
        after = await connection.run_sync(_read_revision)

        # The check reads every reference in the database, which takes seconds at 100,000
        # players. It runs only after a migration, because a start-up at head changes nothing.
        if db.dialect_name == "sqlite" and before != after:
            violations = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if violations:
                tables = sorted({str(row[0]) for row in violations})
                raise MigrationError(
                    "The migration was rolled back because it left rows that reference "
                    f"missing rows in: {', '.join(tables)}."
                )

    if before != after:
        log.info(
            "database_migrated",
            dialect=db.dialect_name,
            from_revision=before,
            to_revision=after,
        )
    else:
        log.debug("database_already_at_revision", dialect=db.dialect_name, revision=after)
    return MigrationResult(before=before, after=after)


def _apply(connection: Connection, config: Config, revision: str, upgrade: bool) -> None:
    config.attributes[CONNECTION_ATTRIBUTE] = connection
    if upgrade:
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _read_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
