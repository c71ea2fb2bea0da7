"""Two settlement replicas on one database: one settles at a time, and a kill is taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.replicas import (
    TAKEOVER_RUNS,
    ReplicaCampaignConfig,
    ReplicaCampaignReport,
    run_replica_campaign,
)


def assert_clean(report: ReplicaCampaignReport, kills: int) -> None:
    assert report.violations == []
    assert report.kills == kills
    assert sum(report.takeover_runs.values()) == kills
    assert max(report.takeover_runs) <= TAKEOVER_RUNS
    assert report.lock_lost_lines == 0
    assert report.secrets_in_logs == {}
    assert report.log_lines > 0
    assert report.lock_intervals >= kills
    assert set(report.payouts) <= {"confirmed", "failed"}


async def test_replicas_on_one_sqlite_file(tmp_path: Path) -> None:
    report = await run_replica_campaign(ReplicaCampaignConfig(kills=3, seed=31), tmp_path)

    assert_clean(report, 3)


@pytest.mark.postgres
async def test_replicas_on_one_postgres_database(tmp_path: Path, postgres_available: None) -> None:
    config = ReplicaCampaignConfig(kills=3, database="postgresql", seed=32)

    report = await run_replica_campaign(config, tmp_path)

    assert_clean(report, 3)


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_long_replica_campaign(tmp_path: Path, database: str) -> None:
    config = ReplicaCampaignConfig(kills=15, database=database, seed=33)  # type: ignore[arg-type]

    report = await run_replica_campaign(config, tmp_path)

    assert_clean(report, 15)
