"""`/status` totals, caps, pause flag and latest payouts against models computed from the rows.

`read_player_status` reads the sums, the cap usage, the pause flag and the latest payouts in
one statement. These tests build ledgers with every payout state, dry-run and live payouts on
both sides of the day and week boundaries, and amounts beyond float precision. They compare
the status with totals added up in Python from the rows that were written, with the cap
usage that settlement reads (`load_cap_usage`) and with `is_paused`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from core.config import Settings
from core.db import Database
from core.db.models import (
    FINAL_PAYOUT_STATES,
    Accrual,
    AccrualStatus,
    FaucetFlag,
    Payout,
    PayoutState,
    Player,
)
from core.services.caps import CapUsage, cap_windows, load_cap_usage
from core.services.faucet_flags import PAYOUTS_PAUSED, is_paused
from core.services.status import LATEST_PAYOUTS, PlayerStatus, StatusService
from tests.integration.queries.helpers_seed import (
    NOW,
    ODD_RAW,
    FixedClock,
    add_accrual,
    add_payout,
    add_player,
    address_for,
)

NEXT_RUN = NOW + timedelta(minutes=20)
LEDGERS_PER_DATABASE = 12

# NOW is Wednesday 15:00 UTC. In UTC, 15 hours back is the start of the day (it counts), 16
# is yesterday, 63 is the start of the week (Monday 00:00, it counts) and 64 last Sunday. In
# New York (UTC-5 in January) the day starts 10 hours back and the week 58 hours back.
HOURS_BACK = (0, 1, 10, 11, 14, 15, 16, 40, 58, 59, 63, 64, 200)
AMOUNTS_RAW = (1, ODD_RAW, 3 * 10**36 + 7, 10**38 + 1, 3 * 10**38 + 9)


@dataclass
class Ledger:
    """The rows written for one player, to compute the expected status from."""

    player: Player
    payouts: list[Payout] = field(default_factory=list)
    accruals: list[Accrual] = field(default_factory=list)


async def write_random_ledger(database: Database, rng: random.Random, discord_id: int) -> Ledger:
    """Write a player with random payouts and accruals, some of them claimed by the payouts."""
    async with database.write() as session:
        ledger = Ledger(await add_player(session, discord_id))
        for index in range(rng.randint(0, 9)):
            created_at = NOW - timedelta(hours=rng.choice(HOURS_BACK))
            # Any state with either dry-run value, because the sums read the state and the caps
            # read the flag.
            payout = Payout(
                player_id=ledger.player.id,
                destination=address_for(discord_id),
                amount_raw=rng.choice(AMOUNTS_RAW),
                kills=rng.randint(0, 40),
                state=rng.choice(list(PayoutState)),
                dry_run=rng.random() < 0.4,
                idempotency_key=f"totals-{discord_id}-{index}",
                created_at=created_at,
                updated_at=created_at,
            )
            session.add(payout)
            await session.flush()
            ledger.payouts.append(payout)

        for _ in range(rng.randint(0, 9)):
            claimed_by = rng.choice([None, None, *ledger.payouts])
            accrual = await add_accrual(
                session,
                ledger.player,
                rng.randint(1, 30),
                raw_per_kill=rng.choice(AMOUNTS_RAW[:3]),
                status=rng.choice(list(AccrualStatus)),
                payout=claimed_by,
            )
            ledger.accruals.append(accrual)
    return ledger


async def set_pause_flag(database: Database, value: str | None) -> None:
    """Store the pause flag as `value`, or remove it for None."""
    async with database.write() as session:
        flag = await session.get(FaucetFlag, PAYOUTS_PAUSED)
        if value is None:
            if flag is not None:
                await session.delete(flag)
            return
        if flag is None:
            session.add(FaucetFlag(key=PAYOUTS_PAUSED, value=value, updated_at=NOW))
        else:
            flag.value = value


def expected_cap_usage(ledger: Ledger, zone: ZoneInfo, *, include_dry_run: bool) -> CapUsage:
    """Add up the cap usage from the rows, as the caps module describes it."""
    windows = cap_windows(NOW, zone)
    counted = [
        payout
        for payout in ledger.payouts
        if payout.state is not PayoutState.FAILED and (include_dry_run or not payout.dry_run)
    ]
    today = [payout for payout in counted if payout.created_at >= windows.day_start]
    this_week = [payout for payout in counted if payout.created_at >= windows.week_start]
    return CapUsage(
        payouts_today=len(today),
        payouts_this_week=len(this_week),
        kills_today=sum(payout.kills for payout in today),
        kills_this_week=sum(payout.kills for payout in this_week),
    )


def assert_totals_match(status: PlayerStatus, ledger: Ledger) -> None:
    """Compare the status sums with the sums of the rows, as `PlayerStatus` defines them."""
    counted = [a for a in ledger.accruals if a.status in (AccrualStatus.OPEN, AccrualStatus.HELD)]
    open_unclaimed = [
        a for a in ledger.accruals if a.status is AccrualStatus.OPEN and a.payout_id is None
    ]
    held = [a for a in ledger.accruals if a.status is AccrualStatus.HELD]
    in_flight = [p for p in ledger.payouts if p.state not in FINAL_PAYOUT_STATES]
    confirmed = [p for p in ledger.payouts if p.state is PayoutState.CONFIRMED]
    dry_run = [p for p in ledger.payouts if p.state is PayoutState.DRY_RUN]

    assert status.kills_counted == sum(a.kills for a in counted)
    assert status.open_raw == sum(a.amount_raw for a in open_unclaimed)
    assert status.held_raw == sum(a.amount_raw for a in held)
    assert status.in_flight_raw == sum(p.amount_raw for p in in_flight)
    assert status.paid_total_raw == sum(p.amount_raw for p in confirmed)
    assert status.dry_run_total_raw == sum(p.amount_raw for p in dry_run)


def assert_caps_match(status: PlayerStatus, usage: CapUsage) -> None:
    assert status.caps.payouts_today.used == usage.payouts_today
    assert status.caps.payouts_this_week.used == usage.payouts_this_week
    assert status.caps.kills_today.used == usage.kills_today
    assert status.caps.kills_this_week.used == usage.kills_this_week


@pytest.mark.parametrize("reset_tz", ["UTC", "America/New_York"])
async def test_status_matches_random_ledgers(
    database: Database, settings: Settings, clock: FixedClock, reset_tz: str
) -> None:
    rng = random.Random(f"status-totals-{reset_tz}")
    zone = ZoneInfo(reset_tz)
    payout_settings = settings.payout.model_copy(update={"reset_tz": reset_tz})
    services = {
        include_dry_run: StatusService(
            database,
            payout_settings,
            settings.integrations.model_copy(update={"dry_run": include_dry_run}),
            clock,
        )
        for include_dry_run in (True, False)
    }

    # Every ledger is written first, so a total that leaks into other players' rows shows.
    ledgers = [
        await write_random_ledger(database, rng, discord_id)
        for discord_id in range(1, LEDGERS_PER_DATABASE + 1)
    ]
    for ledger in ledgers:
        discord_id = ledger.player.discord_id
        await set_pause_flag(database, rng.choice([None, "true", "false"]))
        async with database.read() as session:
            paused = await is_paused(session)

        for include_dry_run, service in services.items():
            status = await service.player_status(discord_id, NEXT_RUN)
            assert status is not None
            async with database.read() as session:
                settled = await load_cap_usage(
                    session,
                    cap_windows(NOW, zone),
                    include_dry_run=include_dry_run,
                    player_ids=[ledger.player.id],
                )

            assert_totals_match(status, ledger)
            usage = expected_cap_usage(ledger, zone, include_dry_run=include_dry_run)
            assert settled.get(ledger.player.id, CapUsage()) == usage
            assert_caps_match(status, usage)
            assert status.paused is paused
            newest_first = sorted(
                ledger.payouts, key=lambda payout: (payout.created_at, payout.id), reverse=True
            )
            assert [summary.id for summary in status.latest_payouts] == [
                payout.id for payout in newest_first[:LATEST_PAYOUTS]
            ]


async def test_paused_status_with_payouts_this_week(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    async with database.write() as session:
        player = await add_player(session, 1)
        today = await add_payout(session, player, 2 * ODD_RAW, kills=2)
        monday = await add_payout(
            session, player, 3 * ODD_RAW, kills=3, created_at=NOW - timedelta(hours=63)
        )
        simulated = await add_payout(
            session,
            player,
            5 * ODD_RAW,
            state=PayoutState.DRY_RUN,
            kills=5,
            created_at=NOW - timedelta(hours=1),
        )
        pending = await add_payout(session, player, 7 * ODD_RAW, state=PayoutState.PENDING, kills=7)
        failed = await add_payout(session, player, 11 * ODD_RAW, state=PayoutState.FAILED, kills=11)
        await add_accrual(session, player, 7, payout=pending)
        await add_accrual(session, player, 4)
        await add_accrual(session, player, 6, status=AccrualStatus.HELD)
        session.add(FaucetFlag(key=PAYOUTS_PAUSED, value="true", updated_at=NOW))

    dry = await StatusService(
        database, settings.payout, settings.integrations, clock
    ).player_status(1, NEXT_RUN)
    live_integrations = settings.integrations.model_copy(update={"dry_run": False})
    live = await StatusService(database, settings.payout, live_integrations, clock).player_status(
        1, NEXT_RUN
    )
    assert dry is not None
    assert live is not None

    for status in (dry, live):
        assert status.paused is True
        assert status.kills_counted == 4 + 6 + 7
        assert status.open_raw == 4 * ODD_RAW
        assert status.held_raw == 6 * ODD_RAW
        assert status.in_flight_raw == 7 * ODD_RAW
        assert status.paid_total_raw == 2 * ODD_RAW + 3 * ODD_RAW
        assert status.dry_run_total_raw == 5 * ODD_RAW
        # Newest first, and by id among payouts created at the same instant.
        assert [payout.id for payout in status.latest_payouts] == [
            failed.id,
            pending.id,
            today.id,
            simulated.id,
            monday.id,
        ]

    # The dry-run payout counts toward the caps only in a dry run, and the failed one never does.
    assert (dry.caps.payouts_today.used, dry.caps.payouts_this_week.used) == (3, 4)
    assert (dry.caps.kills_today.used, dry.caps.kills_this_week.used) == (14, 17)
    assert (live.caps.payouts_today.used, live.caps.payouts_this_week.used) == (2, 3)
    assert (live.caps.kills_today.used, live.caps.kills_this_week.used) == (9, 12)
