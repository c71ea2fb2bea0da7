"""Player commands: `/link-wallet`, `/status`, `/payouts`, `/leaderboard`, `/notifications`.

Every command works only in the operator's guild, replies ephemerally, and defers before it
touches the database or an outside service.
"""

from __future__ import annotations

from typing import Any, Literal

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from cogs.common import (
    NO_MENTIONS,
    CogServices,
    OwnerOnlyView,
    PerUserRateLimit,
    ServicesCog,
    ask_confirmation,
    card_embed,
    command_text,
    defer,
    reply,
    require_guild,
    services_of,
    text_for,
)
from core.presentation import (
    Card,
    build_card,
    render_history,
    render_leaderboard,
    render_link_wallet,
    render_status,
)
from core.services.players import LinkWalletOutcome
from core.services.verification import VerificationOutcome

log = structlog.get_logger(__name__)

# A player may press Re-check once a minute: each press calls Yunite, whose rate limits
# cover the whole guild.
RECHECK_INTERVAL_SECONDS = 60.0
# Buttons on a reply stay usable while its interaction token is valid (15 minutes).
VIEW_TIMEOUT_SECONDS = 14 * 60.0
HISTORY_PAGE_SIZE = 10
LEADERBOARD_SIZE = 10

Period = Literal["day", "week", "all"]
Metric = Literal["kills", "paid"]


class PlayerCog(ServicesCog):
    """The commands every member of the guild can use."""

    def __init__(self, services: CogServices | None) -> None:
        super().__init__(services)
        self.recheck_limit = PerUserRateLimit(RECHECK_INTERVAL_SECONDS)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Refuse commands outside the operator's guild, before any other check."""
        require_guild(self.services, interaction)
        return True

    @app_commands.command(
        name="link-wallet",
        description=command_text(
            "command.link-wallet.description",
            "Register the Banano wallet that receives your payouts",
        ),
    )
    @app_commands.describe(
        address=command_text(
            "command.link-wallet.option.address", "Your Banano address, starting with ban_"
        )
    )
    @app_commands.guild_only()
    @app_commands.checks.cooldown(1, 10.0)
    async def link_wallet(
        self, interaction: discord.Interaction[Any], address: app_commands.Range[str, 1, 128]
    ) -> None:
        """Register or replace the player's wallet, asking before a replacement."""
        await defer(interaction)
        services = self.services
        args = services.render_args(interaction)
        discord_id = interaction.user.id

        result = await services.players.link_wallet(
            discord_id, address, services.operator_address, replace=False
        )
        if result.outcome is LinkWalletOutcome.NEEDS_CONFIRMATION:
            prompt = render_link_wallet(result, *args)
            if not await ask_confirmation(services, interaction, prompt, destructive=False):
                return
            result = await services.players.link_wallet(
                discord_id, address, services.operator_address, replace=True
            )

        if result.outcome is LinkWalletOutcome.LINKED:
            # A new player is checked at once, so the poller starts reading their kills
            # without waiting for the periodic re-verification.
            await services.verification.verify(discord_id, "command", guild_member=True)
        await reply(interaction, embed=card_embed(render_link_wallet(result, *args)))

    @app_commands.command(
        name="status",
        description=command_text(
            "command.status.description",
            "Show your eligibility, earnings, caps and latest payouts",
        ),
    )
    @app_commands.guild_only()
    @app_commands.checks.cooldown(1, 5.0)
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Show the player's checklist, earnings, caps and latest payouts."""
        await defer(interaction)
        card = await self.status_card(interaction, interaction.user.id)
        if card is None:
            unknown = render_status(None, *self.services.render_args(interaction))
            await reply(interaction, embed=card_embed(unknown))
            return
        await reply(interaction, embed=card_embed(card), view=StatusView(self, interaction))

    async def status_card(
        self, interaction: discord.Interaction[Any], discord_id: int
    ) -> Card | None:
        """Return the status card of a known player, or None for an unknown one."""
        services = self.services
        status = await services.status.player_status(discord_id, services.next_settlement_at())
        if status is None:
            return None
        return render_status(status, *services.render_args(interaction))

    async def recheck(self, interaction: discord.Interaction[Any]) -> None:
        """Handle the Re-check button: verify membership and the Epic link on the spot."""
        services = self.services
        discord_id = interaction.user.id
        wait_seconds = self.recheck_limit.retry_after(discord_id)
        if wait_seconds > 0:
            card = services.message(interaction, "errors.cooldown", seconds=int(wait_seconds) + 1)
            await interaction.response.send_message(
                embed=card_embed(card),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return

        await interaction.response.defer()
        # The button is on the player's own reply in the guild, which proves membership.
        result = await services.verification.verify(
            discord_id, "button", guild_member=True, refresh=True
        )
        key = "recheck.error" if result.outcome is VerificationOutcome.ERROR else "recheck.done"
        status_card = await self.status_card(interaction, discord_id)
        if status_card is None:
            status_card = render_status(None, *services.render_args(interaction))
        card = _with_notice(status_card, text_for(services, interaction, key))
        await interaction.edit_original_response(
            embed=card_embed(card), allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(
        name="payouts",
        description=command_text("command.payouts.description", "Show your payout history"),
    )
    @app_commands.describe(
        page=command_text("command.payouts.option.page", "Page number, starting at 1")
    )
    @app_commands.guild_only()
    @app_commands.checks.cooldown(2, 5.0)
    async def payouts(
        self, interaction: discord.Interaction[Any], page: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        """Show one page of the player's payouts, with buttons for the other pages."""
        await defer(interaction)
        embed, view = await self.history_page(interaction, interaction.user.id, page)
        await reply(interaction, embed=embed, view=view)

    async def history_page(
        self, interaction: discord.Interaction[Any], discord_id: int, page: int
    ) -> tuple[discord.Embed, HistoryView | None]:
        """Return the embed of one history page and its paging buttons, if it has other pages."""
        services = self.services
        history = await services.history.page(discord_id, page, HISTORY_PAGE_SIZE)
        embed = card_embed(render_history(history, *services.render_args(interaction)))
        if history.pages <= 1:
            return embed, None
        view = HistoryView(self, interaction, history.page, history.has_previous, history.has_next)
        return embed, view

    @app_commands.command(
        name="leaderboard",
        description=command_text(
            "command.leaderboard.description", "Show the top players by kills or by BAN paid"
        ),
    )
    @app_commands.describe(
        period=command_text(
            "command.leaderboard.option.period", "Period: today, this week or all time"
        ),
        metric=command_text("command.leaderboard.option.metric", "Rank by kills or by BAN paid"),
    )
    @app_commands.choices(
        period=[
            app_commands.Choice(name=command_text("choice.period.day", "Today"), value="day"),
            app_commands.Choice(name=command_text("choice.period.week", "This week"), value="week"),
            app_commands.Choice(name=command_text("choice.period.all", "All time"), value="all"),
        ],
        metric=[
            app_commands.Choice(name=command_text("choice.metric.kills", "Kills"), value="kills"),
            app_commands.Choice(name=command_text("choice.metric.paid", "BAN paid"), value="paid"),
        ],
    )
    @app_commands.guild_only()
    @app_commands.checks.cooldown(2, 10.0)
    async def leaderboard(
        self,
        interaction: discord.Interaction[Any],
        period: app_commands.Choice[str] | None = None,
        metric: app_commands.Choice[str] | None = None,
    ) -> None:
        """Show the top players of a period by kills or BAN paid, and the caller's rank."""
        await defer(interaction)
        services = self.services
        board = await services.leaderboard.top(
            _period(period),
            _metric(metric),
            limit=LEADERBOARD_SIZE,
            caller_discord_id=interaction.user.id,
        )
        await reply(
            interaction,
            embed=card_embed(render_leaderboard(board, *services.render_args(interaction))),
        )

    @app_commands.command(
        name="notifications",
        description=command_text(
            "command.notifications.description", "Turn payout messages by DM on or off"
        ),
    )
    @app_commands.describe(
        enabled=command_text(
            "command.notifications.option.enabled",
            "True to get a DM for each payout, false to stop them",
        )
    )
    @app_commands.guild_only()
    @app_commands.checks.cooldown(2, 10.0)
    async def notifications(self, interaction: discord.Interaction[Any], enabled: bool) -> None:
        """Turn the player's payout DMs on or off."""
        await defer(interaction)
        services = self.services
        if not services.settings.integrations.discord.payout_dms:
            await reply(
                interaction,
                embed=card_embed(services.message(interaction, "notifications.disabled")),
            )
            return

        info = await services.players.set_payout_dms(interaction.user.id, enabled)
        key = "notifications.on" if info.payout_dms else "notifications.off"
        await reply(interaction, embed=card_embed(services.message(interaction, key)))


def _period(choice: app_commands.Choice[str] | None) -> Period:
    value = "week" if choice is None else choice.value
    if value == "day":
        return "day"
    if value == "all":
        return "all"
    return "week"


def _metric(choice: app_commands.Choice[str] | None) -> Metric:
    return "paid" if choice is not None and choice.value == "paid" else "kills"


def _with_notice(card: Card, notice: str) -> Card:
    """Return the card with one more line on top of its description."""
    description = f"{notice}\n\n{card.description}" if card.description else notice
    return build_card(
        title=card.title,
        description=description,
        fields=card.fields,
        footer=card.footer,
        tone=card.tone,
        banner_url=card.banner_url,
    )


class StatusView(OwnerOnlyView):
    """The Re-check button under a `/status` reply."""

    def __init__(self, cog: PlayerCog, interaction: discord.Interaction[Any]) -> None:
        services = cog.services
        super().__init__(
            interaction.user.id,
            text_for(services, interaction, "errors.confirm_not_yours"),
            timeout=VIEW_TIMEOUT_SECONDS,
        )
        self._cog = cog
        button = discord.ui.Button[StatusView](
            label=text_for(services, interaction, "status.recheck_button"),
            style=discord.ButtonStyle.primary,
            custom_id="status:recheck",
        )
        button.callback = self._on_recheck  # type: ignore[method-assign]
        self.add_item(button)

    async def _on_recheck(self, interaction: discord.Interaction[Any]) -> None:
        await self._cog.recheck(interaction)


class HistoryView(OwnerOnlyView):
    """Previous and next buttons under a `/payouts` reply."""

    def __init__(
        self,
        cog: PlayerCog,
        interaction: discord.Interaction[Any],
        page: int,
        has_previous: bool,
        has_next: bool,
    ) -> None:
        services = cog.services
        super().__init__(
            interaction.user.id,
            text_for(services, interaction, "errors.confirm_not_yours"),
            timeout=VIEW_TIMEOUT_SECONDS,
        )
        self._cog = cog
        self.page = page
        previous = discord.ui.Button[HistoryView](
            label=text_for(services, interaction, "history.previous"),
            custom_id="history:previous",
            disabled=not has_previous,
        )
        following = discord.ui.Button[HistoryView](
            label=text_for(services, interaction, "history.next"),
            custom_id="history:next",
            disabled=not has_next,
        )
        previous.callback = self._on_previous  # type: ignore[method-assign]
        following.callback = self._on_next  # type: ignore[method-assign]
        self.add_item(previous)
        self.add_item(following)

    async def _on_previous(self, interaction: discord.Interaction[Any]) -> None:
        await self._show(interaction, self.page - 1)

    async def _on_next(self, interaction: discord.Interaction[Any]) -> None:
        await self._show(interaction, self.page + 1)

    async def _show(self, interaction: discord.Interaction[Any], page: int) -> None:
        await interaction.response.defer()
        embed, view = await self._cog.history_page(interaction, interaction.user.id, page)
        self.stop()
        await interaction.edit_original_response(
            embed=embed, view=view, allowed_mentions=NO_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    """Add the player commands to the bot (discord.py's extension entry point)."""
    await bot.add_cog(PlayerCog(services_of(bot)))
