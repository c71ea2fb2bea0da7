"""`${NAME}` and `${NAME:-default}` references in YAML values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.config import load_settings

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems


def test_reference_reads_environment(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: ${ORG}")
    settings = load_settings(config_dir, environ={"ORG": "Banano Guild"})
    assert settings.product.org_name == "Banano Guild"


def test_default_used_when_unset(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: ${ORG:-Fallback Org}")
    settings = load_settings(config_dir, environ={})
    assert settings.product.org_name == "Fallback Org"


def test_default_used_when_empty(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: ${ORG:-Fallback Org}")
    settings = load_settings(config_dir, environ={"ORG": ""})
    assert settings.product.org_name == "Fallback Org"


def test_default_ignored_when_set(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: ${ORG:-Fallback Org}")
    settings = load_settings(config_dir, environ={"ORG": "Set Org"})
    assert settings.product.org_name == "Set Org"


def test_reference_inside_text(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config(
        "integrations.yaml",
        'node_rpc: ""',
        'node_rpc: "http://${NODE_HOST:-127.0.0.1}:${NODE_PORT}/"',
    )
    settings = load_settings(config_dir, environ={"NODE_PORT": "7072"})
    assert settings.integrations.node_rpc == "http://127.0.0.1:7072/"


def test_reference_to_number_keeps_exact_decimal(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config(
        "payout.yaml",
        "payout_amount_ban_per_kill: 2.1",
        "payout_amount_ban_per_kill: ${AMOUNT:-0.10000000000000000000000000001}",
    )
    settings = load_settings(config_dir, environ={})
    assert settings.payout.payout_amount_raw_per_kill == 10**28 + 1


def test_double_dollar_is_literal(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', 'org_name: "Cost $$5 $${NOT_A_REF}"')
    settings = load_settings(config_dir, environ={"NOT_A_REF": "expanded"})
    assert settings.product.org_name == "Cost $5 ${NOT_A_REF}"


def test_lone_dollar_is_literal(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', 'org_name: "US$ 5"')
    settings = load_settings(config_dir, environ={})
    assert settings.product.org_name == "US$ 5"


def test_unset_whole_reference_is_unset(
    edit_config: EditConfig, load_problems: LoadProblems, config_dir: Path
) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: ${ORG}")

    [problem] = load_problems()

    assert problem.key == "product.org_name"
    assert problem.message == "environment variable ORG is not set"
    assert problem.expected == "a non-empty string"
    assert problem.source == str(config_dir / "product.yaml")


def test_unset_reference_inside_text_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config("product.yaml", 'org_name: "Example Org"', 'org_name: "The ${ORG} faucet"')

    [problem] = load_problems()

    assert problem.key == "product.org_name"
    assert problem.message == "environment variable ORG is not set"
    assert problem.expected == "ORG set in the environment, or a default: ${ORG:-default}"


def test_malformed_reference_rejected(
    edit_config: EditConfig, load_problems: LoadProblems, config_dir: Path
) -> None:
    for broken in ('"${ORG"', '"${}"', '"${1ORG}"', '"${ORG:default}"', '"${ORG-x}"'):
        edit_config("product.yaml", "org_name: ", f"org_name: {broken}\n#")

        [problem] = load_problems()

        assert problem.key == "product.org_name", broken
        assert problem.message == "malformed ${ reference", broken
        assert problem.source == str(config_dir / "product.yaml")
        assert problem.expected.startswith("${NAME} or ${NAME:-default}")
        edit_config("product.yaml", f"org_name: {broken}\n#", "org_name: ")


def test_malformed_reference_in_list_names_item(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config(
        "integrations.yaml", "oauth_scopes: [identify, guilds]", 'oauth_scopes: [identify, "${X"]'
    )
    [problem] = load_problems()
    assert problem.key == "integrations.oauth_scopes.1"
    assert problem.message == "malformed ${ reference"


def test_override_value_not_expanded(config_dir: Path) -> None:
    environ = {"P2S_PRODUCT__ORG_NAME": "${ORG}", "ORG": "expanded"}
    settings = load_settings(config_dir, environ=environ)
    assert settings.product.org_name == "${ORG}"
