"""Alembic environment for Pay2Slay's packaged migrations.

`core.db.migrate` opens the transaction and passes its connection in
`config.attributes["connection"]`. Without one, as when a developer calls
`alembic.command.revision(alembic_config(url), autogenerate=True)`, this module opens its own
connection from `sqlalchemy.url`. Logging is left to the application, so there is no
`fileConfig` call here.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from core.db.models import Base
from core.db.session import Database, without_foreign_keys
from core.db.types import RAW_DIGITS, RawAmount, UtcDateTime

target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the project's column types as plain SQLAlchemy types in new revisions.

    A revision must keep creating the same schema after the application's types change, so
    it spells out what `RawAmount` and `UtcDateTime` compile to instead of importing them.
    """
    if kind != "type":
        return False
    if isinstance(obj, RawAmount):
        return f'sa.String({RAW_DIGITS}).with_variant(sa.Numeric({RAW_DIGITS}, 0), "postgresql")'
    if isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_connection(url: str) -> None:
    db = Database.from_url(url)
    try:
        async with without_foreign_keys(db.engine).begin() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await db.dispose()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _configure_and_run(connection)
        return

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "Alembic was given neither a connection nor sqlalchemy.url; "
            "use core.db.migrate or alembic_config(url)."
        )
    asyncio.run(_run_with_own_connection(url))


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
