"""Benchmark block signing, local proof of work, and the event loop during a local search.

Run from the repository root:

    python -m tests.benchmarks.bench_banano_primitives [--work-seconds 180] [--max-roots 40]
        [--loop-roots 5]

Prints a summary and writes tests/benchmarks/results/banano_primitives.json. Local work runs
one search at a time in this process, so the figures are for one CPU core. The event loop
figures come from `LocalWorkGenerator` searches in one worker process while a coroutine
sleeps 10 ms per tick. The largest gap between ticks is compared with a 100 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.banano.blocks import build_send
from core.banano.keys import KeyPair
from core.banano.units import RAW_PER_BAN
from core.banano.work import (
    WORK_THRESHOLD,
    LocalWorkGenerator,
    generate_work_local,
    is_valid_work,
    search_work_chunk,
)

RESULTS_PATH = Path(__file__).parent / "results" / "banano_primitives.json"
REPRESENTATIVE = "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr"
SIGNING_RUNS = 7
BLOCKS_PER_SIGNING_RUN = 2000
HASH_RATE_RUNS = 5
NONCES_PER_HASH_RATE_RUN = 1 << 20
TICK_SECONDS = 0.01
MAX_TICK_GAP_TARGET_SECONDS = 0.1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure_signing() -> dict[str, Any]:
    """Build, hash and sign sends, and return the median rates and time per signature."""
    operator = KeyPair.from_seed(secrets.token_hex(32), 0)
    player = KeyPair.from_seed(secrets.token_hex(32), 0)
    previous = secrets.token_hex(32).upper()
    unsigned_blocks = [
        build_send(
            operator, previous, REPRESENTATIVE, 10**6 * RAW_PER_BAN, amount_raw, player.address
        )
        for amount_raw in range(1, BLOCKS_PER_SIGNING_RUN + 1)
    ]
    block_hashes = [block.hash_bytes() for block in unsigned_blocks]

    signing_rates = []
    verifying_rates = []
    sign_seconds = []
    for _ in range(SIGNING_RUNS):
        started = time.perf_counter()
        signed_blocks = [block.signed(operator) for block in unsigned_blocks]
        signing_rates.append(len(signed_blocks) / (time.perf_counter() - started))

        started = time.perf_counter()
        verified = sum(block.verify_signature() for block in signed_blocks)
        verifying_rates.append(len(signed_blocks) / (time.perf_counter() - started))
        assert verified == len(signed_blocks)

        # The signature alone, without building the signed copy of the block.
        started = time.perf_counter()
        for block_hash in block_hashes:
            operator.sign(block_hash)
        sign_seconds.append((time.perf_counter() - started) / len(block_hashes))

    return {
        "runs": SIGNING_RUNS,
        "blocks_per_run": BLOCKS_PER_SIGNING_RUN,
        "signing_blocks_per_second_median": round(statistics.median(signing_rates)),
        "signing_blocks_per_second_runs": [round(rate) for rate in signing_rates],
        "sign_microseconds_median": round(statistics.median(sign_seconds) * 1e6, 1),
        "verifying_blocks_per_second_median": round(statistics.median(verifying_rates)),
    }


def measure_hash_rate() -> dict[str, Any]:
    """Time a fixed number of nonces that cannot succeed; return the median nonces per second."""
    root = secrets.token_hex(32)
    rates = []
    for _ in range(HASH_RATE_RUNS):
        started = time.perf_counter()
        search_work_chunk(root, 2**64 - 1, secrets.randbits(63), NONCES_PER_HASH_RATE_RUN)
        rates.append(NONCES_PER_HASH_RATE_RUN / (time.perf_counter() - started))
    return {
        "runs": HASH_RATE_RUNS,
        "nonces_per_run": NONCES_PER_HASH_RATE_RUN,
        "nonces_per_second_median": round(statistics.median(rates)),
    }


def measure_local_work(work_seconds: float, max_roots: int) -> dict[str, Any]:
    """Search for work at the real threshold on random roots until the time or root cap."""
    durations: list[float] = []
    deadline = time.monotonic() + work_seconds
    while len(durations) < max_roots and time.monotonic() < deadline:
        root = secrets.token_hex(32).upper()
        started = time.perf_counter()
        work = generate_work_local(root, WORK_THRESHOLD)
        durations.append(time.perf_counter() - started)
        assert is_valid_work(root, work)

    # The threshold leaves one valid nonce in 2**23 on average.
    expected_nonces = 2**64 / (2**64 - WORK_THRESHOLD)
    return {
        "threshold": f"{WORK_THRESHOLD:016x}",
        "roots": len(durations),
        "time_cap_seconds": work_seconds,
        "seconds_median": round(statistics.median(durations), 3),
        "seconds_mean": round(statistics.fmean(durations), 3),
        "seconds_min": round(min(durations), 3),
        "seconds_max": round(max(durations), 3),
        "expected_nonces_per_root": round(expected_nonces),
    }


async def _search_while_ticking(generator: LocalWorkGenerator, root: str) -> list[float]:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last_tick = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(TICK_SECONDS)
            now = time.perf_counter()
            gaps.append(now - last_tick)
            last_tick = now

    ticker_task = asyncio.create_task(ticker())
    try:
        work = await generator.generate(root, WORK_THRESHOLD)
    finally:
        stop.set()
        await ticker_task
    assert is_valid_work(root, work)
    return gaps


async def _measure_event_loop(roots: int) -> dict[str, Any]:
    generator = LocalWorkGenerator(processes=1)
    try:
        # The first search also starts the worker process; it is measured like the others.
        gaps = [
            gap
            for _ in range(roots)
            for gap in await _search_while_ticking(generator, secrets.token_hex(32).upper())
        ]
        final_chunk_iterations = generator.chunk_iterations
    finally:
        await generator.aclose()

    max_gap = max(gaps)
    return {
        "roots": roots,
        "tick_seconds": TICK_SECONDS,
        "ticks": len(gaps),
        "max_gap_seconds": round(max_gap, 4),
        "median_gap_seconds": round(statistics.median(gaps), 4),
        "max_gap_target_seconds": MAX_TICK_GAP_TARGET_SECONDS,
        "max_gap_within_target": max_gap < MAX_TICK_GAP_TARGET_SECONDS,
        "final_chunk_iterations": final_chunk_iterations,
    }


def measure_event_loop(roots: int) -> dict[str, Any]:
    """Search for work at the real threshold in a worker process and time the loop's ticks."""
    return asyncio.run(_measure_event_loop(roots))


def main() -> None:
    """Run every measurement, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work-seconds",
        type=float,
        default=180.0,
        help="time budget in seconds for the local work roots (the last root may run over)",
    )
    parser.add_argument(
        "--max-roots", type=int, default=40, help="maximum number of random roots to search"
    )
    parser.add_argument(
        "--loop-roots",
        type=int,
        default=5,
        help="number of roots searched in a worker process while the event loop is timed",
    )
    arguments = parser.parse_args()

    results = {
        "benchmark": "banano_primitives",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "signing": measure_signing(),
        "work_hash_rate": measure_hash_rate(),
        "local_work": measure_local_work(arguments.work_seconds, arguments.max_roots),
        "event_loop_during_local_work": measure_event_loop(arguments.loop_roots),
    }

    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"Wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
