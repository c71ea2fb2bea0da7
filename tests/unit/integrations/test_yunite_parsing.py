"""Parsing of Yunite registration-links replies, using the documented reply shape."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.integrations.http import MalformedResponseError
from core.integrations.yunite import LinkStatus, YuniteLink, parse_links_response

FIXTURES = Path(__file__).parents[2] / "fixtures" / "yunite"
LINKED = 400000000000000001
NOT_LINKED = 400000000000000002
NOT_IN_GUILD = 400000000000000003
REQUESTED = [LINKED, NOT_LINKED, NOT_IN_GUILD]


def load_mixed() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "links_mixed.json").read_text())
    body.pop("_request")
    return body


def test_fixture_three_outcomes() -> None:
    links = parse_links_response(load_mixed(), REQUESTED)

    assert links[LINKED] == YuniteLink(
        LinkStatus.LINKED,
        "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e",
        datetime(2026, 11, 20, 17, 42, 11, tzinfo=UTC),
    )
    assert links[NOT_LINKED] == YuniteLink(LinkStatus.NOT_LINKED)
    assert links[NOT_IN_GUILD] == YuniteLink(LinkStatus.NOT_IN_GUILD)


def test_uppercase_epic_id_normalized() -> None:
    body = load_mixed()
    body["users"][0]["epic"]["epicID"] = "8F2B6C1D3E4A4B5C9D0E1F2A3B4C5D6E"

    links = parse_links_response(body, REQUESTED)

    assert links[LINKED].epic_account_id == "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"


def test_missing_date_verified_is_none() -> None:
    body = load_mixed()
    del body["users"][0]["dateVerified"]

    assert parse_links_response(body, REQUESTED)[LINKED].date_verified is None


def test_absent_arrays_count_as_empty() -> None:
    body = {"users": [], "notLinked": [str(NOT_LINKED)]}

    links = parse_links_response(body, [NOT_LINKED])

    assert links == {NOT_LINKED: YuniteLink(LinkStatus.NOT_LINKED)}


def test_unrequested_ids_ignored() -> None:
    links = parse_links_response(load_mixed(), [NOT_LINKED])

    assert list(links) == [NOT_LINKED]


def break_users(body: dict[str, Any]) -> None:
    body["users"] = {"not": "a list"}


def break_discord_id(body: dict[str, Any]) -> None:
    body["users"][0]["discord"]["id"] = "abc"


def drop_epic(body: dict[str, Any]) -> None:
    body["users"][0]["epic"] = None


def short_epic_id(body: dict[str, Any]) -> None:
    body["users"][0]["epic"]["epicID"] = "8f2b6c1d"


def non_hex_epic_id(body: dict[str, Any]) -> None:
    body["users"][0]["epic"]["epicID"] = "z" * 32


def bad_date(body: dict[str, Any]) -> None:
    body["users"][0]["dateVerified"] = "yesterday"


def numeric_date(body: dict[str, Any]) -> None:
    body["users"][0]["dateVerified"] = 1764000000


def duplicate_outcome(body: dict[str, Any]) -> None:
    body["notFound"].append(str(LINKED))


def drop_requested(body: dict[str, Any]) -> None:
    body["notFound"] = []


def bool_id(body: dict[str, Any]) -> None:
    body["notLinked"] = [True]


@pytest.mark.parametrize(
    "breakage",
    [
        break_users,
        break_discord_id,
        drop_epic,
        short_epic_id,
        non_hex_epic_id,
        bad_date,
        numeric_date,
        duplicate_outcome,
        drop_requested,
        bool_id,
    ],
)
def test_malformed_reply_rejected(breakage: Any) -> None:
    body = copy.deepcopy(load_mixed())
    breakage(body)

    with pytest.raises(MalformedResponseError):
        parse_links_response(body, REQUESTED)


@pytest.mark.parametrize("body", [None, [], "users", 3])
def test_non_object_reply_rejected(body: object) -> None:
    with pytest.raises(MalformedResponseError, match="reply is not an object"):
        parse_links_response(body, REQUESTED)


def test_link_invariants() -> None:
    with pytest.raises(ValueError, match="epic_account_id"):
        YuniteLink(LinkStatus.LINKED)
    with pytest.raises(ValueError, match="epic_account_id"):
        YuniteLink(LinkStatus.NOT_LINKED, "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e")
