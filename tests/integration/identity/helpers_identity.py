"""Helpers for the identity tests: a movable clock, IDs, wallets and a wired-up environment."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select

from core.banano.address import encode_address
from core.db import Database
from core.db.models import Accrual, EpicLink, Player
from core.integrations.fortnite import StatsClient
from core.integrations.yunite import YuniteClient
from core.observability.metrics import Metrics
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite
from core.services.accrual import AbusePolicy
from core.services.players import PlayerService
from core.services.poller import Poller, PollerSettings
from core.services.verification import VerificationResult, VerificationService

START = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
GUILD_ID = 500000000000000001
RAW_PER_KILL = 21 * 10**28  # 2.1 BAN
STATS_API_KEY = "sandbox-stats-key-0123456789"
YUNITE_TOKEN = "sandbox-yunite-token-0123456789"


class FakeClock:
    """A wall clock and monotonic timer that move only when a test moves them."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._monotonic = 1_000.0
        self.pauses: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0) -> None:
        total = seconds + minutes * 60
        self._now += timedelta(seconds=total)
        self._monotonic += total


def discord_id(number: int) -> int:
    """Return a Discord snowflake for test player `number`."""
    return 400000000000000000 + number


def epic_id(label: str) -> str:
    """Return a stable 32-hex Epic account ID for `label`."""
    return hashlib.sha256(label.encode()).hexdigest()[:32]


def wallet(label: str) -> str:
    """Return a valid `ban_` address derived from `label`."""
    return encode_address(hashlib.sha256(b"wallet:" + label.encode()).digest())


class StaticMembership:
    """A membership checker answering from a dict; unknown users are members."""

    def __init__(self) -> None:
        self.answers: dict[int, bool | None] = {}
        self.calls: list[int] = []

    async def is_member(self, discord_id: int) -> bool | None:
        self.calls.append(discord_id)
        return self.answers.get(discord_id, True)


@dataclass
class IdentityEnv:
    """Sandboxes, clients and services wired to one database and one fake clock."""

    db: Database
    clock: FakeClock
    metrics: Metrics
    stats: SandboxStats
    yunite: SandboxYunite
    http: httpx.AsyncClient
    stats_client: StatsClient
    yunite_client: YuniteClient
    membership: StaticMembership
    players: PlayerService
    verification: VerificationService
    settings: PollerSettings
    poller: Poller
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def add_eligible(self, number: int, epic_label: str, kills: int = 0) -> int:
        """Define a linked guild member with a wallet and verify them; return the Discord ID."""
        player_discord_id = discord_id(number)
        epic_account_id = epic_id(epic_label)
        self.yunite.add_player(player_discord_id, epic_account_id)
        self.stats.add_player(epic_account_id, kills)
        await self.players.link_wallet(player_discord_id, wallet(f"p{number}"), None, False)
        result = await self.verify(player_discord_id)
        assert result.eligible, result
        return player_discord_id

    async def verify(self, player_discord_id: int, **kwargs: Any) -> VerificationResult:
        return await self.verification.verify(player_discord_id, "command", **kwargs)

    async def link_of(self, epic_label: str) -> EpicLink:
        async with self.db.read() as session:
            link = await session.scalar(
                select(EpicLink).where(EpicLink.epic_account_id == epic_id(epic_label))
            )
        assert link is not None
        return link

    async def accruals_of(self, player_discord_id: int) -> list[Accrual]:
        async with self.db.read() as session:
            return list(
                await session.scalars(
                    select(Accrual)
                    .join(Player, Player.id == Accrual.player_id)
                    .where(Player.discord_id == player_discord_id)
                    .order_by(Accrual.id)
                )
            )

    async def count(self, model: Any) -> int:
        async with self.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def poller_settings(readings_per_minute: int = 60, lower_readings: int = 3) -> PollerSettings:
    return PollerSettings(
        raw_per_kill=RAW_PER_KILL,
        reset_lower_readings=lower_readings,
        zone=ZoneInfo("UTC"),
        readings_per_minute=readings_per_minute,
        abuse_policy=AbusePolicy(kill_rate_per_min=Decimal(10)),
    )
