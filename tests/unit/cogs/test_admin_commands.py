"""Admin command callbacks with spec'd mock interactions against a real SQLite database."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import discord
import pytest
from sqlalchemy import select

from bot.runtime import Services
from cogs.admin import AdminCog
from cogs.common import CogServices, LocalizedCheckFailure
from cogs.player import PlayerCog
from core.banano.address import encode_address
from core.db.models import AuditEntry, Payout, PayoutState, Player, SettlementRun
from core.sandbox.yunite_server import SandboxYunite
from core.services.abuse import AbuseFlagNotFoundError
from core.services.faucet_flags import is_paused
from core.services.players import PlayerNotFoundError
from tests.unit.cogs.helpers_cogs import (
    ADMIN_ROLE_ID,
    ADMIN_USER_ID,
    MEMBER_ROLE_ID,
    PLAYER_ID,
    ROLE_ADMIN_ID,
    embed_text,
    last_embed,
    member_mock,
    mock_interaction,
    wait_for_view,
)

EPIC_ACCOUNT_ID = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def cog(cog_services: CogServices) -> AdminCog:
    return AdminCog(cog_services)


def admin() -> Any:
    return mock_interaction(ADMIN_USER_ID)


async def confirm(interaction: Any, command: Awaitable[None], *, press: int = 0) -> None:
    """Run `command`, press button `press` (0 confirm, 1 cancel) of its prompt, and finish."""
    task = asyncio.ensure_future(command)
    view = await wait_for_view(interaction.edit_original_response)
    await view.children[press].callback(mock_interaction(interaction.user.id))  # type: ignore[attr-defined]
    await task


async def audit_entries(services: Services, action: str) -> list[AuditEntry]:
    async with services.db.read() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def register_player(cog_services: CogServices) -> None:
    wallet = encode_address(secrets.token_bytes(32))
    await PlayerCog.link_wallet.callback(
        PlayerCog(cog_services), mock_interaction(PLAYER_ID), wallet
    )


async def test_check_refuses_member_without_admin_role(cog: AdminCog) -> None:
    interaction = mock_interaction(PLAYER_ID, role_ids=(MEMBER_ROLE_ID,))

    with pytest.raises(LocalizedCheckFailure) as refused:
        await cog.interaction_check(interaction)

    assert refused.value.key == "errors.not_admin"


async def test_check_accepts_admin_role(cog: AdminCog) -> None:
    interaction = mock_interaction(ROLE_ADMIN_ID, role_ids=(MEMBER_ROLE_ID, ADMIN_ROLE_ID))

    assert await cog.interaction_check(interaction) is True


async def test_check_accepts_admin_user(cog: AdminCog) -> None:
    assert await cog.interaction_check(admin()) is True


async def test_check_refuses_admin_in_direct_message(cog: AdminCog) -> None:
    with pytest.raises(LocalizedCheckFailure) as refused:
        await cog.interaction_check(mock_interaction(ADMIN_USER_ID, guild_id=None))

    assert refused.value.key == "errors.guild_only"


async def test_reverify_is_audited_with_admin(
    cog: AdminCog, services: Services, yunite: SandboxYunite
) -> None:
    yunite.add_player(PLAYER_ID, EPIC_ACCOUNT_ID)
    interaction = admin()

    await AdminCog.reverify.callback(cog, interaction, member_mock(PLAYER_ID))

    assert EPIC_ACCOUNT_ID in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "player_reverified")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]
    assert json.loads(entries[0].detail)["discord_id"] == PLAYER_ID


async def test_pause_after_confirmation(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await confirm(interaction, AdminCog.payouts_pause.callback(cog, interaction, "node upgrade"))

    async with services.db.read() as session:
        assert await is_paused(session) is True
    entries = await audit_entries(services, "payouts_paused")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]
    assert "node upgrade" in embed_text(last_embed(interaction))


async def test_pause_cancelled_changes_nothing(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await confirm(interaction, AdminCog.payouts_pause.callback(cog, interaction, "x"), press=1)

    async with services.db.read() as session:
        assert await is_paused(session) is False
    assert await audit_entries(services, "payouts_paused") == []


async def test_resume_after_pause(cog: AdminCog, services: Services) -> None:
    pause = admin()
    await confirm(pause, AdminCog.payouts_pause.callback(cog, pause, "maintenance"))
    interaction = admin()

    await AdminCog.payouts_resume.callback(cog, interaction)

    async with services.db.read() as session:
        assert await is_paused(session) is False
    assert "resumed" in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "payouts_resumed")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]


async def test_settle_now_runs_dry_settlement(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await confirm(interaction, AdminCog.settle_now.callback(cog, interaction))

    async with services.db.read() as session:
        runs = list(await session.scalars(select(SettlementRun)))
    assert [run.trigger for run in runs] == ["admin"]
    assert "Dry-run settlement finished" in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "settlement_requested")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]


async def test_freeze_unknown_player(cog: AdminCog) -> None:
    interaction = admin()

    with pytest.raises(PlayerNotFoundError):
        await AdminCog.freeze.callback(cog, interaction, member_mock(PLAYER_ID), "bot")

    interaction.edit_original_response.assert_not_awaited()


async def test_freeze_and_unfreeze(
    cog: AdminCog, cog_services: CogServices, services: Services
) -> None:
    await register_player(cog_services)
    freeze = admin()

    await confirm(freeze, AdminCog.freeze.callback(cog, freeze, member_mock(PLAYER_ID), "farming"))
    async with services.db.read() as session:
        frozen_by = await session.scalar(select(Player.frozen_by))
    unfreeze = admin()
    await AdminCog.unfreeze.callback(cog, unfreeze, member_mock(PLAYER_ID))
    async with services.db.read() as session:
        frozen = await session.scalar(select(Player.frozen))

    assert frozen_by == ADMIN_USER_ID
    assert frozen is False
    assert "farming" in embed_text(last_embed(freeze))
    assert [e.actor_discord_id for e in await audit_entries(services, "player_frozen")] == [
        ADMIN_USER_ID
    ]
    assert [e.actor_discord_id for e in await audit_entries(services, "player_unfrozen")] == [
        ADMIN_USER_ID
    ]


async def test_freeze_reason_cannot_mention(cog: AdminCog, cog_services: CogServices) -> None:
    await register_player(cog_services)
    interaction = admin()

    await confirm(
        interaction,
        AdminCog.freeze.callback(cog, interaction, member_mock(PLAYER_ID), "@everyone **bold**"),
    )

    text = embed_text(last_embed(interaction))
    assert "@everyone" not in text
    assert "\\*\\*bold\\*\\*" in text


async def test_abuse_flags_empty_is_audited(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await AdminCog.abuse_flags.callback(cog, interaction, None)

    assert "No flags to show" in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "abuse_flags_listed")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]


async def test_abuse_resolve_unknown_flag(cog: AdminCog) -> None:
    release = discord.app_commands.Choice(name="Release", value="release")

    with pytest.raises(AbuseFlagNotFoundError):
        await AdminCog.abuse_resolve.callback(cog, admin(), 42, release, "")


async def test_abuse_resolve_void_asks_first(cog: AdminCog) -> None:
    interaction = admin()
    void = discord.app_commands.Choice(name="Void", value="void")

    await confirm(
        interaction, AdminCog.abuse_resolve.callback(cog, interaction, 42, void, ""), press=1
    )

    assert "Cancelled" in embed_text(last_embed(interaction))


async def test_player_lookup_unknown_player(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await AdminCog.player_lookup.callback(cog, interaction, member_mock(PLAYER_ID))

    assert "no record of that member" in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "player_looked_up")
    assert [entry.actor_discord_id for entry in entries] == [ADMIN_USER_ID]


async def test_player_lookup_known_player(cog: AdminCog, cog_services: CogServices) -> None:
    await register_player(cog_services)
    interaction = admin()

    await AdminCog.player_lookup.callback(cog, interaction, member_mock(PLAYER_ID))

    assert str(PLAYER_ID) in embed_text(last_embed(interaction))


async def test_faucet_health_in_dry_run(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    await AdminCog.faucet_health.callback(cog, interaction)

    assert "Dry run" in embed_text(last_embed(interaction))
    assert len(await audit_entries(services, "faucet_health_viewed")) == 1


async def test_faucet_health_flags_payout_not_final(
    cog: AdminCog, cog_services: CogServices, services: Services
) -> None:
    await register_player(cog_services)
    now = services.clock()
    async with services.db.write() as session:
        player_id = await session.scalar(select(Player.id))
        assert player_id is not None
        session.add(
            Payout(
                player_id=player_id,
                destination="ban_1" + "1" * 59,
                amount_raw=10**29,
                kills=1,
                state=PayoutState.SIGNED,
                dry_run=False,
                idempotency_key="health-signed",
                created_at=now - timedelta(minutes=5),
                updated_at=now - timedelta(minutes=5),
            )
        )
    interaction = admin()

    await AdminCog.faucet_health.callback(cog, interaction)

    text = embed_text(last_embed(interaction))
    assert "Something needs attention" in text
    assert "signed or submitted after more than a minute: 1." in text


async def test_payout_retry_unknown_payout(cog: AdminCog, services: Services) -> None:
    interaction = admin()

    # Refused at once, with no confirmation prompt, and audited.
    await AdminCog.payout_retry.callback(cog, interaction, 77)

    assert "There is no payout #77" in embed_text(last_embed(interaction))
    entries = await audit_entries(services, "payout_retry_refused")
    assert [json.loads(entry.detail) for entry in entries] == [
        {"payout_id": 77, "reason": "not_found"}
    ]
