"""Payout DMs: one per confirmed payout, never retried, and only to players who want them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock, MagicMock, create_autospec

import discord
import pytest
import structlog
from sqlalchemy import select

from bot.notifications import DM_AUDIT_ACTION, LOOKBACK, PayoutNotifier
from core.banano.units import RAW_PER_BAN
from core.db import Database
from core.db.models import AuditEntry, Payout, PayoutState, Player
from core.i18n import MessageCatalog
from tests.unit.cogs.helpers_cogs import make_settings

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
DISCORD_ID = 600_000_000_000_000_001
BLOCK_HASH = "AB" * 32


async def add_payout(
    db: Database,
    *,
    discord_id: int = DISCORD_ID,
    state: PayoutState = PayoutState.CONFIRMED,
    dry_run: bool = False,
    confirmed_at: datetime = NOW - timedelta(minutes=1),
    wants_dm: bool = True,
) -> int:
    async with db.write() as session:
        player = await session.scalar(select(Player).where(Player.discord_id == discord_id))
        if player is None:
            player = Player(
                discord_id=discord_id, created_at=NOW, frozen=False, payout_dms=wants_dm
            )
            session.add(player)
            await session.flush()
        payout = Payout(
            player_id=player.id,
            destination="ban_1111111111111111111111111111111111111111111111111111hifc8npp",
            amount_raw=21 * RAW_PER_BAN // 10,
            kills=1,
            state=state,
            dry_run=dry_run,
            idempotency_key=f"key-{discord_id}-{confirmed_at.timestamp()}-{state.value}",
            block_hash=None if dry_run else BLOCK_HASH,
            attempts=1,
            created_at=confirmed_at,
            updated_at=confirmed_at,
            confirmed_at=confirmed_at if state is PayoutState.CONFIRMED else None,
        )
        session.add(payout)
        await session.flush()
        return payout.id


def discord_client(send: AsyncMock | None = None) -> Any:
    client = create_autospec(discord.Client, instance=True)
    user = create_autospec(discord.User, instance=True)
    user.send = send or AsyncMock()
    client.get_user.return_value = user
    return client


def notifier(db: Database, client: Any) -> PayoutNotifier:
    return PayoutNotifier(
        client, db, MessageCatalog.load(strict=True), make_settings(), clock=lambda: NOW
    )


async def dm_outcomes(db: Database) -> list[str]:
    async with db.read() as session:
        details = await session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == DM_AUDIT_ACTION)
        )
        return [json.loads(detail)["outcome"] for detail in details]


async def test_confirmed_payout_is_announced_once(sqlite_database: Database) -> None:
    await add_payout(sqlite_database)
    client = discord_client()
    payouts = notifier(sqlite_database, client)

    first = await payouts.run_once()
    second = await payouts.run_once()

    assert (first, second) == (1, 0)
    user = client.get_user.return_value
    embed = user.send.await_args.kwargs["embed"]
    assert "2.1 BAN" in (embed.description or "")
    assert BLOCK_HASH in (embed.description or "")
    assert user.send.await_args.kwargs["allowed_mentions"].to_dict() == {"parse": []}
    assert await dm_outcomes(sqlite_database) == ["attempted"]


async def test_player_who_turned_dms_off(sqlite_database: Database) -> None:
    await add_payout(sqlite_database, wants_dm=False)
    client = discord_client()

    sent = await notifier(sqlite_database, client).run_once()

    assert sent == 0
    client.get_user.return_value.send.assert_not_awaited()
    assert await dm_outcomes(sqlite_database) == ["disabled"]


async def test_refused_dm_is_not_retried(sqlite_database: Database) -> None:
    await add_payout(sqlite_database)
    refused = discord.Forbidden(MagicMock(status=403, reason="x"), {"code": 50007, "message": "x"})
    send = AsyncMock(side_effect=refused)
    payouts = notifier(sqlite_database, discord_client(send))

    with structlog.testing.capture_logs() as logs:
        await payouts.run_once()
        await payouts.run_once()

    assert send.await_count == 1
    assert [entry["event"] for entry in logs if entry["event"].startswith("payout_dm_")] == [
        "payout_dm_refused"
    ]


@pytest.mark.parametrize(
    "payout",
    [
        {"state": PayoutState.SUBMITTED},
        {"dry_run": True, "state": PayoutState.DRY_RUN},
        {"confirmed_at": NOW - LOOKBACK - timedelta(minutes=1)},
    ],
)
async def test_payouts_not_announced(sqlite_database: Database, payout: dict[str, Any]) -> None:
    await add_payout(sqlite_database, **payout)
    client = discord_client()

    sent = await notifier(sqlite_database, client).run_once()

    assert sent == 0
    client.get_user.return_value.send.assert_not_awaited()


async def test_unknown_user_is_fetched(sqlite_database: Database) -> None:
    await add_payout(sqlite_database)
    client = discord_client()
    fetched = client.get_user.return_value
    client.get_user.return_value = None
    client.fetch_user.return_value = fetched

    sent = await notifier(sqlite_database, client).run_once()

    assert sent == 1
    client.fetch_user.assert_awaited_once_with(DISCORD_ID)
