"""Exact BAN and raw conversions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.banano.errors import AmountTypeError, InvalidAmountError
from core.banano.units import (
    MAX_RAW,
    RAW_PER_BAN,
    format_ban,
    parse_ban,
    parse_raw,
    raw_to_ban,
)

MAX_BAN_TEXT = "3402823669.20938463463374607431768211455"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=MAX_RAW))
def test_format_parse_round_trip(raw: int) -> None:
    text = format_ban(raw)

    assert parse_ban(text) == raw
    assert parse_ban(raw_to_ban(raw)) == raw
    assert parse_raw(str(raw)) == raw


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=MAX_RAW))
def test_format_has_no_noise(raw: int) -> None:
    text = format_ban(raw)

    assert "e" not in text.lower()
    assert not text.startswith("-")
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")
    assert f"{raw_to_ban(raw):f}" == text


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_ban_rejects_float(value: float) -> None:
    with pytest.raises(AmountTypeError):
        parse_ban(value)  # type: ignore[arg-type]


def test_float_error_is_type_error() -> None:
    with pytest.raises(TypeError):
        parse_ban(2.1)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError):
        parse_ban(2.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, False, None, b"1", [1]])
def test_parse_ban_rejects_other_types(value: object) -> None:
    with pytest.raises(AmountTypeError):
        parse_ban(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected_raw"),
    [
        ("2.1", 210_000_000_000_000_000_000_000_000_000),
        ("1", RAW_PER_BAN),
        ("0", 0),
        ("0.0", 0),
        ("007.50", 750_000_000_000_000_000_000_000_000_000),
        ("0." + "0" * 28 + "1", 1),
        ("1." + "1" * 29, RAW_PER_BAN + int("1" * 29)),
        (MAX_BAN_TEXT, MAX_RAW),
        (" 2.1\n", 210_000_000_000_000_000_000_000_000_000),
        (Decimal("2.1"), 210_000_000_000_000_000_000_000_000_000),
        (Decimal("2.10000000000000000000000000000000000"), 210_000_000_000_000_000_000_000_000_000),
        (Decimal("1E+3"), 1000 * RAW_PER_BAN),
        (Decimal("-0"), 0),
        (Decimal(MAX_BAN_TEXT), MAX_RAW),
        (3, 3 * RAW_PER_BAN),
        (0, 0),
    ],
)
def test_parse_ban_accepts(value: str | Decimal | int, expected_raw: int) -> None:
    assert parse_ban(value) == expected_raw


@pytest.mark.parametrize(
    "value",
    [
        "0." + "0" * 29 + "1",
        "1." + "1" * 30,
        Decimal("0." + "0" * 29 + "1"),
        Decimal("1E-1000000"),
    ],
)
def test_parse_ban_rejects_30_decimals(value: str | Decimal) -> None:
    with pytest.raises(InvalidAmountError, match="more than 29 decimals"):
        parse_ban(value)


@pytest.mark.parametrize(
    "value",
    [
        "3402823669.20938463463374607431768211456",
        "3402823670",
        Decimal("3402823669.20938463463374607431768211456"),
        Decimal("1E+1000000"),
        3402823670,
    ],
)
def test_parse_ban_rejects_above_max(value: str | Decimal | int) -> None:
    with pytest.raises(InvalidAmountError, match="exceeds the largest"):
        parse_ban(value)


@pytest.mark.parametrize("value", ["-1", "-0.5", Decimal("-1"), -1])
def test_parse_ban_rejects_negative(value: str | Decimal | int) -> None:
    with pytest.raises(InvalidAmountError, match="negative"):
        parse_ban(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "1e3",
        "1E3",
        "+1",
        "1 000",
        "1_000",
        "1,5",
        ".5",
        "5.",
        "NaN",
        "Infinity",
        "0x10",
        "two",
        "\u0661",
        "1.5 BAN",
        "1" * 101,
    ],
)
def test_parse_ban_rejects_text(value: str) -> None:
    with pytest.raises(InvalidAmountError):
        parse_ban(value)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")])
def test_parse_ban_rejects_non_finite(value: Decimal) -> None:
    with pytest.raises(InvalidAmountError, match="not a finite number"):
        parse_ban(value)


def test_parse_ban_message_shortens_input() -> None:
    with pytest.raises(InvalidAmountError) as raised:
        parse_ban("x" * 90)

    assert "x" * 30 not in raised.value.safe_message


@pytest.mark.parametrize(
    ("value", "expected_raw"),
    [("0", 0), ("1", 1), (str(MAX_RAW), MAX_RAW), ("0" * 39, 0), (MAX_RAW, MAX_RAW), (5, 5)],
)
def test_parse_raw_accepts(value: str | int, expected_raw: int) -> None:
    assert parse_raw(value) == expected_raw


@pytest.mark.parametrize(
    "value", ["", " 1", "1 ", "-1", "+1", "1.0", "1e3", "0x1", "\u0661", str(MAX_RAW + 1), -1]
)
def test_parse_raw_rejects(value: str | int) -> None:
    with pytest.raises(InvalidAmountError):
        parse_raw(value)


@pytest.mark.parametrize("value", [1.0, True, None, Decimal("1")])
def test_parse_raw_rejects_types(value: object) -> None:
    with pytest.raises(AmountTypeError):
        parse_raw(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected_text"),
    [
        (210_000_000_000_000_000_000_000_000_000, "2.1"),
        (RAW_PER_BAN, "1"),
        (0, "0"),
        (1, "0.00000000000000000000000000001"),
        (1000 * RAW_PER_BAN, "1000"),
        (MAX_RAW, MAX_BAN_TEXT),
    ],
)
def test_format_ban(raw: int, expected_text: str) -> None:
    assert format_ban(raw) == expected_text


@pytest.mark.parametrize("raw", [-1, MAX_RAW + 1])
def test_format_ban_rejects_out_of_range(raw: int) -> None:
    with pytest.raises(InvalidAmountError):
        format_ban(raw)


@pytest.mark.parametrize("raw", [1.0, True, "1"])
def test_format_ban_rejects_types(raw: object) -> None:
    with pytest.raises(AmountTypeError):
        format_ban(raw)  # type: ignore[arg-type]


def test_raw_to_ban_is_exact() -> None:
    assert raw_to_ban(MAX_RAW) == Decimal(MAX_BAN_TEXT)
    assert raw_to_ban(1) == Decimal("1E-29")
    assert str(raw_to_ban(1000 * RAW_PER_BAN)) == "1000"
