"""Exact raw sums, CHECK constraints on amounts and kills, and upper-case block hashes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.db.models import Accrual, Payout, PayoutState, SettlementRun
from core.db.raw_sum import SQLITE_SUM_ROWS, raw_sum_columns, raw_sum_value, sum_raw_amounts
from core.db.types import MAX_RAW
from tests.integration.db.helpers_rows import NOW, make_accrual, make_payout, make_player

RAW_PER_BAN = 10**29


async def add_player(db: Database) -> int:
    async with db.write() as session:
        player = make_player(4242)
        session.add(player)
        await session.flush()
        return player.id


async def sum_accruals(db: Database) -> int:
    async with db.read() as session:
        row = (
            await session.execute(select(*raw_sum_columns(Accrual.amount_raw, db.dialect_name)))
        ).one()
    return raw_sum_value(row)


async def test_plain_sum_fails_on_sqlite(sqlite_database: Database) -> None:
    # The reason for raw_sum: SQLite's SUM of the text goes through a float.
    player_id = await add_player(sqlite_database)
    async with sqlite_database.write() as session:
        session.add(make_accrual(player_id, kills=1, raw_per_kill=RAW_PER_BAN))

    with pytest.raises(ValueError, match="1e"):
        async with sqlite_database.read() as session:
            await session.scalar(select(func.sum(Accrual.amount_raw)))


@pytest.mark.parametrize(
    "amounts",
    [
        [],
        [RAW_PER_BAN],
        [RAW_PER_BAN] * 3,
        [RAW_PER_BAN * 21 // 10, 1, 2**64 + 7],
        [MAX_RAW, MAX_RAW, 1],
    ],
)
async def test_raw_sum_is_exact(database: Database, amounts: list[int]) -> None:
    player_id = await add_player(database)
    async with database.write() as session:
        for amount in amounts:
            accrual = make_accrual(player_id, kills=1, raw_per_kill=amount)
            session.add(accrual)

    assert await sum_accruals(database) == sum(amounts)


async def test_sum_raw_amounts_across_id_ranges(database: Database) -> None:
    # SQLite sums each range of SQLITE_SUM_ROWS ids on its own, and the ranges must add up.
    player_id = await add_player(database)
    ids = [1, SQLITE_SUM_ROWS - 1, SQLITE_SUM_ROWS, 2 * SQLITE_SUM_ROWS + 7]
    async with database.write() as session:
        for payout_id in ids:
            payout = make_payout(player_id, f"range-{payout_id}", amount_raw=MAX_RAW - payout_id)
            payout.id = payout_id
            session.add(payout)
        excluded = make_payout(player_id, "range-excluded", amount_raw=MAX_RAW)
        excluded.id = SQLITE_SUM_ROWS + 1
        excluded.state = PayoutState.FAILED
        session.add(excluded)

    async with database.read() as session:
        total = await sum_raw_amounts(
            session, Payout.amount_raw, Payout.id, Payout.state == PayoutState.PENDING
        )
        nothing = await sum_raw_amounts(
            session, Payout.amount_raw, Payout.id, Payout.state == PayoutState.CONFIRMED
        )

    assert total == sum(MAX_RAW - payout_id for payout_id in ids)
    assert nothing == 0


@pytest.mark.parametrize(
    "value",
    ["1e+29", "-00000000000000000000000000000000000001", "12", "0" * 38 + "x", " " + "0" * 38],
)
async def test_raw_text_check_on_sqlite(sqlite_database: Database, value: str) -> None:
    with pytest.raises(IntegrityError, match="ck_settlement_runs_paid_raw_valid"):
        async with sqlite_database.write() as session:
            await session.execute(
                text(
                    "INSERT INTO settlement_runs "
                    "(started_at, outcome, trigger, dry_run, payouts_created, paid_raw) "
                    "VALUES (:now, 'running', 'schedule', true, 0, :paid)"
                ),
                {"now": NOW.isoformat(), "paid": value},
            )


async def test_negative_raw_check_on_postgresql(postgres_database: Database) -> None:
    with pytest.raises(IntegrityError, match="ck_settlement_runs_paid_raw_valid"):
        async with postgres_database.write() as session:
            await session.execute(
                text(
                    "INSERT INTO settlement_runs "
                    "(started_at, outcome, trigger, dry_run, payouts_created, paid_raw) "
                    "VALUES (:now, 'running', 'schedule', true, 0, -1)"
                ),
                {"now": NOW},
            )


async def test_valid_raw_text_accepted(database: Database) -> None:
    async with database.write() as session:
        session.add(SettlementRun(started_at=NOW, dry_run=True, paid_raw=MAX_RAW))

    async with database.read() as session:
        assert await session.scalar(select(SettlementRun.paid_raw)) == MAX_RAW


@pytest.mark.parametrize(("table", "row_kind"), [("accruals", "accrual"), ("payouts", "payout")])
async def test_negative_kills_rejected(database: Database, table: str, row_kind: str) -> None:
    player_id = await add_player(database)
    async with database.write() as session:
        row = make_accrual(player_id) if row_kind == "accrual" else make_payout(player_id, "k1")
        session.add(row)

    with pytest.raises(IntegrityError, match=f"ck_{table}_kills_non_negative"):
        async with database.write() as session:
            await session.execute(text(f"UPDATE {table} SET kills = -1"))  # noqa: S608


async def test_block_hash_stored_upper_case(database: Database) -> None:
    player_id = await add_player(database)
    lower = "ab" * 32
    async with database.write() as session:
        session.add(make_payout(player_id, "k1", block_hash=lower))

    async with database.read() as session:
        stored = await session.scalar(select(Payout.block_hash))
        found = await session.scalar(select(Payout.id).where(Payout.block_hash == lower))

    assert stored == lower.upper()
    assert found is not None


async def test_block_hash_unique_across_case(database: Database) -> None:
    player_id = await add_player(database)
    async with database.write() as session:
        session.add(make_payout(player_id, "k1", block_hash="CD" * 32))

    with pytest.raises(IntegrityError):
        async with database.write() as session:
            session.add(make_payout(player_id, "k2", block_hash="cd" * 32))


async def test_dry_run_reference_kept_as_written(database: Database) -> None:
    player_id = await add_player(database)
    reference = "dryrun-23c1d903c7974a6286b17fe370431c26"
    async with database.write() as session:
        session.add(make_payout(player_id, "k1", block_hash=reference))

    async with database.read() as session:
        assert await session.scalar(select(Payout.block_hash)) == reference
