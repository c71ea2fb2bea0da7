"""A settlement process that a campaign can kill: settle, reconcile, repeat.

Run by hand::

    python -m tests.reliability.settle_child --db sqlite:///campaign.db \\
        --node http://127.0.0.1:PORT/ --rounds 3 [--announce]

With `--announce` the process writes one line per event to standard output
(`EVENT DETAIL`, for example `signed 12`) and waits for a line on standard input before it
goes on, so a driver can kill it at exactly that point. The campaigns start it through a
multiprocessing pipe instead (`child_process_main`), which does the same without
re-importing the modules for every life.

Events: `started`, the settlement steps (`created`, `signed`, `replied`, `submitted`,
`confirmed`, `failed`, each with the payout id), `settled` with the run's outcome after each
run, `reconciled` after each confirmation pass, and `idle` when `--until-idle` finds nothing
left to do. The operator account and the node wallet are the ones the settlement tests fund.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Protocol, TextIO

from sqlalchemy import func, select

from core.db.models import Accrual, AccrualStatus
from core.db.session import Database
from core.observability.logging import configure_logging
from core.services.payouts import unfinished_payout_ids
from core.services.settlement import RunOutcome, SettlementService
from tests.integration.settlement.helpers_world import build_stack, make_policy

TRIGGER = "reliability"
EXIT_OK = 0
EXIT_LOCK_NEVER_FREE = 3
EXIT_NOT_IDLE = 4

# Caps high enough that no campaign reaches them, so every accrual is paid by the end.
UNCAPPED = 10**9
# How long a new life waits for a dead predecessor's PostgreSQL session to end.
LOCK_RETRY_SECONDS = 0.05
LOCK_RETRIES = 400
IDLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ChildOptions:
    """What one settlement process needs; the fields map to the command's options."""

    database_url: str
    node_url: str
    lock_name: str
    search_path: str | None = None
    sender_kind: str = "local"
    rounds: int = 3
    until_idle: bool = False
    confirmation_timeout_seconds: float = 0.5
    rpc_timeout_seconds: float = 1.0
    log_path: str | None = None


class Channel(Protocol):
    """Where the process reports each event, and waits until it may go on."""

    def announce(self, event: str, detail: str) -> None:
        """Report `event` and block until the driver lets the process continue."""
        ...


class PipeChannel:
    """Events over a multiprocessing pipe: send (event, detail), then wait for any reply."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def announce(self, event: str, detail: str) -> None:
        self._connection.send((event, detail))
        self._connection.recv()


class LineChannel:
    """Events as lines on `output`; with `wait`, a line on `reply` lets the process go on."""

    def __init__(self, output: TextIO, reply: TextIO, *, wait: bool) -> None:
        self._output = output
        self._reply = reply
        self._wait = wait

    def announce(self, event: str, detail: str) -> None:
        print(f"{event} {detail}".rstrip(), file=self._output, flush=True)
        if self._wait and not self._reply.readline():
            raise EOFError("the driver closed standard input")


class SilentChannel:
    """No driver: events are dropped."""

    def announce(self, event: str, detail: str) -> None:
        return None


async def is_idle(db: Database) -> bool:
    """Return True when no payout is unfinished and no open accrual is unclaimed."""
    async with db.read() as session:
        if await unfinished_payout_ids(session):
            return False
        unclaimed = await session.scalar(
            select(func.count(Accrual.id)).where(
                Accrual.status == AccrualStatus.OPEN, Accrual.payout_id.is_(None)
            )
        )
    return not unclaimed


async def settle(options: ChildOptions, channel: Channel) -> int:
    """Run `options.rounds` settlements, each followed by a reconciliation; return the exit code."""
    db = Database.from_url(options.database_url, search_path=options.search_path)

    async def announce_step(step: str, payout_id: int) -> None:
        channel.announce(step, str(payout_id))

    policy = make_policy(
        daily_payouts=UNCAPPED, weekly_payouts=UNCAPPED, lock_name=options.lock_name
    )
    stack = build_stack(
        db,
        options.node_url,
        policy,
        step_hook=announce_step,
        sender_kind=options.sender_kind,
        confirmation_timeout=timedelta(seconds=options.confirmation_timeout_seconds),
        rpc_timeout_seconds=options.rpc_timeout_seconds,
    )
    try:
        channel.announce("started", str(os.getpid()))
        return await _settle_rounds(options, channel, stack.service, db)
    finally:
        await stack.aclose()
        await db.dispose()


async def _settle_rounds(
    options: ChildOptions, channel: Channel, service: SettlementService, db: Database
) -> int:
    rounds = 0
    lock_waits = 0
    while rounds < options.rounds:
        report = await service.run(TRIGGER)
        if report.outcome is RunOutcome.SKIPPED_LOCKED:
            # A killed predecessor's PostgreSQL session ends a moment after the process.
            lock_waits += 1
            if lock_waits > LOCK_RETRIES:
                return EXIT_LOCK_NEVER_FREE
            await asyncio.sleep(LOCK_RETRY_SECONDS)
            continue
        channel.announce("settled", report.outcome.value)
        await service.confirm()
        channel.announce("reconciled", "")
        rounds += 1
        if options.until_idle:
            if await is_idle(db):
                channel.announce("idle", "")
                return EXIT_OK
            await asyncio.sleep(IDLE_POLL_SECONDS)
    return EXIT_NOT_IDLE if options.until_idle else EXIT_OK


def log_to_file(log_path: str | None) -> None:
    """Append this process's log lines, debug ones included, to `log_path` as JSON.

    No secrets are given to the redactor on purpose: the campaign checks that none is ever
    logged in the first place. The file stays open until the process ends. Nothing is
    appended when `log_path` is None.
    """
    if log_path is None:
        return
    log_file = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
    configure_logging(log_format="json", level="DEBUG", secrets=(), stream=log_file)


def child_process_main(options: ChildOptions, connection: Connection) -> None:
    """Entry point of a campaign's child process, started through multiprocessing."""
    log_to_file(options.log_path)
    sys.exit(asyncio.run(settle(options, PipeChannel(connection))))


def parse_args(argv: list[str] | None = None) -> tuple[ChildOptions, bool]:
    """Parse the command line into options and whether to announce events."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.settle_child",
        description="Settle and reconcile against a database and a sandbox Banano node.",
    )

    parser.add_argument("--db", required=True, help="database URL (sqlite or postgresql)")
    parser.add_argument("--search-path", default=None, help="PostgreSQL schema of the tables")
    parser.add_argument("--node", required=True, help="RPC URL of the sandbox Banano node")
    parser.add_argument("--lock-name", default="settlement", help="settlement lease name")

    parser.add_argument("--sender", choices=["local", "wallet"], default="local")
    parser.add_argument("--rounds", type=int, default=3, help="settlement runs to make")
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="stop early once no payout is unfinished and no accrual is open; exit 4 if not",
    )
    parser.add_argument(
        "--confirmation-timeout", type=float, default=0.5, help="seconds before a resubmit"
    )

    parser.add_argument("--log", default=None, help="append JSON log lines to this file")
    parser.add_argument(
        "--announce",
        action="store_true",
        help="print each event and wait for a line on standard input before going on",
    )
    args = parser.parse_args(argv)

    options = ChildOptions(
        database_url=args.db,
        node_url=args.node,
        lock_name=args.lock_name,
        search_path=args.search_path,
        sender_kind=args.sender,
        rounds=args.rounds,
        until_idle=args.until_idle,
        confirmation_timeout_seconds=args.confirmation_timeout,
        log_path=args.log,
    )
    return options, args.announce


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    options, announce = parse_args(argv)
    channel: Channel = (
        LineChannel(sys.stdout, sys.stdin, wait=True) if announce else SilentChannel()
    )
    if options.log_path is None:
        # Standard output carries the events, so log lines go to standard error.
        configure_logging(log_format="console", level="INFO", secrets=(), stream=sys.stderr)
    log_to_file(options.log_path)
    return asyncio.run(settle(options, channel))


if __name__ == "__main__":
    sys.exit(main())
