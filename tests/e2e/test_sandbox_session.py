"""A sandbox session run in-process: stopping during registration, and the printed /status."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from bot.sandbox import SUMMARY_PREFIX, Sandbox, SandboxOptions
from core.services.settlement import RunOutcome, SettlementReport

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def options(runs: int, players: int) -> SandboxOptions:
    return SandboxOptions(
        runs=runs, players=players, interval_seconds=0.1, config_dir=CONFIG_DIR, seed=5
    )


async def test_stop_during_registration_ends_the_session() -> None:
    out = io.StringIO()
    sandbox = Sandbox(options(runs=3, players=4), out)
    sandbox.stop.set()

    assert await sandbox.run() == 0

    text = out.getvalue()
    assert "Stopped after registering 0 of 4 players." in text
    assert "Run 1:" not in text
    assert SUMMARY_PREFIX in text


async def test_status_shows_next_run_until_the_last_one() -> None:
    out = io.StringIO()
    sandbox = Sandbox(options(runs=2, players=3), out)

    assert await sandbox.run() == 0

    text = out.getvalue()
    first_run, last_run = text.split("Run 2:")
    assert "Next settlement:\n  20" in first_run
    assert "Next settlement:\n  Not scheduled" in last_run


def test_unpaid_players_are_explained() -> None:
    sandbox = Sandbox(options(runs=1, players=10), io.StringIO())
    report = SettlementReport(
        RunOutcome.COMPLETED,
        "sandbox",
        dry_run=False,
        payout_ids=[1, 2, 3],
        skipped=Counter({"daily_cap": 2}),
    )

    lines = sandbox.unpaid_lines(report)

    assert lines[0] == "Not paid in this run, by reason: daily_cap: 2"
    assert lines[1].startswith("Players with no new kills counted since the last run: 5.")
