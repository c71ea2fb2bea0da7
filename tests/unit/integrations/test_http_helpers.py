"""Rate-limit header parsing and the strict JSON field readers."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from structlog.testing import capture_logs

from core.integrations.http import (
    MalformedResponseError,
    create_http_client,
    decode_json,
    expect_int,
    expect_snowflake,
    seconds_until_reset,
)
from core.integrations.rate_limit import MAX_PAUSE_SECONDS

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
NOW_EPOCH = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Ratelimit-Reset": str(NOW_EPOCH + 42)}, 42.0),
        ({"x-ratelimit-reset": str((NOW_EPOCH + 7) * 1000)}, 7.0),
        ({"X-Ratelimit-Reset": "15"}, 15.0),
        ({"X-Ratelimit-Reset": "2.5"}, 2.5),
        ({"X-Ratelimit-Reset": str(NOW_EPOCH - 100)}, 0.0),
        ({"Retry-After": "30"}, 30.0),
        ({"Retry-After": "Fri, 04 Dec 2026 12:01:00 GMT"}, 60.0),
        ({"Retry-After": "Fri, 04 Dec 2026 11:00:00 GMT"}, 0.0),
        ({"X-Ratelimit-Reset": "soon", "Retry-After": "9"}, 9.0),
        ({"X-Ratelimit-Reset": "-5", "Retry-After": "9"}, 9.0),
        ({"X-Ratelimit-Reset": str(NOW_EPOCH + 5), "Retry-After": "99"}, 5.0),
    ],
)
def test_seconds_until_reset(headers: dict[str, str], expected: float) -> None:
    assert seconds_until_reset(headers, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ratelimit-Reset": "99999999999999"},
        {"Retry-After": "1000000000"},
        {"X-Ratelimit-Reset": str(NOW_EPOCH + 10**9)},
        {"Retry-After": "Fri, 04 Dec 2099 12:00:00 GMT"},
        {"X-Ratelimit-Reset": "soon", "Retry-After": "1e12"},
    ],
)
def test_seconds_until_reset_capped(headers: dict[str, str]) -> None:
    with capture_logs() as logs:
        delay = seconds_until_reset(headers, NOW)

    assert delay == MAX_PAUSE_SECONDS
    assert [entry["event"] for entry in logs] == ["rate_limit_wait_clamped"]


def test_seconds_until_reset_custom_cap() -> None:
    assert seconds_until_reset({"Retry-After": "90"}, NOW, max_seconds=60) == 60
    assert seconds_until_reset({"Retry-After": "50"}, NOW, max_seconds=60) == 50


@pytest.mark.parametrize(
    "headers",
    [{}, {"Retry-After": "later"}, {"Retry-After": "nan"}, {"X-Ratelimit-Reset": "inf"}],
)
def test_seconds_until_reset_unknown(headers: dict[str, str]) -> None:
    assert seconds_until_reset(headers, NOW) is None


def test_expect_int_rejects_bool() -> None:
    with pytest.raises(MalformedResponseError, match="kills is not an integer"):
        expect_int(True, "kills")
    assert expect_int(0, "kills") == 0


@pytest.mark.parametrize("value", ["", "12a", "-1", "0", True, 1.0, None, str(2**64)])
def test_expect_snowflake_rejects(value: object) -> None:
    with pytest.raises(MalformedResponseError):
        expect_snowflake(value, "id")


def test_expect_snowflake_accepts_string_and_int() -> None:
    assert expect_snowflake("400000000000000001", "id") == 400000000000000001
    assert expect_snowflake(42, "id") == 42


def test_decode_json_rejects_html() -> None:
    response = httpx.Response(200, text="<html>gateway error</html>")
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        decode_json(response)


async def test_create_http_client_settings() -> None:
    async with create_http_client() as client:
        assert client.timeout.connect == 5.0
        assert client.timeout.read == 10.0
        assert client.follow_redirects is False
        assert client.trust_env is False
