"""The kill-count poller: reads eligible players' kill counts fairly within the stats budget.

Eligible links are read least recently read first, with never-read links before all others
and ties broken by id. With N eligible links and a budget of B readings per minute, every
link is therefore read about every N/B minutes and none waits for good. Each reading is
fetched with no database transaction open and then applied in a short write transaction of
its own.

A player who was ineligible for a while (left the guild, lost the Yunite link, frozen) is not
paid for the kills made meanwhile: the first OK reading after their return moves the cursor
without accruing. A relink to another account starts that account from a fresh baseline.

A reading that fails to apply (a bug, a database error) is logged with the link id. The link
is then marked as read with its stats unavailable, in a transaction of its own, so it goes to
the back of the queue instead of blocking every batch. The batch goes on with the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.db.models import EpicLink, Player, Wallet
from core.db.models import StatsState as StoredStatsState
from core.db.session import Database
from core.integrations.fortnite import StatsError, StatsReading, StatsState
from core.observability.metrics import Metrics
from core.services.accrual import AbusePolicy, ReadingResult, apply_reading

log = structlog.get_logger(__name__)

# Each batch covers about this many seconds of the budget, so a stop request or a change in
# the set of eligible players is noticed within a few seconds.
BATCH_SECONDS = 5.0
MAX_BATCH_SIZE = 50

# Pause when no player is eligible, or after a batch failed.
IDLE_SECONDS = 30.0
ERROR_BACKOFF_SECONDS = 60.0

Monotonic = Callable[[], float]
Pause = Callable[[asyncio.Event, float], Awaitable[None]]


class StatsReader(Protocol):
    """The part of `StatsClient` the poller uses."""

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        """Read the lifetime kill count of one Epic account."""
        ...


@dataclass(frozen=True, slots=True)
class PollerSettings:
    """The configuration the poller applies, taken from payout.yaml and integrations.yaml."""

    raw_per_kill: int
    reset_lower_readings: int
    zone: ZoneInfo
    readings_per_minute: int
    abuse_policy: AbusePolicy

    @classmethod
    def from_config(
        cls, payout: PayoutSettings, integrations: IntegrationsSettings
    ) -> PollerSettings:
        """Build the poller settings from the loaded configuration sections."""
        return cls(
            raw_per_kill=payout.payout_amount_raw_per_kill,
            reset_lower_readings=payout.reset_rule.lower_readings,
            zone=payout.zone,
            readings_per_minute=integrations.rate_limits.fortnite_per_min,
            abuse_policy=AbusePolicy(
                kill_rate_per_min=integrations.abuse_heuristics.kill_rate_per_min
            ),
        )


@dataclass(slots=True)
class PollReport:
    """Counts of what one batch did.

    `selected` links were due; `readings` of them were read and applied. `skipped` links
    stopped being eligible between the read and the write. `errors` readings raised an
    unexpected error. `aborted` is True when the stats API rejected the faucet's key or
    request, which stops the batch.
    """

    selected: int = 0
    readings: int = 0
    skipped: int = 0
    errors: int = 0
    aborted: bool = False
    results: Counter[ReadingResult] = field(default_factory=Counter)
    accrued_kills: int = 0
    held_kills: int = 0


async def wait_for_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`, returning early when `stop` is set."""
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return


class Poller:
    """Read kill counts for eligible players and apply them; see the module docstring."""

    def __init__(
        self,
        db: Database,
        stats: StatsReader,
        settings: PollerSettings,
        clock: Clock,
        metrics: Metrics,
        *,
        monotonic: Monotonic = time.monotonic,
        pause: Pause = wait_for_stop,
    ) -> None:
        if settings.readings_per_minute < 1:
            raise ValueError("readings_per_minute must be at least 1")
        self._db = db
        self._stats = stats
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._monotonic = monotonic
        self._pause = pause

    @property
    def seconds_per_reading(self) -> float:
        """Seconds between readings at the configured budget."""
        return 60.0 / self._settings.readings_per_minute

    @property
    def batch_size(self) -> int:
        """Readings per batch in `run_forever`: about `BATCH_SECONDS` of the budget."""
        per_batch = int(BATCH_SECONDS / self.seconds_per_reading)
        return max(1, min(MAX_BATCH_SIZE, per_batch))

    async def due_links(self, limit: int) -> list[tuple[int, str]]:
        """Return (link id, Epic account ID) of up to `limit` eligible links, oldest read first."""
        # Never-read links first, then the rest by last reading. Two queries, because each
        # walks `ix_epic_links_poll_order` in order and stops at the limit, while one ORDER BY
        # last_read_at NULLS FIRST makes PostgreSQL read and sort every active link (its index
        # keeps NULLs last). Both order by (last_read_at, id), the index order; for the
        # never-read links that is id order.
        due = (
            select(EpicLink.id, EpicLink.epic_account_id)
            .join(Player, Player.id == EpicLink.player_id)
            .where(EpicLink.active.is_(True), _eligible_player())
            .order_by(EpicLink.last_read_at, EpicLink.id)
        )
        async with self._db.read() as session:
            never_read = await session.execute(
                due.where(EpicLink.last_read_at.is_(None)).limit(limit)
            )
            links = [(link_id, epic_account_id) for link_id, epic_account_id in never_read]
            if len(links) < limit:
                read_before = await session.execute(
                    due.where(EpicLink.last_read_at.is_not(None)).limit(limit - len(links))
                )
                links.extend((link_id, epic_account_id) for link_id, epic_account_id in read_before)
            return links

    async def poll_batch(self, max_readings: int) -> PollReport:
        """Read and apply up to `max_readings` due links, one short transaction each."""
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")

        report = PollReport()
        due = await self.due_links(max_readings)
        report.selected = len(due)
        for link_id, epic_account_id in due:
            try:
                reading = await self._stats.lifetime_kills(epic_account_id)
            except StatsError as error:
                # A rejected key or request fails every reading alike; the operator must fix it.
                self._metrics.count_stats_request("error")
                log.error(
                    "poll_batch_aborted",
                    epic_link_id=link_id,
                    error_type=type(error).__name__,
                    reason=error.safe_message,
                )
                report.errors += 1
                report.aborted = True
                break
            except Exception:
                # An unexpected failure for one link must not keep it at the front of the
                # queue, where it would block everyone behind it, so it is marked as read.
                self._metrics.count_stats_request("error")
                log.exception("poll_reading_failed", epic_link_id=link_id)
                report.errors += 1
                await self._mark_unavailable(link_id)
                continue

            self._metrics.count_stats_request(_stats_outcome(reading))
            try:
                await self._apply(link_id, reading, report)
            except Exception:
                # The write transaction rolled back, so last_read_at did not move either.
                log.exception("poll_apply_failed", epic_link_id=link_id)
                report.errors += 1
                await self._mark_unavailable(link_id)

        if report.selected:
            log.debug(
                "poll_batch_finished",
                selected=report.selected,
                readings=report.readings,
                skipped=report.skipped,
                errors=report.errors,
                accrued_kills=report.accrued_kills,
                held_kills=report.held_kills,
            )
        return report

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll in batches paced to the budget until `stop` is set."""
        log.info(
            "poller_started",
            readings_per_minute=self._settings.readings_per_minute,
            batch_size=self.batch_size,
        )
        while not stop.is_set():
            started = self._monotonic()
            try:
                report = await self.poll_batch(self.batch_size)
            except Exception:
                log.exception("poll_batch_failed")
                await self._pause(stop, ERROR_BACKOFF_SECONDS)
                continue

            if report.aborted:
                wait = ERROR_BACKOFF_SECONDS
            elif report.selected == 0:
                wait = IDLE_SECONDS
            else:
                # Each selected link used one slot of the budget, read or not.
                budget_end = started + report.selected * self.seconds_per_reading
                wait = budget_end - self._monotonic()
            await self._pause(stop, wait)
        log.info("poller_stopped")

    async def _apply(self, link_id: int, reading: StatsReading, report: PollReport) -> None:
        settings = self._settings
        async with self._db.write() as session:
            link = await _locked_eligible_link(session, link_id, reading.epic_account_id)
            if link is None:
                report.skipped += 1
                log.debug("poll_link_skipped", epic_link_id=link_id)
                return

            outcome = await apply_reading(
                session,
                link,
                reading,
                raw_per_kill=settings.raw_per_kill,
                reset_lower_readings=settings.reset_lower_readings,
                zone=settings.zone,
                now=self._clock(),
                abuse_policy=settings.abuse_policy,
                metrics=self._metrics,
            )

        report.readings += 1
        report.results[outcome.result] += 1
        if outcome.result is ReadingResult.ACCRUED:
            report.accrued_kills += outcome.kills
        elif outcome.result is ReadingResult.HELD:
            report.held_kills += outcome.kills

    async def _mark_unavailable(self, link_id: int) -> None:
        """Mark the link as read with its stats unavailable, without touching its cursor."""
        now = self._clock()
        try:
            async with self._db.write() as session:
                link = await session.get(EpicLink, link_id, with_for_update=True)
                if link is None:
                    return
                link.last_read_at = now
                if link.stats_state is not StoredStatsState.UNAVAILABLE:
                    link.stats_state = StoredStatsState.UNAVAILABLE
                    link.stats_state_at = now
        except Exception:
            # The database itself is failing; run_forever backs off if the next batch fails too.
            log.exception("poll_mark_unavailable_failed", epic_link_id=link_id)


def _eligible_player() -> ColumnElement[bool]:
    has_wallet = exists().where(Wallet.player_id == Player.id)
    return (Player.guild_member.is_(True)) & (Player.frozen.is_(False)) & has_wallet


async def _locked_eligible_link(
    session: AsyncSession, link_id: int, epic_account_id: str
) -> EpicLink | None:
    """Lock the link if it is still active, for the same account, and its player eligible."""
    return await session.scalar(
        select(EpicLink)
        .join(Player, Player.id == EpicLink.player_id)
        .where(
            EpicLink.id == link_id,
            EpicLink.active.is_(True),
            EpicLink.epic_account_id == epic_account_id,
            _eligible_player(),
        )
        .with_for_update(of=EpicLink)
    )


def _stats_outcome(reading: StatsReading) -> str:
    if reading.state is StatsState.UNAVAILABLE and reading.reason == "rate_limited":
        return "rate_limited"
    return reading.state.value
