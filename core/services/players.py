"""Players, their wallets, freezing and DM preferences."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.banano.address import check_payout_destination
from core.clock import Clock, utc_now
from core.db.models import Player, Wallet
from core.db.session import Database
from core.errors import Pay2SlayError
from core.observability.metrics import Metrics
from core.services.abuse import WALLET_IN_USE, find_open_flag, open_flag
from core.services.audit import record_audit
from core.services.epic_links import mark_player_resumed

log = structlog.get_logger(__name__)

MAX_FREEZE_REASON_LENGTH = 500


class WalletInUseError(Pay2SlayError):
    """The wallet is registered to another player; one wallet belongs to one player."""

    safe_message = (
        "That wallet is already registered to another player. Register a wallet that only you use."
    )


class PlayerNotFoundError(Pay2SlayError):
    """No player has the given Discord ID."""

    def __init__(self, discord_id: int) -> None:
        super().__init__(
            f"The faucet has no player with Discord ID {discord_id}. "
            "They become a player by registering a wallet or being verified."
        )
        self.discord_id = discord_id


class LinkWalletOutcome(enum.StrEnum):
    """The result of `link_wallet`."""

    LINKED = "linked"
    UNCHANGED = "unchanged"
    NEEDS_CONFIRMATION = "needs_confirmation"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class LinkWalletResult:
    """The outcome of registering a wallet, with the address before and after."""

    outcome: LinkWalletOutcome
    address: str
    previous_address: str | None


@dataclass(frozen=True, slots=True)
class PlayerInfo:
    """A player's stored state, detached from any session."""

    id: int
    discord_id: int
    created_at: datetime
    guild_member: bool | None
    last_verified_at: datetime | None
    frozen: bool
    frozen_reason: str | None
    locale: str | None
    payout_dms: bool
    wallet_address: str | None


@dataclass(frozen=True, slots=True)
class FreezeResult:
    """Whether a freeze or unfreeze changed anything, and the player's state after it."""

    changed: bool
    frozen: bool


async def get_or_create_player(
    session: AsyncSession, discord_id: int, now: datetime, *, locale: str | None = None
) -> Player:
    """Return the player with this Discord ID, creating it in the session's transaction.

    Insert-or-ignore then select, so two concurrent callers end up with the same row.
    """
    if isinstance(discord_id, bool) or not isinstance(discord_id, int) or discord_id <= 0:
        raise ValueError("discord_id must be a positive int")

    player = await session.scalar(select(Player).where(Player.discord_id == discord_id))
    if player is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(Player)
            .values(
                discord_id=discord_id,
                created_at=now,
                frozen=False,
                payout_dms=True,
                locale=locale,
            )
            .on_conflict_do_nothing(index_elements=[Player.discord_id])
        )
        player = await session.scalar(select(Player).where(Player.discord_id == discord_id))
        if player is None:
            raise RuntimeError("the player row vanished inside its transaction")
        log.info("player_created", player_id=player.id, discord_id=discord_id)

    if locale and player.locale is None:
        player.locale = locale
    return player


class PlayerService:
    """Create players and change their wallet, freeze state and DM preference."""

    def __init__(
        self, db: Database, clock: Clock = utc_now, metrics: Metrics | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._metrics = metrics

    async def get_or_create(self, discord_id: int) -> PlayerInfo:
        """Return the player with this Discord ID, creating it if missing."""
        async with self._db.write() as session:
            player = await get_or_create_player(session, discord_id, self._clock())
            return await _info(session, player)

    async def get(self, discord_id: int) -> PlayerInfo | None:
        """Return the player with this Discord ID, or None if the faucet does not know them."""
        async with self._db.read() as session:
            player = await session.scalar(select(Player).where(Player.discord_id == discord_id))
            if player is None:
                return None
            return await _info(session, player)

    async def link_wallet(
        self, discord_id: int, address: str, operator_address: str | None, replace: bool
    ) -> LinkWalletResult:
        """Register `address` as the player's wallet.

        Raises an InvalidAddressError subclass for an invalid address, the burn address or the
        operator account, and WalletInUseError when another player has it. A different wallet
        is only replaced when `replace` is true; otherwise the outcome is NEEDS_CONFIRMATION.
        """
        canonical = check_payout_destination(address, operator_address)

        # A concurrent registration can slip between the checks and the insert. The unique
        # constraints on the address and on the player catch it, and one more attempt then
        # reads the committed row and returns the right outcome.
        for attempt in (1, 2):
            now = self._clock()
            try:
                async with self._db.write() as session:
                    player = await get_or_create_player(session, discord_id, now)
                    owner = await session.scalar(select(Wallet).where(Wallet.address == canonical))
                    if owner is not None and owner.player_id != player.id:
                        raise WalletInUseError()

                    wallet = await session.scalar(
                        select(Wallet).where(Wallet.player_id == player.id)
                    )
                    result = self._change_wallet(session, player, wallet, canonical, replace, now)
                break
            except WalletInUseError:
                await self._flag_wallet_in_use(discord_id, canonical)
                raise
            except IntegrityError:
                log.debug("wallet_registration_conflict", discord_id=discord_id, attempt=attempt)
                if attempt == 2:
                    await self._flag_wallet_in_use(discord_id, canonical)
                    raise WalletInUseError() from None

        if result.outcome in (LinkWalletOutcome.LINKED, LinkWalletOutcome.REPLACED):
            log.info("wallet_registered", discord_id=discord_id, outcome=result.outcome.value)
        return result

    def _change_wallet(
        self,
        session: AsyncSession,
        player: Player,
        wallet: Wallet | None,
        address: str,
        replace: bool,
        now: datetime,
    ) -> LinkWalletResult:
        if wallet is None:
            session.add(
                Wallet(player_id=player.id, address=address, created_at=now, updated_at=now)
            )
            record_audit(
                session,
                action="wallet_linked",
                at=now,
                actor_discord_id=player.discord_id,
                player_id=player.id,
                detail={"address": address},
            )
            return LinkWalletResult(LinkWalletOutcome.LINKED, address, None)

        if wallet.address == address:
            return LinkWalletResult(LinkWalletOutcome.UNCHANGED, address, address)

        if not replace:
            return LinkWalletResult(LinkWalletOutcome.NEEDS_CONFIRMATION, address, wallet.address)

        previous = wallet.address
        wallet.address = address
        wallet.updated_at = now
        record_audit(
            session,
            action="wallet_replaced",
            at=now,
            actor_discord_id=player.discord_id,
            player_id=player.id,
            detail={"address": address, "previous_address": previous},
        )
        return LinkWalletResult(LinkWalletOutcome.REPLACED, address, previous)

    async def _flag_wallet_in_use(self, discord_id: int, address: str) -> None:
        now = self._clock()
        async with self._db.write() as session:
            player = await get_or_create_player(session, discord_id, now)
            existing = await find_open_flag(
                session,
                player_id=player.id,
                kind=WALLET_IN_USE,
                subject_key="address",
                subject=address,
            )
            if existing is not None:
                return
            owner_player_id = await session.scalar(
                select(Wallet.player_id).where(Wallet.address == address)
            )
            open_flag(
                session,
                player_id=player.id,
                kind=WALLET_IN_USE,
                now=now,
                metrics=self._metrics,
                detail={"address": address, "owner_player_id": owner_player_id},
            )

    async def freeze(self, actor_discord_id: int, discord_id: int, reason: str) -> FreezeResult:
        """Freeze a player so they are neither read nor paid; audited.

        Raises PlayerNotFoundError for an unknown Discord ID.
        """
        reason = reason.strip()[:MAX_FREEZE_REASON_LENGTH]
        now = self._clock()
        async with self._db.write() as session:
            player = await self._locked_player(session, discord_id)
            if player.frozen:
                return FreezeResult(changed=False, frozen=True)
            player.frozen = True
            player.frozen_reason = reason or None
            player.frozen_at = now
            player.frozen_by = actor_discord_id
            record_audit(
                session,
                action="player_frozen",
                at=now,
                actor_discord_id=actor_discord_id,
                player_id=player.id,
                detail={"reason": reason},
            )
        log.info("player_frozen", discord_id=discord_id, actor_discord_id=actor_discord_id)
        return FreezeResult(changed=True, frozen=True)

    async def unfreeze(self, actor_discord_id: int, discord_id: int, reason: str) -> FreezeResult:
        """Unfreeze a player; audited. Raises PlayerNotFoundError for an unknown Discord ID.

        Kills made while frozen never pay: the first OK reading after this moves the cursor of
        the player's active Epic link without accruing.
        """
        reason = reason.strip()[:MAX_FREEZE_REASON_LENGTH]
        now = self._clock()
        async with self._db.write() as session:
            player = await self._locked_player(session, discord_id)
            if not player.frozen:
                return FreezeResult(changed=False, frozen=False)
            previous_reason = player.frozen_reason
            player.frozen = False
            player.frozen_reason = None
            player.frozen_at = None
            player.frozen_by = None
            pending = await mark_player_resumed(session, player.id, now, reason="unfrozen")
            record_audit(
                session,
                action="player_unfrozen",
                at=now,
                actor_discord_id=actor_discord_id,
                player_id=player.id,
                detail={
                    "reason": reason,
                    "frozen_reason": previous_reason,
                    "rebaseline_pending": pending,
                },
            )
        log.info("player_unfrozen", discord_id=discord_id, actor_discord_id=actor_discord_id)
        return FreezeResult(changed=True, frozen=False)

    async def set_payout_dms(self, discord_id: int, enabled: bool) -> PlayerInfo:
        """Turn payout DMs on or off for the player, creating the player if missing."""
        async with self._db.write() as session:
            player = await get_or_create_player(session, discord_id, self._clock())
            player.payout_dms = enabled
            return await _info(session, player)

    async def _locked_player(self, session: AsyncSession, discord_id: int) -> Player:
        player = await session.scalar(
            select(Player).where(Player.discord_id == discord_id).with_for_update()
        )
        if player is None:
            raise PlayerNotFoundError(discord_id)
        return player


async def _info(session: AsyncSession, player: Player) -> PlayerInfo:
    address = await session.scalar(select(Wallet.address).where(Wallet.player_id == player.id))
    return PlayerInfo(
        id=player.id,
        discord_id=player.discord_id,
        created_at=player.created_at,
        guild_member=player.guild_member,
        last_verified_at=player.last_verified_at,
        frozen=player.frozen,
        frozen_reason=player.frozen_reason,
        locale=player.locale,
        payout_dms=player.payout_dms,
        wallet_address=address,
    )
