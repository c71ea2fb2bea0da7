"""An extension whose setup fails, for the test that one broken cog leaves the others loaded."""

from __future__ import annotations

from discord.ext import commands


async def setup(bot: commands.Bot) -> None:
    """Fail as a cog with a bug in its set-up would."""
    raise RuntimeError("this extension is broken on purpose")
