"""Poller and accrual rules over real HTTP to the stats sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from core.db.models import AbuseFlag, AccrualStatus, AuditEntry, PeriodTotal, StatsState
from core.integrations.fortnite import StatsClient
from core.integrations.rate_limit import RateLimiter
from core.sandbox.stats_server import StatsFault
from core.services.accrual import ReadingResult
from core.services.poller import IDLE_SECONDS, Poller
from tests.integration.identity.helpers_identity import (
    RAW_PER_KILL,
    IdentityEnv,
    discord_id,
    epic_id,
    poller_settings,
)


async def _poll(env: IdentityEnv, minutes: float = 1.0) -> None:
    env.clock.advance(minutes=minutes)
    report = await env.poller.poll_batch(100)
    assert not report.aborted


async def test_first_reading_sets_baseline_only(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=120)

    await _poll(env)

    link = await env.link_of("a")
    assert link.baseline_kills == 120
    assert link.cursor_kills == 120
    assert link.stats_state is StatsState.OK
    assert await env.accruals_of(player) == []


async def test_kills_above_cursor_accrue_once(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=120)
    await _poll(env)

    env.stats.add_kills(epic_id("a"), 7)
    await _poll(env)
    await _poll(env)

    accruals = await env.accruals_of(player)
    assert [accrual.kills for accrual in accruals] == [7]
    accrual = accruals[0]
    assert accrual.amount_raw == 7 * RAW_PER_KILL
    assert accrual.raw_per_kill == RAW_PER_KILL
    assert (accrual.cursor_from, accrual.cursor_to) == (120, 127)
    assert accrual.status is AccrualStatus.OPEN
    assert (await env.link_of("a")).cursor_kills == 127

    async with env.db.read() as session:
        totals = {
            row.period: row.kills
            for row in await session.scalars(
                select(PeriodTotal).where(PeriodTotal.player_id == accrual.player_id)
            )
        }
    assert totals == {"day": 7, "week": 7, "all": 7}


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        (StatsFault.PRIVATE, StatsState.PRIVATE),
        (StatsFault.NOT_FOUND, StatsState.NOT_FOUND),
        (StatsFault.SERVER_ERROR, StatsState.UNAVAILABLE),
        (StatsFault.RATE_LIMITED, StatsState.UNAVAILABLE),
    ],
)
async def test_failed_first_reading_never_pays_earlier_kills(
    env: IdentityEnv, fault: StatsFault, state: StatsState
) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    env.stats.inject(epic_id("a"), fault, times=None, reset_in_seconds=600)

    await _poll(env)

    link = await env.link_of("a")
    assert link.stats_state is state
    assert link.baseline_kills is None
    assert link.cursor_kills is None

    # Kills made while the reading fails count toward the baseline, never toward a payout.
    env.stats.add_kills(epic_id("a"), 40)
    env.stats.clear_faults(epic_id("a"))
    await _poll(env, minutes=15)
    link = await env.link_of("a")
    assert link.baseline_kills == 140
    assert await env.accruals_of(player) == []

    env.stats.add_kills(epic_id("a"), 2)
    await _poll(env)
    assert [accrual.kills for accrual in await env.accruals_of(player)] == [2]


async def test_relink_never_pays_new_accounts_earlier_kills(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "old", kills=10)
    await _poll(env)
    env.stats.add_kills(epic_id("old"), 3)
    await _poll(env)

    env.stats.add_player(epic_id("new"), 900)
    env.yunite.relink(player, epic_id("new"))
    await env.verify(player)
    env.stats.add_kills(epic_id("old"), 50)

    await _poll(env)
    new_link = await env.link_of("new")
    assert new_link.baseline_kills == 900
    assert [accrual.kills for accrual in await env.accruals_of(player)] == [3]

    env.stats.add_kills(epic_id("new"), 4)
    await _poll(env)
    accruals = await env.accruals_of(player)
    assert [(a.epic_account_id, a.kills) for a in accruals] == [
        (epic_id("old"), 3),
        (epic_id("new"), 4),
    ]
    old_link = await env.link_of("old")
    assert old_link.active is False
    assert old_link.cursor_kills == 13


async def test_lower_reading_never_accrues(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    await _poll(env)

    env.stats.set_kills(epic_id("a"), 90)
    await _poll(env)
    link = await env.link_of("a")
    assert link.cursor_kills == 100
    assert link.last_reading_kills == 90
    assert link.lower_reading_count == 1

    env.stats.set_kills(epic_id("a"), 100)
    await _poll(env)
    assert (await env.link_of("a")).lower_reading_count == 0

    env.stats.set_kills(epic_id("a"), 95)
    await _poll(env)
    env.stats.set_kills(epic_id("a"), 100)
    await _poll(env)
    assert await env.accruals_of(player) == []
    assert (await env.link_of("a")).cursor_kills == 100


async def test_reset_rule_rebaselines_and_holds_repaid_kills(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    await _poll(env)

    env.stats.set_kills(epic_id("a"), 20)
    for _ in range(3):
        await _poll(env)

    link = await env.link_of("a")
    assert link.cursor_kills == 20
    assert link.baseline_kills == 20
    assert link.lower_reading_count == 0
    async with env.db.read() as session:
        audits = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "cursor_rebaselined")
            )
        )
        drop_flags = list(
            await session.scalars(select(AbuseFlag).where(AbuseFlag.kind == "kill_count_drop"))
        )
    assert len(audits) == 1
    assert '"previous_cursor_kills": 100' in audits[0].detail
    assert len(drop_flags) == 1
    assert drop_flags[0].accrual_id is None

    # The count comes back up through kills that may have been paid before the drop.
    env.stats.set_kills(epic_id("a"), 25)
    await _poll(env)
    env.stats.set_kills(epic_id("a"), 103)
    await _poll(env, minutes=60)
    env.stats.set_kills(epic_id("a"), 105)
    await _poll(env)

    accruals = await env.accruals_of(player)
    assert [(a.kills, a.status) for a in accruals] == [
        (5, AccrualStatus.HELD),
        (78, AccrualStatus.HELD),
        (2, AccrualStatus.OPEN),
    ]
    assert all(a.amount_raw == a.kills * RAW_PER_KILL for a in accruals)


async def test_fast_kills_are_held_with_flag(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    await _poll(env)

    env.stats.add_kills(epic_id("a"), 25)
    await _poll(env, minutes=2)
    env.stats.add_kills(epic_id("a"), 15)
    await _poll(env, minutes=2)

    accruals = await env.accruals_of(player)
    assert [(a.kills, a.status) for a in accruals] == [
        (25, AccrualStatus.HELD),
        (15, AccrualStatus.OPEN),
    ]
    async with env.db.read() as session:
        flag = await session.scalar(select(AbuseFlag).where(AbuseFlag.kind == "kill_rate"))
    assert flag is not None
    assert flag.accrual_id == accruals[0].id
    held = env.metrics.registry.get_sample_value("pay2slay_accruals_total", {"kind": "held"})
    assert held == 1


async def test_ineligible_players_are_not_read(env: IdentityEnv) -> None:
    await env.add_eligible(1, "member")
    frozen = await env.add_eligible(2, "frozen")
    left = await env.add_eligible(3, "left")
    env.yunite.add_player(discord_id(4), epic_id("walletless"))
    env.stats.add_player(epic_id("walletless"), 0)
    await env.verify(discord_id(4))

    await env.players.freeze(1, frozen, "test")
    env.membership.answers[left] = False
    await env.verify(left)

    env.stats.requests.clear()
    await _poll(env)
    assert {request.epic_account_id for request in env.stats.requests} == {epic_id("member")}


async def test_rejected_key_aborts_batch(env: IdentityEnv) -> None:
    await env.add_eligible(1, "a")
    await env.add_eligible(2, "b")
    bad_client = StatsClient(
        env.http,
        env.stats.base_url,
        SecretStr("wrong-key"),
        RateLimiter(1000),
        clock=env.clock.now,
    )
    poller = Poller(env.db, bad_client, env.settings, env.clock.now, env.metrics)

    report = await poller.poll_batch(10)

    assert report.aborted
    assert report.readings == 0
    assert (await env.link_of("a")).baseline_kills is None


@pytest.mark.parametrize(("players", "per_minute"), [(12, 4), (30, 60)])
async def test_every_player_read_every_n_over_b_minutes(
    env: IdentityEnv, players: int, per_minute: int
) -> None:
    for number in range(players):
        await env.add_eligible(number, f"p{number}")
    env.stats.requests.clear()

    stop = asyncio.Event()
    rounds = 4
    wanted_readings = players * rounds

    async def pause(event: asyncio.Event, seconds: float) -> None:
        env.clock.advance(max(0.0, seconds))
        if len(env.stats.requests) >= wanted_readings:
            stop.set()

    poller = Poller(
        env.db,
        env.stats_client,
        poller_settings(readings_per_minute=per_minute),
        env.clock.now,
        env.metrics,
        monotonic=env.clock.monotonic,
        pause=pause,
    )
    await asyncio.wait_for(poller.run_forever(stop), timeout=60)

    read_at: dict[str, list[float]] = defaultdict(list)
    for request in env.stats.requests:
        read_at[request.epic_account_id].append(request.at.timestamp())
    assert len(read_at) == players

    expected_seconds = players / per_minute * 60
    for times in read_at.values():
        assert len(times) >= rounds
        intervals = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(interval == pytest.approx(expected_seconds, rel=0.2) for interval in intervals)


async def test_new_player_is_read_first(env: IdentityEnv) -> None:
    await env.add_eligible(1, "a")
    await env.add_eligible(2, "b")
    await _poll(env)
    await env.add_eligible(3, "c")

    env.stats.requests.clear()
    env.clock.advance(minutes=1)
    await env.poller.poll_batch(1)

    assert [request.epic_account_id for request in env.stats.requests] == [epic_id("c")]


async def test_idle_poller_waits_and_stops(env: IdentityEnv) -> None:
    stop = asyncio.Event()
    waits: list[float] = []

    async def pause(event: asyncio.Event, seconds: float) -> None:
        waits.append(seconds)
        stop.set()

    poller = Poller(env.db, env.stats_client, env.settings, env.clock.now, env.metrics, pause=pause)
    await asyncio.wait_for(poller.run_forever(stop), timeout=10)

    assert waits == [IDLE_SECONDS]


async def test_reading_results_reported(env: IdentityEnv) -> None:
    await env.add_eligible(1, "a", kills=5)
    env.clock.advance(minutes=1)
    first = await env.poller.poll_batch(10)
    env.stats.add_kills(epic_id("a"), 3)
    env.clock.advance(minutes=1)
    second = await env.poller.poll_batch(10)

    assert first.results[ReadingResult.BASELINE_SET] == 1
    assert second.results[ReadingResult.ACCRUED] == 1
    assert second.accrued_kills == 3
