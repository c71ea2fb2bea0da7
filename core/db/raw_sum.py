"""Exact SUM of raw amount columns on SQLite and PostgreSQL.

SQLite stores raw as 39 zero-padded digits of text (see `RawAmount`). Its SUM over text
converts each value to a binary float, so the total is inexact above 2**53 raw, and a total
such as 10**29 comes back as the text '1e+29', which `RawAmount` cannot read. Summing the text
in three integer slices of 13 digits keeps every partial sum exact. Each slice is below 10**13,
so about 900,000 rows fit in SQLite's 64-bit integers before a slice sum could overflow.
PostgreSQL's SUM over NUMERIC is exact and is used as it is.

Usage: `await sum_raw_amounts(session, Accrual.amount_raw, Accrual.id, *conditions)`, or for
other queries `select(*raw_sum_columns(Accrual.amount_raw, dialect_name))`, then
`raw_sum_value(row)` on the aggregate values of the result row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.db.types import RAW_DIGITS

_SLICE_DIGITS = 13
_SLICES = 3
assert _SLICE_DIGITS * _SLICES == RAW_DIGITS

# The slice sums stay exact for about 900,000 rows, so `sum_raw_amounts` sums SQLite rows in
# ranges of at most this many ids.
SQLITE_SUM_ROWS = 500_000


def raw_sum_columns(
    column: InstrumentedAttribute[int] | ColumnElement[int], dialect_name: str
) -> tuple[ColumnElement[Any], ...]:
    """Return the aggregate columns that add up `column` exactly; combine with `raw_sum_value`.

    `dialect_name` is `sqlite` or `postgresql`, as `Database.dialect_name` returns it.
    """
    if dialect_name == "postgresql":
        return (func.sum(column),)
    return tuple(
        func.sum(cast(func.substr(column, 1 + index * _SLICE_DIGITS, _SLICE_DIGITS), Integer))
        for index in range(_SLICES)
    )


def raw_sum_value(parts: Sequence[Any]) -> int:
    """Combine the values of the `raw_sum_columns` aggregates into one exact int (None is 0)."""
    total = 0
    for part in parts:
        total = total * 10**_SLICE_DIGITS + int(part or 0)
    return total


async def sum_raw_amounts(
    session: AsyncSession,
    amount: InstrumentedAttribute[int],
    row_id: InstrumentedAttribute[int],
    *conditions: ColumnElement[bool],
) -> int:
    """Return the exact sum of `amount` over the rows that match `conditions`.

    The database adds the amounts, so the result has one row on PostgreSQL and, on SQLite,
    at most one row per range of `SQLITE_SUM_ROWS` ids of `row_id` (the integer primary key),
    whatever the number of matching rows.
    """
    dialect = session.get_bind().dialect.name
    query = select(*raw_sum_columns(amount, dialect)).where(*conditions)
    if dialect != "postgresql":
        query = query.group_by(row_id // SQLITE_SUM_ROWS)
    total = 0
    for parts in await session.execute(query):
        total += raw_sum_value(parts)
    return total
