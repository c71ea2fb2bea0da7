"""Building blocks for command tests: settings, services over a real database, mock interactions."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock, create_autospec

import discord
from pydantic import SecretStr

from bot.app import build_cog_services
from bot.runtime import Services
from cogs.common import CogServices, WorkTracker
from core.clock import Clock
from core.config import Settings, load_settings
from core.db import Database
from core.i18n import MessageCatalog
from core.integrations import RateLimiter, StatsClient, YuniteClient, create_http_client
from core.observability import Metrics
from core.services.abuse import AbuseService
from core.services.players import PlayerService
from core.services.poller import Poller, PollerSettings
from core.services.settlement import SettlementPolicy, SettlementService
from core.services.verification import VerificationService

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"

GUILD_ID = 400_000_000_000_000_001
OTHER_GUILD_ID = 400_000_000_000_000_002
ADMIN_ROLE_ID = 400_000_000_000_000_010
ADMIN_USER_ID = 400_000_000_000_000_011
MEMBER_ROLE_ID = 400_000_000_000_000_012
PLAYER_ID = 400_000_000_000_000_100
OTHER_PLAYER_ID = 400_000_000_000_000_101
ROLE_ADMIN_ID = 400_000_000_000_000_102

YUNITE_KEY = "yunite-test-key-0123456789"
STATS_KEY = "stats-test-key-0123456789"

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def make_settings(overrides: Mapping[str, str] | None = None, **urls: str) -> Settings:
    """Load the shipped configuration with a test guild, admins and loopback URLs."""
    environ = {
        "YUNITE_API_KEY": YUNITE_KEY,
        "FORTNITE_API_KEY": STATS_KEY,
        "P2S_INTEGRATIONS__DISCORD_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_API_URL": urls.get("yunite", "http://127.0.0.1:9/api/v3"),
        "P2S_INTEGRATIONS__FORTNITE_API_URL": urls.get("stats", "http://127.0.0.1:9"),
        "P2S_INTEGRATIONS__YUNITE_CACHE_SECONDS": "0",
        "P2S_INTEGRATIONS__DISCORD__ADMIN_ROLE_IDS": f"[{ADMIN_ROLE_ID}]",
        "P2S_INTEGRATIONS__DISCORD__ADMIN_USER_IDS": f"[{ADMIN_USER_ID}]",
        "P2S_INTEGRATIONS__SERVER__PORT": "0",
    }
    environ.update(overrides or {})
    return load_settings(CONFIG_DIR, environ)


class FakeMembership:
    """Membership results set by the test. Users the test did not set are not members."""

    def __init__(self, members: Mapping[int, bool | None] | None = None) -> None:
        self.members: dict[int, bool | None] = dict(members or {})
        self.asked: list[int] = []

    async def is_member(self, discord_id: int) -> bool | None:
        """Return the result the test set for this user."""
        self.asked.append(discord_id)
        return self.members.get(discord_id, False)


async def open_test_services(
    db: Database,
    settings: Settings,
    stack: AsyncExitStack,
    *,
    clock: Clock,
    membership: FakeMembership | None = None,
) -> Services:
    """Build `Services` over `db` the way `open_services` does, without a Banano node."""
    metrics = Metrics()
    http = create_http_client()
    stack.push_async_callback(http.aclose)
    integrations = settings.integrations
    assert integrations.yunite_api_key is not None
    assert integrations.fortnite_api_key is not None

    yunite = YuniteClient(
        http,
        integrations.yunite_api_url,
        integrations.yunite_api_key,
        GUILD_ID,
        cache_seconds=0,
        clock=clock,
    )
    stats = StatsClient(
        http,
        integrations.fortnite_api_url,
        SecretStr(STATS_KEY),
        RateLimiter(integrations.rate_limits.fortnite_per_min),
        clock,
    )
    verification = VerificationService(db, yunite, membership or FakeMembership(), clock, metrics)
    return Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        db=db,
        http=http,
        node=None,
        operator_address=None,
        yunite=yunite,
        stats=stats,
        players=PlayerService(db, clock, metrics),
        verification=verification,
        poller=Poller(
            db, stats, PollerSettings.from_config(settings.payout, integrations), clock, metrics
        ),
        settlement=SettlementService(
            db,
            SettlementPolicy.from_settings(settings.payout, integrations),
            metrics=metrics,
            clock=clock,
        ),
        abuse=AbuseService(db, settings.payout.zone, clock),
        oauth=None,
        exit_stack=AsyncExitStack(),
    )


def cog_services_for(services: Services, *, confirm_timeout_seconds: float = 5.0) -> CogServices:
    """Build the cogs' services the way the bot does, with a short confirmation time-out."""
    cog_services = build_cog_services(
        services,
        MessageCatalog.load(services.settings.product.default_locale, strict=True),
        lambda: None,
        WorkTracker(),
    )
    return dataclasses.replace(cog_services, confirm_timeout_seconds=confirm_timeout_seconds)


def mock_interaction(
    user_id: int,
    *,
    guild_id: int | None = GUILD_ID,
    role_ids: tuple[int, ...] = (),
    locale: discord.Locale = discord.Locale.american_english,
) -> Any:
    """Return a spec'd mock interaction whose response tracks whether it was sent."""
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.id = 1_000_000 + user_id % 1000
    interaction.guild_id = guild_id
    interaction.locale = locale
    interaction.type = discord.InteractionType.application_command
    interaction.extras = {}

    if guild_id is None:
        user = create_autospec(discord.User, instance=True)
    else:
        user = create_autospec(discord.Member, instance=True)
        roles = []
        for role_id in role_ids:
            role = create_autospec(discord.Role, instance=True)
            role.id = role_id
            roles.append(role)
        user.roles = roles
    user.id = user_id
    user.mention = f"<@{user_id}>"
    interaction.user = user

    answered = {"done": False}
    response = create_autospec(discord.InteractionResponse, instance=True)

    def mark_done(*_: object, **__: object) -> None:
        answered["done"] = True

    response.is_done.side_effect = lambda: answered["done"]
    response.defer.side_effect = mark_done
    response.send_message.side_effect = mark_done
    interaction.response = response
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    return interaction


def last_embed(interaction: Any) -> discord.Embed:
    """Return the embed of the interaction's latest reply or edit."""
    for mock in (interaction.edit_original_response, interaction.response.send_message):
        if mock.await_args is not None:
            embed = mock.await_args.kwargs.get("embed")
            if isinstance(embed, discord.Embed):
                return embed
    raise AssertionError("the interaction got no embed")


def embed_text(embed: discord.Embed) -> str:
    """Return the title, description and every field of an embed as one text."""
    parts = [embed.title or "", embed.description or ""]
    for embed_field in embed.fields:
        parts.extend([embed_field.name or "", embed_field.value or ""])
    return "\n".join(parts)


def member_mock(user_id: int) -> Any:
    """Return a spec'd member for a USER option."""
    member = create_autospec(discord.Member, instance=True)
    member.id = user_id
    return member


async def wait_for_view(mock: AsyncMock | MagicMock) -> discord.ui.View:
    """Wait up to 5 seconds until `mock` was awaited with a `view=` and return that view."""
    async with asyncio.timeout(5):
        while True:
            for call in mock.await_args_list:
                view = call.kwargs.get("view")
                if isinstance(view, discord.ui.View):
                    return view
            await asyncio.sleep(0.01)
