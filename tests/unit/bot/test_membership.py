"""Membership checks: the member cache first, then a REST lookup of one member."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, MagicMock, create_autospec

import aiohttp
import discord
import pytest

from bot.membership import UNKNOWN_MEMBER, GuildMembership

GUILD_ID = 500_000_000_000_000_001
USER_ID = 500_000_000_000_000_002


def http_error(kind: type[discord.HTTPException], status: int, code: int) -> discord.HTTPException:
    return kind(MagicMock(status=status, reason="x"), {"code": code, "message": "x"})


def client(member_cached: bool = False, get_member: Any = None) -> Any:
    bot = create_autospec(discord.Client, instance=True)
    guild = create_autospec(discord.Guild, instance=True)
    guild.get_member.return_value = MagicMock() if member_cached else None
    bot.get_guild.return_value = guild
    bot.http = MagicMock()
    bot.http.get_member = get_member or AsyncMock(return_value={"user": {"id": str(USER_ID)}})
    return bot


async def test_cached_member_needs_no_request() -> None:
    bot = client(member_cached=True)

    assert await GuildMembership(bot, GUILD_ID).is_member(USER_ID) is True
    bot.http.get_member.assert_not_awaited()


async def test_member_found_by_rest() -> None:
    bot = client()

    assert await GuildMembership(bot, GUILD_ID).is_member(USER_ID) is True
    bot.http.get_member.assert_awaited_once_with(GUILD_ID, USER_ID)


async def test_unknown_member_is_not_member() -> None:
    lookup = AsyncMock(side_effect=http_error(discord.NotFound, 404, UNKNOWN_MEMBER))

    assert await GuildMembership(client(get_member=lookup), GUILD_ID).is_member(USER_ID) is False


@pytest.mark.parametrize(
    "error",
    [
        http_error(discord.NotFound, 404, 10004),
        http_error(discord.Forbidden, 403, 50001),
        http_error(discord.DiscordServerError, 503, 0),
        aiohttp.ClientConnectionError("refused"),
        TimeoutError(),
    ],
)
async def test_failed_lookup_is_unknown(error: Exception) -> None:
    lookup = AsyncMock(side_effect=error)

    assert await GuildMembership(client(get_member=lookup), GUILD_ID).is_member(USER_ID) is None
