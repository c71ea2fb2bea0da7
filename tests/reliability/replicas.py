"""Replica campaign: two settlement processes on one database, and the settling one is killed.

Two replicas (`replica_child`) share one database (a PostgreSQL schema or a SQLite file) and
the campaign's sandbox node. Each cycle adds accruals, waits until one replica creates a
payout (it holds the lock and is in the middle of a run), kills it with SIGKILL and watches
the other. The survivor must take the lock and finish a run within its first two runs that
start after the kill. Counting runs keeps the check free of wall-clock thresholds. The dead
replica is then restarted.

Violations reported:
- two replicas held the lock at once: the intervals the replicas report overlap, or two
  completed runs in `settlement_runs` overlap;
- the survivor did not take over within two of its runs;
- anything `invariants.check_anytime` finds after a takeover, and `invariants.check_final`
  after both replicas are stopped and a clean run has settled everything.

A killed replica's lock is free at once: PostgreSQL frees the advisory lock when the dead
process's connection closes, and on SQLite the kernel drops the dead process's lock on the
lease file beside the database. The replicas still use a lease time-to-live no longer than
the interval. If the lease file failed, the survivor's second run would then take the
expired lease.

Run::

    python -m tests.reliability.replicas --kills 20 [--db postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from core.db.models import SettlementRun
from core.db.session import Database
from core.observability.logging import configure_logging
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import RunOutcome
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    OPERATOR_SEED,
    WALLET_ID,
    build_stack,
    fund_operator,
    make_policy,
    operator_key,
)
from tests.reliability.children import STUCK_SECONDS, Child, ChildLauncher
from tests.reliability.databases import (
    CampaignDatabase,
    DatabaseKind,
    campaign_database,
)
from tests.reliability.invariants import check_anytime, check_final
from tests.reliability.log_scan import read_logs, secret_hits
from tests.reliability.replica_child import ReplicaOptions, replica_process_main
from tests.reliability.settle_child import UNCAPPED, is_idle
from tests.reliability.world import CampaignWorld, payout_counts, sent_raw

TAKEOVER_RUNS = 2
DRAIN_ROUNDS = 60
DRAIN_PAUSE_SECONDS = 0.1
# Generous bound on one cycle; reaching it is reported as a violation, never as a pass.
CYCLE_LIMIT_SECONDS = 120.0
# Outcomes of a run that held the lock.
_HELD_LOCK = frozenset(outcome.value for outcome in RunOutcome) - {RunOutcome.SKIPPED_LOCKED}


@dataclass(frozen=True)
class ReplicaCampaignConfig:
    """Settings of one replica campaign."""

    kills: int = 3
    database: DatabaseKind = "sqlite"
    seed: int = 1
    players: int = 4
    interval_seconds: float = 1.5
    lock_ttl_seconds: float = 1.5
    lock_name: str = "settlement-replica-campaign"


@dataclass
class ReplicaCampaignReport:
    """What a replica campaign did and found."""

    config: ReplicaCampaignConfig
    kills: int = 0
    takeover_runs: Counter[int] = field(default_factory=Counter)
    takeover_seconds: list[float] = field(default_factory=list)
    run_outcomes: Counter[str] = field(default_factory=Counter)
    lock_intervals: int = 0
    payouts: dict[str, int] = field(default_factory=dict)
    sent_raw: int = 0
    violations: list[str] = field(default_factory=list)
    lock_lost_lines: int = 0
    secrets_in_logs: dict[str, int] = field(default_factory=dict)
    log_lines: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        """Return the figures as plain values, for printing as JSON."""
        return {
            "database": self.config.database,
            "seed": self.config.seed,
            "interval_seconds": self.config.interval_seconds,
            "kills": self.kills,
            "takeover_within_runs": dict(sorted(self.takeover_runs.items())),
            "takeover_seconds_max": round(max(self.takeover_seconds, default=0.0), 2),
            "run_outcomes": dict(sorted(self.run_outcomes.items())),
            "lock_intervals": self.lock_intervals,
            "payouts": self.payouts,
            "sent_raw": str(self.sent_raw),
            "violations": len(self.violations),
            "lock_lost_log_lines": self.lock_lost_lines,
            "secrets_in_logs": sum(self.secrets_in_logs.values()),
            "log_lines": self.log_lines,
            "seconds": round(self.seconds, 1),
        }


class Replica:
    """One replica process and what it reported."""

    def __init__(self, name: str, child: Child) -> None:
        self.name = name
        self.child = child
        self.acquired_at: float | None = None
        self.intervals: list[tuple[float, float]] = []
        self.killed_at: float | None = None


class _Cycle:
    """The kill and takeover being watched in the current cycle."""

    def __init__(self) -> None:
        self.armed = True
        self.victim: Replica | None = None
        self.killed_at = 0.0
        self.survivor_runs = 0
        self.done = asyncio.Event()


class ReplicaCampaign:
    """Runs the replicas, reads their events, kills the settling one and checks the takeover."""

    def __init__(
        self,
        config: ReplicaCampaignConfig,
        target: CampaignDatabase,
        node: SandboxBananoNode,
        log_path: Path,
        report: ReplicaCampaignReport,
    ) -> None:
        self._config = config
        self._target = target
        self._node = node
        self._log_path = log_path
        self._report = report
        self._launcher = ChildLauncher()
        self._names = (f"replica-{number}" for number in itertools.count(1))
        self.replicas: list[Replica] = []
        self.dead: list[Replica] = []
        self._pumps: set[asyncio.Task[None]] = set()
        self._cycle: _Cycle | None = None

    def start_replica(self) -> Replica:
        """Start a replica process and a task that reads its events."""
        options = ReplicaOptions(
            database_url=self._target.url,
            search_path=self._target.search_path,
            node_url=self._node.base_url,
            lock_name=self._config.lock_name,
            interval_seconds=self._config.interval_seconds,
            lock_ttl_seconds=self._config.lock_ttl_seconds,
            log_path=str(self._log_path),
        )
        replica = Replica(next(self._names), self._launcher.start(options, replica_process_main))
        self.replicas.append(replica)
        pump = asyncio.create_task(self._pump(replica))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        return replica

    async def run_cycle(self) -> None:
        """Arm a kill, wait for the takeover, and restart the killed replica."""
        cycle = _Cycle()
        self._cycle = cycle
        try:
            await asyncio.wait_for(cycle.done.wait(), CYCLE_LIMIT_SECONDS)
        except TimeoutError:
            self._report.violations.append(
                f"cycle {self._report.kills + 1} saw no kill and takeover within "
                f"{CYCLE_LIMIT_SECONDS} s"
            )
        finally:
            self._cycle = None
        if cycle.victim is not None:
            await cycle.victim.child.reap()
            self.start_replica()

    async def stop_all(self) -> None:
        """Kill every replica, wait for them, and stop reading their events."""
        for replica in list(self.replicas):
            self._kill(replica)
        for replica in self.dead:
            await replica.child.reap()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    def _kill(self, replica: Replica) -> None:
        replica.killed_at = time.monotonic()
        replica.child.kill()
        if replica.acquired_at is not None:
            # It held the lock until it died, at the latest.
            replica.intervals.append((replica.acquired_at, replica.killed_at))
            replica.acquired_at = None
        self.replicas.remove(replica)
        self.dead.append(replica)

    async def _pump(self, replica: Replica) -> None:
        while True:
            try:
                event = await replica.child.next_event(STUCK_SECONDS)
            except TimeoutError:
                self._report.violations.append(f"{replica.name} reported nothing for a minute")
                return
            if event is None or replica.child.killed:
                return
            self._handle(replica, event.name, event.detail)
            if replica.killed_at is not None:
                return
            replica.child.go()

    def _handle(self, replica: Replica, name: str, detail: str) -> None:
        cycle = self._cycle
        if name == "acquired":
            replica.acquired_at = float(detail)
        elif name == "releasing":
            if replica.acquired_at is not None:
                replica.intervals.append((replica.acquired_at, float(detail)))
            replica.acquired_at = None
        elif name == "created" and cycle is not None and cycle.armed:
            cycle.armed = False
            cycle.victim = replica
            self._kill(replica)
            cycle.killed_at = replica.killed_at or time.monotonic()
            self._report.kills += 1
        elif name == "ran":
            outcome, started_text = detail.split()
            self._report.run_outcomes[outcome] += 1
            if cycle is not None and cycle.victim is not None and not cycle.done.is_set():
                self._count_survivor_run(cycle, outcome, float(started_text))

    def _count_survivor_run(self, cycle: _Cycle, outcome: str, started: float) -> None:
        if started <= cycle.killed_at:
            return
        cycle.survivor_runs += 1
        if outcome in _HELD_LOCK:
            self._report.takeover_runs[cycle.survivor_runs] += 1
            self._report.takeover_seconds.append(time.monotonic() - cycle.killed_at)
            if cycle.survivor_runs > TAKEOVER_RUNS:
                self._report.violations.append(
                    f"the survivor took over in its run {cycle.survivor_runs} after the kill"
                )
            cycle.done.set()
        elif cycle.survivor_runs >= TAKEOVER_RUNS + 1:
            self._report.violations.append(
                f"the survivor had not taken over after {cycle.survivor_runs} runs"
            )
            cycle.done.set()

    def overlapping_intervals(self) -> list[str]:
        """Return a line for each pair of reported lock intervals that overlap."""
        intervals = sorted(
            (start, end, replica.name)
            for replica in self.replicas + self.dead
            for start, end in replica.intervals
        )
        self._report.lock_intervals = len(intervals)
        found: list[str] = []
        for (_, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(intervals):
            if start_b < end_a:
                found.append(
                    f"{name_a} held the lock until {end_a:.3f} and {name_b} from {start_b:.3f}"
                )
        return found


async def overlapping_runs(db: Database) -> list[str]:
    """Return a line for each pair of finished settlement runs whose times overlap."""
    async with db.read() as session:
        rows = await session.execute(
            select(SettlementRun.id, SettlementRun.started_at, SettlementRun.finished_at)
            .where(SettlementRun.outcome.in_(["completed", "failed"]))
            .order_by(SettlementRun.started_at)
        )
        runs = [(run_id, started, finished) for run_id, started, finished in rows.all()]
    found: list[str] = []
    for (id_a, _, end_a), (id_b, start_b, _) in itertools.pairwise(runs):
        if end_a is not None and start_b < end_a:
            found.append(f"settlement runs {id_a} and {id_b} overlap")
    return found


async def _drain(db: Database, node: SandboxBananoNode, config: ReplicaCampaignConfig) -> bool:
    policy = make_policy(
        daily_payouts=UNCAPPED, weekly_payouts=UNCAPPED, lock_name=config.lock_name
    )
    stack = build_stack(db, node.base_url, policy, confirmation_timeout=timedelta(seconds=0.5))
    try:
        for _ in range(DRAIN_ROUNDS):
            await stack.service.run("reliability")
            await stack.service.confirm()
            if await is_idle(db):
                return True
            await asyncio.sleep(DRAIN_PAUSE_SECONDS)
        return False
    finally:
        await stack.aclose()


async def run_replica_campaign(
    config: ReplicaCampaignConfig, workdir: Path
) -> ReplicaCampaignReport:
    """Run the campaign with its files in `workdir` and return its report."""
    started = time.monotonic()
    report = ReplicaCampaignReport(config)
    rng = random.Random(config.seed)
    log_path = workdir / "replicas.log"
    node = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
    await node.start()
    fund_operator(node)
    try:
        async with campaign_database(config.database, workdir) as target:
            db = target.open()
            try:
                await _run_cycles(config, target, db, node, rng, log_path, report)
            finally:
                await db.dispose()
    finally:
        await node.stop()

    log_text = read_logs([log_path])
    report.log_lines = len(log_text.splitlines())
    report.lock_lost_lines = sum(
        1 for line in log_text.splitlines() if "lease_lost" in line or "lock_lost" in line
    )
    secrets = {
        "operator seed": OPERATOR_SEED,
        "operator private key": operator_key().private_key.hex(),
        "node wallet id": WALLET_ID,
    }
    report.secrets_in_logs = secret_hits(log_text, secrets)
    report.seconds = time.monotonic() - started
    return report


async def _run_cycles(
    config: ReplicaCampaignConfig,
    target: CampaignDatabase,
    db: Database,
    node: SandboxBananoNode,
    rng: random.Random,
    log_path: Path,
    report: ReplicaCampaignReport,
) -> None:
    world = CampaignWorld(db, rng, salt=f"replicas-{config.seed}-")
    await world.add_players(config.players)
    campaign = ReplicaCampaign(config, target, node, log_path, report)
    campaign.start_replica()
    campaign.start_replica()
    try:
        for cycle_number in range(1, config.kills + 1):
            await world.add_accruals(config.players)
            await campaign.run_cycle()
            found = await check_anytime(db, node, world.players, world.created_raw)
            report.violations.extend(f"after cycle {cycle_number}: {text}" for text in found)
    finally:
        await campaign.stop_all()

    report.violations.extend(campaign.overlapping_intervals())
    report.violations.extend(await overlapping_runs(db))
    if not await _drain(db, node, config):
        report.violations.append("the clean run after the replicas never finished")
    found = await check_final(db, node, world.players, world.created_raw)
    report.violations.extend(f"after the clean run: {text}" for text in found)
    report.payouts = await payout_counts(db)
    report.sent_raw = sent_raw(node, world.players)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign from the command line; exit 1 when anything was found."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.replicas",
        description="Kill the settling one of two replicas and check the takeover.",
    )
    parser.add_argument("--kills", type=int, default=20, help="replicas to kill")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between runs")
    args = parser.parse_args(argv)
    configure_logging(log_format="console", level="WARNING", secrets=())

    config = ReplicaCampaignConfig(
        kills=args.kills,
        database=args.db,
        seed=args.seed,
        interval_seconds=args.interval,
        lock_ttl_seconds=args.interval,
    )
    with tempfile.TemporaryDirectory(prefix="p2s-replicas-") as workdir:
        report = asyncio.run(run_replica_campaign(config, Path(workdir)))

    for line in report.violations[:50]:
        print(line, file=sys.stderr)
    print(json.dumps(report.summary(), indent=2))
    return 1 if report.violations or report.secrets_in_logs else 0


if __name__ == "__main__":
    sys.exit(main())
