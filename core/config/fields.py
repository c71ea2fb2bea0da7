"""Reusable field types for configuration models, each with a description of what it accepts."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from core.banano.units import parse_ban

MASK = "**********"


class Expected:
    """Field metadata: what a key accepts, in words, for error messages and the docs."""

    def __init__(self, text: str) -> None:
        self.text = text


def mask_url_password(text: str) -> str:
    """Return `text` with the password of a `scheme://user:password@host` URL masked."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}").geturl()


def url_has_password(text: str) -> bool:
    """Tell whether `text` is a URL whose user part carries a password."""
    return mask_url_password(text) != text


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


NonNegativeInt = Annotated[int, Field(ge=0), Expected("an integer, 0 or more")]
PositiveInt = Annotated[int, Field(gt=0), Expected("an integer greater than 0")]
PositiveSeconds = Annotated[float, Field(gt=0), Expected("a number of seconds greater than 0")]
Flag = Annotated[bool, Expected("true or false")]
Text = Annotated[str, Expected("a string")]
RequiredText = Annotated[str, AfterValidator(_check_required), Expected("a non-empty string")]

BanAmount = Annotated[
    Decimal,
    Field(ge=0),
    AfterValidator(_check_ban_amount),
    Expected("an amount of BAN, 0 or more, with at most 29 decimal places"),
]
PositiveBanAmount = Annotated[
    Decimal,
    Field(gt=0),
    AfterValidator(_check_ban_amount),
    Expected("an amount of BAN greater than 0 with at most 29 decimal places"),
]
PositiveDecimal = Annotated[Decimal, Field(gt=0), Expected("a decimal number greater than 0")]

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
    list[Annotated[int, Field(ge=10**16, lt=2**64)]],
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
