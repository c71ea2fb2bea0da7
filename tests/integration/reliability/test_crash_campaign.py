"""Crash campaign: settlement processes killed with SIGKILL, at every step and at random."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.crash_campaign import (
    SWEEP_POINTS,
    CrashCampaignConfig,
    CrashCampaignReport,
    run_crash_campaign,
)


def assert_clean(report: CrashCampaignReport, kills: int) -> None:
    assert report.violations == []
    assert report.child_errors == []
    assert report.secrets_in_logs == {}
    assert report.kills >= kills
    assert report.payouts.get("confirmed", 0) > 0
    assert set(report.payouts) <= {"confirmed", "failed"}
    assert report.log_lines > 0


async def test_crash_campaign_sqlite(tmp_path: Path) -> None:
    report = await run_crash_campaign(CrashCampaignConfig(kills=50, seed=11), tmp_path)

    assert_clean(report, 50)
    swept = {step for step, _ in SWEEP_POINTS}
    assert swept <= set(report.kills_by_step), (
        f"steps never killed: {swept - set(report.kills_by_step)}"
    )
    assert report.random_kills > 0


@pytest.mark.slow
@pytest.mark.postgres
async def test_crash_campaign_postgres_wallet(tmp_path: Path, postgres_available: None) -> None:
    config = CrashCampaignConfig(kills=16, database="postgresql", sender_kind="wallet", seed=12)

    report = await run_crash_campaign(config, tmp_path)

    assert_clean(report, 16)


@pytest.mark.slow
@pytest.mark.postgres
async def test_long_crash_campaign_postgres(tmp_path: Path, postgres_available: None) -> None:
    config = CrashCampaignConfig(kills=300, database="postgresql", seed=13)

    report = await run_crash_campaign(config, tmp_path)

    assert_clean(report, 300)
