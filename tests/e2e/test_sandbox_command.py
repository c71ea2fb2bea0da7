"""`pay2slay sandbox` as an operator runs it: a subprocess that pays sandbox-ledger sends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SUMMARY_PREFIX

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = [sys.executable, "-m", "bot", "sandbox", "--players", "6", "--seed", "3"]
TIMEOUT_SECONDS = 180

pytestmark = pytest.mark.slow


def environment() -> dict[str, str]:
    # Nothing from a real deployment's configuration may reach the sandbox.
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("P2S_") and name not in ("YUNITE_API_KEY", "FORTNITE_API_KEY")
    }


def summary_of(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert len(lines) == 1, output[-2000:]
    summary: dict[str, Any] = json.loads(lines[0][len(SUMMARY_PREFIX) :])
    return summary


def test_three_runs_pay_what_was_settled() -> None:
    finished = subprocess.run(
        [*SANDBOX, "--runs", "3", "--interval", "1"],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = summary_of(finished.stdout)
    assert summary["runs"] == 3
    assert summary["failed_runs"] == 0
    assert summary["payouts"] > 0
    assert int(summary["ledger_sent_raw"]) > 0
    assert summary["ledger_sent_raw"] == summary["accruals_settled_raw"]
    assert summary["ledger_sent_raw"] == summary["payouts_raw"]
    assert summary["balanced"] is True
    assert "/metrics" in finished.stdout
    assert "Your status" in finished.stdout


def test_interrupt_stops_cleanly() -> None:
    process = subprocess.Popen(
        [*SANDBOX, "--interval", "1"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("Run 1:"):
                process.send_signal(signal.SIGINT)
                break
        rest, errors = process.communicate(timeout=TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, errors[-2000:]
    summary = summary_of("".join(output) + rest)
    assert summary["balanced"] is True
    assert summary["runs"] >= 1
