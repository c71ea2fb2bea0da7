"""Databases for campaign runs: a migrated SQLite file, or a migrated PostgreSQL schema."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import text

from core.db.migrate import upgrade_to_head
from core.db.session import Database
from tests.environment import POSTGRES_URL

DatabaseKind = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class CampaignDatabase:
    """Where a campaign's database is, so that child processes can open it too."""

    kind: DatabaseKind
    url: str
    search_path: str | None

    def open(self) -> Database:
        """Open a new engine on the campaign database."""
        return Database.from_url(self.url, search_path=self.search_path)


@asynccontextmanager
async def campaign_database(kind: DatabaseKind, workdir: Path) -> AsyncIterator[CampaignDatabase]:
    """Create a database at the newest migration for one campaign and remove it afterwards.

    SQLite: a file under `workdir`, left there for inspection. PostgreSQL: a schema of its own
    at `PAY2SLAY_TEST_POSTGRES_URL` (default 127.0.0.1:5432, database `test`), dropped at the end.
    """
    if kind == "sqlite":
        path = workdir / "campaign.db"
        target = CampaignDatabase(kind, f"sqlite:///{path}", None)
        db = target.open()
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()
        yield target
        return

    schema = f"p2s_reliability_{os.getpid()}_{secrets.token_hex(3)}"
    admin = Database.from_url(POSTGRES_URL)
    try:
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        target = CampaignDatabase(kind, POSTGRES_URL, schema)
        db = target.open()
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()
        yield target
    finally:
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()
