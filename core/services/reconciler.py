"""Reconciling unfinished payouts against the ledger, at start-up and before every settlement.

Each live payout that is not final is checked with `PayoutProcessor.reconcile`. Confirmed
blocks are recorded, and unconfirmed ones wait or are resubmitted after the confirmation
time-out. Missing ones are resubmitted, or failed so their accruals can be claimed again, but
only once another confirmed block holds their place in the chain. The same pass is the
confirmation job: it runs between settlements under the same lock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import structlog

from core.db.session import Database
from core.observability.metrics import Metrics
from core.services.faucet_flags import is_paused
from core.services.payout_processor import PayoutAction, PayoutProcessor
from core.services.payouts import unfinished_payout_ids

log = structlog.get_logger(__name__)

# Reconciler metric label of each action. A block found unconfirmed counts as still pending.
_METRIC_ACTION: dict[PayoutAction, str] = {
    PayoutAction.CONFIRMED: "confirmed",
    PayoutAction.SUBMITTED: "still_pending",
    PayoutAction.RESUBMITTED: "resubmitted",
    PayoutAction.FAILED: "failed",
    PayoutAction.STILL_PENDING: "still_pending",
    PayoutAction.UNKNOWN: "unknown",
}


@dataclass
class ReconcileReport:
    """Result of one reconciliation pass, per payout and in total."""

    actions: dict[int, PayoutAction] = field(default_factory=dict)

    @property
    def counts(self) -> Counter[str]:
        """How many payouts ended each way, by action name."""
        return Counter(action.value for action in self.actions.values())

    @property
    def unresolved(self) -> list[int]:
        """Payouts whose outcome is still unknown after this pass."""
        return [
            payout_id
            for payout_id, action in self.actions.items()
            if action is PayoutAction.UNKNOWN
        ]


class Reconciler:
    """Runs `PayoutProcessor.reconcile` over every unfinished live payout, oldest first.

    The caller holds the settlement lock, so no settlement changes these payouts meanwhile.
    An error on one payout ends the pass, and with it the settlement that called it, because
    sending more on top of a ledger state the code does not understand is unsafe.
    """

    def __init__(self, db: Database, processor: PayoutProcessor, metrics: Metrics) -> None:
        self._db = db
        self._processor = processor
        self._metrics = metrics

    async def run(self) -> ReconcileReport:
        """Check every unfinished payout once and return what happened to each."""
        async with self._db.read() as session:
            payout_ids = await unfinished_payout_ids(session)
            # A pause stops every send, resubmissions included; confirmations go on.
            paused = await is_paused(session)

        report = ReconcileReport()
        for payout_id in payout_ids:
            action = await self._processor.reconcile(payout_id, may_send=not paused)
            report.actions[payout_id] = action
            metric_action = _METRIC_ACTION.get(action)
            if metric_action is not None:
                self._metrics.count_reconciler_action(metric_action)

        if payout_ids:
            log.info("reconcile_finished", checked=len(payout_ids), **dict(report.counts))
        return report

    async def reconcile_payout(self, payout_id: int) -> PayoutAction:
        """Check one payout; the admin retry path uses it for payouts still in flight."""
        action = await self._processor.reconcile(payout_id)
        metric_action = _METRIC_ACTION.get(action)
        if metric_action is not None:
            self._metrics.count_reconciler_action(metric_action)
        return action
