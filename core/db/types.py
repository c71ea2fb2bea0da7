"""Column types for exact money amounts, block hashes and timezone-aware timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, overload

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, Dialect, Numeric, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

_ResultT = TypeVar("_ResultT")

# 2**128 - 1 has 39 decimal digits, the largest amount a Banano account can hold.
RAW_DIGITS = 39
MAX_RAW = 2**128 - 1

_HEX_HASH = re.compile(r"[0-9A-Fa-f]{64}")


# SQL arithmetic on a raw column is wrong on SQLite: `+` on the text column concatenates,
# and the other operators convert to binary floats. Amounts are added up in Python instead.
_ARITHMETIC_OPERATORS = frozenset(
    {
        operators.add,
        operators.sub,
        operators.mul,
        operators.truediv,
        operators.floordiv,
        operators.mod,
        operators.neg,
        operators.concat_op,
    }
)


class _RawAmountComparator(TypeDecorator.Comparator[int]):
    """Column operators for raw amounts: comparisons and ordering, but no arithmetic."""

    __slots__ = ()

    @overload
    def operate(
        self,
        op: OperatorType,
        *other: Any,
        result_type: type[TypeEngine[_ResultT]],
        **kwargs: Any,
    ) -> ColumnElement[_ResultT]: ...

    @overload
    def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[int]: ...

    def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
        _reject_arithmetic(op)
        return super().operate(op, *other, **kwargs)

    def reverse_operate(self, op: OperatorType, other: Any, **kwargs: Any) -> ColumnElement[int]:
        _reject_arithmetic(op)
        return super().reverse_operate(op, other, **kwargs)


def _reject_arithmetic(op: OperatorType) -> None:
    if op in _ARITHMETIC_OPERATORS:
        raise TypeError(
            f"SQL arithmetic ({op.__name__}) on raw amount columns is not exact on SQLite, "
            "so load the amounts and compute in Python"
        )


class RawAmount(TypeDecorator[int]):
    """An amount in raw as an exact integer on every database.

    SQLite's NUMERIC affinity stores large numbers as binary floats, so there the value is
    zero-padded text of 39 digits, which also sorts in numeric order. PostgreSQL gets
    NUMERIC(39, 0). Column expressions support comparison and ordering; arithmetic in SQL
    raises `TypeError`.

    Aggregates are not rejected but are just as wrong on SQLite: `func.sum(raw_column)` adds
    the text through binary floats, which is inexact above 2**53 raw and raises ValueError
    when the result (such as '1e+29') is read back. Use `core.db.raw_sum`, which sums exactly
    on both databases. MIN and MAX compare the padded text and are exact.

    Each raw column also gets `raw_amount_check`, which rejects other text written with plain
    SQL on SQLite and negative numbers on PostgreSQL.

    NOTE: only the left operand's type is consulted, so `integer_column * raw_column` is
    not rejected and yields a float on SQLite. Multiply in Python.
    """

    impl = String(RAW_DIGITS)
    cache_ok = True
    comparator_factory = _RawAmountComparator

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(RAW_DIGITS, 0, asdecimal=True))
        return dialect.type_descriptor(String(RAW_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"raw amounts must be int, got {type(value).__name__}")
        if not 0 <= value <= MAX_RAW:
            raise ValueError(f"raw amount {value} is outside 0..2**128-1")
        if dialect.name == "postgresql":
            return Decimal(value)
        return str(value).zfill(RAW_DIGITS)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return int(value)
        return int(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone support, so naive values read back are taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class BlockHash(TypeDecorator[str]):
    """A block hash, stored and compared in upper case; other references are kept as they are.

    The node writes hashes in upper case, but a hash typed by an admin or read from elsewhere
    may be lower case. Converting every bound value of 64 hexadecimal digits keeps one spelling
    in the unique columns and lets a lookup find a hash in either case. Other text, such as
    the synthetic `dryrun-...` reference of a dry-run payout, is stored unchanged. The column
    is a plain VARCHAR(64).
    """

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and _HEX_HASH.fullmatch(value):
            return value.upper()
        return value


class _RawAmountValid(ColumnElement[bool]):
    """The condition of `raw_amount_check`, compiled for each database."""

    type = Boolean()
    inherit_cache = True

    def __init__(self, column_name: str) -> None:
        self.column_name = column_name


@compiles(_RawAmountValid, "sqlite")
def _compile_raw_amount_valid_sqlite(
    element: _RawAmountValid, compiler: SQLCompiler, **kw: Any
) -> str:
    column = compiler.preparer.quote(element.column_name)
    return f"length({column}) = {RAW_DIGITS} AND {column} NOT GLOB '*[^0-9]*'"


@compiles(_RawAmountValid)
def _compile_raw_amount_valid(element: _RawAmountValid, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.preparer.quote(element.column_name)} >= 0"


def raw_amount_check(column_name: str) -> CheckConstraint:
    """CHECK constraint `ck_<table>_<column>_valid` for a `RawAmount` column.

    On SQLite the text must be exactly 39 ASCII digits, as `RawAmount` writes it. On
    PostgreSQL, whose NUMERIC(39, 0) already rejects fractions and larger numbers, the amount
    must not be negative.
    """
    return CheckConstraint(_RawAmountValid(column_name), name=f"{column_name}_valid")


def non_negative_check(column_name: str) -> CheckConstraint:
    """CHECK constraint `ck_<table>_<column>_non_negative` for a count such as kills."""
    return CheckConstraint(f"{column_name} >= 0", name=f"{column_name}_non_negative")
