"""A local imitation of Discord's OAuth2 authorization-code flow and user endpoints."""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

import structlog
from aiohttp import web

from core.clock import Clock, utc_now

log = structlog.get_logger(__name__)

KNOWN_SCOPES = frozenset({"identify", "guilds", "email", "connections", "guilds.join"})
_MAX_GUILDS_PER_PAGE = 200
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_ACCESS_DENIED_TEXT = "The resource owner or authorization server denied the request"


class DiscordEndpoint(enum.Enum):
    """The sandbox endpoints that `inject_status` can make fail."""

    TOKEN = "token"  # noqa: S105 (an endpoint name, not a password)
    USERS_ME = "users_me"
    GUILDS = "guilds"


@dataclass(frozen=True, slots=True)
class DiscordRequest:
    """One request the sandbox received, for tests to inspect.

    `form` is the decoded form body without `client_secret`. `client_auth` is `basic` or
    `form` when the request carried client credentials, else None.
    """

    at: datetime
    method: str
    path: str
    content_type: str
    form: Mapping[str, str]
    client_auth: str | None
    status: int


@dataclass(slots=True)
class _User:
    username: str
    global_name: str | None
    locale: str
    guild_ids: set[int]


@dataclass(frozen=True, slots=True)
class _Code:
    user_id: int
    redirect_uri: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(slots=True)
class _Token:
    user_id: int
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(slots=True)
class _Injection:
    status: int
    remaining: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class SandboxDiscord:
    """Serve Discord's authorize page, token endpoint, `/users/@me` and `/users/@me/guilds`.

    The authorize endpoint signs in as the user chosen with `consent_as` and redirects back to
    the registered redirect URI with `code` and `state`, or with `error=access_denied` after
    `deny_consent()`. The token endpoint accepts only form-encoded bodies and client
    credentials in HTTP Basic or the form. A code is single-use: any exchange attempt consumes
    it, and the redirect URI must equal the one it was issued for.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        *,
        clock: Clock = utc_now,
        code_ttl_seconds: float = 600.0,
        token_ttl_seconds: int = 604_800,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uris = frozenset(redirect_uris)
        self._clock = clock
        self._code_ttl = timedelta(seconds=code_ttl_seconds)
        self._token_ttl_seconds = token_ttl_seconds
        self._users: dict[int, _User] = {}
        self._guild_names: dict[int, str] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._consenting_user_id: int | None = None
        self._deny = False
        self._injections: dict[DiscordEndpoint, list[_Injection]] = {}
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.requests: list[DiscordRequest] = []

    @property
    def base_url(self) -> str:
        """The root URL of the running sandbox."""
        if self._base_url is None:
            raise RuntimeError("the Discord sandbox is not running")
        return self._base_url

    @property
    def api_base_url(self) -> str:
        """The API base URL, like `https://discord.com/api/v10`."""
        return f"{self.base_url}/api/v10"

    @property
    def authorize_url(self) -> str:
        """The authorize URL, like `https://discord.com/oauth2/authorize`."""
        return f"{self.base_url}/oauth2/authorize"

    def add_user(
        self,
        user_id: int,
        username: str,
        *,
        global_name: str | None = None,
        locale: str = "en-US",
        guild_ids: Iterable[int] = (),
    ) -> None:
        """Define a Discord user and the guilds they are a member of."""
        self._users[user_id] = _User(username, global_name, locale, set(guild_ids))

    def add_guild(self, guild_id: int, name: str) -> None:
        """Name a guild; guilds without a name are listed as `Guild <id>`."""
        self._guild_names[guild_id] = name

    def set_user_guilds(self, user_id: int, guild_ids: Iterable[int]) -> None:
        """Replace the guilds the user is a member of."""
        self._users[user_id].guild_ids = set(guild_ids)

    def consent_as(self, user_id: int) -> None:
        """Make the authorize endpoint sign in as this user and grant consent."""
        if user_id not in self._users:
            raise KeyError(f"no sandbox user with ID {user_id}")
        self._consenting_user_id = user_id
        self._deny = False

    def deny_consent(self, deny: bool = True) -> None:
        """Make the authorize endpoint redirect with `error=access_denied`, as on a cancel."""
        self._deny = deny

    def issue_code(
        self,
        user_id: int,
        redirect_uri: str,
        scopes: Iterable[str] = ("identify", "guilds"),
    ) -> str:
        """Return a fresh authorization code, as the authorize endpoint would issue it."""
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(
            user_id=user_id,
            redirect_uri=redirect_uri,
            scopes=frozenset(scopes),
            expires_at=self._clock() + self._code_ttl,
        )
        return code

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self._tokens.clear()

    def inject_status(
        self,
        endpoint: DiscordEndpoint,
        status: int,
        times: int = 1,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Make the next `times` calls of `endpoint` return `status` before any other check.

        A str body is sent as it is (for malformed replies), anything else as JSON, and None
        gives a Discord-style error body.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        injection = _Injection(status, times, body, dict(headers or {}))
        self._injections.setdefault(endpoint, []).append(injection)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on a loopback address and return the base URL (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the Discord sandbox is already running")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the sandbox listens only on loopback addresses, not {host}")

        app = web.Application()
        app.router.add_get("/oauth2/authorize", self._handle_authorize)
        app.router.add_post("/api/v10/oauth2/token", self._handle_token)
        app.router.add_get("/api/v10/users/@me", self._handle_users_me)
        app.router.add_get("/api/v10/users/@me/guilds", self._handle_guilds)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()

        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{url_host}:{bound_port}"
        log.info("sandbox_discord_started", base_url=self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop listening; safe to call when not running."""
        if self._runner is None:
            return
        await self._runner.cleanup()
        self._runner = None
        self._base_url = None
        log.info("sandbox_discord_stopped")

    def _record(
        self,
        request: web.Request,
        status: int,
        form: Mapping[str, str] | None = None,
        client_auth: str | None = None,
    ) -> None:
        safe_form = {key: value for key, value in (form or {}).items() if key != "client_secret"}
        self.requests.append(
            DiscordRequest(
                at=self._clock(),
                method=request.method,
                path=request.path,
                content_type=request.content_type,
                form=safe_form,
                client_auth=client_auth,
                status=status,
            )
        )

    def _take_injection(self, endpoint: DiscordEndpoint) -> _Injection | None:
        queue = self._injections.get(endpoint)
        if not queue:
            return None
        injection = queue[0]
        injection.remaining -= 1
        if injection.remaining <= 0:
            queue.pop(0)
        return injection

    def _injected_response(
        self, request: web.Request, endpoint: DiscordEndpoint
    ) -> web.Response | None:
        injection = self._take_injection(endpoint)
        if injection is None:
            return None
        self._record(request, injection.status)
        if isinstance(injection.body, str):
            return web.Response(
                status=injection.status, text=injection.body, headers=injection.headers
            )
        body = injection.body
        if body is None:
            body = {"message": f"{injection.status}: sandbox error", "code": 0}
        return web.json_response(body, status=injection.status, headers=injection.headers)

    async def _handle_authorize(self, request: web.Request) -> web.Response:
        params = request.query
        redirect_uri = params.get("redirect_uri", "")

        def error_page(text: str) -> web.Response:
            self._record(request, 400)
            return web.Response(status=400, text=text)

        if params.get("client_id") != self._client_id:
            return error_page("Unknown client_id")
        if redirect_uri not in self._redirect_uris:
            return error_page("Invalid OAuth2 redirect_uri")
        if params.get("response_type") != "code":
            return error_page("Unsupported response_type")

        answer: dict[str, str]
        scopes = frozenset(params.get("scope", "").split())
        if not scopes or not scopes <= KNOWN_SCOPES:
            answer = {"error": "invalid_scope", "error_description": "The scope is invalid."}
        elif self._deny:
            answer = {"error": "access_denied", "error_description": _ACCESS_DENIED_TEXT}
        elif self._consenting_user_id is None:
            return error_page("No sandbox user was chosen to sign in; call consent_as first")
        else:
            answer = {"code": self.issue_code(self._consenting_user_id, redirect_uri, scopes)}

        if "state" in params:
            answer["state"] = params["state"]
        self._record(request, 302)
        raise web.HTTPFound(location=_add_query(redirect_uri, answer))

    async def _handle_token(self, request: web.Request) -> web.Response:
        injected = self._injected_response(request, DiscordEndpoint.TOKEN)
        if injected is not None:
            return injected

        if request.content_type != _FORM_CONTENT_TYPE:
            self._record(request, 400)
            return _oauth_error(400, "invalid_request", "The body must be form-encoded.")

        posted = await request.post()
        form = {key: value for key, value in posted.items() if isinstance(value, str)}
        client_auth = self._client_auth(request, form)

        def fail(status: int, error: str, description: str) -> web.Response:
            self._record(request, status, form, client_auth)
            return _oauth_error(status, error, description)

        if client_auth is None:
            return fail(401, "invalid_client", "Invalid client credentials.")
        if form.get("grant_type") != "authorization_code":
            return fail(400, "unsupported_grant_type", "Unsupported grant type.")

        code = self._codes.pop(form.get("code", ""), None)
        if (
            code is None
            or code.expires_at <= self._clock()
            or code.redirect_uri != form.get("redirect_uri")
        ):
            return fail(400, "invalid_grant", 'Invalid "code" in request.')

        access_token = secrets.token_urlsafe(24)
        expires_at = self._clock() + timedelta(seconds=self._token_ttl_seconds)
        self._tokens[access_token] = _Token(code.user_id, code.scopes, expires_at)
        self._record(request, 200, form, client_auth)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": self._token_ttl_seconds,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": " ".join(sorted(code.scopes)),
            }
        )

    def _client_auth(self, request: web.Request, form: Mapping[str, str]) -> str | None:
        """Return how valid client credentials were sent (`basic` or `form`), else None."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            client_id, _, client_secret = decoded.partition(":")
            if self._is_client(client_id, client_secret):
                return "basic"
            return None

        if self._is_client(form.get("client_id", ""), form.get("client_secret", "")):
            return "form"
        return None

    def _is_client(self, client_id: str, client_secret: str) -> bool:
        return client_id == self._client_id and secrets.compare_digest(
            client_secret.encode(), self._client_secret.encode()
        )

    def _bearer_token(self, request: web.Request, scope: str) -> _Token | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = self._tokens.get(header[len("Bearer ") :])
        if token is None or token.expires_at <= self._clock() or scope not in token.scopes:
            return None
        return token

    async def _handle_users_me(self, request: web.Request) -> web.Response:
        injected = self._injected_response(request, DiscordEndpoint.USERS_ME)
        if injected is not None:
            return injected

        token = self._bearer_token(request, "identify")
        if token is None:
            self._record(request, 401)
            return _unauthorized()

        user = self._users[token.user_id]
        self._record(request, 200)
        return web.json_response(
            {
                "id": str(token.user_id),
                "username": user.username,
                "global_name": user.global_name,
                "discriminator": "0",
                "avatar": None,
                "bot": False,
                "mfa_enabled": False,
                "locale": user.locale,
                "flags": 0,
                "premium_type": 0,
                "public_flags": 0,
            }
        )

    async def _handle_guilds(self, request: web.Request) -> web.Response:
        injected = self._injected_response(request, DiscordEndpoint.GUILDS)
        if injected is not None:
            return injected

        token = self._bearer_token(request, "guilds")
        if token is None:
            self._record(request, 401)
            return _unauthorized()

        try:
            limit = int(request.query.get("limit", str(_MAX_GUILDS_PER_PAGE)))
            after = int(request.query.get("after", "0"))
        except ValueError:
            limit = 0
            after = 0
        if not 1 <= limit <= _MAX_GUILDS_PER_PAGE:
            self._record(request, 400)
            return web.json_response({"message": "Invalid Form Body", "code": 50035}, status=400)

        guild_ids = sorted(g for g in self._users[token.user_id].guild_ids if g > after)[:limit]
        self._record(request, 200)
        return web.json_response(
            [
                {
                    "id": str(guild_id),
                    "name": self._guild_names.get(guild_id, f"Guild {guild_id}"),
                    "icon": None,
                    "owner": False,
                    "permissions": "1071698660929",
                    "features": [],
                }
                for guild_id in guild_ids
            ]
        )


def _add_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode(params)
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit(parts._replace(query=query))


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _unauthorized() -> web.Response:
    return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
