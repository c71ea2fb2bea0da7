"""The Discord side of `pay2slay run` and `pay2slay sync-commands`: log in, run, sync.

Only those two commands import this module, because discord.py and the bot runtime are slow
to import and the other commands need neither.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import suppress

import discord
import structlog

from bot.app import Pay2SlayBot
from bot.runtime import StartupError
from core.config import Settings
from core.observability import Metrics

log = structlog.get_logger(__name__)


async def run_until_closed(settings: Settings) -> None:
    """Run the bot until SIGINT or SIGTERM closes it."""
    token = settings.secrets.discord_bot_token
    if token is None:
        raise StartupError("The Discord bot token is missing.")
    bot = Pay2SlayBot(settings, metrics=Metrics())
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Task[None]] = set()

    def request_close() -> None:
        log.info("shutdown_requested")
        task = loop.create_task(bot.close())
        closing.add(task)
        task.add_done_callback(closing.discard)

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal_number, request_close)

    async with bot:
        # start(), unlike run(), installs no log handler of discord.py's own, so its records
        # go through the handler configure_logging set up.
        await bot.start(token.get_secret_value())
    if closing:
        await asyncio.gather(*closing)


async def log_in_and_sync(settings: Settings, guild_id: int | None) -> int:
    """Log in with the bot token, sync the slash commands and return how many were synced."""
    token = settings.secrets.discord_bot_token
    assert token is not None
    bot = Pay2SlayBot(settings, metrics=Metrics(), commands_only=True)
    async with bot:
        # login() runs setup_hook, which loads the cogs without opening any service.
        await bot.login(token.get_secret_value())
        return await sync_tree(bot, guild_id)


async def sync_tree(bot: Pay2SlayBot, guild_id: int | None) -> int:
    """Upload the tree's commands globally or to one guild; return how many were synced."""
    if bot.failed_extensions:
        raise StartupError(
            "Not syncing: these command modules failed to load: "
            + ", ".join(sorted(bot.failed_extensions))
        )
    if guild_id is None:
        synced = await bot.tree.sync()
    else:
        guild = discord.Object(id=guild_id)
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
    log.info("commands_synced", count=len(synced), guild_id=guild_id)
    return len(synced)
