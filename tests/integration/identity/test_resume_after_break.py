"""Kills made while a player is ineligible never pay, on SQLite and PostgreSQL.

A player who leaves the guild, is frozen or loses their Epic link stops accruing. When they
come back, the first OK reading moves the cursor without accruing, and only later kills pay.
Accruals earned before the break are kept.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from core.db.models import AccrualStatus, AuditEntry
from core.sandbox.stats_server import StatsFault
from core.services.verification import mark_left_guild
from tests.integration.identity.helpers_identity import IdentityEnv, epic_id

Break = Callable[[IdentityEnv, int], Awaitable[None]]


async def _poll(env: IdentityEnv) -> None:
    env.clock.advance(minutes=1)
    report = await env.poller.poll_batch(100)
    assert not report.aborted


async def _rebaseline_audits(env: IdentityEnv) -> list[dict[str, object]]:
    async with env.db.read() as session:
        entries = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "cursor_rebaselined")
            .order_by(AuditEntry.id)
        )
        return [json.loads(entry.detail) for entry in entries]


async def _leave_guild(env: IdentityEnv, player: int) -> None:
    env.membership.answers[player] = False
    await env.verify(player)


async def _return_to_guild(env: IdentityEnv, player: int) -> None:
    env.membership.answers[player] = True
    await env.verify(player)


async def _leave_by_gateway_event(env: IdentityEnv, player: int) -> None:
    assert await mark_left_guild(env.db, player)


async def _freeze(env: IdentityEnv, player: int) -> None:
    await env.players.freeze(9, player, "review")


async def _unfreeze(env: IdentityEnv, player: int) -> None:
    await env.players.unfreeze(9, player, "cleared")


async def _lose_link(env: IdentityEnv, player: int) -> None:
    env.yunite.relink(player, None)
    await env.verify(player)


async def _restore_link(env: IdentityEnv, player: int) -> None:
    env.yunite.relink(player, epic_id("a"))
    await env.verify(player)


BREAKS = [
    pytest.param(_leave_guild, _return_to_guild, id="guild"),
    pytest.param(_leave_by_gateway_event, _return_to_guild, id="gateway"),
    pytest.param(_freeze, _unfreeze, id="frozen"),
    pytest.param(_lose_link, _restore_link, id="link"),
]


@pytest.mark.parametrize(("leave", "come_back"), BREAKS)
async def test_kills_during_break_never_pay(
    env: IdentityEnv, leave: Break, come_back: Break
) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 4)
    await _poll(env)

    await leave(env, player)
    env.stats.add_kills(epic_id("a"), 25)
    await _poll(env)
    await come_back(env, player)

    link = await env.link_of("a")
    assert link.rebaseline_pending
    assert link.resumed_at == env.clock.now()

    await _poll(env)
    link = await env.link_of("a")
    assert link.cursor_kills == 39
    assert link.baseline_kills == 39
    assert not link.rebaseline_pending
    (audit,) = await _rebaseline_audits(env)
    assert audit["reason"] == "resumed_after_break"
    assert audit["skipped_kills"] == 25
    assert audit["previous_cursor_kills"] == 14
    assert audit["cursor_kills"] == 39

    env.stats.add_kills(epic_id("a"), 3)
    await _poll(env)
    accruals = await env.accruals_of(player)
    assert [(a.kills, a.status) for a in accruals] == [
        (4, AccrualStatus.OPEN),
        (3, AccrualStatus.OPEN),
    ]


async def test_no_kills_during_break_no_audit(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)

    await _freeze(env, player)
    await _unfreeze(env, player)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 2)
    await _poll(env)

    assert await _rebaseline_audits(env) == []
    assert not (await env.link_of("a")).rebaseline_pending
    assert [a.kills for a in await env.accruals_of(player)] == [2]


async def test_lower_reading_after_break_keeps_cursor(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=50)
    await _poll(env)

    await _freeze(env, player)
    env.stats.set_kills(epic_id("a"), 40)
    await _unfreeze(env, player)
    await _poll(env)

    link = await env.link_of("a")
    assert link.cursor_kills == 50
    assert link.lower_reading_count == 1
    assert not link.rebaseline_pending
    assert await _rebaseline_audits(env) == []

    env.stats.set_kills(epic_id("a"), 53)
    await _poll(env)
    assert [a.kills for a in await env.accruals_of(player)] == [3]


async def test_failed_reading_keeps_rebaseline_pending(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)
    await _leave_guild(env, player)
    env.stats.add_kills(epic_id("a"), 8)
    await _return_to_guild(env, player)

    env.stats.inject(epic_id("a"), StatsFault.PRIVATE)
    await _poll(env)
    assert (await env.link_of("a")).rebaseline_pending

    await _poll(env)
    assert not (await env.link_of("a")).rebaseline_pending
    assert await env.accruals_of(player) == []
    (audit,) = await _rebaseline_audits(env)
    assert audit["skipped_kills"] == 8


async def test_unfreeze_audit_records_pending(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)
    await _freeze(env, player)
    await _unfreeze(env, player)

    async with env.db.read() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "player_unfrozen")
        )
    assert entry is not None
    assert json.loads(entry.detail)["rebaseline_pending"] is True
