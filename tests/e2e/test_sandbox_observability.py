"""`pay2slay sandbox` seen from monitoring: JSON logs without secrets, and a moving /metrics.

Each test runs the sandbox as a subprocess. Its report goes to standard output and its log
lines to standard error, so the two are checked apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.sandbox import SUMMARY_PREFIX
from core.banano.keys import KeyPair
from core.banano.units import RAW_PER_BAN
from core.observability.docs import METRICS_BEGIN, METRICS_END

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 180

pytestmark = pytest.mark.slow

# The credentials that the sandbox generates for itself, replaced by known values so that the
# test can search the output for them.
SANDBOX_SECRETS = {
    "operator_seed": "5eedc0de" * 8,
    "yunite_api_key": "sandbox-yunite-key-Qk7wP2vX",
    "stats_api_key": "sandbox-stats-key-Zr8mT4nB",
    "session_secret": "sandbox-session-secret-Hy3cV6sLd9Fq",
}

# Secrets of a real deployment that happen to be set where the sandbox runs. The sandbox
# reads none of them, and none may show up in its output.
DEPLOYMENT_SECRETS = {
    "P2S_DISCORD_BOT_TOKEN": "deploy-bot-token-Mq5sD1yK",
    "P2S_METRICS_TOKEN": "deploy-metrics-token-Hn3vB9xL",
    "P2S_SESSION_SECRET": "deploy-session-secret-Tg8wE2rPb5Nc",
    "P2S_OPERATOR_SEED": "deadbeef" * 8,
    "YUNITE_API_KEY": "deploy-yunite-key-Pa4hJ7kW",
    "FORTNITE_API_KEY": "deploy-stats-key-Rb9kL3uE",
    "DISCORD_CLIENT_SECRET": "deploy-client-secret-Wd6fG2zJ",
}

# Runs `pay2slay sandbox` with the generated credentials replaced by those in argv[1].
KNOWN_SECRETS_PROGRAM = """
import json
import sys

import bot.sandbox
from bot.cli import main

known = bot.sandbox.SandboxSecrets(**json.loads(sys.argv[1]))
bot.sandbox.new_secrets = lambda: known
sys.exit(main(sys.argv[2:]))
"""

# Fields that every JSON log line starts with.
LOG_LINE_FIELDS = ("timestamp", "level", "logger", "event")


def base_environment() -> dict[str, str]:
    """Return the environment without any Pay2Slay configuration of this machine."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("P2S_")
        and name not in ("YUNITE_API_KEY", "FORTNITE_API_KEY", "DISCORD_CLIENT_SECRET")
    }


def secret_forms(value: str) -> set[str]:
    """Return the value as given and in both letter cases, as hex digests may be printed."""
    return {value, value.lower(), value.upper()}


def forbidden_values() -> set[str]:
    """Return every secret, and the operator key derived from the sandbox seed, as text."""
    forbidden: set[str] = set()
    for value in (*SANDBOX_SECRETS.values(), *DEPLOYMENT_SECRETS.values()):
        forbidden |= secret_forms(value)
    for seed in (SANDBOX_SECRETS["operator_seed"], DEPLOYMENT_SECRETS["P2S_OPERATOR_SEED"]):
        forbidden |= secret_forms(KeyPair.from_seed(seed, 0).private_key.hex())
    return forbidden


def summary_of(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert len(lines) == 1, output[-2000:]
    summary: dict[str, Any] = json.loads(lines[0][len(SUMMARY_PREFIX) :])
    return summary


def json_log_lines(stderr: str) -> list[dict[str, Any]]:
    """Parse every line of `stderr` as one JSON object; fail on the first that is not."""
    entries = []
    for number, line in enumerate(stderr.splitlines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stderr line {number} is not JSON: {line[:300]!r}")
        assert isinstance(entry, dict), (number, line[:300])
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def json_run() -> subprocess.CompletedProcess[str]:
    """Two sandbox runs with JSON logs at DEBUG, known credentials and deployment secrets."""
    environment = base_environment()
    environment.update(DEPLOYMENT_SECRETS)
    environment["P2S_INTEGRATIONS__OBSERVABILITY__LOG_FORMAT"] = "json"
    arguments = ["sandbox", "--runs", "2", "--interval", "1", "--players", "6"]
    arguments += ["--seed", "11", "--log-level", "DEBUG"]
    return subprocess.run(
        [sys.executable, "-c", KNOWN_SECRETS_PROGRAM, json.dumps(SANDBOX_SECRETS), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def test_json_run_pays_and_balances(json_run: subprocess.CompletedProcess[str]) -> None:
    assert json_run.returncode == 0, json_run.stderr[-2000:]
    summary = summary_of(json_run.stdout)
    assert summary["runs"] == 2
    assert summary["payouts"] > 0
    assert summary["balanced"] is True


def test_every_log_line_is_json(json_run: subprocess.CompletedProcess[str]) -> None:
    entries = json_log_lines(json_run.stderr)

    # DEBUG shows the payouts' progress, so the lines checked include the money path.
    events = {entry["event"] for entry in entries}
    assert "payout_submitted" in events
    assert "settlement_finished" in events
    for entry in entries:
        for field in LOG_LINE_FIELDS:
            assert field in entry, (field, entry)
    assert any(entry["logger"] == "alembic.runtime.migration" for entry in entries)


def test_chatty_libraries_log_warnings_only(json_run: subprocess.CompletedProcess[str]) -> None:
    quiet = ("aiosqlite", "httpcore", "httpx", "sqlalchemy")
    for entry in json_log_lines(json_run.stderr):
        if str(entry["logger"]).split(".")[0] in quiet:
            assert entry["level"] in ("warning", "error", "critical"), entry


def test_report_has_no_log_lines(json_run: subprocess.CompletedProcess[str]) -> None:
    lines = json_run.stdout.splitlines()

    assert any(line.startswith("Run 1:") for line in lines)
    assert not [line for line in lines if line.lstrip().startswith("{")]
    assert SUMMARY_PREFIX not in json_run.stderr


def test_no_secret_in_output(json_run: subprocess.CompletedProcess[str]) -> None:
    for value in sorted(forbidden_values()):
        assert value not in json_run.stdout, f"a secret ({value[:4]}...) is in stdout"
        assert value not in json_run.stderr, f"a secret ({value[:4]}...) is in stderr"


def test_known_operator_account_was_used(json_run: subprocess.CompletedProcess[str]) -> None:
    # Proves that the credentials searched for above are the ones the sandbox ran with.
    address = KeyPair.from_seed(SANDBOX_SECRETS["operator_seed"], 0).address
    assert address in json_run.stdout


# A scrape of /metrics while the sandbox runs.


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Scrape:
    """The metric families and samples of one /metrics response."""

    def __init__(self, text: str) -> None:
        self.families: set[str] = set()
        self.samples: Samples = {}
        for family in text_string_to_metric_families(text):
            # The parser drops the `_total` suffix from a counter family's name.
            name = family.name + "_total" if family.type == "counter" else family.name
            self.families.add(name)
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    def total(self, name: str) -> float:
        return sum(value for (sample, _), value in self.samples.items() if sample == name)


def documented_metrics() -> set[str]:
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    table = text[text.index(METRICS_BEGIN) : text.index(METRICS_END)]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `pay2slay_"):
            names.add(line.split("`")[1])
    return names


@pytest.fixture(scope="module")
def scrapes() -> tuple[Scrape, Scrape, dict[str, Any]]:
    """Scrape /metrics before the first settlement and after the second of three."""
    arguments = ["sandbox", "--runs", "3", "--interval", "2", "--players", "8", "--seed", "5"]
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", *arguments],
            cwd=ROOT,
            env=base_environment(),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        # The loop below blocks on each line, so a hung sandbox is killed from a timer.
        watchdog = threading.Timer(TIMEOUT_SECONDS, process.kill)
        watchdog.start()
        try:
            before, after, output = _scrape_during(process.stdout)
            process.wait(timeout=TIMEOUT_SECONDS)
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        assert process.returncode == 0, errors.read()[-2000:]
    return before, after, summary_of(output)


def _scrape_during(stdout: IO[str] | None) -> tuple[Scrape, Scrape, str]:
    assert stdout is not None
    output: list[str] = []
    url = None
    before = after = None
    for line in stdout:
        output.append(line)
        if url is None and "metrics at " in line:
            url = line.rsplit("metrics at ", 1)[1].strip()
            before = Scrape(httpx.get(url, timeout=10).text)
        elif url is not None and line.startswith("Run 2:"):
            # A third run follows after the interval, so the server is still up.
            after = Scrape(httpx.get(url, timeout=10).text)
    assert before is not None, "".join(output)[-2000:]
    assert after is not None, "".join(output)[-2000:]
    return before, after, "".join(output)


def test_scrapes_have_documented_metrics(
    scrapes: tuple[Scrape, Scrape, dict[str, Any]],
) -> None:
    documented = documented_metrics()
    assert len(documented) > 20
    for scrape in scrapes[:2]:
        assert documented <= scrape.families, documented - scrape.families


def test_settlement_counters_move(scrapes: tuple[Scrape, Scrape, dict[str, Any]]) -> None:
    before, after, _ = scrapes
    runs = "pay2slay_settlement_runs_total"

    assert before.value(runs, outcome="completed") == 0
    assert after.value(runs, outcome="completed") >= 2
    assert after.value(runs, outcome="failed") == 0
    assert after.value("pay2slay_settlement_duration_seconds_count") >= 2


def test_payout_counters_move(scrapes: tuple[Scrape, Scrape, dict[str, Any]]) -> None:
    before, after, _ = scrapes
    payouts = "pay2slay_payouts_total"

    for state in ("pending", "signed", "submitted"):
        assert before.value(payouts, state=state) == 0, state
        assert after.value(payouts, state=state) > 0, state
    # The second run confirms the first run's payouts before it sends its own.
    assert after.value(payouts, state="confirmed") > 0
    assert after.value("pay2slay_paid_ban_total") > before.value("pay2slay_paid_ban_total")
    assert after.value(payouts, state="dry_run") == 0


def test_kill_counters_move(scrapes: tuple[Scrape, Scrape, dict[str, Any]]) -> None:
    before, after, _ = scrapes

    assert after.total("pay2slay_accrued_kills_total") > before.total(
        "pay2slay_accrued_kills_total"
    )
    ok = "pay2slay_stats_requests_total"
    assert after.value(ok, outcome="ok") > before.value(ok, outcome="ok")


def test_state_gauges(scrapes: tuple[Scrape, Scrape, dict[str, Any]]) -> None:
    before, after, summary = scrapes
    funded_ban = 100_000
    sent_ban = int(summary["ledger_sent_raw"]) / RAW_PER_BAN

    assert before.value("pay2slay_dry_run") == 0
    assert before.value("pay2slay_min_operator_balance_ban") == 10
    assert after.value("pay2slay_dry_run") == 0
    # Settlement reads the balance at each live run. By then less than the total was sent.
    balance = after.value("pay2slay_operator_balance_ban")
    assert funded_ban - sent_ban <= balance < funded_ban
    assert after.value("pay2slay_oldest_unconfirmed_payout_age_seconds") >= 0
    assert after.value("pay2slay_gateway_connected") == 0
