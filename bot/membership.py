"""Guild membership for verification: the gateway member cache first, then a REST lookup.

The bot runs without the privileged GUILD_MEMBERS intent, so its member cache holds only the
members Discord sent with other events. A cache miss is therefore not proof of absence, and
the REST endpoint `GET /guilds/{guild}/members/{user}` (which needs no intent) decides.
"""

from __future__ import annotations

import aiohttp
import discord
import structlog

from core.observability.tracing import span

log = structlog.get_logger(__name__)

# Discord JSON error codes that mean "this user is not a member of this guild".
UNKNOWN_MEMBER = 10007
UNKNOWN_USER = 10013


class GuildMembership:
    """Implements the verification service's `MembershipChecker` with a Discord client."""

    def __init__(self, client: discord.Client, guild_id: int) -> None:
        self._client = client
        self._guild_id = guild_id

    async def is_member(self, discord_id: int) -> bool | None:
        """Return whether the user is in the guild, or None when Discord could not tell."""
        guild = self._client.get_guild(self._guild_id)
        if guild is not None and guild.get_member(discord_id) is not None:
            return True

        with span("verification.member_lookup", discord_id=discord_id) as current:
            member = await self._fetch_member(discord_id)
            current.set_attributes(member=member)
        return member

    async def _fetch_member(self, discord_id: int) -> bool | None:
        try:
            await self._client.http.get_member(self._guild_id, discord_id)
        except discord.NotFound as error:
            if error.code in (UNKNOWN_MEMBER, UNKNOWN_USER):
                return False
            # Unknown guild: the bot was removed from it or the ID is wrong. Either way the
            # reply is no evidence about the user.
            log.warning(
                "membership_guild_not_found", guild_id=self._guild_id, error_code=error.code
            )
            return None
        except discord.HTTPException as error:
            log.warning(
                "membership_lookup_failed",
                discord_id=discord_id,
                status=error.status,
                error_code=error.code,
            )
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning(
                "membership_lookup_failed", discord_id=discord_id, error_type=type(error).__name__
            )
            return None
        return True
