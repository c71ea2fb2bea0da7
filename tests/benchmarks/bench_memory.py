"""Benchmark the resident memory of a bot-like process with a large data set, idle and settling.

Run from the repository root:

    python -m tests.benchmarks.bench_memory [--players 100000] [--idle-seconds 60]
        [--no-settle] [--quick]

A child process is built as the bot builds itself: `open_services`, then the runtime's side
web server, poller and scheduler, with no Discord login. It runs over a copy of the cached
SQLite data set, in live mode against the sandbox node, stats API and Yunite, which run in a
process of their own.
It stays idle for `--idle-seconds` (the poller reads at its configured 60 a minute, and the
confirmation job runs), then runs one settlement that pays every payable player, which also
gives the throughput of a run of that size. The child samples VmRSS from /proc/self/status
every second and reads VmHWM (the peak) at the end of each phase.

Target: at most 200 MB resident, idle and during the settlement. Writes
tests/benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bot.runtime import Runtime, open_services
from bot.sandbox import new_secrets, sandbox_environment
from core.config import load_settings
from core.observability import Metrics
from tests.benchmarks.bench_settlement import OPERATOR_FUNDING_RAW
from tests.benchmarks.common import CONFIG_DIR, quiet_production_logging, write_result
from tests.benchmarks.datasets import RESULTS_DIR, WORK_DIR, cached_sqlite, working_copy
from tests.benchmarks.node_process import SandboxProcess

TARGET_MB = 200
THRESHOLD = 0xFFF0000000000000
GUILD_ID = 400_000_000_000_000_001


def memory_status() -> dict[str, float]:
    """Return VmRSS and VmHWM of this process in MB (10**6 bytes; /proc reports KiB)."""
    values: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = round(int(rest.split()[0]) * 1024 / 1_000_000, 1)
    return values


PROGRESS_PATH = RESULTS_DIR / "memory-progress.jsonl"


async def sample_rss(samples: list[float], stop: asyncio.Event, metrics: Metrics) -> None:
    """Append VmRSS in MB every second until `stop` is set; log progress every 30 s."""
    started = time.monotonic()
    with PROGRESS_PATH.open("w", encoding="utf-8") as progress:
        while not stop.is_set():
            samples.append(memory_status()["VmRSS"])
            if len(samples) % 30 == 0:
                submitted = metrics.registry.get_sample_value(
                    "pay2slay_payouts_total", {"state": "submitted"}
                )
                line = {
                    "seconds": round(time.monotonic() - started),
                    "payouts_submitted": submitted,
                    **memory_status(),
                }
                progress.write(json.dumps(line) + "\n")
                progress.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


class AllMembers:
    """Membership that accepts every Discord user; the data set decides who is eligible."""

    async def is_member(self, discord_id: int) -> bool | None:
        """Return True."""
        return True


async def child(request: dict[str, Any]) -> dict[str, Any]:
    """Run the bot-like process and return its memory figures."""
    quiet_production_logging()
    environ = sandbox_environment(
        new_secrets(),
        database_url=f"sqlite+aiosqlite:///{request['database_path']}",
        node_url=request["node_url"],
        yunite_url=request["yunite_url"],
        stats_url=request["stats_url"],
        guild_id=GUILD_ID,
    )
    environ.update(
        {
            "P2S_OPERATOR_SEED": request["seed"],
            "FORTNITE_API_KEY": request["stats_key"],
            "YUNITE_API_KEY": request["yunite_key"],
            "P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN": "60",
            "P2S_INTEGRATIONS__BANANO__WORK_THRESHOLD": f"{THRESHOLD:016x}",
            "P2S_PAYOUT__DAILY_PAYOUT_CAP": "1",
            "P2S_PAYOUT__WEEKLY_PAYOUT_CAP": "3",
            "P2S_PAYOUT__BATCH_SIZE": "0",
            # The benchmark starts the one settlement itself.
            "P2S_PAYOUT__SCHEDULER_MINUTES": "1440",
        }
    )
    settings = load_settings(CONFIG_DIR, environ)
    at_start = memory_status()

    metrics = Metrics()
    services = await open_services(settings, membership=AllMembers(), metrics=metrics)
    runtime = Runtime(services)
    await runtime.start_web_server()
    runtime.start_poller()
    runtime.start_scheduler()

    stop = asyncio.Event()
    samples: list[float] = []
    sampler = asyncio.create_task(sample_rss(samples, stop, metrics))
    await asyncio.sleep(request["idle_seconds"])
    idle = {**memory_status(), "samples_max": max(samples)}
    idle_sample_count = len(samples)

    settlement: dict[str, Any] | None = None
    if request["settle"]:
        started = time.perf_counter()
        report = await services.settlement.run("benchmark")
        seconds = time.perf_counter() - started
        during = samples[idle_sample_count:] or [memory_status()["VmRSS"]]
        settlement = {
            "outcome": report.outcome.value,
            "payouts": len(report.payout_ids),
            "skipped": dict(report.skipped),
            "seconds": round(seconds, 1),
            "payouts_per_second": round(len(report.payout_ids) / seconds, 1),
            "rss_max_sampled_mb": max(during),
            **memory_status(),
        }

    stop.set()
    await sampler
    await runtime.stop()
    await services.aclose()
    return {"at_start": at_start, "idle": idle, "settlement": settlement}


async def parent(players: int, idle_seconds: float, settle: bool) -> dict[str, Any]:
    """Start the sandbox servers and the child process; return the child's figures."""
    source, _info = cached_sqlite(players)
    copy = working_copy(source, WORK_DIR / f"memory-{players}.db")
    secrets = new_secrets()
    try:
        async with SandboxProcess(
            secrets.operator_seed,
            OPERATOR_FUNDING_RAW,
            THRESHOLD,
            players=players,
            stats_key=secrets.stats_api_key,
            yunite_key=secrets.yunite_api_key,
            guild_id=GUILD_ID,
        ) as sandbox:
            request = {
                "database_path": str(copy),
                "node_url": sandbox.urls.node,
                "stats_url": sandbox.urls.stats,
                "yunite_url": sandbox.urls.yunite,
                "seed": secrets.operator_seed,
                "stats_key": secrets.stats_api_key,
                "yunite_key": secrets.yunite_api_key,
                "idle_seconds": idle_seconds,
                "settle": settle,
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.benchmarks.bench_memory",
                "--child",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            output, _ = await process.communicate(json.dumps(request).encode())
            if process.returncode != 0:
                raise RuntimeError(f"the bot-like process exited with {process.returncode}")
            result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
            return result
    finally:
        for suffix in ("", "-wal", "-shm"):
            copy.with_name(copy.name + suffix).unlink(missing_ok=True)


def main() -> None:
    """Run the benchmark (or, with --child, the measured process), print and write results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100_000, help="data set size in players")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle phase length")
    parser.add_argument("--no-settle", action="store_true", help="measure the idle phase only")
    parser.add_argument("--quick", action="store_true", help="1,000 players, 20 s idle")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        request = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(child(request))), flush=True)
        return
    if arguments.quick:
        arguments.players, arguments.idle_seconds = 1_000, 20.0

    result = asyncio.run(parent(arguments.players, arguments.idle_seconds, not arguments.no_settle))
    idle = result["idle"]
    peak = idle["VmHWM"] if result["settlement"] is None else result["settlement"]["VmHWM"]
    print(
        f"{arguments.players:,} players: idle RSS {idle['VmRSS']} MB, peak {peak} MB "
        f"(target <= {TARGET_MB} MB: {'met' if peak <= TARGET_MB else 'MISSED'})"
    )
    if result["settlement"] is not None:
        settlement = result["settlement"]
        print(
            f"  settlement: {settlement['payouts']:,} payouts in {settlement['seconds']} s, "
            f"{settlement['payouts_per_second']} payouts/s, {settlement['outcome']}"
        )
    write_result(
        "memory",
        {
            "players": arguments.players,
            "idle_seconds": arguments.idle_seconds,
            "target_mb": TARGET_MB,
            "target_met": peak <= TARGET_MB,
            "results": result,
        },
    )


if __name__ == "__main__":
    main()
