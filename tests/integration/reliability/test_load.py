"""Bounded loopback load: the side server and 1,000 concurrent `/status` commands.

No timing is asserted. The checks are that every request got the expected response, that
nothing was logged as an error, and that the ticker on the same event loop kept ticking
while the load ran. Run with `-s` to see the timings, which docs/reliability.md records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bot.runtime import Services
from core.banano.address import encode_address
from core.db.models import EpicLink, Player, Wallet
from core.i18n import MessageCatalog
from tests.reliability.commands import reply_problems
from tests.reliability.load import side_server_load, status_load
from tests.reliability.log_scan import captured_log_lines, secret_hits
from tests.reliability.side_server import full_faucet
from tests.unit.cogs.harness import InteractionHarness, Invoker
from tests.unit.cogs.helpers_cogs import GUILD_ID

STATUS_USERS = 1000
REGISTERED_USERS = 200
FIRST_USER_ID = 700_000_000_000_000_000


async def test_side_server_under_load(tmp_path: Path) -> None:
    with captured_log_lines() as lines:
        async with full_faucet(tmp_path) as faucet:
            report = await side_server_load(faucet)
            hits = secret_hits(lines.getvalue(), faucet.secrets.named())
    errors = [line for line in lines.getvalue().splitlines() if '"level": "error"' in line]

    print(json.dumps(report.summary()))
    assert hits == {}
    assert report.errors == []
    assert report.answers == {
        "/auth/discord/login 302": 300,
        "/healthz 200": 600,
        "/metrics 200": 300,
    }
    assert report.ticked_during_load
    assert errors == []


async def register_players(services: Services, count: int) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    async with services.db.write() as session:
        for index in range(count):
            player = Player(discord_id=FIRST_USER_ID + index, created_at=at, guild_member=True)
            session.add(player)
            await session.flush()
            address = encode_address((index + 1).to_bytes(32, "big"))
            session.add(Wallet(player_id=player.id, address=address, created_at=at, updated_at=at))
            session.add(
                EpicLink(
                    player_id=player.id,
                    epic_account_id=f"{0x7000 + index:032x}",
                    active=True,
                    linked_at=at,
                )
            )


async def test_thousand_concurrent_status_commands(
    harness: InteractionHarness, services: Services
) -> None:
    await register_players(services, REGISTERED_USERS)
    invokers = [Invoker(FIRST_USER_ID + index, GUILD_ID) for index in range(STATUS_USERS)]
    unexpected = MessageCatalog.load().text("errors.unexpected", "en", incident_id="")

    with structlog.testing.capture_logs() as logs:
        report = await status_load(harness, invokers, unexpected.split(":")[0])

    print(json.dumps(report.summary()))
    assert report.errors == []
    assert report.answers == {"response+edit_original": STATUS_USERS}
    assert report.ticked_during_load
    assert reply_problems(harness.replies) == []
    assert [entry for entry in logs if entry.get("log_level") in ("error", "critical")] == []
