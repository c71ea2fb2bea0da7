"""LookupService against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from core.config import Settings
from core.db import Database
from core.db.models import AbuseFlagStatus, EpicLink, StatsState
from core.services.lookup import LookupService
from core.services.status import CheckName, CheckReason
from tests.integration.queries.helpers_seed import (
    NOW,
    ODD_RAW,
    FixedClock,
    add_accrual,
    add_flag,
    add_payout,
    add_player,
    address_for,
    epic_id,
)


def service(database: Database, settings: Settings, clock: FixedClock) -> LookupService:
    return LookupService(database, settings.payout, settings.integrations, clock)


async def test_unknown_player(database: Database, settings: Settings, clock: FixedClock) -> None:
    assert await service(database, settings, clock).lookup(12345) is None


async def test_lookup_lists_accounts_flags_and_freeze(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(
            session, 7, frozen=True, frozen_reason="shared wallet", stats_state=StatsState.PRIVATE
        )
        other = await add_player(session, 8)
        for number, days_ago in ((1001, 30), (1002, 10)):
            session.add(
                EpicLink(
                    player_id=player.id,
                    epic_account_id=epic_id(number),
                    active=False,
                    linked_at=NOW - timedelta(days=days_ago),
                    unlinked_at=NOW - timedelta(days=days_ago - 5),
                    cursor_kills=number,
                    stats_state=StatsState.OK,
                    lower_reading_count=0,
                )
            )
        await add_flag(session, player)
        await add_flag(session, player)
        await add_flag(session, player, status=AbuseFlagStatus.VOIDED)
        await add_flag(session, other)
        await add_accrual(session, player, 4)
        await add_payout(session, player, ODD_RAW)

    lookup = await service(database, settings, clock).lookup(7)

    assert lookup is not None
    assert lookup.discord_id == 7
    assert lookup.created_at == NOW
    assert lookup.wallet_address == address_for(7)
    assert [account.epic_account_id for account in lookup.epic_accounts] == [
        epic_id(7),
        epic_id(1002),
        epic_id(1001),
    ]
    assert [account.active for account in lookup.epic_accounts] == [True, False, False]
    assert lookup.epic_accounts[1].cursor_kills == 1002
    assert lookup.stats_state is StatsState.PRIVATE
    assert lookup.frozen is True
    assert lookup.frozen_reason == "shared wallet"
    assert lookup.frozen_at == NOW
    assert lookup.frozen_by == 42
    assert lookup.open_flags == 2
    assert lookup.eligible is False
    assert lookup.status.check(CheckName.NOT_FROZEN).reason is CheckReason.FROZEN
    assert lookup.status.open_raw == 4 * ODD_RAW
    assert len(lookup.latest_payouts) == 1


async def test_lookup_of_player_without_links(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        await add_player(session, 9, wallet=False, epic_account=None, guild_member=None)

    lookup = await service(database, settings, clock).lookup(9)

    assert lookup is not None
    assert lookup.epic_accounts == ()
    assert lookup.wallet_address is None
    assert lookup.stats_state is None
    assert lookup.open_flags == 0
    assert lookup.frozen is False
    assert [check.passed for check in lookup.checks] == [False] * 4 + [True]
