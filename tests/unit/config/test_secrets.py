"""Secrets: where they are read from, when they are required, and that they never leak."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from core.config import ConfigError, Settings, load_settings, render_effective

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems

SEED = "0123456789abcdef" * 4


def test_secret_from_variable(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={"P2S_METRICS_TOKEN": "token-1"})
    assert settings.secrets.metrics_token is not None
    assert settings.secrets.metrics_token.get_secret_value() == "token-1"


def test_secret_from_file_variable(config_dir: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "seed.txt"
    secret_file.write_text(f"{SEED}\n", encoding="utf-8")
    settings = load_settings(config_dir, environ={"P2S_OPERATOR_SEED_FILE": str(secret_file)})
    assert settings.secrets.operator_seed is not None
    assert settings.secrets.operator_seed.get_secret_value() == SEED


def test_secret_from_secrets_dir(config_dir: Path, tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "discord_bot_token").write_text("bot-token\n", encoding="utf-8")
    (secrets_dir / "yunite_api_key").write_text("yunite-token", encoding="utf-8")

    settings = load_settings(config_dir, environ={"P2S_SECRETS_DIR": str(secrets_dir)})

    assert settings.secrets.discord_bot_token is not None
    assert settings.secrets.discord_bot_token.get_secret_value() == "bot-token"
    assert settings.integrations.yunite_api_key is not None
    assert settings.integrations.yunite_api_key.get_secret_value() == "yunite-token"
    assert settings.secrets.session_secret is None


def test_variable_wins_over_secrets_dir(config_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "metrics_token").write_text("from-dir", encoding="utf-8")
    environ = {"P2S_SECRETS_DIR": str(tmp_path), "P2S_METRICS_TOKEN": "from-env"}
    settings = load_settings(config_dir, environ=environ)
    assert settings.secrets.metrics_token is not None
    assert settings.secrets.metrics_token.get_secret_value() == "from-env"


def test_yaml_secret_from_variable_and_file(config_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "fortnite"
    key_file.write_text("fortnite-from-file\n", encoding="utf-8")
    environ = {"YUNITE_API_KEY": "yunite-from-env", "FORTNITE_API_KEY_FILE": str(key_file)}

    settings = load_settings(config_dir, environ=environ)

    assert settings.integrations.yunite_api_key is not None
    assert settings.integrations.yunite_api_key.get_secret_value() == "yunite-from-env"
    assert settings.integrations.fortnite_api_key is not None
    assert settings.integrations.fortnite_api_key.get_secret_value() == "fortnite-from-file"


def test_yaml_secret_override_kept_as_text(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={"P2S_INTEGRATIONS__YUNITE_API_KEY": "0012"})
    assert settings.integrations.yunite_api_key is not None
    assert settings.integrations.yunite_api_key.get_secret_value() == "0012"


def test_variable_and_file_both_set_rejected(load_problems: LoadProblems, tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("a", encoding="utf-8")
    environ = {"P2S_METRICS_TOKEN": "b", "P2S_METRICS_TOKEN_FILE": str(secret_file)}

    [problem] = load_problems(environ)

    assert problem.key == "secrets.metrics_token"
    assert problem.message == "both P2S_METRICS_TOKEN and P2S_METRICS_TOKEN_FILE are set"


def test_missing_secret_file_reported(load_problems: LoadProblems, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    [problem] = load_problems({"P2S_SESSION_SECRET_FILE": str(missing)})
    assert problem.key == "secrets.session_secret"
    assert problem.source == "P2S_SESSION_SECRET_FILE"
    assert problem.message == f"secret file {missing} not found"


def test_missing_secrets_dir_reported(load_problems: LoadProblems, tmp_path: Path) -> None:
    [problem] = load_problems({"P2S_SECRETS_DIR": str(tmp_path / "nope")})
    assert problem.source == "P2S_SECRETS_DIR"
    assert problem.message == f"{tmp_path / 'nope'} is not a directory"


def test_invalid_seed_rejected(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_OPERATOR_SEED": "xyz"})
    assert problem.key == "secrets.operator_seed"
    assert problem.source == "P2S_OPERATOR_SEED"
    assert problem.message == "the seed is not 64 hexadecimal digits"


def test_short_session_secret_rejected(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_SESSION_SECRET": "x" * 31})
    assert problem.key == "secrets.session_secret"
    assert problem.message == "the key is shorter than 32 characters"


def test_literal_secret_in_yaml_rejected(
    edit_config: EditConfig, load_problems: LoadProblems, config_dir: Path
) -> None:
    edit_config("integrations.yaml", "${FORTNITE_API_KEY}", "literal-SEKRET-in-yaml")

    [problem] = load_problems()

    assert problem.key == "integrations.fortnite_api_key"
    assert problem.source == str(config_dir / "integrations.yaml")
    assert problem.message == "contains a value; put secrets in the environment"
    assert "literal-SEKRET-in-yaml" not in str(problem)


def test_secret_default_in_yaml_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config("integrations.yaml", "${YUNITE_API_KEY}", "${YUNITE_API_KEY:-default-SEKRET}")
    [problem] = load_problems()
    assert problem.key == "integrations.yunite_api_key"
    assert problem.message == "contains a value; put secrets in the environment"
    assert "default-SEKRET" not in str(problem)


def test_literal_url_password_rejected(
    edit_config: EditConfig, load_problems: LoadProblems
) -> None:
    edit_config(
        "integrations.yaml",
        '"sqlite+aiosqlite:///data/pay2slay.db"',
        '"postgresql+asyncpg://app:pw-SEKRET@127.0.0.1:5432/test"',
    )
    [problem] = load_problems()
    assert problem.key == "integrations.database.url"
    assert problem.message == "contains a URL with a password or token"
    assert "pw-SEKRET" not in str(problem)


def test_url_password_from_environment_masked(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config("integrations.yaml", '"sqlite+aiosqlite:///data/pay2slay.db"', "${DATABASE_URL}")
    url = "postgresql+asyncpg://app:pw-SEKRET@127.0.0.1:5432/test"

    settings = load_settings(config_dir, environ={"DATABASE_URL": url})

    assert settings.integrations.database.url == url
    assert "pw-SEKRET" not in repr(settings)
    assert "pw-SEKRET" not in render_effective(settings)
    assert "app:**********@127.0.0.1:5432/test" in render_effective(settings)


@pytest.mark.parametrize(
    ("removed", "key"),
    [
        ("P2S_INTEGRATIONS__NODE_RPC", "integrations.node_rpc"),
        ("P2S_OPERATOR_SEED", "secrets.operator_seed"),
        ("P2S_SESSION_SECRET", "secrets.session_secret"),
    ],
)
def test_live_refuses_without_requirement(
    load_problems: LoadProblems, full_environ: dict[str, str], removed: str, key: str
) -> None:
    del full_environ[removed]

    [problem] = load_problems(full_environ)

    assert problem.key == key
    assert "while dry_run is false" in problem.message


def test_live_seed_problem_names_sources(
    load_problems: LoadProblems, full_environ: dict[str, str]
) -> None:
    del full_environ["P2S_OPERATOR_SEED"]
    [problem] = load_problems(full_environ)
    assert problem.source == "P2S_OPERATOR_SEED"
    assert problem.expected == (
        "the operator seed (64 hexadecimal digits) in P2S_OPERATOR_SEED, a file named by "
        "P2S_OPERATOR_SEED_FILE, or operator_seed in P2S_SECRETS_DIR"
    )


def test_live_node_wallet_needs_wallet_id(
    load_problems: LoadProblems, full_environ: dict[str, str], config_dir: Path
) -> None:
    full_environ["P2S_INTEGRATIONS__BANANO__SIGNER"] = "node_wallet"
    del full_environ["P2S_OPERATOR_SEED"]

    [problem] = load_problems(full_environ)

    assert problem.key == "integrations.banano.node_wallet_id"
    assert problem.message == "empty while dry_run is false and banano.signer is node_wallet"

    full_environ["P2S_INTEGRATIONS__BANANO__NODE_WALLET_ID"] = "ab" * 32
    settings = load_settings(config_dir, environ=full_environ)
    assert settings.integrations.banano.node_wallet_id == "ab" * 32


def test_dry_run_needs_no_secrets(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={})
    assert settings.integrations.dry_run is True


def test_run_check_lists_missing_credentials(config_dir: Path) -> None:
    settings = load_settings(config_dir, environ={})
    with pytest.raises(ConfigError) as caught:
        settings.check_for_run()

    problems = {problem.key: problem for problem in caught.value.problems}

    assert set(problems) == {
        "secrets.discord_bot_token",
        "integrations.discord_guild_id",
        "integrations.yunite_guild_id",
        "integrations.yunite_api_key",
        "integrations.fortnite_api_key",
        "integrations.yunite_api_url",
        "integrations.fortnite_api_url",
        "integrations.discord_api_url",
        "integrations.discord_authorize_url",
    }
    assert problems["integrations.yunite_api_key"].source == "YUNITE_API_KEY"
    assert "https://yunite.xyz/api/v3" in problems["integrations.yunite_api_url"].expected
    assert "https://fortnite-api.com" in problems["integrations.fortnite_api_url"].expected
    assert "https://discord.com/api/v10" in problems["integrations.discord_api_url"].expected
    assert (
        "https://discord.com/oauth2/authorize"
        in problems["integrations.discord_authorize_url"].expected
    )


def test_run_check_passes_when_complete(config_dir: Path, full_environ: dict[str, str]) -> None:
    load_settings(config_dir, environ=full_environ).check_for_run()


def test_no_secret_in_repr_or_render(
    config_dir: Path, full_environ: dict[str, str], secret_values: tuple[str, ...]
) -> None:
    settings = load_settings(config_dir, environ=full_environ)
    outputs = [repr(settings), str(settings), render_effective(settings)]
    outputs += [repr(section) for section in (settings.secrets, settings.integrations)]

    for output in outputs:
        for secret in secret_values:
            assert secret not in output


def test_render_masks_secrets(config_dir: Path, full_environ: dict[str, str]) -> None:
    del full_environ["P2S_METRICS_TOKEN"]
    rendered = render_effective(load_settings(config_dir, environ=full_environ))
    assert "  operator_seed: '**********'" in rendered
    assert "  yunite_api_key: '**********'" in rendered
    assert "  metrics_token: (unset)" in rendered


def test_no_secret_in_errors_or_logs(
    config_dir: Path,
    full_environ: dict[str, str],
    secret_values: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every secret is set but something else fails, and each secret field gets a bad value too.
    full_environ["P2S_INTEGRATIONS__NODE_RPC"] = ""
    broken = {
        **full_environ,
        "P2S_OPERATOR_SEED": "not-hex-" + full_environ["P2S_SESSION_SECRET"],
        "P2S_SESSION_SECRET": full_environ["P2S_DISCORD_BOT_TOKEN"],
        "P2S_INTEGRATIONS__DISCORD_OAUTH_CLIENT_ID": full_environ["DISCORD_CLIENT_SECRET"],
    }
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        for environ in (full_environ, broken):
            with pytest.raises(ConfigError) as caught:
                load_settings(config_dir, environ=environ)
            error = caught.value
            keys = {problem.key for problem in error.problems}
            assert "integrations.node_rpc" in keys or "secrets.operator_seed" in keys
            texts += [str(error), error.safe_message, repr(error)]
            texts += [repr(problem) for problem in error.problems]
        assert keys >= {
            "secrets.operator_seed",
            "secrets.session_secret",
            "integrations.discord_oauth_client_id",
        }
        settings: Settings = load_settings(config_dir, environ={})
        with pytest.raises(ConfigError) as caught:
            settings.check_for_run()
        texts.append(str(caught.value))
    texts.append(caplog.text)
    texts += [repr(event) for event in events]

    assert len(texts) > 5
    for text in texts:
        for secret in secret_values:
            assert secret not in text
