"""A local imitation of the fortnite-api.com BR stats v2 endpoint for tests and the sandbox."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from aiohttp import web

from core.clock import Clock, utc_now

log = structlog.get_logger(__name__)

_EPIC_ACCOUNT_ID = re.compile(r"[0-9a-fA-F]{32}")


class StatsFault(enum.Enum):
    """A reply the sandbox gives instead of, or before, the normal stats reply."""

    PRIVATE = "private"
    NOT_FOUND = "not_found"
    NULL_STATS = "null_stats"
    NULL_OVERALL = "null_overall"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    MALFORMED = "malformed"


class ResetHeader(enum.Enum):
    """Header that a RATE_LIMITED reply uses to state when the client may try again."""

    EPOCH = "epoch"
    DELTA = "delta"
    RETRY_AFTER = "retry_after"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class StatsRequest:
    """One request the sandbox received, for tests to inspect."""

    at: datetime
    epic_account_id: str
    query: Mapping[str, str]
    authorized: bool
    status: int


@dataclass(slots=True)
class _Player:
    name: str
    base_kills: int
    kills_per_minute: float
    growth_started_at: datetime

    def kills_at(self, now: datetime) -> int:
        minutes = max(0.0, (now - self.growth_started_at).total_seconds() / 60)
        return self.base_kills + math.floor(self.kills_per_minute * minutes)


@dataclass(slots=True)
class _Injection:
    fault: StatsFault | None
    remaining: int | None
    status: int = 500
    reset_in_seconds: float = 30.0
    reset_header: ResetHeader = ResetHeader.EPOCH
    delay_seconds: float = 1.0
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class SandboxStats:
    """Serve `GET /v2/stats/br/v2/{accountId}` from players defined in data.

    Requests must carry the bare API key in `Authorization` (401 otherwise) and
    `timeWindow=lifetime` (400 otherwise, because the real API would silently serve another
    window). Kill counts grow at `kills_per_minute` as the clock moves. Faults are injected
    per player, or for every player with `epic_account_id=None`, and global faults apply first.
    """

    def __init__(self, api_key: str, *, clock: Clock = utc_now) -> None:
        self._api_key = api_key
        self._clock = clock
        self._players: dict[str, _Player] = {}
        self._injections: dict[str | None, list[_Injection]] = {}
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.requests: list[StatsRequest] = []

    @property
    def base_url(self) -> str:
        """The base URL clients use (the API paths start with `/v2`)."""
        if self._base_url is None:
            raise RuntimeError("the stats sandbox is not running")
        return self._base_url

    def add_player(
        self,
        epic_account_id: str,
        kills: int = 0,
        *,
        name: str | None = None,
        kills_per_minute: float = 0.0,
    ) -> None:
        """Define an Epic account with a lifetime kill count that grows at `kills_per_minute`."""
        key = _account_key(epic_account_id)
        if kills < 0 or kills_per_minute < 0:
            raise ValueError("kills and kills_per_minute must not be negative")
        self._players[key] = _Player(
            name=name or f"Player{key[:6]}",
            base_kills=kills,
            kills_per_minute=kills_per_minute,
            growth_started_at=self._clock(),
        )

    def kills(self, epic_account_id: str) -> int:
        """Return the kill count the sandbox serves for the account right now."""
        return self._player(epic_account_id).kills_at(self._clock())

    def set_kills(self, epic_account_id: str, kills: int) -> None:
        """Set the kill count; growth continues from it."""
        if kills < 0:
            raise ValueError("kills must not be negative")
        player = self._player(epic_account_id)
        player.base_kills = kills
        player.growth_started_at = self._clock()

    def add_kills(self, epic_account_id: str, kills: int) -> None:
        """Add kills to the current count (a negative number lowers it, as a stats reset does)."""
        self.set_kills(epic_account_id, self.kills(epic_account_id) + kills)

    def set_growth(self, epic_account_id: str, kills_per_minute: float) -> None:
        """Change how fast the kill count grows from now on."""
        if kills_per_minute < 0:
            raise ValueError("kills_per_minute must not be negative")
        player = self._player(epic_account_id)
        player.base_kills = player.kills_at(self._clock())
        player.growth_started_at = self._clock()
        player.kills_per_minute = kills_per_minute

    def inject(
        self,
        epic_account_id: str | None,
        fault: StatsFault,
        times: int | None = 1,
        *,
        status: int = 500,
        reset_in_seconds: float = 30.0,
        reset_header: ResetHeader = ResetHeader.EPOCH,
        delay_seconds: float = 1.0,
    ) -> None:
        """Serve `fault` to the next `times` requests for the account (None: until cleared).

        `status` applies to SERVER_ERROR, `reset_in_seconds` and `reset_header` to
        RATE_LIMITED, and `delay_seconds` to SLOW. An EPOCH reset header carries the Unix
        time of the reset, rounded up to a whole second.
        """
        self._add_injection(
            epic_account_id,
            _Injection(
                fault=fault,
                remaining=times,
                status=status,
                reset_in_seconds=reset_in_seconds,
                reset_header=reset_header,
                delay_seconds=delay_seconds,
            ),
        )

    def inject_response(
        self,
        epic_account_id: str | None,
        status: int,
        body: object,
        times: int | None = 1,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Serve `body` with `status` to the next `times` requests for the account.

        A str body is sent as it is (for malformed replies), anything else as JSON.
        """
        self._add_injection(
            epic_account_id,
            _Injection(
                fault=None,
                remaining=times,
                status=status,
                body=body,
                headers=dict(headers or {}),
            ),
        )

    def clear_faults(self, epic_account_id: str | None = None) -> None:
        """Drop the injected faults for the account, or the global ones for None."""
        key = None if epic_account_id is None else _account_key(epic_account_id)
        self._injections.pop(key, None)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on a loopback address and return the base URL (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the stats sandbox is already running")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the sandbox listens only on loopback addresses, not {host}")

        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/v2/stats/br/v2/{account_id}", self._handle_stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()

        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{url_host}:{bound_port}"
        log.info("sandbox_stats_started", base_url=self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop listening and end slow replies early; safe to call when not running."""
        if self._runner is None:
            return
        self._stopping.set()
        await self._runner.cleanup()
        self._runner = None
        self._base_url = None
        log.info("sandbox_stats_stopped")

    def _player(self, epic_account_id: str) -> _Player:
        key = _account_key(epic_account_id)
        try:
            return self._players[key]
        except KeyError:
            raise KeyError(f"no sandbox player with Epic account ID {key}") from None

    def _add_injection(self, epic_account_id: str | None, injection: _Injection) -> None:
        if injection.remaining is not None and injection.remaining < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        key = None if epic_account_id is None else _account_key(epic_account_id)
        self._injections.setdefault(key, []).append(injection)

    def _take_injection(self, key: str | None) -> _Injection | None:
        queue = self._injections.get(key)
        if not queue:
            return None
        injection = queue[0]
        if injection.remaining is not None:
            injection.remaining -= 1
            if injection.remaining <= 0:
                queue.pop(0)
        return injection

    async def _handle_stats(self, request: web.Request) -> web.Response:
        raw_account_id = request.match_info["account_id"]
        query = dict(request.query)
        authorized = request.headers.get("Authorization") == self._api_key

        def reply(
            status: int, payload: object, headers: Mapping[str, str] | None = None
        ) -> web.Response:
            self.requests.append(
                StatsRequest(self._clock(), raw_account_id, query, authorized, status)
            )
            if isinstance(payload, str):
                return web.Response(status=status, text=payload, headers=headers)
            return web.json_response(payload, status=status, headers=headers)

        if not authorized:
            return reply(401, _error_body(401, "invalid or missing api key"))
        if not _EPIC_ACCOUNT_ID.fullmatch(raw_account_id):
            return reply(400, _error_body(400, "accountId is not a valid account id"))
        if query.get("timeWindow") != "lifetime":
            return reply(400, _error_body(400, "the sandbox serves only timeWindow=lifetime"))
        if query.get("image", "none") != "none":
            return reply(400, _error_body(400, "the sandbox serves only image=none"))

        key = raw_account_id.lower()
        injection = self._take_injection(None) or self._take_injection(key)
        if injection is not None and injection.fault is StatsFault.SLOW:
            await self._wait_or_stop(injection.delay_seconds)
            injection = None
        if injection is not None:
            injected = self._injected_reply(injection)
            if injected is not None:
                return reply(*injected)

        player = self._players.get(key)
        if player is None:
            return reply(404, _error_body(404, "the requested account does not exist"))
        fault = None if injection is None else injection.fault
        return reply(200, self._stats_body(key, player, fault))

    def _injected_reply(
        self, injection: _Injection
    ) -> tuple[int, object, Mapping[str, str]] | None:
        """Return the status, body and headers of an injected reply; None for null blocks."""
        fault = injection.fault
        if fault is None:
            return injection.status, injection.body, injection.headers
        if fault is StatsFault.MALFORMED:
            return 200, "<html>upstream error</html>", {}
        if fault is StatsFault.PRIVATE:
            return 403, _error_body(403, "the requested account's stats are private"), {}
        if fault is StatsFault.NOT_FOUND:
            return 404, _error_body(404, "the requested account does not exist"), {}
        if fault is StatsFault.SERVER_ERROR:
            return injection.status, _error_body(injection.status, "internal error"), {}
        if fault is StatsFault.RATE_LIMITED:
            return 429, _error_body(429, "rate limit exceeded"), self._reset_headers(injection)
        return None

    def _reset_headers(self, injection: _Injection) -> dict[str, str]:
        seconds = injection.reset_in_seconds
        if injection.reset_header is ResetHeader.EPOCH:
            reset_at = math.ceil(self._clock().timestamp() + seconds)
            return {"X-Ratelimit-Reset": str(reset_at)}
        if injection.reset_header is ResetHeader.DELTA:
            return {"X-Ratelimit-Reset": str(math.ceil(seconds))}
        if injection.reset_header is ResetHeader.RETRY_AFTER:
            return {"Retry-After": str(math.ceil(seconds))}
        return {}

    async def _wait_or_stop(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    def _stats_body(self, key: str, player: _Player, fault: StatsFault | None) -> dict[str, object]:
        now = self._clock()
        kills = player.kills_at(now)
        overall = {
            "score": kills * 300,
            "wins": kills // 25,
            "kills": kills,
            "deaths": kills // 3,
            "matches": kills // 3 + 1,
            "minutesPlayed": kills * 16,
            "lastModified": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        all_inputs: dict[str, object] | None = {
            "overall": None if fault is StatsFault.NULL_OVERALL else overall,
            "solo": None,
            "duo": None,
            "trio": None,
            "squad": None,
            "ltm": None,
        }
        if fault is StatsFault.NULL_STATS:
            all_inputs = None

        return {
            "status": 200,
            "data": {
                "account": {"id": key, "name": player.name},
                "battlePass": {"level": 1, "progress": 0},
                "image": None,
                "stats": {
                    "all": all_inputs,
                    "keyboardMouse": None,
                    "gamepad": None,
                    "touch": None,
                },
            },
        }


def _account_key(epic_account_id: str) -> str:
    if not _EPIC_ACCOUNT_ID.fullmatch(epic_account_id):
        raise ValueError("an Epic account ID is 32 hexadecimal digits")
    return epic_account_id.lower()


def _error_body(status: int, text: str) -> dict[str, object]:
    return {"status": status, "error": text}
