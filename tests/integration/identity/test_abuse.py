"""Admin review of abuse flags, on SQLite and PostgreSQL."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.db.models import AbuseFlagStatus, AccrualStatus, AuditEntry, PeriodTotal
from core.services.abuse import (
    AbuseFlagNotFoundError,
    AbuseFlagResolvedError,
    AbuseService,
    ResolveAction,
)
from tests.integration.identity.helpers_identity import IdentityEnv, epic_id


async def _held_accrual(env: IdentityEnv) -> tuple[AbuseService, int]:
    player = await env.add_eligible(1, "a", kills=0)
    env.clock.advance(minutes=1)
    await env.poller.poll_batch(10)
    env.stats.add_kills(epic_id("a"), 60)
    env.clock.advance(minutes=1)
    await env.poller.poll_batch(10)
    service = AbuseService(env.db, ZoneInfo("UTC"), env.clock.now)
    (flag,) = await service.list_flags()
    assert flag.discord_id == player
    assert flag.accrual_status is AccrualStatus.HELD
    return service, flag.id


async def _kill_totals(env: IdentityEnv) -> list[int]:
    async with env.db.read() as session:
        return list(await session.scalars(select(PeriodTotal.kills).order_by(PeriodTotal.period)))


async def test_release_opens_held_accrual(env: IdentityEnv) -> None:
    service, flag_id = await _held_accrual(env)
    assert await _kill_totals(env) == []

    resolution = await service.resolve_flag(flag_id, ResolveAction.RELEASE, 900, "checked VOD")

    assert resolution.status is AbuseFlagStatus.RELEASED
    assert resolution.accrual_status is AccrualStatus.OPEN
    assert await _kill_totals(env) == [60, 60, 60]
    assert await service.list_flags() == []
    (resolved,) = await service.list_flags(AbuseFlagStatus.RELEASED)
    assert resolved.resolved_by == 900
    assert resolved.resolution_note == "checked VOD"
    async with env.db.read() as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "abuse_flag_released")
        )
    assert audit is not None
    assert audit.actor_discord_id == 900


async def test_void_voids_held_accrual(env: IdentityEnv) -> None:
    service, flag_id = await _held_accrual(env)

    resolution = await service.resolve_flag(flag_id, ResolveAction.VOID, 900)

    assert resolution.accrual_status is AccrualStatus.VOIDED
    assert await _kill_totals(env) == []
    with pytest.raises(AbuseFlagResolvedError):
        await service.resolve_flag(flag_id, ResolveAction.RELEASE, 900)


async def test_unknown_flag_rejected(env: IdentityEnv) -> None:
    service = AbuseService(env.db, ZoneInfo("UTC"), env.clock.now)
    with pytest.raises(AbuseFlagNotFoundError):
        await service.resolve_flag(12345, ResolveAction.VOID, 900)


async def test_flag_without_accrual_closes(env: IdentityEnv) -> None:
    owner = await env.add_eligible(1, "shared")
    second = await env.add_eligible(2, "own")
    env.yunite.relink(second, epic_id("shared"))
    await env.verify(second)
    service = AbuseService(env.db, ZoneInfo("UTC"), env.clock.now)
    (flag,) = await service.list_flags()

    resolution = await service.resolve_flag(flag.id, ResolveAction.VOID, 900, "same person")

    assert owner != second
    assert flag.kind == "epic_account_conflict"
    assert flag.detail["epic_account_id"] == epic_id("shared")
    assert resolution.accrual_id is None
    assert resolution.status is AbuseFlagStatus.VOIDED
