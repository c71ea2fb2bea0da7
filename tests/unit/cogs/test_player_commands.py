"""Player command callbacks with spec'd mock interactions against a real SQLite database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets

import discord
import pytest
from sqlalchemy import select

from bot.runtime import Services
from cogs.common import CogServices, LocalizedCheckFailure
from cogs.player import PlayerCog
from core.banano.address import BURN_ADDRESS, encode_address
from core.banano.errors import AddressChecksumError, BurnAddressError
from core.db.models import AuditEntry, EpicLink, Player, Wallet
from core.sandbox.yunite_server import SandboxYunite
from core.services.players import WalletInUseError
from tests.unit.cogs.helpers_cogs import (
    OTHER_GUILD_ID,
    OTHER_PLAYER_ID,
    PLAYER_ID,
    FakeMembership,
    embed_text,
    last_embed,
    mock_interaction,
    wait_for_view,
)

EPIC_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


def new_wallet() -> str:
    return encode_address(secrets.token_bytes(32))


@pytest.fixture
def cog(cog_services: CogServices) -> PlayerCog:
    return PlayerCog(cog_services)


async def test_link_wallet_registers_new_wallet(cog: PlayerCog, services: Services) -> None:
    interaction = mock_interaction(PLAYER_ID)
    wallet = new_wallet()

    await PlayerCog.link_wallet.callback(cog, interaction, wallet)

    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    assert wallet in embed_text(last_embed(interaction))
    async with services.db.read() as session:
        stored = await session.scalar(select(Wallet.address))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert stored == wallet
    assert "wallet_linked" in actions


async def test_link_wallet_mentions_nobody(cog: PlayerCog) -> None:
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.link_wallet.callback(cog, interaction, new_wallet())

    allowed = interaction.edit_original_response.await_args.kwargs["allowed_mentions"]
    assert allowed.to_dict() == discord.AllowedMentions.none().to_dict()


async def test_link_wallet_verifies_new_player(
    cog: PlayerCog, services: Services, yunite: SandboxYunite
) -> None:
    yunite.add_player(PLAYER_ID, EPIC_ACCOUNT_ID)
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.link_wallet.callback(cog, interaction, new_wallet())

    async with services.db.read() as session:
        link = await session.scalar(select(EpicLink))
        member = await session.scalar(select(Player.guild_member))
    assert link is not None
    assert link.epic_account_id == EPIC_ACCOUNT_ID
    assert member is True


async def test_link_wallet_rejects_checksum_typo(cog: PlayerCog) -> None:
    wallet = new_wallet()
    typo = wallet[:-1] + ("1" if wallet[-1] != "1" else "3")

    with pytest.raises(AddressChecksumError):
        await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), typo)


async def test_link_wallet_rejects_burn_address(cog: PlayerCog) -> None:
    with pytest.raises(BurnAddressError):
        await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), BURN_ADDRESS)


async def test_link_wallet_rejects_wallet_of_other_player(cog: PlayerCog) -> None:
    wallet = new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(OTHER_PLAYER_ID), wallet)

    with pytest.raises(WalletInUseError):
        await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), wallet)


async def test_link_wallet_replaces_after_confirmation(cog: PlayerCog, services: Services) -> None:
    first, second = new_wallet(), new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), first)
    interaction = mock_interaction(PLAYER_ID)

    task = asyncio.create_task(PlayerCog.link_wallet.callback(cog, interaction, second))
    view = await wait_for_view(interaction.edit_original_response)
    await view.children[0].callback(mock_interaction(PLAYER_ID))  # type: ignore[attr-defined]
    await task

    async with services.db.read() as session:
        stored = await session.scalar(select(Wallet.address))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert stored == second
    assert "wallet_replaced" in actions
    assert second in embed_text(last_embed(interaction))


async def test_link_wallet_cancel_keeps_wallet(cog: PlayerCog, services: Services) -> None:
    first, second = new_wallet(), new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), first)
    interaction = mock_interaction(PLAYER_ID)

    task = asyncio.create_task(PlayerCog.link_wallet.callback(cog, interaction, second))
    view = await wait_for_view(interaction.edit_original_response)
    await view.children[1].callback(mock_interaction(PLAYER_ID))  # type: ignore[attr-defined]
    await task

    async with services.db.read() as session:
        stored = await session.scalar(select(Wallet.address))
    assert stored == first
    assert "Nothing was changed" in embed_text(last_embed(interaction))


async def test_link_wallet_confirmation_times_out(
    cog_services: CogServices, services: Services
) -> None:
    quick = dataclasses.replace(cog_services, confirm_timeout_seconds=0.05)
    cog = PlayerCog(quick)
    first, second = new_wallet(), new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), first)
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.link_wallet.callback(cog, interaction, second)

    async with services.db.read() as session:
        stored = await session.scalar(select(Wallet.address))
    assert stored == first
    assert "expired" in embed_text(last_embed(interaction))


async def test_confirmation_refuses_other_user(cog: PlayerCog, services: Services) -> None:
    first, second = new_wallet(), new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), first)
    interaction = mock_interaction(PLAYER_ID)

    task = asyncio.create_task(PlayerCog.link_wallet.callback(cog, interaction, second))
    view = await wait_for_view(interaction.edit_original_response)
    intruder = mock_interaction(OTHER_PLAYER_ID)
    allowed = await view.interaction_check(intruder)
    await view.children[1].callback(mock_interaction(PLAYER_ID))  # type: ignore[attr-defined]
    await task

    assert allowed is False
    refusal = intruder.response.send_message.await_args
    assert refusal.kwargs["ephemeral"] is True
    assert "Only the person who ran the command" in refusal.args[0]


async def test_second_press_gets_an_answer(cog: PlayerCog) -> None:
    first, second = new_wallet(), new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), first)
    interaction = mock_interaction(PLAYER_ID)

    task = asyncio.create_task(PlayerCog.link_wallet.callback(cog, interaction, second))
    view = await wait_for_view(interaction.edit_original_response)
    await view.children[1].callback(mock_interaction(PLAYER_ID))  # type: ignore[attr-defined]
    await task
    late = mock_interaction(PLAYER_ID)
    await view.children[0].callback(late)  # type: ignore[attr-defined]

    answer = late.response.send_message.await_args
    assert answer.kwargs["ephemeral"] is True
    assert "already answered" in answer.args[0]


async def test_press_after_time_out_says_expired(
    cog_services: CogServices, services: Services
) -> None:
    cog = PlayerCog(dataclasses.replace(cog_services, confirm_timeout_seconds=0.05))
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), new_wallet())
    interaction = mock_interaction(PLAYER_ID)

    task = asyncio.create_task(PlayerCog.link_wallet.callback(cog, interaction, new_wallet()))
    view = await wait_for_view(interaction.edit_original_response)
    await task
    late = mock_interaction(PLAYER_ID)
    await view.children[0].callback(late)  # type: ignore[attr-defined]

    answer = late.response.send_message.await_args
    assert answer.kwargs["ephemeral"] is True
    assert "expired" in answer.args[0]


async def test_status_of_unknown_player(cog: PlayerCog) -> None:
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.status.callback(cog, interaction)

    assert "not registered yet" in embed_text(last_embed(interaction))
    assert interaction.edit_original_response.await_args.kwargs["view"] is None


async def test_status_shows_checklist_and_recheck(cog: PlayerCog) -> None:
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), new_wallet())
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.status.callback(cog, interaction)

    text = embed_text(last_embed(interaction))
    assert "Wallet registered" in text
    assert "No Epic account linked" in text
    view = interaction.edit_original_response.await_args.kwargs["view"]
    assert [child.custom_id for child in view.children] == ["status:recheck"]


async def test_recheck_links_epic_account(
    cog: PlayerCog, services: Services, yunite: SandboxYunite
) -> None:
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), new_wallet())
    yunite.add_player(PLAYER_ID, EPIC_ACCOUNT_ID)
    press = mock_interaction(PLAYER_ID)
    press.type = discord.InteractionType.component

    await cog.recheck(press)

    press.response.defer.assert_awaited_once()
    text = embed_text(press.edit_original_response.await_args.kwargs["embed"])
    assert "checked just now" in text
    assert "Epic account linked" in text
    async with services.db.read() as session:
        link = await session.scalar(select(EpicLink.epic_account_id))
    assert link == EPIC_ACCOUNT_ID


async def test_recheck_is_rate_limited(cog: PlayerCog) -> None:
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), new_wallet())
    await cog.recheck(mock_interaction(PLAYER_ID))
    again = mock_interaction(PLAYER_ID)

    await cog.recheck(again)

    again.response.defer.assert_not_awaited()
    text = embed_text(again.response.send_message.await_args.kwargs["embed"])
    assert "Try again in" in text


async def test_recheck_reports_yunite_failure(
    cog: PlayerCog, yunite: SandboxYunite, membership: FakeMembership
) -> None:
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), new_wallet())
    yunite.inject_status(503)
    press = mock_interaction(PLAYER_ID)

    await cog.recheck(press)

    text = embed_text(press.edit_original_response.await_args.kwargs["embed"])
    assert "Yunite did not answer" in text


async def test_payouts_without_history(cog: PlayerCog) -> None:
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.payouts.callback(cog, interaction, 1)

    assert "no payouts yet" in embed_text(last_embed(interaction))
    assert interaction.edit_original_response.await_args.kwargs["view"] is None


async def test_leaderboard_empty(cog: PlayerCog) -> None:
    interaction = mock_interaction(PLAYER_ID)

    await PlayerCog.leaderboard.callback(cog, interaction, None, None)

    text = embed_text(last_embed(interaction))
    assert "Nobody is on this leaderboard yet" in text
    assert "this week" in text


async def test_notifications_turn_off_and_on(cog: PlayerCog, services: Services) -> None:
    off = mock_interaction(PLAYER_ID)
    await PlayerCog.notifications.callback(cog, off, False)
    async with services.db.read() as session:
        after_off = await session.scalar(select(Player.payout_dms))

    on = mock_interaction(PLAYER_ID)
    await PlayerCog.notifications.callback(cog, on, True)
    async with services.db.read() as session:
        after_on = await session.scalar(select(Player.payout_dms))

    assert after_off is False
    assert after_on is True
    assert "are off" in embed_text(last_embed(off))
    assert "are on" in embed_text(last_embed(on))


async def test_interaction_check_refuses_direct_message(cog: PlayerCog) -> None:
    with pytest.raises(LocalizedCheckFailure) as refused:
        await cog.interaction_check(mock_interaction(PLAYER_ID, guild_id=None))

    assert refused.value.key == "errors.guild_only"


async def test_interaction_check_refuses_other_guild(cog: PlayerCog) -> None:
    with pytest.raises(LocalizedCheckFailure) as refused:
        await cog.interaction_check(mock_interaction(PLAYER_ID, guild_id=OTHER_GUILD_ID))

    assert refused.value.key == "errors.wrong_guild"


async def test_status_reply_in_spanish(cog: PlayerCog) -> None:
    interaction = mock_interaction(PLAYER_ID, locale=discord.Locale.spain_spanish)

    await PlayerCog.status.callback(cog, interaction)

    embed = last_embed(interaction)
    assert embed.title == cog.services.catalog.text("status.title", "es")


async def test_audit_detail_is_json(cog: PlayerCog, services: Services) -> None:
    wallet = new_wallet()
    await PlayerCog.link_wallet.callback(cog, mock_interaction(PLAYER_ID), wallet)

    async with services.db.read() as session:
        detail = await session.scalar(
            select(AuditEntry.detail).where(AuditEntry.action == "wallet_linked")
        )
    assert detail is not None
    assert json.loads(detail) == {"address": wallet}
