"""Exact conversion between BAN amounts and integer raw.

Raw is the ledger's integer unit (1 BAN = 10**29 raw) and balances are unsigned 128-bit
integers. Conversions use integer arithmetic on the decimal digits, so nothing is ever rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal

from core.banano.errors import AmountTypeError, InvalidAmountError, shorten_for_message

BAN_DECIMALS = 29
RAW_PER_BAN = 10**BAN_DECIMALS
MAX_RAW = 2**128 - 1

# MAX_RAW has 39 digits and a BAN amount has at most 10 integer digits plus 29 decimals, so
# longer text can only be padding. The bound also keeps int() far below its digit limit.
_MAX_TEXT_LENGTH = 100
_BAN_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_RAW_TEXT = re.compile(r"[0-9]+", re.ASCII)
# Built from its digits because Decimal arithmetic would round to the context precision.
_MAX_BAN = Decimal((0, tuple(int(digit) for digit in str(MAX_RAW)), -BAN_DECIMALS))


def parse_ban(value: str | Decimal | int) -> int:
    """Convert an amount of BAN to raw, exactly.

    Text is plain decimal notation such as "2.1" or "0.00000000000000000000000000001"; spaces
    around it are ignored, while signs, exponents, separators and non-ASCII digits are
    rejected. A value that needs more than 29 decimals, is negative, or exceeds `MAX_RAW` raises
    `InvalidAmountError`; a float or bool raises `AmountTypeError`.
    """
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise AmountTypeError(
            "An amount of BAN must be decimal text, a Decimal or an int, "
            f"not {type(value).__name__}."
        )

    if isinstance(value, int):
        return _check_raw_range(value * RAW_PER_BAN, str(value))

    if isinstance(value, str):
        return _decimal_ban_to_raw(_parse_ban_text(value), value)

    return _decimal_ban_to_raw(value, str(value))


def _parse_ban_text(text: str) -> Decimal:
    stripped = text.strip()
    display_text = shorten_for_message(stripped)
    if len(stripped) > _MAX_TEXT_LENGTH:
        raise InvalidAmountError(f"The amount '{display_text}' is too long to be a BAN amount.")
    if stripped.startswith("-"):
        raise InvalidAmountError(
            f"The amount '{display_text}' is negative. Use an amount of 0 or more."
        )
    if _BAN_TEXT.fullmatch(stripped) is None:
        raise InvalidAmountError(
            f"The amount '{display_text}' is not a plain decimal number of BAN. "
            "Write it with digits and an optional decimal point, such as 2.1."
        )
    # Decimal(str) is exact whatever the context precision is.
    return Decimal(stripped)


def _decimal_ban_to_raw(amount_ban: Decimal, original_text: str) -> int:
    display_text = shorten_for_message(original_text)
    _sign, digit_tuple, exponent = amount_ban.as_tuple()
    if not isinstance(exponent, int):
        raise InvalidAmountError(f"The amount '{display_text}' is not a finite number.")

    # Decimal comparisons are exact, and passing them bounds the arithmetic below.
    if amount_ban < 0:
        raise InvalidAmountError(
            f"The amount '{display_text}' is negative. Use an amount of 0 or more."
        )
    if amount_ban > _MAX_BAN:
        raise InvalidAmountError(f"The amount '{display_text}' exceeds the largest Banano balance.")
    if len(digit_tuple) > _MAX_TEXT_LENGTH:
        raise InvalidAmountError(f"The amount '{display_text}' has too many digits.")

    coefficient = int("".join(map(str, digit_tuple)))
    if coefficient == 0:
        return 0

    shift = exponent + BAN_DECIMALS
    if shift >= 0:
        return _check_raw_range(coefficient * 10**shift, original_text)

    # A coefficient with fewer digits than -shift cannot be a multiple of 10**-shift.
    if -shift > len(digit_tuple):
        raise _too_many_decimals(display_text)
    raw, remainder = divmod(coefficient, 10**-shift)
    if remainder != 0:
        raise _too_many_decimals(display_text)
    return _check_raw_range(raw, original_text)


def _too_many_decimals(display_text: str) -> InvalidAmountError:
    return InvalidAmountError(
        f"The amount '{display_text}' has more than {BAN_DECIMALS} decimals, "
        "which is finer than 1 raw. Round it to 29 decimals or fewer."
    )


def _check_raw_range(raw: int, original_text: str) -> int:
    display_text = shorten_for_message(original_text)
    if raw < 0:
        raise InvalidAmountError(
            f"The amount '{display_text}' is negative. Use an amount of 0 or more."
        )
    if raw > MAX_RAW:
        raise InvalidAmountError(f"The amount '{display_text}' exceeds the largest Banano balance.")
    return raw


def parse_raw(value: str | int) -> int:
    """Convert a raw amount from the wire or the database to int.

    Text must be ASCII digits only (leading zeros are allowed, signs and spaces are not), and
    the value must be within 0..MAX_RAW.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AmountTypeError(
            f"A raw amount must be decimal text or an int, not {type(value).__name__}."
        )

    if isinstance(value, int):
        return _check_raw_range(value, str(value))

    display_text = shorten_for_message(value)
    if len(value) > _MAX_TEXT_LENGTH or _RAW_TEXT.fullmatch(value) is None:
        raise InvalidAmountError(
            f"The raw amount '{display_text}' is not a string of decimal digits."
        )
    return _check_raw_range(int(value), value)


def format_ban(raw: int) -> str:
    """Format raw as BAN for people: exact, with no trailing zeros and no exponent."""
    raw = _require_raw(raw)
    whole_ban, remainder_raw = divmod(raw, RAW_PER_BAN)
    if remainder_raw == 0:
        return str(whole_ban)
    decimals = str(remainder_raw).rjust(BAN_DECIMALS, "0").rstrip("0")
    return f"{whole_ban}.{decimals}"


def raw_to_ban(raw: int) -> Decimal:
    """Convert raw to an exact Decimal number of BAN without trailing zeros.

    `str()` of a small result uses exponent notation ("1E-29"), so show amounts with
    `format_ban` instead.
    """
    return Decimal(format_ban(raw))


def _require_raw(raw: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise AmountTypeError(f"A raw amount must be an int, not {type(raw).__name__}.")
    return _check_raw_range(raw, str(raw))
