"""Shared parts of the benchmarks: machine description, summaries, result files and options."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.observability.logging import configure_logging
from tests.benchmarks.datasets import RESULTS_DIR, parse_sizes

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DATABASES = ("sqlite", "postgresql")


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_mb() -> int | None:
    """Return the machine's memory in MiB from /proc/meminfo."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


# Taken when a benchmark process imports this module, before it measures anything.
LOAD_AVERAGE_AT_START = load_average()


def machine() -> dict[str, Any]:
    """Describe the machine, with its load when the benchmark started."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_mb": memory_total_mb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": LOAD_AVERAGE_AT_START,
    }


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values (fraction 0.95 is p95)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Summarize latencies given in seconds as milliseconds: median, p95, p99 and max."""
    ordered = sorted(seconds)
    return {
        "samples": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def write_result(name: str, results: dict[str, Any]) -> Path:
    """Write `results` to tests/benchmarks/results/<name>.json and return the path."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **results,
        "load_average_at_end": load_average(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {path}")
    return path


def quiet_production_logging() -> None:
    """Log as the bot does (JSON at INFO), but into /dev/null, so logging costs are counted."""
    configure_logging(
        log_format="json",
        level="INFO",
        secrets=[],
        stream=open(os.devnull, "w", encoding="utf-8"),  # noqa: SIM115
    )


def add_common_options(parser: argparse.ArgumentParser, *, default_players: str) -> None:
    """Add --players, --db and --quick."""
    parser.add_argument(
        "--players",
        default=default_players,
        help="comma-separated data set sizes in players, for example 1000,10000,100000",
    )
    parser.add_argument(
        "--db",
        default="sqlite",
        help="comma-separated databases: sqlite, postgresql (PostgreSQL at 127.0.0.1:5432/test)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and only the smallest sizes"
    )


def parse_databases(text: str) -> list[str]:
    """Parse --db into a list of database names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in DATABASES]
    if not names or unknown:
        raise SystemExit(f"invalid --db {text!r}: expected sqlite, postgresql or both")
    return names


def parse_players(text: str, *, quick: bool) -> list[int]:
    """Parse --players; --quick keeps only sizes up to 10,000."""
    sizes = parse_sizes(text)
    if quick:
        sizes = [size for size in sizes if size <= 10_000] or [min(sizes)]
    return sizes
