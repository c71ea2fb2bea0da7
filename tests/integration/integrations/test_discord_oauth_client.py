"""DiscordOAuthClient against the Discord sandbox over loopback HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from core.integrations.discord_oauth import (
    DiscordOAuthClient,
    DiscordUser,
    OAuthClientConfigError,
    OAuthInvalidGrantError,
    OAuthToken,
    OAuthTokenRejectedError,
    OAuthUpstreamError,
)
from core.sandbox.discord_server import DiscordEndpoint, SandboxDiscord
from tests.unit.integrations.helpers_fake_time import FakeTime

CLIENT_ID = "1100000000000000001"
CLIENT_SECRET = "discord-client-secret-for-tests"
REDIRECT_URI = "http://127.0.0.1:3000/auth/discord/callback"
USER_ID = 400000000000000001
GUILD_ID = 500000000000000001
OTHER_GUILD_ID = 500000000000000002


@pytest.fixture
async def sandbox(fake_time: FakeTime) -> AsyncIterator[SandboxDiscord]:
    server = SandboxDiscord(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], clock=fake_time.now)
    server.add_user(
        USER_ID,
        "slayer_one",
        global_name="Slayer One",
        locale="de",
        guild_ids=[GUILD_ID, OTHER_GUILD_ID],
    )
    server.consent_as(USER_ID)
    await server.start()
    yield server
    await server.stop()


def make_client(
    http: httpx.AsyncClient, sandbox: SandboxDiscord, *, secret: str = CLIENT_SECRET
) -> DiscordOAuthClient:
    return DiscordOAuthClient(
        http,
        api_base_url=sandbox.api_base_url,
        authorize_url=sandbox.authorize_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        redirect_uri=REDIRECT_URI,
        scopes=["identify", "guilds"],
    )


async def follow_authorize(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Open the authorize URL like a browser and return the callback's query parameters."""
    response = await http.get(url, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{REDIRECT_URI}?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def test_full_flow(http: httpx.AsyncClient, sandbox: SandboxDiscord) -> None:
    client = make_client(http, sandbox)

    callback = await follow_authorize(http, client.authorize_redirect_url("state-abc"))
    token = await client.exchange_code(callback["code"])
    user = await client.current_user(token)
    guild_ids = await client.user_guild_ids(token)

    assert callback["state"] == "state-abc"
    assert token.scopes == frozenset({"identify", "guilds"})
    assert user == DiscordUser(USER_ID, "slayer_one", "Slayer One", "de")
    assert guild_ids == {GUILD_ID, OTHER_GUILD_ID}


async def test_exchange_is_form_encoded_with_basic_auth(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    captured: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        captured.append(request)

    client = make_client(http, sandbox)
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)
    http.event_hooks["request"].append(capture)

    await client.exchange_code(code)

    request = captured[0]
    assert request.url.path == "/api/v10/oauth2/token"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [REDIRECT_URI],
    }
    expected_basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_basic}"

    logged = sandbox.requests[-1]
    assert logged.status == 200
    assert logged.content_type == "application/x-www-form-urlencoded"
    assert logged.client_auth == "basic"
    assert logged.form["redirect_uri"] == REDIRECT_URI


async def test_code_reuse_is_invalid_grant(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    client = make_client(http, sandbox)
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)
    await client.exchange_code(code)

    with pytest.raises(OAuthInvalidGrantError):
        await client.exchange_code(code)


async def test_other_redirect_uri_is_invalid_grant(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    code = sandbox.issue_code(USER_ID, "http://127.0.0.1:3000/other/callback")

    with pytest.raises(OAuthInvalidGrantError):
        await make_client(http, sandbox).exchange_code(code)


async def test_expired_code_is_invalid_grant(
    http: httpx.AsyncClient, sandbox: SandboxDiscord, fake_time: FakeTime
) -> None:
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)
    fake_time.advance(601)

    with pytest.raises(OAuthInvalidGrantError):
        await make_client(http, sandbox).exchange_code(code)


async def test_unknown_code_is_invalid_grant(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    with pytest.raises(OAuthInvalidGrantError):
        await make_client(http, sandbox).exchange_code("made-up-code")


async def test_wrong_secret_is_config_error(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)

    with pytest.raises(OAuthClientConfigError) as raised:
        await make_client(http, sandbox, secret="wrong-secret").exchange_code(code)

    assert raised.value.status_code == 401
    assert raised.value.error_code == "invalid_client"
    assert "wrong-secret" not in raised.value.safe_message


async def test_denied_consent_redirects_with_error(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    sandbox.deny_consent()

    callback = await follow_authorize(
        http, make_client(http, sandbox).authorize_redirect_url("state-xyz")
    )

    assert callback["error"] == "access_denied"
    assert callback["state"] == "state-xyz"
    assert "code" not in callback


async def test_unregistered_redirect_uri_not_redirected(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    client = DiscordOAuthClient(
        http,
        api_base_url=sandbox.api_base_url,
        authorize_url=sandbox.authorize_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        redirect_uri="http://127.0.0.1:4000/elsewhere",
        scopes=["identify"],
    )

    response = await http.get(client.authorize_redirect_url("s"), follow_redirects=False)

    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("status", [429, 500, 502])
async def test_token_upstream_failure(
    http: httpx.AsyncClient, sandbox: SandboxDiscord, status: int
) -> None:
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)
    sandbox.inject_status(DiscordEndpoint.TOKEN, status)

    with pytest.raises(OAuthUpstreamError):
        await make_client(http, sandbox).exchange_code(code)


@pytest.mark.parametrize("body", ["<html>oops</html>", {"token_type": "Bearer"}, []])
async def test_malformed_token_reply(
    http: httpx.AsyncClient, sandbox: SandboxDiscord, body: object
) -> None:
    sandbox.inject_status(DiscordEndpoint.TOKEN, 200, body=body)

    with pytest.raises(OAuthUpstreamError):
        await make_client(http, sandbox).exchange_code("any-code")


async def test_timeout_is_upstream_error(sandbox: SandboxDiscord) -> None:
    def raise_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(raise_timeout)) as http:
        with pytest.raises(OAuthUpstreamError):
            await make_client(http, sandbox).exchange_code("any-code")


async def test_revoked_token_rejected(http: httpx.AsyncClient, sandbox: SandboxDiscord) -> None:
    client = make_client(http, sandbox)
    token = await client.exchange_code(sandbox.issue_code(USER_ID, REDIRECT_URI))
    sandbox.revoke_tokens()

    with pytest.raises(OAuthTokenRejectedError):
        await client.current_user(token)
    with pytest.raises(OAuthTokenRejectedError):
        await client.user_guild_ids(token)


async def test_missing_guilds_scope_rejected(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    client = make_client(http, sandbox)
    token = await client.exchange_code(sandbox.issue_code(USER_ID, REDIRECT_URI, ["identify"]))

    with pytest.raises(OAuthTokenRejectedError):
        await client.user_guild_ids(token)


@pytest.mark.parametrize(
    ("endpoint", "status", "body"),
    [
        (DiscordEndpoint.USERS_ME, 503, None),
        (DiscordEndpoint.USERS_ME, 200, {"id": "not-a-snowflake", "username": "x"}),
        (DiscordEndpoint.GUILDS, 500, None),
        (DiscordEndpoint.GUILDS, 200, {"not": "a list"}),
        (DiscordEndpoint.GUILDS, 200, "<html></html>"),
    ],
)
async def test_user_endpoint_failures(
    http: httpx.AsyncClient,
    sandbox: SandboxDiscord,
    endpoint: DiscordEndpoint,
    status: int,
    body: object,
) -> None:
    client = make_client(http, sandbox)
    token = await client.exchange_code(sandbox.issue_code(USER_ID, REDIRECT_URI))
    sandbox.inject_status(endpoint, status, body=body)

    read: Callable[[OAuthToken], Awaitable[object]] = client.user_guild_ids
    if endpoint is DiscordEndpoint.USERS_ME:
        read = client.current_user

    with pytest.raises(OAuthUpstreamError):
        await read(token)


async def test_guilds_read_across_pages(http: httpx.AsyncClient, sandbox: SandboxDiscord) -> None:
    many_guilds = {600000000000000000 + number for number in range(450)}
    sandbox.set_user_guilds(USER_ID, many_guilds)
    client = make_client(http, sandbox)
    token = await client.exchange_code(sandbox.issue_code(USER_ID, REDIRECT_URI))
    before = len(sandbox.requests)

    guild_ids = await client.user_guild_ids(token)

    assert guild_ids == many_guilds
    assert len(sandbox.requests) - before == 3


async def test_sandbox_rejects_json_token_body(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)

    response = await http.post(
        f"{sandbox.api_base_url}/oauth2/token",
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_sandbox_accepts_form_credentials(
    http: httpx.AsyncClient, sandbox: SandboxDiscord
) -> None:
    code = sandbox.issue_code(USER_ID, REDIRECT_URI)

    response = await http.post(
        f"{sandbox.api_base_url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )

    assert response.status_code == 200
    assert sandbox.requests[-1].client_auth == "form"
    assert "client_secret" not in sandbox.requests[-1].form


def test_client_rejects_relative_urls(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="redirect_uri"):
        DiscordOAuthClient(
            http,
            api_base_url="http://127.0.0.1:1/api/v10",
            authorize_url="http://127.0.0.1:1/oauth2/authorize",
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            redirect_uri="/auth/discord/callback",
            scopes=["identify"],
        )
