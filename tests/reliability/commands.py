"""Dispatching every slash command through the bot's tree, and checking what the bot replied.

Option values are built from each command's own parameters, so a command added later is
covered without editing this module. Replies are checked against what Discord accepts and
against the rule that no reply may ping anyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from discord import AppCommandOptionType, app_commands
from discord.ext import commands

from core.db.models import Player, Wallet
from core.db.session import Database
from tests.unit.cogs.harness import (
    OPTION_BOOLEAN,
    OPTION_INTEGER,
    OPTION_STRING,
    OPTION_USER,
    InteractionHarness,
    Invoker,
    Reply,
)

# Limits Discord enforces on a message (developer documentation, "Embed Limits" and
# "Create Message"). A reply past them is rejected with HTTP 400, so the user sees nothing.
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000

NO_PINGS: dict[str, list[str]] = {"parse": []}
# Defer responses carry no message, so there is nothing that could mention anyone.
_MESSAGELESS_RESPONSES = {5, 6}


@dataclass(frozen=True)
class CommandCall:
    """One command with option values that parse, and the members its USER options name."""

    name: str
    options: list[dict[str, Any]]
    resolved_members: list[tuple[int, Sequence[int]]]
    admin: bool


async def add_known_player(db: Database, discord_id: int) -> None:
    """Create a player with a wallet, so commands about a member have someone to act on."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    async with db.write() as session:
        player = Player(discord_id=discord_id, created_at=at, guild_member=True)
        session.add(player)
        await session.flush()
        address = "ban_1" + "1" * 59
        session.add(Wallet(player_id=player.id, address=address, created_at=at, updated_at=at))


def commands_of(bot: commands.Bot) -> list[app_commands.Command[Any, ..., Any]]:
    """Return every slash command of the bot's tree."""
    return [
        command for command in bot.tree.walk_commands() if isinstance(command, app_commands.Command)
    ]


def build_call(
    command: app_commands.Command[Any, ..., Any],
    *,
    text: str = "reason",
    member_id: int,
    integer: int = 1,
) -> CommandCall:
    """Build option values for every parameter: `text` for free text, the first choice else."""
    options: list[dict[str, Any]] = []
    resolved: list[tuple[int, Sequence[int]]] = []
    for parameter in command.parameters:
        if parameter.choices:
            value: Any = parameter.choices[0].value
            option_type = OPTION_STRING if isinstance(value, str) else OPTION_INTEGER
        elif parameter.type is AppCommandOptionType.string:
            value, option_type = text, OPTION_STRING
        elif parameter.type is AppCommandOptionType.integer:
            value, option_type = integer, OPTION_INTEGER
        elif parameter.type is AppCommandOptionType.boolean:
            value, option_type = True, OPTION_BOOLEAN
        elif parameter.type is AppCommandOptionType.user:
            value, option_type = str(member_id), OPTION_USER
            resolved.append((member_id, ()))
        else:
            raise AssertionError(f"no value for option type {parameter.type} of {command.name}")
        options.append({"name": parameter.name, "type": option_type, "value": value})
    cog_name = type(command.binding).__name__ if command.binding is not None else ""
    return CommandCall(command.name, options, resolved, admin=cog_name == "AdminCog")


async def dispatch_confirming(
    harness: InteractionHarness, call: CommandCall, invoker: Invoker
) -> list[Reply]:
    """Dispatch `call`, pressing confirm as the invoker when the reply shows a confirm button."""
    interaction = harness.build_command(call.name, invoker, call.options, call.resolved_members)
    dispatch = asyncio.create_task(harness.dispatch(interaction))
    waiting_for_view = asyncio.create_task(harness.next_view())
    done, _ = await asyncio.wait({dispatch, waiting_for_view}, return_when=asyncio.FIRST_COMPLETED)
    if waiting_for_view in done and waiting_for_view.exception() is None:
        pressed = await harness.press(waiting_for_view.result(), "confirm", invoker)
        replies = await dispatch
        return replies + pressed
    waiting_for_view.cancel()
    await asyncio.gather(waiting_for_view, return_exceptions=True)
    return await dispatch


def reply_problems(replies: Sequence[Reply]) -> list[str]:
    """Return what in these replies could ping someone or would be rejected by Discord."""
    problems: list[str] = []
    for reply in replies:
        if reply.response_type in _MESSAGELESS_RESPONSES:
            continue
        if reply.allowed_mentions != NO_PINGS:
            problems.append(f"{reply.kind} allows mentions: {reply.allowed_mentions!r}")
        problems.extend(_length_problems(reply))
    return problems


def _length_problems(reply: Reply) -> list[str]:
    problems: list[str] = []
    if len(reply.content) > MAX_CONTENT:
        problems.append(f"content of {len(reply.content)} characters")
    if len(reply.embeds) > MAX_EMBEDS:
        problems.append(f"{len(reply.embeds)} embeds")
    for embed in reply.embeds:
        title = str(embed.get("title") or "")
        description = str(embed.get("description") or "")
        footer = str((embed.get("footer") or {}).get("text") or "")
        fields = list(embed.get("fields") or [])
        total = len(title) + len(description) + len(footer)
        for name, size, limit in (
            ("title", len(title), MAX_TITLE),
            ("description", len(description), MAX_DESCRIPTION),
            ("footer", len(footer), MAX_FOOTER),
            ("fields", len(fields), MAX_FIELDS),
        ):
            if size > limit:
                problems.append(f"embed {name} of {size}, limit {limit}")
        for embed_field in fields:
            field_name = str(embed_field.get("name") or "")
            field_value = str(embed_field.get("value") or "")
            total += len(field_name) + len(field_value)
            if len(field_name) > MAX_FIELD_NAME or len(field_value) > MAX_FIELD_VALUE:
                problems.append(f"embed field of {len(field_name)}/{len(field_value)} characters")
        if total > MAX_EMBED_TOTAL:
            problems.append(f"embed of {total} characters in all")
    return problems
