"""Row builders for the query service tests: players with their links, accruals and payouts."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import (
    AbuseFlag,
    AbuseFlagStatus,
    Accrual,
    AccrualStatus,
    EpicLink,
    Payout,
    PayoutState,
    PeriodTotal,
    Player,
    StatsState,
    VerificationRecord,
    Wallet,
)

NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)  # a Wednesday
RAW_PER_BAN = 10**29
# A raw amount whose float rounding would show: 2.1 BAN plus 1 raw.
ODD_RAW = 21 * 10**28 + 1

_sequence = itertools.count(1)
# Decimal digits to characters of the Banano address alphabet, one to one.
_ADDRESS_DIGITS = str.maketrans("0123456789", "3456789abc")


def address_for(discord_id: int) -> str:
    """Return a distinct, well-formed-looking wallet address for a test player."""
    digits = str(discord_id).translate(_ADDRESS_DIGITS)
    return "ban_1" + digits.rjust(59, "1")


def epic_id(number: int) -> str:
    """Return a 32-hex-digit Epic account ID."""
    return f"{number:032x}"


async def add_player(
    session: AsyncSession,
    discord_id: int,
    *,
    guild_member: bool | None = True,
    wallet: bool = True,
    epic_account: str | None = "default",
    stats_state: StatsState = StatsState.OK,
    frozen: bool = False,
    frozen_reason: str | None = None,
    last_verified_at: datetime | None = NOW,
) -> Player:
    """Add an eligible player by default; each keyword turns one requirement off."""
    player = Player(
        discord_id=discord_id,
        created_at=NOW,
        guild_member=guild_member,
        last_verified_at=last_verified_at,
        frozen=frozen,
        frozen_reason=frozen_reason,
        frozen_at=NOW if frozen else None,
        frozen_by=42 if frozen else None,
        payout_dms=True,
    )
    session.add(player)
    await session.flush()
    if wallet:
        session.add(
            Wallet(
                player_id=player.id,
                address=address_for(discord_id),
                created_at=NOW,
                updated_at=NOW,
            )
        )
    if epic_account is not None:
        account = epic_id(discord_id) if epic_account == "default" else epic_account
        session.add(
            EpicLink(
                player_id=player.id,
                epic_account_id=account,
                active=True,
                linked_at=NOW,
                baseline_kills=100,
                cursor_kills=100,
                stats_state=stats_state,
                lower_reading_count=0,
            )
        )
    await session.flush()
    return player


async def add_accrual(
    session: AsyncSession,
    player: Player,
    kills: int,
    *,
    raw_per_kill: int = ODD_RAW,
    status: AccrualStatus = AccrualStatus.OPEN,
    payout: Payout | None = None,
    created_at: datetime = NOW,
) -> Accrual:
    """Add an accrual of `kills` kills, claimed by `payout` when given."""
    accrual = Accrual(
        player_id=player.id,
        epic_account_id=epic_id(player.discord_id),
        kills=kills,
        raw_per_kill=raw_per_kill,
        amount_raw=kills * raw_per_kill,
        status=status,
        payout_id=None if payout is None else payout.id,
        cursor_from=0,
        cursor_to=kills,
        created_at=created_at,
    )
    session.add(accrual)
    await session.flush()
    return accrual


async def add_payout(
    session: AsyncSession,
    player: Player,
    amount_raw: int,
    *,
    state: PayoutState = PayoutState.CONFIRMED,
    kills: int = 1,
    created_at: datetime = NOW,
    block_hash: str | None = None,
) -> Payout:
    """Add a payout in `state`; a dry-run state gets a dry-run reference as its hash."""
    key = f"key-{next(_sequence):08d}"
    dry_run = state is PayoutState.DRY_RUN
    if block_hash is None and state is not PayoutState.PENDING:
        block_hash = f"dryrun-{key}" if dry_run else f"{next(_sequence):064X}"
    payout = Payout(
        player_id=player.id,
        destination=address_for(player.discord_id),
        amount_raw=amount_raw,
        kills=kills,
        state=state,
        dry_run=dry_run,
        idempotency_key=key,
        block_hash=block_hash,
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(payout)
    await session.flush()
    return payout


async def add_period_total(
    session: AsyncSession,
    player: Player,
    period: str,
    start: date,
    *,
    kills: int = 0,
    paid_raw: int = 0,
) -> None:
    """Add one leaderboard row."""
    session.add(
        PeriodTotal(
            period=period,
            period_start=start,
            player_id=player.id,
            kills=kills,
            paid_raw=paid_raw,
        )
    )
    await session.flush()


async def add_flag(
    session: AsyncSession,
    player: Player,
    *,
    status: AbuseFlagStatus = AbuseFlagStatus.OPEN,
    kind: str = "kill_rate",
) -> AbuseFlag:
    """Add an abuse flag without an accrual."""
    flag = AbuseFlag(player_id=player.id, kind=kind, detail="{}", status=status, created_at=NOW)
    session.add(flag)
    await session.flush()
    return flag


async def add_verification(
    session: AsyncSession, player: Player, detail: str, *, checked_at: datetime = NOW
) -> None:
    """Add a verification record whose detail is the check's outcome."""
    session.add(
        VerificationRecord(
            player_id=player.id,
            checked_at=checked_at,
            source="command",
            guild_member=player.guild_member,
            link_status="linked",
            epic_account_id=None,
            eligible=False,
            detail=detail,
        )
    )
    await session.flush()


class FixedClock:
    """A clock that returns the time a test sets."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now
