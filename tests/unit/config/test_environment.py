"""`P2S_` variables that nothing reads are problems, with the name that was probably meant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import load_settings
from core.config.environment import known_variables, unknown_variable_problems
from tests.environment import (
    RENAMED_VARIABLES,
    TEST_VARIABLE_PREFIX,
    TEST_VARIABLES,
    renamed_variable_errors,
)

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


@pytest.mark.parametrize("variable", [*TEST_VARIABLES, "OTHER_VAR"])
def test_test_and_foreign_variables_allowed(config_dir: Path, variable: str) -> None:
    settings = load_settings(config_dir, environ={variable: "1"})

    assert settings.payout.batch_size == 0


def test_test_variables_outside_loader_prefix() -> None:
    for variable in TEST_VARIABLES:
        assert variable.startswith(TEST_VARIABLE_PREFIX), variable


@pytest.mark.parametrize("variable", [*RENAMED_VARIABLES, "P2S_TEST_ANYTHING"])
def test_test_names_not_allow_listed(load_problems: LoadProblems, variable: str) -> None:
    [problem] = load_problems({variable: "1"})

    assert problem.source == variable
    assert problem.message.startswith("unknown environment variable; nothing reads it")
    assert variable not in known_variables()


def test_renamed_test_variable_names_new_one() -> None:
    errors = renamed_variable_errors({"P2S_SLOW": "1", "PAY2SLAY_TEST_SLOW": "1"})

    assert errors == ["P2S_SLOW is no longer read; set PAY2SLAY_TEST_SLOW instead"]
    assert renamed_variable_errors(dict.fromkeys(TEST_VARIABLES, "1")) == []


def test_every_known_variable_accepted() -> None:
    names = known_variables()

    assert unknown_variable_problems(dict.fromkeys(names, "x")) == []
    assert {"P2S_CONFIG_DIR", "P2S_SECRETS_DIR"} <= names
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
