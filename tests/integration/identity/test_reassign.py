"""Moving an unlinked Epic account to another player, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.db.models import AuditEntry
from core.services.epic_reassign import (
    EpicAccountAlreadyOwnedError,
    EpicAccountNotFoundError,
    EpicAccountStillLinkedError,
    InvalidEpicAccountIdError,
    reassign_epic_account,
)
from core.services.verification import VerificationOutcome
from tests.integration.identity.helpers_identity import IdentityEnv, discord_id, epic_id, wallet

ADMIN = 990000000000000001


async def _poll(env: IdentityEnv) -> None:
    env.clock.advance(minutes=1)
    report = await env.poller.poll_batch(100)
    assert not report.aborted


async def test_reassigned_account_starts_fresh(env: IdentityEnv) -> None:
    owner = await env.add_eligible(1, "shared", kills=100)
    await _poll(env)
    env.stats.add_kills(epic_id("shared"), 5)
    await _poll(env)

    # The owner unlinks the account in Yunite; another player links it and is refused.
    env.yunite.relink(owner, None)
    await env.verify(owner)
    newcomer = discord_id(2)
    env.yunite.add_player(newcomer, epic_id("shared"))
    await env.players.link_wallet(newcomer, wallet("p2"), None, False)
    refused = await env.verify(newcomer)
    assert refused.outcome is VerificationOutcome.CONFLICT

    env.clock.advance(minutes=5)
    result = await reassign_epic_account(
        env.db,
        epic_id("shared").upper(),
        newcomer,
        ADMIN,
        "  bought the account  ",
        clock=env.clock.now,
    )

    assert result.epic_account_id == epic_id("shared")
    assert result.from_discord_id == owner
    assert result.to_discord_id == newcomer
    assert result.previous_cursor_kills == 105
    link = await env.link_of("shared")
    assert link.player_id == result.to_player_id
    assert not link.active
    assert link.cursor_kills is None
    assert link.baseline_kills is None
    assert link.linked_at == env.clock.now()

    async with env.db.read() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "epic_account_reassigned")
        )
    assert entry is not None
    assert entry.actor_discord_id == ADMIN
    assert entry.player_id == result.to_player_id
    detail = json.loads(entry.detail)
    assert detail["previous_player_id"] == result.from_player_id
    assert detail["previous_cursor_kills"] == 105
    assert detail["reason"] == "bought the account"

    # Kills made before the new owner's first reading never pay them.
    env.stats.add_kills(epic_id("shared"), 30)
    verified = await env.verify(newcomer)
    assert verified.eligible
    await _poll(env)
    assert (await env.link_of("shared")).baseline_kills == 135
    env.stats.add_kills(epic_id("shared"), 2)
    await _poll(env)

    assert [a.kills for a in await env.accruals_of(newcomer)] == [2]
    assert [a.kills for a in await env.accruals_of(owner)] == [5]


async def test_reassign_refused_while_linked(env: IdentityEnv) -> None:
    owner = await env.add_eligible(1, "a", kills=10)

    with pytest.raises(EpicAccountStillLinkedError) as raised:
        await reassign_epic_account(
            env.db, epic_id("a"), discord_id(2), ADMIN, "test", clock=env.clock.now
        )

    assert str(owner) in raised.value.safe_message
    assert (await env.link_of("a")).active


async def test_reassign_to_same_owner_refused(env: IdentityEnv) -> None:
    owner = await env.add_eligible(1, "a", kills=10)
    env.yunite.relink(owner, None)
    await env.verify(owner)

    with pytest.raises(EpicAccountAlreadyOwnedError):
        await reassign_epic_account(env.db, epic_id("a"), owner, ADMIN, "", clock=env.clock.now)


async def test_reassign_unknown_account_refused(env: IdentityEnv) -> None:
    with pytest.raises(EpicAccountNotFoundError):
        await reassign_epic_account(
            env.db, epic_id("nobody"), discord_id(2), ADMIN, "", clock=env.clock.now
        )


@pytest.mark.parametrize("value", ["", "not-hex", "a" * 31, "g" * 32])
async def test_reassign_invalid_account_id(env: IdentityEnv, value: str) -> None:
    with pytest.raises(InvalidEpicAccountIdError):
        await reassign_epic_account(env.db, value, discord_id(2), ADMIN, "", clock=env.clock.now)
