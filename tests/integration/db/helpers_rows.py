"""Builders for the minimal valid rows the database tests insert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.db.models import Accrual, EpicLink, Payout, PayoutState, Player, Wallet

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RAW_PER_BAN = 10**29


def make_player(discord_id: int) -> Player:
    """Return a new player row for `discord_id`."""
    return Player(discord_id=discord_id, created_at=NOW)


def make_wallet(player_id: int, address: str) -> Wallet:
    """Return a wallet row for the player."""
    return Wallet(player_id=player_id, address=address, created_at=NOW, updated_at=NOW)


def make_epic_link(player_id: int, epic_account_id: str, *, active: bool = True) -> EpicLink:
    """Return an Epic link row for the player."""
    return EpicLink(
        player_id=player_id, epic_account_id=epic_account_id, active=active, linked_at=NOW
    )


def make_accrual(player_id: int, *, kills: int = 1, raw_per_kill: int = RAW_PER_BAN) -> Accrual:
    """Return an open accrual row of `kills` kills for the player."""
    return Accrual(
        player_id=player_id,
        epic_account_id="0" * 32,
        kills=kills,
        raw_per_kill=raw_per_kill,
        amount_raw=kills * raw_per_kill,
        cursor_from=0,
        cursor_to=kills,
        created_at=NOW,
    )


def make_payout(
    player_id: int,
    idempotency_key: str,
    *,
    block_hash: str | None = None,
    amount_raw: int = RAW_PER_BAN,
) -> Payout:
    """Return a pending payout row for the player."""
    return Payout(
        player_id=player_id,
        destination="ban_" + "1" * 60,
        amount_raw=amount_raw,
        kills=1,
        state=PayoutState.PENDING,
        dry_run=False,
        idempotency_key=idempotency_key,
        block_hash=block_hash,
        created_at=NOW,
        updated_at=NOW,
    )


class FakeClock:
    """A clock that stays where a test puts it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self.now += delta
