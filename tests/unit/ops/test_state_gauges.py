"""The gauges of the faucet's mode and of unconfirmed payouts, set through `Metrics` helpers."""

from __future__ import annotations

from core.banano.units import RAW_PER_BAN
from core.observability.metrics import METRIC_NAMES, Metrics


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def test_state_gauges_are_registered() -> None:
    for name in (
        "pay2slay_dry_run",
        "pay2slay_min_operator_balance_ban",
        "pay2slay_oldest_unconfirmed_payout_age_seconds",
    ):
        assert name in METRIC_NAMES


def test_faucet_mode_dry_run() -> None:
    metrics = Metrics(version="test")

    metrics.set_faucet_mode(dry_run=True, min_operator_balance_raw=50 * RAW_PER_BAN)

    assert sample(metrics, "pay2slay_dry_run") == 1
    assert sample(metrics, "pay2slay_min_operator_balance_ban") == 50


def test_faucet_mode_live_with_fractional_floor() -> None:
    metrics = Metrics(version="test")

    metrics.set_faucet_mode(dry_run=False, min_operator_balance_raw=RAW_PER_BAN * 25 // 10)

    assert sample(metrics, "pay2slay_dry_run") == 0
    assert sample(metrics, "pay2slay_min_operator_balance_ban") == 2.5


def test_unconfirmed_age_is_never_negative() -> None:
    metrics = Metrics(version="test")

    metrics.set_oldest_unconfirmed_payout_age(42.5)
    assert sample(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 42.5

    # A clock that stepped back must not show a payout from the future.
    metrics.set_oldest_unconfirmed_payout_age(-3.0)
    assert sample(metrics, "pay2slay_oldest_unconfirmed_payout_age_seconds") == 0
