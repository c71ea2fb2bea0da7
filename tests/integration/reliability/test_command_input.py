"""Every slash command with hostile option text: handled, within Discord's limits, no pings.

Each command goes through the real command tree (the harness's fake webhook adapter records
what the bot sends). Free-text options get very long text, control characters, markdown
and mentions of @everyone, a role and a user. For every reply the test checks that its
allowed mentions are empty, that Discord would accept its size, and that nothing was
logged as an unexpected error.
"""

from __future__ import annotations

import itertools
import random

import structlog

from bot.app import Pay2SlayBot
from bot.runtime import Services
from tests.reliability.commands import (
    add_known_player,
    build_call,
    commands_of,
    dispatch_confirming,
    reply_problems,
)
from tests.reliability.hostile import HOSTILE_FRAGMENTS
from tests.unit.cogs.harness import InteractionHarness, Invoker
from tests.unit.cogs.helpers_cogs import (
    ADMIN_ROLE_ID,
    ADMIN_USER_ID,
    GUILD_ID,
    OTHER_PLAYER_ID,
    STATS_KEY,
    YUNITE_KEY,
)

FIXED_TEXTS = [
    "@everyone",
    f"@here <@&{ADMIN_ROLE_ID}> <@{ADMIN_USER_ID}> <@!{ADMIN_USER_ID}>",
    "\x00\x01\x02\x07\x1b[2J\u202e\u200b\ufeff",
    "x" * 6000,
    "🙂" * 1500,
    "**" * 400 + "`" * 300 + "||" * 300 + "~~" * 200,
    "ban_" + "1" * 60 + " @everyone",
    "\n" * 600,
    " ",
    "<t:0:R> <:emoji:1> [link](https://127.0.0.1/)",
]
# Random joins of the hostile fragments, the same on every run.
_RNG = random.Random(41)
RANDOM_TEXTS = [
    "".join(_RNG.choice(HOSTILE_FRAGMENTS) for _ in range(_RNG.randint(2, 5))) for _ in range(8)
]
HOSTILE_TEXTS = FIXED_TEXTS + RANDOM_TEXTS

_user_ids = itertools.count(500_000_000_000_000_000)


def fresh_invoker(admin: bool) -> Invoker:
    """Return a user with no cooldown yet; admins get the configured admin role."""
    roles = (ADMIN_ROLE_ID,) if admin else ()
    return Invoker(next(_user_ids), GUILD_ID, role_ids=roles, permissions=0)


async def test_hostile_option_text_handled(
    bot: Pay2SlayBot, harness: InteractionHarness, services: Services
) -> None:
    await add_known_player(services.db, OTHER_PLAYER_ID)
    problems: list[str] = []
    dispatched = 0

    for command in commands_of(bot):
        has_text = any(
            parameter.type.name == "string" and not parameter.choices
            for parameter in command.parameters
        )
        texts = HOSTILE_TEXTS if has_text else ["plain"]
        for text in texts:
            call = build_call(command, text=text, member_id=OTHER_PLAYER_ID)
            with structlog.testing.capture_logs() as logs:
                replies = await dispatch_confirming(harness, call, fresh_invoker(call.admin))
            dispatched += 1
            label = f"/{call.name} with {text[:30]!r}"
            if not replies:
                problems.append(f"{label}: no reply")
            problems.extend(f"{label}: {problem}" for problem in reply_problems(replies))
            problems.extend(
                f"{label}: logged {entry['event']}"
                for entry in logs
                if entry.get("log_level") in ("error", "critical")
            )
            problems.extend(
                f"{label}: logged a configured API key"
                for entry in logs
                if YUNITE_KEY in repr(entry) or STATS_KEY in repr(entry)
            )

    assert dispatched >= len(commands_of(bot))
    assert problems == []


async def test_every_reply_of_every_command_pings_nobody(
    bot: Pay2SlayBot, harness: InteractionHarness, services: Services
) -> None:
    await add_known_player(services.db, OTHER_PLAYER_ID)

    for command in commands_of(bot):
        for admin in (True, False):
            call = build_call(command, text="@everyone", member_id=OTHER_PLAYER_ID)
            await dispatch_confirming(harness, call, fresh_invoker(admin))
        # The same user again, so that the cooldown replies are checked too.
        invoker = fresh_invoker(True)
        for _ in range(2):
            await dispatch_confirming(
                harness, build_call(command, member_id=OTHER_PLAYER_ID), invoker
            )

    messages = [reply for reply in harness.replies if reply.response_type not in (5, 6)]
    assert messages
    assert all(reply.allowed_mentions == {"parse": []} for reply in messages), [
        reply.allowed_mentions for reply in messages if reply.allowed_mentions != {"parse": []}
    ]
