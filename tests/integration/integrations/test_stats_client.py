"""StatsClient and RateLimiter against the stats sandbox over loopback HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from core.integrations.fortnite import (
    MAX_PLAUSIBLE_KILLS,
    StatsAuthError,
    StatsClient,
    StatsReading,
    StatsRequestError,
    StatsState,
)
from core.integrations.rate_limit import MAX_PAUSE_SECONDS, RateLimiter
from core.sandbox.stats_server import ResetHeader, SandboxStats, StatsFault
from tests.unit.integrations.helpers_fake_time import FakeTime

API_KEY = "stats-key-for-tests"
PLAYER = "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"
OTHER_PLAYER = "0c1d2e3f40516273849506a7b8c9d0e1"
UNKNOWN = "ffffffffffffffffffffffffffffffff"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "fortnite"


@pytest.fixture
async def sandbox(fake_time: FakeTime) -> AsyncIterator[SandboxStats]:
    server = SandboxStats(API_KEY, clock=fake_time.now)
    server.add_player(PLAYER, 120)
    server.add_player(OTHER_PLAYER, 7)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def limiter(fake_time: FakeTime) -> RateLimiter:
    return RateLimiter(60, monotonic=fake_time.monotonic, sleep=fake_time.sleep)


def make_client(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    *,
    key: str = API_KEY,
    max_attempts: int = 3,
    max_rate_limit_wait_seconds: float = 120.0,
) -> StatsClient:
    return StatsClient(
        http,
        sandbox.base_url,
        SecretStr(key),
        limiter,
        clock=fake_time.now,
        sleep=fake_time.sleep,
        rng=random.Random(4),
        max_attempts=max_attempts,
        max_rate_limit_wait_seconds=max_rate_limit_wait_seconds,
    )


def load_fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


async def test_ok_reading(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading == StatsReading(PLAYER, StatsState.OK, 120, fake_time.now())
    assert limiter.acquired == 1


async def test_request_shape(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    captured: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        captured.append(request)

    http.event_hooks["request"].append(capture)
    await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER.upper())

    request = captured[0]
    assert request.method == "GET"
    assert request.url.path == f"/v2/stats/br/v2/{PLAYER}"
    assert dict(request.url.params) == {"timeWindow": "lifetime", "image": "none"}
    assert request.headers["Authorization"] == API_KEY
    assert sandbox.requests[0].authorized is True


async def test_kill_count_grows_with_clock(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, limiter, fake_time)
    sandbox.set_growth(PLAYER, 2.0)

    first = await client.lifetime_kills(PLAYER)
    fake_time.advance(90)
    second = await client.lifetime_kills(PLAYER)
    sandbox.add_kills(PLAYER, 10)
    third = await client.lifetime_kills(PLAYER)

    assert (first.kills, second.kills, third.kills) == (120, 123, 133)


async def test_fixture_body_parsed(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject_response(PLAYER, 200, load_fixture("stats_br_v2_lifetime.json"))

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert reading.kills == 5321


async def test_no_matches_fixture_is_zero(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject_response(OTHER_PLAYER, 200, load_fixture("stats_no_matches.json"))

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(OTHER_PLAYER)

    assert reading.state is StatsState.OK
    assert reading.kills == 0


@pytest.mark.parametrize("fault", [StatsFault.NULL_STATS, StatsFault.NULL_OVERALL])
async def test_null_block_is_zero_kills(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    fault: StatsFault,
) -> None:
    sandbox.inject(PLAYER, fault)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert reading.kills == 0


@pytest.mark.parametrize(
    ("fault", "state"),
    [(StatsFault.PRIVATE, StatsState.PRIVATE), (StatsFault.NOT_FOUND, StatsState.NOT_FOUND)],
)
async def test_private_and_not_found(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    fault: StatsFault,
    state: StatsState,
) -> None:
    sandbox.inject(PLAYER, fault)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is state
    assert reading.kills is None
    assert len(sandbox.requests) == 1


async def test_fault_applies_to_one_player(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, limiter, fake_time)
    sandbox.inject(PLAYER, StatsFault.PRIVATE, times=None)

    other = await client.lifetime_kills(OTHER_PLAYER)
    first = await client.lifetime_kills(PLAYER)
    second = await client.lifetime_kills(PLAYER)
    sandbox.clear_faults(PLAYER)
    cleared = await client.lifetime_kills(PLAYER)

    assert other.state is StatsState.OK
    assert (first.state, second.state) == (StatsState.PRIVATE, StatsState.PRIVATE)
    assert cleared.state is StatsState.OK


async def test_unknown_account_not_found(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(UNKNOWN)

    assert reading.state is StatsState.NOT_FOUND


async def test_rate_limit_waits_for_epoch_reset(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, reset_in_seconds=30)
    reset_at = fake_time.now().timestamp() + 30

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert reading.kills == 120
    assert [request.status for request in sandbox.requests] == [429, 200]
    assert sandbox.requests[1].at.timestamp() >= reset_at
    assert fake_time.slept == pytest.approx(30)
    assert limiter.pauses == 1
    assert limiter.acquired == 2


@pytest.mark.parametrize("header", [ResetHeader.DELTA, ResetHeader.RETRY_AFTER])
async def test_rate_limit_waits_for_delay_headers(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    header: ResetHeader,
) -> None:
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, reset_in_seconds=12, reset_header=header)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert fake_time.slept == pytest.approx(12)


async def test_rate_limit_without_header_waits_default(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, reset_header=ResetHeader.NONE)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert fake_time.slept == pytest.approx(60)


async def test_rate_limit_pauses_other_callers(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, limiter, fake_time)
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, times=2, reset_in_seconds=45)
    start = fake_time.now()

    first = await client.lifetime_kills(PLAYER)
    other = await client.lifetime_kills(OTHER_PLAYER)

    assert first.state is StatsState.UNAVAILABLE
    assert first.reason == "rate_limited"
    assert other.state is StatsState.OK
    assert [request.status for request in sandbox.requests] == [429, 429, 200]
    assert (sandbox.requests[2].at - start).total_seconds() >= 90


async def test_rate_limit_retried_only_once(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, times=None, reset_in_seconds=5)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "rate_limited"
    assert len(sandbox.requests) == 2


async def test_rate_limit_beyond_max_wait_not_retried(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.RATE_LIMITED, reset_in_seconds=250)
    client = make_client(http, sandbox, limiter, fake_time, max_rate_limit_wait_seconds=120)

    reading = await client.lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "rate_limited"
    assert len(sandbox.requests) == 1
    assert fake_time.slept == 0
    assert limiter.paused_until == pytest.approx(fake_time.monotonic() + 250)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ratelimit-Reset": "99999999999999"},
        {"Retry-After": "1000000000"},
        {"X-Ratelimit-Reset": "1e300"},
    ],
)
async def test_absurd_reset_header_pause_capped(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    headers: dict[str, str],
) -> None:
    sandbox.inject_response(PLAYER, 429, {"status": 429, "error": "slow down"}, headers=headers)
    client = make_client(http, sandbox, limiter, fake_time)

    with capture_logs() as logs:
        first = await client.lifetime_kills(PLAYER)

    assert first.state is StatsState.UNAVAILABLE
    assert first.reason == "rate_limited"
    assert limiter.paused_until == pytest.approx(fake_time.monotonic() + MAX_PAUSE_SECONDS)
    assert [entry["event"] for entry in logs].count("rate_limit_wait_clamped") == 1

    # Once the capped pause is over, the next reading goes through.
    second = await client.lifetime_kills(PLAYER)
    assert second.state is StatsState.OK
    assert fake_time.slept == pytest.approx(MAX_PAUSE_SECONDS)


@pytest.mark.parametrize("kills", [5_000_000_000, 2**63, 10**30])
async def test_implausible_kills_unavailable(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    kills: int,
) -> None:
    body = load_fixture("stats_br_v2_lifetime.json")
    body["data"]["stats"]["all"]["overall"]["kills"] = kills
    sandbox.inject_response(PLAYER, 200, body)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "implausible_kills"
    assert reading.kills is None


async def test_kills_at_limit_accepted(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.set_kills(PLAYER, MAX_PLAUSIBLE_KILLS)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert reading.kills == MAX_PLAUSIBLE_KILLS


async def test_server_error_retried_then_ok(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.SERVER_ERROR, times=2, status=503)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK
    assert [request.status for request in sandbox.requests] == [503, 503, 200]
    assert len(fake_time.sleeps) == 2
    assert 0.5 <= fake_time.sleeps[0] <= 1.0
    assert 1.0 <= fake_time.sleeps[1] <= 2.0
    assert limiter.acquired == 3


async def test_server_errors_exhausted(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.SERVER_ERROR, times=None)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "http_500"
    assert reading.kills is None
    assert len(sandbox.requests) == 3
    assert len(fake_time.sleeps) == 2


async def test_timeout_is_unavailable(
    sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.SLOW, times=None, delay_seconds=5)

    async with httpx.AsyncClient(timeout=httpx.Timeout(0.05), trust_env=False) as http:
        client = make_client(http, sandbox, limiter, fake_time, max_attempts=2)
        reading = await client.lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "timeout"
    assert limiter.acquired == 2


async def test_slow_reply_within_timeout(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.SLOW, delay_seconds=0.01)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.OK


async def test_connection_refused_is_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, limiter, fake_time, max_attempts=2)
    await sandbox.stop()

    reading = await client.lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "connection_error"


async def test_malformed_body_is_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject(PLAYER, StatsFault.MALFORMED)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "invalid_body"
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize("kills", [-1, True, False, 12.5, "12", None])
async def test_invalid_kills_unavailable(
    http: httpx.AsyncClient,
    sandbox: SandboxStats,
    limiter: RateLimiter,
    fake_time: FakeTime,
    kills: object,
) -> None:
    body = load_fixture("stats_br_v2_lifetime.json")
    body["data"]["stats"]["all"]["overall"]["kills"] = kills
    sandbox.inject_response(PLAYER, 200, body)

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "invalid_body"


async def test_other_account_in_reply_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject_response(OTHER_PLAYER, 200, load_fixture("stats_br_v2_lifetime.json"))

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(OTHER_PLAYER)

    assert reading.state is StatsState.UNAVAILABLE


async def test_wrong_key_raises_auth_error(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    client = make_client(http, sandbox, limiter, fake_time, key="wrong-key")

    with pytest.raises(StatsAuthError) as raised:
        await client.lifetime_kills(PLAYER)

    assert "FORTNITE_API_KEY" in raised.value.safe_message
    assert len(sandbox.requests) == 1


async def test_bearer_scheme_rejected_by_sandbox(
    http: httpx.AsyncClient, sandbox: SandboxStats
) -> None:
    response = await http.get(
        f"{sandbox.base_url}/v2/stats/br/v2/{PLAYER}",
        params={"timeWindow": "lifetime", "image": "none"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )

    assert response.status_code == 401


@pytest.mark.parametrize("params", [{}, {"time_window": "lifetime"}, {"timeWindow": "season"}])
async def test_sandbox_requires_lifetime_window(
    http: httpx.AsyncClient, sandbox: SandboxStats, params: dict[str, str]
) -> None:
    response = await http.get(
        f"{sandbox.base_url}/v2/stats/br/v2/{PLAYER}",
        params=params,
        headers={"Authorization": API_KEY},
    )

    assert response.status_code == 400


async def test_bad_request_raises(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject_response(PLAYER, 400, {"status": 400, "error": "bad parameters"})

    with pytest.raises(StatsRequestError):
        await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)


async def test_unexpected_status_unavailable(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    sandbox.inject_response(PLAYER, 410, {"status": 410, "error": "gone"})

    reading = await make_client(http, sandbox, limiter, fake_time).lifetime_kills(PLAYER)

    assert reading.state is StatsState.UNAVAILABLE
    assert reading.reason == "http_410"
    assert len(sandbox.requests) == 1


async def test_invalid_account_id_raises(
    http: httpx.AsyncClient, sandbox: SandboxStats, limiter: RateLimiter, fake_time: FakeTime
) -> None:
    with pytest.raises(ValueError, match="32 hexadecimal"):
        await make_client(http, sandbox, limiter, fake_time).lifetime_kills("not-an-id")

    assert sandbox.requests == []
    assert limiter.acquired == 0


async def test_shared_limiter_spaces_callers(
    http: httpx.AsyncClient, sandbox: SandboxStats, fake_time: FakeTime
) -> None:
    limiter = RateLimiter(2, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    first_client = make_client(http, sandbox, limiter, fake_time)
    second_client = make_client(http, sandbox, limiter, fake_time)

    await first_client.lifetime_kills(PLAYER)
    await second_client.lifetime_kills(OTHER_PLAYER)
    await first_client.lifetime_kills(OTHER_PLAYER)

    times = [request.at for request in sandbox.requests]
    assert (times[2] - times[0]).total_seconds() >= 60
    assert limiter.waits == 1
