"""`pay2slay sandbox`: the whole faucet on this machine, with no credentials and no Discord.

It starts the sandbox Yunite, stats API and Banano node on free loopback ports and creates a
temporary SQLite database. It funds an operator account whose seed is generated here and held
only in memory, and registers a few dozen players whose kill counts grow. The real services
then run against those servers in live mode: the poller reads kills, settlement pays them
with blocks that the sandbox node validates, and the side server serves `/metrics`.

Each run prints its payouts and what `/status` shows for some players, rendered by the same
code as the slash command. The last line is a machine-readable summary
(`SANDBOX_SUMMARY {json}`) stating whether the BAN sent on the sandbox ledger equals the sum
of the accruals settled; the exit status is 0 only when they are equal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import secrets
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import structlog
from sqlalchemy import select

from bot.runtime import Runtime, Services, open_services
from core.banano.address import encode_address
from core.banano.keys import KeyPair
from core.banano.units import RAW_PER_BAN, format_ban
from core.config import Settings, load_settings
from core.db.models import Accrual, Payout, PayoutState, Player
from core.i18n import MessageCatalog
from core.observability import Metrics, SecretRedactor
from core.presentation import render_card_text, render_status, show_dry_run_banner
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite
from core.services.settlement import SettlementReport
from core.services.status import StatusService

log = structlog.get_logger(__name__)

SUMMARY_PREFIX = "SANDBOX_SUMMARY "

# Low enough that the sandbox node finds work for a block in milliseconds.
SANDBOX_WORK_THRESHOLD = "fff0000000000000"
OPERATOR_FUNDING_RAW = 100_000 * RAW_PER_BAN
SANDBOX_FLOOR_BAN = "10"
# Each player's kill count is read about this many times between two runs. More readings
# only add database writes that compete with the settlement's.
READINGS_PER_PLAYER_PER_RUN = 2
# Kills added to each player before each run, chosen at random in this range.
KILLS_PER_RUN = (0, 6)

FIRST_DISCORD_ID = 300_000_000_000_000_000
SANDBOX_PAYOUT_CAP = 100_000
# Players linked and verified between two checks for Ctrl-C, with a progress line after each.
REGISTRATION_BATCH = 200


@dataclass(frozen=True)
class SandboxOptions:
    """Options of one `pay2slay sandbox` invocation."""

    runs: int | None
    players: int
    interval_seconds: float
    config_dir: Path
    status_players: int = 3
    seed: int | None = None


@dataclass(frozen=True)
class SandboxPlayer:
    """One invented player: Discord ID, Epic account and wallet."""

    discord_id: int
    epic_account_id: str
    wallet: str


@dataclass
class SandboxTotals:
    """Totals of the runs, checked against the ledger at the end."""

    runs: int = 0
    payouts: int = 0
    failed_runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxSecrets:
    """Credentials generated for this run only, held in this process's memory and nowhere else."""

    operator_seed: str
    yunite_api_key: str
    stats_api_key: str
    session_secret: str


def new_secrets() -> SandboxSecrets:
    """Generate the run's throwaway credentials."""
    return SandboxSecrets(
        operator_seed=secrets.token_hex(32),
        yunite_api_key=secrets.token_urlsafe(24),
        stats_api_key=secrets.token_urlsafe(24),
        session_secret=secrets.token_urlsafe(32),
    )


def make_players(count: int, rng: random.Random) -> list[SandboxPlayer]:
    """Invent `count` players with unique Epic accounts and wallets."""
    players = []
    for index in range(count):
        epic_account_id = f"{rng.getrandbits(128):032x}"
        wallet = encode_address(rng.getrandbits(256).to_bytes(32, "big"))
        players.append(SandboxPlayer(FIRST_DISCORD_ID + index, epic_account_id, wallet))
    return players


def sandbox_environment(
    secrets_: SandboxSecrets,
    *,
    database_url: str,
    node_url: str,
    yunite_url: str,
    stats_url: str,
    guild_id: int,
    readings_per_minute: int = 600,
) -> dict[str, str]:
    """Return the variables that point the configuration at the sandbox servers.

    Only these are passed to the configuration loader. The process environment is not read,
    so nothing set for a real deployment can send the sandbox elsewhere.
    """
    return {
        "YUNITE_API_KEY": secrets_.yunite_api_key,
        "FORTNITE_API_KEY": secrets_.stats_api_key,
        "P2S_OPERATOR_SEED": secrets_.operator_seed,
        "P2S_SESSION_SECRET": secrets_.session_secret,
        "P2S_INTEGRATIONS__DRY_RUN": "false",
        "P2S_INTEGRATIONS__NODE_RPC": node_url,
        "P2S_INTEGRATIONS__YUNITE_API_URL": yunite_url,
        "P2S_INTEGRATIONS__FORTNITE_API_URL": stats_url,
        "P2S_INTEGRATIONS__DISCORD_GUILD_ID": str(guild_id),
        "P2S_INTEGRATIONS__YUNITE_GUILD_ID": str(guild_id),
        "P2S_INTEGRATIONS__YUNITE_CACHE_SECONDS": "0",
        "P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN": SANDBOX_FLOOR_BAN,
        "P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN": str(readings_per_minute),
        # Kills come in bursts a second apart here, far above any human kill rate.
        "P2S_INTEGRATIONS__ABUSE_HEURISTICS__KILL_RATE_PER_MIN": "1000000",
        "P2S_INTEGRATIONS__BANANO__SIGNER": "local",
        "P2S_INTEGRATIONS__BANANO__WORK_SOURCES": "[node]",
        "P2S_INTEGRATIONS__BANANO__WORK_THRESHOLD": SANDBOX_WORK_THRESHOLD,
        "P2S_INTEGRATIONS__BANANO__EXPLORER_BLOCK_URL": "",
        "P2S_INTEGRATIONS__DATABASE__URL": database_url,
        "P2S_INTEGRATIONS__DATABASE__MIGRATE_ON_START": "true",
        "P2S_INTEGRATIONS__SERVER__HOST": "127.0.0.1",
        "P2S_INTEGRATIONS__SERVER__PORT": "0",
        # Every run may pay every player. The caps are set high rather than to 0, because
        # settlement reads a payout cap of 0 as "no payouts at all".
        "P2S_PAYOUT__DAILY_PAYOUT_CAP": str(SANDBOX_PAYOUT_CAP),
        "P2S_PAYOUT__WEEKLY_PAYOUT_CAP": str(SANDBOX_PAYOUT_CAP),
    }


class SandboxMembership:
    """Every invented player is a member of the sandbox guild."""

    def __init__(self, member_ids: Sequence[int]) -> None:
        self._member_ids = frozenset(member_ids)

    async def is_member(self, discord_id: int) -> bool | None:
        """Return whether the player is one of the invented members."""
        return discord_id in self._member_ids


class Sandbox:
    """One sandbox session: servers, services, players, and the runs."""

    def __init__(
        self, options: SandboxOptions, out: TextIO, redactor: SecretRedactor | None = None
    ) -> None:
        self.options = options
        self.out = out
        self.rng = random.Random(options.seed)
        self.secrets = new_secrets()
        if redactor is not None:
            for value in dataclasses.astuple(self.secrets):
                redactor.add(value)
        self.players = make_players(options.players, self.rng)
        self.guild_id = 100_000_000_000_000_000 + self.rng.randrange(10**17)
        self.stop = asyncio.Event()
        self.totals = SandboxTotals()
        self.node = SandboxBananoNode(work_threshold=int(SANDBOX_WORK_THRESHOLD, 16))
        self.yunite = SandboxYunite(self.secrets.yunite_api_key, self.guild_id)
        self.stats = SandboxStats(self.secrets.stats_api_key)
        self.operator = KeyPair.from_seed(self.secrets.operator_seed, 0)
        self.catalog: MessageCatalog | None = None

    def print(self, text: str = "") -> None:
        """Write one line of the sandbox's report to its output."""
        print(text, file=self.out, flush=True)

    async def run(self) -> int:
        """Run the session until `runs` are done or `stop` is set; return the exit status."""
        async with AsyncExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="p2s-sandbox-")))
            settings = await self._start_servers(stack, workdir)
            self.catalog = MessageCatalog.load(settings.product.default_locale)

            metrics = Metrics()
            services = await open_services(
                settings,
                membership=SandboxMembership([p.discord_id for p in self.players]),
                metrics=metrics,
            )
            stack.push_async_callback(services.aclose)
            if not await self._register_players(services) or self.stop.is_set():
                return await self._summary(services)

            # The first reading of each player sets their baseline, which never pays; taking it
            # now makes the kills added before the first run count.
            await services.poller.poll_batch(len(self.players))

            runtime = Runtime(services)
            stack.push_async_callback(runtime.stop)
            url = await runtime.start_web_server()
            runtime.start_poller()
            runtime.start_gauge_refresh(timedelta(seconds=self.options.interval_seconds))
            self.print(f"Sandbox faucet with {len(self.players)} players; metrics at {url}/metrics")
            self.print(
                f"Operator account {self.operator.address} funded with "
                f"{format_ban(OPERATOR_FUNDING_RAW)} BAN on the sandbox ledger."
            )

            await self._runs(services)
            await services.settlement.confirm()
            return await self._summary(services)
        raise AssertionError("unreachable")

    async def _start_servers(self, stack: AsyncExitStack, workdir: Path) -> Settings:
        node_url = await self.node.start()
        stack.push_async_callback(self.node.stop)
        yunite_url = await self.yunite.start()
        stack.push_async_callback(self.yunite.stop)
        stats_url = await self.stats.start()
        stack.push_async_callback(self.stats.stop)

        self.node.fund(self.operator.address, OPERATOR_FUNDING_RAW, key=self.operator)
        for player in self.players:
            self.yunite.add_player(player.discord_id, player.epic_account_id)
            self.stats.add_player(player.epic_account_id, kills=self.rng.randrange(100, 5000))

        environ = sandbox_environment(
            self.secrets,
            database_url=f"sqlite+aiosqlite:///{workdir / 'sandbox.db'}",
            node_url=node_url,
            yunite_url=yunite_url,
            stats_url=stats_url,
            guild_id=self.guild_id,
            readings_per_minute=self.readings_per_minute(),
        )
        return load_settings(self.options.config_dir, environ)

    def readings_per_minute(self) -> int:
        """Return the stats budget that reads every player a few times between two runs."""
        runs_per_minute = 60.0 / self.options.interval_seconds
        readings = len(self.players) * READINGS_PER_PLAYER_PER_RUN * runs_per_minute
        return max(60, math.ceil(readings))

    async def _register_players(self, services: Services) -> bool:
        """Link and verify the players in batches; return False when stopped part-way."""
        registered = 0
        eligible = 0
        total = len(self.players)
        for start in range(0, total, REGISTRATION_BATCH):
            if self.stop.is_set():
                self.print(f"Stopped after registering {registered} of {total} players.")
                return False
            batch = self.players[start : start + REGISTRATION_BATCH]
            for player in batch:
                await services.players.link_wallet(
                    player.discord_id, player.wallet, services.operator_address, replace=False
                )
            results = await services.verification.verify_many(
                [player.discord_id for player in batch], "scheduled"
            )
            registered += len(batch)
            eligible += sum(1 for result in results if result.eligible)
            if registered < total:
                self.print(f"Registering players: {registered} of {total} done.")
        self.print(f"Registered {total} players; {eligible} are eligible.")
        return True

    async def _runs(self, services: Services) -> None:
        run = 0
        while not self.stop.is_set():
            if self.options.runs is not None and run >= self.options.runs:
                return
            run += 1
            for player in self.players:
                self.stats.add_kills(player.epic_account_id, self.rng.randint(*KILLS_PER_RUN))
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.options.interval_seconds)
            if self.stop.is_set():
                return

            report = await services.settlement.run("sandbox")
            await self._print_run(run, services, report)

    async def _print_run(self, run: int, services: Services, report: SettlementReport) -> None:
        self.totals.runs += 1
        self.totals.payouts += len(report.payout_ids)
        outcome = report.outcome.value
        self.totals.outcomes[outcome] = self.totals.outcomes.get(outcome, 0) + 1
        if outcome == "failed":
            self.totals.failed_runs += 1

        self.print()
        self.print(
            f"Run {run}: {outcome}. Payouts: {len(report.payout_ids)}, "
            f"{format_ban(report.paid_raw)} BAN"
            + (
                f" ({report.skip_reason or report.stop_reason})"
                if report.skip_reason or report.stop_reason
                else ""
            )
        )
        for line in self.unpaid_lines(report):
            self.print(line)
        for line in await self._payout_lines(services, report.payout_ids):
            self.print("  " + line)
        # The next run starts one interval from now, unless this was the last one asked for.
        last_run = self.options.runs is not None and run >= self.options.runs
        next_run_at = (
            None
            if last_run
            else services.clock() + timedelta(seconds=self.options.interval_seconds)
        )
        for player in self.players[: self.options.status_players]:
            self.print()
            self.print(await self._status_text(services, player.discord_id, next_run_at))

    def unpaid_lines(self, report: SettlementReport) -> list[str]:
        """Say why the players this run did not pay were left out, from its skip counts."""
        lines = []
        if report.skipped:
            counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.skipped.items()))
            lines.append(f"Not paid in this run, by reason: {counts}")
        if report.outcome.value != "completed":
            return lines
        unread = len(self.players) - len(report.payout_ids) - sum(report.skipped.values())
        if unread > 0:
            lines.append(
                f"Players with no new kills counted since the last run: {unread}. Either they "
                "made none, or the stats poller has not read them yet; it reads a share of the "
                "players between runs, within the stats API budget."
            )
        return lines

    async def _status_text(
        self, services: Services, discord_id: int, next_run_at: datetime | None
    ) -> str:
        """Render a player's `/status` as the slash command would, as plain text."""
        settings = services.settings
        status_service = StatusService(
            services.db, settings.payout, settings.integrations, services.clock
        )
        status = await status_service.player_status(discord_id, next_run_at)
        assert self.catalog is not None
        card = render_status(
            status,
            self.catalog,
            settings.product.default_locale,
            settings.product,
            settings.integrations.banano.explorer_block_url,
            show_dry_run_banner(settings.product, settings.integrations.dry_run),
        )
        return f"/status of player {discord_id}\n" + render_card_text(card)

    async def _payout_lines(self, services: Services, payout_ids: Sequence[int]) -> list[str]:
        if not payout_ids:
            return []
        async with services.db.read() as session:
            rows = await session.execute(
                select(Player.discord_id, Payout.amount_raw, Payout.block_hash, Payout.state)
                .join(Player, Player.id == Payout.player_id)
                .where(Payout.id.in_(payout_ids))
                .order_by(Payout.id)
            )
            return [
                f"player {discord_id}: {format_ban(amount_raw)} BAN, block {block_hash}, "
                f"{state.value}"
                for discord_id, amount_raw, block_hash, state in rows
            ]

    async def _summary(self, services: Services) -> int:
        ledger_sent_raw = sent_on_ledger_raw(self.node, self.operator.address)
        settled = await settled_totals(services)
        balanced = ledger_sent_raw == settled["accruals_settled_raw"] == settled["payouts_raw"]

        self.print()
        self.print(
            f"Finished. Runs: {self.totals.runs}, payouts: {self.totals.payouts}. Sent on the "
            f"sandbox ledger: {format_ban(ledger_sent_raw)} BAN; accruals settled: "
            f"{format_ban(settled['accruals_settled_raw'])} BAN; "
            + ("they are equal." if balanced else "THEY DIFFER.")
        )
        summary = {
            "runs": self.totals.runs,
            "payouts": self.totals.payouts,
            "failed_runs": self.totals.failed_runs,
            "outcomes": self.totals.outcomes,
            "ledger_sent_raw": str(ledger_sent_raw),
            "accruals_settled_raw": str(settled["accruals_settled_raw"]),
            "payouts_raw": str(settled["payouts_raw"]),
            "balanced": balanced,
        }
        self.print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True))
        return 0 if balanced and self.totals.failed_runs == 0 else 1


def sent_on_ledger_raw(node: SandboxBananoNode, account: str) -> int:
    """Sum every send block of `account` in the sandbox ledger, in raw."""
    return sum(
        entry.amount_raw
        for entry in node.ledger.blocks.values()
        if entry.subtype == "send" and entry.account == account
    )


async def settled_totals(services: Services) -> Mapping[str, int]:
    """Sum live payouts that reached the ledger, and the accruals they claimed, in raw."""
    sent_states = (PayoutState.SUBMITTED, PayoutState.CONFIRMED)
    async with services.db.read() as session:
        payout_amounts = await session.scalars(
            select(Payout.amount_raw).where(
                Payout.state.in_(sent_states), Payout.dry_run.is_(False)
            )
        )
        payouts_raw = sum(payout_amounts)
        accrual_amounts = await session.scalars(
            select(Accrual.amount_raw)
            .join(Payout, Payout.id == Accrual.payout_id)
            .where(Payout.state.in_(sent_states), Payout.dry_run.is_(False))
        )
        accruals_settled_raw = sum(accrual_amounts)
    return {"payouts_raw": payouts_raw, "accruals_settled_raw": accruals_settled_raw}


async def run_sandbox(
    options: SandboxOptions,
    out: TextIO = sys.stdout,
    redactor: SecretRedactor | None = None,
) -> int:
    """Run a sandbox session; Ctrl-C or SIGTERM ends it after the run in progress.

    The credentials generated for the session are added to `redactor`, so logs never show them.
    """
    sandbox = Sandbox(options, out, redactor)
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal_number, sandbox.stop.set)
    try:
        return await sandbox.run()
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal_number)
