"""A key that is printed as it is must not refer to a variable that contains a secret."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import load_settings, render_effective

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems

SESSION_SECRET = "session-SEKRET-4c1d-0a7e-9b3f-5d2e-8f6a"
APP_NAME = 'app_name: "Pay2Slay Faucet"'


@pytest.mark.parametrize(
    "variable",
    [
        "P2S_SESSION_SECRET",
        "P2S_OPERATOR_SEED",
        "P2S_DISCORD_BOT_TOKEN",
        "P2S_METRICS_TOKEN",
        "YUNITE_API_KEY",
        "DISCORD_CLIENT_SECRET",
        "FORTNITE_API_KEY",
    ],
)
def test_secret_variable_in_plain_key_rejected(
    edit_config: EditConfig, load_problems: LoadProblems, variable: str
) -> None:
    edit_config("product.yaml", APP_NAME, f"app_name: ${{{variable}}}")

    problems = load_problems({variable: SESSION_SECRET})

    [problem] = [problem for problem in problems if problem.key == "product.app_name"]
    expected = f"refers to secret variable {variable}, which only secret keys may use"
    assert problem.message == expected
    assert all(SESSION_SECRET not in str(found) for found in problems)


def test_secret_variable_inside_text_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config("product.yaml", APP_NAME, 'app_name: "Faucet ${P2S_SESSION_SECRET:-none}"')

    [problem] = load_problems({"P2S_SESSION_SECRET": SESSION_SECRET})

    assert problem.key == "product.app_name"
    assert "P2S_SESSION_SECRET" in problem.message
    assert SESSION_SECRET not in str(problem)


def test_renamed_secret_reference_rejected_elsewhere(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    # integrations.yaml reads the Yunite key from a variable of the operator's choosing, and
    # payout.yaml, read earlier, must not show that variable either.
    edit_config("integrations.yaml", "${YUNITE_API_KEY}", "${MY_YUNITE_TOKEN}")
    edit_config("payout.yaml", "reset_tz: UTC", "reset_tz: ${MY_YUNITE_TOKEN}")

    [problem] = load_problems({"MY_YUNITE_TOKEN": "Europe/Berlin"})

    assert problem.key == "payout.reset_tz"
    assert "MY_YUNITE_TOKEN" in problem.message


def test_secret_key_still_reads_its_variable(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={"YUNITE_API_KEY": SESSION_SECRET})

    assert settings.integrations.yunite_api_key is not None
    assert settings.integrations.yunite_api_key.get_secret_value() == SESSION_SECRET
    assert SESSION_SECRET not in render_effective(settings)


def test_plain_variable_in_plain_key_accepted(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", APP_NAME, "app_name: ${FAUCET_NAME}")

    settings = load_settings(config_dir, environ={"FAUCET_NAME": "Banana Faucet"})

    assert settings.product.app_name == "Banana Faucet"
