"""Fixtures for command tests: services over a real SQLite database and a clock set by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime

import pytest

from bot.runtime import Services
from cogs.common import CogServices
from core.db import Database
from core.sandbox.yunite_server import SandboxYunite
from tests.unit.cogs.helpers_cogs import (
    GUILD_ID,
    NOW,
    YUNITE_KEY,
    FakeMembership,
    cog_services_for,
    make_settings,
    open_test_services,
)


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    """A clock at a fixed instant."""
    return MovableClock(NOW)


@pytest.fixture
def membership() -> FakeMembership:
    """Membership results that the test sets."""
    return FakeMembership()


@pytest.fixture
async def yunite() -> AsyncIterator[SandboxYunite]:
    """The Yunite sandbox on a free loopback port, with no players yet."""
    server = SandboxYunite(YUNITE_KEY, GUILD_ID)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def services(
    sqlite_database: Database,
    clock: MovableClock,
    membership: FakeMembership,
    yunite: SandboxYunite,
) -> AsyncIterator[Services]:
    """Process services over an empty SQLite database, in dry run, with no Banano node."""
    settings = make_settings(yunite=yunite.base_url)
    async with AsyncExitStack() as stack:
        yield await open_test_services(
            sqlite_database, settings, stack, clock=clock, membership=membership
        )


@pytest.fixture
def cog_services(services: Services) -> CogServices:
    """What the cogs call, built the way the bot builds it."""
    return cog_services_for(services)
