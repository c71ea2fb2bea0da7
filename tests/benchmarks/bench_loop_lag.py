"""Benchmark event loop lag while a live settlement and the poller share the bot's loop.

Run from the repository root:

    python -m tests.benchmarks.bench_loop_lag [--players 10000] [--payouts 1000]
        [--readings-per-minute 60] [--db sqlite,postgresql] [--quick]

One process runs, on one event loop, what the bot runs: a live settlement paying `--payouts`
players (as in bench_settlement, with the sandbox node in its own process), the real poller
reading kill counts from the sandbox stats API over HTTP at `--readings-per-minute`, and a
monitor that sleeps 10 ms at a time and records how late each wake-up comes. A late wake-up is
time the loop spent on one callback, so a command arriving then waits as long.

Target: p99 of the lag <= 50 ms. Writes tests/benchmarks/results/loop_lag.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from pydantic import SecretStr

from bot.sandbox import new_secrets
from core.config import load_settings
from core.integrations import RateLimiter, StatsClient, create_http_client
from core.observability import Metrics
from core.services.poller import Poller, PollerSettings
from core.services.settlement import RunOutcome
from tests.benchmarks.bench_settlement import OPERATOR_FUNDING_RAW, build_settlement
from tests.benchmarks.common import (
    CONFIG_DIR,
    latency_summary,
    parse_databases,
    quiet_production_logging,
    write_result,
)
from tests.benchmarks.datasets import open_dataset
from tests.benchmarks.node_process import SandboxProcess

TICK_SECONDS = 0.010
TARGET_P99_MS = 50.0


async def monitor(stop: asyncio.Event, lags: list[float]) -> None:
    """Record how much later than `TICK_SECONDS` the loop wakes this task, until `stop`."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(TICK_SECONDS)
        lags.append(max(0.0, loop.time() - started - TICK_SECONDS))


async def measure(
    database: str, players: int, payouts: int, readings_per_minute: int, threshold: int
) -> dict[str, Any]:
    """Run the settlement with the poller and the monitor; return the lag figures."""
    secrets = new_secrets()
    async with (
        open_dataset(database, players) as (db, _info),
        SandboxProcess(
            secrets.operator_seed,
            OPERATOR_FUNDING_RAW,
            threshold,
            players=players,
            stats_key=secrets.stats_api_key,
            yunite_key="unused-yunite-key",
            guild_id=1,
        ) as sandbox,
        AsyncExitStack() as stack,
    ):
        service, _ = await build_settlement(
            db, sandbox.urls.node, secrets.operator_seed, payouts, threshold, stack
        )
        settings = load_settings(CONFIG_DIR, {})
        metrics = Metrics()
        http = create_http_client()
        stack.push_async_callback(http.aclose)
        stats = StatsClient(
            http,
            sandbox.urls.stats,
            SecretStr(secrets.stats_api_key),
            RateLimiter(readings_per_minute),
        )
        poller_settings = PollerSettings.from_config(settings.payout, settings.integrations)
        poller_settings = PollerSettings(
            raw_per_kill=poller_settings.raw_per_kill,
            reset_lower_readings=poller_settings.reset_lower_readings,
            zone=poller_settings.zone,
            readings_per_minute=readings_per_minute,
            abuse_policy=poller_settings.abuse_policy,
        )
        poller = Poller(db, stats, poller_settings, service.now, metrics)

        stop = asyncio.Event()
        lags: list[float] = []
        baseline: list[float] = []
        baseline_stop = asyncio.Event()
        baseline_task = asyncio.create_task(monitor(baseline_stop, baseline))
        await asyncio.sleep(2)
        baseline_stop.set()
        await baseline_task

        monitor_task = asyncio.create_task(monitor(stop, lags))
        poller_task = asyncio.create_task(poller.run_forever(stop))
        started = time.perf_counter()
        report = await service.run("benchmark")
        seconds = time.perf_counter() - started
        stop.set()
        await asyncio.gather(monitor_task, poller_task)

    if report.outcome is not RunOutcome.COMPLETED:
        raise RuntimeError(f"the settlement ended {report.outcome}: {report.skip_reason}")
    return {
        "payouts": len(report.payout_ids),
        "settlement_seconds": round(seconds, 2),
        "readings_per_minute": readings_per_minute,
        "lag_while_idle": latency_summary(baseline),
        "lag": latency_summary(lags),
        "target_met": latency_summary(lags)["p99_ms"] <= TARGET_P99_MS,
    }


def main() -> None:
    """Run the benchmark, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000, help="data set size in players")
    parser.add_argument("--payouts", type=int, default=1_000, help="payouts in the settlement")
    parser.add_argument(
        "--readings-per-minute", type=int, default=60, help="poller budget during the run"
    )
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--threshold", default="fff0000000000000", help="work threshold as 16 hex digits"
    )
    parser.add_argument("--quick", action="store_true", help="1,000 players, 200 payouts")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.players, arguments.payouts = 1_000, 200
    quiet_production_logging()

    results = {}
    for database in parse_databases(arguments.db):
        print(f"Settlement and poller on {database} ...", flush=True)
        result = asyncio.run(
            measure(
                database,
                arguments.players,
                arguments.payouts,
                arguments.readings_per_minute,
                int(arguments.threshold, 16),
            )
        )
        lag = result["lag"]
        print(
            f"  lag median {lag['median_ms']} ms, p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms "
            f"over {lag['samples']} ticks (target p99 <= {TARGET_P99_MS} ms: "
            f"{'met' if result['target_met'] else 'MISSED'})"
        )
        results[database] = result
    write_result(
        "loop_lag",
        {
            "players": arguments.players,
            "tick_ms": TICK_SECONDS * 1000,
            "target_p99_ms": TARGET_P99_MS,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
