"""Discord OAuth2 authorize URL and parsing of token, user and guild replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from core.integrations.discord_oauth import (
    DiscordOAuthClient,
    DiscordUser,
    parse_guild_ids,
    parse_token,
    parse_user,
)
from core.integrations.http import MalformedResponseError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "discord"
REDIRECT_URI = "http://localhost:3000/auth/discord/callback"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def make_client(http: httpx.AsyncClient, authorize_url: str) -> DiscordOAuthClient:
    return DiscordOAuthClient(
        http,
        api_base_url="http://127.0.0.1:9/api/v10",
        authorize_url=authorize_url,
        client_id="1234567890",
        client_secret=SecretStr("client-secret-value"),
        redirect_uri=REDIRECT_URI,
        scopes=["identify", "guilds"],
    )


async def test_authorize_url_parameters() -> None:
    async with httpx.AsyncClient() as http:
        client = make_client(http, "http://127.0.0.1:9/oauth2/authorize")

        url = client.authorize_redirect_url("state-123")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:9/oauth2/authorize"
    assert "scope=identify%20guilds" in parts.query
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["1234567890"],
        "scope": ["identify guilds"],
        "redirect_uri": [REDIRECT_URI],
        "state": ["state-123"],
        "prompt": ["none"],
    }
    assert "client-secret-value" not in url


async def test_authorize_url_keeps_existing_query() -> None:
    async with httpx.AsyncClient() as http:
        client = make_client(http, "http://127.0.0.1:9/oauth2/authorize?integration_type=1")

        url = client.authorize_redirect_url("s")

    query = parse_qs(urlsplit(url).query)
    assert query["integration_type"] == ["1"]
    assert query["state"] == ["s"]


async def test_empty_state_rejected() -> None:
    async with httpx.AsyncClient() as http:
        client = make_client(http, "http://127.0.0.1:9/oauth2/authorize")
        with pytest.raises(ValueError, match="state"):
            client.authorize_redirect_url("")


def test_token_fixture_parsed() -> None:
    token = parse_token(load("oauth_token.json"))

    assert token.access_token.get_secret_value() == "6qrZcUqja7812RVdnEKjpzOL4CvHBFG"
    assert token.refresh_token is not None
    assert token.token_type == "Bearer"
    assert token.expires_in == 604800
    assert token.scopes == frozenset({"identify", "guilds"})


def test_token_repr_masks_secrets() -> None:
    token = parse_token(load("oauth_token.json"))

    assert "6qrZcUqja7812RVdnEKjpzOL4CvHBFG" not in repr(token)
    assert "D43f5y0ahjqew82jZ4NViEr2YafMKhue" not in repr(token)


@pytest.mark.parametrize(
    "change",
    [
        {"access_token": ""},
        {"access_token": None},
        {"token_type": "mac"},
        {"expires_in": "604800"},
        {"expires_in": -1},
        {"scope": 3},
    ],
)
def test_invalid_token_reply_rejected(change: dict[str, object]) -> None:
    body = load("oauth_token.json") | change

    with pytest.raises(MalformedResponseError):
        parse_token(body)


def test_user_fixture_parsed() -> None:
    assert parse_user(load("users_me.json")) == DiscordUser(
        id=400000000000000001, username="slayer_one", global_name="Slayer One", locale="en-US"
    )


def test_user_without_optional_fields() -> None:
    body = load("users_me.json")
    body["global_name"] = None
    del body["locale"]

    user = parse_user(body)

    assert user.global_name is None
    assert user.locale is None


@pytest.mark.parametrize("change", [{"id": None}, {"id": "x"}, {"username": ""}])
def test_invalid_user_rejected(change: dict[str, object]) -> None:
    with pytest.raises(MalformedResponseError):
        parse_user(load("users_me.json") | change)


def test_guilds_fixture_parsed() -> None:
    assert parse_guild_ids(load("users_me_guilds.json")) == [
        500000000000000001,
        500000000000000002,
    ]


@pytest.mark.parametrize("body", [{"guilds": []}, [{"name": "no id"}], ["500000000000000001"]])
def test_invalid_guilds_rejected(body: object) -> None:
    with pytest.raises(MalformedResponseError):
        parse_guild_ids(body)
