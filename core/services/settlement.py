"""The settlement run: turn open accruals into payouts under the caps, one run at a time.

A run takes the settlement lock (a lease row on SQLite, an advisory lock on PostgreSQL) and
reconciles unfinished payouts. It stops if an admin paused payouts or, when live, if the
operator balance is below the floor. Then it pays the eligible players that no cap stops, in
`settlement_order`, at most `batch_size` of them. Live payouts are created and committed in
batches, then sent (see `_pay_live`); each is sent only while the balance after it stays at
or above the floor. Players not reached roll over to the next run.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import random
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from core.banano.rpc_errors import NodeError
from core.banano.units import format_ban
from core.clock import Clock, utc_now
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.db.locking import SETTLEMENT_LOCK_NAME, SettlementLock, new_holder_id
from core.db.models import SettlementRun
from core.db.session import Database
from core.observability.metrics import Metrics
from core.observability.tracing import span
from core.services.audit import record_audit
from core.services.caps import (
    NO_USAGE,
    CapLimits,
    CapUsage,
    ClaimPlan,
    SkipReason,
    cap_reached,
    cap_windows,
    kill_allowance,
    load_cap_usage,
    plan_claim,
)
from core.services.faucet_flags import is_paused, pause_reason
from core.services.liability import load_liability
from core.services.payout_processor import PayoutAction, PayoutProcessor, StepHook
from core.services.payouts import (
    ClaimConflictError,
    NewPayout,
    create_payout,
    create_payouts,
    in_flight_raw,
)
from core.services.reconciler import Reconciler, ReconcileReport
from core.services.settlement_selection import (
    ACCRUAL_CHUNK,
    Candidate,
    SettlementOrder,
    count_players_with_open_accruals,
    eligible_candidates,
    load_open_accruals,
    order_candidates,
)

log = structlog.get_logger(__name__)

DEFAULT_LOCK_TTL = timedelta(minutes=10)
# The largest batch of live payouts committed together and sent as one chain of blocks.
SEND_BATCH_LIMIT = 64
SCHEDULED_TRIGGER = "schedule"
# The stop reason of a live run whose balance cannot be read before a batch.
_BALANCE_UNREADABLE = (
    "The operator balance could not be read from the Banano node; the remaining players roll over."
)


class RunOutcome(enum.StrEnum):
    """End state of a settlement run; the values are the settlement metric's labels."""

    COMPLETED = "completed"
    SKIPPED_PAUSED = "skipped_paused"
    SKIPPED_FLOOR = "skipped_floor"
    SKIPPED_LOCKED = "skipped_locked"
    FAILED = "failed"

    @property
    def stored(self) -> str:
        """The value of `settlement_runs.outcome`: completed, skipped or failed."""
        if self in (RunOutcome.COMPLETED, RunOutcome.FAILED):
            return self.value
        return "skipped"


@dataclass(frozen=True)
class SettlementPolicy:
    """The settings a settlement run follows, taken from payout.yaml and integrations.yaml."""

    caps: CapLimits
    zone: ZoneInfo
    order: SettlementOrder
    batch_size: int
    dry_run: bool
    min_operator_balance_raw: int
    # The lease outlives a crashed holder by at most this long on SQLite; a live holder
    # renews it every third of it.
    lock_ttl: timedelta = DEFAULT_LOCK_TTL
    # Every process settling the same database must use the same name.
    lock_name: str = SETTLEMENT_LOCK_NAME

    @classmethod
    def from_settings(
        cls, payout: PayoutSettings, integrations: IntegrationsSettings
    ) -> SettlementPolicy:
        """Build the policy from the two configuration sections that settlement reads.

        The lease lasts at most one settlement interval. On SQLite a crashed holder's lease
        blocks the other processes until it expires, so another process then takes over
        within two intervals: the expiry comes within one, and its next run within another.
        """
        interval = timedelta(minutes=payout.scheduler_minutes)
        return cls(
            caps=CapLimits(
                daily_payouts=payout.daily_payout_cap,
                weekly_payouts=payout.weekly_payout_cap,
                daily_kills=payout.daily_kill_cap,
                weekly_kills=payout.weekly_kill_cap,
            ),
            zone=payout.zone,
            order=payout.settlement_order,
            batch_size=payout.batch_size,
            dry_run=integrations.dry_run,
            min_operator_balance_raw=integrations.min_operator_balance_raw,
            lock_ttl=min(DEFAULT_LOCK_TTL, interval),
        )


@dataclass
class SettlementReport:
    """Result of one settlement run; `skip_reason` is shown to admins."""

    outcome: RunOutcome
    trigger: str
    dry_run: bool
    run_id: int | None = None
    skip_reason: str | None = None
    # Why a run that paid some players stopped before reaching the rest.
    stop_reason: str | None = None
    payout_ids: list[int] = field(default_factory=list)
    paid_raw: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    operator_balance_raw: int | None = None
    reconcile: ReconcileReport | None = None


class _LivePlans:
    """The plans of one chunk of a live run and the payouts created from them but not sent."""

    def __init__(self, plans: Sequence[tuple[Candidate, ClaimPlan]]) -> None:
        self._plans = plans
        self._position = 0
        # (payout id, amount in raw) in id order, which is the order their blocks are chained.
        self.created: deque[tuple[int, int]] = deque()

    @property
    def exhausted(self) -> bool:
        """Whether every plan was used or skipped."""
        return self._position >= len(self._plans)

    def next_plans(self) -> Iterator[tuple[Candidate, ClaimPlan]]:
        """Yield the plans not used yet; each one yielded counts as used."""
        while self._position < len(self._plans):
            plan = self._plans[self._position]
            self._position += 1
            yield plan

    def take(self, count: int) -> list[tuple[int, int]]:
        """Remove and return up to `count` created payouts, the oldest first."""
        return [self.created.popleft() for _ in range(min(count, len(self.created)))]

    def take_all(self) -> list[tuple[int, int]]:
        """Remove and return every created payout."""
        return self.take(len(self.created))


class SettlementService:
    """Runs settlements and admin retries under one lock, with the same code path."""

    def __init__(
        self,
        db: Database,
        policy: SettlementPolicy,
        *,
        metrics: Metrics,
        processor: PayoutProcessor | None = None,
        lock: SettlementLock | None = None,
        rng: random.Random | None = None,
        clock: Clock = utc_now,
        step_hook: StepHook | None = None,
    ) -> None:
        if not policy.dry_run and processor is None:
            raise ValueError("a live settlement needs a payout processor with a sender")
        self._db = db
        self.policy = policy
        self._metrics = metrics
        self._processor = processor
        self._reconciler = None if processor is None else Reconciler(db, processor, metrics)
        self._lock = lock if lock is not None else SettlementLock(db, clock=clock)
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._step_hook = step_hook
        self._stop_requested = False
        # The size of the next batch of live payouts; each run starts again at one.
        self._send_batch_size = 1

    @property
    def db(self) -> Database:
        """The database this service settles on."""
        return self._db

    @property
    def processor(self) -> PayoutProcessor | None:
        """The live payout processor; None when only dry runs are possible."""
        return self._processor

    @property
    def reconciler(self) -> Reconciler | None:
        """The reconciler of live payouts; None without a processor."""
        return self._reconciler

    @property
    def lock(self) -> SettlementLock:
        """The settlement lock that runs, retries and go-live releases share."""
        return self._lock

    @property
    def metrics(self) -> Metrics:
        """The metrics this service updates."""
        return self._metrics

    def now(self) -> datetime:
        """Return the current time from the service's clock."""
        return self._clock()

    def request_stop(self) -> None:
        """Stop the current run and every later one before their next payout.

        The payout in flight finishes its step first, so it ends in a committed state. This is
        for shutdown: the service sends nothing more afterwards.
        """
        self._stop_requested = True

    def holder_id(self) -> str:
        """Return a fresh lease holder id for one locked operation."""
        return new_holder_id()

    async def run(
        self, trigger: str = SCHEDULED_TRIGGER, actor_discord_id: int | None = None
    ) -> SettlementReport:
        """Run one settlement and return its report; errors end it as `failed`, not raised."""
        with span("settlement.run", trigger=trigger, dry_run=self.policy.dry_run) as current:
            report = await self._run(trigger, actor_discord_id)
            current.set_attributes(
                run_id=report.run_id,
                outcome=report.outcome.value,
                payouts=len(report.payout_ids),
                paid_raw=report.paid_raw,
            )
        return report

    async def _run(self, trigger: str, actor_discord_id: int | None) -> SettlementReport:
        started = time.monotonic()
        report = SettlementReport(
            outcome=RunOutcome.COMPLETED, trigger=trigger, dry_run=self.policy.dry_run
        )
        holder = self.holder_id()
        try:
            async with self._lock.hold(
                self.policy.lock_name, holder, self.policy.lock_ttl
            ) as acquired:
                if acquired:
                    await self._run_locked(report, holder, actor_discord_id)
                else:
                    report.outcome = RunOutcome.SKIPPED_LOCKED
                    report.skip_reason = "Another settlement is running; this one was skipped."
                    log.info("settlement_skipped_locked", trigger=trigger)
                    await self._start_run_row(report, actor_discord_id)
                    await self._finish_run_row(report)
        except asyncio.CancelledError:
            # Only a shutdown whose wait ran out cancels a run. Its row is closed so that it
            # does not stay `running`, then the cancellation goes on.
            log.warning("settlement_cancelled", run_id=report.run_id, trigger=trigger)
            report.outcome = RunOutcome.FAILED
            report.skip_reason = "The run was cancelled at shutdown; the next run reconciles it."
            await asyncio.shield(self._finish_failed_run_row(report))
            raise
        except Exception:
            log.exception("settlement_failed", run_id=report.run_id, trigger=trigger)
            report.outcome = RunOutcome.FAILED
            report.skip_reason = "The run stopped on an unexpected error; the logs have details."
            await self._finish_failed_run_row(report)

        self._metrics.observe_settlement_run(report.outcome.value, time.monotonic() - started)
        for reason, count in report.skipped.items():
            self._metrics.count_players_skipped(reason, count)
        return report

    async def confirm(self) -> ReconcileReport | None:
        """Reconcile unfinished payouts under the lock; None when the lock is busy.

        This is the confirmation job: submitted payouts are confirmed from `block_info`, and
        blocks not confirmed after the confirmation time-out are resubmitted and reported.
        """
        if self._reconciler is None:
            return ReconcileReport()
        holder = self.holder_id()
        with span("settlement.confirm") as current:
            async with self._lock.hold(
                self.policy.lock_name, holder, self.policy.lock_ttl
            ) as acquired:
                current.set_attributes(lock_acquired=acquired)
                if not acquired:
                    log.debug("confirmation_skipped_locked")
                    return None
                report = await self._reconciler.run()
            await self._update_liability_gauges()
        return report

    async def _run_locked(
        self, report: SettlementReport, holder: str, actor_discord_id: int | None
    ) -> None:
        await self._start_run_row(report, actor_discord_id)
        log.info("settlement_started", run_id=report.run_id, trigger=report.trigger)

        if self._reconciler is not None:
            report.reconcile = await self._reconciler.run()

        async with self._db.read() as session:
            paused = await is_paused(session)
            reason = await pause_reason(session) if paused else None
        if paused:
            report.outcome = RunOutcome.SKIPPED_PAUSED
            report.skip_reason = (
                "Payouts are paused by an admin."
                if reason is None
                else f"Payouts are paused: {reason}."
            )
            log.info("settlement_skipped_paused", run_id=report.run_id)
            await self._finish_run_row(report)
            return

        # A live run reads the balance again before each batch; this first reading decides
        # whether the run starts at all.
        if not self.policy.dry_run and await self._available_balance(report) is None:
            await self._finish_run_row(report)
            return

        await self._pay_players(report, holder, actor_discord_id)
        await self._finish_run_row(report)
        log.info(
            "settlement_finished",
            run_id=report.run_id,
            payouts=len(report.payout_ids),
            paid_raw=report.paid_raw,
            stop_reason=report.stop_reason,
            **dict(report.skipped),
        )

    async def _available_balance(self, report: SettlementReport) -> int | None:
        """Return the confirmed balance less payouts in flight, or None to skip the run."""
        assert self._processor is not None
        floor_raw = self.policy.min_operator_balance_raw
        try:
            balance_raw = await self._processor.sender.operator_balance_raw()
        except NodeError as error:
            log.warning("settlement_balance_unreadable", error=type(error).__name__)
            report.outcome = RunOutcome.FAILED
            report.skip_reason = "The operator balance could not be read from the Banano node."
            return None

        report.operator_balance_raw = balance_raw
        self._metrics.set_operator_balance_raw(balance_raw)
        async with self._db.read() as session:
            # A confirmed balance does not yet show sends that are not confirmed.
            available_raw = balance_raw - await in_flight_raw(session)

        if available_raw < floor_raw:
            report.outcome = RunOutcome.SKIPPED_FLOOR
            report.skip_reason = (
                f"The operator balance available for payouts ({format_ban(max(available_raw, 0))} "
                f"BAN) is below the floor of {format_ban(floor_raw)} BAN. Top up the operator "
                "account."
            )
            log.warning(
                "settlement_skipped_floor",
                run_id=report.run_id,
                balance_raw=balance_raw,
                available_raw=available_raw,
                floor_raw=floor_raw,
            )
            return None
        return available_raw

    async def _pay_players(
        self,
        report: SettlementReport,
        holder: str,
        actor_discord_id: int | None,
    ) -> None:
        limits = self.policy.caps
        windows = cap_windows(self._clock(), self.policy.zone)
        self._send_batch_size = 1
        async with self._db.read() as session:
            candidates = await eligible_candidates(session)
            with_open_accruals = await count_players_with_open_accruals(session)
            usage = await load_cap_usage(session, windows, include_dry_run=self.policy.dry_run)

        if with_open_accruals > len(candidates):
            report.skipped[SkipReason.INELIGIBLE] += with_open_accruals - len(candidates)
        payable: list[Candidate] = []
        for candidate in candidates:
            reason = cap_reached(usage.get(candidate.player_id, NO_USAGE), limits)
            if reason is None:
                payable.append(candidate)
            else:
                report.skipped[reason] += 1

        ordered = order_candidates(payable, self.policy.order, self._rng)
        if self.policy.batch_size > 0 and len(ordered) > self.policy.batch_size:
            report.skipped[SkipReason.BATCH] += len(ordered) - self.policy.batch_size
            ordered = ordered[: self.policy.batch_size]

        for start in range(0, len(ordered), ACCRUAL_CHUNK):
            chunk = ordered[start : start + ACCRUAL_CHUNK]
            plans = await self._plan_chunk(chunk, usage, report)
            if self.policy.dry_run:
                await self._create_dry_run_payouts(plans, report, actor_discord_id)
            elif not await self._pay_live(plans, report, holder):
                return
            if self._stop_requested:
                report.stop_reason = "Shutdown requested; the remaining players roll over."
                return

    async def _plan_chunk(
        self, chunk: Sequence[Candidate], usage: dict[int, CapUsage], report: SettlementReport
    ) -> list[tuple[Candidate, ClaimPlan]]:
        async with self._db.read() as session:
            accruals = await load_open_accruals(session, [c.player_id for c in chunk])
        plans: list[tuple[Candidate, ClaimPlan]] = []
        for candidate in chunk:
            open_accruals = accruals.get(candidate.player_id, [])
            if not open_accruals:
                continue
            allowance = kill_allowance(usage.get(candidate.player_id, NO_USAGE), self.policy.caps)
            plan = plan_claim(open_accruals, allowance)
            if plan is None:
                report.skipped[SkipReason.KILL_CAP] += 1
                continue
            plans.append((candidate, plan))
        return plans

    async def _create_dry_run_payouts(
        self,
        plans: Sequence[tuple[Candidate, ClaimPlan]],
        report: SettlementReport,
        actor_discord_id: int | None,
    ) -> None:
        # Nothing is sent in dry run, so a chunk of payouts shares one transaction.
        news = [(c, self._new_payout(c, plan, report, dry_run=True)) for c, plan in plans]
        created = await self._create_payouts(news, actor_discord_id)
        for _, payout_id, amount_raw in created:
            report.payout_ids.append(payout_id)
            report.paid_raw += amount_raw
        for _, payout_id, _ in created:
            await self.after_step("created", payout_id)

    async def _pay_live(
        self,
        plans: Sequence[tuple[Candidate, ClaimPlan]],
        report: SettlementReport,
        holder: str,
    ) -> bool:
        """Create and send payouts in growing batches; False means the run must stop here.

        Payouts are created one batch ahead: while the node checks a batch's blocks, the next
        batch is committed, so the database work overlaps the node's. Each creation starts
        with the checks a single payout needs (stop, pause, balance, lock), and the pause and
        the lock are checked again before a batch is signed. Sends hold 1, 2, 4 ... payouts,
        and a send twice as large follows only a send that the node accepted whole, so a
        node that refuses blocks costs one payout, not a batch. Payouts created but not sent
        when the run stops are failed as unsent, which frees their accruals for a later run.
        """
        assert self._processor is not None
        # The node-wallet sender sends one payout at a time, and a payout it never tried is
        # indistinguishable from one whose send was lost, so its batches stay at one.
        batch_limit = SEND_BATCH_LIMIT if self._processor.signs_locally else 1
        live = _LivePlans(plans)
        while True:
            created_ahead = bool(live.created)
            if not created_ahead:
                if live.exhausted:
                    return True
                stop_reason = await self._create_batch(live, report, holder, self._send_batch_size)
                if stop_reason is not None:
                    report.stop_reason = stop_reason
                    return False
                if not live.created:
                    return True

            batch = live.take(self._send_batch_size)
            # A pause or a lost lock that came while the batch was created stops it before
            # anything is signed, so its payouts fail without having been sent. A shutdown
            # lets a batch created just now finish, as the step in flight, but not a batch
            # created ahead, whose creation was the step in flight.
            stop_reason = await self._batch_stop_reason(report, holder, shutdown=created_ahead)
            if stop_reason is None and created_ahead:
                # The balance was read before the node checked a whole batch; another
                # wallet may have spent from the account since.
                batch, stop_reason = await self._keep_above_floor(batch, live, report)
            if stop_reason is not None:
                await self._fail_unsent([*batch, *live.take_all()], stop_reason)
                report.stop_reason = stop_reason
                return False
            if not batch:
                continue

            next_size = min(self._send_batch_size * 2, batch_limit)
            ahead: list[asyncio.Task[str | None]] = []
            try:
                actions = await self._processor.send_many(
                    [payout_id for payout_id, _ in batch],
                    on_stored=functools.partial(
                        self._create_ahead, live, report, holder, next_size, ahead
                    ),
                )
            except BaseException:
                if ahead:
                    # The creation is left to finish, not cancelled: a task cancelled while
                    # its SQLite statement runs leaves the file locked (see Database.write).
                    # Its payouts stay pending unsigned, and the next run's reconciliation
                    # fails them as never sent.
                    await asyncio.wait(ahead)
                    for task in ahead:
                        if not task.cancelled():
                            task.exception()
                raise
            unknown_id: int | None = None
            for (payout_id, amount_raw), action in zip(batch, actions, strict=False):
                if action is PayoutAction.SUBMITTED:
                    report.paid_raw += amount_raw
                elif action is not PayoutAction.FAILED and unknown_id is None:
                    unknown_id = payout_id
            # Counted first, so an error in the creation ahead still reports what was sent.
            ahead_stop = None
            try:
                for task in ahead:
                    ahead_stop = await task
            except Exception:
                await self._fail_unsent(
                    live.take_all(), "The run stopped on an error while creating payouts."
                )
                raise
            if unknown_id is not None:
                # A block whose fate is unknown could still take the next block's place, so
                # nothing more is sent until the reconciler has settled it.
                report.stop_reason = (
                    f"The outcome of payout {unknown_id} is unknown; the next run reconciles it "
                    "before sending more."
                )
                log.warning("settlement_stopped_unknown_send", payout_id=unknown_id)
                # The processor has settled the rest of this batch. The payouts created ahead
                # were never signed, so they fail unsent.
                await self._fail_unsent(live.take_all(), report.stop_reason)
                return False
            if all(action is PayoutAction.SUBMITTED for action in actions):
                self._send_batch_size = next_size
            else:
                self._send_batch_size = 1
            if ahead_stop is not None:
                await self._fail_unsent(live.take_all(), ahead_stop)
                report.stop_reason = ahead_stop
                return False

    def _create_ahead(
        self,
        live: _LivePlans,
        report: SettlementReport,
        holder: str,
        next_size: int,
        tasks: list[asyncio.Task[str | None]],
    ) -> None:
        """Start creating the payouts the next send needs, as a task added to `tasks`.

        Called once the current batch's blocks are stored: the node then checks them one by
        one, and the new batch's transaction does not wait for the store's.
        """
        if not live.exhausted and len(live.created) < next_size:
            size = next_size - len(live.created)
            tasks.append(asyncio.create_task(self._create_batch(live, report, holder, size)))

    async def _create_batch(
        self, live: _LivePlans, report: SettlementReport, holder: str, size: int
    ) -> str | None:
        """Create up to `size` live payouts from the next plans; return a stop reason or None.

        The payouts join `live.created`. A plan whose payout would take the balance below the
        floor is skipped.
        """
        stop_reason = await self._batch_stop_reason(report, holder)
        if stop_reason is not None:
            return stop_reason
        # The balance may have dropped since the last send (another wallet, a send not
        # counted yet), so it is read again before each batch. Payouts already created count
        # as in flight, so the batches ahead are covered too.
        fresh_raw = await self._fresh_available_raw()
        if fresh_raw is None:
            return _BALANCE_UNREADABLE
        available_raw = fresh_raw
        floor_raw = self.policy.min_operator_balance_raw
        batch: list[tuple[Candidate, ClaimPlan]] = []
        for candidate, plan in live.next_plans():
            if available_raw - plan.amount_raw < floor_raw:
                report.skipped[SkipReason.FLOOR] += 1
                continue
            available_raw -= plan.amount_raw
            batch.append((candidate, plan))
            if len(batch) >= size:
                break
        if not batch:
            return None

        created = await self._create_live_payouts(batch, report)
        report.payout_ids.extend(payout_id for payout_id, _ in created)
        live.created.extend(created)
        for payout_id, _ in created:
            await self.after_step("created", payout_id)
        return None

    async def _keep_above_floor(
        self, batch: list[tuple[int, int]], live: _LivePlans, report: SettlementReport
    ) -> tuple[list[tuple[int, int]], str | None]:
        """Read the balance again; fail unsent the batch's payouts it no longer covers.

        Returns the payouts still to send, and a stop reason when the balance is unreadable.
        """
        fresh_raw = await self._fresh_available_raw()
        if fresh_raw is None:
            return batch, _BALANCE_UNREADABLE
        # The payouts created and not sent yet count as in flight in the fresh figure. Each
        # one is checked when its own batch comes, so only this batch is taken off here.
        available_raw = fresh_raw + sum(amount_raw for _, amount_raw in batch)
        available_raw += sum(amount_raw for _, amount_raw in live.created)
        floor_raw = self.policy.min_operator_balance_raw
        to_send: list[tuple[int, int]] = []
        dropped: list[tuple[int, int]] = []
        for payout_id, amount_raw in batch:
            if available_raw - amount_raw < floor_raw:
                dropped.append((payout_id, amount_raw))
                continue
            available_raw -= amount_raw
            to_send.append((payout_id, amount_raw))
        if dropped:
            report.skipped[SkipReason.FLOOR] += len(dropped)
            log.warning(
                "settlement_floor_reached_before_send",
                run_id=report.run_id,
                payouts=len(dropped),
                floor_raw=floor_raw,
            )
            await self._fail_unsent(
                dropped,
                "The operator balance fell below the floor before the payout was sent; the "
                "player rolls over.",
            )
        return to_send, None

    async def _fail_unsent(self, created: Sequence[tuple[int, int]], reason: str) -> None:
        assert self._processor is not None
        for payout_id, _ in created:
            await self._processor.fail_unsent(payout_id, reason)

    async def _batch_stop_reason(
        self, report: SettlementReport, holder: str, *, shutdown: bool = True
    ) -> str | None:
        """Return why the run must stop before its next batch, or None to go on.

        With `shutdown` False a requested shutdown is not a reason.
        """
        if shutdown and self._stop_requested:
            return "Shutdown requested; the remaining players roll over."
        async with self._db.read() as session:
            paused = await is_paused(session)
        if paused:
            log.info("settlement_stopped_paused", run_id=report.run_id)
            return (
                "Payouts were paused by an admin during the run; the remaining players roll over."
            )
        if not await self._lock.is_held(self.policy.lock_name, holder):
            log.error("settlement_lock_lost", run_id=report.run_id)
            return "The settlement lock was lost; the run stopped before a send."
        return None

    async def _fresh_available_raw(self) -> int | None:
        """Read the operator balance less payouts in flight again; None if it is unreadable.

        NOTE: a block the node has confirmed but the database still calls `submitted` is
        subtracted twice until the confirmation job records it, so near the floor a run
        skips players a little early. It never pays below the floor.
        """
        assert self._processor is not None
        try:
            balance_raw = await self._processor.sender.operator_balance_raw()
        except NodeError as error:
            log.warning("settlement_balance_unreadable", error=type(error).__name__)
            return None
        self._metrics.set_operator_balance_raw(balance_raw)
        async with self._db.read() as session:
            return balance_raw - await in_flight_raw(session)

    async def _create_live_payouts(
        self, batch: Sequence[tuple[Candidate, ClaimPlan]], report: SettlementReport
    ) -> list[tuple[int, int]]:
        """Create a batch of live payouts in one transaction; return (id, amount) by id.

        Every payout and its claims are committed before any of them is sent. The chain of
        blocks follows the order returned, and the reconciler checks payouts by id, so the
        two orders are the same.
        """
        with span("payout.create_batch", payouts=len(batch)) as current:
            news = [(c, self._new_payout(c, plan, report, dry_run=False)) for c, plan in batch]
            created = await self._create_payouts(news, actor_discord_id=None)
            current.set_attributes(created=len(created))
        return sorted((payout_id, amount_raw) for _, payout_id, amount_raw in created)

    async def _create_payouts(
        self, news: Sequence[tuple[Candidate, NewPayout]], actor_discord_id: int | None
    ) -> list[tuple[Candidate, int, int]]:
        """Create payouts in one transaction; return (candidate, id, amount) of each created.

        A claim conflict (an admin held or voided an accrual meanwhile) rolls the batch back,
        and the batch is then created again with a savepoint per payout, so a conflict drops
        only the payout it concerns.
        """
        if not news:
            return []
        at = self._clock()
        try:
            async with self._db.write() as session:
                payouts = await create_payouts(
                    session,
                    [new for _, new in news],
                    at=at,
                    metrics=self._metrics,
                    actor_discord_id=actor_discord_id,
                )
            return [
                (candidate, payout.id, payout.amount_raw)
                for (candidate, _), payout in zip(news, payouts, strict=True)
            ]
        except ClaimConflictError:
            if len(news) == 1:
                log.warning("payout_claim_conflict", player_id=news[0][0].player_id)
                return []

        created: list[tuple[Candidate, int, int]] = []
        async with self._db.write() as session:
            for candidate, new in news:
                try:
                    async with session.begin_nested():
                        payout = await create_payout(
                            session,
                            new,
                            at=at,
                            metrics=self._metrics,
                            actor_discord_id=actor_discord_id,
                        )
                except ClaimConflictError:
                    log.warning("payout_claim_conflict", player_id=candidate.player_id)
                    continue
                created.append((candidate, payout.id, payout.amount_raw))
        return created

    def _new_payout(
        self, candidate: Candidate, plan: ClaimPlan, report: SettlementReport, *, dry_run: bool
    ) -> NewPayout:
        return NewPayout(
            player_id=candidate.player_id,
            destination=candidate.destination,
            plan=plan,
            dry_run=dry_run,
            settlement_run_id=report.run_id,
            signed_locally=self._processor is not None and self._processor.signs_locally,
        )

    async def _start_run_row(self, report: SettlementReport, actor_discord_id: int | None) -> None:
        at = self._clock()
        async with self._db.write() as session:
            run = SettlementRun(
                started_at=at,
                outcome="running",
                trigger=report.trigger[:16],
                dry_run=report.dry_run,
                payouts_created=0,
                paid_raw=0,
            )
            session.add(run)
            await session.flush()
            report.run_id = run.id
            # Runs an admin or operator started are admin actions; scheduled ones are not.
            if actor_discord_id is not None or report.trigger != SCHEDULED_TRIGGER:
                record_audit(
                    session,
                    action="settlement_requested",
                    at=at,
                    actor_discord_id=actor_discord_id,
                    detail={"run_id": run.id, "trigger": report.trigger},
                )

    async def _finish_run_row(self, report: SettlementReport) -> None:
        if report.run_id is None:
            return
        async with self._db.write() as session:
            run = await session.get(SettlementRun, report.run_id)
            if run is None:
                return
            run.finished_at = self._clock()
            run.outcome = report.outcome.stored
            run.skip_reason = report.skip_reason or report.stop_reason
            run.payouts_created = len(report.payout_ids)
            run.paid_raw = report.paid_raw
        await self._update_liability_gauges()

    async def _finish_failed_run_row(self, report: SettlementReport) -> None:
        try:
            await self._finish_run_row(report)
        except Exception:
            log.exception("settlement_run_row_not_saved", run_id=report.run_id)

    async def _update_liability_gauges(self) -> None:
        async with self._db.read() as session:
            liability = await load_liability(session)
        self._metrics.set_open_liability_raw(liability.open_raw)
        self._metrics.set_held_liability_raw(liability.held_raw)

    async def after_step(self, step: str, payout_id: int) -> None:
        """Call the step hook, if any, after a committed step (tests simulate crashes there)."""
        if self._step_hook is not None:
            await self._step_hook(step, payout_id)
