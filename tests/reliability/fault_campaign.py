"""Node fault campaign: random sequences of sandbox node faults during settlement and retries.

Each round adds accruals, queues one to four faults drawn from `FAULT_MENU` on the sandbox
node, then runs a settlement, a confirmation pass and, now and then, an admin retry of a
failed payout. The faults cover what a node does wrong:
- replies that come too late, so the node applies the block after the client gave up;
- replies lost after the block was applied, HTTP 500 and malformed JSON;
- "Fork" and "Gap previous block" for blocks the node never saw;
- lookups that lag: "Block not found" for a block the node has;
- a confirmation that does not come for a few rounds and then comes;
- a real fork: a second wallet with the same seed sends from the operator account, and its
  block takes the place of a payout block still in flight.

After every round `invariants.check_anytime` must hold. At the end the faults stop, a fresh
set of services settles until nothing is left, and `invariants.check_final` must hold.

Run::

    python -m tests.reliability.fault_campaign --rounds 300 [--db postgresql] [--sender wallet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from core.banano.address import encode_address
from core.banano.blocks import build_send
from core.banano.sender import LocalSigner
from core.banano.work import generate_work_local, work_root
from core.db.models import Payout, PayoutState
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.payout_retry import retry_payout
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    OPERATOR_SEED,
    WALLET_ID,
    Stack,
    build_stack,
    fund_operator,
    make_policy,
    operator_key,
)
from tests.reliability.databases import DatabaseKind, campaign_database
from tests.reliability.invariants import check_anytime, check_final
from tests.reliability.log_scan import captured_log_lines, secret_hits
from tests.reliability.settle_child import UNCAPPED, is_idle
from tests.reliability.world import CampaignWorld, payout_counts, sent_raw

# The client gives up after this long. A delay fault longer than that makes the client give
# up, and the node still applies the request once the delay is over.
RPC_TIMEOUT_SECONDS = 0.25
LATE_REPLY_SECONDS = 0.4
CONFIRMATION_TIMEOUT = timedelta(seconds=0.2)
# An address that no campaign player owns, for the second wallet's sends.
OUTSIDER_ADDRESS = encode_address(bytes(range(1, 33)))
OUTSIDER_SEND_RAW = 10**29
DRAIN_ROUNDS = 80
DRAIN_PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class NodeFault:
    """A fault to queue on one node action."""

    name: str
    action: str
    build: Callable[[], Fault]


FAULT_MENU: tuple[NodeFault, ...] = (
    NodeFault("process late reply", "process", lambda: Fault.delay(LATE_REPLY_SECONDS)),
    NodeFault("process reply lost", "process", Fault.reply_lost_after_apply),
    NodeFault("process http 500", "process", Fault.http_500),
    NodeFault("process malformed json", "process", Fault.malformed_json),
    NodeFault("process fork", "process", lambda: Fault.error("Fork")),
    NodeFault("process gap previous", "process", lambda: Fault.error("Gap previous block")),
    NodeFault("send late reply", "send", lambda: Fault.delay(LATE_REPLY_SECONDS)),
    NodeFault("send reply lost", "send", Fault.reply_lost_after_apply),
    NodeFault("send http 500", "send", Fault.http_500),
    NodeFault("send malformed json", "send", Fault.malformed_json),
    NodeFault("block_info http 500", "block_info", Fault.http_500),
    NodeFault("block_info malformed json", "block_info", Fault.malformed_json),
    NodeFault("block_info late reply", "block_info", lambda: Fault.delay(LATE_REPLY_SECONDS)),
    NodeFault("block_info lagging", "block_info", lambda: Fault.error("Block not found")),
    NodeFault("account_info http 500", "account_info", Fault.http_500),
    NodeFault("account_info malformed json", "account_info", Fault.malformed_json),
    NodeFault("account_info late reply", "account_info", lambda: Fault.delay(LATE_REPLY_SECONDS)),
)
# Rounds a withheld confirmation lasts before the node confirms everything at once.
WITHHELD_CONFIRMATION_ROUNDS = (1, 4)
RETRY_CHANCE = 0.3
WITHHOLD_CHANCE = 0.15
OUTSIDER_CHANCE = 0.1


@dataclass(frozen=True)
class FaultCampaignConfig:
    """Settings of one node fault campaign."""

    rounds: int = 40
    database: DatabaseKind = "sqlite"
    sender_kind: str = "local"
    seed: int = 1
    players: int = 5
    lock_name: str = "settlement-fault-campaign"


@dataclass
class FaultCampaignReport:
    """What a node fault campaign did and found."""

    config: FaultCampaignConfig
    rounds: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    run_outcomes: Counter[str] = field(default_factory=Counter)
    accruals: int = 0
    payouts: dict[str, int] = field(default_factory=dict)
    sent_raw: int = 0
    violations: list[str] = field(default_factory=list)
    secrets_in_logs: dict[str, int] = field(default_factory=dict)
    log_lines: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        """Return the figures as plain values, for printing as JSON."""
        return {
            "database": self.config.database,
            "sender": self.config.sender_kind,
            "seed": self.config.seed,
            "rounds": self.rounds,
            "faults": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())),
            "retries": dict(sorted(self.retries.items())),
            "run_outcomes": dict(sorted(self.run_outcomes.items())),
            "accruals": self.accruals,
            "payouts": self.payouts,
            "sent_raw": str(self.sent_raw),
            "violations": len(self.violations),
            "secrets_in_logs": sum(self.secrets_in_logs.values()),
            "log_lines": self.log_lines,
            "seconds": round(self.seconds, 1),
        }


def _menu_for(stack: Stack) -> list[NodeFault]:
    # The local signer never calls `send` and the node-wallet sender never calls `process`.
    unused = "send" if isinstance(stack.sender, LocalSigner) else "process"
    return [fault for fault in FAULT_MENU if fault.action != unused]


def _send_from_second_wallet(node: SandboxBananoNode) -> None:
    """Apply and confirm a send of the operator account that the faucet did not make.

    It is built on the current frontier, so a payout block stored but not yet in the ledger,
    built on the same frontier, can never land any more.
    """
    key = operator_key()
    account = node.ledger.accounts[key.address]
    block = build_send(
        key,
        account.frontier,
        account.representative,
        account.balance_raw,
        OUTSIDER_SEND_RAW,
        OUTSIDER_ADDRESS,
    ).signed(key)
    block = block.with_work(generate_work_local(work_root(block), LOW_WORK_THRESHOLD))
    entry = node.ledger.apply(block, int(time.time()))
    node.confirm(entry.hash)


async def _failed_payout_ids(db: Database) -> list[int]:
    async with db.read() as session:
        rows = await session.scalars(select(Payout.id).where(Payout.state == PayoutState.FAILED))
        return list(rows)


def _build_stack(db: Database, node: SandboxBananoNode, config: FaultCampaignConfig) -> Stack:
    policy = make_policy(
        daily_payouts=UNCAPPED, weekly_payouts=UNCAPPED, lock_name=config.lock_name
    )
    return build_stack(
        db,
        node.base_url,
        policy,
        sender_kind=config.sender_kind,
        confirmation_timeout=CONFIRMATION_TIMEOUT,
        rpc_timeout_seconds=RPC_TIMEOUT_SECONDS,
    )


async def _fault_round(
    stack: Stack,
    node: SandboxBananoNode,
    world: CampaignWorld,
    rng: random.Random,
    report: FaultCampaignReport,
    withheld_rounds: int,
) -> int:
    """Run one round; return how many more rounds confirmation stays withheld."""
    await world.add_accruals(rng.randint(0, len(world.players)))

    if withheld_rounds == 0 and rng.random() < WITHHOLD_CHANCE:
        withheld_rounds = rng.randint(*WITHHELD_CONFIRMATION_ROUNDS)
        node.set_auto_confirm(False)
        report.faults["confirmation withheld"] += 1
    if rng.random() < OUTSIDER_CHANCE:
        _send_from_second_wallet(node)
        report.faults["send from a second wallet"] += 1
    menu = _menu_for(stack)
    for fault in rng.sample(menu, rng.randint(1, 4)):
        node.inject_fault(fault.action, fault.build(), times=rng.randint(1, 2))
        report.faults[fault.name] += 1

    settlement = await stack.service.run("reliability")
    report.run_outcomes[settlement.outcome.value] += 1
    await stack.service.confirm()

    failed = await _failed_payout_ids(stack.service.db)
    if failed and rng.random() < RETRY_CHANCE:
        outcome = await retry_payout(stack.service, rng.choice(failed), None)
        report.retries[outcome.kind.value] += 1
    node.clear_faults()

    if withheld_rounds > 0:
        withheld_rounds -= 1
        if withheld_rounds == 0:
            # The confirmation finally comes, for everything at once.
            node.set_auto_confirm(True)
            node.confirm_all()
    return withheld_rounds


async def _drain(db: Database, node: SandboxBananoNode, config: FaultCampaignConfig) -> bool:
    """Settle with fresh services and no faults until nothing is left; False if never idle."""
    node.clear_faults()
    node.set_auto_confirm(True)
    node.confirm_all()
    stack = _build_stack(db, node, config)
    try:
        for _ in range(DRAIN_ROUNDS):
            await stack.service.run("reliability")
            node.confirm_all()
            await stack.service.confirm()
            if await is_idle(db):
                return True
            # Unconfirmed payouts are resubmitted only after the confirmation time-out.
            await asyncio.sleep(DRAIN_PAUSE_SECONDS)
        return False
    finally:
        await stack.aclose()


async def run_fault_campaign(config: FaultCampaignConfig, workdir: Path) -> FaultCampaignReport:
    """Run the campaign with its database in `workdir` and return its report."""
    started = time.monotonic()
    report = FaultCampaignReport(config)
    rng = random.Random(config.seed)
    node = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
    with captured_log_lines(level="DEBUG") as logs:
        await node.start()
        fund_operator(node)
        try:
            async with campaign_database(config.database, workdir) as target:
                db = target.open()
                try:
                    await _run_rounds(config, db, node, rng, report)
                finally:
                    await db.dispose()
        finally:
            await node.stop()

    log_text = logs.getvalue()
    report.log_lines = len(log_text.splitlines())
    secrets = {
        "operator seed": OPERATOR_SEED,
        "operator private key": operator_key().private_key.hex(),
        "node wallet id": WALLET_ID,
    }
    report.secrets_in_logs = secret_hits(log_text, secrets)
    report.seconds = time.monotonic() - started
    return report


async def _run_rounds(
    config: FaultCampaignConfig,
    db: Database,
    node: SandboxBananoNode,
    rng: random.Random,
    report: FaultCampaignReport,
) -> None:
    world = CampaignWorld(db, rng, salt=f"faults-{config.seed}-")
    await world.add_players(config.players)
    stack = _build_stack(db, node, config)
    withheld_rounds = 0
    try:
        for round_number in range(1, config.rounds + 1):
            withheld_rounds = await _fault_round(stack, node, world, rng, report, withheld_rounds)
            report.rounds += 1
            found = await check_anytime(db, node, world.players, world.created_raw)
            report.violations.extend(f"after round {round_number}: {text}" for text in found)
    finally:
        await stack.aclose()

    if not await _drain(db, node, config):
        report.violations.append("the clean run after the faults never finished")
    found = await check_final(db, node, world.players, world.created_raw)
    report.violations.extend(f"after the clean run: {text}" for text in found)
    report.accruals = world.accruals_created
    report.payouts = await payout_counts(db)
    report.sent_raw = sent_raw(node, world.players)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign from the command line; exit 1 when anything was found."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.fault_campaign",
        description="Inject random sandbox node faults during settlement and check the rules.",
    )
    parser.add_argument("--rounds", type=int, default=500, help="fault rounds to run")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sender", choices=["local", "wallet"], default="local")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--players", type=int, default=5, help="players to pay")
    args = parser.parse_args(argv)

    config = FaultCampaignConfig(
        rounds=args.rounds,
        database=args.db,
        sender_kind=args.sender,
        seed=args.seed,
        players=args.players,
    )
    with tempfile.TemporaryDirectory(prefix="p2s-faults-") as workdir:
        report = asyncio.run(run_fault_campaign(config, Path(workdir)))

    for line in report.violations[:50]:
        print(line, file=sys.stderr)
    print(json.dumps(report.summary(), indent=2))
    return 1 if report.violations or report.secrets_in_logs else 0


if __name__ == "__main__":
    sys.exit(main())
