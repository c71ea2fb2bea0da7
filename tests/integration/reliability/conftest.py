"""Fixtures of the reliability campaigns, and the rule that keeps long campaigns optional.

Tests marked `slow` here run only when the environment sets PAY2SLAY_TEST_SLOW=1, so the
default test command runs the short campaigns alone. The bot fixtures build the same bot and
services as the command tests, over a SQLite database, in dry run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime

import pytest

from bot.app import Pay2SlayBot
from bot.runtime import Services
from cogs.common import CogServices
from core.db.session import Database
from core.observability import Metrics
from core.sandbox.yunite_server import SandboxYunite
from tests.environment import SLOW_VARIABLE
from tests.unit.cogs.harness import InteractionHarness
from tests.unit.cogs.helpers_cogs import (
    GUILD_ID,
    NOW,
    YUNITE_KEY,
    FakeMembership,
    cog_services_for,
    make_settings,
    open_test_services,
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `slow` test of this directory unless PAY2SLAY_TEST_SLOW=1."""
    if item.get_closest_marker("slow") is not None and os.environ.get(SLOW_VARIABLE) != "1":
        pytest.skip(f"a long campaign; set {SLOW_VARIABLE}=1 to run it")


@pytest.fixture
def postgres_available(postgres_schema: str) -> None:
    """Skip the test when PostgreSQL at 127.0.0.1:5432 cannot be reached.

    The campaigns create a schema of their own; depending on the session schema only borrows
    its reachability check and its skip.
    """


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def membership() -> FakeMembership:
    """Membership results the test sets; unknown users are not members."""
    return FakeMembership()


@pytest.fixture
async def yunite() -> AsyncIterator[SandboxYunite]:
    """The Yunite sandbox on a free loopback port."""
    server = SandboxYunite(YUNITE_KEY, GUILD_ID)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def services(
    sqlite_database: Database, membership: FakeMembership, yunite: SandboxYunite
) -> AsyncIterator[Services]:
    """Process services over an empty SQLite database, in dry run, with no Banano node."""
    settings = make_settings(yunite=yunite.base_url)
    async with AsyncExitStack() as stack:
        yield await open_test_services(
            sqlite_database, settings, stack, clock=MovableClock(NOW), membership=membership
        )


@pytest.fixture
def cog_services(services: Services) -> CogServices:
    """What the cogs call, built the way the bot builds it."""
    return cog_services_for(services)


@pytest.fixture
async def bot(cog_services: CogServices) -> AsyncIterator[Pay2SlayBot]:
    """The bot with both cogs loaded, bound to the loop but never logged in."""
    client = Pay2SlayBot(
        cog_services.settings,
        metrics=Metrics(),
        catalog=cog_services.catalog,
        commands_only=True,
    )
    client.cog_services = cog_services
    async with client:
        await client.load_extension("cogs.player")
        await client.load_extension("cogs.admin")
        yield client


@pytest.fixture
def harness(bot: Pay2SlayBot) -> InteractionHarness:
    """Dispatches interactions through the bot's command tree and records the replies."""
    return InteractionHarness(bot)
