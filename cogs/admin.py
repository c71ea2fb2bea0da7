"""Admin commands: verification, payouts, pause and resume, freezing, abuse review, health.

Discord's default permissions (Manage Server) only hide these commands. Every call is
checked here against `discord.admin_role_ids` and `discord.admin_user_ids`, before any
other check. Destructive actions ask the invoker to confirm with a button, and every action
is audited with the admin's Discord ID: by the service that performs it, or here for the
actions no service records (re-verification, lookups, lists and health).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
import structlog
from discord import app_commands
from discord.ext import commands
from sqlalchemy import func, select

from cogs.common import (
    CogServices,
    ServicesCog,
    ask_confirmation,
    audit_admin_action,
    card_embed,
    command_text,
    defer,
    reply,
    require_admin,
    services_of,
)
from core.db.models import FINAL_PAYOUT_STATES, AbuseFlagStatus, Payout
from core.presentation import (
    mention_user,
    render_abuse_flags,
    render_flag_resolution,
    render_health,
    render_lookup,
    render_retry_outcome,
    render_settlement_report,
    render_verification,
    user_text,
)
from core.services.abuse import ResolveAction
from core.services.faucet_flags import set_paused
from core.services.payout_retry import retry_payout
from core.services.players import PlayerNotFoundError

log = structlog.get_logger(__name__)

# Maximum length of a reason or note an admin types. The services shorten stored text further.
REASON_LENGTH = 500
FLAG_LIST_LIMIT = 25
# A payout not final after this long is in doubt; younger ones are normal work in progress.
UNFINISHED_AFTER = timedelta(minutes=1)

Member = discord.Member | discord.User


class AdminCog(ServicesCog):
    """The commands only configured admins may use."""

    def __init__(self, services: CogServices | None) -> None:
        super().__init__(services)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Refuse anyone who is not a configured admin, whatever their Discord permissions."""
        require_admin(self.services, interaction)
        return True

    @app_commands.command(
        name="reverify",
        description=command_text(
            "command.reverify.description",
            "Check a member's guild membership and Epic link again",
        ),
    )
    @app_commands.describe(
        member=command_text("command.reverify.option.member", "The member to check")
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def reverify(self, interaction: discord.Interaction[Any], member: Member) -> None:
        """Verify a member now, bypassing the cached Yunite response."""
        await defer(interaction)
        services = self.services
        result = await services.verification.verify(
            member.id, "admin", actor_discord_id=interaction.user.id, refresh=True
        )
        await audit_admin_action(
            services,
            "player_reverified",
            interaction.user.id,
            {"discord_id": member.id, "outcome": result.outcome.value},
        )
        card = render_verification(result, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="payout-retry",
        description=command_text(
            "command.payout-retry.description",
            "Check a payout against the ledger, or retry a failed one",
        ),
    )
    @app_commands.describe(
        payout=command_text(
            "command.payout-retry.option.payout", "Payout ID, as shown in the payout history"
        )
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def payout_retry(
        self, interaction: discord.Interaction[Any], payout: app_commands.Range[int, 1]
    ) -> None:
        """Reconcile a payout in flight, or retry a failed one, after confirmation."""
        await defer(interaction)
        services = self.services
        async with services.db.read() as session:
            exists = await session.get(Payout, payout) is not None
        if not exists:
            await audit_admin_action(
                services,
                "payout_retry_refused",
                interaction.user.id,
                {"payout_id": payout, "reason": "not_found"},
            )
            card = services.message(interaction, "payout_retry.not_found", payout_id=payout)
            await reply(interaction, embed=card_embed(card))
            return
        prompt = services.message(interaction, "payout_retry.confirm", payout_id=payout)
        if not await ask_confirmation(services, interaction, prompt):
            return

        outcome = await services.work.run(
            retry_payout(services.settlement, payout, interaction.user.id)
        )
        card = render_retry_outcome(outcome, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="payouts-pause",
        description=command_text(
            "command.payouts-pause.description", "Pause all payouts until an admin resumes them"
        ),
    )
    @app_commands.describe(
        reason=command_text(
            "command.payouts-pause.option.reason",
            "Why payouts are paused (kept in the audit log)",
        )
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def payouts_pause(
        self,
        interaction: discord.Interaction[Any],
        reason: app_commands.Range[str, 1, REASON_LENGTH],
    ) -> None:
        """Pause payouts after confirmation, so settlement runs skip until an admin resumes them."""
        await defer(interaction)
        services = self.services
        if not await ask_confirmation(
            services, interaction, services.message(interaction, "pause.confirm")
        ):
            return

        async with services.db.write() as session:
            changed = await set_paused(
                session,
                paused=True,
                at=services.clock(),
                actor_discord_id=interaction.user.id,
                reason=reason,
            )
        key = "pause.done" if changed else "pause.unchanged"
        card = services.message(interaction, key, reason=user_text(reason, REASON_LENGTH))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="payouts-resume",
        description=command_text("command.payouts-resume.description", "Resume paused payouts"),
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def payouts_resume(self, interaction: discord.Interaction[Any]) -> None:
        """Resume payouts so that the next settlement pays as usual."""
        await defer(interaction)
        services = self.services
        async with services.db.write() as session:
            changed = await set_paused(
                session, paused=False, at=services.clock(), actor_discord_id=interaction.user.id
            )
        key = "resume.done" if changed else "resume.unchanged"
        await reply(interaction, embed=card_embed(services.message(interaction, key)))

    @app_commands.command(
        name="settle-now",
        description=command_text(
            "command.settle-now.description",
            "Run a settlement now instead of waiting for the schedule",
        ),
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def settle_now(self, interaction: discord.Interaction[Any]) -> None:
        """Run one settlement after confirmation, through the same lock as scheduled runs."""
        await defer(interaction)
        services = self.services
        if not await ask_confirmation(
            services, interaction, services.message(interaction, "settle_now.confirm")
        ):
            return

        await reply(
            interaction, embed=card_embed(services.message(interaction, "settle_now.started"))
        )
        report = await services.work.run(
            services.settlement.run("admin", actor_discord_id=interaction.user.id)
        )
        card = render_settlement_report(report, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="freeze",
        description=command_text(
            "command.freeze.description",
            "Freeze a player: their kills are not read and they are not paid",
        ),
    )
    @app_commands.describe(
        member=command_text("command.freeze.option.member", "The player to freeze"),
        reason=command_text(
            "command.freeze.option.reason", "Why the player is frozen; they can read it in /status"
        ),
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def freeze(
        self,
        interaction: discord.Interaction[Any],
        member: Member,
        reason: app_commands.Range[str, 1, REASON_LENGTH],
    ) -> None:
        """Freeze a player after confirmation."""
        await defer(interaction)
        services = self.services
        if await services.players.get(member.id) is None:
            raise PlayerNotFoundError(member.id)
        player = mention_user(member.id)
        prompt = services.message(interaction, "freeze.confirm", player=player)
        if not await ask_confirmation(services, interaction, prompt):
            return

        result = await services.players.freeze(interaction.user.id, member.id, reason)
        key = "freeze.done" if result.changed else "freeze.unchanged"
        card = services.message(
            interaction, key, player=player, reason=user_text(reason, REASON_LENGTH)
        )
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="unfreeze",
        description=command_text(
            "command.unfreeze.description", "Unfreeze a player so they earn and are paid again"
        ),
    )
    @app_commands.describe(
        member=command_text("command.unfreeze.option.member", "The player to unfreeze")
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def unfreeze(self, interaction: discord.Interaction[Any], member: Member) -> None:
        """Unfreeze a player."""
        await defer(interaction)
        services = self.services
        result = await services.players.unfreeze(interaction.user.id, member.id, "")
        key = "unfreeze.done" if result.changed else "unfreeze.unchanged"
        card = services.message(interaction, key, player=mention_user(member.id))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="abuse-flags",
        description=command_text(
            "command.abuse-flags.description",
            "List abuse flags waiting for review or already resolved",
        ),
    )
    @app_commands.describe(
        status=command_text(
            "command.abuse-flags.option.status",
            "Which flags to list: open, released, voided or all",
        )
    )
    @app_commands.choices(
        status=[
            app_commands.Choice(name=command_text("choice.flag_status.open", "Open"), value="open"),
            app_commands.Choice(
                name=command_text("choice.flag_status.released", "Released"), value="released"
            ),
            app_commands.Choice(
                name=command_text("choice.flag_status.voided", "Voided"), value="voided"
            ),
            app_commands.Choice(name=command_text("choice.flag_status.all", "All"), value="all"),
        ]
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def abuse_flags(
        self,
        interaction: discord.Interaction[Any],
        status: app_commands.Choice[str] | None = None,
    ) -> None:
        """List abuse flags with one status, oldest first."""
        await defer(interaction)
        services = self.services
        status_filter = "open" if status is None else status.value
        flag_status = None if status_filter == "all" else AbuseFlagStatus(status_filter)
        flags = await services.abuse.list_flags(flag_status, FLAG_LIST_LIMIT)
        await audit_admin_action(
            services, "abuse_flags_listed", interaction.user.id, {"status": status_filter}
        )
        card = render_abuse_flags(flags, status_filter, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="abuse-resolve",
        description=command_text(
            "command.abuse-resolve.description",
            "Resolve an abuse flag by releasing or voiding its held accrual",
        ),
    )
    @app_commands.describe(
        flag=command_text("command.abuse-resolve.option.flag", "Flag ID, as shown by /abuse-flags"),
        action=command_text(
            "command.abuse-resolve.option.action",
            "release pays the held kills; void never pays them",
        ),
        note=command_text("command.abuse-resolve.option.note", "Note kept in the audit log"),
    )
    @app_commands.choices(
        action=[
            app_commands.Choice(
                name=command_text("choice.action.release", "Release: pay the held kills"),
                value="release",
            ),
            app_commands.Choice(
                name=command_text("choice.action.void", "Void: never pay the held kills"),
                value="void",
            ),
        ]
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def abuse_resolve(
        self,
        interaction: discord.Interaction[Any],
        flag: app_commands.Range[int, 1],
        action: app_commands.Choice[str],
        note: app_commands.Range[str, 0, REASON_LENGTH] = "",
    ) -> None:
        """Release or void a flag's held accrual. Voiding requires confirmation first."""
        await defer(interaction)
        services = self.services
        resolve_action = ResolveAction(action.value)
        if resolve_action is ResolveAction.VOID:
            prompt = services.message(interaction, "abuse_resolve.confirm_void", flag_id=flag)
            if not await ask_confirmation(services, interaction, prompt):
                return

        resolution = await services.abuse.resolve_flag(
            flag, resolve_action, interaction.user.id, note
        )
        card = render_flag_resolution(resolution, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="player-lookup",
        description=command_text(
            "command.player-lookup.description", "Show what the faucet knows about a player"
        ),
    )
    @app_commands.describe(
        member=command_text("command.player-lookup.option.member", "The player to look up")
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def player_lookup(self, interaction: discord.Interaction[Any], member: Member) -> None:
        """Show a player's links, wallet, eligibility, stats state and latest payouts."""
        await defer(interaction)
        services = self.services
        lookup = await services.lookup.lookup(member.id, services.next_settlement_at())
        await audit_admin_action(
            services, "player_looked_up", interaction.user.id, {"discord_id": member.id}
        )
        card = render_lookup(lookup, *services.render_args(interaction))
        await reply(interaction, embed=card_embed(card))

    @app_commands.command(
        name="faucet-health",
        description=command_text(
            "command.faucet-health.description",
            "Show operator balance, node, settlement runs and what is owed",
        ),
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def faucet_health(self, interaction: discord.Interaction[Any]) -> None:
        """Show the operator balance against the floor, the node, runs and liability."""
        await defer(interaction)
        services = self.services
        health = await services.health.health(services.next_settlement_at())
        unfinished = await count_unfinished_payouts(services)
        await audit_admin_action(services, "faucet_health_viewed", interaction.user.id, {})
        card = render_health(
            health, *services.render_args(interaction), unfinished_payouts=unfinished
        )
        await reply(interaction, embed=card_embed(card))


async def count_unfinished_payouts(services: CogServices) -> int:
    """Count payouts not in a final state that are older than `UNFINISHED_AFTER`."""
    cutoff = services.clock() - UNFINISHED_AFTER
    async with services.db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Payout)
            .where(Payout.state.not_in(FINAL_PAYOUT_STATES), Payout.created_at < cutoff)
        )
    return int(count or 0)


async def setup(bot: commands.Bot) -> None:
    """Add the admin commands to the bot (discord.py's extension entry point)."""
    await bot.add_cog(AdminCog(services_of(bot)))
