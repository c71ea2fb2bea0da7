"""The CLI commands for payouts: `settle once`, `payouts retry ID`, `payouts release-dry-run`,
`payouts pause` and `payouts resume`.

Each takes the same settlement lock and runs the same code as the scheduled settlement and the
admin slash commands. Running one while the bot settles is therefore safe: it does not wait
but reports that a settlement is running.

The handlers import the payout services and the bot runtime themselves, not this module,
because they are slow to import and `bot.cli` imports this module for every command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.cli_run import _add_config_dir, _configure_logging, _load
from core.banano.units import format_ban
from core.config import Settings
from core.db import Database
from core.errors import Pay2SlayError
from core.observability import Metrics

if TYPE_CHECKING:
    from core.services.settlement import SettlementReport, SettlementService

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
# Maximum length of a pause reason, as for /payouts-pause.
MAX_PAUSE_REASON_LENGTH = 500


def add_settlement_commands(commands: Subcommands) -> None:
    """Add `settle once`, `payouts retry`, `payouts release-dry-run`, `pause` and `resume`."""
    settle = commands.add_parser("settle", help="run a settlement outside the schedule")
    settle_commands = settle.add_subparsers(metavar="COMMAND", required=True)
    once = settle_commands.add_parser(
        "once",
        help="reconcile unfinished payouts, then run one settlement now",
        description=(
            "Run one settlement with the configured caps, order, batch size and balance floor, "
            "under the same lock as the scheduled runs. Prints what it paid or why it skipped. "
            "Exits 1 when the run failed."
        ),
    )
    _add_config_dir(once)
    once.set_defaults(handler=settle_once)

    payouts = commands.add_parser("payouts", help="retry payouts and go live after a dry run")
    payout_commands = payouts.add_subparsers(metavar="COMMAND", required=True)
    retry = payout_commands.add_parser(
        "retry",
        help="retry or re-check one payout, as /payout-retry does",
        description=(
            "A confirmed payout prints its block hash; one still in flight is checked against "
            "the ledger; a failed one is retried as a new payout of its accruals that no later "
            "payout claimed. Nothing is ever sent twice for the same accruals."
        ),
    )
    retry.add_argument("payout_id", type=int, help="id of the payout")
    _add_config_dir(retry)
    retry.set_defaults(handler=retry_payout_command)

    release = payout_commands.add_parser(
        "release-dry-run",
        help="go live: release the accruals that dry-run payouts claimed",
        description=(
            "Run once after setting dry_run to false. The accruals that dry-run payouts claimed "
            "become open again, so the next live settlement pays them; the dry-run payouts "
            "stay in the history with a note. Rejected while dry_run is true. --yes is required."
        ),
    )
    release.add_argument(
        "--yes", action="store_true", help="confirm that the next live settlement pays them"
    )
    _add_config_dir(release)
    release.set_defaults(handler=release_dry_run_command)

    pause = payout_commands.add_parser(
        "pause",
        help="pause payouts, as /payouts-pause does",
        description=(
            "Settlement runs skip until payouts are resumed; what players earn stays open. "
            "The reason is shown in /faucet-health and the skipped runs, and audited."
        ),
    )
    pause.add_argument("--reason", required=True, help="why payouts are paused")
    _add_config_dir(pause)
    pause.set_defaults(handler=pause_command)

    resume = payout_commands.add_parser(
        "resume",
        help="resume paused payouts, as /payouts-resume does",
        description=(
            "The next settlement pays as usual. After a restore, compare the operator "
            "account's history with the payout history first (docs/operations.md, Restore)."
        ),
    )
    _add_config_dir(resume)
    resume.set_defaults(handler=resume_command)


async def open_settlement(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics
) -> SettlementService:
    """Open the database and the sender and build the settlement service; `stack` closes them."""
    from bot.payments import open_payments
    from bot.runtime import prepare_database
    from core.services.payout_processor import PayoutProcessor
    from core.services.settlement import SettlementPolicy, SettlementService

    integrations = settings.integrations
    db = Database.from_url(integrations.database.url)
    stack.push_async_callback(db.dispose)
    await prepare_database(db, migrate=integrations.database.migrate_on_start)

    payments = await open_payments(settings, stack)
    processor = None
    if payments.sender is not None and payments.node is not None:
        processor = PayoutProcessor(
            db,
            payments.sender,
            payments.node,
            zone=settings.payout.zone,
            confirmation_timeout=timedelta(seconds=settings.payout.confirmation_timeout_seconds),
            metrics=metrics,
        )
    return SettlementService(
        db,
        SettlementPolicy.from_settings(settings.payout, integrations),
        metrics=metrics,
        processor=processor,
    )


def settle_once(args: argparse.Namespace) -> int:
    """Run `pay2slay settle once`."""
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR
    _configure_logging(settings)

    from core.services.settlement import RunOutcome

    async def run() -> SettlementReport:
        async with AsyncExitStack() as stack:
            service = await open_settlement(settings, stack, Metrics())
            return await service.run("cli")

    try:
        report = asyncio.run(run())
    except Pay2SlayError as error:
        print(f"settle once failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED

    print(describe_report(report))
    return EXIT_FAILED if report.outcome is RunOutcome.FAILED else EXIT_OK


def describe_report(report: SettlementReport) -> str:
    """Return a settlement report as the lines the CLI prints."""
    mode = "dry run" if report.dry_run else "live"
    lines = [
        f"settlement run {report.run_id}: {report.outcome.value} ({mode})",
        f"payouts: {len(report.payout_ids)}, amount: {format_ban(report.paid_raw)} BAN",
    ]
    if report.reconcile is not None and report.reconcile.actions:
        counts = ", ".join(
            f"{name} {count}" for name, count in sorted(report.reconcile.counts.items())
        )
        lines.append(f"reconciled payouts: {counts}")
    if report.skipped:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(report.skipped.items()))
        lines.append(f"players not paid: {skipped}")
    if report.skip_reason:
        lines.append(report.skip_reason)
    if report.stop_reason:
        lines.append(report.stop_reason)
    return "\n".join(lines)


def retry_payout_command(args: argparse.Namespace) -> int:
    """Run `pay2slay payouts retry ID`."""
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR
    _configure_logging(settings)

    from core.services.payout_retry import RetryKind, retry_payout

    # Outcomes after which nothing is left for the operator to do.
    done = {RetryKind.CONFIRMED, RetryKind.IN_FLIGHT, RetryKind.RETRIED, RetryKind.ALREADY_CLAIMED}

    async def run() -> tuple[RetryKind, str]:
        async with AsyncExitStack() as stack:
            service = await open_settlement(settings, stack, Metrics())
            outcome = await retry_payout(service, args.payout_id, None)
            text = outcome.message
            if outcome.block_hash is not None and outcome.kind is RetryKind.CONFIRMED:
                text = f"{text} Block: {outcome.block_hash}"
            return outcome.kind, text

    try:
        kind, text = asyncio.run(run())
    except Pay2SlayError as error:
        print(f"payouts retry failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED

    print(text)
    return EXIT_OK if kind in done else EXIT_FAILED


def release_dry_run_command(args: argparse.Namespace) -> int:
    """Run `pay2slay payouts release-dry-run --yes`."""
    if not args.yes:
        print(
            "payouts release-dry-run rejected: the next live settlement pays the released "
            "accruals; set dry_run to false, then run it again with --yes to confirm.",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR
    _configure_logging(settings)

    from core.services.go_live import release_dry_run_payouts

    async def run() -> str:
        async with AsyncExitStack() as stack:
            service = await open_settlement(settings, stack, Metrics())
            report = await release_dry_run_payouts(
                service.db,
                dry_run_enabled=settings.integrations.dry_run,
                actor_discord_id=None,
                lock=service.lock,
                lock_name=service.policy.lock_name,
            )
            return (
                f"released {report.accruals} accruals ({format_ban(report.amount_raw)} BAN) "
                f"from {report.payouts} dry-run payouts; the next live settlement pays them"
            )

    try:
        message = asyncio.run(run())
    except Pay2SlayError as error:
        print(f"payouts release-dry-run failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED

    print(message)
    return EXIT_OK


def pause_command(args: argparse.Namespace) -> int:
    """Run `pay2slay payouts pause --reason TEXT`."""
    reason = " ".join(args.reason.split())
    if not reason or len(reason) > MAX_PAUSE_REASON_LENGTH:
        print(
            f"payouts pause rejected: the reason must be 1 to {MAX_PAUSE_REASON_LENGTH} "
            "characters.",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    return _set_paused_command(args, paused=True, reason=reason)


def resume_command(args: argparse.Namespace) -> int:
    """Run `pay2slay payouts resume`."""
    return _set_paused_command(args, paused=False, reason="")


def _set_paused_command(args: argparse.Namespace, *, paused: bool, reason: str) -> int:
    name = "pause" if paused else "resume"
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR
    _configure_logging(settings)

    from bot.runtime import prepare_database
    from core.clock import utc_now
    from core.db.session import normalize_url, sqlite_file_path
    from core.services.faucet_flags import set_paused

    url = settings.integrations.database.url
    path = sqlite_file_path(normalize_url(url))
    if path is not None and not path.is_file():
        # Pausing a new, empty database would report success and stop nothing.
        print(
            f"payouts {name} failed: the database file {path} was not found. Check "
            "P2S_INTEGRATIONS__DATABASE__URL or database.url in integrations.yaml.",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR

    async def run() -> bool:
        db = Database.from_url(url)
        try:
            # The bot migrates at its start; this command only changes a flag.
            await prepare_database(db, migrate=False)
            async with db.write() as session:
                return await set_paused(
                    session, paused=paused, at=utc_now(), actor_discord_id=None, reason=reason
                )
        finally:
            await db.dispose()

    try:
        changed = asyncio.run(run())
    except Pay2SlayError as error:
        print(f"payouts {name} failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED

    state = "paused" if paused else "resumed"
    print(f"payouts {state}" if changed else f"payouts were already {state}")
    return EXIT_OK
