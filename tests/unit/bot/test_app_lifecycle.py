"""Start-up and shutdown of the real bot with no Discord connection.

`setup_hook` and `close` are called directly: the bot never logs in, so nothing reaches
Discord, while the database, the side web server, the poller and the scheduler really run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import Pay2SlayBot
from bot.runtime import Runtime, StartupError
from core.config import Settings
from core.observability import Metrics
from tests.unit.cogs.helpers_cogs import make_settings

EXPECTED_JOBS = {"settlement", "payout_confirmation", "reverification", "payout_dms"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings({"P2S_INTEGRATIONS__DATABASE__URL": f"sqlite:///{tmp_path / 'bot.db'}"})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
        yield client


async def test_setup_starts_everything(settings: Settings, http: httpx.AsyncClient) -> None:
    bot = Pay2SlayBot(settings, metrics=Metrics())
    async with bot:
        await bot.setup_hook()
        runtime = bot.runtime
        assert isinstance(runtime, Runtime)
        assert runtime.scheduler is not None
        url = runtime.web_url

        assert bot.get_cog("PlayerCog") is not None
        assert bot.get_cog("AdminCog") is not None
        assert bot.failed_extensions == {}
        assert runtime.scheduler_running
        assert {job.id for job in runtime.scheduler.get_jobs()} == EXPECTED_JOBS
        assert bot.next_settlement_at() is not None
        assert (await http.get(f"{url}/healthz")).status_code == 200
        metrics = await http.get(f"{url}/metrics")
        assert "pay2slay_" in metrics.text
        ready = await http.get(f"{url}/readyz")
        # Everything but the gateway is up: the bot never logged in.
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["gateway"]

        await bot.close()

        assert not runtime.scheduler_running
        assert bot.next_settlement_at() is None
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")


async def test_broken_cog_leaves_others_loaded(settings: Settings) -> None:
    bot = Pay2SlayBot(
        settings,
        metrics=Metrics(),
        extensions=(
            "cogs.player",
            "tests.unit.bot.extension_broken",
            "cogs.missing",
            "no.such.module",
            "cogs.admin",
        ),
    )
    async with bot:
        await bot.setup_hook()

        assert set(bot.failed_extensions) == {
            "tests.unit.bot.extension_broken",
            "cogs.missing",
            "no.such.module",
        }
        assert bot.failed_extensions["tests.unit.bot.extension_broken"] == "RuntimeError"
        assert bot.get_cog("PlayerCog") is not None
        assert bot.get_cog("AdminCog") is not None
        assert bot.runtime is not None
        assert bot.runtime.scheduler_running


async def test_close_waits_for_admin_work(settings: Settings) -> None:
    bot = Pay2SlayBot(settings, metrics=Metrics())
    finished = asyncio.Event()

    async def payout_step() -> None:
        await asyncio.sleep(0.2)
        finished.set()

    async with bot:
        await bot.setup_hook()
        started = asyncio.ensure_future(bot.work.run(payout_step()))
        await asyncio.sleep(0)
        await bot.close()

        assert finished.is_set()
        await started


async def test_commands_only_opens_nothing(settings: Settings) -> None:
    bot = Pay2SlayBot(settings, metrics=Metrics(), commands_only=True)
    async with bot:
        await bot.setup_hook()

        assert bot.services is None
        assert bot.runtime is None
        assert len(list(bot.tree.walk_commands())) == 16


async def test_database_not_migrated_when_told_not_to(tmp_path: Path) -> None:
    settings = make_settings(
        {
            "P2S_INTEGRATIONS__DATABASE__URL": f"sqlite:///{tmp_path / 'empty.db'}",
            "P2S_INTEGRATIONS__DATABASE__MIGRATE_ON_START": "false",
        }
    )
    bot = Pay2SlayBot(settings, metrics=Metrics())
    async with bot:
        with pytest.raises(StartupError, match="not at the newest migration"):
            await bot.setup_hook()
        assert bot.runtime is None
