"""Players and accruals a campaign creates, with the raw it created for each player."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select

from core.db.models import Payout, PayoutState
from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.settlement.helpers_world import RAW_PER_KILL, SeededPlayer, World
from tests.reliability.invariants import TrackedPlayer

MAX_KILLS_PER_ACCRUAL = 6


class CampaignWorld:
    """A settlement test world that remembers every raw it created, for the invariants."""

    def __init__(self, db: Database, rng: random.Random, salt: str) -> None:
        self._world = World(db, address_salt=salt)
        self._rng = rng
        self._seeded: list[SeededPlayer] = []
        self.players: list[TrackedPlayer] = []
        self.created_raw: dict[int, int] = defaultdict(int)
        self.accruals_created = 0

    async def add_players(self, count: int) -> None:
        """Create `count` eligible players with wallets."""
        for _ in range(count):
            seeded = await self._world.add_player()
            self._seeded.append(seeded)
            self.players.append(TrackedPlayer(seeded.id, seeded.address))

    async def add_accruals(self, count: int) -> None:
        """Give `count` accruals of 1 to 6 kills to players chosen at random."""
        for _ in range(count):
            player = self._rng.choice(self._seeded)
            kills = self._rng.randint(1, MAX_KILLS_PER_ACCRUAL)
            await self._world.add_accrual(player, kills)
            self.created_raw[player.id] += kills * RAW_PER_KILL
            self.accruals_created += 1


async def payout_counts(db: Database) -> dict[str, int]:
    """Return how many payouts are in each state."""
    async with db.read() as session:
        rows = await session.execute(
            select(Payout.state, func.count(Payout.id)).group_by(Payout.state)
        )
        return {PayoutState(state).value: int(count) for state, count in rows.all()}


def sent_raw(node: SandboxBananoNode, players: Iterable[TrackedPlayer]) -> int:
    """Return the raw the sandbox ledger sent to the players' wallets."""
    return sum(node.total_sent_to(player.address) for player in players)
