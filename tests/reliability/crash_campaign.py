"""Crash campaign: kill settlement processes with SIGKILL and check the money rules after each.

The campaign runs the sandbox Banano node itself, so its ledger outlives every child. Each
life of a child settles and reconciles a few times (`settle_child`) and is killed:

- every other life at a state transition, in turn. The child reports each step and waits,
  and the campaign kills it at the Nth report of one step. `SWEEP_POINTS` lists the steps
  in order: after the payout row is committed, after the block is stored, after the node
  applied it but before the reply was recorded, after `submitted`, after `confirmed`, after
  a run and after a reconciliation pass;
- the other lives at a random moment, anywhere in a run: mid-request, mid-transaction or
  while computing work.

Between lives the campaign adds accruals, as the poller would, and checks
`invariants.check_anytime` against the database and the sandbox ledger. After the last
kill, a clean child runs until nothing is left to do and `invariants.check_final` must hold
as well. Child logs go to a file that is searched for the operator seed, the operator's
private key and the node wallet id.

Run::

    python -m tests.reliability.crash_campaign --kills 1000 [--db postgresql] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.observability.logging import configure_logging
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    OPERATOR_SEED,
    WALLET_ID,
    fund_operator,
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
from tests.reliability.settle_child import ChildOptions
from tests.reliability.world import CampaignWorld, payout_counts, sent_raw

STEPS_TO_SWEEP = (
    "created",
    "signed",
    "replied",
    "submitted",
    "confirmed",
    "settled",
    "reconciled",
)
# (step, n): kill at the nth report of `step` in a life. "started" comes once per life.
SWEEP_POINTS: tuple[tuple[str, int], ...] = (
    ("started", 1),
    *((step, occurrence) for occurrence in (1, 2, 3) for step in STEPS_TO_SWEEP),
)
FINAL_RUN_ROUNDS = 60
# Random kills fall within this multiple of a typical life's length.
RANDOM_WINDOW_FACTOR = 1.2
DEFAULT_RANDOM_WINDOW_SECONDS = 0.3


@dataclass(frozen=True)
class CrashCampaignConfig:
    """Settings of one crash campaign."""

    kills: int = 50
    database: DatabaseKind = "sqlite"
    sender_kind: str = "local"
    seed: int = 1
    players: int = 6
    rounds_per_life: int = 3
    # The node confirms each block this long after applying it, so some payouts are still
    # `submitted` when a child dies.
    confirmation_delay_seconds: float = 0.02
    lock_name: str = "settlement-crash-campaign"


@dataclass
class CrashCampaignReport:
    """What a crash campaign did and found."""

    config: CrashCampaignConfig
    kills: int = 0
    lives: int = 0
    clean_exits: int = 0
    kills_by_step: Counter[str] = field(default_factory=Counter)
    random_kills: int = 0
    accruals: int = 0
    payouts: dict[str, int] = field(default_factory=dict)
    sent_raw: int = 0
    violations: list[str] = field(default_factory=list)
    child_errors: list[str] = field(default_factory=list)
    secrets_in_logs: dict[str, int] = field(default_factory=dict)
    log_lines: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        """Return the figures as plain values, for printing as JSON."""
        return {
            "database": self.config.database,
            "sender": self.config.sender_kind,
            "seed": self.config.seed,
            "kills": self.kills,
            "kills_at_steps": dict(sorted(self.kills_by_step.items())),
            "random_kills": self.random_kills,
            "lives": self.lives,
            "clean_exits": self.clean_exits,
            "accruals": self.accruals,
            "payouts": self.payouts,
            "sent_raw": str(self.sent_raw),
            "violations": len(self.violations),
            "child_errors": len(self.child_errors),
            "secrets_in_logs": sum(self.secrets_in_logs.values()),
            "log_lines": self.log_lines,
            "seconds": round(self.seconds, 1),
        }


class _Life:
    """How one child life is to end: at a sweep point, or a random delay after it started."""

    def __init__(self, point: tuple[str, int] | None, delay: float | None) -> None:
        self.point = point
        self.delay = delay
        self.deadline: float | None = None
        self.seen: Counter[str] = Counter()
        self.last_event = "none"
        self.started_at: float | None = None


async def _drive(child: Child, life: _Life, report: CrashCampaignReport) -> None:
    """Let the child run until its planned kill, or until it exits by itself."""
    loop = asyncio.get_running_loop()
    while True:
        timeout = STUCK_SECONDS
        if life.deadline is not None:
            timeout = life.deadline - loop.time()
            if timeout <= 0:
                if child.kill():
                    report.random_kills += 1
                    report.kills_by_step[f"random after {life.last_event}"] += 1
                return
        try:
            event = await child.next_event(timeout)
        except TimeoutError:
            if life.deadline is not None and loop.time() >= life.deadline:
                continue
            report.child_errors.append(f"child {child.pid} reported nothing for {timeout} s")
            child.kill()
            return
        if event is None:
            return

        life.seen[event.name] += 1
        life.last_event = event.name
        if event.name == "started":
            life.started_at = loop.time()
            if life.delay is not None:
                life.deadline = life.started_at + life.delay
        if event.name == "settled" and event.detail == "failed":
            report.child_errors.append(f"child {child.pid}: a settlement run failed")
        if life.point is not None and life.point == (event.name, life.seen[event.name]):
            child.kill()
            report.kills_by_step[event.name] += 1
            return
        child.go()


async def _final_clean_run(
    launcher: ChildLauncher, options: ChildOptions, report: CrashCampaignReport
) -> None:
    child = launcher.start(options)
    while True:
        event = await child.next_event()
        if event is None:
            break
        if event.name == "settled" and event.detail == "failed":
            report.child_errors.append("the final clean run had a failed settlement")
        child.go()
    exitcode = await child.reap()
    if exitcode != 0:
        report.child_errors.append(f"the final clean run exited with {exitcode}")


async def run_crash_campaign(
    config: CrashCampaignConfig, workdir: Path, *, progress: bool = False
) -> CrashCampaignReport:
    """Run the campaign in `workdir` (database file and child logs) and return its report."""
    started = time.monotonic()
    report = CrashCampaignReport(config)
    rng = random.Random(config.seed)
    log_path = workdir / "children.log"
    node = SandboxBananoNode(
        work_threshold=LOW_WORK_THRESHOLD, confirmation_delay=config.confirmation_delay_seconds
    )
    await node.start()
    fund_operator(node)
    launcher = ChildLauncher()
    try:
        async with campaign_database(config.database, workdir) as target:
            await _run_lives(config, target, node, launcher, rng, log_path, report, progress)
    finally:
        await node.stop()

    log_text = read_logs([log_path])
    report.log_lines = len(log_text.splitlines())
    secrets = {
        "operator seed": OPERATOR_SEED,
        "operator private key": operator_key().private_key.hex(),
        "node wallet id": WALLET_ID,
    }
    report.secrets_in_logs = secret_hits(log_text, secrets)
    report.seconds = time.monotonic() - started
    return report


async def _run_lives(
    config: CrashCampaignConfig,
    target: CampaignDatabase,
    node: SandboxBananoNode,
    launcher: ChildLauncher,
    rng: random.Random,
    log_path: Path,
    report: CrashCampaignReport,
    progress: bool,
) -> None:
    db = target.open()
    try:
        world = CampaignWorld(db, rng, salt=f"crash-{config.seed}-")
        await world.add_players(config.players)
        options = ChildOptions(
            database_url=target.url,
            node_url=node.base_url,
            lock_name=config.lock_name,
            search_path=target.search_path,
            sender_kind=config.sender_kind,
            rounds=config.rounds_per_life,
            log_path=str(log_path),
        )
        sweep = itertools.cycle(SWEEP_POINTS)
        life_seconds: list[float] = []
        loop = asyncio.get_running_loop()

        while report.kills < config.kills:
            await world.add_accruals(rng.randint(0, config.players))
            if report.lives % 2 == 0:
                life = _Life(next(sweep), None)
            else:
                window = DEFAULT_RANDOM_WINDOW_SECONDS
                if life_seconds:
                    window = statistics.median(life_seconds[-20:]) * RANDOM_WINDOW_FACTOR
                life = _Life(None, rng.uniform(0.0, window))

            child = launcher.start(options)
            report.lives += 1
            await _drive(child, life, report)
            exitcode = await child.reap()
            if life.started_at is not None and not child.killed:
                # Only lives that ran to their end measure how long a whole life takes.
                life_seconds.append(loop.time() - life.started_at)

            if child.killed:
                report.kills += 1
            elif exitcode == 0:
                report.clean_exits += 1
            else:
                report.child_errors.append(f"child {child.pid} exited with {exitcode}")

            found = await check_anytime(db, node, world.players, world.created_raw)
            report.violations.extend(f"after life {report.lives}: {text}" for text in found)
            if progress and report.lives % 50 == 0:
                print(
                    f"lives {report.lives} kills {report.kills} violations "
                    f"{len(report.violations)}",
                    file=sys.stderr,
                    flush=True,
                )

        final_options = ChildOptions(
            database_url=target.url,
            node_url=node.base_url,
            lock_name=config.lock_name,
            search_path=target.search_path,
            sender_kind=config.sender_kind,
            rounds=FINAL_RUN_ROUNDS,
            until_idle=True,
            log_path=str(log_path),
        )
        await _final_clean_run(launcher, final_options, report)
        found = await check_final(db, node, world.players, world.created_raw)
        report.violations.extend(f"after the final clean run: {text}" for text in found)

        report.accruals = world.accruals_created
        report.payouts = await payout_counts(db)
        report.sent_raw = sent_raw(node, world.players)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the campaign from the command line; exit 1 when anything was found."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.crash_campaign",
        description="Kill settlement processes with SIGKILL and check the money rules.",
    )
    parser.add_argument("--kills", type=int, default=1000, help="SIGKILLs to deliver")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sender", choices=["local", "wallet"], default="local")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--players", type=int, default=6, help="players to pay")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    args = parser.parse_args(argv)
    configure_logging(log_format="console", level="WARNING", secrets=())

    config = CrashCampaignConfig(
        kills=args.kills,
        database=args.db,
        sender_kind=args.sender,
        seed=args.seed,
        players=args.players,
    )
    with tempfile.TemporaryDirectory(prefix="p2s-crash-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run_crash_campaign(config, workdir, progress=True))

    for line in report.violations[:50] + report.child_errors[:20]:
        print(line, file=sys.stderr)
    print(json.dumps(report.summary(), indent=2))
    found = report.violations or report.child_errors or report.secrets_in_logs
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
