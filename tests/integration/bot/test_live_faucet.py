"""The composition root in live mode against the sandbox servers over loopback.

The services that `open_services` builds pay real sandbox-ledger sends with the local signer.
The bot's admin command settles through the same services, and the side server reports ready.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.app import Pay2SlayBot
from bot.runtime import Runtime, Services, open_services
from bot.sandbox import (
    SANDBOX_WORK_THRESHOLD,
    SandboxMembership,
    make_players,
    new_secrets,
    sandbox_environment,
    sent_on_ledger_raw,
    settled_totals,
)
from core.banano.keys import KeyPair
from core.banano.units import RAW_PER_BAN
from core.clock import Clock, utc_now
from core.config import Settings, load_settings
from core.db.models import Payout, PayoutState
from core.observability import Metrics
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite
from core.services.verification import MembershipChecker
from tests.unit.cogs.harness import InteractionHarness, Invoker

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
ADMIN_ID = 700_000_000_000_000_001
PLAYERS = 4


@dataclass
class World:
    """The sandbox servers, the settings that point at them and the invented players."""

    settings: Settings
    node: SandboxBananoNode
    stats: SandboxStats
    operator: KeyPair
    players: list[Any]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    secrets = new_secrets()
    node = SandboxBananoNode(work_threshold=int(SANDBOX_WORK_THRESHOLD, 16))
    guild_id = 700_000_000_000_000_100
    yunite = SandboxYunite(secrets.yunite_api_key, guild_id)
    stats = SandboxStats(secrets.stats_api_key)
    players = make_players(PLAYERS, random.Random(7))
    operator = KeyPair.from_seed(secrets.operator_seed, 0)
    node_url = await node.start()
    yunite_url = await yunite.start()
    stats_url = await stats.start()
    try:
        node.fund(operator.address, 1000 * RAW_PER_BAN, key=operator)
        for player in players:
            yunite.add_player(player.discord_id, player.epic_account_id)
            stats.add_player(player.epic_account_id, kills=100)
        environ = sandbox_environment(
            secrets,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
            node_url=node_url,
            yunite_url=yunite_url,
            stats_url=stats_url,
            guild_id=guild_id,
        )
        environ["P2S_INTEGRATIONS__DISCORD__ADMIN_USER_IDS"] = f"[{ADMIN_ID}]"
        yield World(load_settings(CONFIG_DIR, environ), node, stats, operator, players)
    finally:
        await stats.stop()
        await yunite.stop()
        await node.stop()


async def accrue_kills(services: Services, world: World) -> None:
    """Register every player, take their baseline, then add kills and read them."""
    for player in world.players:
        await services.players.link_wallet(
            player.discord_id, player.wallet, services.operator_address, replace=False
        )
    await services.verification.verify_many([p.discord_id for p in world.players], "scheduled")
    await services.poller.poll_batch(PLAYERS)
    for player in world.players:
        world.stats.add_kills(player.epic_account_id, 3)
    await services.poller.poll_batch(PLAYERS)


def sent_by_operator(world: World) -> int:
    return sent_on_ledger_raw(world.node, world.operator.address)


async def test_live_settlement_pays_sandbox_ledger(world: World) -> None:
    services = await open_services(
        world.settings,
        membership=SandboxMembership([p.discord_id for p in world.players]),
        metrics=Metrics(),
    )
    try:
        await accrue_kills(services, world)

        report = await services.settlement.run("test")
        await services.settlement.confirm()
        totals = await settled_totals(services)
        async with services.db.read() as session:
            states = set(await session.scalars(select(Payout.state)))
    finally:
        await services.aclose()

    assert report.outcome.value == "completed"
    assert len(report.payout_ids) == PLAYERS
    assert states == {PayoutState.CONFIRMED}
    expected_raw = PLAYERS * 3 * 21 * RAW_PER_BAN // 10
    assert sent_by_operator(world) == expected_raw
    assert totals["accruals_settled_raw"] == expected_raw
    assert totals["payouts_raw"] == expected_raw


async def test_side_server_ready_with_live_node(world: World) -> None:
    metrics = Metrics()
    services = await open_services(
        world.settings, membership=SandboxMembership([]), metrics=metrics
    )
    runtime = Runtime(services)
    try:
        url = await runtime.start_web_server()
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            ready = await http.get(f"{url}/readyz")
            scrape = await http.get(f"{url}/metrics")
        balance = await services.operator_balance_probe()
    finally:
        await runtime.stop()
        await services.aclose()

    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"database", "migrations", "node"}
    assert "pay2slay_http_requests_total" in scrape.text
    assert balance == 1000 * RAW_PER_BAN


async def test_admin_settle_now_through_bot(world: World) -> None:
    member_ids = [p.discord_id for p in world.players]

    async def opener(
        settings: Settings, *, membership: MembershipChecker, metrics: Metrics, clock: Clock
    ) -> Services:
        return await open_services(
            settings, membership=SandboxMembership(member_ids), metrics=metrics, clock=clock
        )

    bot = Pay2SlayBot(world.settings, metrics=Metrics(), services_opener=opener, clock=utc_now)
    async with bot:
        await bot.setup_hook()
        services = bot.services
        assert services is not None
        await accrue_kills(services, world)
        harness = InteractionHarness(bot)
        admin = Invoker(ADMIN_ID, int(world.settings.integrations.discord_guild_id))

        # The confirmation job's start-up pass holds the settlement lease for a moment, and a
        # run requested meanwhile is rejected as busy, with the message an admin would see.
        for _ in range(50):
            dispatch = asyncio.create_task(harness.run_command("settle-now", admin))
            await harness.press(await harness.next_view(), "confirm", admin)
            replies = await dispatch
            if "Another settlement is running" not in replies[-1].text:
                break
            await asyncio.sleep(0.1)
        await bot.close()

    assert "Settlement finished. Payouts: 4" in replies[-1].text
    assert sent_by_operator(world) == PLAYERS * 3 * 21 * RAW_PER_BAN // 10
