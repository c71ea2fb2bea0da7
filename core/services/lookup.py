"""An admin's view of one player: status, every Epic account, freeze details and open flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from core.clock import Clock
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.db.models import AbuseFlag, AbuseFlagStatus, EpicLink, Player, StatsState
from core.db.session import Database
from core.services.history import PayoutSummary
from core.services.status import (
    EligibilityCheck,
    PlayerStatus,
    StatusPolicy,
    read_player_status,
)


@dataclass(frozen=True, slots=True)
class EpicAccount:
    """One Epic account a player has had; at most one is active."""

    epic_account_id: str
    active: bool
    linked_at: datetime
    unlinked_at: datetime | None
    stats_state: StatsState
    baseline_kills: int | None
    cursor_kills: int | None
    last_read_at: datetime | None


@dataclass(frozen=True, slots=True)
class PlayerLookup:
    """The data behind `/player-lookup`: the player's status plus details for admins only.

    `epic_accounts` lists the active account first, then older ones, newest first.
    """

    discord_id: int
    player_id: int
    created_at: datetime
    guild_member: bool | None
    status: PlayerStatus
    epic_accounts: tuple[EpicAccount, ...]
    frozen: bool
    frozen_reason: str | None
    frozen_at: datetime | None
    frozen_by: int | None
    open_flags: int

    @property
    def wallet_address(self) -> str | None:
        """The registered wallet, if any."""
        return self.status.wallet_address

    @property
    def checks(self) -> tuple[EligibilityCheck, ...]:
        """The eligibility checklist."""
        return self.status.checks

    @property
    def eligible(self) -> bool:
        """Whether the player can be paid now."""
        return self.status.eligible

    @property
    def stats_state(self) -> StatsState | None:
        """Stats state of the active Epic account, None without one."""
        return self.status.stats_state

    @property
    def latest_payouts(self) -> tuple[PayoutSummary, ...]:
        """The latest payouts, newest first."""
        return self.status.latest_payouts


class LookupService:
    """Look players up for admins."""

    def __init__(
        self,
        db: Database,
        payout_settings: PayoutSettings,
        integration_settings: IntegrationsSettings,
        clock: Clock,
    ) -> None:
        self._db = db
        self._policy = StatusPolicy.from_settings(payout_settings, integration_settings)
        self._clock = clock

    async def lookup(
        self, discord_id: int, next_settlement_at: datetime | None = None
    ) -> PlayerLookup | None:
        """Return everything about the player, or None when the faucet has no such player."""
        async with self._db.read() as session:
            status = await read_player_status(
                session,
                discord_id,
                policy=self._policy,
                now=self._clock(),
                next_settlement_at=next_settlement_at,
            )
            if status is None:
                return None

            player = (
                await session.execute(
                    select(
                        Player.created_at,
                        Player.guild_member,
                        Player.frozen,
                        Player.frozen_reason,
                        Player.frozen_at,
                        Player.frozen_by,
                    ).where(Player.id == status.player_id)
                )
            ).one()
            # NOTE: epic_links has no index on player_id alone, only the partial index of
            # active links, so this reads the whole table. An admin command can afford it.
            links = await session.execute(
                select(
                    EpicLink.epic_account_id,
                    EpicLink.active,
                    EpicLink.linked_at,
                    EpicLink.unlinked_at,
                    EpicLink.stats_state,
                    EpicLink.baseline_kills,
                    EpicLink.cursor_kills,
                    EpicLink.last_read_at,
                )
                .where(EpicLink.player_id == status.player_id)
                .order_by(EpicLink.active.desc(), EpicLink.linked_at.desc(), EpicLink.id.desc())
            )
            epic_accounts = tuple(EpicAccount(*row) for row in links)
            open_flags = await session.scalar(
                select(func.count(AbuseFlag.id)).where(
                    AbuseFlag.status == AbuseFlagStatus.OPEN,
                    AbuseFlag.player_id == status.player_id,
                )
            )

        created_at, guild_member, frozen, frozen_reason, frozen_at, frozen_by = player
        return PlayerLookup(
            discord_id=discord_id,
            player_id=status.player_id,
            created_at=created_at,
            guild_member=guild_member,
            status=status,
            epic_accounts=epic_accounts,
            frozen=frozen,
            frozen_reason=frozen_reason,
            frozen_at=frozen_at,
            frozen_by=frozen_by,
            open_flags=int(open_flags or 0),
        )
