"""Benchmark start-up to ready: migrations at head, scheduler and side web server up.

Run from the repository root:

    python -m tests.benchmarks.bench_startup [--players 100000] [--runs 5] [--quick]

Each run is a new Python process that imports the bot, loads the configuration, builds
`Pay2SlayBot` and runs its `setup_hook` (translator, services with the database migrated,
side web server, poller, scheduler, cogs) without logging in to Discord, then serves one
HTTP request on the side web server. The time counts from the process start (its start time
in /proc/self/stat), so interpreter start-up and imports are included. The time at which
each step ended (imports, configuration, the bot object, `setup_hook`) is reported too.
Two cases: a new, empty SQLite file (every migration runs) and a copy of the cached data set
with `--players` players (already at head).

Target: ready within 3 s. Writes tests/benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TextIO

TARGET_SECONDS = 3.0


def seconds_since_process_start() -> float:
    """Return how long ago this process started, from /proc (clock-tick resolution)."""
    fields = Path("/proc/self/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    started_ticks = int(fields[19])
    uptime = float(Path("/proc/uptime").read_text(encoding="utf-8").split()[0])
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


async def child(database_path: str, marks: dict[str, float], log_stream: TextIO) -> dict[str, Any]:
    """Start the bot without a Discord login and return the timings, in seconds."""
    import httpx

    from bot.app import Pay2SlayBot
    from core.observability import Metrics
    from core.observability.logging import configure_logging
    from tests.unit.cogs.helpers_cogs import make_settings

    marks["imported"] = seconds_since_process_start()
    configure_logging(
        log_format="json",
        level="INFO",
        secrets=[],
        stream=log_stream,
    )
    settings = make_settings(
        {
            "P2S_INTEGRATIONS__DATABASE__URL": f"sqlite+aiosqlite:///{database_path}",
            "P2S_INTEGRATIONS__DATABASE__MIGRATE_ON_START": "true",
        }
    )
    marks["configured"] = seconds_since_process_start()
    bot = Pay2SlayBot(settings, metrics=Metrics())
    marks["bot_built"] = seconds_since_process_start()
    async with bot:
        await bot.setup_hook()
        marks["setup_hook_done"] = seconds_since_process_start()
        assert bot.runtime is not None
        assert bot.runtime.web_url is not None
        assert bot.runtime.scheduler_running
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{bot.runtime.web_url}/healthz")
        marks["ready"] = seconds_since_process_start()
        await bot.close()
    return {
        "ready_seconds": round(marks["ready"], 3),
        "marks_seconds": {name: round(value, 3) for name, value in marks.items()},
        "healthz_status": response.status_code,
        "failed_extensions": dict(bot.failed_extensions),
    }


def run_child(database_path: Path) -> dict[str, Any]:
    """Start one measured process and return its timings."""
    import subprocess

    output = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_startup", "--child", str(database_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def measure_case(name: str, runs: int, prepare: Any) -> dict[str, Any]:
    """Run `runs` processes, each on a database that `prepare` returns; summarize them."""
    timings = []
    for _ in range(runs):
        path: Path = prepare()
        try:
            timings.append(run_child(path))
        finally:
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
    ready = [timing["ready_seconds"] for timing in timings]
    summary = {
        "runs": timings,
        "ready_seconds_median": statistics.median(ready),
        "ready_seconds_max": max(ready),
        "imported_at_seconds_median": statistics.median(
            t["marks_seconds"]["imported"] for t in timings
        ),
        "target_met": statistics.median(ready) <= TARGET_SECONDS,
    }
    print(
        f"{name}: ready in {summary['ready_seconds_median']} s median, "
        f"{summary['ready_seconds_max']} s max; imports done at "
        f"{summary['imported_at_seconds_median']} s "
        f"(target <= {TARGET_SECONDS} s: {'met' if summary['target_met'] else 'MISSED'})"
    )
    return summary


def main() -> None:
    """Run the benchmark (or, with --child, the measured start-up), print and write results."""
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        marks = {"interpreter_started": seconds_since_process_start()}
        with open(os.devnull, "w", encoding="utf-8") as log_stream:
            timings = asyncio.run(child(sys.argv[2], marks, log_stream))
        print(json.dumps(timings), flush=True)
        return

    from tests.benchmarks.common import write_result
    from tests.benchmarks.datasets import WORK_DIR, cached_sqlite, working_copy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100_000, help="data set size in players")
    parser.add_argument("--runs", type=int, default=5, help="processes per case")
    parser.add_argument("--quick", action="store_true", help="1,000 players, 3 runs")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.players, arguments.runs = 1_000, 3

    source, _ = cached_sqlite(arguments.players)
    WORK_DIR.mkdir(parents=True, exist_ok=True)

    def empty() -> Path:
        return WORK_DIR / f"startup-empty-{time.monotonic_ns()}.db"

    def data_set() -> Path:
        return working_copy(source, WORK_DIR / f"startup-{time.monotonic_ns()}.db")

    results = {
        "empty_database": measure_case("new database", arguments.runs, empty),
        f"data_set_{arguments.players}": measure_case(
            f"{arguments.players:,} players", arguments.runs, data_set
        ),
    }
    write_result(
        "startup",
        {"players": arguments.players, "target_seconds": TARGET_SECONDS, "results": results},
    )


if __name__ == "__main__":
    main()
