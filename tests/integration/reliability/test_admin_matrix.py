"""Every admin command refuses every non-admin, whatever their Discord roles and permissions.

The matrix crosses each admin command with invokers that are not configured admins. The
commands come from the admin cog, so a new one is covered too. The invokers are plain
members, members holding Discord's Administrator or Manage Server permission, members with
other roles, a user whose ID equals the admin role's ID, and a member with a role whose ID
equals the admin user's ID. The admin user and an admin-role holder in another guild, and
admins in a DM, complete it. Each refusal must state the reason, and leave no audit entry
and no change behind. Configured admins, by user ID or by
role, get through the same commands, so the refusals are not option errors.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from bot.app import Pay2SlayBot
from bot.runtime import Services
from core.db.models import AuditEntry, Player, SettlementRun
from core.i18n import MessageCatalog
from core.services.faucet_flags import is_paused
from tests.reliability.commands import (
    add_known_player,
    build_call,
    commands_of,
    dispatch_confirming,
)
from tests.unit.cogs.harness import InteractionHarness, Invoker
from tests.unit.cogs.helpers_cogs import (
    ADMIN_ROLE_ID,
    ADMIN_USER_ID,
    GUILD_ID,
    MEMBER_ROLE_ID,
    OTHER_GUILD_ID,
    OTHER_PLAYER_ID,
    PLAYER_ID,
)

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 50) - 1

_ids = itertools.count(600_000_000_000_000_000)

# (label, invoker, catalog key of the refusal)
NON_ADMINS: list[tuple[str, Invoker, str]] = [
    ("member", Invoker(PLAYER_ID, GUILD_ID, permissions=0), "errors.not_admin"),
    (
        "member with Administrator",
        Invoker(next(_ids), GUILD_ID, permissions=ADMINISTRATOR),
        "errors.not_admin",
    ),
    (
        "member with Manage Server",
        Invoker(next(_ids), GUILD_ID, permissions=MANAGE_GUILD),
        "errors.not_admin",
    ),
    (
        "member with every permission and another role",
        Invoker(next(_ids), GUILD_ID, role_ids=(MEMBER_ROLE_ID,), permissions=ALL_PERMISSIONS),
        "errors.not_admin",
    ),
    (
        "user whose ID is the admin role's",
        Invoker(ADMIN_ROLE_ID, GUILD_ID, permissions=ADMINISTRATOR),
        "errors.not_admin",
    ),
    (
        "member with a role whose ID is the admin user's",
        Invoker(next(_ids), GUILD_ID, role_ids=(ADMIN_USER_ID,), permissions=ADMINISTRATOR),
        "errors.not_admin",
    ),
    (
        "admin user in another guild",
        Invoker(ADMIN_USER_ID, OTHER_GUILD_ID, permissions=ADMINISTRATOR),
        "errors.wrong_guild",
    ),
    (
        "admin role in another guild",
        Invoker(next(_ids), OTHER_GUILD_ID, role_ids=(ADMIN_ROLE_ID,)),
        "errors.wrong_guild",
    ),
    ("admin user in a DM", Invoker(ADMIN_USER_ID, None), "errors.guild_only"),
    ("member in a DM", Invoker(PLAYER_ID, None), "errors.guild_only"),
]
ADMINS: list[tuple[str, Invoker]] = [
    ("admin user", Invoker(ADMIN_USER_ID, GUILD_ID, permissions=0)),
    ("admin role", Invoker(next(_ids), GUILD_ID, role_ids=(ADMIN_ROLE_ID,), permissions=0)),
]


def admin_command_names(bot: Pay2SlayBot) -> list[str]:
    return [command.name for command in commands_of(bot) if build_call(command, member_id=1).admin]


async def snapshot(services: Services) -> tuple[int, bool, int, int]:
    """Counts that any admin action would change: audit, pause flag, runs, frozen players."""
    async with services.db.read() as session:
        audits = int(await session.scalar(select(func.count(AuditEntry.id))) or 0)
        paused = await is_paused(session)
        runs = int(await session.scalar(select(func.count(SettlementRun.id))) or 0)
        frozen = int(
            await session.scalar(select(func.count(Player.id)).where(Player.frozen.is_(True))) or 0
        )
    return audits, paused, runs, frozen


def test_matrix_covers_admin_commands(bot: Pay2SlayBot) -> None:
    names = admin_command_names(bot)

    assert len(names) >= 11
    assert {"reverify", "payout-retry", "payouts-pause", "settle-now", "freeze"} <= set(names)


@pytest.mark.parametrize(
    ("label", "invoker", "key"), NON_ADMINS, ids=[row[0] for row in NON_ADMINS]
)
async def test_non_admin_refused_everywhere(
    bot: Pay2SlayBot,
    harness: InteractionHarness,
    services: Services,
    label: str,
    invoker: Invoker,
    key: str,
) -> None:
    await add_known_player(services.db, OTHER_PLAYER_ID)
    refusal = MessageCatalog.load().text(key, "en")
    before = await snapshot(services)

    for command in commands_of(bot):
        call = build_call(command, member_id=OTHER_PLAYER_ID)
        if not call.admin:
            continue
        replies = await dispatch_confirming(harness, call, invoker)

        assert len(replies) == 1, f"/{call.name} for {label}: {[r.text for r in replies]}"
        assert replies[0].ephemeral
        assert refusal in replies[0].text, f"/{call.name} for {label}: {replies[0].text!r}"
        assert not harness.views, f"/{call.name} for {label} offered buttons"

    assert await snapshot(services) == before


@pytest.mark.parametrize(("label", "invoker"), ADMINS, ids=[row[0] for row in ADMINS])
async def test_admins_get_through(
    bot: Pay2SlayBot, harness: InteractionHarness, services: Services, label: str, invoker: Invoker
) -> None:
    await add_known_player(services.db, OTHER_PLAYER_ID)
    catalog = MessageCatalog.load()
    refusals = [
        catalog.text(key, "en")
        for key in ("errors.not_admin", "errors.wrong_guild", "errors.guild_only")
    ]

    for command in commands_of(bot):
        call = build_call(command, member_id=OTHER_PLAYER_ID)
        if not call.admin:
            continue
        replies = await dispatch_confirming(harness, call, invoker)

        assert replies, f"/{call.name} for {label} got no reply"
        for reply in replies:
            assert not any(text in reply.text for text in refusals), (
                f"/{call.name} refused {label}: {reply.text!r}"
            )
