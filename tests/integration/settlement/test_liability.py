"""Open and held liability: exact sums of raw amounts on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from core.db.models import AccrualStatus, Payout, PayoutState
from core.observability.metrics import Metrics
from core.services.caps import ClaimPlan
from core.services.liability import load_liability
from core.services.payouts import NewPayout, create_payout
from tests.integration.settlement.helpers_world import World

# Near the top of the 128-bit range and odd, so a float sum would lose the last digits.
HUGE_RAW_PER_KILL = 2**120 + 1


async def test_liability_sums_exactly(world: World) -> None:
    player = await world.add_player()
    first = await world.add_accrual(player, 1, raw_per_kill=HUGE_RAW_PER_KILL)
    await world.add_accrual(player, 2, raw_per_kill=HUGE_RAW_PER_KILL)
    await world.add_accrual(player, 3, raw_per_kill=7, status=AccrualStatus.HELD)
    await world.add_accrual(player, 4, raw_per_kill=7, status=AccrualStatus.VOIDED)

    async with world.db.read() as session:
        before = await load_liability(session)
    async with world.db.write() as session:
        plan = ClaimPlan(whole_ids=(first,), split=None, kills=1, amount_raw=HUGE_RAW_PER_KILL)
        payout = await create_payout(
            session,
            NewPayout(player_id=player.id, destination=player.address, plan=plan, dry_run=False),
            at=world.created_at,
            metrics=Metrics(version="test"),
        )
        payout_id = payout.id
    async with world.db.read() as session:
        in_flight = await load_liability(session)
    async with world.db.write() as session:
        await session.execute(
            update(Payout).where(Payout.id == payout_id).values(state=PayoutState.CONFIRMED)
        )
    async with world.db.read() as session:
        after = await load_liability(session)

    assert before.open_raw == 3 * HUGE_RAW_PER_KILL
    assert before.held_raw == 21
    # A claimed accrual stays owed until its payout is confirmed.
    assert in_flight.open_raw == 3 * HUGE_RAW_PER_KILL
    assert after.open_raw == 2 * HUGE_RAW_PER_KILL
    assert after.held_raw == 21
