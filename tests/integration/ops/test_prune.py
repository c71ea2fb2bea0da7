"""`prune_expired` deletes exactly the rows that expire under docs/privacy.md, and no others."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.cli import main
from core.clock import utc_now
from core.db import Database
from core.db.models import OAuthState, Player, VerificationRecord
from core.db.retention import prune_expired
from tests.integration.ops.helpers_ops import NOW, add_ledger, ledger_counts


async def _add_rows(db: Database, now: datetime = NOW) -> None:
    await add_ledger(db, 2)
    async with db.write() as session:
        player_id = (await session.scalars(select(Player.id))).first()
        assert player_id is not None
        for days in (0, 30, 89, 90, 91, 400):
            session.add(
                VerificationRecord(
                    player_id=player_id,
                    checked_at=now - timedelta(days=days, seconds=1 if days == 90 else 0),
                    source="scheduled",
                    guild_member=True,
                    link_status="linked",
                    epic_account_id=None,
                    eligible=True,
                    detail=f"{days} days old",
                )
            )
        for hours in (-1, 0, 23, 25, 24 * 30):
            # expires_at is `hours` in the past; -1 means it has not expired yet.
            session.add(
                OAuthState(
                    state_hash=hashlib.sha256(f"s{hours}".encode()).hexdigest(),
                    browser_hash=hashlib.sha256(f"b{hours}".encode()).hexdigest(),
                    created_at=now - timedelta(hours=hours, minutes=10),
                    expires_at=now - timedelta(hours=hours),
                )
            )


async def _remaining(db: Database) -> tuple[list[str], list[str]]:
    async with db.read() as session:
        records = (await session.scalars(select(VerificationRecord.detail))).all()
        states = (await session.scalars(select(OAuthState.expires_at))).all()
    return sorted(records), sorted(str(NOW - expires) for expires in states)


async def test_prune_deletes_only_expired(database: Database) -> None:
    await _add_rows(database)
    ledger_before = await ledger_counts(database)

    report = await prune_expired(database, now=NOW)

    assert report.verification_records == 3
    assert report.oauth_states == 2
    records, states = await _remaining(database)
    assert records == ["0 days old", "30 days old", "89 days old"]
    assert states == ["-1 day, 23:00:00", "0:00:00", "23:00:00"]
    assert await ledger_counts(database) == ledger_before


async def test_prune_dry_run_deletes_nothing(database: Database) -> None:
    await _add_rows(database)
    before = await _remaining(database)

    report = await prune_expired(database, now=NOW, dry_run=True)

    assert (report.verification_records, report.oauth_states) == (3, 2)
    assert "would delete 3 verification record(s)" in report.describe()
    assert await _remaining(database) == before


async def test_prune_twice_deletes_nothing_more(database: Database) -> None:
    await _add_rows(database)
    await prune_expired(database, now=NOW)

    again = await prune_expired(database, now=NOW)

    assert (again.verification_records, again.oauth_states) == (0, 0)


@pytest.mark.parametrize("dry_run", [True, False])
async def test_cli_prune(
    sqlite_database: Database, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    await _add_rows(sqlite_database, utc_now())
    url = sqlite_database.engine.url.render_as_string(hide_password=False)
    argv = ["db", "prune", "--database-url", url, *(["--dry-run"] if dry_run else [])]

    code = await asyncio.to_thread(main, argv)

    captured = capsys.readouterr()
    assert code == 0, captured.err
    verb = "would delete" if dry_run else "deleted"
    assert f"{verb} 3 verification record(s)" in captured.out
    assert "and 2 sign-in state(s)" in captured.out
