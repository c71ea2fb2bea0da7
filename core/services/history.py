"""A player's payouts, newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Payout, PayoutState, Player
from core.db.session import Database

MAX_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class PayoutSummary:
    """One payout as players see it.

    `block_hash` is the block's hash for a live payout once signed, the synthetic
    `dryrun-...` reference for a dry-run payout, and None before signing.
    """

    id: int
    amount_raw: int
    kills: int
    state: PayoutState
    block_hash: str | None
    dry_run: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutPage:
    """One page of a player's payouts; `page` is 1-based and `pages` is at least 1."""

    discord_id: int
    page: int
    page_size: int
    total: int
    payouts: tuple[PayoutSummary, ...]

    @property
    def pages(self) -> int:
        """Number of pages, 1 for a player with no payouts."""
        return max(1, -(-self.total // self.page_size))

    @property
    def has_previous(self) -> bool:
        """Whether a page comes before this one."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Whether a page comes after this one."""
        return self.page < self.pages


def payout_summary_query() -> Select[int, int, int, PayoutState, str | None, bool, datetime]:
    """Select the columns of `PayoutSummary`, in its field order."""
    return select(
        Payout.id,
        Payout.amount_raw,
        Payout.kills,
        Payout.state,
        Payout.block_hash,
        Payout.dry_run,
        Payout.created_at,
    )


def _summary(
    payout_id: int,
    amount_raw: int,
    kills: int,
    state: PayoutState,
    block_hash: str | None,
    dry_run: bool,
    created_at: datetime,
) -> PayoutSummary:
    return PayoutSummary(payout_id, amount_raw, kills, state, block_hash, dry_run, created_at)


async def latest_payouts(
    session: AsyncSession, player_id: int, limit: int, offset: int = 0
) -> tuple[PayoutSummary, ...]:
    """Return the player's payouts newest first, read along `ix_payouts_player_created`."""
    rows = await session.execute(
        payout_summary_query()
        .where(Payout.player_id == player_id)
        .order_by(Payout.created_at.desc(), Payout.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return tuple(_summary(*row) for row in rows)


class HistoryService:
    """Read a player's payout history."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, discord_id: int, page: int, page_size: int = 10) -> PayoutPage:
        """Return page `page` (1-based) of the player's payouts, newest first.

        A page past the last one returns the last page, and a page below 1 the first, so
        paging buttons built from an older reply still land on real rows. An unknown player
        gets an empty first page.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")

        async with self._db.read() as session:
            player_id = await session.scalar(
                select(Player.id).where(Player.discord_id == discord_id)
            )
            if player_id is None:
                return PayoutPage(discord_id, 1, page_size, 0, ())

            total = int(
                await session.scalar(
                    select(func.count(Payout.id)).where(Payout.player_id == player_id)
                )
                or 0
            )
            pages = max(1, -(-total // page_size))
            page = min(max(page, 1), pages)
            payouts = await latest_payouts(
                session, player_id, limit=page_size, offset=(page - 1) * page_size
            )
        return PayoutPage(discord_id, page, page_size, total, payouts)

    async def payout(self, payout_id: int) -> PayoutSummary | None:
        """Return one payout by id, for a payout message, or None if there is none."""
        async with self._db.read() as session:
            row = (
                await session.execute(payout_summary_query().where(Payout.id == payout_id))
            ).one_or_none()
        return None if row is None else _summary(*row)
