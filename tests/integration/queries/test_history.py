"""HistoryService paging against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db import Database
from core.db.models import PayoutState
from core.services.history import HistoryService
from tests.integration.queries.helpers_seed import NOW, ODD_RAW, add_payout, add_player


async def seed_payouts(database: Database, count: int, discord_id: int = 1) -> list[int]:
    """Add `count` payouts an hour apart and return their ids, newest first."""
    async with database.write() as session:
        player = await add_player(session, discord_id)
        ids = [
            (await add_payout(session, player, ODD_RAW, created_at=NOW - timedelta(hours=n))).id
            for n in range(count)
        ]
    return ids


async def test_unknown_player_gets_empty_page(database: Database) -> None:
    page = await HistoryService(database).page(404, 3)

    assert page.total == 0
    assert page.payouts == ()
    assert page.page == 1
    assert page.pages == 1
    assert not page.has_previous
    assert not page.has_next


async def test_player_without_payouts(database: Database) -> None:
    async with database.write() as session:
        await add_player(session, 1)

    page = await HistoryService(database).page(1, 1)

    assert page.total == 0
    assert page.pages == 1
    assert page.payouts == ()


async def test_pages_cover_every_payout_once(database: Database) -> None:
    ids = await seed_payouts(database, 23)
    service = HistoryService(database)

    seen: list[int] = []
    for number in (1, 2, 3):
        page = await service.page(1, number, page_size=10)
        assert page.total == 23
        assert page.pages == 3
        assert page.page == number
        seen.extend(payout.id for payout in page.payouts)

    assert seen == ids
    last = await service.page(1, 3, page_size=10)
    assert len(last.payouts) == 3
    assert last.has_previous
    assert not last.has_next


async def test_exact_multiple_has_no_empty_page(database: Database) -> None:
    await seed_payouts(database, 20)

    page = await HistoryService(database).page(1, 2, page_size=10)

    assert page.pages == 2
    assert len(page.payouts) == 10
    assert not page.has_next


async def test_page_past_the_end_gives_last_page(database: Database) -> None:
    ids = await seed_payouts(database, 12)

    page = await HistoryService(database).page(1, 99, page_size=5)

    assert page.page == 3
    assert [payout.id for payout in page.payouts] == ids[10:]


async def test_page_below_one_gives_first_page(database: Database) -> None:
    ids = await seed_payouts(database, 4)

    page = await HistoryService(database).page(1, 0, page_size=3)

    assert page.page == 1
    assert [payout.id for payout in page.payouts] == ids[:3]


async def test_same_time_payouts_order_by_id(database: Database) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        first = await add_payout(session, player, ODD_RAW)
        second = await add_payout(session, player, ODD_RAW)

    page = await HistoryService(database).page(1, 1)

    assert [payout.id for payout in page.payouts] == [second.id, first.id]


async def test_only_own_payouts_listed(database: Database) -> None:
    await seed_payouts(database, 3, discord_id=1)
    await seed_payouts(database, 2, discord_id=2)

    page = await HistoryService(database).page(2, 1)

    assert page.total == 2
    assert len(page.payouts) == 2


@pytest.mark.parametrize("page_size", [0, 26])
async def test_page_size_out_of_range(database: Database, page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await HistoryService(database).page(1, 1, page_size=page_size)


async def test_single_payout_by_id(database: Database) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        payout = await add_payout(session, player, ODD_RAW, state=PayoutState.DRY_RUN, kills=3)

    service = HistoryService(database)
    found = await service.payout(payout.id)

    assert found is not None
    assert found.amount_raw == ODD_RAW
    assert found.kills == 3
    assert found.dry_run is True
    assert found.block_hash is not None
    assert found.block_hash.startswith("dryrun-")
    assert await service.payout(payout.id + 100) is None
