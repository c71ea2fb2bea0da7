"""HTTP helpers shared by the integration clients: client set-up, rate-limit headers, parsing."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from core.integrations.rate_limit import MAX_PAUSE_SECONDS

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# Snowflakes are unsigned 64-bit integers that Discord and Yunite send as decimal strings.
MAX_SNOWFLAKE = 2**64 - 1

# A reset value at or above this is an absolute Unix time (10**9 seconds is 2001-09-09).
# A smaller value is a number of seconds from now.
_EPOCH_SECONDS_THRESHOLD = 1_000_000_000
_EPOCH_MILLISECONDS_THRESHOLD = 1_000_000_000_000

_DIGITS = re.compile(r"[0-9]{1,20}")


class MalformedResponseError(ValueError):
    """A response body that does not have the documented shape.

    The message names the field and the problem, never the field's value.
    """


def create_http_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """Create an AsyncClient with explicit time-outs that does not follow redirects.

    `trust_env=False` keeps proxy variables from sending requests to a host the
    configuration does not name.
    """
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)


def seconds_until_reset(
    headers: Mapping[str, str], now: datetime, *, max_seconds: float = MAX_PAUSE_SECONDS
) -> float | None:
    """Return the wait in seconds that a 429 reply's headers request, or None if they give none.

    `X-Ratelimit-Reset` is read first: a value from 10**9 up is a Unix time in seconds (from
    10**12 up, in milliseconds), a smaller one is a number of seconds from now.
    `Retry-After` is either seconds or an HTTP date. A time in the past gives 0, and a wait
    longer than `max_seconds` gives `max_seconds` (logged).
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    delay: float | None = None
    reset = lowered.get("x-ratelimit-reset")
    if reset is not None:
        delay = _parse_reset_value(reset.strip(), now)

    retry_after = lowered.get("retry-after")
    if delay is None and retry_after is not None:
        delay = _parse_retry_after(retry_after.strip(), now)

    if delay is not None and delay > max_seconds:
        log.warning(
            "rate_limit_wait_clamped",
            requested_seconds=round(delay, 3),
            max_seconds=max_seconds,
        )
        return max_seconds
    return delay


def _parse_reset_value(value: str, now: datetime) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return _parse_http_date(value, now)

    if not math.isfinite(number) or number < 0:
        return None
    if number >= _EPOCH_MILLISECONDS_THRESHOLD:
        return max(0.0, number / 1000 - now.timestamp())
    if number >= _EPOCH_SECONDS_THRESHOLD:
        return max(0.0, number - now.timestamp())
    return number


def _parse_retry_after(value: str, now: datetime) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return _parse_http_date(value, now)

    if not math.isfinite(number) or number < 0:
        return None
    return number


def _parse_http_date(value: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def expect_object(value: object, field: str) -> Mapping[str, object]:
    """Return `value` as a JSON object or raise MalformedResponseError naming `field`."""
    if not isinstance(value, dict):
        raise MalformedResponseError(f"{field} is not an object")
    return value


def expect_list(value: object, field: str) -> list[object]:
    """Return `value` as a JSON array or raise MalformedResponseError naming `field`."""
    if not isinstance(value, list):
        raise MalformedResponseError(f"{field} is not an array")
    return value


def expect_str(value: object, field: str) -> str:
    """Return `value` as a string or raise MalformedResponseError naming `field`."""
    if not isinstance(value, str):
        raise MalformedResponseError(f"{field} is not a string")
    return value


def expect_optional_str(value: object, field: str) -> str | None:
    """Return `value` as a string or None, or raise MalformedResponseError naming `field`."""
    if value is None:
        return None
    return expect_str(value, field)


def expect_int(value: object, field: str) -> int:
    """Return `value` as an integer or raise MalformedResponseError naming `field`.

    JSON `true` and `false` decode to bool, a subclass of int, so they are rejected here.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponseError(f"{field} is not an integer")
    return value


def expect_snowflake(value: object, field: str) -> int:
    """Return a Discord snowflake sent as a decimal string (or a JSON integer) as an int."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise MalformedResponseError(f"{field} is not a snowflake")

    if not 0 < number <= MAX_SNOWFLAKE:
        raise MalformedResponseError(f"{field} is out of the snowflake range")
    return number


def decode_json(response: httpx.Response) -> object:
    """Return the decoded JSON body or raise MalformedResponseError if it is not JSON."""
    try:
        return response.json()
    except ValueError as error:
        raise MalformedResponseError("body is not valid JSON") from error
    except RecursionError:
        # json gives up on arrays or objects nested thousands deep with RecursionError.
        raise MalformedResponseError("body is nested too deeply") from None
