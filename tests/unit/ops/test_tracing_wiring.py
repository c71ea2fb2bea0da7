"""Spans that outlive a `with` block, and the spans of slash commands and membership lookups.

The tests that record spans need the optional `otel` extra and are skipped without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
from discord import app_commands

from bot.app import Pay2SlayBot
from bot.membership import GuildMembership
from core.observability import Metrics
from core.observability.tracing import Tracing, begin_span, configure_tracing, span
from tests.unit.cogs.harness import InteractionHarness, Invoker
from tests.unit.cogs.helpers_cogs import GUILD_ID, PLAYER_ID, make_settings

PLAYER = Invoker(PLAYER_ID, GUILD_ID)


def test_begin_span_without_tracing_is_noop() -> None:
    opened = begin_span("command", command="status")

    opened.set_attributes(interaction_id=1)
    opened.end("RuntimeError")
    opened.end()


@dataclass
class Exported:
    exporter: Any
    handle: Tracing

    def spans(self) -> list[Any]:
        self.handle.force_flush()
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[Any]:
        return [item for item in self.spans() if item.name == name]


@pytest.fixture
def exported() -> Iterator[Exported]:
    pytest.importorskip("opentelemetry.sdk", reason="the optional otel extra is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    handle = configure_tracing("", exporter=exporter, secrets=["secret-reply-text-1234"])
    try:
        yield Exported(exporter, handle)
    finally:
        handle.shutdown()


def test_begun_span_parents_later_spans(exported: Exported) -> None:
    opened = begin_span("command", command="status")
    with span("verification.member_lookup"):
        pass
    opened.end()

    child, parent = exported.spans()
    assert parent.name == "command"
    assert child.parent.span_id == parent.context.span_id
    # Ended and detached: a span started now has no parent.
    with span("after"):
        pass
    assert exported.named("after")[0].parent is None


def test_begun_span_ends_once(exported: Exported) -> None:
    opened = begin_span("command")
    opened.end("ValueError")
    opened.end()

    (ended,) = exported.spans()
    assert ended.status.status_code.name == "ERROR"
    assert ended.attributes["error.type"] == "ValueError"


async def test_begun_span_ended_by_other_task(exported: Exported) -> None:
    opened = begin_span("command", interaction_id=5)

    async def finish() -> None:
        opened.end()

    await asyncio.create_task(finish())

    (ended,) = exported.spans()
    assert ended.attributes["interaction_id"] == 5
    assert ended.status.status_code.name == "UNSET"


async def test_member_lookup_span(exported: Exported) -> None:
    client = MagicMock(spec=discord.Client)
    client.get_guild.return_value = None
    client.http = MagicMock()
    client.http.get_member = AsyncMock(return_value={"user": {"id": str(PLAYER_ID)}})

    assert await GuildMembership(client, GUILD_ID).is_member(PLAYER_ID) is True

    (lookup,) = exported.named("verification.member_lookup")
    assert lookup.attributes["discord_id"] == PLAYER_ID
    assert lookup.attributes["member"] is True


# Slash commands dispatched through the bot's real command tree.


class CompletionBot(Pay2SlayBot):
    """The bot, with an event set once its command completion handler has run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.completed = asyncio.Event()

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        await super().on_app_command_completion(interaction, command)
        self.completed.set()


@pytest.fixture
async def bot() -> AsyncIterator[CompletionBot]:
    client = CompletionBot(make_settings(), metrics=Metrics(), extensions=(), commands_only=True)

    @app_commands.command(name="ping", description="Reply pong.")
    async def ping(interaction: discord.Interaction[Any]) -> None:
        with span("inner.step"):
            await interaction.response.send_message("pong", ephemeral=True)

    @app_commands.command(name="boom", description="Fail.")
    async def boom(interaction: discord.Interaction[Any]) -> None:
        raise RuntimeError("secret-reply-text-1234")

    client.tree.add_command(ping)
    client.tree.add_command(boom)
    async with client:
        yield client


async def test_command_span_wraps_command(exported: Exported, bot: CompletionBot) -> None:
    harness = InteractionHarness(bot)

    replies = await harness.run_command("ping", PLAYER)
    # The completion event, which ends the span, runs in a task of its own.
    async with asyncio.timeout(5):
        await bot.completed.wait()

    assert replies[-1].text == "pong"
    (command,) = exported.named("command")
    (inner,) = exported.named("inner.step")
    assert command.attributes["command"] == "ping"
    assert isinstance(command.attributes["interaction_id"], int)
    assert command.status.status_code.name == "UNSET"
    assert inner.parent.span_id == command.context.span_id


async def test_failed_command_span(exported: Exported, bot: CompletionBot) -> None:
    harness = InteractionHarness(bot)

    await harness.run_command("boom", PLAYER)

    (command,) = exported.named("command")
    assert command.attributes["command"] == "boom"
    assert command.status.status_code.name == "ERROR"
    assert command.attributes["error.type"] == "RuntimeError"
    for value in command.attributes.values():
        assert "secret-reply-text-1234" not in str(value)
