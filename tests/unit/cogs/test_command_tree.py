"""The command tree as Discord receives it: unique names, translations, visibility."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.app import Pay2SlayBot
from bot.translator import CatalogTranslator
from core.i18n import MessageCatalog
from core.observability import Metrics
from tests.unit.cogs.helpers_cogs import make_settings

PLAYER_COMMANDS = {"link-wallet", "status", "payouts", "leaderboard", "notifications"}
ADMIN_COMMANDS = {
    "reverify",
    "payout-retry",
    "payouts-pause",
    "payouts-resume",
    "settle-now",
    "freeze",
    "unfreeze",
    "abuse-flags",
    "abuse-resolve",
    "player-lookup",
    "faucet-health",
}
# Discord locales that have a catalog: English, Spanish and Brazilian Portuguese.
TRANSLATED_LOCALES = ("en-US", "en-GB", "es-ES", "es-419", "pt-BR")


@pytest.fixture
async def bot() -> AsyncIterator[Pay2SlayBot]:
    """A bot with both cogs loaded only to declare their commands, as sync-commands does."""
    client = Pay2SlayBot(make_settings(), metrics=Metrics(), commands_only=True)
    async with client:
        await client.setup_hook()
        yield client


@pytest.fixture
async def payloads(bot: Pay2SlayBot) -> dict[str, dict[str, Any]]:
    """Every command's payload with translations, exactly as sync uploads it."""
    translator = CatalogTranslator(MessageCatalog.load(strict=True))
    result: dict[str, dict[str, Any]] = {}
    for command in bot.tree.get_commands():
        assert isinstance(command, app_commands.Command)
        result[command.name] = await command.get_translated_payload(bot.tree, translator)
    return result


def test_command_names_are_unique(bot: Pay2SlayBot) -> None:
    names = [command.qualified_name for command in bot.tree.walk_commands()]

    repeated = [name for name, count in Counter(names).items() if count > 1]
    assert repeated == []


def test_every_command_is_registered(bot: Pay2SlayBot) -> None:
    names = {command.qualified_name for command in bot.tree.walk_commands()}

    assert names == PLAYER_COMMANDS | ADMIN_COMMANDS
    assert bot.failed_extensions == {}


def test_every_description_is_translated(payloads: dict[str, dict[str, Any]]) -> None:
    missing = [
        f"{name} ({locale})"
        for name, payload in payloads.items()
        for locale in TRANSLATED_LOCALES
        if locale not in payload["description_localizations"]
    ]

    assert missing == []


def test_every_option_is_translated(payloads: dict[str, dict[str, Any]]) -> None:
    missing = [
        f"{name} {option['name']} ({locale})"
        for name, payload in payloads.items()
        for option in payload["options"]
        for locale in TRANSLATED_LOCALES
        if locale not in option["description_localizations"]
    ]

    assert missing == []


def test_every_choice_is_translated(payloads: dict[str, dict[str, Any]]) -> None:
    missing = [
        f"{name} {option['name']}={choice['value']} ({locale})"
        for name, payload in payloads.items()
        for option in payload["options"]
        for choice in option.get("choices", [])
        for locale in TRANSLATED_LOCALES
        if locale not in choice.get("name_localizations", {})
    ]

    assert missing == []


def test_english_text_matches_catalog(payloads: dict[str, dict[str, Any]]) -> None:
    catalog = MessageCatalog.load(strict=True)
    differing = [
        name
        for name, payload in payloads.items()
        if payload["description"] != catalog.text(f"command.{name}.description", "en")
    ]
    differing += [
        f"{name} {option['name']}"
        for name, payload in payloads.items()
        for option in payload["options"]
        if option["description"] != catalog.text(f"command.{name}.option.{option['name']}", "en")
    ]

    assert differing == []


def test_names_are_not_translated(payloads: dict[str, dict[str, Any]]) -> None:
    assert all(payload["name_localizations"] == {} for payload in payloads.values())


def test_commands_are_guild_only(payloads: dict[str, dict[str, Any]]) -> None:
    # Interaction context type 0 is GUILD in Discord's API.
    not_guild_only = [
        name
        for name, payload in payloads.items()
        if payload.get("contexts") != [0] or payload.get("dm_permission") is not False
    ]

    assert not_guild_only == []


def test_admin_commands_hidden_by_default(payloads: dict[str, dict[str, Any]]) -> None:
    manage_guild = discord.Permissions(manage_guild=True).value

    hidden = {name for name, p in payloads.items() if p["default_member_permissions"]}
    assert hidden == ADMIN_COMMANDS
    assert {payloads[name]["default_member_permissions"] for name in hidden} == {manage_guild}


def test_player_commands_have_cooldowns(bot: Pay2SlayBot) -> None:
    without = [
        command.name
        for command in bot.tree.walk_commands()
        if command.name in PLAYER_COMMANDS
        and isinstance(command, app_commands.Command)
        and not any("cooldown" in repr(check) for check in command.checks)
    ]

    assert without == []
