"""Settings from payout.yaml: how much a kill pays, how often settlement runs, and the caps."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from core.banano.units import parse_ban
from core.config.base import ConfigModel
from core.config.fields import (
    BanPerKill,
    Expected,
    Minutes,
    NonNegativeInt,
    PositiveInt,
    PositiveSeconds,
)


def _check_time_zone(name: str) -> str:
    # zoneinfo raises OSError subclasses for names that are directories of the zone database
    # (such as "America") or too long for a file name, besides its own not-found error.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("not a known IANA time zone") from None
    return name


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_time_zone),
    Expected("an IANA time zone name such as UTC or Europe/Berlin"),
]
SettlementOrder = Annotated[Literal["random", "oldest_first"], Expected("random or oldest_first")]


class ResetRule(ConfigModel):
    """When kill counts below the cursor count as a real reset of the stats."""

    lower_readings: PositiveInt = Field(
        description=(
            "How many readings in a row below the cursor make a real reset, which moves the "
            "baseline and the cursor down to the new kill count."
        )
    )


class PayoutSettings(ConfigModel):
    """Contents of payout.yaml."""

    payout_amount_ban_per_kill: BanPerKill = Field(
        description="BAN paid for each kill, read exactly from its decimal text."
    )
    scheduler_minutes: Minutes = Field(description="Minutes between settlement runs.")
    daily_payout_cap: NonNegativeInt = Field(
        description="Payouts per player per day that did not fail; 0 allows no payouts."
    )
    weekly_payout_cap: NonNegativeInt = Field(
        description="Payouts per player per week that did not fail; 0 allows no payouts."
    )
    reset_tz: TimeZoneName = Field(
        description="Time zone whose midnight starts a cap day and whose Monday starts a week."
    )
    settlement_order: SettlementOrder = Field(
        description=(
            "Order in which a settlement reaches players: random over all eligible players, "
            "or the oldest open accrual first."
        )
    )
    batch_size: NonNegativeInt = Field(
        description="Most players paid in one settlement run; 0 means no limit."
    )
    daily_kill_cap: NonNegativeInt = Field(
        description="Most kills paid per player per day; 0 means no kill cap."
    )
    weekly_kill_cap: NonNegativeInt = Field(
        description="Most kills paid per player per week; 0 means no kill cap."
    )
    confirmation_timeout_seconds: PositiveSeconds = Field(
        description=(
            "Seconds after which a submitted block that is not confirmed is resubmitted "
            "and reported."
        )
    )
    reset_rule: ResetRule = Field(description="Rule for kill counts that go down.")

    @property
    def payout_amount_raw_per_kill(self) -> int:
        """Raw paid for each kill, exact."""
        return parse_ban(self.payout_amount_ban_per_kill)

    @property
    def zone(self) -> ZoneInfo:
        """Time zone of the cap windows."""
        return ZoneInfo(self.reset_tz)
