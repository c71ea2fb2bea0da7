"""Verification outcomes against the Yunite sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from core.db.models import (
    AbuseFlag,
    Accrual,
    AccrualStatus,
    AuditEntry,
    EpicLink,
    Player,
    VerificationRecord,
)
from core.services.verification import IneligibleReason, VerificationOutcome, mark_left_guild
from tests.integration.identity.helpers_identity import IdentityEnv, discord_id, epic_id, wallet


async def _records(env: IdentityEnv) -> list[VerificationRecord]:
    async with env.db.read() as session:
        return list(
            await session.scalars(select(VerificationRecord).order_by(VerificationRecord.id))
        )


async def _links(env: IdentityEnv, player_discord_id: int) -> list[EpicLink]:
    async with env.db.read() as session:
        return list(
            await session.scalars(
                select(EpicLink)
                .join(Player, Player.id == EpicLink.player_id)
                .where(Player.discord_id == player_discord_id)
                .order_by(EpicLink.id)
            )
        )


async def _audit_actions(env: IdentityEnv) -> list[str]:
    async with env.db.read() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def _poll(env: IdentityEnv) -> None:
    env.clock.advance(minutes=1)
    await env.poller.poll_batch(100)


async def test_new_link_created_without_baseline(env: IdentityEnv) -> None:
    player = discord_id(1)
    env.yunite.add_player(player, epic_id("a"))

    result = await env.verify(player)

    assert result.outcome is VerificationOutcome.LINKED
    assert result.epic_account_id == epic_id("a")
    assert result.guild_member is True
    assert result.eligible is False
    assert result.reasons == (IneligibleReason.NO_WALLET,)
    (link,) = await _links(env, player)
    assert link.active
    assert link.baseline_kills is None
    (record,) = await _records(env)
    assert record.source == "command"
    assert record.link_status == "linked"
    assert record.eligible is False


async def test_same_link_is_unchanged(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")

    result = await env.verify(player)

    assert result.outcome is VerificationOutcome.UNCHANGED
    assert result.eligible
    assert len(await _links(env, player)) == 1
    assert len(await _records(env)) == 2


async def test_not_linked_player_is_ineligible(env: IdentityEnv) -> None:
    player = discord_id(1)
    env.yunite.add_player(player, None)
    await env.players.link_wallet(player, wallet("p1"), None, False)

    result = await env.verify(player)

    assert result.outcome is VerificationOutcome.NOT_LINKED
    assert result.reasons == (IneligibleReason.NO_EPIC_LINK,)
    assert (await _records(env))[-1].link_status == "not_linked"


async def test_relink_freezes_old_cursor(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "old", kills=50)
    await _poll(env)

    env.yunite.relink(player, epic_id("new"))
    env.stats.add_player(epic_id("new"), 7)
    result = await env.verify(player, actor_discord_id=99)

    assert result.outcome is VerificationOutcome.RELINKED
    old, new = await _links(env, player)
    assert old.active is False
    assert old.cursor_kills == 50
    assert old.unlinked_at is not None
    assert new.active is True
    assert new.baseline_kills is None
    async with env.db.read() as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "epic_link_relinked")
        )
    assert audit is not None
    assert audit.actor_discord_id == 99
    assert json.loads(audit.detail)["previous_cursor_kills"] == 50


async def test_lost_link_pauses_and_resumes(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 2)
    await _poll(env)

    env.yunite.relink(player, None)
    lost = await env.verify(player)
    env.stats.add_kills(epic_id("a"), 3)
    await _poll(env)

    assert lost.outcome is VerificationOutcome.NOT_LINKED
    assert lost.eligible is False
    assert [a.kills for a in await env.accruals_of(player)] == [2]
    (accrual,) = await env.accruals_of(player)
    assert accrual.status is AccrualStatus.OPEN

    env.yunite.relink(player, epic_id("a"))
    resumed = await env.verify(player)
    link = await env.link_of("a")
    assert link.rebaseline_pending
    assert link.resumed_at == env.clock.now()
    await _poll(env)

    # The 3 kills made while the link was lost never pay; the 2 earned before it stay open.
    assert resumed.outcome is VerificationOutcome.RESUMED
    assert resumed.eligible
    assert [a.kills for a in await env.accruals_of(player)] == [2]
    link = await env.link_of("a")
    assert link.cursor_kills == 15
    assert not link.rebaseline_pending
    assert "epic_link_resumed" in await _audit_actions(env)

    env.stats.add_kills(epic_id("a"), 4)
    await _poll(env)
    assert [a.kills for a in await env.accruals_of(player)] == [2, 4]


async def test_earlier_account_gets_fresh_baseline(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "x", kills=10)
    await _poll(env)
    env.stats.add_player(epic_id("y"), 500)
    env.yunite.relink(player, epic_id("y"))
    await env.verify(player)
    await _poll(env)

    # Kills on the first account while the second one was linked never pay.
    env.stats.add_kills(epic_id("x"), 30)
    env.yunite.relink(player, epic_id("x"))
    result = await env.verify(player)
    await _poll(env)

    assert result.outcome is VerificationOutcome.RELINKED
    link_x = await env.link_of("x")
    assert link_x.active
    assert link_x.baseline_kills == 40
    assert await env.accruals_of(player) == []
    assert "epic_link_rebaselined" in await _audit_actions(env)


async def test_left_guild_stops_accruing_keeps_accruals(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=10)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 4)
    await _poll(env)

    env.membership.answers[player] = False
    result = await env.verify(player)
    env.stats.add_kills(epic_id("a"), 5)
    await _poll(env)

    assert result.guild_member is False
    assert result.reasons == (IneligibleReason.NOT_MEMBER,)
    assert [a.kills for a in await env.accruals_of(player)] == [4]
    assert (await env.link_of("a")).active


async def test_yunite_not_in_guild_deactivates_link(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")
    env.yunite.remove_from_guild(player)
    env.membership.answers[player] = None

    result = await env.verify(player)

    assert result.outcome is VerificationOutcome.NOT_IN_GUILD
    assert result.guild_member is False
    assert set(result.reasons) == {IneligibleReason.NOT_MEMBER, IneligibleReason.NO_EPIC_LINK}
    assert not (await env.link_of("a")).active


async def test_mark_left_guild_updates_player(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")

    assert await mark_left_guild(env.db, player)
    assert not await mark_left_guild(env.db, player)

    info = await env.players.get(player)
    assert info is not None
    assert info.guild_member is False


async def test_membership_proof_overrides_checker(env: IdentityEnv) -> None:
    player = discord_id(1)
    env.yunite.add_player(player, epic_id("a"))
    env.membership.answers[player] = False

    result = await env.verification.verify(player, "oauth", guild_member=True)

    assert result.guild_member is True
    assert env.membership.calls == []


async def test_shared_epic_account_refused_and_flagged(env: IdentityEnv) -> None:
    owner = await env.add_eligible(1, "shared", kills=10)
    second = await env.add_eligible(2, "own", kills=5)
    env.yunite.relink(second, epic_id("shared"))

    first_try = await env.verify(second)
    second_try = await env.verify(second)

    assert first_try.outcome is VerificationOutcome.CONFLICT
    assert IneligibleReason.EPIC_ACCOUNT_CONFLICT in first_try.reasons
    assert second_try.outcome is VerificationOutcome.CONFLICT
    assert [link.epic_account_id for link in await _links(env, second)] == [epic_id("own")]
    assert not (await env.link_of("own")).active
    assert (await env.link_of("shared")).active
    assert [link.epic_account_id for link in await _links(env, owner)] == [epic_id("shared")]

    async with env.db.read() as session:
        flags = list(await session.scalars(select(AbuseFlag)))
    assert [(flag.kind, flag.accrual_id) for flag in flags] == [("epic_account_conflict", None)]
    assert (await _audit_actions(env)).count("epic_account_conflict") == 1


async def test_yunite_failure_recorded_changes_nothing(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")
    env.yunite.relink(player, None)
    env.yunite.inject_status(503)

    result = await env.verify(player)

    assert result.outcome is VerificationOutcome.ERROR
    assert result.error_message is not None
    assert result.eligible
    assert (await _records(env))[-1].link_status == "error"
    assert (await env.link_of("a")).active


async def test_verify_many_batches_yunite_calls(env: IdentityEnv) -> None:
    players = [discord_id(number) for number in range(150)]
    for number, player in enumerate(players):
        env.yunite.add_player(player, epic_id(f"m{number}") if number % 2 else None)
    env.yunite.requests.clear()

    results = await env.verification.verify_many(players, "scheduled")

    assert len(env.yunite.requests) == 2
    assert [r.outcome for r in results[:2]] == [
        VerificationOutcome.NOT_LINKED,
        VerificationOutcome.LINKED,
    ]
    assert len(await _records(env)) == 150


async def test_reverify_stale_checks_oldest(env: IdentityEnv) -> None:
    fresh = await env.add_eligible(1, "fresh")
    env.clock.advance(minutes=90)
    stale = await env.add_eligible(2, "stale")
    env.clock.advance(minutes=90)
    await env.verify(fresh)
    env.clock.advance(minutes=30)

    results = await env.verification.reverify_stale(timedelta(hours=1))

    assert [result.discord_id for result in results] == [stale]
    assert (await _records(env))[-1].source == "scheduled"


async def test_held_accruals_survive_relink(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a", kills=0)
    await _poll(env)
    env.stats.add_kills(epic_id("a"), 100)
    await _poll(env)
    env.yunite.relink(player, epic_id("b"))
    env.stats.add_player(epic_id("b"), 0)
    await env.verify(player)

    async with env.db.read() as session:
        statuses = list(await session.scalars(select(Accrual.status)))
    assert statuses == [AccrualStatus.HELD]


async def test_prune_records_keeps_recent(env: IdentityEnv) -> None:
    player = await env.add_eligible(1, "a")
    env.clock.advance(minutes=60 * 24 * 100)
    await env.verify(player)

    deleted = await env.verification.prune_records()

    assert deleted == 1
    assert len(await _records(env)) == 1
