"""CLI wiring for operators: `operator address`, the sandbox's log format, tracing in `run`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import bot.cli_run
import bot.launch
from bot.cli import main
from bot.cli_run import LOG_FORMAT_VARIABLE, sandbox_log_format
from core.observability.tracing import tracing_enabled
from tests.unit.cogs.helpers_cogs import CONFIG_DIR, GUILD_ID

ROOT = Path(__file__).resolve().parents[3]
KEY_VECTORS = json.loads((ROOT / "tests/vectors/banano.json").read_text(encoding="utf-8"))["keys"]
ACCOUNT_ZERO = next(item for item in KEY_VECTORS if item.get("index") == 0)

SECRET_VARIABLES = (
    "P2S_DISCORD_BOT_TOKEN",
    "P2S_OPERATOR_SEED",
    "P2S_SESSION_SECRET",
    "P2S_METRICS_TOKEN",
    "YUNITE_API_KEY",
    "FORTNITE_API_KEY",
    "DISCORD_CLIENT_ID",
    "DISCORD_CLIENT_SECRET",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    for name in ("P2S_CONFIG_DIR", "P2S_SECRETS_DIR", LOG_FORMAT_VARIABLE):
        monkeypatch.delenv(name, raising=False)


def test_operator_address_from_seed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("P2S_OPERATOR_SEED", ACCOUNT_ZERO["seed"])

    code = main(["operator", "address", "--config-dir", str(CONFIG_DIR)])

    output = capsys.readouterr()
    assert code == 0
    assert output.out == ACCOUNT_ZERO["address"] + "\n"
    assert output.err == ""


def test_operator_address_from_secret_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seed_file = tmp_path / "operator_seed"
    seed_file.write_text(ACCOUNT_ZERO["seed"] + "\n", encoding="utf-8")
    monkeypatch.setenv("P2S_SECRETS_DIR", str(tmp_path))

    code = main(["operator", "address", "--config-dir", str(CONFIG_DIR)])

    output = capsys.readouterr()
    assert code == 0
    assert output.out.strip() == ACCOUNT_ZERO["address"]


def test_operator_address_never_prints_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = "5eedc0de" * 8
    monkeypatch.setenv("P2S_OPERATOR_SEED", seed)

    main(["operator", "address", "--config-dir", str(CONFIG_DIR)])

    output = capsys.readouterr()
    text = (output.out + output.err).lower()
    assert seed not in text
    assert output.out.startswith("ban_")


def test_operator_address_without_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["operator", "address", "--config-dir", str(CONFIG_DIR)])

    output = capsys.readouterr()
    assert code == 2
    assert output.out == ""
    assert "P2S_OPERATOR_SEED" in output.err


def test_operator_address_with_invalid_seed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("P2S_OPERATOR_SEED", "not-a-seed-value")

    code = main(["operator", "address", "--config-dir", str(CONFIG_DIR)])

    output = capsys.readouterr()
    assert code == 2
    assert output.out == ""
    assert "secrets.operator_seed" in output.err
    assert "not-a-seed-value" not in output.err


def test_help_lists_operator_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    assert "operator" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (None, {}, "console"),
        ("json", {}, "json"),
        ("console", {LOG_FORMAT_VARIABLE: "json"}, "console"),
        (None, {LOG_FORMAT_VARIABLE: "json"}, "json"),
        (None, {LOG_FORMAT_VARIABLE.lower(): " JSON "}, "json"),
        (None, {LOG_FORMAT_VARIABLE: "auto"}, "auto"),
        (None, {LOG_FORMAT_VARIABLE: "yaml"}, None),
        (None, {"P2S_INTEGRATIONS__OBSERVABILITY__LOG_LEVEL": "DEBUG"}, "console"),
    ],
)
def test_sandbox_log_format(flag: str | None, environ: dict[str, str], expected: str) -> None:
    assert sandbox_log_format(flag, environ) == expected


def test_sandbox_rejects_invalid_log_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_FORMAT_VARIABLE, "xml")

    code = main(["sandbox", "--runs", "1"])

    assert code == 2
    assert LOG_FORMAT_VARIABLE in capsys.readouterr().err


def test_sandbox_log_format_flag_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--help"]) == 0

    assert "--log-format" in capsys.readouterr().out


def test_run_starts_and_stops_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    otel_installed = _otel_sdk_installed()
    environment = {
        "P2S_DISCORD_BOT_TOKEN": "bot-token-value-0123456789",
        "YUNITE_API_KEY": "yunite-key-value-0123456789",
        "FORTNITE_API_KEY": "stats-key-value-0123456789",
        "P2S_INTEGRATIONS__DISCORD_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_API_URL": "http://127.0.0.1:9/api/v3",
        "P2S_INTEGRATIONS__FORTNITE_API_URL": "http://127.0.0.1:9",
        "P2S_INTEGRATIONS__DISCORD_API_URL": "http://127.0.0.1:9/api/v10",
        "P2S_INTEGRATIONS__DISCORD_AUTHORIZE_URL": "http://127.0.0.1:9/oauth2/authorize",
        "P2S_INTEGRATIONS__OBSERVABILITY__OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}

    async def run_bot_stub(settings: Any) -> None:
        seen["tracing"] = tracing_enabled()
        seen["endpoint"] = settings.integrations.observability.otlp_endpoint

    def configure_logging_stub(settings: Any) -> None:
        seen["logging"] = True

    # The stubs keep the test's logging set-up and connect to nothing.
    monkeypatch.setattr(bot.launch, "run_until_closed", run_bot_stub)
    monkeypatch.setattr(bot.cli_run, "_configure_logging", configure_logging_stub)

    code = bot.cli_run.run_bot(argparse.Namespace(config_dir=CONFIG_DIR))

    assert code == 0
    assert seen["logging"] is True
    assert seen["endpoint"] == "http://127.0.0.1:9"
    # Without the otel extra, tracing stays off and the bot runs anyway.
    assert seen["tracing"] is otel_installed
    assert not tracing_enabled()


def _otel_sdk_installed() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True
