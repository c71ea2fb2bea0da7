"""Commands that never talk to Discord do not import discord.py or the bot runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter, because this test process has imported discord.py already. The
# probe runs the CLI entry point, then writes the names of every loaded module to a file, so
# the command's own output on stdout does not matter.
PROBE = (
    "import json, sys\n"
    "from bot.cli import main\n"
    "code = main(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as report:\n"
    "    json.dump({'code': code, 'modules': sorted(sys.modules)}, report)\n"
)

# The Discord client and what only `run`, `sandbox`, `sync-commands` and the payout commands use.
RUNTIME_MODULES = (
    "discord",
    "bot.app",
    "bot.launch",
    "bot.runtime",
    "bot.payments",
    "bot.sandbox",
    "cogs",
)

# Variables that the shipped YAML files read. The probe runs without them, as on a new machine.
CONFIG_VARIABLES = ("YUNITE_API_KEY", "FORTNITE_API_KEY", "DISCORD_CLIENT_ID")


def _run_probe(tmp_path: Path, argv: list[str]) -> tuple[int, set[str]]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("P2S_") and name not in CONFIG_VARIABLES
    }
    report = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *argv],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(report.read_text(encoding="utf-8"))
    return result["code"], set(result["modules"])


def test_config_check_skips_discord(tmp_path: Path) -> None:
    # No --config-dir: the shipped configs/ in the repository, as an operator runs it.
    code, modules = _run_probe(tmp_path, ["config", "check"])

    assert code == 0
    for name in RUNTIME_MODULES:
        assert name not in modules, name


def test_help_skips_discord(tmp_path: Path) -> None:
    code, modules = _run_probe(tmp_path, ["--help"])

    assert code == 0
    for name in RUNTIME_MODULES:
        assert name not in modules, name


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_db_commands_skip_discord(tmp_path: Path, command: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pay2slay.db'}"
    if command == "current":
        first, _ = _run_probe(tmp_path, ["db", "upgrade", "--database-url", url])
        assert first == 0

    code, modules = _run_probe(tmp_path, ["db", command, "--database-url", url])

    assert code == 0
    for name in RUNTIME_MODULES:
        assert name not in modules, name
