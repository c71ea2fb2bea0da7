"""Environment overrides `P2S_<SECTION>__<KEY>`, deep-merged into the YAML values."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import load_settings
from core.config.overrides import parse_override_value

if TYPE_CHECKING:
    from tests.unit.config.conftest import LoadProblems


def test_nested_override_keeps_siblings(config_dir: Path) -> None:
    settings = load_settings(
        config_dir, environ={"P2S_INTEGRATIONS__BANANO__SIGNER": "node_wallet"}
    )

    banano = settings.integrations.banano
    assert banano.signer == "node_wallet"
    assert banano.work_sources == ["node", "local"]
    assert banano.work_threshold == "fffffe0000000000"
    assert banano.rpc_timeout_seconds == 10
    assert banano.explorer_block_url == "https://creeper.banano.cc/hash/{block_hash}"
    assert settings.integrations.discord.payout_dms is True


def test_override_names_case_insensitive(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={"p2s_payout__Reset_Rule__lower_READINGS": "7"})
    assert settings.payout.reset_rule.lower_readings == 7


def test_override_decimal_stays_exact(config_dir: Path) -> None:
    amount = "0.00000000000000000000000000001"
    settings = load_settings(config_dir, environ={"P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL": amount})
    assert settings.payout.payout_amount_ban_per_kill == Decimal(amount)
    assert settings.payout.payout_amount_raw_per_kill == 1


def test_override_list_value(config_dir: Path) -> None:
    environ = {
        "P2S_INTEGRATIONS__OAUTH_SCOPES": "[identify, guilds, email]",
        "P2S_INTEGRATIONS__DISCORD__ADMIN_ROLE_IDS": "[123456789012345678, 223456789012345678]",
    }
    settings = load_settings(config_dir, environ=environ)
    assert settings.integrations.oauth_scopes == ["identify", "guilds", "email"]
    assert settings.integrations.discord.admin_role_ids == [123456789012345678, 223456789012345678]


def test_override_boolean_and_integer(config_dir: Path) -> None:
    environ = {
        "P2S_PRODUCT__FEATURE_FLAGS__DRY_RUN_BANNER": "false",
        "P2S_PAYOUT__SCHEDULER_MINUTES": "5",
    }
    settings = load_settings(config_dir, environ=environ)
    assert settings.product.feature_flags.dry_run_banner is False
    assert settings.payout.scheduler_minutes == 5


def test_override_text_that_looks_like_yaml(config_dir: Path) -> None:
    environ = {"P2S_PRODUCT__APP_NAME": "Faucet: Deluxe", "P2S_PRODUCT__ORG_NAME": "#1 org"}
    settings = load_settings(config_dir, environ=environ)
    assert settings.product.app_name == "Faucet: Deluxe"
    assert settings.product.org_name == "#1 org"


def test_override_guild_id_digits(config_dir: Path) -> None:
    settings = load_settings(
        config_dir, environ={"P2S_INTEGRATIONS__DISCORD_GUILD_ID": "123456789012345678"}
    )
    assert settings.integrations.discord_guild_id == "123456789012345678"


def test_override_unknown_key_names_variable(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_INTEGRATIONS__BANANO__SINGER": "local"})
    assert problem.key == "integrations.banano.singer"
    assert problem.source == "P2S_INTEGRATIONS__BANANO__SINGER"
    assert problem.message == "unknown key (did you mean signer?)"


def test_override_wrong_type_names_variable(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN": "lots"})
    assert problem.key == "integrations.rate_limits.fortnite_per_min"
    assert problem.source == "P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN"
    assert problem.message == "not an integer"


def test_override_unknown_section_rejected(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_PAYOT__BATCH_SIZE": "3"})
    assert problem.key == "payot.batch_size"
    assert problem.source == "P2S_PAYOT__BATCH_SIZE"
    assert problem.message == "unknown section 'payot'"


def test_override_of_secrets_section_points_to_variables(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_SECRETS__OPERATOR_SEED": "x"})
    assert problem.message == "unknown section 'secrets'"
    assert "P2S_OPERATOR_SEED" in problem.expected


def test_override_below_a_value_rejected(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_PAYOUT__BATCH_SIZE__LIMIT": "3"})
    assert problem.key == "payout.batch_size.limit"
    assert problem.message == "payout.batch_size is not a section"
    assert problem.expected == "an override of payout.batch_size itself, as P2S_PAYOUT__BATCH_SIZE"


def test_override_with_empty_key_rejected(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_PAYOUT____BATCH_SIZE": "3"})
    assert problem.message == "the variable name has an empty key between two __"


def test_unrelated_variables_ignored(config_dir: Path) -> None:
    environ = {"SOMETHING": "x", "OTHER__VAR": "y", "P2S_CONFIG_DIR": str(config_dir)}
    settings = load_settings(config_dir, environ=environ)
    assert settings.payout.batch_size == 0


def test_parse_override_value() -> None:
    assert parse_override_value("") == ""
    assert parse_override_value("2.10") == Decimal("2.10")
    assert parse_override_value("12") == 12
    assert parse_override_value("true") is True
    assert parse_override_value("yes") == "yes"
    assert parse_override_value("null") is None
    assert parse_override_value("[a, 1]") == ["a", 1]
    assert parse_override_value("[a, 1") == "[a, 1"
    assert parse_override_value("a: b") == "a: b"
