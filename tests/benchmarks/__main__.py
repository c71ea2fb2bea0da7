"""Run every benchmark, one process each, and print the figures they wrote.

Run from the repository root:

    python -m tests.benchmarks [--players 1000,10000,100000] [--db sqlite,postgresql]
        [--only commands,settlement,...] [--quick]

`--players` sets the data set sizes of the command benchmark; the memory and start-up
benchmarks use the largest of them. `--db` applies to the benchmarks that read a database
(PostgreSQL at 127.0.0.1:5432, database `test`, in a schema dropped afterwards). `--quick`
runs each benchmark briefly on small data sets, to check that they work. Results are
written to tests/benchmarks/results/*.json; docs/benchmarks.md explains them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from tests.benchmarks.datasets import RESULTS_DIR, parse_sizes

BENCHMARKS = (
    "banano_primitives",
    "banano_sends",
    "commands",
    "settlement",
    "poller",
    "loop_lag",
    "startup",
    "memory",
)


def arguments_for(name: str, players: list[int], databases: str, quick: bool) -> list[str]:
    """Return the command-line arguments of one benchmark."""
    largest = str(max(players))
    if name == "banano_primitives":
        return ["--work-seconds", "20", "--max-roots", "5"] if quick else []
    if name == "banano_sends":
        return ["--sends", "100", "--runs", "1"] if quick else []
    if name == "commands":
        return ["--players", ",".join(map(str, players)), "--db", databases] + (
            ["--quick"] if quick else []
        )
    if name in ("settlement", "poller", "loop_lag"):
        return ["--db", databases] + (["--quick"] if quick else [])
    # memory and startup
    return ["--quick"] if quick else ["--players", largest]


def main() -> None:
    """Run the chosen benchmarks in turn and print where their results are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", default="1000,10000,100000", help="data set sizes")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="short runs on small data sets")
    arguments = parser.parse_args()

    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
    players = parse_sizes(arguments.players)

    failed = []
    for name in chosen:
        command = [
            sys.executable,
            "-m",
            f"tests.benchmarks.bench_{name}",
            *arguments_for(name, players, arguments.db, arguments.quick),
        ]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        completed = subprocess.run(command, check=False)
        print(f"=== {name} finished in {time.monotonic() - started:.0f} s", flush=True)
        if completed.returncode != 0:
            failed.append(name)

    print("\nResults:")
    for name in chosen:
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            measured_at = json.loads(path.read_text(encoding="utf-8")).get("measured_at")
            print(f"  {path} (measured {measured_at})")
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
