"""The settlement lease never outlives two settlement intervals after its holder dies.

On SQLite the lease row is the lock. Where the lease file beside the database cannot be
used, a crashed holder blocks the other processes until the row's `expires_at`. The lease
used to last 10 minutes whatever the interval, so with `scheduler_minutes` below 10 a
takeover could take many intervals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import load_settings
from core.db.locking import SettlementLock
from core.db.session import Database
from core.services.settlement import DEFAULT_LOCK_TTL, SettlementPolicy
from tests.integration.db.helpers_lease import without_lease_file

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
LOCK_NAME = "reliability-takeover"


@pytest.mark.parametrize(
    ("scheduler_minutes", "expected"),
    [
        (1, timedelta(minutes=1)),
        (5, timedelta(minutes=5)),
        (20, DEFAULT_LOCK_TTL),
        (120, DEFAULT_LOCK_TTL),
    ],
)
def test_lease_no_longer_than_interval(
    scheduler_minutes: int, expected: timedelta, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_PAYOUT__SCHEDULER_MINUTES", str(scheduler_minutes))
    settings = load_settings(CONFIG_DIR)

    policy = SettlementPolicy.from_settings(settings.payout, settings.integrations)

    assert policy.lock_ttl == expected
    assert policy.lock_ttl <= timedelta(minutes=scheduler_minutes)


class SteppedClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_dead_holder_lease_free_within_two_intervals(sqlite_database: Database) -> None:
    interval = timedelta(minutes=3)
    ttl = min(DEFAULT_LOCK_TTL, interval)
    # The lease file would free a dead holder's lease at once, so this checks the expiry
    # that remains where the file cannot be used.
    without_lease_file(sqlite_database, LOCK_NAME)
    clock = SteppedClock()
    dead = SettlementLock(sqlite_database, clock=clock)
    survivor = SettlementLock(sqlite_database, clock=clock)

    # The dead process took the lease and renewed it just before it was killed.
    assert await dead.try_acquire(LOCK_NAME, "dead-process", ttl)
    assert await dead.renew(LOCK_NAME, "dead-process", ttl)

    # The survivor's first scheduled run after the death comes within one interval.
    clock.now += interval / 2
    assert not await survivor.try_acquire(LOCK_NAME, "survivor", ttl)
    # Its second run comes one interval after the first.
    clock.now += interval
    assert await survivor.try_acquire(LOCK_NAME, "survivor", ttl)
