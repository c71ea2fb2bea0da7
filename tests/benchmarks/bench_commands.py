"""Benchmark the player commands: `/status`, `/leaderboard` and `/payouts` on large data sets.

Run from the repository root:

    python -m tests.benchmarks.bench_commands [--players 1000,10000,100000]
        [--db sqlite,postgresql] [--iterations 1000] [--quick]

For each database and data set size it measures, one player per call (each player at most once,
so no command cooldown triggers):

- `status_service`: `StatusService.player_status` plus `render_status`, the card the reply shows;
- `status_dispatch`: a real `discord.Interaction` for `/status` dispatched through the bot's
  command tree (option parsing, checks, deferral, the reply through a fake webhook adapter);
- `leaderboard_service` and `leaderboard_dispatch`: the same for `/leaderboard`, cycling
  through the periods and metrics, with the caller's own rank;
- `payouts_dispatch`: `/payouts`, the first page of the caller's history.

The services are built as the bot builds them, over a copy of the cached SQLite data set or a
PostgreSQL schema loaded for the run and dropped after it. Logging is configured as in
production (JSON at INFO) into /dev/null. Prints a table and writes
tests/benchmarks/results/commands.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

from bot.app import Pay2SlayBot
from core.observability import Metrics
from core.presentation.leaderboard import render_leaderboard
from core.presentation.status import render_status
from tests.benchmarks.common import (
    add_common_options,
    latency_summary,
    parse_databases,
    parse_players,
    quiet_production_logging,
    write_result,
)
from tests.benchmarks.datasets import open_dataset
from tests.unit.cogs.harness import InteractionHarness, Invoker, string_option
from tests.unit.cogs.helpers_cogs import (
    GUILD_ID,
    cog_services_for,
    make_settings,
    open_test_services,
)

WARMUP = 50
BOARDS = [(period, metric) for period in ("all", "week", "day") for metric in ("kills", "paid")]
TARGETS_MS = {"status_dispatch": 5.0, "leaderboard_service": 20.0, "leaderboard_dispatch": 20.0}


async def timed(
    call: Callable[..., Awaitable[object]], arguments: list[tuple[Any, ...]]
) -> list[float]:
    """Await `call` with each argument tuple in turn; return the durations after the warm-up."""
    durations = []
    for position, args in enumerate(arguments):
        started = time.perf_counter()
        await call(*args)
        if position >= WARMUP:
            durations.append(time.perf_counter() - started)
    return durations


class FixedClock:
    """The data set's own end time, so its windows hold this week's payouts."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def measure(database: str, players: int, iterations: int) -> dict[str, Any]:
    """Measure every command on one data set and return the summaries by measurement."""
    async with open_dataset(database, players) as (db, info), AsyncExitStack() as stack:
        clock = FixedClock(info.anchor_at + timedelta(minutes=1))
        settings = make_settings()
        services = await open_test_services(db, settings, stack, clock=clock)
        cog_services = cog_services_for(services)
        client = Pay2SlayBot(
            settings, metrics=Metrics(), catalog=cog_services.catalog, commands_only=True
        )
        client.cog_services = cog_services
        await stack.enter_async_context(client)
        await client.load_extension("cogs.player")
        harness = InteractionHarness(client)

        rng = random.Random(players)
        count = min(iterations + WARMUP, players)
        catalog = cog_services.catalog
        product = settings.product
        explorer = settings.integrations.banano.explorer_block_url

        async def status_service(discord_id: int) -> None:
            status = await cog_services.status.player_status(discord_id, None)
            assert status is not None
            render_status(status, catalog, "en", product, explorer, True)

        async def leaderboard_service(discord_id: int, period: str, metric: str) -> None:
            board = await cog_services.leaderboard.top(
                period,  # type: ignore[arg-type]
                metric,  # type: ignore[arg-type]
                limit=10,
                caller_discord_id=discord_id,
            )
            render_leaderboard(board, catalog, "en", product, explorer, True)

        async def dispatch(name: str, discord_id: int, options: list[dict[str, Any]]) -> None:
            replies = await harness.run_command(name, Invoker(discord_id, GUILD_ID), options)
            assert replies[-1].kind == "edit_original", (name, [r.payload for r in replies])
            harness.adapter.replies.clear()
            harness.views.clear()

        def players_sample() -> list[int]:
            return [info.discord_id(index) for index in rng.sample(range(1, players + 1), count)]

        def boards_sample() -> list[tuple[int, str, str]]:
            return [
                (discord_id, *BOARDS[position % len(BOARDS)])
                for position, discord_id in enumerate(players_sample())
            ]

        async def status_dispatch(discord_id: int) -> None:
            await dispatch("status", discord_id, [])

        async def leaderboard_dispatch(discord_id: int, period: str, metric: str) -> None:
            options = [string_option("period", period), string_option("metric", metric)]
            await dispatch("leaderboard", discord_id, options)

        async def payouts_dispatch(discord_id: int) -> None:
            await dispatch("payouts", discord_id, [])

        results: dict[str, list[float]] = {}
        results["status_service"] = await timed(status_service, [(d,) for d in players_sample()])
        results["status_dispatch"] = await timed(status_dispatch, [(d,) for d in players_sample()])
        results["leaderboard_service"] = await timed(leaderboard_service, boards_sample())
        results["leaderboard_dispatch"] = await timed(leaderboard_dispatch, boards_sample())
        results["payouts_dispatch"] = await timed(
            payouts_dispatch, [(d,) for d in players_sample()]
        )
        return {name: latency_summary(durations) for name, durations in results.items()}


def print_table(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Print median, p95 and p99 of every measurement, one line each."""
    print(f"{'db':<11}{'players':>9}  {'measurement':<22}{'median':>9}{'p95':>9}{'p99':>9}  target")
    for database, by_size in results.items():
        for players, measurements in by_size.items():
            for name, summary in measurements.items():
                target = TARGETS_MS.get(name)
                verdict = ""
                if target is not None and database == "sqlite":
                    verdict = (
                        f"p95 <= {target} ms: {'met' if summary['p95_ms'] <= target else 'MISSED'}"
                    )
                print(
                    f"{database:<11}{int(players):>9,}  {name:<22}{summary['median_ms']:>9.2f}"
                    f"{summary['p95_ms']:>9.2f}{summary['p99_ms']:>9.2f}  {verdict}"
                )


def main() -> None:
    """Run the benchmark, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser, default_players="1000,10000,100000")
    parser.add_argument("--iterations", type=int, default=1000, help="measured calls per command")
    arguments = parser.parse_args()
    iterations = 200 if arguments.quick else arguments.iterations
    quiet_production_logging()

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for database in parse_databases(arguments.db):
        for players in parse_players(arguments.players, quick=arguments.quick):
            print(f"Measuring commands on {database} with {players:,} players ...", flush=True)
            summary = asyncio.run(measure(database, players, iterations))
            results.setdefault(database, {})[str(players)] = summary

    print_table(results)
    write_result(
        "commands",
        {"iterations": iterations, "warmup": WARMUP, "targets_ms": TARGETS_MS, "results": results},
    )


if __name__ == "__main__":
    main()
