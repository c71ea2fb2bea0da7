"""A local imitation of Yunite's registration-links API for tests and the sandbox mode."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from aiohttp import web

from core.clock import Clock, utc_now

log = structlog.get_logger(__name__)

_EPIC_ACCOUNT_ID = re.compile(r"[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]{1,20}")

_DEFAULT_ERROR_TEXT = {
    400: "Bad request",
    401: "Invalid API token",
    402: "This guild does not have Yunite Premium",
    403: "The app is not authorised for this guild",
    404: "Not found",
    429: "Too many requests",
}


@dataclass(frozen=True, slots=True)
class YuniteRequest:
    """One request the sandbox received, for tests to inspect."""

    at: datetime
    guild_id: str
    user_ids: tuple[str, ...]
    token_valid: bool
    status: int


@dataclass(slots=True)
class _Member:
    epic_account_id: str | None
    in_guild: bool
    date_verified: datetime | None
    name: str


@dataclass(slots=True)
class _InjectedReply:
    status: int
    remaining: int
    body: str | None
    headers: dict[str, str] = field(default_factory=dict)


class SandboxYunite:
    """Serve `POST /api/v3/guild/{guildId}/registration/links` from players defined in data.

    The API token and guild ID are checked like Yunite does (401 and 403), bodies with more
    than `max_ids_per_request` IDs get 400, and `inject_status` makes the next calls fail.
    """

    def __init__(
        self,
        api_token: str,
        guild_id: int,
        *,
        clock: Clock = utc_now,
        max_ids_per_request: int = 100,
    ) -> None:
        self._api_token = api_token
        self._guild_id = guild_id
        self._clock = clock
        self._max_ids_per_request = max_ids_per_request
        self._members: dict[int, _Member] = {}
        self._injected: deque[_InjectedReply] = deque()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.requests: list[YuniteRequest] = []

    @property
    def base_url(self) -> str:
        """The base URL clients use, ending in `/api/v3` like Yunite's."""
        if self._base_url is None:
            raise RuntimeError("the Yunite sandbox is not running")
        return self._base_url

    def add_player(
        self,
        discord_id: int,
        epic_account_id: str | None,
        in_guild: bool = True,
        *,
        name: str | None = None,
    ) -> None:
        """Define a Discord user, linked to `epic_account_id` unless it is None."""
        if epic_account_id is not None and not _EPIC_ACCOUNT_ID.fullmatch(epic_account_id):
            raise ValueError("an Epic account ID is 32 hexadecimal digits")
        date_verified = None if epic_account_id is None else self._clock()
        self._members[discord_id] = _Member(
            epic_account_id=epic_account_id,
            in_guild=in_guild,
            date_verified=date_verified,
            name=name or f"player_{discord_id}",
        )

    def relink(self, discord_id: int, new_epic_account_id: str | None) -> None:
        """Link the player to another Epic account (or unlink with None); dateVerified moves."""
        member = self._member(discord_id)
        if new_epic_account_id is not None and not _EPIC_ACCOUNT_ID.fullmatch(new_epic_account_id):
            raise ValueError("an Epic account ID is 32 hexadecimal digits")
        member.epic_account_id = new_epic_account_id
        member.date_verified = None if new_epic_account_id is None else self._clock()

    def remove_from_guild(self, discord_id: int) -> None:
        """Make the player a non-member; Yunite then lists them in `notFound`."""
        self._member(discord_id).in_guild = False

    def rejoin_guild(self, discord_id: int) -> None:
        """Make the player a guild member again, keeping their link."""
        self._member(discord_id).in_guild = True

    def inject_status(
        self,
        status: int,
        times: int = 1,
        *,
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next `times` requests with a valid token get `status` instead of the links.

        `body` replaces the default JSON error body, which lets a test send a 200 with a
        malformed body. For 429 the default headers include `Retry-After: 30`.
        """
        reply_headers = dict(headers or {})
        if status == 429 and headers is None:
            reply_headers["Retry-After"] = "30"
        self._injected.append(_InjectedReply(status, times, body, reply_headers))

    def clear_injected(self) -> None:
        """Drop every injected reply that has not been served yet."""
        self._injected.clear()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on a loopback address and return the base URL (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the Yunite sandbox is already running")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the sandbox listens only on loopback addresses, not {host}")

        app = web.Application()
        app.router.add_post("/api/v3/guild/{guild_id}/registration/links", self._handle_links)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()

        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{url_host}:{bound_port}/api/v3"
        log.info("sandbox_yunite_started", base_url=self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop listening; safe to call when not running."""
        if self._runner is None:
            return
        await self._runner.cleanup()
        self._runner = None
        self._base_url = None
        log.info("sandbox_yunite_stopped")

    def _member(self, discord_id: int) -> _Member:
        try:
            return self._members[discord_id]
        except KeyError:
            raise KeyError(f"no sandbox player with Discord ID {discord_id}") from None

    async def _handle_links(self, request: web.Request) -> web.Response:
        guild_id = request.match_info["guild_id"]
        token_valid = request.headers.get("Y-Api-Token") == self._api_token
        user_ids: tuple[str, ...] = ()

        def reply(status: int, payload: object = None, text: str | None = None) -> web.Response:
            self.requests.append(
                YuniteRequest(self._clock(), guild_id, user_ids, token_valid, status)
            )
            if text is not None:
                return web.Response(status=status, text=text, content_type="application/json")
            if payload is None:
                payload = {"error": _DEFAULT_ERROR_TEXT.get(status, "Internal server error")}
            return web.json_response(payload, status=status)

        if not token_valid:
            return reply(401)
        if guild_id != str(self._guild_id):
            return reply(403)

        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return reply(400)
        if not isinstance(body, dict) or body.get("type") != "DISCORD":
            return reply(400, {"error": "type must be DISCORD in this sandbox"})
        raw_ids = body.get("userIds")
        if not isinstance(raw_ids, list) or not all(
            isinstance(item, str) and _DIGITS.fullmatch(item) for item in raw_ids
        ):
            return reply(400, {"error": "userIds must be an array of decimal strings"})
        user_ids = tuple(raw_ids)
        if len(user_ids) > self._max_ids_per_request:
            return reply(400, {"error": f"at most {self._max_ids_per_request} userIds"})

        injected = self._take_injected()
        if injected is not None:
            response = reply(injected.status, text=injected.body)
            response.headers.update(injected.headers)
            return response

        return reply(200, self._links_body(user_ids))

    def _take_injected(self) -> _InjectedReply | None:
        if not self._injected:
            return None
        injected = self._injected[0]
        injected.remaining -= 1
        if injected.remaining <= 0:
            self._injected.popleft()
        return injected

    def _links_body(self, user_ids: tuple[str, ...]) -> dict[str, object]:
        users: list[dict[str, object]] = []
        not_linked: list[str] = []
        not_found: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            member = self._members.get(int(user_id))
            if member is None or not member.in_guild:
                not_found.append(user_id)
            elif member.epic_account_id is None:
                not_linked.append(user_id)
            else:
                users.append(_linked_user(user_id, member))
        return {"users": users, "notLinked": not_linked, "notFound": not_found}


def _linked_user(user_id: str, member: _Member) -> dict[str, object]:
    date_text = None
    if member.date_verified is not None:
        verified = member.date_verified.astimezone(UTC)
        date_text = verified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{verified.microsecond // 1000:03d}Z"
    return {
        "discord": {"id": user_id, "name": member.name, "avatar": None},
        "epic": {"epicID": member.epic_account_id, "epicName": member.name},
        "dateVerified": date_text,
        "chosenPlatform": "PC",
        "chosenPeripheral": "KEYBOARD_MOUSE",
    }
