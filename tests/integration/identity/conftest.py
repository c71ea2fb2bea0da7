"""Fixtures for the identity tests: sandboxes over loopback and services on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from core.db import Database
from core.integrations.fortnite import StatsClient
from core.integrations.rate_limit import RateLimiter
from core.integrations.yunite import YuniteClient
from core.observability.metrics import Metrics
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite
from core.services.players import PlayerService
from core.services.poller import Poller
from core.services.verification import VerificationService
from tests.integration.identity.helpers_identity import (
    GUILD_ID,
    STATS_API_KEY,
    YUNITE_TOKEN,
    FakeClock,
    IdentityEnv,
    StaticMembership,
    poller_settings,
)


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def env(database: Database) -> AsyncIterator[IdentityEnv]:
    """The identity services on `database`, with Yunite and stats sandboxes on a fake clock."""
    clock = FakeClock()
    metrics = Metrics(version="test")
    stats = SandboxStats(STATS_API_KEY, clock=clock.now)
    yunite = SandboxYunite(YUNITE_TOKEN, GUILD_ID, clock=clock.now)
    await stats.start()
    await yunite.start()
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)

    # The limiter is generous: pacing is the poller's job, and the fake clock never waits.
    limiter = RateLimiter(100_000, monotonic=clock.monotonic, sleep=_no_sleep)
    stats_client = StatsClient(
        http,
        stats.base_url,
        SecretStr(STATS_API_KEY),
        limiter,
        clock=clock.now,
        sleep=_no_sleep,
        max_attempts=2,
    )
    yunite_client = YuniteClient(
        http, yunite.base_url, SecretStr(YUNITE_TOKEN), GUILD_ID, cache_seconds=0, clock=clock.now
    )
    membership = StaticMembership()
    settings = poller_settings()

    async def pause(stop: object, seconds: float) -> None:
        clock.pauses.append(seconds)
        clock.advance(max(0.0, seconds))

    try:
        yield IdentityEnv(
            db=database,
            clock=clock,
            metrics=metrics,
            stats=stats,
            yunite=yunite,
            http=http,
            stats_client=stats_client,
            yunite_client=yunite_client,
            membership=membership,
            players=PlayerService(database, clock.now, metrics),
            verification=VerificationService(
                database, yunite_client, membership, clock.now, metrics
            ),
            settings=settings,
            poller=Poller(
                database,
                stats_client,
                settings,
                clock.now,
                metrics,
                monotonic=clock.monotonic,
                pause=pause,
            ),
        )
    finally:
        await http.aclose()
        await stats.stop()
        await yunite.stop()
