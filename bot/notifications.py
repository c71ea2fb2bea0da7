"""Direct messages to players about their confirmed payouts, which each player can turn off.

Each run picks confirmed live payouts from the last `LOOKBACK` that have no `payout_dm` audit
entry, writes that entry first (outcome `attempted`, or `disabled` when the player turned
DMs off) and then sends the DM. A DM that fails is logged once and never retried, because
the entry is already there. Runs hold the `payout-dms` lease so that two processes never
message the same player twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import discord
import structlog
from sqlalchemy import exists, select

from cogs.common import NO_MENTIONS, card_embed
from core.clock import Clock, utc_now
from core.config import Settings
from core.db import Database
from core.db.locking import SettlementLock, new_holder_id
from core.db.models import AuditEntry, Payout, PayoutState, Player
from core.i18n import MessageCatalog
from core.presentation import render_payout_dm, show_dry_run_banner
from core.services.audit import record_audit
from core.services.history import PayoutSummary

log = structlog.get_logger(__name__)

DM_AUDIT_ACTION = "payout_dm"
LEASE_NAME = "payout-dms"
LEASE_TTL = timedelta(minutes=5)

# Payouts confirmed longer ago than this are not announced, so turning the feature on does
# not message players about their whole history.
LOOKBACK = timedelta(hours=24)
MAX_PER_RUN = 50


@dataclass(frozen=True, slots=True)
class PendingDm:
    """A confirmed payout to announce, and the player it goes to."""

    payout: PayoutSummary
    player_id: int
    discord_id: int
    locale: str | None
    wants_dm: bool

    @property
    def payout_id(self) -> int:
        """The payout's id."""
        return self.payout.id


class PayoutNotifier:
    """Sends one DM per confirmed payout; see the module docstring."""

    def __init__(
        self,
        client: discord.Client,
        db: Database,
        catalog: MessageCatalog,
        settings: Settings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client
        self._db = db
        self._catalog = catalog
        self._settings = settings
        self._clock = clock
        self._lock = SettlementLock(db, clock=clock)

    async def run_once(self) -> int:
        """Send the DMs that are due; return how many were sent."""
        holder = new_holder_id()
        async with self._lock.hold(LEASE_NAME, holder, LEASE_TTL) as acquired:
            if not acquired:
                log.debug("payout_dms_skipped_locked")
                return 0
            due = await self._due(self._clock() - LOOKBACK)
            sent = 0
            for pending in due:
                if await self._claim(pending) and await self._send(pending):
                    sent += 1
        if due:
            log.info("payout_dms_finished", due=len(due), sent=sent)
        return sent

    async def _due(self, since: datetime) -> list[PendingDm]:
        announced = exists().where(
            AuditEntry.action == DM_AUDIT_ACTION,
            AuditEntry.payout_id == Payout.id,
            AuditEntry.created_at >= since,
        )
        async with self._db.read() as session:
            rows = await session.execute(
                select(
                    Payout.id,
                    Payout.amount_raw,
                    Payout.kills,
                    Payout.state,
                    Payout.block_hash,
                    Payout.dry_run,
                    Payout.created_at,
                    Player.id.label("player_id"),
                    Player.discord_id,
                    Player.locale,
                    Player.payout_dms,
                )
                .join(Player, Player.id == Payout.player_id)
                .where(
                    Payout.state == PayoutState.CONFIRMED,
                    Payout.dry_run.is_(False),
                    Payout.confirmed_at >= since,
                    ~announced,
                )
                .order_by(Payout.confirmed_at, Payout.id)
                .limit(MAX_PER_RUN)
            )
            due = []
            for row in rows:
                payout = PayoutSummary(
                    id=row.id,
                    amount_raw=row.amount_raw,
                    kills=row.kills,
                    state=row.state,
                    block_hash=row.block_hash,
                    dry_run=row.dry_run,
                    created_at=row.created_at,
                )
                due.append(
                    PendingDm(payout, row.player_id, row.discord_id, row.locale, row.payout_dms)
                )
            return due

    async def _claim(self, pending: PendingDm) -> bool:
        """Record the DM before sending it, so a failure is never retried; False = no DM."""
        outcome = "attempted" if pending.wants_dm else "disabled"
        async with self._db.write() as session:
            record_audit(
                session,
                action=DM_AUDIT_ACTION,
                at=self._clock(),
                player_id=pending.player_id,
                payout_id=pending.payout_id,
                detail={"outcome": outcome},
            )
        return pending.wants_dm

    def message(self, pending: PendingDm) -> discord.Embed:
        """Return the DM in the player's stored locale, or the default locale."""
        settings = self._settings
        card = render_payout_dm(
            pending.payout,
            self._catalog,
            pending.locale,
            settings.product,
            settings.integrations.banano.explorer_block_url,
            show_dry_run_banner(settings.product, settings.integrations.dry_run),
        )
        return card_embed(card)

    async def _send(self, pending: PendingDm) -> bool:
        try:
            user = self._client.get_user(pending.discord_id)
            if user is None:
                user = await self._client.fetch_user(pending.discord_id)
            await user.send(embed=self.message(pending), allowed_mentions=NO_MENTIONS)
        except discord.Forbidden:
            # The player closed their DMs; that is their choice, not an error.
            log.info("payout_dm_refused", payout_id=pending.payout_id)
            return False
        except discord.HTTPException as error:
            log.warning(
                "payout_dm_failed",
                payout_id=pending.payout_id,
                status=error.status,
                error_code=error.code,
            )
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning(
                "payout_dm_failed", payout_id=pending.payout_id, error_type=type(error).__name__
            )
            return False
        log.info("payout_dm_sent", payout_id=pending.payout_id)
        return True
