"""Numbers within their maximum and finite; booleans, integers and amounts without coercion."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import annotated_types
import pytest
from pydantic.fields import FieldInfo

from core.config import load_settings
from core.config.schema import SECTION_MODELS, leaf_fields

if TYPE_CHECKING:
    from tests.unit.config.conftest import LoadProblems


def numeric_leaves() -> list[tuple[str, FieldInfo]]:
    return [
        (key, info)
        for section, model in SECTION_MODELS.items()
        for key, info in leaf_fields(model, section)
        if info.annotation in (int, float, Decimal)
    ]


def test_every_numeric_key_has_maximum() -> None:
    leaves = numeric_leaves()

    assert len(leaves) >= 14
    for key, info in leaves:
        bounds = [item for item in info.metadata if isinstance(item, annotated_types.Le)]
        assert bounds, f"{key} has no maximum"


def test_every_maximum_is_documented() -> None:
    for key, info in numeric_leaves():
        [bound] = [item for item in info.metadata if isinstance(item, annotated_types.Le)]
        expected = " ".join(str(item.text) for item in info.metadata if hasattr(item, "text"))
        assert str(bound.le) in expected, f"{key}: {expected!r} does not name {bound.le}"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("P2S_PAYOUT__SCHEDULER_MINUTES", "1e400", "not an integer"),
        ("P2S_PAYOUT__SCHEDULER_MINUTES", "1" + "0" * 30, "must be at most 10080"),
        ("P2S_PAYOUT__SCHEDULER_MINUTES", "10081", "must be at most 10080"),
        ("P2S_PAYOUT__CONFIRMATION_TIMEOUT_SECONDS", "86401", "must be at most 86400"),
        ("P2S_PAYOUT__BATCH_SIZE", "1000001", "must be at most 1000000"),
        ("P2S_PAYOUT__DAILY_KILL_CAP", "99999999999999999999", "must be at most 1000000"),
        ("P2S_INTEGRATIONS__BANANO__RPC_TIMEOUT_SECONDS", ".inf", "not a finite number"),
        ("P2S_INTEGRATIONS__BANANO__RPC_TIMEOUT_SECONDS", "1e400", "must be at most 600"),
        ("P2S_INTEGRATIONS__BANANO__RPC_TIMEOUT_SECONDS", ".nan", "not a finite number"),
        ("P2S_INTEGRATIONS__BANANO__RPC_TIMEOUT_SECONDS", "601", "must be at most 600"),
        ("P2S_INTEGRATIONS__ABUSE_HEURISTICS__KILL_RATE_PER_MIN", ".inf", "not a finite number"),
        ("P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN", "2000000", "must be at most 1000000"),
        ("P2S_INTEGRATIONS__YUNITE_CACHE_SECONDS", "90000", "must be at most 86400"),
        ("P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL", "10000.1", "must be at most 10000"),
        ("P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL", ".inf", "not a finite number"),
    ],
)
def test_value_out_of_range_rejected(
    load_problems: LoadProblems, variable: str, value: str, message: str
) -> None:
    [problem] = load_problems({variable: value})

    assert problem.source == variable
    assert problem.message == message


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("P2S_INTEGRATIONS__DRY_RUN", "f", "not true or false"),
        ("P2S_INTEGRATIONS__DRY_RUN", "off", "not true or false"),
        ("P2S_INTEGRATIONS__DRY_RUN", "no", "not true or false"),
        ("P2S_INTEGRATIONS__DRY_RUN", "0", "not true or false"),
        ("P2S_INTEGRATIONS__DRY_RUN", "'false'", "not true or false"),
        ("P2S_PRODUCT__FEATURE_FLAGS__DRY_RUN_BANNER", "yes", "not true or false"),
        ("P2S_PAYOUT__BATCH_SIZE", "'20'", "not an integer"),
        ("P2S_PAYOUT__BATCH_SIZE", "20.0", "not an integer"),
        ("P2S_PAYOUT__BATCH_SIZE", "true", "not an integer"),
        ("P2S_INTEGRATIONS__SERVER__PORT", "'8000'", "not an integer"),
        ("P2S_INTEGRATIONS__DISCORD__ADMIN_ROLE_IDS", "['500000000000000002']", "not an integer"),
        (
            "P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL",
            "'1_000'",
            "not a number in plain decimal notation such as 2.1",
        ),
        (
            "P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL",
            "'\u0662.\u0661'",
            "not a number in plain decimal notation such as 2.1",
        ),
        (
            "P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN",
            "'\u0665\u0660'",
            "not a number in plain decimal notation such as 2.1",
        ),
        ("P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN", "true", "not a number"),
        (
            "P2S_INTEGRATIONS__ABUSE_HEURISTICS__KILL_RATE_PER_MIN",
            "'1e3'",
            "not a number in plain decimal notation such as 2.1",
        ),
    ],
)
def test_loose_value_rejected(
    load_problems: LoadProblems, variable: str, value: str, message: str
) -> None:
    [problem] = load_problems({variable: value})

    assert problem.source == variable
    assert problem.message == message


def test_quoted_ascii_amount_accepted(config_dir: Path) -> None:
    environ = {
        "P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL": "'2.50'",
        "P2S_INTEGRATIONS__BANANO__RPC_TIMEOUT_SECONDS": "2.5",
        "P2S_INTEGRATIONS__ABUSE_HEURISTICS__KILL_RATE_PER_MIN": "7.5",
        "P2S_PAYOUT__SCHEDULER_MINUTES": "10080",
    }

    settings = load_settings(config_dir, environ=environ)

    assert settings.payout.payout_amount_ban_per_kill == Decimal("2.50")
    assert settings.integrations.banano.rpc_timeout_seconds == 2.5
    assert settings.integrations.abuse_heuristics.kill_rate_per_min == Decimal("7.5")
    assert settings.payout.scheduler_minutes == 10080
