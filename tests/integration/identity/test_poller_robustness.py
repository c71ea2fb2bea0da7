"""Poller robustness and kill-rate windows, over real HTTP to the stats sandbox.

An absurd reading, or an error applying one reading, must not stop the poller for everyone.
The kill-rate hold measures from the last good reading. A reading fetched before a relink or
a return after a break changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

import core.services.poller as poller_module
from core.db.models import AbuseFlag, AccrualStatus, StatsState
from core.integrations.fortnite import MAX_PLAUSIBLE_KILLS, StatsReading
from core.integrations.fortnite import StatsState as ReadingState
from core.sandbox.stats_server import StatsFault
from core.services.accrual import ReadingResult
from core.services.accrual import apply_reading as real_apply
from core.services.poller import Poller, PollerSettings, StatsReader
from tests.integration.identity.helpers_identity import (
    IdentityEnv,
    epic_id,
)


async def _poll(env: IdentityEnv, minutes: float = 1.0, poller: Poller | None = None) -> None:
    env.clock.advance(minutes=minutes)
    report = await (poller or env.poller).poll_batch(100)
    assert not report.aborted


def _stats_body(epic_account_id: str, kills: int | None) -> dict[str, object]:
    overall = None if kills is None else {"kills": kills, "wins": 0, "matches": 1}
    return {
        "status": 200,
        "data": {
            "account": {"id": epic_account_id, "name": "Slayer"},
            "stats": {"all": {"overall": overall}},
        },
    }


def _poller_with(env: IdentityEnv, stats: StatsReader, settings: PollerSettings) -> Poller:
    return Poller(
        env.db, stats, settings, env.clock.now, env.metrics, monotonic=env.clock.monotonic
    )


async def _flags(env: IdentityEnv, kind: str) -> list[AbuseFlag]:
    async with env.db.read() as session:
        return list(await session.scalars(select(AbuseFlag).where(AbuseFlag.kind == kind)))


@pytest.mark.parametrize("kills", [5_000_000_000, 2**63, 10**30])
async def test_absurd_reading_does_not_block_others(env: IdentityEnv, kills: int) -> None:
    absurd = await env.add_eligible(1, "absurd", kills=100)
    normal = await env.add_eligible(2, "normal", kills=100)
    await _poll(env)

    env.stats.inject_response(epic_id("absurd"), 200, _stats_body(epic_id("absurd"), kills))
    env.stats.add_kills(epic_id("normal"), 3)
    await _poll(env)

    link = await env.link_of("absurd")
    assert link.cursor_kills == 100
    assert link.stats_state is StatsState.UNAVAILABLE
    assert link.last_read_at == env.clock.now()
    assert await env.accruals_of(absurd) == []
    assert [accrual.kills for accrual in await env.accruals_of(normal)] == [3]

    # The next batch reads the account again and goes on from the same cursor.
    env.stats.add_kills(epic_id("absurd"), 2)
    await _poll(env)
    assert [accrual.kills for accrual in await env.accruals_of(absurd)] == [2]


async def test_apply_error_marks_link_and_continues(
    env: IdentityEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = await env.add_eligible(1, "broken", kills=10)
    healthy = await env.add_eligible(2, "healthy", kills=10)
    await env.add_eligible(3, "idle", kills=10)
    await _poll(env)
    broken_link_id = (await env.link_of("broken")).id

    async def apply_or_fail(session, link, reading, **kwargs):  # type: ignore[no-untyped-def]
        if link.id == broken_link_id:
            raise RuntimeError("simulated bug while applying a reading")
        return await real_apply(session, link, reading, **kwargs)

    monkeypatch.setattr(poller_module, "apply_reading", apply_or_fail)
    env.stats.add_kills(epic_id("broken"), 5)
    env.stats.add_kills(epic_id("healthy"), 4)
    env.clock.advance(minutes=1)
    report = await env.poller.poll_batch(2)

    assert report.errors == 1
    assert report.readings == 1
    assert [accrual.kills for accrual in await env.accruals_of(healthy)] == [4]
    link = await env.link_of("broken")
    assert link.last_read_at == env.clock.now()
    assert link.stats_state is StatsState.UNAVAILABLE
    assert link.cursor_kills == 10
    assert await env.accruals_of(broken) == []

    # The failed link went to the back of the queue instead of staying first.
    due = [link_id for link_id, _ in await env.poller.due_links(3)]
    idle_link_id = (await env.link_of("idle")).id
    healthy_link_id = (await env.link_of("healthy")).id
    assert due == [idle_link_id, broken_link_id, healthy_link_id]

    monkeypatch.setattr(poller_module, "apply_reading", real_apply)
    await _poll(env)
    assert [accrual.kills for accrual in await env.accruals_of(broken)] == [5]


async def test_amount_above_max_raw_held_with_flag(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    settings = PollerSettings(
        raw_per_kill=10**30,
        reset_lower_readings=3,
        zone=env.settings.zone,
        readings_per_minute=60,
        abuse_policy=env.settings.abuse_policy,
    )
    poller = _poller_with(env, env.stats_client, settings)
    await _poll(env, poller=poller)

    # Within the plausible kill count, but worth more than 2**128 - 1 raw at 10 BAN a kill.
    env.stats.set_kills(epic_id("a"), MAX_PLAUSIBLE_KILLS)
    await _poll(env, poller=poller)
    await _poll(env, poller=poller)

    link = await env.link_of("a")
    assert link.cursor_kills == 100
    assert link.stats_state is StatsState.UNAVAILABLE
    assert await env.accruals_of(player) == []
    (flag,) = await _flags(env, "implausible_kills")
    assert flag.accrual_id is None
    detail = json.loads(flag.detail)
    assert detail["reason"] == "amount_above_max_raw"
    assert detail["kills"] == MAX_PLAUSIBLE_KILLS

    env.stats.set_kills(epic_id("a"), 103)
    await _poll(env, poller=poller)
    assert [accrual.kills for accrual in await env.accruals_of(player)] == [3]


class _FixedReadings:
    """A stats reader that returns the readings it is given, for callers other than the client."""

    def __init__(self, kills: dict[str, int], read_at: Callable[[], datetime]) -> None:
        self.kills = kills
        self._read_at = read_at

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        return StatsReading(
            epic_account_id, ReadingState.OK, self.kills[epic_account_id], self._read_at()
        )


async def test_unchecked_huge_reading_flagged(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=0)
    reader = _FixedReadings({epic_id("a"): 50}, env.clock.now)
    poller = _poller_with(env, reader, env.settings)
    await _poll(env, poller=poller)

    reader.kills[epic_id("a")] = 2**63 + 5
    env.clock.advance(minutes=1)
    report = await poller.poll_batch(10)

    assert report.errors == 0
    assert report.results[ReadingResult.IMPLAUSIBLE] == 1
    link = await env.link_of("a")
    assert link.cursor_kills == 50
    assert link.last_reading_kills == 50
    assert await env.accruals_of(player) == []
    (flag,) = await _flags(env, "implausible_kills")
    assert json.loads(flag.detail)["reason"] == "kills_above_limit"


async def test_rate_measured_from_last_ok_reading(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    await _poll(env)
    # Quiet for ten hours, read every so often without new kills.
    for _ in range(10):
        await _poll(env, minutes=60)
    last_ok_at = env.clock.now()

    env.stats.inject(epic_id("a"), StatsFault.SERVER_ERROR, times=2, status=503)
    await _poll(env)
    assert (await env.link_of("a")).stats_state is StatsState.UNAVAILABLE

    # 50 kills in two minutes: 25 a minute against a limit of 10.
    env.stats.add_kills(epic_id("a"), 50)
    await _poll(env)

    link = await env.link_of("a")
    assert link.last_ok_read_at == env.clock.now()
    (accrual,) = await env.accruals_of(player)
    assert accrual.kills == 50
    assert accrual.status is AccrualStatus.HELD
    (flag,) = await _flags(env, "kill_rate")
    detail = json.loads(flag.detail)
    assert detail["window_seconds"] == int((env.clock.now() - last_ok_at).total_seconds())
    assert detail["window_kills"] == 50


async def test_last_ok_read_at_kept_through_failures(env: IdentityEnv) -> None:
    await env.add_eligible(1, "a", kills=100)
    await _poll(env)
    ok_at = env.clock.now()

    env.stats.inject(epic_id("a"), StatsFault.PRIVATE, times=None)
    await _poll(env)
    await _poll(env)

    link = await env.link_of("a")
    assert link.last_ok_read_at == ok_at
    assert link.last_read_at == env.clock.now()
    assert link.stats_state is StatsState.PRIVATE


async def test_null_block_catch_up_held(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=5000)
    env.stats.inject(epic_id("a"), StatsFault.NULL_STATS)
    await _poll(env)
    assert (await env.link_of("a")).baseline_kills == 0

    # A failed reading in between does not stretch the window back to the baseline.
    env.stats.inject(epic_id("a"), StatsFault.SERVER_ERROR, times=2, status=502)
    await _poll(env, minutes=5)
    await _poll(env, minutes=5)

    accruals = await env.accruals_of(player)
    assert [(a.kills, a.status) for a in accruals] == [(5000, AccrualStatus.HELD)]
    assert len(await _flags(env, "kill_rate")) == 1


class _ReadThenAct:
    """A stats reader that runs `action` after fetching and before handing the reading over."""

    def __init__(self, inner: StatsReader, action: Callable[[], Awaitable[None]]) -> None:
        self._inner = inner
        self._action: Callable[[], Awaitable[None]] | None = action

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        reading = await self._inner.lifetime_kills(epic_account_id)
        if self._action is not None:
            action, self._action = self._action, None
            await action()
        return reading


async def test_reading_before_relink_ignored(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    env.stats.add_player(epic_id("b"), 0)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 10)

    async def relink_to_b_and_back() -> None:
        env.clock.advance(seconds=10)
        env.yunite.relink(player, epic_id("b"))
        await env.verify(player)
        env.stats.add_kills(epic_id("a"), 40)
        env.clock.advance(seconds=10)
        env.yunite.relink(player, epic_id("a"))
        await env.verify(player)

    poller = _poller_with(env, _ReadThenAct(env.stats_client, relink_to_b_and_back), env.settings)
    env.clock.advance(minutes=1)
    report = await poller.poll_batch(1)

    assert report.results[ReadingResult.STALE] == 1
    link = await env.link_of("a")
    assert link.active
    assert link.baseline_kills is None
    assert link.cursor_kills is None

    # The next reading sets the baseline at 150, so the 40 kills made on B's watch never pay.
    await _poll(env)
    assert (await env.link_of("a")).baseline_kills == 150
    env.stats.add_kills(epic_id("a"), 2)
    await _poll(env)
    assert [accrual.kills for accrual in await env.accruals_of(player)] == [2]


async def test_reading_before_unfreeze_ignored(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=100)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 6)

    async def freeze_and_unfreeze() -> None:
        env.clock.advance(seconds=10)
        await env.players.freeze(9, player, "review")
        env.clock.advance(minutes=30)
        await env.players.unfreeze(9, player, "cleared")

    poller = _poller_with(env, _ReadThenAct(env.stats_client, freeze_and_unfreeze), env.settings)
    env.clock.advance(minutes=1)
    report = await poller.poll_batch(1)

    assert report.results[ReadingResult.STALE] == 1
    link = await env.link_of("a")
    assert link.cursor_kills == 100
    assert link.rebaseline_pending
    assert await env.accruals_of(player) == []


async def test_last_ok_read_at_stored_utc(env: IdentityEnv) -> None:
    await env.add_eligible(1, "a", kills=1)
    await _poll(env)

    link = await env.link_of("a")
    assert link.last_ok_read_at is not None
    assert link.last_ok_read_at.tzinfo is not None
    assert link.last_ok_read_at.astimezone(UTC) == env.clock.now()
