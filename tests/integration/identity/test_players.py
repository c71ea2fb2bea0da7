"""Wallet registration, freezing and DM preferences, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core.banano.errors import BurnAddressError, InvalidAddressError, OperatorAddressError
from core.db.models import AbuseFlag, AuditEntry, Wallet
from core.services.players import (
    LinkWalletOutcome,
    PlayerNotFoundError,
    WalletInUseError,
)
from tests.integration.identity.helpers_identity import IdentityEnv, discord_id, wallet

BURN_ADDRESS = "ban_1111111111111111111111111111111111111111111111111111hifc8npp"


async def _audit_actions(env: IdentityEnv) -> list[str]:
    async with env.db.read() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_link_wallet_outcomes(env: IdentityEnv) -> None:
    player = discord_id(1)
    players = env.players

    linked = await players.link_wallet(player, f"  {wallet('a')} ", None, False)
    unchanged = await players.link_wallet(player, wallet("a"), None, False)
    needs = await players.link_wallet(player, wallet("b"), None, False)
    after_needs = await players.get(player)
    replaced = await players.link_wallet(player, wallet("b"), None, True)

    assert (linked.outcome, linked.address) == (LinkWalletOutcome.LINKED, wallet("a"))
    assert unchanged.outcome is LinkWalletOutcome.UNCHANGED
    assert (needs.outcome, needs.previous_address) == (
        LinkWalletOutcome.NEEDS_CONFIRMATION,
        wallet("a"),
    )
    assert after_needs is not None
    assert after_needs.wallet_address == wallet("a")
    assert (replaced.outcome, replaced.previous_address) == (
        LinkWalletOutcome.REPLACED,
        wallet("a"),
    )
    assert await _audit_actions(env) == ["wallet_linked", "wallet_replaced"]


async def test_wallet_of_another_player_rejected(env: IdentityEnv) -> None:
    await env.players.link_wallet(discord_id(1), wallet("a"), None, False)

    with pytest.raises(WalletInUseError):
        await env.players.link_wallet(discord_id(2), wallet("a"), None, False)
    with pytest.raises(WalletInUseError):
        await env.players.link_wallet(discord_id(2), wallet("a"), None, True)

    async with env.db.read() as session:
        flags = list(await session.scalars(select(AbuseFlag)))
    assert [flag.kind for flag in flags] == ["wallet_in_use"]


async def test_concurrent_same_wallet_one_wins(env: IdentityEnv) -> None:
    results = await asyncio.gather(
        *(env.players.link_wallet(discord_id(n), wallet("x"), None, False) for n in range(4)),
        return_exceptions=True,
    )

    wins = [result for result in results if not isinstance(result, BaseException)]
    losses = [result for result in results if isinstance(result, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(loss, WalletInUseError) for loss in losses)
    assert await env.count(Wallet) == 1


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("ban_nothing", InvalidAddressError),
        (BURN_ADDRESS, BurnAddressError),
        (wallet("operator"), OperatorAddressError),
    ],
)
async def test_invalid_wallets_rejected(
    env: IdentityEnv, address: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await env.players.link_wallet(discord_id(1), address, wallet("operator"), False)
    assert await env.count(Wallet) == 0


async def test_freeze_and_unfreeze_audited(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")

    frozen = await env.players.freeze(77, player, "multi-accounting")
    again = await env.players.freeze(77, player, "again")
    frozen_info = await env.players.get(player)
    result = await env.verify(player)
    unfrozen = await env.players.unfreeze(77, player, "cleared")

    assert frozen.changed
    assert not again.changed
    assert unfrozen.changed
    assert frozen_info is not None
    assert frozen_info.frozen_reason == "multi-accounting"
    assert not result.eligible
    actions = await _audit_actions(env)
    assert actions.count("player_frozen") == 1
    assert actions.count("player_unfrozen") == 1


async def test_freeze_unknown_player(env: IdentityEnv) -> None:
    with pytest.raises(PlayerNotFoundError):
        await env.players.freeze(77, discord_id(5), "x")


async def test_payout_dms_toggle(env: IdentityEnv) -> None:
    info = await env.players.set_payout_dms(discord_id(1), False)
    assert info.payout_dms is False
    info = await env.players.set_payout_dms(discord_id(1), True)
    assert info.payout_dms is True
