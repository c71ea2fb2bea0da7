"""Going live after a dry run: release the accruals that dry-run payouts claimed.

Dry-run payouts claim accruals exactly as live ones would, so the kills earned during the dry
run stay claimed and are never paid until released. The release clears those claims (the
payouts stay `dry_run`, with a note and an audit entry each), and the next live settlement
pays the accruals for real.

The release is rejected while `dry_run` is still on, because the next dry run would only
claim the accruals again. Run it after switching `dry_run` off. Until then the live settlement
does not see the claimed accruals, so nothing is paid twice and nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update

from core.clock import Clock, utc_now
from core.db.claims import release_claims
from core.db.locking import SETTLEMENT_LOCK_NAME, SettlementLock, new_holder_id
from core.db.models import Accrual, Payout, PayoutState
from core.db.session import Database
from core.errors import Pay2SlayError
from core.services.audit import record_audit

log = structlog.get_logger(__name__)

RELEASE_NOTE = "dry run: accruals released for live payouts"


class GoLiveRefusedError(Pay2SlayError):
    """The release of dry-run payouts cannot run now; the message explains why."""


@dataclass(frozen=True)
class GoLiveReport:
    """How many dry-run payouts had their accruals released, and how many accruals."""

    payouts: int
    accruals: int
    amount_raw: int


async def release_dry_run_payouts(
    db: Database,
    *,
    dry_run_enabled: bool,
    actor_discord_id: int | None,
    lock: SettlementLock | None = None,
    clock: Clock = utc_now,
    lock_ttl: timedelta = timedelta(minutes=10),
    lock_name: str = SETTLEMENT_LOCK_NAME,
) -> GoLiveReport:
    """Release every accrual that a dry-run payout claims, under the settlement lock.

    Raises `GoLiveRefusedError` while dry run is on or while a settlement is running.
    Running it twice is harmless: the second run finds nothing to release.
    """
    if dry_run_enabled:
        raise GoLiveRefusedError(
            "Dry run is still on. Set dry_run to false, restart the faucet, then release the "
            "dry-run payouts."
        )

    lock = lock if lock is not None else SettlementLock(db, clock=clock)
    holder = new_holder_id()
    async with lock.hold(lock_name, holder, lock_ttl) as acquired:
        if not acquired:
            raise GoLiveRefusedError("A settlement is running right now. Try again in a minute.")
        report = await _release(db, clock, actor_discord_id)

    log.info(
        "dry_run_payouts_released",
        actor_discord_id=actor_discord_id,
        payouts=report.payouts,
        accruals=report.accruals,
        amount_raw=report.amount_raw,
    )
    return report


async def _release(db: Database, clock: Clock, actor_discord_id: int | None) -> GoLiveReport:
    at = clock()
    payouts_released = 0
    accruals_released = 0
    amount_raw = 0
    async with db.write() as session:
        claiming = (
            select(Payout.id, Payout.player_id, Payout.amount_raw)
            .where(
                Payout.state == PayoutState.DRY_RUN,
                select(Accrual.id).where(Accrual.payout_id == Payout.id).exists(),
            )
            .order_by(Payout.id)
        )
        for payout_id, player_id, payout_amount_raw in (await session.execute(claiming)).all():
            released = await release_claims(session, payout_id)
            payouts_released += 1
            accruals_released += released
            amount_raw += payout_amount_raw
            record_audit(
                session,
                action="dry_run_payout_released",
                at=at,
                actor_discord_id=actor_discord_id,
                player_id=player_id,
                payout_id=payout_id,
                detail={"released_accruals": released, "amount_raw": payout_amount_raw},
            )
            await session.execute(
                update(Payout)
                .where(Payout.id == payout_id)
                .values(failure_reason=RELEASE_NOTE, updated_at=at)
            )

        record_audit(
            session,
            action="go_live_release",
            at=at,
            actor_discord_id=actor_discord_id,
            detail={
                "payouts": payouts_released,
                "accruals": accruals_released,
                "amount_raw": amount_raw,
            },
        )
    return GoLiveReport(payouts=payouts_released, accruals=accruals_released, amount_raw=amount_raw)
