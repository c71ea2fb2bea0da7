"""Rejection verdicts, run outcomes, ordering and the policy built from the configuration."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import load_settings
from core.services.ledger_check import is_final_rejection
from core.services.settlement import RunOutcome, SettlementPolicy
from core.services.settlement_selection import Candidate, order_candidates

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reason", "final"),
    [
        ("Bad signature", True),
        ("Block work is less than threshold", True),
        ("Balance and amount delta do not match", True),
        ("Negative spend", True),
        ("Fork", False),
        ("Gap previous block", False),
        ("Old block", False),
        ("Something unexpected happened", False),
        (None, False),
    ],
)
def test_final_rejection(reason: str | None, final: bool) -> None:
    assert is_final_rejection(reason) is final


def test_run_outcome_stored() -> None:
    assert RunOutcome.COMPLETED.stored == "completed"
    assert RunOutcome.FAILED.stored == "failed"
    assert RunOutcome.SKIPPED_FLOOR.stored == "skipped"
    assert RunOutcome.SKIPPED_LOCKED.stored == "skipped"


def candidates(count: int) -> list[Candidate]:
    return [
        Candidate(player_id=i, destination=f"wallet-{i}", oldest_open_at=START - timedelta(i))
        for i in range(1, count + 1)
    ]


def test_oldest_first_order() -> None:
    ordered = order_candidates(candidates(4), "oldest_first", random.Random(1))

    assert [c.player_id for c in ordered] == [4, 3, 2, 1]


def test_random_order_repeatable() -> None:
    first = order_candidates(candidates(20), "random", random.Random(5))
    again = order_candidates(list(reversed(candidates(20))), "random", random.Random(5))

    assert [c.player_id for c in first] == [c.player_id for c in again]
    assert sorted(c.player_id for c in first) == list(range(1, 21))


def test_policy_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2S_PAYOUT__RESET_TZ", "Asia/Tokyo")
    monkeypatch.setenv("P2S_PAYOUT__DAILY_KILL_CAP", "40")
    settings = load_settings(CONFIG_DIR)

    policy = SettlementPolicy.from_settings(settings.payout, settings.integrations)

    assert policy.caps.daily_payouts == 1
    assert policy.caps.weekly_payouts == 3
    assert policy.caps.daily_kills == 40
    assert policy.caps.weekly_kills == 0
    assert str(policy.zone) == "Asia/Tokyo"
    assert policy.order == "random"
    assert policy.batch_size == 0
    assert policy.dry_run is True
    assert policy.min_operator_balance_raw == 50 * 10**29
