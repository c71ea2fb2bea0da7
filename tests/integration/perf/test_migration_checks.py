"""Start-up at head skips SQLite's whole-database foreign key check; a real migration runs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from core.db import Database
from core.db.migrate import upgrade_to_head


@contextmanager
def statements_sent(db: Database) -> Iterator[list[str]]:
    """Record the text of every statement sent on `db`'s engine inside the block."""
    sent: list[str] = []

    def record(*arguments: Any) -> None:
        sent.append(str(arguments[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_upgrade_at_head_skips_check(sqlite_database: Database) -> None:
    with statements_sent(sqlite_database) as sent:
        await upgrade_to_head(sqlite_database)

    assert sent
    assert not [statement for statement in sent if "foreign_key_check" in statement]


async def test_migration_runs_foreign_key_check(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with statements_sent(db) as sent:
            await upgrade_to_head(db)
    finally:
        await db.dispose()

    assert [statement for statement in sent if "foreign_key_check" in statement]
