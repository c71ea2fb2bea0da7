"""Shared parts of both cogs: the services they call, checks, replies, confirmation, embeds.

Cogs never import `bot`: the bot builds a `CogServices` and hands it to each cog, and the
error handler the tree uses is reached through `interaction.client.tree.on_error`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from core.clock import Clock
from core.config import ProductSettings, Settings
from core.db import Database
from core.i18n import MessageCatalog
from core.observability import Metrics
from core.presentation import Card, render_message, show_dry_run_banner
from core.services.abuse import AbuseService
from core.services.audit import AuditValue, record_audit
from core.services.health import HealthService
from core.services.history import HistoryService
from core.services.leaderboard import LeaderboardService
from core.services.lookup import LookupService
from core.services.players import PlayerService
from core.services.settlement import SettlementService
from core.services.status import StatusService
from core.services.verification import VerificationService

# The extra of a `locale_str` that names its catalog entry; the translator reads it.
TEXT_KEY = "key"

NO_MENTIONS = discord.AllowedMentions.none()

# How long a confirmation button waits for the invoker.
CONFIRM_TIMEOUT_SECONDS = 60.0

# Embed colours by card tone.
TONE_COLOURS: Mapping[str, discord.Colour] = {
    "info": discord.Colour.blurple(),
    "success": discord.Colour.green(),
    "warning": discord.Colour.gold(),
    "error": discord.Colour.red(),
}

ResultT = TypeVar("ResultT")


def command_text(key: str, english: str) -> app_commands.locale_str:
    """Return a command or option description with its catalog key for the translator."""
    return app_commands.locale_str(english, **{TEXT_KEY: key})


@dataclass(frozen=True)
class CogServices:
    """The services and settings the cogs call, built once by the bot."""

    settings: Settings
    catalog: MessageCatalog
    db: Database
    clock: Clock
    metrics: Metrics
    players: PlayerService
    verification: VerificationService
    status: StatusService
    history: HistoryService
    leaderboard: LeaderboardService
    lookup: LookupService
    abuse: AbuseService
    settlement: SettlementService
    health: HealthService
    operator_address: str | None
    next_settlement_at: Callable[[], datetime | None]
    work: WorkTracker
    confirm_timeout_seconds: float = CONFIRM_TIMEOUT_SECONDS

    @property
    def guild_id(self) -> int:
        """The operator's guild; commands elsewhere are refused."""
        return int(self.settings.integrations.discord_guild_id)

    def render_args(
        self, interaction: discord.Interaction[Any]
    ) -> tuple[MessageCatalog, str, ProductSettings, str, bool]:
        """Return the arguments every presentation renderer takes after its model."""
        settings = self.settings
        return (
            self.catalog,
            locale_of(interaction),
            settings.product,
            settings.integrations.banano.explorer_block_url,
            show_dry_run_banner(settings.product, settings.integrations.dry_run),
        )

    def message(self, interaction: discord.Interaction[Any], key: str, **params: object) -> Card:
        """Render a reply made of one catalog text in the interaction's locale."""
        catalog, locale, product, _, banner = self.render_args(interaction)
        values: dict[str, Any] = dict(params)
        return render_message(key, catalog, locale, product, dry_run_banner=banner, **values)


class WorkTracker:
    """Runs work that must finish once started, such as a settlement an admin asked for.

    The work runs in a task of its own, so a cancelled command does not cancel it, and
    `wait` lets shutdown wait for it the way it waits for scheduled settlements.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, ResultT]) -> ResultT:
        """Run `work` to completion even if the caller is cancelled, and return its result."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def wait(self, timeout_seconds: float) -> bool:
        """Wait for the work in flight; return False if some is still running at the end."""
        pending = set(self._tasks)
        if not pending:
            return True
        _, still_running = await asyncio.wait(pending, timeout=timeout_seconds)
        return not still_running


def services_of(bot: commands.Bot) -> CogServices | None:
    """Return the services the bot attached for its cogs, or None while syncing commands."""
    services = getattr(bot, "cog_services", None)
    return services if isinstance(services, CogServices) else None


class ServicesCog(commands.Cog):
    """A cog whose commands call `CogServices`; without them it only declares its commands."""

    def __init__(self, services: CogServices | None) -> None:
        self._services = services

    @property
    def services(self) -> CogServices:
        """The services; raises when the cog was loaded only to sync commands."""
        if self._services is None:
            raise RuntimeError("this cog was loaded without services, only to sync commands")
        return self._services


def locale_of(interaction: discord.Interaction[Any]) -> str:
    """Return the Discord locale of the user who started the interaction, e.g. `es-419`."""
    return interaction.locale.value


def text_for(
    services: CogServices, interaction: discord.Interaction[Any], key: str, **params: object
) -> str:
    """Return catalog text in the interaction's locale, with the default locale as fallback."""
    return services.catalog.text(key, locale_of(interaction), **params)


def card_embed(card: Card) -> discord.Embed:
    """Turn a presentation card into a Discord embed."""
    embed = discord.Embed(
        title=card.title,
        description=card.description or None,
        colour=TONE_COLOURS.get(card.tone, discord.Colour.blurple()),
    )
    for field in card.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if card.footer:
        embed.set_footer(text=card.footer)
    if card.banner_url:
        embed.set_thumbnail(url=card.banner_url)
    return embed


async def audit_admin_action(
    services: CogServices,
    action: str,
    actor_discord_id: int,
    detail: Mapping[str, AuditValue],
) -> None:
    """Record an admin command that no service records by itself, such as a lookup."""
    async with services.db.write() as session:
        record_audit(
            session,
            action=action,
            at=services.clock(),
            actor_discord_id=actor_discord_id,
            detail=detail,
        )


class LocalizedCheckFailure(app_commands.CheckFailure):
    """A check that refused the interaction; `key` and `params` give the catalog text why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class ViewError(app_commands.AppCommandError):
    """An exception raised in a button callback, passed on to the tree's error handler."""

    def __init__(self, original: Exception) -> None:
        super().__init__(type(original).__name__)
        self.original = original


def require_guild(services: CogServices, interaction: discord.Interaction[Any]) -> discord.Member:
    """Return the invoker as a member of the operator's guild, or raise a check failure."""
    if interaction.guild_id is None:
        raise LocalizedCheckFailure("errors.guild_only")
    if interaction.guild_id != services.guild_id:
        raise LocalizedCheckFailure("errors.wrong_guild")
    member = interaction.user
    if not isinstance(member, discord.Member):
        raise LocalizedCheckFailure("errors.guild_only")
    return member


def is_admin(member: discord.Member, role_ids: Collection[int], user_ids: Collection[int]) -> bool:
    """Return whether the member is a configured admin user or has a configured admin role."""
    if member.id in user_ids:
        return True
    return any(role.id in role_ids for role in member.roles)


def require_admin(services: CogServices, interaction: discord.Interaction[Any]) -> discord.Member:
    """Return the invoker if they are an admin of the operator's guild, or raise."""
    member = require_guild(services, interaction)
    admins = services.settings.integrations.discord
    role_ids = {int(role_id) for role_id in admins.admin_role_ids}
    user_ids = {int(user_id) for user_id in admins.admin_user_ids}
    if not is_admin(member, role_ids, user_ids):
        raise LocalizedCheckFailure("errors.not_admin")
    return member


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge the interaction with an ephemeral "thinking" reply, before any I/O."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def reply(
    interaction: discord.Interaction[Any],
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
) -> None:
    """Send the command's ephemeral reply, in place of the deferred one if there is one."""
    if interaction.response.is_done():
        await interaction.edit_original_response(
            content=content,
            embed=embed,
            view=view,
            allowed_mentions=NO_MENTIONS,
        )
        return

    kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": NO_MENTIONS}
    if embed is not None:
        kwargs["embed"] = embed
    if view is not None:
        kwargs["view"] = view
    await interaction.response.send_message(content, **kwargs)


class ServicesView(discord.ui.View):
    """A view whose errors go to the same handler as the commands'."""

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        item: discord.ui.Item[Any],
        /,
    ) -> None:
        client = interaction.client
        if isinstance(client, commands.Bot):
            wrapped = error if isinstance(error, app_commands.AppCommandError) else ViewError(error)
            await client.tree.on_error(interaction, wrapped)
            return
        await super().on_error(interaction, error, item)


class OwnerOnlyView(ServicesView):
    """A view that only the user who ran the command may use; others get a short notice."""

    def __init__(self, owner_id: int, not_owner_text: str, *, timeout: float | None) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self._not_owner_text = not_owner_text

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            self._not_owner_text, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        return False


class ConfirmView(OwnerOnlyView):
    """Confirm and cancel buttons; `confirmed` is True, False, or None after the time-out."""

    def __init__(
        self,
        owner_id: int,
        *,
        confirm_label: str,
        cancel_label: str,
        not_owner_text: str,
        decided_text: str,
        expired_text: str,
        timeout: float = CONFIRM_TIMEOUT_SECONDS,
        destructive: bool = True,
    ) -> None:
        super().__init__(owner_id, not_owner_text, timeout=timeout)
        self.confirmed: bool | None = None
        self._decided_text = decided_text
        self._expired_text = expired_text
        confirm = discord.ui.Button[ConfirmView](
            label=confirm_label,
            style=discord.ButtonStyle.danger if destructive else discord.ButtonStyle.primary,
            custom_id="confirm",
        )
        cancel = discord.ui.Button[ConfirmView](
            label=cancel_label, style=discord.ButtonStyle.secondary, custom_id="cancel"
        )
        confirm.callback = self._on_confirm  # type: ignore[method-assign]
        cancel.callback = self._on_cancel  # type: ignore[method-assign]
        self.add_item(confirm)
        self.add_item(cancel)

    async def _on_confirm(self, interaction: discord.Interaction[Any]) -> None:
        await self._decide(interaction, confirmed=True)

    async def _on_cancel(self, interaction: discord.Interaction[Any]) -> None:
        await self._decide(interaction, confirmed=False)

    async def _decide(self, interaction: discord.Interaction[Any], *, confirmed: bool) -> None:
        if self.is_finished():
            # A second press, or one after the time-out: answer it, so Discord does not show
            # the interaction as failed.
            text = self._expired_text if self.confirmed is None else self._decided_text
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        self.confirmed = confirmed
        # The command that waits for this view edits the message with the outcome.
        await interaction.response.defer()
        self.stop()


async def ask_confirmation(
    services: CogServices,
    interaction: discord.Interaction[Any],
    prompt: Card,
    *,
    destructive: bool = True,
) -> bool:
    """Show `prompt` with confirm and cancel buttons and wait for the invoker.

    Returns True only when the invoker pressed confirm. On cancel or time-out the prompt is
    replaced with a notice and False is returned.
    """
    view = ConfirmView(
        interaction.user.id,
        confirm_label=text_for(services, interaction, "confirm.yes"),
        cancel_label=text_for(services, interaction, "confirm.no"),
        not_owner_text=text_for(services, interaction, "errors.confirm_not_yours"),
        decided_text=text_for(services, interaction, "errors.confirm_already_decided"),
        expired_text=text_for(services, interaction, "errors.confirm_expired"),
        timeout=services.confirm_timeout_seconds,
        destructive=destructive,
    )
    await reply(interaction, embed=card_embed(prompt), view=view)
    # The view's own time-out starts only once discord.py stores the view for the sent
    # message. This wait ends the confirmation on time whatever happens to the message.
    try:
        await asyncio.wait_for(view.wait(), timeout=services.confirm_timeout_seconds)
    except TimeoutError:
        view.stop()

    if view.confirmed:
        return True
    key = "confirm.cancelled" if view.confirmed is False else "errors.confirm_expired"
    await reply(interaction, embed=card_embed(services.message(interaction, key)), view=None)
    return False


class PerUserRateLimit:
    """At most one use per `interval_seconds` per user, kept in memory.

    `retry_after` returns 0.0 and records the use when the user may go ahead, else the
    seconds left to wait.
    """

    def __init__(
        self,
        interval_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._max_users = max_users
        self._last_use: dict[int, float] = {}

    def retry_after(self, user_id: int) -> float:
        """Return 0.0 and record the use, or the seconds until the user may try again."""
        now = self._monotonic()
        last = self._last_use.get(user_id)
        if last is not None and now - last < self._interval:
            return self._interval - (now - last)

        if len(self._last_use) >= self._max_users:
            cutoff = now - self._interval
            self._last_use = {uid: at for uid, at in self._last_use.items() if at > cutoff}
        self._last_use[user_id] = now
        return 0.0
