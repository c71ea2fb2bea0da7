"""Real `discord.Interaction` objects dispatched through the bot's command tree.

These cover what only the tree does: option parsing, checks, cooldowns, the error handler,
ephemeral flags and deferral. The replies are captured by the harness's fake webhook adapter.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
import structlog
from discord import app_commands
from sqlalchemy import func, select

from bot.app import Pay2SlayBot
from bot.runtime import Services
from cogs.common import CogServices
from core.banano.address import BURN_ADDRESS, encode_address
from core.db.models import AuditEntry
from core.i18n import MessageCatalog
from core.observability import Metrics
from core.services.faucet_flags import is_paused
from tests.unit.cogs.harness import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    PINNED_DISCORD_VERSION,
    InteractionHarness,
    Invoker,
    Reply,
    integer_option,
    string_option,
    user_option,
)
from tests.unit.cogs.helpers_cogs import (
    ADMIN_ROLE_ID,
    ADMIN_USER_ID,
    GUILD_ID,
    MEMBER_ROLE_ID,
    OTHER_PLAYER_ID,
    PLAYER_ID,
    ROLE_ADMIN_ID,
)

PLAYER = Invoker(PLAYER_ID, GUILD_ID, role_ids=(MEMBER_ROLE_ID,))
ADMIN = Invoker(ADMIN_USER_ID, GUILD_ID)
ROLE_ADMIN = Invoker(ROLE_ADMIN_ID, GUILD_ID, role_ids=(ADMIN_ROLE_ID,))

# Every admin command with options that parse, so only the admin check can stop it.
ADMIN_CALLS: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("reverify", [user_option("member", OTHER_PLAYER_ID)], True),
    ("payout-retry", [integer_option("payout", 1)], False),
    ("payouts-pause", [string_option("reason", "test")], False),
    ("payouts-resume", [], False),
    ("settle-now", [], False),
    ("freeze", [user_option("member", OTHER_PLAYER_ID), string_option("reason", "x")], True),
    ("unfreeze", [user_option("member", OTHER_PLAYER_ID)], True),
    ("abuse-flags", [], False),
    ("abuse-resolve", [integer_option("flag", 1), string_option("action", "release")], False),
    ("player-lookup", [user_option("member", OTHER_PLAYER_ID)], True),
    ("faucet-health", [], False),
]


@pytest.fixture
async def bot(cog_services: CogServices) -> AsyncIterator[Pay2SlayBot]:
    client = Pay2SlayBot(
        cog_services.settings,
        metrics=Metrics(),
        catalog=cog_services.catalog,
        commands_only=True,
    )
    client.cog_services = cog_services
    # Entering the client binds it to the running loop, as `start()` would, without a login.
    async with client:
        await client.load_extension("cogs.player")
        await client.load_extension("cogs.admin")
        yield client


@pytest.fixture
def harness(bot: Pay2SlayBot) -> InteractionHarness:
    return InteractionHarness(bot)


def catalog_text(key: str, locale: str = "en", **params: object) -> str:
    return MessageCatalog.load().text(key, locale, **params)


def wallet() -> str:
    return encode_address(secrets.token_bytes(32))


async def audit_count(services: Services) -> int:
    async with services.db.read() as session:
        return int(await session.scalar(select(func.count(AuditEntry.id))) or 0)


def test_discord_version_is_the_pinned_one() -> None:
    # The harness uses private discord.py API; recheck it before changing this version.
    assert discord.__version__ == PINNED_DISCORD_VERSION


async def test_status_defers_ephemeral_then_edits(harness: InteractionHarness) -> None:
    replies = await harness.run_command("status", PLAYER)

    assert [reply.kind for reply in replies] == ["response", "edit_original"]
    assert replies[0].response_type == DEFERRED_CHANNEL_MESSAGE
    assert replies[0].ephemeral
    assert catalog_text("status.not_registered") in replies[1].text


async def test_replies_mention_nobody(harness: InteractionHarness) -> None:
    replies = await harness.run_command("link-wallet", PLAYER, [string_option("address", wallet())])

    final = replies[-1]
    assert final.allowed_mentions == {"parse": []}


async def test_link_wallet_option_is_parsed(harness: InteractionHarness) -> None:
    address = wallet()

    replies = await harness.run_command("link-wallet", PLAYER, [string_option("address", address)])

    assert address in replies[-1].text


async def test_invalid_address_is_localized(harness: InteractionHarness) -> None:
    spanish = Invoker(PLAYER_ID, GUILD_ID, locale="es-ES")

    replies = await harness.run_command(
        "link-wallet", spanish, [string_option("address", BURN_ADDRESS)]
    )

    assert catalog_text("link_wallet.invalid.burn", "es") in replies[-1].text
    assert replies[-1].kind == "edit_original"


async def test_value_outside_choices_is_refused(harness: InteractionHarness) -> None:
    with structlog.testing.capture_logs() as logs:
        replies = await harness.run_command(
            "abuse-resolve", ADMIN, [integer_option("flag", 1), string_option("action", "delete")]
        )

    assert len(replies) == 1
    assert replies[0].response_type == CHANNEL_MESSAGE
    assert replies[0].ephemeral
    warnings = [entry for entry in logs if entry["event"] == "command_option_invalid"]
    assert len(warnings) == 1
    assert warnings[0]["incident_id"] in replies[0].text


async def test_page_below_range_shows_first_page(harness: InteractionHarness) -> None:
    # Discord enforces the option's minimum; a page past either end is clamped anyway.
    replies = await harness.run_command("payouts", PLAYER, [integer_option("page", 0)])

    assert catalog_text("history.empty") in replies[-1].text


async def test_cooldown_says_how_long(harness: InteractionHarness) -> None:
    await harness.run_command("status", PLAYER)

    replies = await harness.run_command("status", PLAYER)

    assert len(replies) == 1
    assert replies[0].ephemeral
    assert "Try again in 5 seconds" in replies[0].text


async def test_direct_message_is_refused(harness: InteractionHarness) -> None:
    replies = await harness.run_command("status", Invoker(PLAYER_ID, None))

    assert replies[0].ephemeral
    assert catalog_text("errors.guild_only") in replies[0].text


@pytest.mark.parametrize(("name", "options", "resolves_member"), ADMIN_CALLS)
async def test_non_admin_refused_every_admin_command(
    harness: InteractionHarness,
    services: Services,
    name: str,
    options: list[dict[str, Any]],
    resolves_member: bool,
) -> None:
    resolved = [(OTHER_PLAYER_ID, ())] if resolves_member else []
    # Administrator permission, so Discord itself would let this member run the command.
    intruder = Invoker(PLAYER_ID, GUILD_ID, role_ids=(MEMBER_ROLE_ID,), permissions=8)

    replies = await harness.run_command(name, intruder, options, resolved)

    assert len(replies) == 1
    assert replies[0].ephemeral
    assert catalog_text("errors.not_admin") in replies[0].text
    assert await audit_count(services) == 0


def test_admin_calls_cover_every_admin_command(bot: Pay2SlayBot) -> None:
    admin_cog = bot.get_cog("AdminCog")
    assert admin_cog is not None
    names = {command.name for command in admin_cog.walk_app_commands()}

    assert names == {name for name, _, _ in ADMIN_CALLS}


async def test_admin_role_runs_admin_command(harness: InteractionHarness) -> None:
    replies = await harness.run_command("faucet-health", ROLE_ADMIN)

    assert replies[0].response_type == DEFERRED_CHANNEL_MESSAGE
    assert catalog_text("health.title") in replies[-1].text


async def test_unexpected_error_gets_incident_id(
    harness: InteractionHarness, cog_services: CogServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(cog_services.status, "player_status", broken)

    with structlog.testing.capture_logs() as logs:
        replies = await harness.run_command("status", PLAYER)

    text = replies[-1].text
    assert "hunter2" not in text
    assert replies[-1].kind == "edit_original"
    failures = [entry for entry in logs if entry["event"] == "command_failed_unexpected"]
    assert len(failures) == 1
    assert failures[0]["incident_id"] in text
    assert isinstance(failures[0]["exc_info"], RuntimeError)


async def test_unexpected_error_before_reply(harness: InteractionHarness, bot: Pay2SlayBot) -> None:
    interaction = harness.build_command("status", PLAYER)
    command = bot.tree.get_command("status")
    assert isinstance(command, app_commands.Command)
    error = app_commands.CommandInvokeError(command, KeyError("token"))

    with harness.adapter_installed():
        await bot.tree.on_error(interaction, error)

    reply = harness.replies[-1]
    assert reply.response_type == CHANNEL_MESSAGE
    assert reply.ephemeral
    assert "token" not in reply.text
    assert "incident ID" in reply.text


async def test_recheck_button_defers_update(harness: InteractionHarness) -> None:
    await harness.run_command("link-wallet", PLAYER, [string_option("address", wallet())])
    await harness.run_command("status", PLAYER)
    view = harness.views[-1]

    replies = await harness.press(view, "status:recheck", PLAYER)

    assert replies[0].response_type == DEFERRED_UPDATE_MESSAGE
    assert catalog_text("recheck.done") in replies[-1].text


async def test_pause_confirmed_by_button(harness: InteractionHarness, services: Services) -> None:
    dispatch = asyncio.create_task(
        harness.run_command("payouts-pause", ADMIN, [string_option("reason", "upgrade")])
    )
    view = await harness.next_view()

    refused = await harness.press(view, "confirm", PLAYER)
    await harness.press(view, "confirm", ADMIN)
    replies = await dispatch

    assert refused[0].ephemeral
    assert catalog_text("errors.confirm_not_yours") in refused[0].text
    async with services.db.read() as session:
        assert await is_paused(session) is True
    assert "upgrade" in replies[-1].text


async def test_error_after_confirmation_replaces_prompt(harness: InteractionHarness) -> None:
    dispatch = asyncio.create_task(
        harness.run_command(
            "abuse-resolve",
            ADMIN,
            [integer_option("flag", 9), string_option("action", "void")],
        )
    )
    view = await harness.next_view()
    await harness.press(view, "confirm", ADMIN)
    replies: list[Reply] = await dispatch

    assert catalog_text("abuse_resolve.not_found", flag_id=9) in replies[-1].text
    assert replies[-1].kind == "edit_original"
    assert replies[-1].message.get("components") == []
