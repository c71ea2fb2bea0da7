"""Node fault campaign: random sandbox node faults during settlement, confirmation and retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.fault_campaign import (
    FaultCampaignConfig,
    FaultCampaignReport,
    run_fault_campaign,
)


def assert_clean(report: FaultCampaignReport, rounds: int) -> None:
    assert report.violations == []
    assert report.secrets_in_logs == {}
    assert report.rounds == rounds
    assert sum(report.faults.values()) >= rounds
    assert report.payouts.get("confirmed", 0) > 0
    assert set(report.payouts) <= {"confirmed", "failed"}


async def test_fault_campaign_local_signer(tmp_path: Path) -> None:
    report = await run_fault_campaign(FaultCampaignConfig(rounds=25, seed=21), tmp_path)

    assert_clean(report, 25)


@pytest.mark.postgres
async def test_fault_campaign_node_wallet(tmp_path: Path, postgres_available: None) -> None:
    config = FaultCampaignConfig(rounds=12, database="postgresql", sender_kind="wallet", seed=22)

    report = await run_fault_campaign(config, tmp_path)

    assert_clean(report, 12)


@pytest.mark.slow
@pytest.mark.parametrize("sender_kind", ["local", "wallet"])
async def test_long_fault_campaign(tmp_path: Path, sender_kind: str) -> None:
    config = FaultCampaignConfig(rounds=300, sender_kind=sender_kind, seed=23)

    report = await run_fault_campaign(config, tmp_path)

    assert_clean(report, 300)
