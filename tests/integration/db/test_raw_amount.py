"""Raw amounts are exact integers in the database and sort in numeric order on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from core.db import Database
from core.db.models import SettlementRun
from core.db.types import MAX_RAW
from tests.integration.db.helpers_rows import NOW

AMOUNTS = [0, 1, 9, 10, 2**64, 10**29 - 1, 10**29, 10**29 + 1, 2**127, MAX_RAW - 1, MAX_RAW]


async def store_amounts(db: Database, amounts: list[int]) -> None:
    async with db.write() as session:
        session.add_all(
            SettlementRun(started_at=NOW, dry_run=True, paid_raw=amount) for amount in amounts
        )


@pytest.mark.parametrize("amount", [0, 1, 10**29, MAX_RAW])
async def test_raw_amount_round_trips(database: Database, amount: int) -> None:
    await store_amounts(database, [amount])

    async with database.read() as session:
        stored = await session.scalar(select(SettlementRun.paid_raw))

    assert stored == amount
    assert type(stored) is int


async def test_raw_amount_sorts_numerically(database: Database) -> None:
    shuffled = [AMOUNTS[index] for index in (5, 0, 10, 3, 7, 1, 9, 2, 8, 4, 6)]
    await store_amounts(database, shuffled)

    async with database.read() as session:
        ascending = (
            await session.scalars(select(SettlementRun.paid_raw).order_by(SettlementRun.paid_raw))
        ).all()
        descending = (
            await session.scalars(
                select(SettlementRun.paid_raw).order_by(SettlementRun.paid_raw.desc())
            )
        ).all()

    assert ascending == AMOUNTS
    assert descending == AMOUNTS[::-1]


async def test_raw_amount_compares_numerically(database: Database) -> None:
    await store_amounts(database, AMOUNTS)

    async with database.read() as session:
        above = (
            await session.scalars(
                select(SettlementRun.paid_raw)
                .where(SettlementRun.paid_raw > 10**29)
                .order_by(SettlementRun.paid_raw)
            )
        ).all()
        maximum = await session.scalar(
            select(SettlementRun.paid_raw).where(SettlementRun.paid_raw == MAX_RAW)
        )

    assert above == [amount for amount in AMOUNTS if amount > 10**29]
    assert maximum == MAX_RAW


async def test_sqlite_stores_padded_text(sqlite_database: Database) -> None:
    await store_amounts(sqlite_database, [10**29])

    async with sqlite_database.read() as session:
        row = (
            await session.execute(text("SELECT paid_raw, typeof(paid_raw) FROM settlement_runs"))
        ).one()

    assert tuple(row) == ("0" * 9 + "1" + "0" * 29, "text")


async def test_postgres_stores_numeric(postgres_database: Database) -> None:
    await store_amounts(postgres_database, [MAX_RAW])

    async with postgres_database.read() as session:
        row = (
            await session.execute(
                text("SELECT paid_raw::text, pg_typeof(paid_raw)::text FROM settlement_runs")
            )
        ).one()

    assert tuple(row) == (str(MAX_RAW), "numeric")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.0, TypeError),
        (1e29, TypeError),
        (True, TypeError),
        ("100", TypeError),
        (-1, ValueError),
        (MAX_RAW + 1, ValueError),
    ],
)
async def test_raw_amount_rejects_invalid(
    database: Database, value: object, error: type[Exception]
) -> None:
    with pytest.raises(StatementError) as raised:
        async with database.write() as session:
            session.add(SettlementRun(started_at=NOW, dry_run=True, paid_raw=value))

    assert isinstance(raised.value.orig, error)
    async with database.read() as session:
        assert await session.scalar(select(SettlementRun.id)) is None
