"""`pay2slay run`, `sandbox` and `sync-commands`: argument checks, configuration errors, sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import AsyncMock

import discord
import pytest
from pydantic import SecretStr

from bot.app import Pay2SlayBot
from bot.cli import main
from bot.cli_run import secret_values
from bot.launch import sync_tree
from bot.runtime import StartupError
from core.observability import Metrics
from tests.unit.cogs.helpers_cogs import CONFIG_DIR, GUILD_ID, make_settings

SECRET_VARIABLES = (
    "P2S_DISCORD_BOT_TOKEN",
    "P2S_OPERATOR_SEED",
    "P2S_SESSION_SECRET",
    "P2S_METRICS_TOKEN",
    "YUNITE_API_KEY",
    "FORTNITE_API_KEY",
    "DISCORD_CLIENT_SECRET",
    "P2S_SECRETS_DIR",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.delenv("P2S_CONFIG_DIR", raising=False)


@pytest.mark.usefixtures("clean_environment")
def test_run_without_token_is_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--config-dir", str(CONFIG_DIR)])

    assert code == 2
    error = capsys.readouterr().err
    assert "secrets.discord_bot_token" in error
    assert "configuration check failed" in error


@pytest.mark.usefixtures("clean_environment")
def test_sync_without_token_is_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sync-commands", "--config-dir", str(CONFIG_DIR)])

    assert code == 2
    assert "P2S_DISCORD_BOT_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments",
    [
        ["sandbox", "--runs", "0"],
        ["sandbox", "--players", "-3"],
        ["sandbox", "--interval", "0"],
        ["sandbox", "--players", "100000"],
        ["sandbox", "--interval", "inf"],
        ["sandbox", "--interval", "1e9"],
        ["sandbox", "--interval", "nan"],
        ["sync-commands", "--guild", "abc"],
    ],
)
def test_invalid_arguments_are_usage_errors(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(arguments) == 2

    error = capsys.readouterr().err
    assert "expected" in error
    assert "_positive" not in error
    assert "invalid" not in error


def test_help_lists_process_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    text = capsys.readouterr().out
    for name in ("run", "sandbox", "sync-commands"):
        assert name in text


def test_secret_values_include_every_secret() -> None:
    settings = make_settings(
        {
            "P2S_DISCORD_BOT_TOKEN": "bot-token-value-0123456789",
            "P2S_METRICS_TOKEN": "metrics-token-value-012345",
            "P2S_INTEGRATIONS__DATABASE__URL": (
                "postgresql+asyncpg://faucet:db-password-9876@127.0.0.1/test"
            ),
        }
    )

    values = secret_values(settings)

    assert "bot-token-value-0123456789" in values
    assert "metrics-token-value-012345" in values
    assert "db-password-9876" in values
    assert settings.integrations.yunite_api_key is not None
    assert settings.integrations.yunite_api_key.get_secret_value() in values
    assert all(not isinstance(value, SecretStr) for value in values)


@pytest.fixture
async def sync_bot() -> AsyncIterator[Pay2SlayBot]:
    bot = Pay2SlayBot(make_settings(), metrics=Metrics(), commands_only=True)
    async with bot:
        await bot.setup_hook()
        yield bot


async def test_sync_to_guild_copies_global_commands(
    sync_bot: Pay2SlayBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = AsyncMock(return_value=["a"] * 16)
    monkeypatch.setattr(sync_bot.tree, "sync", sync)

    count = await sync_tree(sync_bot, GUILD_ID)

    assert count == 16
    guild = sync.await_args.kwargs["guild"]
    assert isinstance(guild, discord.Object)
    assert guild.id == GUILD_ID
    assert len(sync_bot.tree.get_commands(guild=guild)) == 16


async def test_sync_globally(sync_bot: Pay2SlayBot, monkeypatch: pytest.MonkeyPatch) -> None:
    sync = AsyncMock(return_value=[])
    monkeypatch.setattr(sync_bot.tree, "sync", sync)

    await sync_tree(sync_bot, None)

    sync.assert_awaited_once_with()


async def test_sync_refused_when_a_cog_failed(
    sync_bot: Pay2SlayBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = AsyncMock(return_value=[])
    monkeypatch.setattr(sync_bot.tree, "sync", sync)
    sync_bot.failed_extensions["cogs.admin"] = "RuntimeError"

    with pytest.raises(StartupError, match=r"cogs\.admin"):
        await sync_tree(sync_bot, None)
    sync.assert_not_awaited()
