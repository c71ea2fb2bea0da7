"""Kill-count extraction from BR stats v2 replies, using the documented reply shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.integrations.fortnite import (
    StatsReading,
    StatsState,
    extract_lifetime_kills,
    normalize_epic_account_id,
)
from core.integrations.http import MalformedResponseError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fortnite"
FULL_ACCOUNT = "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"
FRESH_ACCOUNT = "0c1d2e3f40516273849506a7b8c9d0e1"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


def test_lifetime_fixture_kills() -> None:
    assert extract_lifetime_kills(load("stats_br_v2_lifetime.json"), FULL_ACCOUNT) == 5321


def test_no_matches_fixture_is_zero() -> None:
    assert extract_lifetime_kills(load("stats_no_matches.json"), FRESH_ACCOUNT) == 0


def test_null_overall_is_zero() -> None:
    body = load("stats_br_v2_lifetime.json")
    body["data"]["stats"]["all"]["overall"] = None

    assert extract_lifetime_kills(body, FULL_ACCOUNT) == 0


def test_account_id_compared_case_insensitively() -> None:
    body = load("stats_br_v2_lifetime.json")
    body["data"]["account"]["id"] = FULL_ACCOUNT.upper()

    assert extract_lifetime_kills(body, FULL_ACCOUNT) == 5321


@pytest.mark.parametrize(
    ("kills", "message"),
    [
        (-1, "negative"),
        (True, "not an integer"),
        (False, "not an integer"),
        (5321.0, "not an integer"),
        ("5321", "not an integer"),
        (None, "not an integer"),
    ],
)
def test_invalid_kills_rejected(kills: object, message: str) -> None:
    body = load("stats_br_v2_lifetime.json")
    body["data"]["stats"]["all"]["overall"]["kills"] = kills

    with pytest.raises(MalformedResponseError, match=message):
        extract_lifetime_kills(body, FULL_ACCOUNT)


def test_other_account_rejected() -> None:
    with pytest.raises(MalformedResponseError, match="not the requested account"):
        extract_lifetime_kills(load("stats_br_v2_lifetime.json"), FRESH_ACCOUNT)


@pytest.mark.parametrize(
    "path",
    [("data",), ("data", "stats"), ("data", "account"), ("data", "stats", "all", "overall")],
)
def test_missing_block_rejected(path: tuple[str, ...]) -> None:
    body = load("stats_br_v2_lifetime.json")
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]

    with pytest.raises(MalformedResponseError):
        extract_lifetime_kills(body, FULL_ACCOUNT)


def test_error_body_rejected() -> None:
    with pytest.raises(MalformedResponseError, match="data is not an object"):
        extract_lifetime_kills(load("error_private.json"), FULL_ACCOUNT)


def test_normalize_epic_account_id() -> None:
    assert normalize_epic_account_id(FULL_ACCOUNT.upper()) == FULL_ACCOUNT
    with pytest.raises(ValueError, match="32 hexadecimal"):
        normalize_epic_account_id("../../v1/admin")


def test_reading_invariants() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match="kills must be set"):
        StatsReading(FULL_ACCOUNT, StatsState.OK, None, now)
    with pytest.raises(ValueError, match="kills must be set"):
        StatsReading(FULL_ACCOUNT, StatsState.PRIVATE, 3, now)
    with pytest.raises(ValueError, match="negative"):
        StatsReading(FULL_ACCOUNT, StatsState.OK, -3, now)
