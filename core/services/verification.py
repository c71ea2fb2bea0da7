"""Verification: turn guild membership and Yunite's Epic links into player eligibility.

A player is eligible when they are a member of the guild, Yunite reports an Epic link for
them that no other player owns, they have a wallet and they are not frozen. Every check is
stored as a verification record, whatever its outcome.

How a check changes the player's Epic links (`epic_links` rows):

- A first link creates an active row with no baseline; the poller's first successful reading
  sets it.
- The same account as the active row changes nothing but `date_verified`.
- A different account is a relink: the active row is deactivated (its cursor frozen) and the
  new account gets a row with a fresh baseline, so its earlier kills never pay.
- No link, or not in the guild per Yunite, deactivates the active row. Nothing earned is lost:
  open accruals stay open. When Yunite reports the same account again as the player's latest
  link, the row is reactivated, and its first OK reading moves the cursor without accruing,
  so kills made while it was inactive never pay.
- A player found back in the guild after being recorded as gone gets the same re-baseline on
  their active link.
- An account the player linked before, but not as their latest link, counts as a relink and
  gets a fresh baseline: kills made on it while another account was linked never pay.
- An account that belongs to another player is refused: no row is created for this player,
  their active row (if any) is deactivated, and an `epic_account_conflict` flag is opened.

A Yunite failure is recorded with link status `error` and changes nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db.models import EpicLink, Player, StatsState, VerificationRecord, Wallet
from core.db.session import Database
from core.integrations.yunite import LinkStatus, YuniteClient, YuniteError, YuniteLink
from core.observability.metrics import Metrics
from core.services.abuse import EPIC_ACCOUNT_CONFLICT, find_open_flag, open_flag
from core.services.audit import record_audit
from core.services.epic_links import (
    active_link,
    audit_relink,
    deactivate_active_link,
    deactivate_link,
    mark_player_resumed,
    reactivate_link,
)
from core.services.players import get_or_create_player

log = structlog.get_logger(__name__)

# Sources of a check, stored in `verification_records.source`.
SOURCES = frozenset({"command", "button", "oauth", "scheduled", "admin"})

# How many players a scheduled re-verification checks per call by default.
DEFAULT_REVERIFY_LIMIT = 100

# Verification records older than this are deleted by `prune_records`. The player's current
# state is on the player and Epic link rows, so old records only serve abuse reviews.
RECORD_RETENTION = timedelta(days=90)


class MembershipChecker(Protocol):
    """Membership check of a Discord user in the guild.

    The bot implements it with the gateway member cache or a REST lookup. `None` means
    membership is unknown (the cache is not ready and REST failed), which never counts as
    proof.
    """

    async def is_member(self, discord_id: int) -> bool | None:
        """Return whether the user is a member, or None when that is unknown."""
        ...


class VerificationOutcome(enum.StrEnum):
    """The effect of one check on the player's Epic links."""

    LINKED = "linked"
    UNCHANGED = "unchanged"
    RELINKED = "relinked"
    RESUMED = "resumed"
    NOT_LINKED = "not_linked"
    NOT_IN_GUILD = "not_in_guild"
    CONFLICT = "conflict"
    ERROR = "error"


class IneligibleReason(enum.StrEnum):
    """A reason a player is not eligible, in the order `/status` explains them."""

    NOT_MEMBER = "not_member"
    MEMBERSHIP_UNKNOWN = "membership_unknown"
    NO_EPIC_LINK = "no_epic_link"
    EPIC_ACCOUNT_CONFLICT = "epic_account_conflict"
    NO_WALLET = "no_wallet"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of one check and the player's eligibility after it.

    After a Yunite failure (outcome ERROR) the stored state is unchanged, so `eligible` and
    `reasons` describe that state. `error_message` is then the failure's safe message, meant
    for admins; players get a generic line.
    """

    discord_id: int
    player_id: int
    outcome: VerificationOutcome
    link_status: str
    guild_member: bool | None
    epic_account_id: str | None
    eligible: bool
    reasons: tuple[IneligibleReason, ...]
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class _Check:
    """The Yunite link and membership of one Discord user, read before any database write."""

    discord_id: int
    link: YuniteLink | None
    error: YuniteError | None
    guild_member: bool | None


class VerificationService:
    """Check players against the guild and Yunite and store the result."""

    def __init__(
        self,
        db: Database,
        yunite: YuniteClient,
        membership: MembershipChecker,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._yunite = yunite
        self._membership = membership
        self._clock = clock
        self._metrics = metrics

    async def verify(
        self,
        discord_id: int,
        source: str,
        actor_discord_id: int | None = None,
        guild_member: bool | None = None,
        *,
        refresh: bool = False,
    ) -> VerificationResult:
        """Check one Discord user and store the result.

        `guild_member` is proof of membership the caller already has (the OAuth flow reads
        the user's guilds); without it the membership checker is asked. `refresh` skips
        Yunite's cached link, for admin checks and sign-ins.
        """
        _check_source(source)
        if refresh:
            self._yunite.invalidate(discord_id)

        try:
            links = await self._yunite.links_for([discord_id])
        except YuniteError as error:
            log.warning(
                "verification_yunite_failed",
                discord_id=discord_id,
                source=source,
                error_type=type(error).__name__,
            )
            check = _Check(discord_id, None, error, guild_member)
        else:
            membership = await self._membership_of(discord_id, guild_member)
            check = _Check(discord_id, links[discord_id], None, membership)

        return await self._store(check, source, actor_discord_id)

    async def verify_many(
        self, discord_ids: Sequence[int], source: str
    ) -> list[VerificationResult]:
        """Check many Discord users with batched Yunite calls; one transaction per player."""
        _check_source(source)
        wanted = list(dict.fromkeys(discord_ids))
        if not wanted:
            return []

        checks: list[_Check] = []
        try:
            links = await self._yunite.links_for(wanted)
        except YuniteError as error:
            log.warning(
                "verification_yunite_failed",
                players=len(wanted),
                source=source,
                error_type=type(error).__name__,
            )
            checks = [_Check(discord_id, None, error, None) for discord_id in wanted]
        else:
            for discord_id in wanted:
                membership = await self._membership_of(discord_id, None)
                checks.append(_Check(discord_id, links[discord_id], None, membership))

        return [await self._store(check, source, None) for check in checks]

    async def reverify_stale(
        self, max_age: timedelta, limit: int = DEFAULT_REVERIFY_LIMIT
    ) -> list[VerificationResult]:
        """Re-check up to `limit` players not verified within `max_age`, oldest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        cutoff = self._clock() - max_age
        async with self._db.read() as session:
            discord_ids = list(
                await session.scalars(
                    select(Player.discord_id)
                    .where((Player.last_verified_at.is_(None)) | (Player.last_verified_at < cutoff))
                    .order_by(Player.last_verified_at.asc().nulls_first(), Player.id)
                    .limit(limit)
                )
            )
        if not discord_ids:
            return []
        log.info("reverification_started", players=len(discord_ids))
        return await self.verify_many(discord_ids, "scheduled")

    async def prune_records(self, max_age: timedelta = RECORD_RETENTION) -> int:
        """Delete verification records older than `max_age`; return how many were deleted."""
        cutoff = self._clock() - max_age
        async with self._db.write() as session:
            outcome = await session.execute(
                delete(VerificationRecord).where(VerificationRecord.checked_at < cutoff)
            )
        deleted = int(getattr(outcome, "rowcount", 0) or 0)
        if deleted:
            log.info("verification_records_pruned", deleted=deleted)
        return deleted

    async def _membership_of(self, discord_id: int, proof: bool | None) -> bool | None:
        if proof is not None:
            return proof
        return await self._membership.is_member(discord_id)

    async def _store(
        self, check: _Check, source: str, actor_discord_id: int | None
    ) -> VerificationResult:
        # A concurrent check of the same player, or of another player claiming the same Epic
        # account, can violate a unique constraint. The retry then reads the committed rows.
        for attempt in (1, 2):
            try:
                async with self._db.write() as session:
                    return await self._apply(session, check, source, actor_discord_id)
            except IntegrityError:
                log.info(
                    "verification_conflict_retried",
                    discord_id=check.discord_id,
                    attempt=attempt,
                )
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _apply(
        self,
        session: AsyncSession,
        check: _Check,
        source: str,
        actor_discord_id: int | None,
    ) -> VerificationResult:
        now = self._clock()
        player = await get_or_create_player(session, check.discord_id, now)

        if check.error is not None or check.link is None:
            reasons = await _ineligible_reasons(session, player, conflict=False)
            error_name = type(check.error).__name__ if check.error is not None else "missing"
            result = VerificationResult(
                discord_id=check.discord_id,
                player_id=player.id,
                outcome=VerificationOutcome.ERROR,
                link_status="error",
                guild_member=player.guild_member,
                epic_account_id=None,
                eligible=not reasons,
                reasons=reasons,
                error_message=None if check.error is None else check.error.safe_message,
            )
            _add_record(session, result, source, now, detail=error_name)
            return result

        link = check.link
        guild_member = check.guild_member
        if guild_member is None:
            # Yunite lists the user under notFound exactly when they are not in its guild.
            guild_member = link.status is not LinkStatus.NOT_IN_GUILD
        returned_to_guild = guild_member and player.guild_member is False
        player.guild_member = guild_member
        player.last_verified_at = now

        if link.status is LinkStatus.LINKED:
            assert link.epic_account_id is not None
            outcome = await self._apply_linked(session, player, link, now, actor_discord_id)
        else:
            outcome = (
                VerificationOutcome.NOT_LINKED
                if link.status is LinkStatus.NOT_LINKED
                else VerificationOutcome.NOT_IN_GUILD
            )
            await deactivate_active_link(
                session, player, now, actor_discord_id, reason=outcome.value
            )
        if returned_to_guild:
            await mark_player_resumed(session, player.id, now, reason="returned_to_guild")

        reasons = await _ineligible_reasons(
            session, player, conflict=outcome is VerificationOutcome.CONFLICT
        )
        result = VerificationResult(
            discord_id=check.discord_id,
            player_id=player.id,
            outcome=outcome,
            link_status=link.status.value,
            guild_member=guild_member,
            epic_account_id=link.epic_account_id,
            eligible=not reasons,
            reasons=reasons,
        )
        _add_record(session, result, source, now, detail=outcome.value)
        log.info(
            "player_verified",
            discord_id=check.discord_id,
            player_id=player.id,
            source=source,
            outcome=outcome.value,
            eligible=result.eligible,
        )
        return result

    async def _apply_linked(
        self,
        session: AsyncSession,
        player: Player,
        link: YuniteLink,
        now: datetime,
        actor_discord_id: int | None,
    ) -> VerificationOutcome:
        epic_account_id = link.epic_account_id
        assert epic_account_id is not None

        owned = await session.scalar(
            select(EpicLink).where(EpicLink.epic_account_id == epic_account_id).with_for_update()
        )
        if owned is not None and owned.player_id != player.id:
            await self._refuse_conflict(session, player, owned, now, actor_discord_id)
            return VerificationOutcome.CONFLICT

        active = await active_link(session, player.id)
        if active is not None and active.epic_account_id == epic_account_id:
            active.date_verified = link.date_verified
            return VerificationOutcome.UNCHANGED

        previous = active
        if active is not None:
            await deactivate_link(session, active, now)

        if owned is not None:
            resumed = await reactivate_link(
                session, player, owned, previous, link, now, actor_discord_id
            )
            return VerificationOutcome.RESUMED if resumed else VerificationOutcome.RELINKED

        session.add(
            EpicLink(
                player_id=player.id,
                epic_account_id=epic_account_id,
                active=True,
                linked_at=now,
                date_verified=link.date_verified,
                stats_state=StatsState.UNREAD,
                lower_reading_count=0,
            )
        )
        await session.flush()
        if previous is None:
            log.info("epic_link_created", player_id=player.id, epic_account_id=epic_account_id)
            return VerificationOutcome.LINKED

        audit_relink(session, player, previous, epic_account_id, now, actor_discord_id)
        return VerificationOutcome.RELINKED

    async def _refuse_conflict(
        self,
        session: AsyncSession,
        player: Player,
        owned: EpicLink,
        now: datetime,
        actor_discord_id: int | None,
    ) -> None:
        # Yunite no longer reports the player's own active account, so it stops accruing.
        await deactivate_active_link(
            session, player, now, actor_discord_id, reason="epic_account_conflict"
        )
        existing = await find_open_flag(
            session,
            player_id=player.id,
            kind=EPIC_ACCOUNT_CONFLICT,
            subject_key="epic_account_id",
            subject=owned.epic_account_id,
        )
        log.warning(
            "epic_account_conflict",
            player_id=player.id,
            owner_player_id=owned.player_id,
            epic_account_id=owned.epic_account_id,
            already_flagged=existing is not None,
        )
        if existing is not None:
            return

        detail: dict[str, str | int | None] = {
            "epic_account_id": owned.epic_account_id,
            "owner_player_id": owned.player_id,
        }
        open_flag(
            session,
            player_id=player.id,
            kind=EPIC_ACCOUNT_CONFLICT,
            now=now,
            metrics=self._metrics,
            detail=detail,
        )
        record_audit(
            session,
            action="epic_account_conflict",
            at=now,
            actor_discord_id=actor_discord_id,
            player_id=player.id,
            detail=detail,
        )


async def _ineligible_reasons(
    session: AsyncSession, player: Player, *, conflict: bool
) -> tuple[IneligibleReason, ...]:
    reasons: list[IneligibleReason] = []
    if player.guild_member is None:
        reasons.append(IneligibleReason.MEMBERSHIP_UNKNOWN)
    elif not player.guild_member:
        reasons.append(IneligibleReason.NOT_MEMBER)

    if conflict:
        reasons.append(IneligibleReason.EPIC_ACCOUNT_CONFLICT)
    elif await active_link(session, player.id) is None:
        reasons.append(IneligibleReason.NO_EPIC_LINK)

    has_wallet = await session.scalar(select(Wallet.id).where(Wallet.player_id == player.id))
    if has_wallet is None:
        reasons.append(IneligibleReason.NO_WALLET)
    if player.frozen:
        reasons.append(IneligibleReason.FROZEN)
    return tuple(reasons)


def _add_record(
    session: AsyncSession,
    result: VerificationResult,
    source: str,
    now: datetime,
    *,
    detail: str,
) -> None:
    session.add(
        VerificationRecord(
            player_id=result.player_id,
            checked_at=now,
            source=source,
            guild_member=result.guild_member,
            link_status=result.link_status,
            epic_account_id=result.epic_account_id,
            eligible=result.eligible,
            detail=detail,
        )
    )


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(
            f"unknown verification source {source!r}; expected one of {sorted(SOURCES)}"
        )


async def mark_left_guild(db: Database, discord_id: int) -> bool:
    """Record that a member left the guild (from a gateway event); returns whether it changed.

    The player stops accruing and is not paid until a later check finds them in the guild.
    """
    async with db.write() as session:
        outcome = await session.execute(
            update(Player)
            .where(Player.discord_id == discord_id, Player.guild_member.is_not(False))
            .values(guild_member=False)
        )
    changed = bool(getattr(outcome, "rowcount", 0))
    if changed:
        log.info("player_left_guild", discord_id=discord_id)
    return changed
