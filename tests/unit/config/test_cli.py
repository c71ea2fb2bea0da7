"""`pay2slay config check` through `bot.cli.main`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.cli import main


def test_config_check_prints_effective_config(
    shipped_config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("P2S_CONFIG_DIR", "P2S_SECRETS_DIR", "YUNITE_API_KEY", "FORTNITE_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    code = main(["config", "check", "--config-dir", str(shipped_config_dir)])

    output = capsys.readouterr()
    assert code == 0
    assert output.err == ""
    document = yaml.safe_load(output.out)
    assert document["payout"]["payout_amount_ban_per_kill"] == 2.1
    assert document["integrations"]["dry_run"] is True
    assert document["secrets"]["operator_seed"] == "(unset)"
    assert output.out.startswith("# Effective configuration (secrets masked)\n")


def test_config_check_uses_config_dir_variable(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_CONFIG_DIR", str(config_dir))
    code = main(["config", "check"])
    assert code == 0
    assert f"config_dir: {config_dir}" in capsys.readouterr().out


def test_config_check_reports_problems(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_PAYOUT__RESET_TZ", "Nowhere/Special")
    monkeypatch.setenv("P2S_OPERATOR_SEED", "not-a-seed-SEKRET")

    code = main(["config", "check", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 2
    assert output.out == ""
    lines = output.err.splitlines()
    assert "payout.reset_tz (from P2S_PAYOUT__RESET_TZ): not a known IANA time zone." in lines[0]
    assert lines[1].startswith("secrets.operator_seed (from P2S_OPERATOR_SEED): ")
    assert lines[-1] == "configuration check failed: 2 problem(s)"
    assert "not-a-seed-SEKRET" not in output.err


def test_config_check_for_run(
    config_dir: Path,
    full_environ: dict[str, str],
    secret_values: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in full_environ.items():
        monkeypatch.setenv(name, value)

    code = main(["config", "check", "--for-run", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 0
    for secret in secret_values:
        assert secret not in output.out
    assert "discord_bot_token: '**********'" in output.out


def test_config_check_for_run_reports_missing(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("P2S_DISCORD_BOT_TOKEN", raising=False)
    monkeypatch.delenv("P2S_SECRETS_DIR", raising=False)

    code = main(["config", "check", "--for-run", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 2
    assert "secrets.discord_bot_token (from P2S_DISCORD_BOT_TOKEN): missing" in output.err
    assert "https://yunite.xyz/api/v3" in output.err


def test_missing_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: pay2slay" in capsys.readouterr().err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--help"]) == 0
    assert "--for-run" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u@127.0.0.1/x?password=S3CRET-77",
        "postgresql+asyncpg://u@127.0.0.1/x?sslpassword=S3CRET-77&sslmode=require",
        "postgresql+asyncpg://u:S3CRET-77@127.0.0.1/x",
    ],
)
def test_config_check_masks_database_url(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", url)

    code = main(["config", "check", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 0
    assert "S3CRET-77" not in output.out + output.err
    assert "**********" in yaml.safe_load(output.out)["integrations"]["database"]["url"]


def test_config_check_rejects_unparseable_url(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", "postgresql+asyncpg://u:S3CRET-77@[::1/x")

    code = main(["config", "check", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 2
    assert output.out == ""
    assert "integrations.database.url (from P2S_INTEGRATIONS__DATABASE__URL): " in output.err
    assert "the database URL is invalid" in output.err
    assert "S3CRET-77" not in output.err


def test_config_check_prints_absolute_paths(
    shipped_config_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(shipped_config_dir, tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("P2S_CONFIG_DIR", raising=False)
    monkeypatch.delenv("P2S_INTEGRATIONS__DATABASE__URL", raising=False)

    code = main(["config", "check"])

    document = yaml.safe_load(capsys.readouterr().out)
    assert code == 0
    assert document["config_dir"] == str(tmp_path / "configs")
    assert document["database_file"] == str(tmp_path / "data" / "pay2slay.db")
    assert document["integrations"]["database"]["url"] == "sqlite+aiosqlite:///data/pay2slay.db"


def test_config_check_database_file_null_for_postgresql(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", "postgresql+asyncpg://u@127.0.0.1/x")

    assert main(["config", "check", "--config-dir", str(config_dir)]) == 0

    assert yaml.safe_load(capsys.readouterr().out)["database_file"] is None


def test_config_check_reports_misspelt_variable(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_METRICS_TOKN", "metrics-SEKRET-d3d3")

    code = main(["config", "check", "--config-dir", str(config_dir)])

    output = capsys.readouterr()
    assert code == 2
    assert "did you mean P2S_METRICS_TOKEN?" in output.err
    assert "metrics-SEKRET-d3d3" not in output.err
