"""`P2S_` variables that nothing reads are problems, with the name that was probably meant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import load_settings
from core.config.environment import known_variables, unknown_variable_problems

if TYPE_CHECKING:
    from tests.unit.config.conftest import LoadProblems

TOKEN = "metrics-SEKRET-d3d3"


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("P2S_METRICS_TOKN", "P2S_METRICS_TOKEN"),
        ("P2S_DRY_RUN", "P2S_INTEGRATIONS__DRY_RUN"),
        ("P2S_PAYOUT_DAILY_PAYOUT_CAP", "P2S_PAYOUT__DAILY_PAYOUT_CAP"),
        ("P2S_INTEGRATIONS_BANANO_SIGNER", "P2S_INTEGRATIONS__BANANO__SIGNER"),
        ("p2s_operator_seed", "P2S_OPERATOR_SEED"),
        ("P2S_SESSION_SECRET_FIL", "P2S_SESSION_SECRET_FILE"),
        ("P2S_CONFIGDIR", "P2S_CONFIG_DIR"),
    ],
)
def test_misspelt_variable_suggests_name(
    load_problems: LoadProblems, variable: str, suggestion: str
) -> None:
    [problem] = load_problems({variable: TOKEN})

    assert problem.source == variable
    assert problem.message == (
        f"unknown environment variable; nothing reads it (did you mean {suggestion}?)"
    )
    assert TOKEN not in str(problem)


def test_unrelated_variable_has_no_suggestion(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_QWERTYUIOP": "x"})

    assert problem.message == "unknown environment variable; nothing reads it"


@pytest.mark.parametrize("variable", ["P2S_TEST_POSTGRES_URL", "P2S_TEST_ANYTHING", "OTHER_VAR"])
def test_test_and_foreign_variables_allowed(config_dir: Path, variable: str) -> None:
    settings = load_settings(config_dir, environ={variable: "x"})

    assert settings.payout.batch_size == 0


def test_every_known_variable_accepted() -> None:
    names = known_variables()

    assert unknown_variable_problems(dict.fromkeys(names, "x")) == []
    assert {"P2S_CONFIG_DIR", "P2S_SECRETS_DIR", "P2S_MONEY_MACHINE_EXAMPLES"} <= names
    assert {"P2S_OPERATOR_SEED", "P2S_OPERATOR_SEED_FILE", "P2S_METRICS_TOKEN_FILE"} <= names


def test_override_spelt_in_two_cases_rejected(load_problems: LoadProblems) -> None:
    problems = load_problems({"P2S_PAYOUT__BATCH_SIZE": "1", "p2s_payout__batch_size": "9"})

    [problem] = problems
    assert problem.key == "payout.batch_size"
    assert problem.source == "P2S_PAYOUT__BATCH_SIZE and p2s_payout__batch_size"
    assert problem.message == (
        "P2S_PAYOUT__BATCH_SIZE and p2s_payout__batch_size override the same key"
    )


def test_override_in_other_case_accepted(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={"p2s_payout__Batch_Size": "4"})

    assert settings.payout.batch_size == 4
