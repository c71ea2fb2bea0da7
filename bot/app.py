"""The Discord bot: a `commands.Bot` that owns the faucet's services for its lifetime.

Intents: only `guilds`. The bot responds to slash commands and buttons, which arrive as
interactions whatever the intents, and checks membership with a REST lookup of one member
(`bot.membership`), so it needs neither the privileged members intent nor message content.
Without member events, a player who leaves the guild is noticed by the periodic
re-verification of players not checked for a day (`bot.runtime`) or by an admin's /reverify.

Start-up (`setup_hook`, run by `login`): set the translator, open the services (database,
HTTP clients), and start the side web server, the poller, the gauge refresher and the
scheduler. Then load each cog on its own, so that one failing cog leaves the others working.
Shutdown (`close`): stop the scheduler and wait for a payout step in flight, stop the
background tasks and the web server, close the services, then disconnect from Discord.
Commands are never synced here; `pay2slay sync-commands` does that.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.errors import ErrorHandler, unwrap
from bot.membership import GuildMembership
from bot.notifications import PayoutNotifier
from bot.runtime import DEFAULT_SHUTDOWN_WAIT, PeriodicJob, Runtime, Services, open_services
from bot.translator import CatalogTranslator
from bot.web.health import flag_check
from cogs.common import NO_MENTIONS, CogServices, WorkTracker
from core.clock import Clock, utc_now
from core.config import Settings
from core.i18n import MessageCatalog
from core.observability import Metrics
from core.observability.tracing import begin_span
from core.services.health import HealthService
from core.services.history import HistoryService
from core.services.leaderboard import LeaderboardService
from core.services.lookup import LookupService
from core.services.scheduling import SETTLEMENT_JOB_ID
from core.services.status import StatusService
from core.services.verification import MembershipChecker

log = structlog.get_logger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.player", "cogs.admin")

PAYOUT_DM_INTERVAL = timedelta(seconds=60)
SHUTDOWN_WAIT = DEFAULT_SHUTDOWN_WAIT

ServicesOpener = Callable[..., Awaitable[Services]]

_STARTED_AT = "pay2slay_started_at"
_SPAN = "pay2slay_span"


def bot_intents() -> discord.Intents:
    """Return the intents the bot needs: guilds only (see the module docstring)."""
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


class Pay2SlayTree(app_commands.CommandTree[commands.Bot]):
    """The command tree: binds log context per interaction and sends errors to one handler."""

    def __init__(self, client: commands.Bot) -> None:
        super().__init__(client)
        # Set by the bot right after construction; commands.Bot builds the tree itself.
        self.error_handler: ErrorHandler | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        # Each interaction runs in its own task, so context bound here stays with it.
        structlog.contextvars.bind_contextvars(
            interaction_id=interaction.id, discord_id=interaction.user.id
        )
        interaction.extras[_STARTED_AT] = time.monotonic()
        if interaction.type is discord.InteractionType.application_command:
            # Ended by on_error or by the bot's completion event, whichever comes.
            command = interaction.command
            interaction.extras[_SPAN] = begin_span(
                "command",
                command=None if command is None else command.qualified_name,
                interaction_id=interaction.id,
            )
        return True

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        try:
            if self.error_handler is None:
                raise RuntimeError("the command tree has no error handler") from error
            await self.error_handler.handle(interaction, error)
        finally:
            end_command_span(interaction, type(unwrap(error)).__name__)


def end_command_span(interaction: discord.Interaction[Any], error_type: str | None = None) -> None:
    """End the span that the tree's check started for this interaction, if it has one."""
    current = interaction.extras.pop(_SPAN, None)
    if current is not None:
        current.end(error_type)


class Pay2SlayBot(commands.Bot):
    """The faucet's Discord client; see the module docstring for start-up and shutdown."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics,
        catalog: MessageCatalog | None = None,
        clock: Clock = utc_now,
        extensions: Sequence[str] = EXTENSIONS,
        services_opener: ServicesOpener = open_services,
        commands_only: bool = False,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.catalog = catalog or MessageCatalog.load(settings.product.default_locale)
        self.clock = clock
        self.commands_only = commands_only
        self._extensions = tuple(extensions)
        self._services_opener = services_opener
        self.services: Services | None = None
        self.runtime: Runtime | None = None
        self.cog_services: CogServices | None = None
        self.failed_extensions: dict[str, str] = {}
        self._closing = False

        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(),
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            tree_cls=Pay2SlayTree,
        )
        tree = self.tree
        assert isinstance(tree, Pay2SlayTree)
        tree.error_handler = ErrorHandler(self.catalog, settings.product)
        self.work = WorkTracker()

    @property
    def guild_id(self) -> int:
        """The operator's guild."""
        return int(self.settings.integrations.discord_guild_id)

    def membership_checker(self) -> MembershipChecker:
        """Return the membership checker that the verification service calls."""
        return GuildMembership(self, self.guild_id)

    async def setup_hook(self) -> None:
        """Set up the translator, services, web server, poller, scheduler and cogs."""
        await self.tree.set_translator(CatalogTranslator(self.catalog))
        if not self.commands_only:
            await self._start_services()
        await self._load_extensions()
        self.metrics.register_commands(
            command.qualified_name for command in self.tree.walk_commands()
        )
        log.info(
            "bot_setup_finished",
            commands=len(list(self.tree.walk_commands())),
            failed_extensions=sorted(self.failed_extensions),
        )

    async def _start_services(self) -> None:
        services = await self._services_opener(
            self.settings,
            membership=self.membership_checker(),
            metrics=self.metrics,
            clock=self.clock,
        )
        self.services = services

        jobs: list[PeriodicJob] = []
        if self.settings.integrations.discord.payout_dms:
            notifier = PayoutNotifier(
                self, services.db, self.catalog, self.settings, clock=self.clock
            )
            jobs.append(PeriodicJob("payout_dms", PAYOUT_DM_INTERVAL, notifier.run_once))
        runtime = Runtime(services, extra_jobs=jobs)
        self.runtime = runtime
        self.cog_services = build_cog_services(
            services, self.catalog, self.next_settlement_at, self.work
        )

        await runtime.start_web_server(
            {
                "gateway": flag_check(
                    lambda: self.is_ready() and not self.is_closed(),
                    "not connected to the Discord gateway",
                ),
                "scheduler": runtime.scheduler_check(),
            }
        )
        runtime.start_poller()
        runtime.start_gauge_refresh()
        runtime.start_scheduler()

    def next_settlement_at(self) -> datetime | None:
        """Return when the scheduler runs the next settlement, or None when it is not running."""
        scheduler = None if self.runtime is None else self.runtime.scheduler
        if scheduler is None or not scheduler.running:
            return None
        job = scheduler.get_job(SETTLEMENT_JOB_ID)
        next_run: datetime | None = None if job is None else job.next_run_time
        return next_run

    async def _load_extensions(self) -> None:
        for name in self._extensions:
            try:
                await self.load_extension(name)
            except Exception as error:
                # One broken extension must not stop the rest. discord.py wraps most failures
                # in ExtensionError, but a dotted name whose parent package is missing raises
                # ModuleNotFoundError straight from the import system.
                cause = error.__cause__ or error
                self.failed_extensions[name] = type(cause).__name__
                log.error("extension_load_failed", extension=name, exc_info=cause)
            else:
                log.info("extension_loaded", extension=name)

    async def on_ready(self) -> None:
        """Record that the gateway session is ready."""
        self.metrics.set_gateway_connected(True)
        log.info("gateway_ready", guilds=len(self.guilds))

    async def on_resumed(self) -> None:
        """Record that the gateway session resumed."""
        self.metrics.set_gateway_connected(True)

    async def on_disconnect(self) -> None:
        """Record that the gateway connection dropped; discord.py reconnects by itself."""
        self.metrics.set_gateway_connected(False)

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        """Record how long a command took, from the tree's check to its completion."""
        started = interaction.extras.get(_STARTED_AT)
        if isinstance(started, float):
            self.metrics.observe_command(command.qualified_name, time.monotonic() - started)
        end_command_span(interaction)

    async def close(self) -> None:
        """Stop the runtime, close the services, then close the Discord connection."""
        if self._closing:
            await super().close()
            return
        self._closing = True
        log.info("bot_closing")

        if self.runtime is not None:
            try:
                await self.runtime.stop()
            except Exception:
                log.exception("runtime_stop_failed")
        # The runtime asked the settlement service to stop, so settlements and retries that
        # admins started stop before their next payout. Wait for the step in flight.
        if not await self.work.wait(SHUTDOWN_WAIT.total_seconds()):
            log.warning("shutdown_left_admin_work_in_flight")
        if self.services is not None:
            try:
                await self.services.aclose()
            except Exception:
                log.exception("services_close_failed")
        self.metrics.set_gateway_connected(False)
        await super().close()
        log.info("bot_closed")


def build_cog_services(
    services: Services,
    catalog: MessageCatalog,
    next_settlement_at: Callable[[], datetime | None],
    work: WorkTracker,
) -> CogServices:
    """Build what the cogs call from the process's services."""
    settings = services.settings
    integrations = settings.integrations
    return CogServices(
        settings=settings,
        catalog=catalog,
        db=services.db,
        clock=services.clock,
        metrics=services.metrics,
        players=services.players,
        verification=services.verification,
        status=StatusService(services.db, settings.payout, integrations, services.clock),
        history=HistoryService(services.db),
        leaderboard=LeaderboardService(services.db, settings.payout, services.clock),
        lookup=LookupService(services.db, settings.payout, integrations, services.clock),
        abuse=services.abuse,
        settlement=services.settlement,
        health=HealthService(
            services.db,
            integrations,
            services.clock,
            balance_probe=services.operator_balance_probe,
            node_probe=services.node_probe,
        ),
        operator_address=services.operator_address,
        next_settlement_at=next_settlement_at,
        work=work,
    )
