"""No API key, client secret, authorization code or token reaches logs, errors or reprs."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from core.errors import Pay2SlayError
from core.integrations.discord_oauth import DiscordOAuthClient
from core.integrations.fortnite import StatsClient
from core.integrations.rate_limit import RateLimiter
from core.integrations.yunite import YuniteClient
from core.sandbox.discord_server import DiscordEndpoint, SandboxDiscord
from core.sandbox.stats_server import SandboxStats, StatsFault
from core.sandbox.yunite_server import SandboxYunite
from tests.unit.integrations.helpers_fake_time import FakeTime

YUNITE_TOKEN = "yunite-secret-token-4f1d9a"
WRONG_YUNITE_TOKEN = "yunite-wrong-token-77c2e0"
STATS_KEY = "stats-secret-key-b83e51"
WRONG_STATS_KEY = "stats-wrong-key-0a9d44"
CLIENT_SECRET = "client-secret-c6e2f7"
WRONG_CLIENT_SECRET = "client-wrong-secret-19bb3c"
CLIENT_ID = "1100000000000000001"
REDIRECT_URI = "http://127.0.0.1:3000/auth/discord/callback"
GUILD_ID = 500000000000000001
DISCORD_ID = 400000000000000001
EPIC_ID = "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"


class Sandboxes:
    def __init__(self, fake_time: FakeTime) -> None:
        self.yunite = SandboxYunite(YUNITE_TOKEN, GUILD_ID, clock=fake_time.now)
        self.stats = SandboxStats(STATS_KEY, clock=fake_time.now)
        self.discord = SandboxDiscord(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], clock=fake_time.now)


@pytest.fixture
async def sandboxes(fake_time: FakeTime) -> AsyncIterator[Sandboxes]:
    servers = Sandboxes(fake_time)
    servers.yunite.add_player(DISCORD_ID, EPIC_ID)
    servers.stats.add_player(EPIC_ID, 10)
    servers.discord.add_user(DISCORD_ID, "slayer_one", guild_ids=[GUILD_ID])
    servers.discord.consent_as(DISCORD_ID)
    for server in (servers.yunite, servers.stats, servers.discord):
        await server.start()
    yield servers
    for server in (servers.yunite, servers.stats, servers.discord):
        await server.stop()


async def run_every_flow(
    http: httpx.AsyncClient, servers: Sandboxes, fake_time: FakeTime
) -> tuple[list[str], list[str]]:
    """Run successful and failing calls of every client; return secrets seen and error texts."""
    secrets = [YUNITE_TOKEN, WRONG_YUNITE_TOKEN, STATS_KEY, WRONG_STATS_KEY]
    secrets += [CLIENT_SECRET, WRONG_CLIENT_SECRET]
    error_texts: list[str] = []

    def note_error(error: Exception) -> None:
        error_texts.extend([str(error), repr(error)])
        if isinstance(error, Pay2SlayError):
            error_texts.append(error.safe_message)

    for yunite_token in (YUNITE_TOKEN, WRONG_YUNITE_TOKEN):
        yunite = YuniteClient(http, servers.yunite.base_url, SecretStr(yunite_token), GUILD_ID, 0)
        error_texts.append(repr(yunite.__dict__))
        try:
            await yunite.links_for([DISCORD_ID])
        except Pay2SlayError as error:
            note_error(error)

    limiter = RateLimiter(60, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    servers.stats.inject(EPIC_ID, StatsFault.SERVER_ERROR)
    servers.stats.inject(EPIC_ID, StatsFault.RATE_LIMITED, reset_in_seconds=1)
    servers.stats.inject(EPIC_ID, StatsFault.MALFORMED)
    for key in (STATS_KEY, STATS_KEY, WRONG_STATS_KEY):
        stats = StatsClient(
            http,
            servers.stats.base_url,
            SecretStr(key),
            limiter,
            clock=fake_time.now,
            sleep=fake_time.sleep,
            rng=random.Random(1),
        )
        try:
            reading = await stats.lifetime_kills(EPIC_ID)
            error_texts.append(repr(reading))
        except Pay2SlayError as error:
            note_error(error)

    for secret in (CLIENT_SECRET, WRONG_CLIENT_SECRET):
        oauth = DiscordOAuthClient(
            http,
            servers.discord.api_base_url,
            servers.discord.authorize_url,
            CLIENT_ID,
            SecretStr(secret),
            REDIRECT_URI,
            ["identify", "guilds"],
        )
        code = servers.discord.issue_code(DISCORD_ID, REDIRECT_URI)
        secrets.append(code)
        try:
            token = await oauth.exchange_code(code)
        except Pay2SlayError as error:
            note_error(error)
            continue

        secrets.append(token.access_token.get_secret_value())
        assert token.refresh_token is not None
        secrets.append(token.refresh_token.get_secret_value())
        error_texts.append(repr(token))
        await oauth.current_user(token)
        await oauth.user_guild_ids(token)

        servers.discord.inject_status(DiscordEndpoint.USERS_ME, 500)
        for call in (oauth.exchange_code(code), oauth.current_user(token)):
            try:
                await call
            except Pay2SlayError as error:
                note_error(error)
        servers.discord.revoke_tokens()
        try:
            await oauth.user_guild_ids(token)
        except Pay2SlayError as error:
            note_error(error)

    return secrets, error_texts


async def test_no_secret_in_logs_or_errors(
    http: httpx.AsyncClient,
    sandboxes: Sandboxes,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    with capture_logs() as events:
        secrets, error_texts = await run_every_flow(http, sandboxes, fake_time)

    structured = [repr(event) for event in events]
    stdlib = [record.getMessage() + repr(record.args) for record in caplog.records]
    assert len(structured) > 10
    assert len(error_texts) > 10
    assert len(secrets) >= 9
    for secret in secrets:
        for text in structured + stdlib + error_texts:
            assert secret not in text, f"a secret appeared in: {text[:80]}"


def event_names(events: list[MutableMapping[str, Any]]) -> set[str]:
    return {str(event["event"]) for event in events}


async def test_failures_are_logged(
    http: httpx.AsyncClient, sandboxes: Sandboxes, fake_time: FakeTime
) -> None:
    with capture_logs() as events:
        await run_every_flow(http, sandboxes, fake_time)

    names = event_names(events)
    assert {"yunite_request_rejected", "stats_read_retrying", "stats_rate_limited"} <= names
    assert {"stats_reply_invalid", "stats_api_key_rejected"} <= names
    assert {"discord_oauth_client_rejected", "discord_oauth_upstream_failed"} <= names
