"""Benchmark payout sends per second with LocalSigner against the sandbox Banano node.

Run from the repository root:

    python -m tests.benchmarks.bench_banano_sends [--sends 500] [--runs 3] [--threshold HEX]

Each run opens a fresh operator account and sends `--sends` payouts one after another over real
HTTP on loopback. Each payout takes one `account_info`, signing, work and one `process`. Work
comes from a local worker process, which computes it for the next root while the previous send
is submitted. The node validates each block (signature, work, frontier, balance). The client
and the node share one process and one event loop, and the `on_signed` store is a no-op, so the
figures leave out database commits. Prints a summary and writes
tests/benchmarks/results/banano_sends.json.
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

import aiohttp
import structlog

from core.banano.keys import KeyPair
from core.banano.rpc import NodeClient
from core.banano.sender import LocalSigner, SendOutcome, SendRequest, SignedBlock
from core.banano.units import RAW_PER_BAN
from core.banano.work import LocalWorkGenerator
from core.banano.work_providers import LocalWorkProvider
from core.sandbox.banano_node import SandboxBananoNode
from tests.benchmarks.bench_banano_primitives import _cpu_model

RESULTS_PATH = Path(__file__).parent / "results" / "banano_sends.json"
PAYOUT_RAW = 21 * RAW_PER_BAN // 10


async def _store(_signed: SignedBlock) -> None:
    """Stand in for the database commit of the signed block."""


async def measure_run(
    node: SandboxBananoNode, session: aiohttp.ClientSession, sends: int, threshold: int
) -> dict[str, Any]:
    """Send `sends` payouts from a new operator account and return the rate and latencies."""
    operator = KeyPair.from_seed(secrets.token_hex(32), 0)
    player = KeyPair.from_seed(secrets.token_hex(32), 0)
    node.fund(operator.address, (sends + 1) * PAYOUT_RAW, key=operator)

    generator = LocalWorkGenerator(processes=1)
    client = NodeClient(node.base_url, session=session)
    signer = LocalSigner(client, operator, None, LocalWorkProvider(generator), threshold)
    try:
        await signer.precompute_next_work()
        latencies: list[float] = []
        started = time.perf_counter()
        for payout_id in range(1, sends + 1):
            request = SendRequest(payout_id, f"bench-{payout_id}", player.address, PAYOUT_RAW)
            send_started = time.perf_counter()
            result = await signer.send(request, _store)
            latencies.append(time.perf_counter() - send_started)
            if result.outcome is not SendOutcome.ACCEPTED:
                raise RuntimeError(f"send {payout_id} was not accepted: {result.reason}")
        elapsed = time.perf_counter() - started
    finally:
        if signer.work_cache is not None:
            await signer.work_cache.close()
        await generator.aclose()

    if node.total_sent_to(player.address) != sends * PAYOUT_RAW:
        raise RuntimeError("the ledger does not hold exactly the sends made")
    latencies.sort()
    return {
        "sends": sends,
        "seconds": round(elapsed, 3),
        "sends_per_second": round(sends / elapsed, 1),
        "latency_ms_median": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
    }


async def measure(sends: int, runs: int, threshold: int) -> dict[str, Any]:
    """Run the send benchmark `runs` times against one sandbox node."""
    node = SandboxBananoNode(work_threshold=threshold)
    await node.start()
    try:
        async with aiohttp.ClientSession() as session:
            run_results = [await measure_run(node, session, sends, threshold) for _ in range(runs)]
    finally:
        await node.stop()

    return {
        "threshold": f"{threshold:016x}",
        "sends_per_run": sends,
        "runs": run_results,
        "sends_per_second_median": statistics.median(
            run["sends_per_second"] for run in run_results
        ),
        "latency_ms_median_of_runs": statistics.median(
            run["latency_ms_median"] for run in run_results
        ),
    }


def main() -> None:
    """Run the benchmark, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=500, help="payouts sent per run")
    parser.add_argument(
        "--runs", type=int, default=3, help="number of runs (the median is reported)"
    )
    parser.add_argument(
        "--threshold",
        default="fff0000000000000",
        help="work threshold of the sandbox node as 16 hex digits (one valid nonce in 4096)",
    )
    arguments = parser.parse_args()
    # Per-request debug and info lines would dominate the measurement.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    sends_results = asyncio.run(
        measure(arguments.sends, arguments.runs, int(arguments.threshold, 16))
    )
    results = {
        "benchmark": "banano_sends",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "local_signer_sends": sends_results,
    }

    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"Wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
