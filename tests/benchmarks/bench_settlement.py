"""Benchmark a live settlement run: payouts per second with real signing and every commit.

Run from the repository root:

    python -m tests.benchmarks.bench_settlement [--players 10000] [--payouts 1000]
        [--db sqlite,postgresql] [--runs 3] [--threshold ff00000000000000] [--profile]

Each run opens a copy of the data set (or a PostgreSQL schema) and starts the sandbox Banano
node in a process of its own. The node is reached over HTTP on loopback and validates the
signature, work, frontier and balance of every block. Then one settlement runs with
`batch_size` set to `--payouts`, built the way the bot builds it: the local signer with work
from the node's `work_generate` at the low `--threshold`, the default caps, random order, and
JSON logging at INFO into /dev/null. The sandbox node searches work in Python on the same two
cores as the bot, where a real node's work server runs elsewhere. At one nonce in 4096 the
node used 3.2 ms of CPU per payout, against 1.9 ms at one nonce in 256, so the default is one
nonce in 256.
Payouts are paid in batches, as the bot pays them: each batch is committed with its claims
(the next one while the one before is submitted), its chain of blocks is signed and stored,
and only then are the blocks submitted, in order, and recorded as submitted, as the money
rules require.

Reported per run: payouts per second over the whole run and over the paying phase, the time
before the first payout (lock, reconciliation, candidate selection), the send sizes and the
time of each phase of a send, the confirmation pass that follows, and checks that the
ledger and the database agree. The time per payout with local work at the real threshold
is estimated from tests/benchmarks/results/banano_primitives.json. Writes
tests/benchmarks/results/settlement.json; `--profile` also prints the functions that
dominate, from cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.payments import Payments, open_payments
from bot.sandbox import new_secrets, sandbox_environment
from core.banano.units import RAW_PER_BAN
from core.config import Settings, load_settings
from core.db import Database
from core.db.models import Accrual, Payout, PayoutState
from core.observability import Metrics
from core.services.payout_processor import PayoutProcessor
from core.services.settlement import RunOutcome, SettlementPolicy, SettlementService
from tests.benchmarks.common import (
    CONFIG_DIR,
    latency_summary,
    parse_databases,
    quiet_production_logging,
    write_result,
)
from tests.benchmarks.datasets import RESULTS_DIR, open_dataset
from tests.benchmarks.node_process import SandboxProcess

TARGET_PAYOUTS_PER_SECOND = 250
OPERATOR_FUNDING_RAW = 10**9 * RAW_PER_BAN
GUILD_ID = 400_000_000_000_000_001


def process_tree_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds (user and system) used so far by `pid` and its live children."""
    ticks = float(os.sysconf("SC_CLK_TCK"))
    total = 0.0
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_path.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        process_id = int(stat_path.parent.name)
        parent_id = int(fields[1])
        if process_id == pid or parent_id == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class StepClock:
    """A step hook that records when each payout reached each committed step, in order."""

    def __init__(self) -> None:
        self.at: dict[str, dict[int, float]] = defaultdict(dict)
        self.order: list[tuple[str, int]] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        self.at[step][payout_id] = time.perf_counter()
        self.order.append((step, payout_id))

    def sends(self) -> list[list[int]]:
        """The payout ids of each send: the payouts whose blocks were stored together."""
        sends: list[list[int]] = []
        previous_step = ""
        for step, payout_id in self.order:
            if step == "signed":
                if previous_step != "signed":
                    sends.append([])
                sends[-1].append(payout_id)
            previous_step = step
        return sends


def bench_settings(
    database_url: str, node_url: str, seed: str, payouts: int, threshold: int
) -> Settings:
    """Load the shipped configuration pointed at the sandbox node, live, with default caps."""
    secrets = new_secrets()
    environ = sandbox_environment(
        secrets,
        database_url=database_url,
        node_url=node_url,
        yunite_url="http://127.0.0.1:9/",
        stats_url="http://127.0.0.1:9/",
        guild_id=GUILD_ID,
    )
    environ.update(
        {
            "P2S_OPERATOR_SEED": seed,
            "P2S_INTEGRATIONS__BANANO__WORK_THRESHOLD": f"{threshold:016x}",
            "P2S_PAYOUT__DAILY_PAYOUT_CAP": "1",
            "P2S_PAYOUT__WEEKLY_PAYOUT_CAP": "3",
            "P2S_PAYOUT__SETTLEMENT_ORDER": "random",
            "P2S_PAYOUT__BATCH_SIZE": str(payouts),
        }
    )
    return load_settings(CONFIG_DIR, environ)


async def build_settlement(
    db: Database,
    node_url: str,
    seed: str,
    payouts: int,
    threshold: int,
    stack: AsyncExitStack,
    step_hook: StepClock | None = None,
) -> tuple[SettlementService, Payments]:
    """Build the live settlement service the way the bot does, against the sandbox node."""
    settings = bench_settings("sqlite+aiosqlite:///unused.db", node_url, seed, payouts, threshold)
    metrics = Metrics()
    payments = await open_payments(settings, stack)
    assert payments.sender is not None
    assert payments.node is not None
    processor = PayoutProcessor(
        db,
        payments.sender,
        payments.node,
        zone=settings.payout.zone,
        confirmation_timeout=timedelta(seconds=settings.payout.confirmation_timeout_seconds),
        metrics=metrics,
        step_hook=step_hook,
    )
    service = SettlementService(
        db,
        SettlementPolicy.from_settings(settings.payout, settings.integrations),
        metrics=metrics,
        processor=processor,
        step_hook=step_hook,
    )
    return service, payments


def phase_summaries(steps: StepClock, started: float) -> dict[str, Any]:
    """Split the run into its sends and each send into its committed steps.

    The payouts of a send were created ahead, while the node checked the blocks of the send
    before it, so their creation is not on the run's critical path except for the first
    send. What a send waits for, from the end of the one before: the checks, the batch
    created ahead if it is not ready yet, the account reading, signing, work, and storing
    the chain. Then its blocks are submitted one by one, and recorded as submitted in one
    transaction. Each phase is reported per payout (its time divided by the payouts of its
    send) and for the whole run.
    """
    at = steps.at
    sends = steps.sends()
    totals: dict[str, float] = defaultdict(float)
    per_payout: dict[str, list[float]] = defaultdict(list)
    previous_end = started
    for send in sends:
        signed = max(at["signed"][i] for i in send)
        replied = max((at["replied"][i] for i in send if i in at["replied"]), default=signed)
        submitted = max((at["submitted"][i] for i in send if i in at["submitted"]), default=replied)
        durations = {
            "until_stored": signed - previous_end,
            "process_rpc": replied - signed,
            "record_submitted": submitted - replied,
        }
        for name, seconds in durations.items():
            totals[name] += seconds
            per_payout[name].append(seconds / len(send))
        previous_end = submitted
    sizes = [len(send) for send in sends]
    return {
        "sends": len(sends),
        "send_sizes": {str(size): sizes.count(size) for size in sorted(set(sizes))},
        "run_seconds_by_phase": {name: round(value, 3) for name, value in totals.items()},
        "per_payout_by_send": {
            name: latency_summary(values) for name, values in per_payout.items()
        },
    }


async def verify(db: Database, payout_ids: list[int]) -> dict[str, Any]:
    """Check the payouts the run made: all submitted, each the sum of its claimed accruals."""
    async with db.read() as session:
        states = dict(
            (
                await session.execute(
                    select(Payout.state, func.count())
                    .where(Payout.id.in_(payout_ids))
                    .group_by(Payout.state)
                )
            ).all()
        )
        payout_raw = sum(
            await session.scalars(select(Payout.amount_raw).where(Payout.id.in_(payout_ids)))
        )
        claimed_raw = sum(
            await session.scalars(
                select(Accrual.amount_raw).where(Accrual.payout_id.in_(payout_ids))
            )
        )
    return {
        "states": {str(state): count for state, count in states.items()},
        "all_submitted": states.get(PayoutState.SUBMITTED, 0) == len(payout_ids),
        "payouts_equal_claimed_accruals": payout_raw == claimed_raw,
        "payouts_raw": payout_raw,
    }


async def measure_run(
    database: str, players: int, payouts: int, threshold: int, profile: bool
) -> dict[str, Any]:
    """Run one settlement on a fresh data set and return its figures."""
    secrets = new_secrets()
    async with (
        open_dataset(database, players) as (db, _info),
        SandboxProcess(secrets.operator_seed, OPERATOR_FUNDING_RAW, threshold) as sandbox,
        AsyncExitStack() as stack,
    ):
        steps = StepClock()
        service, payments = await build_settlement(
            db, sandbox.urls.node, secrets.operator_seed, payouts, threshold, stack, steps
        )
        assert payments.node is not None
        assert payments.operator_address is not None

        assert sandbox.pid is not None
        profiler = cProfile.Profile() if profile else None
        node_cpu_started = process_tree_cpu_seconds(sandbox.pid)
        cpu_started = time.process_time()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = await service.run("benchmark")
        if profiler is not None:
            profiler.disable()
        finished = time.perf_counter()
        cpu_seconds = time.process_time() - cpu_started
        node_cpu_seconds = process_tree_cpu_seconds(sandbox.pid) - node_cpu_started
        checks = await verify(db, report.payout_ids)

        confirm_started = time.perf_counter()
        await service.confirm()
        confirm_seconds = time.perf_counter() - confirm_started

        info = await payments.node.account_info(payments.operator_address)
        checks["ledger_equals_payouts"] = OPERATOR_FUNDING_RAW - info.balance_raw == checks.pop(
            "payouts_raw"
        )

    if report.outcome is not RunOutcome.COMPLETED or len(report.payout_ids) != payouts:
        raise RuntimeError(
            f"the run ended {report.outcome} with {len(report.payout_ids)} payouts "
            f"({report.skip_reason or report.stop_reason}); expected {payouts}"
        )
    if profiler is not None:
        path = RESULTS_DIR / f"settlement-{database}.prof"
        profiler.dump_stats(path)
        print(f"Profile written to {path}; the top functions by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    first = min(steps.at["created"].values())
    last = max(steps.at["submitted"].values())
    return {
        "payouts": len(report.payout_ids),
        "run_seconds": round(finished - started, 3),
        "before_first_payout_seconds": round(first - started, 3),
        "paying_seconds": round(last - first, 3),
        "payouts_per_second_run": round(len(report.payout_ids) / (finished - started), 1),
        "payouts_per_second_paying": round(len(report.payout_ids) / (last - first), 1),
        "bot_cpu_ms_per_payout": round(cpu_seconds / len(report.payout_ids) * 1000, 2),
        "node_cpu_ms_per_payout": round(node_cpu_seconds / len(report.payout_ids) * 1000, 2),
        "phases": phase_summaries(steps, started),
        "confirmation_pass_seconds": round(confirm_seconds, 3),
        "checks": checks,
        "profiled": profile,
    }


def real_threshold_estimate(per_payout_seconds: float) -> dict[str, Any] | None:
    """Estimate the time per payout when work at the real threshold is searched locally.

    Work for the next block can start only once the previous block's hash is known, so each
    payout waits for one work search, overlapped with the rest of the previous payout.
    """
    path = RESULTS_DIR / "banano_primitives.json"
    if not path.exists():
        return None
    local_work = json.loads(path.read_text(encoding="utf-8"))["local_work"]
    mean = float(local_work["seconds_mean"])
    median = float(local_work["seconds_median"])
    return {
        "source": str(path.relative_to(RESULTS_DIR.parents[2])),
        "work_seconds_mean_one_core": mean,
        "work_seconds_median_one_core": median,
        "seconds_per_payout_estimate": round(max(mean, per_payout_seconds), 3),
        "payouts_per_minute_estimate": round(60 / max(mean, per_payout_seconds), 1),
    }


def main() -> None:
    """Run the benchmark, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000, help="data set size in players")
    parser.add_argument("--payouts", type=int, default=1_000, help="payouts in each run")
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--runs", type=int, default=3, help="runs per database (median reported)")
    parser.add_argument(
        "--threshold",
        default="ff00000000000000",
        help="work threshold as 16 hex digits (the default gives one valid nonce in 256)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the runs with cProfile")
    parser.add_argument(
        "--quick", action="store_true", help="one run of 200 payouts, 1,000 players"
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.players, arguments.payouts, arguments.runs = 1_000, 200, 1
    quiet_production_logging()

    results: dict[str, Any] = {}
    for database in parse_databases(arguments.db):
        runs = []
        for number in range(1, arguments.runs + 1):
            print(f"Settlement run {number} on {database}: {arguments.payouts:,} payouts ...")
            run = asyncio.run(
                measure_run(
                    database,
                    arguments.players,
                    arguments.payouts,
                    int(arguments.threshold, 16),
                    arguments.profile,
                )
            )
            print(
                f"  {run['payouts_per_second_run']} payouts/s over the run, "
                f"{run['payouts_per_second_paying']} while paying; checks {run['checks']}"
            )
            runs.append(run)
        median_rate = statistics.median(run["payouts_per_second_run"] for run in runs)
        per_payout_seconds = statistics.median(run["run_seconds"] / run["payouts"] for run in runs)
        results[database] = {
            "runs": runs,
            "payouts_per_second_run_median": median_rate,
            "target_met": median_rate >= TARGET_PAYOUTS_PER_SECOND,
            "real_threshold": real_threshold_estimate(per_payout_seconds),
        }
        print(
            f"{database}: median {median_rate} payouts/s "
            f"(target >= {TARGET_PAYOUTS_PER_SECOND}: "
            f"{'met' if median_rate >= TARGET_PAYOUTS_PER_SECOND else 'MISSED'})"
        )

    write_result(
        "settlement",
        {
            "players": arguments.players,
            "payouts_per_run": arguments.payouts,
            "threshold": arguments.threshold,
            "target_payouts_per_second": TARGET_PAYOUTS_PER_SECOND,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
