"""Dispatch real `discord.Interaction` objects through a command tree with no network.

This is the only test module that touches discord.py's private API, pinned to discord.py 2.7.1
(constraints.txt). It relies on the following, listed so that an upgrade can check each one:

- `discord.webhook.async_.async_context`: the ContextVar holding the webhook adapter that every
  interaction response, follow-up and original-response edit goes through. The harness puts a
  `FakeWebhookAdapter` there, which records each call instead of sending it.
- `discord.Interaction(data=..., state=...)` with the `ConnectionState` of a client that never
  logged in (`client._connection`).
- `CommandTree._call` and `CommandTree._dispatch_error`, the two steps that
  `CommandTree._from_interaction` runs in a task of its own; the harness awaits them directly so
  a test sees every reply once `dispatch` returns.
- `ConnectionState.user`, set here to the bot's own user as READY would set it.
- `ConnectionState.store_view`, wrapped to collect the views that replies attach, and
  `View._scheduled_task`, the step that runs a button's checks and callback.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.webhook import async_ as webhook_async

PINNED_DISCORD_VERSION = "2.7.1"

APPLICATION_ID = 900_000_000_000_000_001
CHANNEL_ID = 900_000_000_000_000_002
EPHEMERAL_FLAG = 1 << 6

# Interaction response types (Discord API).
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7

# Application command option types (Discord API).
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6

_snowflakes = itertools.count(1_200_000_000_000_000_000)


def next_snowflake() -> int:
    """Return a fresh snowflake-sized ID for interactions and messages."""
    return next(_snowflakes)


@dataclass
class Reply:
    """One call the bot made to respond to an interaction."""

    kind: str  # "response", "followup" or "edit_original"
    payload: dict[str, Any]

    @property
    def response_type(self) -> int | None:
        """The interaction response type of a `response` reply, else None."""
        value = self.payload.get("type") if self.kind == "response" else None
        return int(value) if value is not None else None

    @property
    def message(self) -> dict[str, Any]:
        """The message fields: the `data` of a response, or the whole payload otherwise."""
        if self.kind == "response":
            data = self.payload.get("data")
            return data if isinstance(data, dict) else {}
        return self.payload

    @property
    def ephemeral(self) -> bool:
        """Whether the reply carries the ephemeral flag."""
        return bool(int(self.message.get("flags", 0)) & EPHEMERAL_FLAG)

    @property
    def content(self) -> str:
        """The message text, or an empty string."""
        return str(self.message.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """The embeds of the message."""
        return list(self.message.get("embeds") or [])

    @property
    def text(self) -> str:
        """The content and every embed's title, description and fields, joined."""
        parts = [self.content]
        for embed in self.embeds:
            parts.append(str(embed.get("title") or ""))
            parts.append(str(embed.get("description") or ""))
            for embed_field in embed.get("fields") or []:
                parts.append(str(embed_field.get("name") or ""))
                parts.append(str(embed_field.get("value") or ""))
            footer = embed.get("footer") or {}
            parts.append(str(footer.get("text") or ""))
        return "\n".join(part for part in parts if part)

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        """The allowed mentions object sent with the message, if any."""
        value = self.message.get("allowed_mentions")
        return value if isinstance(value, dict) else None

    @property
    def custom_ids(self) -> list[str]:
        """Custom IDs of every component in the message."""
        ids: list[str] = []
        for row in self.message.get("components") or []:
            for component in row.get("components") or []:
                if "custom_id" in component:
                    ids.append(str(component["custom_id"]))
        return ids


class FakeWebhookAdapter(webhook_async.AsyncWebhookAdapter):
    """Records interaction responses and follow-ups instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[Reply] = []

    async def create_interaction_response(  # type: ignore[override]
        self, interaction_id: int, token: str, *, params: Any, **_: Any
    ) -> dict[str, Any]:
        payload = dict(params.payload or {})
        self.replies.append(Reply("response", payload))
        data = payload.get("data") or {}
        return {
            "interaction": {
                "id": str(interaction_id),
                "type": 2,
                "response_message_id": str(next_snowflake()),
                "response_message_loading": payload.get("type") == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(int(data.get("flags", 0)) & EPHEMERAL_FLAG),
            }
        }

    async def execute_webhook(  # type: ignore[override]
        self,
        webhook_id: int,
        token: str,
        *,
        payload: dict[str, Any] | None = None,
        wait: bool = False,
        **_: Any,
    ) -> dict[str, Any] | None:
        body = dict(payload or {})
        self.replies.append(Reply("followup", body))
        return message_payload(body) if wait else None

    async def edit_original_interaction_response(  # type: ignore[override]
        self, application_id: int, token: str, *, payload: dict[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        body = dict(payload or {})
        self.replies.append(Reply("edit_original", body))
        return message_payload(body)

    async def get_original_interaction_response(  # type: ignore[override]
        self, application_id: int, token: str, **_: Any
    ) -> dict[str, Any]:
        return message_payload({})


def message_payload(body: dict[str, Any]) -> dict[str, Any]:
    """Build the message object Discord returns for a sent or edited message."""
    return {
        "id": str(next_snowflake()),
        "channel_id": str(CHANNEL_ID),
        "type": 0,
        "content": body.get("content") or "",
        "author": user_payload(APPLICATION_ID, bot=True),
        "attachments": [],
        "embeds": body.get("embeds") or [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": "2025-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "flags": int(body.get("flags", 0)),
        "components": body.get("components") or [],
    }


def user_payload(user_id: int, *, bot: bool = False) -> dict[str, Any]:
    """Build a Discord user object."""
    return {
        "id": str(user_id),
        "username": f"user{user_id % 10_000}",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


def member_payload(
    user_id: int, *, role_ids: Sequence[int] = (), permissions: int = 0
) -> dict[str, Any]:
    """Build a guild member object as it appears in an interaction."""
    return {
        "user": user_payload(user_id),
        "roles": [str(role_id) for role_id in role_ids],
        "joined_at": "2024-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": str(permissions),
    }


def role_payload(role_id: int, position: int) -> dict[str, Any]:
    """Build a guild role object."""
    return {
        "id": str(role_id),
        "name": f"role{role_id % 10_000}",
        "permissions": "0",
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def guild_payload(guild_id: int, role_ids: Sequence[int]) -> dict[str, Any]:
    """Build the guild as the client caches it: its @everyone role and the given roles.

    Discord sends only a partial guild with an interaction; a bot with the guilds intent has
    the roles from GUILD_CREATE, which this stands in for.
    """
    roles = [role_payload(guild_id, 0)]
    roles.extend(role_payload(role_id, index) for index, role_id in enumerate(role_ids, 1))
    return {"id": str(guild_id), "name": "Test guild", "roles": roles, "features": []}


def channel_payload(invoker: Invoker) -> dict[str, Any]:
    """Build the channel the interaction happens in: a text channel, or the user's DM."""
    if invoker.guild_id is None:
        return {"id": str(CHANNEL_ID), "type": 1, "recipients": [user_payload(invoker.user_id)]}
    return {
        "id": str(CHANNEL_ID),
        "type": 0,
        "guild_id": str(invoker.guild_id),
        "name": "general",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
    }


@dataclass
class Invoker:
    """Who runs a command: a user, in a guild or in a DM, with roles and a Discord locale."""

    user_id: int
    guild_id: int | None
    role_ids: tuple[int, ...] = ()
    locale: str = "en-US"
    # Administrator, so Discord's default permissions would let them run anything.
    permissions: int = 8


class InteractionHarness:
    """Builds interactions for a client's command tree and records the bot's replies."""

    def __init__(self, client: commands.Bot) -> None:
        self.client = client
        self.tree: app_commands.CommandTree[Any] = client.tree
        self.adapter = FakeWebhookAdapter()
        self.views: list[discord.ui.View] = []
        self._view_added = asyncio.Event()
        state = client._connection
        if state.user is None:
            # Set at READY by a logged-in client; interactions read it for `guild.me`.
            state.user = discord.ClientUser(
                state=state, data=user_payload(APPLICATION_ID, bot=True)
            )  # type: ignore[arg-type]
        original_store_view = state.store_view

        def store_view(view: Any, message_id: int | None = None) -> None:
            if isinstance(view, discord.ui.View):
                self.views.append(view)
                self._view_added.set()
            original_store_view(view, message_id)

        state.store_view = store_view  # type: ignore[method-assign]

    async def next_view(self) -> discord.ui.View:
        """Wait up to 5 seconds for a reply to attach a view not returned before; return it."""
        async with asyncio.timeout(5):
            await self._view_added.wait()
        self._view_added.clear()
        return self.views[-1]

    @property
    def replies(self) -> list[Reply]:
        """Every reply recorded so far, oldest first."""
        return self.adapter.replies

    @contextmanager
    def adapter_installed(self) -> Iterator[None]:
        """Route interaction responses made inside the block to the fake adapter."""
        token = webhook_async.async_context.set(self.adapter)
        try:
            yield
        finally:
            webhook_async.async_context.reset(token)

    def build_command(
        self,
        name: str,
        invoker: Invoker,
        options: Sequence[dict[str, Any]] = (),
        resolved_members: Sequence[tuple[int, Sequence[int]]] = (),
    ) -> discord.Interaction[Any]:
        """Build an application command interaction for command `name` with raw `options`.

        `resolved_members` lists (user ID, role IDs) for USER options, as Discord resolves them.
        """
        data: dict[str, Any] = {
            "id": str(next_snowflake()),
            "name": name,
            "type": 1,
            "options": list(options),
        }
        if resolved_members:
            data["resolved"] = {
                "users": {str(uid): user_payload(uid) for uid, _ in resolved_members},
                "members": {
                    str(uid): {
                        key: value
                        for key, value in member_payload(uid, role_ids=roles).items()
                        if key != "user"
                    }
                    for uid, roles in resolved_members
                },
            }
        return self._interaction(2, data, invoker)

    def build_component(
        self, custom_id: str, invoker: Invoker, *, component_type: int = 2
    ) -> discord.Interaction[Any]:
        """Build a component interaction, such as a button press, on an ephemeral message."""
        data = {"custom_id": custom_id, "component_type": component_type}
        message = message_payload({"flags": EPHEMERAL_FLAG})
        return self._interaction(3, data, invoker, message=message)

    def _interaction(
        self,
        interaction_type: int,
        data: dict[str, Any],
        invoker: Invoker,
        message: dict[str, Any] | None = None,
    ) -> discord.Interaction[Any]:
        payload: dict[str, Any] = {
            "id": str(next_snowflake()),
            "application_id": str(APPLICATION_ID),
            "type": interaction_type,
            "token": "interaction-token",
            "version": 1,
            "data": data,
            "channel": channel_payload(invoker),
            "channel_id": str(CHANNEL_ID),
            "locale": invoker.locale,
            "app_permissions": "0",
            "attachment_size_limit": 8 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {},
        }
        if message is not None:
            payload["message"] = message
        if invoker.guild_id is not None:
            payload["guild_id"] = str(invoker.guild_id)
            payload["guild"] = guild_payload(invoker.guild_id, invoker.role_ids)
            payload["guild_locale"] = "en-US"
            payload["context"] = 0
            payload["member"] = member_payload(
                invoker.user_id, role_ids=invoker.role_ids, permissions=invoker.permissions
            )
        else:
            payload["context"] = 1
            payload["user"] = user_payload(invoker.user_id)
        return discord.Interaction(data=payload, state=self.client._connection)  # type: ignore[arg-type]

    async def dispatch(self, interaction: discord.Interaction[Any]) -> list[Reply]:
        """Run an application command interaction as the tree does; return the new replies."""
        before = len(self.replies)
        with self.adapter_installed():
            try:
                await self.tree._call(interaction)
            except app_commands.AppCommandError as error:
                await self.tree._dispatch_error(interaction, error)
        return self.replies[before:]

    async def run_command(
        self,
        name: str,
        invoker: Invoker,
        options: Sequence[dict[str, Any]] = (),
        resolved_members: Sequence[tuple[int, Sequence[int]]] = (),
    ) -> list[Reply]:
        """Build and dispatch a command interaction; return the replies it produced."""
        interaction = self.build_command(name, invoker, options, resolved_members)
        return await self.dispatch(interaction)

    async def press(self, view: discord.ui.View, custom_id: str, invoker: Invoker) -> list[Reply]:
        """Press the component `custom_id` of `view` as `invoker`; return the new replies."""
        item = next(
            (child for child in view.children if getattr(child, "custom_id", None) == custom_id),
            None,
        )
        if item is None:
            raise LookupError(f"the view has no component with custom_id {custom_id!r}")
        interaction = self.build_component(custom_id, invoker)
        before = len(self.replies)
        with self.adapter_installed():
            await view._scheduled_task(item, interaction)
        return self.replies[before:]


def string_option(name: str, value: str) -> dict[str, Any]:
    """Build a STRING option as Discord sends it."""
    return {"name": name, "type": OPTION_STRING, "value": value}


def integer_option(name: str, value: int) -> dict[str, Any]:
    """Build an INTEGER option as Discord sends it."""
    return {"name": name, "type": OPTION_INTEGER, "value": value}


def boolean_option(name: str, value: bool) -> dict[str, Any]:
    """Build a BOOLEAN option as Discord sends it."""
    return {"name": name, "type": OPTION_BOOLEAN, "value": value}


def user_option(name: str, user_id: int) -> dict[str, Any]:
    """Build a USER option as Discord sends it; resolve the user with `resolved_members`."""
    return {"name": name, "type": OPTION_USER, "value": str(user_id)}
