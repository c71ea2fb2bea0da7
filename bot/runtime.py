"""Composition root: every client and service of one faucet process, built from `Settings`.

`open_services` opens the database, migrating it unless `database.migrate_on_start` is
false, and creates the HTTP clients and services. `Services.aclose` releases them in reverse
order. `Runtime` runs the long-lived parts on the current event loop: the side web server,
the poller task, the scheduler with the settlement and confirmation jobs, the event loop
lag monitor and the task that refreshes the state gauges. Logging and configuration loading
happen before any of this, in the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.http_metrics import create_yunite_http_client
from bot.payments import open_payments
from bot.receiving import RECEIVE_INTERVAL, receive_topups
from bot.web.app import MAX_REQUEST_BYTES
from bot.web.health import (
    HealthRoutesConfig,
    ReadinessCheck,
    add_health_routes,
    database_check,
    flag_check,
    migrations_check,
    node_check,
)
from bot.web.middleware import add_request_middleware
from bot.web.oauth import OAuthRoutesConfig, add_oauth_routes, secure_cookies_for
from bot.web.pages import Branding
from bot.web.ratelimit import ClientRateLimiter
from core.banano.address import BURN_ADDRESS
from core.banano.receiver import Receiver
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import AccountNotFoundError, NodeError, NodeReplyError
from core.banano.sender import Sender
from core.clock import Clock, utc_now
from core.config import Settings
from core.db import Database
from core.db.migrate import is_at_head, upgrade_to_head
from core.errors import Pay2SlayError
from core.integrations import (
    DiscordOAuthClient,
    RateLimiter,
    StatsClient,
    YuniteClient,
    create_http_client,
)
from core.observability import Metrics, monitor_event_loop_lag
from core.observability.gauges import DEFAULT_REFRESH_INTERVAL, GaugeRefresher
from core.observability.tracing import span
from core.services.abuse import AbuseService
from core.services.oauth_login import OAuthLoginService
from core.services.payout_processor import PayoutProcessor
from core.services.players import PlayerService
from core.services.poller import Poller, PollerSettings
from core.services.regions import RegionResolver, RegionStats
from core.services.scheduling import SettlementJobs
from core.services.sessions import CookieSigner
from core.services.settlement import SettlementPolicy, SettlementService
from core.services.verification import MembershipChecker, VerificationService

log = structlog.get_logger(__name__)

# Players not verified for this long are checked again by the re-verification job, a batch
# at a time, so someone who left the guild stops accruing without a command of their own.
REVERIFY_MAX_AGE = timedelta(hours=24)
REVERIFY_INTERVAL = timedelta(minutes=15)

# How long shutdown waits for a payout step in flight before leaving it to the reconciler.
DEFAULT_SHUTDOWN_WAIT = timedelta(seconds=60)


class StartupError(Pay2SlayError):
    """The process cannot start. The message states what to fix."""


@dataclass
class Services:
    """Every client and service of one process, and the stack that closes them."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    db: Database
    http: httpx.AsyncClient
    node: NodeClient | None
    operator_address: str | None
    yunite: YuniteClient
    stats: StatsClient
    players: PlayerService
    verification: VerificationService
    poller: Poller
    settlement: SettlementService
    abuse: AbuseService
    oauth: OAuthRoutesConfig | None
    exit_stack: AsyncExitStack = field(repr=False)

    sender: Sender | None = None
    receiver: Receiver | None = None

    async def aclose(self) -> None:
        """Close the HTTP clients, work processes and database, newest first."""
        await self.exit_stack.aclose()
        log.info("services_closed")

    async def operator_balance_probe(self) -> int | None:
        """Return the operator account's confirmed balance, or None when it cannot be read."""
        if self.sender is not None:
            return await self.sender.operator_balance_raw()
        if self.node is None or self.operator_address is None:
            return None
        try:
            info = await self.node.account_info(self.operator_address)
        except AccountNotFoundError:
            return 0
        if info.confirmed_balance_raw is not None:
            return info.confirmed_balance_raw
        return info.balance_raw

    async def node_probe(self) -> bool:
        """Return whether the Banano node responds to an RPC call."""
        if self.node is None:
            return False
        try:
            await self.node.account_balance(self.operator_address or BURN_ADDRESS)
        except NodeReplyError:
            # An error reply is still a reply: the node is up.
            return True
        except NodeError:
            return False
        return True


async def prepare_database(db: Database, *, migrate: bool) -> None:
    """Migrate the database to the newest revision, or check that it is there already."""
    if migrate:
        await upgrade_to_head(db)
        return
    if not await is_at_head(db):
        raise StartupError(
            "The database is not at the newest migration and database.migrate_on_start is "
            "false. Run `pay2slay db upgrade` first."
        )


async def open_services(
    settings: Settings,
    *,
    membership: MembershipChecker,
    metrics: Metrics,
    clock: Clock = utc_now,
) -> Services:
    """Open the database and create every client and service from `settings`.

    Raises `StartupError` when a required value is missing; whatever was opened before the
    failure is closed again.
    """
    integrations = settings.integrations
    async with AsyncExitStack() as stack:
        db = Database.from_url(integrations.database.url)
        stack.push_async_callback(db.dispose)
        await prepare_database(db, migrate=integrations.database.migrate_on_start)

        http = create_http_client()
        stack.push_async_callback(http.aclose)
        payments = await open_payments(settings, stack, metrics=metrics, db=db, clock=clock)

        # Yunite gets a client of its own so that only its requests are counted as Yunite's.
        yunite_http = create_yunite_http_client(metrics)
        stack.push_async_callback(yunite_http.aclose)
        yunite = _yunite_client(settings, yunite_http, clock)
        stats = _stats_client(settings, http, metrics, clock)
        players = PlayerService(db, clock, metrics)
        verification = VerificationService(db, yunite, membership, clock, metrics)
        poller = Poller(
            db,
            stats,
            PollerSettings.from_config(settings.payout, integrations),
            clock,
            metrics,
        )

        processor = None
        if payments.sender is not None and payments.node is not None:
            processor = PayoutProcessor(
                db,
                payments.sender,
                payments.node,
                zone=settings.payout.zone,
                confirmation_timeout=timedelta(
                    seconds=settings.payout.confirmation_timeout_seconds
                ),
                metrics=metrics,
                clock=clock,
            )
        settlement = SettlementService(
            db,
            SettlementPolicy.from_settings(settings.payout, integrations),
            metrics=metrics,
            processor=processor,
            clock=clock,
        )

        services = Services(
            settings=settings,
            clock=clock,
            metrics=metrics,
            db=db,
            http=http,
            node=payments.node,
            operator_address=payments.operator_address,
            yunite=yunite,
            stats=stats,
            players=players,
            verification=verification,
            poller=poller,
            settlement=settlement,
            abuse=AbuseService(db, settings.payout.zone, clock),
            oauth=_oauth_routes(settings, db, http, verification, metrics, clock),
            exit_stack=stack.pop_all(),
            sender=payments.sender,
            receiver=payments.receiver,
        )
    metrics.set_faucet_mode(
        dry_run=integrations.dry_run,
        min_operator_balance_raw=integrations.min_operator_balance_raw,
    )
    log.info(
        "services_opened",
        dialect=db.dialect_name,
        dry_run=integrations.dry_run,
        live_sender=processor is not None,
        oauth=services.oauth is not None,
    )
    return services


def _guild_id(settings: Settings) -> int:
    text = settings.integrations.yunite_guild_id or settings.integrations.discord_guild_id
    if not text:
        raise StartupError("Set integrations.discord_guild_id to the operator's guild ID.")
    return int(text)


def _yunite_client(settings: Settings, http: httpx.AsyncClient, clock: Clock) -> YuniteClient:
    integrations = settings.integrations
    if integrations.yunite_api_key is None or integrations.yunite_api_url == "":
        raise StartupError("Set the Yunite API key (YUNITE_API_KEY) and yunite_api_url.")
    return YuniteClient(
        http,
        integrations.yunite_api_url,
        integrations.yunite_api_key,
        _guild_id(settings),
        cache_seconds=integrations.yunite_cache_seconds,
        clock=clock,
    )


def _stats_client(
    settings: Settings, http: httpx.AsyncClient, metrics: Metrics, clock: Clock
) -> StatsClient:
    integrations = settings.integrations
    if integrations.fortnite_api_key is None or integrations.fortnite_api_url == "":
        raise StartupError("Set the stats API key (FORTNITE_API_KEY) and fortnite_api_url.")
    limiter = RateLimiter(
        integrations.rate_limits.fortnite_per_min, on_wait=metrics.add_rate_limit_wait
    )
    return StatsClient(
        http, integrations.fortnite_api_url, integrations.fortnite_api_key, limiter, clock
    )


def _oauth_routes(
    settings: Settings,
    db: Database,
    http: httpx.AsyncClient,
    verification: VerificationService,
    metrics: Metrics,
    clock: Clock,
) -> OAuthRoutesConfig | None:
    """Build the OAuth sign-in routes' configuration, or None when a part of it is not set."""
    integrations = settings.integrations
    client_id = integrations.discord_oauth_client_id
    client_secret = integrations.discord_oauth_client_secret
    session_secret = settings.secrets.session_secret
    if (
        not client_id
        or client_secret is None
        or session_secret is None
        or integrations.discord_api_url == ""
        or integrations.discord_authorize_url == ""
    ):
        log.info("oauth_routes_disabled")
        return None

    discord_oauth = DiscordOAuthClient(
        http,
        integrations.discord_api_url,
        integrations.discord_authorize_url,
        str(client_id),
        client_secret,
        integrations.discord_redirect_uri,
        integrations.oauth_scopes,
    )
    login = OAuthLoginService(db, discord_oauth, verification, _guild_id(settings), clock, metrics)
    server = integrations.server
    return OAuthRoutesConfig(
        login=login,
        signer=CookieSigner(session_secret, clock),
        branding=Branding.from_settings(settings.product),
        regions=RegionResolver(server.trusted_region_header, server.geoip_database),
        region_stats=RegionStats(db, metrics, clock),
        limiter=ClientRateLimiter(),
        secure_cookies=secure_cookies_for(integrations.discord_redirect_uri),
    )


def build_web_app(
    services: Services, extra_checks: Mapping[str, ReadinessCheck] | None = None
) -> web.Application:
    """Build the side web server: request middleware, OAuth sign-in when configured, and
    `/healthz`, `/readyz`, `/metrics` and `/openapi.yaml`.

    `/readyz` checks the database, its migrations and, when one is configured, the Banano
    node, plus `extra_checks` (the bot adds the gateway and the scheduler).
    """
    settings = services.settings
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    add_request_middleware(
        app,
        services.metrics,
        https_public_url=secure_cookies_for(settings.integrations.discord_redirect_uri),
    )
    if services.oauth is not None:
        add_oauth_routes(app, services.oauth)

    checks: dict[str, ReadinessCheck] = {
        "database": database_check(services.db),
        "migrations": migrations_check(services.db),
    }
    if services.node is not None:
        checks["node"] = node_check(services.node_probe)
    checks.update(extra_checks or {})
    add_health_routes(
        app,
        HealthRoutesConfig(
            metrics=services.metrics,
            checks=checks,
            metrics_token=settings.secrets.metrics_token,
        ),
    )
    return app


@dataclass(frozen=True)
class PeriodicJob:
    """A coroutine the scheduler runs every `interval`, never twice at once."""

    job_id: str
    interval: timedelta
    run: Callable[[], Awaitable[object]]


class Runtime:
    """The long-lived parts of a process around its `Services`, started and stopped in order."""

    def __init__(
        self,
        services: Services,
        *,
        extra_jobs: Sequence[PeriodicJob] = (),
        shutdown_wait: timedelta = DEFAULT_SHUTDOWN_WAIT,
    ) -> None:
        self.services = services
        self._extra_jobs = tuple(extra_jobs)
        self._shutdown_wait = shutdown_wait
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._web_runner: web.AppRunner | None = None
        self.web_url: str | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.settlement_jobs: SettlementJobs | None = None

    @property
    def scheduler_running(self) -> bool:
        """Whether the scheduler is running."""
        return self.scheduler is not None and self.scheduler.running

    def scheduler_check(self) -> ReadinessCheck:
        """Return the readiness check that the scheduler is running."""
        return flag_check(lambda: self.scheduler_running, "the scheduler is not running")

    async def start_web_server(
        self, extra_checks: Mapping[str, ReadinessCheck] | None = None
    ) -> str:
        """Serve the side web server on the configured address and return its base URL."""
        server = self.services.settings.integrations.server
        app = build_web_app(self.services, extra_checks)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, server.host, server.port)
        await site.start()
        self._web_runner = runner

        host, port = runner.addresses[0][:2]
        url_host = f"[{host}]" if ":" in str(host) else str(host)
        self.web_url = f"http://{url_host}:{port}"
        log.info("web_server_started", url=self.web_url)
        return self.web_url

    def start_poller(self) -> None:
        """Start the poller and the event loop lag monitor as tasks."""
        services = self.services
        self._tasks.append(
            asyncio.create_task(services.poller.run_forever(self._stop), name="poller")
        )
        self._tasks.append(
            asyncio.create_task(
                monitor_event_loop_lag(services.metrics, stop=self._stop), name="loop-lag"
            )
        )

    def start_gauge_refresh(self, interval: timedelta = DEFAULT_REFRESH_INTERVAL) -> None:
        """Start the task that refreshes the payout age, liability and balance gauges."""
        services = self.services
        refresher = GaugeRefresher(
            services.db,
            services.metrics,
            services.clock,
            balance_probe=services.operator_balance_probe,
        )
        self._tasks.append(
            asyncio.create_task(refresher.run_forever(self._stop, interval), name="gauges")
        )

    def start_scheduler(self) -> None:
        """Start the scheduler with settlement, confirmation, re-verification and extra jobs."""
        services = self.services
        scheduler = AsyncIOScheduler(timezone=UTC)
        jobs = SettlementJobs(
            services.settlement,
            scheduler_minutes=services.settings.payout.scheduler_minutes,
            clock=services.clock,
        )
        jobs.install(scheduler)

        jobs_to_add = [
            PeriodicJob("reverification", REVERIFY_INTERVAL, self._reverify_stale_players)
        ]
        receiver = services.receiver
        if receiver is not None:
            # Only the local signer has a receiver. The node_wallet signer's wallet receives
            # top-ups by itself.
            jobs_to_add.append(
                PeriodicJob("receive_topups", RECEIVE_INTERVAL, lambda: receive_topups(receiver))
            )
        for job in (*jobs_to_add, *self._extra_jobs):
            scheduler.add_job(
                _logged(job),
                "interval",
                seconds=max(1, int(job.interval.total_seconds())),
                id=job.job_id,
                name=job.job_id,
                max_instances=1,
                coalesce=True,
                replace_existing=True,
            )
        scheduler.start()
        self.scheduler = scheduler
        self.settlement_jobs = jobs
        log.info("scheduler_started", jobs=[job.id for job in scheduler.get_jobs()])

    async def _reverify_stale_players(self) -> None:
        with span("verification.reverify_stale") as current:
            results = await self.services.verification.reverify_stale(REVERIFY_MAX_AGE)
            current.set_attributes(players=len(results))

    async def stop(self) -> None:
        """Stop the scheduler (waiting for a payout step in flight), the tasks and the server."""
        if self.settlement_jobs is not None:
            finished = await self.settlement_jobs.shutdown(self.scheduler, self._shutdown_wait)
            if not finished:
                log.warning("shutdown_left_payout_in_flight")
        elif self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
        self.settlement_jobs = None

        self._stop.set()
        if self._tasks:
            outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
            for task, outcome in zip(self._tasks, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.error("background_task_failed", task=task.get_name(), exc_info=outcome)
            self._tasks.clear()

        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
            log.info("web_server_stopped")


def _logged(job: PeriodicJob) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.run()
        except Exception:
            log.exception("scheduled_job_failed", job_id=job.job_id)

    return run
