"""Raw in flight: the exact sum of unfinished live payouts, read back in a few rows."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Result
from sqlalchemy.orm import ORMExecuteState

from core.db.models import Payout, PayoutState
from core.services.payouts import in_flight_raw
from tests.integration.settlement.helpers_world import SeededPlayer, World

# Near the top of the 128-bit range and odd, so a float sum would lose the last digits.
HUGE_RAW = 2**120 + 1


async def add_payouts(
    world: World, player: SeededPlayer, payouts: list[tuple[PayoutState, int]]
) -> None:
    async with world.db.write() as session:
        for index, (state, amount_raw) in enumerate(payouts):
            session.add(
                Payout(
                    player_id=player.id,
                    destination=player.address,
                    amount_raw=amount_raw,
                    kills=1,
                    state=state,
                    dry_run=state is PayoutState.DRY_RUN,
                    idempotency_key=f"in-flight-{index}",
                    created_at=world.created_at,
                    updated_at=world.created_at,
                )
            )


async def test_in_flight_sums_unfinished_exactly(world: World) -> None:
    player = await world.add_player()
    await add_payouts(
        world,
        player,
        [
            (PayoutState.PENDING, HUGE_RAW),
            (PayoutState.SIGNED, HUGE_RAW + 2),
            (PayoutState.SUBMITTED, HUGE_RAW + 4),
            (PayoutState.CONFIRMED, 7),
            (PayoutState.FAILED, 11),
            (PayoutState.DRY_RUN, 13),
        ],
    )

    async with world.db.read() as session:
        total = await in_flight_raw(session)

    assert total == 3 * HUGE_RAW + 6


async def test_in_flight_reads_few_rows(world: World) -> None:
    # Settlement reads the raw in flight before every batch, and the payouts it sends stay
    # unfinished until the confirmation job runs after it. Reading one row per payout would
    # make each read, and the process's peak memory, grow with the run.
    player = await world.add_player()
    unfinished = 40
    await add_payouts(world, player, [(PayoutState.SUBMITTED, HUGE_RAW)] * unfinished)
    rows_per_statement: list[int] = []

    def count_rows(state: ORMExecuteState) -> Result[object]:
        frozen = state.invoke_statement().freeze()
        rows_per_statement.append(len(frozen().all()))
        return frozen()

    async with world.db.read() as session:
        event.listen(session.sync_session, "do_orm_execute", count_rows)
        total = await in_flight_raw(session)

    assert total == unfinished * HUGE_RAW
    assert rows_per_statement
    assert max(rows_per_statement) == 1
