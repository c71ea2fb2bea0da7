"""Choosing which players a settlement run pays, with grouped queries instead of one per player.

A player is a candidate when they are a guild member, have an active Epic link and a wallet,
are not frozen, and have at least one open accrual that no payout claims. The candidate query
groups open accruals by player on the `(player_id, status, payout_id)` index; accruals are
then loaded for a chunk of players at a time.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import ACTIVE_EPIC_LINK, Accrual, AccrualStatus, EpicLink, Player, Wallet
from core.services.caps import OpenAccrual

SettlementOrder = Literal["random", "oldest_first"]

# Players whose open accruals are loaded in one query; keeps IN lists well below the
# bind-parameter limits of SQLite and asyncpg.
ACCRUAL_CHUNK = 500

_UNCLAIMED_OPEN = and_(Accrual.status == AccrualStatus.OPEN, Accrual.payout_id.is_(None))


@dataclass(frozen=True)
class Candidate:
    """An eligible player with open accruals, and where a payout to them goes."""

    player_id: int
    destination: str
    oldest_open_at: datetime


async def eligible_candidates(session: AsyncSession) -> list[Candidate]:
    """Return every eligible player with unclaimed open accruals, in player id order."""
    active_link = exists().where(EpicLink.player_id == Player.id, ACTIVE_EPIC_LINK)
    query = (
        select(Accrual.player_id, Wallet.address, func.min(Accrual.created_at))
        .join(Player, Player.id == Accrual.player_id)
        .join(Wallet, Wallet.player_id == Accrual.player_id)
        .where(
            _UNCLAIMED_OPEN,
            Player.guild_member.is_(True),
            Player.frozen.is_(False),
            active_link,
        )
        .group_by(Accrual.player_id, Wallet.address)
        .order_by(Accrual.player_id)
    )
    return [
        Candidate(player_id=player_id, destination=address, oldest_open_at=oldest)
        for player_id, address, oldest in await session.execute(query)
    ]


async def count_players_with_open_accruals(session: AsyncSession) -> int:
    """Return how many players, eligible or not, have unclaimed open accruals."""
    count = await session.scalar(
        select(func.count(func.distinct(Accrual.player_id))).where(_UNCLAIMED_OPEN)
    )
    return int(count or 0)


def order_candidates(
    candidates: Sequence[Candidate], order: SettlementOrder, rng: random.Random
) -> list[Candidate]:
    """Order the whole eligible set: shuffled by `rng`, or by oldest open accrual first."""
    if order == "oldest_first":
        return sorted(candidates, key=lambda c: (c.oldest_open_at, c.player_id))
    shuffled = sorted(candidates, key=lambda c: c.player_id)
    rng.shuffle(shuffled)
    return shuffled


async def load_open_accruals(
    session: AsyncSession, player_ids: Sequence[int]
) -> dict[int, list[OpenAccrual]]:
    """Return each player's unclaimed open accruals, oldest first, from one query."""
    by_player: dict[int, list[OpenAccrual]] = defaultdict(list)
    if not player_ids:
        return by_player
    rows = await session.execute(
        select(
            Accrual.player_id,
            Accrual.id,
            Accrual.kills,
            Accrual.raw_per_kill,
            Accrual.amount_raw,
        )
        .where(_UNCLAIMED_OPEN, Accrual.player_id.in_(list(player_ids)))
        .order_by(Accrual.player_id, Accrual.created_at, Accrual.id)
    )
    for player_id, accrual_id, kills, raw_per_kill, amount_raw in rows:
        by_player[player_id].append(
            OpenAccrual(
                id=accrual_id, kills=kills, raw_per_kill=raw_per_kill, amount_raw=amount_raw
            )
        )
    return by_player
