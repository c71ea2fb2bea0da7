"""The `settle once` and `payouts` CLI commands against a SQLite file and the sandbox node.

The commands call `asyncio.run` themselves, so these tests are synchronous and run the sandbox
node on an event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog
from sqlalchemy import select

from bot.cli import main
from core.db.models import AuditEntry, FaucetFlag
from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    OPERATOR_SEED,
    RAW_PER_KILL,
    World,
    fund_operator,
)

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


class NodeThread:
    """A sandbox node served by an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.node = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def start(self) -> str:
        self.thread.start()
        url = self.call(self.node.start())

        async def fund() -> None:
            fund_operator(self.node)

        self.call(fund())
        return url

    def stop(self) -> None:
        self.call(self.node.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The commands configure logging for the process; put the test session's back."""
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.configure(**structlog_config)
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def seeded_database(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> World:
    """A SQLite file with two players owed 2 and 3 kills, named by the configuration."""
    path = tmp_path / "cli.db"
    shutil.copyfile(sqlite_template, path)
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_LEVEL", "WARNING")

    async def seed() -> World:
        db = Database.from_url(f"sqlite:///{path}")
        world = World(db)
        try:
            for kills in (2, 3):
                player = await world.add_player()
                await world.add_accrual(player, kills)
        finally:
            await db.dispose()
        return world

    return asyncio.run(seed())


def cli(*args: str) -> int:
    return main([*args, "--config-dir", str(CONFIG_DIR)])


def test_settle_once_dry_run(seeded_database: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("settle", "once")

    output = capsys.readouterr().out
    assert code == 0
    assert "settlement run 1: completed (dry run)" in output
    assert "payouts: 2, amount: 10.5 BAN" in output


def test_release_needs_confirmation(
    seeded_database: World, capsys: pytest.CaptureFixture[str]
) -> None:
    unconfirmed = cli("payouts", "release-dry-run")
    refused = cli("payouts", "release-dry-run", "--yes")

    errors = capsys.readouterr().err
    assert unconfirmed == 2
    assert refused == 1
    assert "Dry run is still on" in errors


def test_live_commands(
    seeded_database: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node_thread = NodeThread()
    url = node_thread.start()
    try:
        assert cli("settle", "once") == 0
        monkeypatch.setenv("P2S_INTEGRATIONS__DRY_RUN", "false")
        monkeypatch.setenv("P2S_INTEGRATIONS__NODE_RPC", url)
        monkeypatch.setenv("P2S_INTEGRATIONS__BANANO__WORK_SOURCES", "[node]")
        monkeypatch.setenv("P2S_INTEGRATIONS__BANANO__WORK_THRESHOLD", f"{LOW_WORK_THRESHOLD:016x}")
        monkeypatch.setenv("P2S_OPERATOR_SEED", OPERATOR_SEED)
        monkeypatch.setenv("P2S_SESSION_SECRET", "cli-test-session-key-" + "0" * 24)
        capsys.readouterr()

        released = cli("payouts", "release-dry-run", "--yes")
        released_output = capsys.readouterr().out
        settled = cli("settle", "once")
        settled_output = capsys.readouterr().out
        retried = cli("payouts", "retry", "3")
        retried_output = capsys.readouterr().out
        missing = cli("payouts", "retry", "99")
        sent = [node_thread.node.total_sent_to(p.address) for p in seeded_database.players]
    finally:
        node_thread.stop()

    assert released == 0
    assert "released 2 accruals (10.5 BAN) from 2 dry-run payouts" in released_output
    assert settled == 0
    assert "completed (live)" in settled_output
    assert "payouts: 2, amount: 10.5 BAN" in settled_output
    assert retried == 0
    assert "Payout 3 was checked against the ledger and is now confirmed" in retried_output
    assert "Block: " in retried_output
    assert missing == 1
    assert sent == [2 * RAW_PER_KILL, 3 * RAW_PER_KILL]


def test_pause_and_resume_commands(
    seeded_database: World, capsys: pytest.CaptureFixture[str]
) -> None:
    paused = cli("payouts", "pause", "--reason", "checking the ledger after a restore")
    paused_again = cli("payouts", "pause", "--reason", "still checking")
    skipped = cli("settle", "once")
    skipped_output = capsys.readouterr().out
    resumed = cli("payouts", "resume")
    settled = cli("settle", "once")
    output = capsys.readouterr().out
    empty = cli("payouts", "pause", "--reason", "   ")

    assert paused == 0
    assert paused_again == 0
    assert "payouts paused" in skipped_output
    assert "payouts were already paused" in skipped_output
    assert skipped == 0
    assert "Payouts are paused: still checking." in skipped_output
    assert resumed == 0
    assert "payouts resumed" in output
    assert settled == 0
    assert "payouts: 2, amount: 10.5 BAN" in output
    assert empty == 2
    assert "reason must be 1 to 500 characters" in capsys.readouterr().err

    async def audit_actions_and_flags() -> tuple[list[str], list[str]]:
        async with seeded_database.db.read() as session:
            actions = await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
            flags = await session.scalars(select(FaucetFlag.key).order_by(FaucetFlag.key))
            return list(actions), list(flags)

    actions, flags = asyncio.run(audit_actions_and_flags())
    # The reason goes with the resume; the switch itself stays, set to false.
    assert flags == ["payouts_paused"]
    assert actions.count("payouts_paused") == 2
    assert actions.count("payouts_resumed") == 1


def test_pause_needs_existing_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    """Pausing a database created on the spot would report success and stop nothing."""
    missing = tmp_path / "typo" / "pay2slay.db"
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", f"sqlite+aiosqlite:///{missing}")

    code = cli("payouts", "pause", "--reason", "maintenance")

    assert code == 2
    assert f"the database file {missing} was not found" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_pause_reason_without_control_characters(
    seeded_database: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("payouts", "pause", "--reason", "node\u202e upgrade\u0007 tonight") == 0
    assert cli("settle", "once") == 0

    output = capsys.readouterr().out
    assert "Payouts are paused: node  upgrade  tonight." in output
    assert "\u202e" not in output
    assert "\u0007" not in output
