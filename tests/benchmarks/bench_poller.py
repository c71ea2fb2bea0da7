"""Benchmark poller fairness on a simulated clock: budget used and the longest wait per player.

Run from the repository root:

    python -m tests.benchmarks.bench_poller [--players 10000] [--budget 60] [--cycles 2.0]
        [--db sqlite,postgresql] [--quick]

The real `Poller.run_forever` runs over a copy of the data set with its pacing clock, its
pause and the faucet clock all replaced by one simulated clock, so hours of polling take
minutes. The stats API is replaced by a reader that takes 0.3 simulated seconds per reading and
returns each account's kill count grown by 0 to 3, so readings create accruals as in
production.
Every reading goes through the real database writes.

With N eligible links and a budget of B readings a minute, the targets are: at least 95 % of
the budget used, and no link waiting more than 1.1 x N / B minutes between two readings
(the wait before the first reading counts from the link's stored `last_read_at`). Writes
tests/benchmarks/results/poller.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.config import load_settings
from core.db import Database
from core.db.models import EpicLink
from core.integrations.fortnite import StatsReading, StatsState
from core.observability import Metrics
from core.services.poller import Poller, PollerSettings
from tests.benchmarks.common import (
    CONFIG_DIR,
    parse_databases,
    quiet_production_logging,
    write_result,
)
from tests.benchmarks.datasets import open_dataset

READING_SECONDS = 0.3
TARGET_BUDGET_SHARE = 0.95
TARGET_WAIT_FACTOR = 1.1


class SimulatedTime:
    """One clock for the poller's pacing, its pauses and the timestamps it stores."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.elapsed = 0.0
        self.end_seconds = float("inf")

    def now(self) -> datetime:
        """The faucet clock."""
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """The pacing clock."""
        return self.elapsed

    async def pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Let `seconds` pass at once; stop the poller once the simulated run is over."""
        self.elapsed += max(0.0, seconds)
        if self.elapsed >= self.end_seconds:
            stop.set()
        await asyncio.sleep(0)


class SimulatedStats:
    """A stats reader that takes `READING_SECONDS` of simulated time and records each reading."""

    def __init__(self, clock: SimulatedTime, kills: dict[str, int]) -> None:
        self._clock = clock
        self._kills = kills
        self.read_at: dict[str, list[float]] = defaultdict(list)

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        """Return the account's kill count, a little higher than last time."""
        self._clock.elapsed += READING_SECONDS
        self.read_at[epic_account_id].append(self._clock.elapsed)
        kills = self._kills.get(epic_account_id, 0) + (len(self.read_at[epic_account_id]) % 4)
        self._kills[epic_account_id] = kills
        return StatsReading(epic_account_id, StatsState.OK, kills, self._clock.now())


async def eligible_links(
    db: Database, poller: Poller
) -> tuple[int, dict[str, datetime], dict[str, int]]:
    """Return how many links the poller considers due, their stored reading times and cursors."""
    everyone = await poller.due_links(10**9)
    async with db.read() as session:
        rows = await session.execute(
            select(EpicLink.epic_account_id, EpicLink.last_read_at, EpicLink.cursor_kills).where(
                EpicLink.active.is_(True)
            )
        )
        stored = {account: (read_at, cursor) for account, read_at, cursor in rows}
    accounts = [account for _, account in everyone]
    last_read = {account: stored[account][0] for account in accounts if stored[account][0]}
    cursors = {account: stored[account][1] or 0 for account in accounts}
    return len(accounts), last_read, cursors


async def measure(database: str, players: int, budget: int, cycles: float) -> dict[str, Any]:
    """Poll one data set for `cycles` times N / B simulated minutes and return the figures."""
    async with open_dataset(database, players) as (db, info):
        settings = load_settings(
            CONFIG_DIR, {"P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN": str(budget)}
        )
        clock = SimulatedTime(info.anchor_at)
        poller_settings = PollerSettings.from_config(settings.payout, settings.integrations)
        probe = Poller(db, SimulatedStats(clock, {}), poller_settings, clock.now, Metrics())
        eligible, last_read, cursors = await eligible_links(db, probe)

        stats = SimulatedStats(clock, cursors)
        poller = Poller(
            db,
            stats,
            poller_settings,
            clock.now,
            Metrics(),
            monotonic=clock.monotonic,
            pause=clock.pause,
        )
        cycle_minutes = eligible / budget
        clock.end_seconds = cycles * cycle_minutes * 60
        started = time.perf_counter()
        await poller.run_forever(asyncio.Event())
        real_seconds = time.perf_counter() - started

    readings = sum(len(times) for times in stats.read_at.values())
    simulated_minutes = clock.elapsed / 60
    longest_wait = 0.0
    never_read = 0
    for account in cursors:
        times = stats.read_at.get(account, [])
        previous = (
            (last_read[account] - info.anchor_at).total_seconds() if account in last_read else 0.0
        )
        for at in [*times, clock.elapsed]:
            longest_wait = max(longest_wait, at - previous)
            previous = at
        if not times:
            never_read += 1
    share = readings / (budget * simulated_minutes)
    longest_minutes = longest_wait / 60
    return {
        "eligible_links": eligible,
        "budget_per_minute": budget,
        "simulated_minutes": round(simulated_minutes, 1),
        "cycle_minutes_n_over_b": round(cycle_minutes, 1),
        "readings": readings,
        "budget_share": round(share, 4),
        "longest_wait_minutes": round(longest_minutes, 1),
        "longest_wait_over_cycle": round(longest_minutes / cycle_minutes, 3),
        "links_never_read": never_read,
        "real_seconds": round(real_seconds, 1),
        "real_ms_per_reading": round(real_seconds / max(readings, 1) * 1000, 2),
        "budget_share_met": share >= TARGET_BUDGET_SHARE,
        "longest_wait_met": longest_minutes <= TARGET_WAIT_FACTOR * cycle_minutes,
    }


def main() -> None:
    """Run the benchmark, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000, help="data set size in players")
    parser.add_argument("--budget", type=int, default=60, help="readings per minute")
    parser.add_argument(
        "--cycles", type=float, default=2.0, help="simulated time in multiples of N / B minutes"
    )
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--quick", action="store_true", help="1,000 players, 1.5 cycles")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.players, arguments.cycles = 1_000, 1.5
    quiet_production_logging()

    results = {}
    for database in parse_databases(arguments.db):
        print(f"Polling {arguments.players:,} players on {database} ...", flush=True)
        result = asyncio.run(
            measure(database, arguments.players, arguments.budget, arguments.cycles)
        )
        print(
            f"  {result['readings']:,} readings in {result['simulated_minutes']} simulated "
            f"minutes: budget share {result['budget_share']:.2%} (target >= 95 %), longest "
            f"wait {result['longest_wait_minutes']} min = {result['longest_wait_over_cycle']} "
            f"x N/B (target <= 1.1); {result['real_seconds']} s real"
        )
        results[database] = result
    write_result(
        "poller",
        {
            "players": arguments.players,
            "reading_seconds_simulated": READING_SECONDS,
            "targets": {"budget_share": TARGET_BUDGET_SHARE, "longest_wait_factor": 1.1},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
