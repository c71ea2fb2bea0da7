"""YuniteClient against the Yunite sandbox over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from core.integrations.rate_limit import MAX_PAUSE_SECONDS
from core.integrations.yunite import (
    LinkStatus,
    YuniteAuthError,
    YuniteClient,
    YuniteLink,
    YuniteNotAuthorizedError,
    YunitePremiumRequiredError,
    YuniteRateLimitedError,
    YuniteRequestError,
    YuniteUnavailableError,
)
from core.sandbox.yunite_server import SandboxYunite
from tests.unit.integrations.helpers_fake_time import FakeTime

API_TOKEN = "yunite-token-for-tests"
GUILD_ID = 500000000000000001
LINKED = 400000000000000001
NOT_LINKED = 400000000000000002
NOT_IN_GUILD = 400000000000000003
EPIC_ONE = "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"
EPIC_TWO = "0c1d2e3f40516273849506a7b8c9d0e1"
FIXTURE = Path(__file__).parents[2] / "fixtures" / "yunite" / "links_mixed.json"


@pytest.fixture
async def sandbox(fake_time: FakeTime) -> AsyncIterator[SandboxYunite]:
    server = SandboxYunite(API_TOKEN, GUILD_ID, clock=fake_time.now)
    server.add_player(LINKED, EPIC_ONE.upper())
    server.add_player(NOT_LINKED, None)
    await server.start()
    yield server
    await server.stop()


def make_client(
    http: httpx.AsyncClient,
    sandbox: SandboxYunite,
    fake_time: FakeTime,
    *,
    token: str = API_TOKEN,
    guild_id: int = GUILD_ID,
    cache_seconds: float = 60,
) -> YuniteClient:
    return YuniteClient(
        http, sandbox.base_url, SecretStr(token), guild_id, cache_seconds, fake_time.now
    )


async def test_three_outcomes(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)

    links = await client.links_for([LINKED, NOT_LINKED, NOT_IN_GUILD])

    assert links == {
        LINKED: YuniteLink(LinkStatus.LINKED, EPIC_ONE, fake_time.now()),
        NOT_LINKED: YuniteLink(LinkStatus.NOT_LINKED),
        NOT_IN_GUILD: YuniteLink(LinkStatus.NOT_IN_GUILD),
    }
    assert len(sandbox.requests) == 1


async def test_request_shape(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    captured: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        captured.append(request)

    http.event_hooks["request"].append(capture)
    await make_client(http, sandbox, fake_time).links_for([LINKED, NOT_LINKED])

    request = captured[0]
    assert request.method == "POST"
    assert request.url.path == f"/api/v3/guild/{GUILD_ID}/registration/links"
    assert request.headers["Y-Api-Token"] == API_TOKEN
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "type": "DISCORD",
        "userIds": [str(LINKED), str(NOT_LINKED)],
    }


async def test_fixture_reply_parsed(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    body.pop("_request")
    sandbox.inject_status(200, body=json.dumps(body))

    links = await make_client(http, sandbox, fake_time).links_for(
        [LINKED, NOT_LINKED, NOT_IN_GUILD]
    )

    assert links[LINKED].status is LinkStatus.LINKED
    assert links[LINKED].epic_account_id == EPIC_ONE
    assert links[NOT_LINKED].status is LinkStatus.NOT_LINKED
    assert links[NOT_IN_GUILD].status is LinkStatus.NOT_IN_GUILD


async def test_batches_of_at_most_100(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    discord_ids = [400000000000001000 + number for number in range(250)]
    for discord_id in discord_ids[::2]:
        sandbox.add_player(discord_id, None)

    links = await make_client(http, sandbox, fake_time).links_for(discord_ids)

    assert [len(request.user_ids) for request in sandbox.requests] == [100, 100, 50]
    assert [request.status for request in sandbox.requests] == [200, 200, 200]
    assert len(links) == 250
    assert links[discord_ids[0]].status is LinkStatus.NOT_LINKED
    assert links[discord_ids[1]].status is LinkStatus.NOT_IN_GUILD


async def test_duplicate_ids_requested_once(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    links = await make_client(http, sandbox, fake_time).links_for([LINKED, LINKED])

    assert list(links) == [LINKED]
    assert sandbox.requests[0].user_ids == (str(LINKED),)


async def test_wrong_token_is_auth_error(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time, token="wrong-token")

    with pytest.raises(YuniteAuthError) as raised:
        await client.links_for([LINKED])

    assert "YUNITE_API_KEY" in raised.value.safe_message
    assert sandbox.requests[0].token_valid is False


async def test_wrong_guild_is_not_authorized(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time, guild_id=500000000000000999)

    with pytest.raises(YuniteNotAuthorizedError) as raised:
        await client.links_for([LINKED])

    assert "guild admin must authorise" in raised.value.safe_message
    assert "500000000000000999" in raised.value.safe_message


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, YuniteAuthError),
        (402, YunitePremiumRequiredError),
        (403, YuniteNotAuthorizedError),
        (400, YuniteRequestError),
        (404, YuniteRequestError),
        (500, YuniteUnavailableError),
        (502, YuniteUnavailableError),
        (503, YuniteUnavailableError),
    ],
)
async def test_error_statuses(
    http: httpx.AsyncClient,
    sandbox: SandboxYunite,
    fake_time: FakeTime,
    status: int,
    error_type: type[Exception],
) -> None:
    sandbox.inject_status(status)

    with pytest.raises(error_type):
        await make_client(http, sandbox, fake_time).links_for([LINKED])

    assert len(sandbox.requests) == 1


async def test_rate_limited_carries_retry_after(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    sandbox.inject_status(429, headers={"Retry-After": "17"})

    with pytest.raises(YuniteRateLimitedError) as raised:
        await make_client(http, sandbox, fake_time).links_for([LINKED])

    assert raised.value.retry_after == 17.0
    assert "17 seconds" in raised.value.safe_message
    assert len(sandbox.requests) == 1


async def test_rate_limited_retry_after_capped(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    sandbox.inject_status(429, headers={"X-Ratelimit-Reset": "99999999999999"})

    with pytest.raises(YuniteRateLimitedError) as raised:
        await make_client(http, sandbox, fake_time).links_for([LINKED])

    assert raised.value.retry_after == MAX_PAUSE_SECONDS
    assert f"{round(MAX_PAUSE_SECONDS)} seconds" in raised.value.safe_message


async def test_rate_limited_without_header(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    sandbox.inject_status(429, headers={})

    with pytest.raises(YuniteRateLimitedError) as raised:
        await make_client(http, sandbox, fake_time).links_for([LINKED])

    assert raised.value.retry_after is None


@pytest.mark.parametrize(
    "body",
    [
        "<html>bad gateway</html>",
        "[]",
        '{"users": [{"discord": {"id": "400000000000000001"}}]}',
        '{"users": [], "notLinked": [], "notFound": []}',
    ],
)
async def test_malformed_reply_is_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime, body: str
) -> None:
    sandbox.inject_status(200, body=body)

    with pytest.raises(YuniteUnavailableError):
        await make_client(http, sandbox, fake_time).links_for([LINKED])


async def test_timeout_is_unavailable(sandbox: SandboxYunite, fake_time: FakeTime) -> None:
    def raise_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(raise_timeout)) as http:
        with pytest.raises(YuniteUnavailableError, match="did not reply in time"):
            await make_client(http, sandbox, fake_time).links_for([LINKED])


async def test_connection_refused_is_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)
    await sandbox.stop()

    with pytest.raises(YuniteUnavailableError):
        await client.links_for([LINKED])


async def test_cache_serves_repeat_calls(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time, cache_seconds=60)

    first = await client.links_for([LINKED, NOT_LINKED])
    fake_time.advance(59)
    second = await client.links_for([NOT_LINKED, LINKED])

    assert second == first
    assert len(sandbox.requests) == 1


async def test_cache_requests_only_missing_ids(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)

    await client.links_for([LINKED])
    await client.links_for([LINKED, NOT_LINKED])

    assert [request.user_ids for request in sandbox.requests] == [
        (str(LINKED),),
        (str(NOT_LINKED),),
    ]


async def test_cache_expires(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time, cache_seconds=60)

    await client.links_for([LINKED])
    fake_time.advance(60)
    await client.links_for([LINKED])

    assert len(sandbox.requests) == 2


async def test_zero_cache_always_asks(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time, cache_seconds=0)

    await client.links_for([LINKED])
    await client.links_for([LINKED])

    assert len(sandbox.requests) == 2


async def test_invalidate_sees_relink(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)
    before = await client.links_for([LINKED])

    fake_time.advance(5)
    sandbox.relink(LINKED, EPIC_TWO)
    cached = await client.links_for([LINKED])
    client.invalidate(LINKED)
    after = await client.links_for([LINKED])

    assert cached == before
    assert after[LINKED].epic_account_id == EPIC_TWO
    assert after[LINKED].date_verified == fake_time.now()
    assert before[LINKED].date_verified == fake_time.now() - timedelta(seconds=5)
    assert len(sandbox.requests) == 2


async def test_left_guild_after_invalidate(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)
    await client.links_for([LINKED])

    sandbox.remove_from_guild(LINKED)
    client.clear_cache()
    links = await client.links_for([LINKED])

    assert links[LINKED] == YuniteLink(LinkStatus.NOT_IN_GUILD)


async def test_errors_are_not_cached(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, fake_time)
    sandbox.inject_status(503)

    with pytest.raises(YuniteUnavailableError):
        await client.links_for([LINKED])
    links = await client.links_for([LINKED])

    assert links[LINKED].status is LinkStatus.LINKED
    assert len(sandbox.requests) == 2


async def test_sandbox_rejects_oversized_batch(
    http: httpx.AsyncClient, sandbox: SandboxYunite
) -> None:
    response = await http.post(
        f"{sandbox.base_url}/guild/{GUILD_ID}/registration/links",
        json={"type": "DISCORD", "userIds": [str(number + 1) for number in range(101)]},
        headers={"Y-Api-Token": API_TOKEN},
    )

    assert response.status_code == 400


@pytest.mark.parametrize("discord_id", [0, -5, 2**64, True])
async def test_invalid_discord_id_rejected(
    http: httpx.AsyncClient, sandbox: SandboxYunite, fake_time: FakeTime, discord_id: int
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await make_client(http, sandbox, fake_time).links_for([discord_id])
    assert sandbox.requests == []
