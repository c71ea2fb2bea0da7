"""Deletion of the rows that are kept only for a limited time, as docs/privacy.md lists them.

Two kinds of rows expire:

- verification records older than `RECORD_RETENTION` (90 days), because the player's current
  state lives on the player and Epic link rows and old records only serve abuse reviews;
- OAuth sign-in states that expired more than `STATE_RETENTION` (1 day) ago.

Everything else, the ledger and the audit log above all, is kept. The periods are the ones the
services use, imported from them so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Base, OAuthState, VerificationRecord
from core.db.session import Database
from core.services.oauth_login import STATE_RETENTION
from core.services.verification import RECORD_RETENTION

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PruneReport:
    """How many rows each retention rule deleted, or would delete in a dry run."""

    verification_records: int
    oauth_states: int
    dry_run: bool

    def describe(self) -> str:
        """Return one line for the operator."""
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.verification_records} verification record(s) older than "
            f"{RECORD_RETENTION.days} days and {self.oauth_states} sign-in state(s) that "
            f"expired more than {STATE_RETENTION.days} day(s) ago"
        )


async def prune_expired(db: Database, *, now: datetime, dry_run: bool = False) -> PruneReport:
    """Delete the expired rows in one transaction, or only count them when `dry_run`."""
    async with db.write() as session:
        records = await _prune(
            session,
            VerificationRecord,
            VerificationRecord.checked_at < now - RECORD_RETENTION,
            dry_run=dry_run,
        )
        states = await _prune(
            session,
            OAuthState,
            OAuthState.expires_at < now - STATE_RETENTION,
            dry_run=dry_run,
        )

    report = PruneReport(verification_records=records, oauth_states=states, dry_run=dry_run)
    log.info(
        "retention_prune_finished",
        dry_run=dry_run,
        verification_records=records,
        oauth_states=states,
    )
    return report


async def _prune(
    session: AsyncSession, model: type[Base], condition: ColumnElement[bool], *, dry_run: bool
) -> int:
    if dry_run:
        found = await session.scalar(select(func.count()).select_from(model).where(condition))
        return int(found or 0)
    outcome = await session.execute(delete(model).where(condition))
    return int(getattr(outcome, "rowcount", 0) or 0)
