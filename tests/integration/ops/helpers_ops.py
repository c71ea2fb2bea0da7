"""Helpers for the operations tests: ledger rows to back up and count."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.banano.address import encode_address
from core.db import Database
from core.db.models import (
    Accrual,
    AccrualStatus,
    Base,
    Payout,
    PayoutAccrual,
    PayoutState,
    Player,
    Wallet,
)

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
RAW_PER_KILL = 21 * 10**28


@dataclass(frozen=True)
class LedgerCounts:
    """Row counts and the summed amounts that a backup must keep exactly."""

    players: int
    accruals: int
    payouts: int
    accrued_raw: int
    paid_raw: int


def wallet_address(number: int) -> str:
    """Return a valid `ban_` address for test player `number`."""
    return encode_address(hashlib.sha256(f"wallet:{number}".encode()).digest())


async def add_ledger(db: Database, players: int, *, first: int = 1) -> None:
    """Add `players` players, each with a wallet, two accruals and one confirmed payout."""
    async with db.write() as session:
        for number in range(first, first + players):
            player = Player(discord_id=400000000000000000 + number, created_at=NOW)
            session.add(player)
            await session.flush()
            session.add(
                Wallet(
                    player_id=player.id,
                    address=wallet_address(number),
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            epic = hashlib.sha256(f"epic:{number}".encode()).hexdigest()[:32]
            accruals = [
                Accrual(
                    player_id=player.id,
                    epic_account_id=epic,
                    kills=kills,
                    raw_per_kill=RAW_PER_KILL,
                    amount_raw=kills * RAW_PER_KILL,
                    status=AccrualStatus.OPEN,
                    cursor_from=start,
                    cursor_to=start + kills,
                    created_at=NOW,
                )
                for start, kills in ((0, 3), (3, number))
            ]
            session.add_all(accruals)
            await session.flush()
            payout = Payout(
                player_id=player.id,
                destination=wallet_address(number),
                amount_raw=accruals[0].amount_raw,
                kills=accruals[0].kills,
                state=PayoutState.CONFIRMED,
                dry_run=False,
                idempotency_key=f"payout-{number}",
                block_hash=hashlib.sha256(f"block:{number}".encode()).hexdigest().upper(),
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(payout)
            await session.flush()
            accruals[0].payout_id = payout.id
            session.add(PayoutAccrual(payout_id=payout.id, accrual_id=accruals[0].id))


async def ledger_counts(db: Database) -> LedgerCounts:
    """Count players, accruals and payouts, and sum their raw amounts in Python."""
    async with db.read() as session:
        accrued = (await session.scalars(select(Accrual.amount_raw))).all()
        paid = (await session.scalars(select(Payout.amount_raw))).all()
        return LedgerCounts(
            players=await _count(session, Player),
            accruals=len(accrued),
            payouts=len(paid),
            accrued_raw=sum(accrued),
            paid_raw=sum(paid),
        )


async def _count(session: AsyncSession, model: type[Base]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)
