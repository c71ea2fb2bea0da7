"""Column types for exact money amounts and timezone-aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, overload

from sqlalchemy import ColumnElement, Dialect, Numeric, String
from sqlalchemy.sql import operators
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

_ResultT = TypeVar("_ResultT")

# 2**128 - 1 has 39 decimal digits, the largest amount a Banano account can hold.
RAW_DIGITS = 39
MAX_RAW = 2**128 - 1


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
