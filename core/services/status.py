"""The data behind `/status`: eligibility checklist, earnings, caps and latest payouts.

One status costs one indexed statement, `status_query.load_status_data`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.db.models import StatsState
from core.db.session import Database
from core.services.caps import CapLimits, cap_windows
from core.services.faucet_flags import paused_from_flag
from core.services.history import PayoutSummary
from core.services.status_query import load_status_data
from core.services.verification import VerificationOutcome

LATEST_PAYOUTS = 5


class CheckName(enum.StrEnum):
    """Items of the eligibility checklist, in the order `/status` shows them."""

    GUILD_MEMBER = "guild_member"
    EPIC_LINK = "epic_link"
    STATS_READABLE = "stats_readable"
    WALLET_LINKED = "wallet_linked"
    NOT_FROZEN = "not_frozen"


# Readable stats are needed to earn but are not part of eligibility: a private profile
# accrues nothing, yet the player may still be paid what they already earned.
ELIGIBILITY_CHECKS = frozenset(
    {CheckName.GUILD_MEMBER, CheckName.EPIC_LINK, CheckName.WALLET_LINKED, CheckName.NOT_FROZEN}
)


class CheckReason(enum.StrEnum):
    """Reason code of a checklist item: `ok` when it passed, else the cause of the failure."""

    OK = "ok"
    NOT_MEMBER = "not_member"
    MEMBERSHIP_UNKNOWN = "membership_unknown"
    NO_EPIC_LINK = "no_epic_link"
    EPIC_ACCOUNT_CONFLICT = "epic_account_conflict"
    PRIVATE = "private"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    UNREAD = "unread"
    NO_WALLET = "no_wallet"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class EligibilityCheck:
    """One checklist item and the reason it passed or failed."""

    name: CheckName
    passed: bool
    reason: CheckReason


@dataclass(frozen=True, slots=True)
class CapCount:
    """Use of one cap in its current window; `limit` None means no limit."""

    used: int
    limit: int | None

    @property
    def left(self) -> int | None:
        """How many more fit in the window, or None without a limit."""
        if self.limit is None:
            return None
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class CapStatus:
    """Payouts and kills paid in the current day and week, and when those windows end."""

    payouts_today: CapCount
    payouts_this_week: CapCount
    kills_today: CapCount
    kills_this_week: CapCount
    day_ends_at: datetime
    week_ends_at: datetime


@dataclass(frozen=True, slots=True)
class PlayerStatus:
    """Everything `/status` shows one player; amounts in raw.

    `open_raw` is open and not claimed by any payout, `in_flight_raw` is in payouts that are
    not final yet, `paid_total_raw` is in confirmed payouts and `dry_run_total_raw` in
    dry-run payouts, which sent nothing. `kills_counted` is every kill turned into an accrual
    that is open or held, since the baseline of each Epic account.
    """

    discord_id: int
    player_id: int
    checks: tuple[EligibilityCheck, ...]
    eligible: bool
    stats_state: StatsState | None
    wallet_address: str | None
    frozen_reason: str | None
    kills_counted: int
    open_raw: int
    held_raw: int
    in_flight_raw: int
    paid_total_raw: int
    dry_run_total_raw: int
    caps: CapStatus
    next_settlement_at: datetime | None
    latest_payouts: tuple[PayoutSummary, ...]
    dry_run: bool
    paused: bool
    last_verified_at: datetime | None
    checked_at: datetime

    def check(self, name: CheckName) -> EligibilityCheck:
        """Return the checklist item called `name`."""
        for item in self.checks:
            if item.name is name:
                return item
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class StatusPolicy:
    """The settings a status reads: caps, their time zone and whether this is a dry run."""

    limits: CapLimits
    zone: ZoneInfo
    dry_run: bool

    @classmethod
    def from_settings(
        cls, payout_settings: PayoutSettings, integration_settings: IntegrationsSettings
    ) -> StatusPolicy:
        """Build the policy the way settlement reads the same settings."""
        return cls(
            limits=CapLimits(
                daily_payouts=payout_settings.daily_payout_cap,
                weekly_payouts=payout_settings.weekly_payout_cap,
                daily_kills=payout_settings.daily_kill_cap,
                weekly_kills=payout_settings.weekly_kill_cap,
            ),
            zone=payout_settings.zone,
            dry_run=integration_settings.dry_run,
        )


def eligibility_checks(
    *,
    guild_member: bool | None,
    has_epic_link: bool,
    epic_account_conflict: bool,
    stats_state: StatsState | None,
    has_wallet: bool,
    frozen: bool,
) -> tuple[EligibilityCheck, ...]:
    """Build the checklist from a player's stored state."""
    if guild_member is None:
        member = EligibilityCheck(CheckName.GUILD_MEMBER, False, CheckReason.MEMBERSHIP_UNKNOWN)
    elif guild_member:
        member = EligibilityCheck(CheckName.GUILD_MEMBER, True, CheckReason.OK)
    else:
        member = EligibilityCheck(CheckName.GUILD_MEMBER, False, CheckReason.NOT_MEMBER)

    if has_epic_link:
        link = EligibilityCheck(CheckName.EPIC_LINK, True, CheckReason.OK)
    elif epic_account_conflict:
        link = EligibilityCheck(CheckName.EPIC_LINK, False, CheckReason.EPIC_ACCOUNT_CONFLICT)
    else:
        link = EligibilityCheck(CheckName.EPIC_LINK, False, CheckReason.NO_EPIC_LINK)

    if not has_epic_link or stats_state is None:
        stats = EligibilityCheck(CheckName.STATS_READABLE, False, CheckReason.NO_EPIC_LINK)
    elif stats_state is StatsState.OK:
        stats = EligibilityCheck(CheckName.STATS_READABLE, True, CheckReason.OK)
    else:
        stats = EligibilityCheck(CheckName.STATS_READABLE, False, CheckReason(stats_state.value))

    wallet = EligibilityCheck(
        CheckName.WALLET_LINKED,
        has_wallet,
        CheckReason.OK if has_wallet else CheckReason.NO_WALLET,
    )
    not_frozen = EligibilityCheck(
        CheckName.NOT_FROZEN, not frozen, CheckReason.FROZEN if frozen else CheckReason.OK
    )
    return (member, link, stats, wallet, not_frozen)


def is_eligible(checks: Sequence[EligibilityCheck]) -> bool:
    """Return whether every item that decides eligibility passed."""
    return all(item.passed for item in checks if item.name in ELIGIBILITY_CHECKS)


def _window_ends(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    windows = cap_windows(at, zone)
    next_day = windows.day_start.date() + timedelta(days=1)
    next_week = windows.week_start.date() + timedelta(days=7)
    return (
        datetime.combine(next_day, time(0), tzinfo=zone).astimezone(UTC),
        datetime.combine(next_week, time(0), tzinfo=zone).astimezone(UTC),
    )


async def read_player_status(
    session: AsyncSession,
    discord_id: int,
    *,
    policy: StatusPolicy,
    now: datetime,
    next_settlement_at: datetime | None,
) -> PlayerStatus | None:
    """Read one player's status inside the caller's session; None for an unknown player."""
    data = await load_status_data(
        session,
        discord_id,
        cap_windows(now, policy.zone),
        include_dry_run=policy.dry_run,
        latest_limit=LATEST_PAYOUTS,
        dialect=session.get_bind().dialect.name,
    )
    if data is None:
        return None
    player, totals = data.player, data.totals

    has_epic_link = player.epic_account_id is not None
    checks = eligibility_checks(
        guild_member=player.guild_member,
        has_epic_link=has_epic_link,
        epic_account_conflict=player.last_check_detail == VerificationOutcome.CONFLICT.value,
        stats_state=player.stats_state,
        has_wallet=player.wallet_address is not None,
        frozen=player.frozen,
    )

    usage = totals.usage
    limits = policy.limits
    day_ends_at, week_ends_at = _window_ends(now, policy.zone)
    caps = CapStatus(
        payouts_today=CapCount(usage.payouts_today, limits.daily_payouts),
        payouts_this_week=CapCount(usage.payouts_this_week, limits.weekly_payouts),
        kills_today=CapCount(usage.kills_today, limits.daily_kills or None),
        kills_this_week=CapCount(usage.kills_this_week, limits.weekly_kills or None),
        day_ends_at=day_ends_at,
        week_ends_at=week_ends_at,
    )

    return PlayerStatus(
        discord_id=discord_id,
        player_id=player.player_id,
        checks=checks,
        eligible=is_eligible(checks),
        stats_state=player.stats_state,
        wallet_address=player.wallet_address,
        frozen_reason=player.frozen_reason if player.frozen else None,
        kills_counted=totals.kills_counted,
        open_raw=totals.open_raw,
        held_raw=totals.held_raw,
        in_flight_raw=totals.in_flight_raw,
        paid_total_raw=totals.paid_total_raw,
        dry_run_total_raw=totals.dry_run_total_raw,
        caps=caps,
        next_settlement_at=next_settlement_at,
        latest_payouts=data.latest_payouts,
        dry_run=policy.dry_run,
        paused=paused_from_flag(player.paused_flag),
        last_verified_at=player.last_verified_at,
        checked_at=now,
    )


class StatusService:
    """Read what `/status` shows."""

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

    @property
    def policy(self) -> StatusPolicy:
        """The caps, time zone and dry-run setting this service reads with."""
        return self._policy

    async def player_status(
        self, discord_id: int, next_settlement_at: datetime | None
    ) -> PlayerStatus | None:
        """Return the player's status, or None when the faucet has no such player."""
        async with self._db.read() as session:
            return await read_player_status(
                session,
                discord_id,
                policy=self._policy,
                now=self._clock(),
                next_settlement_at=next_settlement_at,
            )
