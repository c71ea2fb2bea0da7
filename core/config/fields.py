"""Reusable field types for configuration models, each with a description of what it accepts."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, Strict

from core.banano.units import parse_ban

# Upper bounds that catch a typo or a unit mix-up, far above any setting that makes sense.
# NOTE: these are judgement calls, not limits of the code; raise one if a real set-up needs it.
MAX_BAN_PER_KILL = 10_000
MAX_BAN_BALANCE = 1_000_000_000
MAX_COUNT = 1_000_000
MAX_MINUTES = 7 * 24 * 60
MAX_SECONDS = 86_400
MAX_TIMEOUT_SECONDS = 600
MAX_DECIMAL = 1_000_000

# Plain decimal notation in ASCII. Python's Decimal() would also take "1_000", "1e3" and
# other scripts' digits, such as Arabic-Indic ones.
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_MAX_DECIMAL_TEXT_LENGTH = 100


class Expected:
    """Field metadata: what a key accepts, in words, for error messages and the docs."""

    def __init__(self, text: str) -> None:
        self.text = text


def _check_ban_amount(amount: Decimal) -> Decimal:
    parse_ban(amount)
    return amount


def check_http_url(url: str) -> str:
    """Return `url` if it is empty or an http(s) URL with a host; raises ValueError otherwise."""
    if url == "":
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL with a host")
    return url


def _check_required(text: str) -> str:
    if text == "":
        raise ValueError("the value is empty")
    return text


def _int_to_text(value: Any) -> Any:
    # Discord IDs written without quotes arrive as YAML integers; both forms are accepted.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_discord_id(text: str) -> str:
    if text != "" and not re.fullmatch(r"[0-9]{17,20}", text):
        raise ValueError("not a Discord ID of 17 to 20 digits")
    return text


def _check_optional_discord_id(text: str | None) -> str | None:
    if text is not None:
        _check_discord_id(text)
    return text


def _empty_to_none(value: Any) -> Any:
    if value == "":
        return None
    return value


def _check_number(value: Any) -> Any:
    # YAML numbers arrive as int or Decimal. Text is accepted only in plain ASCII notation,
    # and true/false, which Decimal and float would read as 1 and 0, not at all.
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_DECIMAL_TEXT_LENGTH or not _DECIMAL_TEXT.fullmatch(text):
            raise ValueError("not a number in plain decimal notation such as 2.1")
        return Decimal(text)
    if isinstance(value, Decimal | float) and not Decimal(value).is_finite():
        raise ValueError("not a finite number")
    return value


def _count_text(minimum: int, maximum: int, unit: str) -> str:
    return f"{unit} from {minimum} to {maximum}"


# Strict integers take only YAML integers: "20" in quotes, 20.0 and true are rejected.
NonNegativeInt = Annotated[
    int, Strict(), Field(ge=0, le=MAX_COUNT), Expected(_count_text(0, MAX_COUNT, "an integer"))
]
PositiveInt = Annotated[
    int, Strict(), Field(ge=1, le=MAX_COUNT), Expected(_count_text(1, MAX_COUNT, "an integer"))
]
Minutes = Annotated[
    int,
    Strict(),
    Field(ge=1, le=MAX_MINUTES),
    Expected(_count_text(1, MAX_MINUTES, "a number of minutes") + " (one week)"),
]
PositiveSeconds = Annotated[
    int,
    Strict(),
    Field(ge=1, le=MAX_SECONDS),
    Expected(_count_text(1, MAX_SECONDS, "a number of seconds") + " (one day)"),
]
NonNegativeSeconds = Annotated[
    int,
    Strict(),
    Field(ge=0, le=MAX_SECONDS),
    Expected(_count_text(0, MAX_SECONDS, "a number of seconds") + " (one day)"),
]
TimeoutSeconds = Annotated[
    float,
    BeforeValidator(_check_number),
    Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False),
    Expected(f"a number of seconds greater than 0 and at most {MAX_TIMEOUT_SECONDS}"),
]
PositiveDecimal = Annotated[
    Decimal,
    BeforeValidator(_check_number),
    Field(gt=0, le=MAX_DECIMAL, allow_inf_nan=False),
    Expected(f"a decimal number greater than 0 and at most {MAX_DECIMAL}"),
]
BanBalance = Annotated[
    Decimal,
    BeforeValidator(_check_number),
    Field(ge=0, le=MAX_BAN_BALANCE, allow_inf_nan=False),
    AfterValidator(_check_ban_amount),
    Expected(f"an amount of BAN from 0 to {MAX_BAN_BALANCE}, with at most 29 decimal places"),
]
BanPerKill = Annotated[
    Decimal,
    BeforeValidator(_check_number),
    Field(gt=0, le=MAX_BAN_PER_KILL, allow_inf_nan=False),
    AfterValidator(_check_ban_amount),
    Expected(
        f"an amount of BAN greater than 0 and at most {MAX_BAN_PER_KILL}, "
        "with at most 29 decimal places"
    ),
]

Flag = Annotated[bool, Strict(), Expected("true or false")]
Text = Annotated[str, Expected("a string")]
RequiredText = Annotated[str, AfterValidator(_check_required), Expected("a non-empty string")]

HttpUrlOrEmpty = Annotated[
    str, AfterValidator(check_http_url), Expected('an http:// or https:// URL, or "" for none')
]
HttpUrl = Annotated[
    str,
    AfterValidator(_check_required),
    AfterValidator(check_http_url),
    Expected("an http:// or https:// URL"),
]

DiscordIdOrEmpty = Annotated[
    str,
    BeforeValidator(_int_to_text),
    AfterValidator(_check_discord_id),
    Expected('a Discord ID (17 to 20 digits), or "" when not set'),
]
OptionalDiscordId = Annotated[
    str | None,
    BeforeValidator(_int_to_text),
    BeforeValidator(_empty_to_none),
    AfterValidator(_check_optional_discord_id),
    Expected("a Discord ID (17 to 20 digits), or unset"),
]
DiscordIdList = Annotated[
    list[Annotated[int, Strict(), Field(ge=10**16, lt=2**64)]],
    Expected("a list of Discord IDs (17 to 20 digits each)"),
]

YamlSecret = Annotated[
    SecretStr | None,
    BeforeValidator(_empty_to_none),
    Expected(
        "a reference such as ${NAME}, with the secret in environment variable NAME, "
        "a file named by NAME_FILE or a file in P2S_SECRETS_DIR"
    ),
]
