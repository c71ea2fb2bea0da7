"""The uniqueness the money rules depend on is enforced by the database on both backends."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, select, text
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.db.claims import ClaimRequest, claim_accruals, claim_accruals_for, release_claims
from core.db.models import Accrual, AccrualStatus, EpicLink, Payout, PayoutAccrual, ReceivedBlock
from tests.integration.db.helpers_rows import (
    NOW,
    make_accrual,
    make_epic_link,
    make_payout,
    make_player,
    make_wallet,
)

ADDRESS_A = "ban_1" + "a" * 59
ADDRESS_B = "ban_1" + "b" * 59
EPIC_A = "a" * 32
EPIC_B = "b" * 32
HASH_A = "A" * 64


async def add_players(db: Database, count: int) -> list[int]:
    async with db.write() as session:
        players = [make_player(1000 + index) for index in range(count)]
        session.add_all(players)
        await session.flush()
        return [player.id for player in players]


async def test_player_discord_id_unique(database: Database) -> None:
    await add_players(database, 1)

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_player(1000))


async def test_one_wallet_per_player(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        session.add(make_wallet(player_id, ADDRESS_A))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_wallet(player_id, ADDRESS_B))


async def test_one_player_per_wallet(database: Database) -> None:
    first, second = await add_players(database, 2)
    async with database.write() as session:
        session.add(make_wallet(first, ADDRESS_A))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_wallet(second, ADDRESS_A))


async def test_one_player_per_epic_account(database: Database) -> None:
    first, second = await add_players(database, 2)
    async with database.write() as session:
        session.add(make_epic_link(first, EPIC_A))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_epic_link(second, EPIC_A, active=False))


async def test_one_active_epic_link_per_player(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        session.add(make_epic_link(player_id, EPIC_A))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_epic_link(player_id, EPIC_B))


async def test_inactive_epic_links_coexist(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        session.add(make_epic_link(player_id, EPIC_A, active=False))
        session.add(make_epic_link(player_id, "c" * 32, active=False))
        session.add(make_epic_link(player_id, EPIC_B))

    async with database.read() as session:
        links = (await session.scalars(select(EpicLink).order_by(EpicLink.id))).all()
    assert [link.active for link in links] == [False, False, True]


async def test_relink_swaps_active_link(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        old = make_epic_link(player_id, EPIC_A)
        session.add(old)

    async with database.write() as session:
        await session.execute(
            text("UPDATE epic_links SET active = :inactive WHERE id = :id"),
            {"inactive": False, "id": old.id},
        )
        session.add(make_epic_link(player_id, EPIC_B))

    async with database.read() as session:
        active = (await session.scalars(select(EpicLink).where(EpicLink.active))).all()
    assert [link.epic_account_id for link in active] == [EPIC_B]


async def test_payout_idempotency_key_unique(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        session.add(make_payout(player_id, "key-1"))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_payout(player_id, "key-1"))


async def test_payout_block_hash_unique(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        session.add(make_payout(player_id, "key-1", block_hash=HASH_A))
        # Payouts without a block yet may share the NULL hash.
        session.add(make_payout(player_id, "key-2"))
        session.add(make_payout(player_id, "key-3"))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_payout(player_id, "key-4", block_hash=HASH_A))


async def test_received_block_source_unique(database: Database) -> None:
    async with database.write() as session:
        session.add(
            ReceivedBlock(
                block_hash="1" * 64, source_block_hash=HASH_A, amount_raw=5, received_at=NOW
            )
        )

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(
                ReceivedBlock(
                    block_hash="2" * 64, source_block_hash=HASH_A, amount_raw=5, received_at=NOW
                )
            )


async def test_enum_check_rejects_unknown_value(database: Database) -> None:
    (player_id,) = await add_players(database, 1)
    async with database.write() as session:
        accrual = make_accrual(player_id)
        session.add(accrual)

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            await session.execute(
                text("UPDATE accruals SET status = 'paid' WHERE id = :id"), {"id": accrual.id}
            )


async def test_foreign_keys_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_wallet(999, ADDRESS_A))


async def accrual_and_two_payouts(db: Database) -> tuple[int, int, int]:
    (player_id,) = await add_players(db, 1)
    async with db.write() as session:
        accrual = make_accrual(player_id)
        first = make_payout(player_id, "key-1")
        second = make_payout(player_id, "key-2")
        session.add_all([accrual, first, second])
    return accrual.id, first.id, second.id


async def test_claim_direct_update_second_matches_nothing(database: Database) -> None:
    accrual_id, first, second = await accrual_and_two_payouts(database)
    claim = text(
        "UPDATE accruals SET payout_id = :payout WHERE id = :accrual AND payout_id IS NULL"
    )

    async with database.write() as session:
        result = await session.execute(claim, {"payout": first, "accrual": accrual_id})
        assert cast(CursorResult[Any], result).rowcount == 1
    async with database.write() as session:
        result = await session.execute(claim, {"payout": second, "accrual": accrual_id})
        assert cast(CursorResult[Any], result).rowcount == 0

    async with database.read() as session:
        assert await session.scalar(select(Accrual.payout_id)) == first


async def test_claim_accruals_second_payout_gets_none(database: Database) -> None:
    accrual_id, first, second = await accrual_and_two_payouts(database)

    async with database.write() as session:
        assert await claim_accruals(session, first, [accrual_id, accrual_id]) == 1
    async with database.write() as session:
        assert await claim_accruals(session, second, [accrual_id]) == 0

    async with database.read() as session:
        assert await session.scalar(select(Accrual.payout_id)) == first
        links = (await session.execute(select(PayoutAccrual.payout_id))).scalars().all()
    assert links == [first]


async def test_claim_accruals_racing_transactions(database: Database) -> None:
    accrual_id, first, second = await accrual_and_two_payouts(database)

    async def claim_for_second() -> int:
        async with database.write() as session:
            return await claim_accruals(session, second, [accrual_id])

    async with database.write() as session:
        assert await claim_accruals(session, first, [accrual_id]) == 1
        # The second claim starts while the first transaction is still open. It waits for
        # the row lock (PostgreSQL) or the write lock (SQLite), then finds the accrual taken.
        racing = asyncio.create_task(claim_for_second())
        await asyncio.sleep(0.05)

    assert await racing == 0
    async with database.read() as session:
        assert await session.scalar(select(Accrual.payout_id)) == first


async def test_claim_skips_held_and_foreign_accruals(database: Database) -> None:
    first_player, second_player = await add_players(database, 2)
    async with database.write() as session:
        open_accrual = make_accrual(first_player)
        held = make_accrual(first_player)
        held.status = AccrualStatus.HELD
        foreign = make_accrual(second_player)
        payout = make_payout(first_player, "key-1")
        session.add_all([open_accrual, held, foreign, payout])

    async with database.write() as session:
        claimed = await claim_accruals(session, payout.id, [open_accrual.id, held.id, foreign.id])

    assert claimed == 1
    async with database.read() as session:
        claimed_ids = (
            await session.scalars(select(Accrual.id).where(Accrual.payout_id == payout.id))
        ).all()
    assert claimed_ids == [open_accrual.id]


async def test_batched_claims_skip_unclaimable(database: Database) -> None:
    first_player, second_player = await add_players(database, 2)
    async with database.write() as session:
        mine = [make_accrual(first_player) for _ in range(3)]
        theirs = make_accrual(second_player)
        held = make_accrual(first_player)
        held.status = AccrualStatus.HELD
        claimed_elsewhere = make_accrual(second_player)
        earlier = make_payout(second_player, "key-earlier")
        first = make_payout(first_player, "key-1")
        second = make_payout(second_player, "key-2")
        session.add_all([*mine, theirs, held, claimed_elsewhere, earlier, first, second])
        await session.flush()
        claimed_elsewhere.payout_id = earlier.id

    async with database.write() as session:
        claimed = await claim_accruals_for(
            session,
            [
                # The first payout also requests the second player's accrual and a held one.
                ClaimRequest(first.id, first_player, [a.id for a in mine] + [theirs.id, held.id]),
                ClaimRequest(
                    second.id, second_player, [theirs.id, claimed_elsewhere.id, theirs.id]
                ),
            ],
        )

    assert claimed == {
        first.id: {a.id: a.amount_raw for a in mine},
        second.id: {theirs.id: theirs.amount_raw},
    }
    async with database.read() as session:
        owners = dict((await session.execute(select(Accrual.id, Accrual.payout_id))).all())
    assert owners == {
        **{a.id: first.id for a in mine},
        theirs.id: second.id,
        held.id: None,
        claimed_elsewhere.id: earlier.id,
    }


async def test_batched_claims_refuse_a_payout_named_twice(database: Database) -> None:
    (player,) = await add_players(database, 1)
    async with database.write() as session:
        payout = make_payout(player, "key-1")
        session.add(payout)

    async with database.write() as session:
        with pytest.raises(ValueError, match="only once"):
            await claim_accruals_for(
                session,
                [ClaimRequest(payout.id, player, [1]), ClaimRequest(payout.id, player, [2])],
            )


async def test_release_claims_frees_accruals(database: Database) -> None:
    accrual_id, first, second = await accrual_and_two_payouts(database)
    async with database.write() as session:
        await claim_accruals(session, first, [accrual_id])

    async with database.write() as session:
        assert await release_claims(session, first) == 1
    async with database.write() as session:
        assert await claim_accruals(session, second, [accrual_id]) == 1

    async with database.read() as session:
        history = (
            await session.execute(select(PayoutAccrual.payout_id).order_by(PayoutAccrual.payout_id))
        ).scalars()
        assert list(history) == [first, second]
        assert await session.scalar(select(Payout.id).where(Payout.id == second)) == second
