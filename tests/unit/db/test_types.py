"""RawAmount and UtcDateTime conversions, checked without a database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from core.db.models import PeriodTotal
from core.db.types import MAX_RAW, RawAmount, UtcDateTime

SQLITE = sqlite.dialect()
POSTGRESQL = postgresql.dialect()


@pytest.mark.parametrize("amount", [0, 1, 10**29, MAX_RAW])
def test_raw_amount_sqlite_text_round_trip(amount: int) -> None:
    stored = RawAmount().process_bind_param(amount, SQLITE)

    assert stored == str(amount).zfill(39)
    assert RawAmount().process_result_value(stored, SQLITE) == amount


@pytest.mark.parametrize("amount", [0, 1, 10**29, MAX_RAW])
def test_raw_amount_postgres_decimal_round_trip(amount: int) -> None:
    stored = RawAmount().process_bind_param(amount, POSTGRESQL)

    assert stored == Decimal(amount)
    assert RawAmount().process_result_value(stored, POSTGRESQL) == amount


def test_raw_amount_padding_sorts_as_numbers() -> None:
    amounts = [MAX_RAW, 0, 10**29, 9, 10, 2**64]
    stored = [RawAmount().process_bind_param(amount, SQLITE) for amount in amounts]

    assert sorted(stored) == [RawAmount().process_bind_param(a, SQLITE) for a in sorted(amounts)]


@pytest.mark.parametrize("value", [1.0, 1e29, True, False, "5", Decimal(5)])
def test_raw_amount_rejects_non_int(value: object) -> None:
    with pytest.raises(TypeError, match="raw amounts must be int"):
        RawAmount().process_bind_param(value, SQLITE)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, MAX_RAW + 1])
def test_raw_amount_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        RawAmount().process_bind_param(value, POSTGRESQL)


@pytest.mark.parametrize("value", [1.5e30, 5.0])
def test_raw_amount_rejects_float_result(value: float) -> None:
    # SQLite returns a float when it computed the value, for example SUM over the column.
    with pytest.raises(ValueError, match="invalid literal"):
        RawAmount().process_result_value(value, SQLITE)


@pytest.mark.parametrize(
    "build",
    [
        lambda: PeriodTotal.paid_raw + 1,
        lambda: 1 + PeriodTotal.paid_raw,
        lambda: PeriodTotal.paid_raw - PeriodTotal.paid_raw,
        lambda: PeriodTotal.paid_raw * 2,
        lambda: PeriodTotal.paid_raw / 2,
        lambda: -PeriodTotal.paid_raw,
        lambda: PeriodTotal.paid_raw.concat("0"),
    ],
)
def test_raw_amount_sql_arithmetic_rejected(build: Callable[[], object]) -> None:
    with pytest.raises(TypeError, match="not exact on SQLite"):
        build()


def test_raw_amount_comparisons_compile() -> None:
    query = (
        select(PeriodTotal.paid_raw)
        .where(PeriodTotal.paid_raw > 10**29, PeriodTotal.paid_raw.in_([1, 2]))
        .order_by(PeriodTotal.paid_raw.desc())
    )

    compiled = str(query.compile(dialect=SQLITE))

    assert "period_totals.paid_raw > ?" in compiled
    assert "ORDER BY period_totals.paid_raw DESC" in compiled


def test_raw_amount_none_passes_through() -> None:
    assert RawAmount().process_bind_param(None, SQLITE) is None
    assert RawAmount().process_result_value(None, SQLITE) is None


def test_utc_datetime_converts_to_utc() -> None:
    local = datetime(2026, 1, 5, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    stored = UtcDateTime().process_bind_param(local, SQLITE)

    assert stored == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


def test_utc_datetime_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 5, 12, 0), SQLITE)


def test_utc_datetime_reads_naive_as_utc() -> None:
    loaded = UtcDateTime().process_result_value(datetime(2026, 1, 5, 12, 0), SQLITE)

    assert loaded == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert loaded is not None
    assert loaded.tzinfo is UTC
