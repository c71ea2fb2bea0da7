"""Discord OAuth2 authorization-code client: the authorize URL, code exchange, user, guilds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import httpx
import structlog
from pydantic import SecretStr

from core.integrations.errors import IntegrationError
from core.integrations.http import (
    MalformedResponseError,
    decode_json,
    expect_int,
    expect_list,
    expect_object,
    expect_optional_str,
    expect_snowflake,
    expect_str,
)

log = structlog.get_logger(__name__)

# Discord returns at most 200 guilds per page, the most a normal user can join.
GUILDS_PAGE_SIZE = 200
_MAX_GUILD_PAGES = 10

# OAuth2 error codes such as `invalid_grant` are short lowercase words. Any other text in the
# `error` field is not logged, because it could echo request data.
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True, slots=True)
class OAuthToken:
    """A user's access token from the code exchange; `repr` masks both tokens."""

    access_token: SecretStr
    token_type: str
    expires_in: int
    scopes: frozenset[str]
    refresh_token: SecretStr | None = None


@dataclass(frozen=True, slots=True)
class DiscordUser:
    """The Discord user behind an access token."""

    id: int
    username: str
    global_name: str | None
    locale: str | None


class OAuthError(IntegrationError):
    """A Discord OAuth2 request failed."""

    safe_message = "Discord sign-in failed. Try signing in again."


class OAuthInvalidGrantError(OAuthError):
    """Discord rejected the code: used already, expired, or issued for another redirect URI."""

    safe_message = "Discord did not accept this sign-in, which may have expired. Sign in again."


class OAuthClientConfigError(OAuthError):
    """Discord rejected the faucet's client credentials or request (operator must fix them)."""

    def __init__(self, status_code: int, error_code: str | None) -> None:
        detail = f"HTTP {status_code}"
        if error_code is not None:
            detail = f"{detail}, {error_code}"
        super().__init__(
            f"Discord rejected the OAuth2 request ({detail}). Check the client ID, client "
            "secret and redirect URI configured for the Discord application."
        )
        self.status_code = status_code
        self.error_code = error_code


class OAuthTokenRejectedError(OAuthError):
    """Discord rejected the access token, which was revoked, expired or lacks a scope."""

    safe_message = "Discord no longer accepts this sign-in. Sign in again."


class OAuthUpstreamError(OAuthError):
    """Discord failed, timed out, rate-limited the faucet or sent a reply of the wrong shape."""

    safe_message = "Discord is not responding right now. Try signing in again in a few minutes."


class DiscordOAuthClient:
    """Run the authorization-code flow against Discord's OAuth2 endpoints.

    `redirect_uri` is sent byte-identical in the authorize URL and the code exchange, because
    Discord rejects an exchange whose redirect URI differs. The client secret goes only in
    the HTTP Basic header, and no token or secret is logged or put in an error.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_base_url: str,
        authorize_url: str,
        client_id: str,
        client_secret: SecretStr,
        redirect_uri: str,
        scopes: Sequence[str],
        *,
        prompt: str | None = "none",
    ) -> None:
        for name, url in (
            ("api_base_url", api_base_url),
            ("authorize_url", authorize_url),
            ("redirect_uri", redirect_uri),
        ):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{name} must be an absolute http or https URL")
        if not client_id:
            raise ValueError("client_id must not be empty")
        if not scopes or any(not scope or " " in scope for scope in scopes):
            raise ValueError("scopes must be a non-empty list of scope names without spaces")

        self._http = http
        self._api_base_url = api_base_url.rstrip("/")
        self._authorize_url = authorize_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes)
        self._prompt = prompt

    @property
    def redirect_uri(self) -> str:
        """The redirect URI sent with every authorize URL and code exchange."""
        return self._redirect_uri

    def authorize_redirect_url(self, state: str) -> str:
        """Return the Discord authorize URL that the browser is redirected to."""
        if not state:
            raise ValueError("state must not be empty")

        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "scope": " ".join(self._scopes),
            "redirect_uri": self._redirect_uri,
            "state": state,
        }
        if self._prompt is not None:
            params["prompt"] = self._prompt

        separator = "&" if urlsplit(self._authorize_url).query else "?"
        return f"{self._authorize_url}{separator}{urlencode(params, quote_via=quote)}"

    async def exchange_code(self, code: str) -> OAuthToken:
        """Exchange an authorization code for an access token.

        Raises OAuthInvalidGrantError when Discord rejects the code, OAuthClientConfigError
        when it rejects the client credentials or request, and OAuthUpstreamError otherwise.
        """
        if not code:
            raise OAuthInvalidGrantError()

        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._redirect_uri,
        }
        auth = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        response = await self._send("POST", "/oauth2/token", "token", data=form, auth=auth)

        if response.status_code in (httpx.codes.BAD_REQUEST, httpx.codes.UNAUTHORIZED):
            error_code = _oauth_error_code(response)
            if error_code == "invalid_grant":
                log.info("discord_oauth_code_rejected", status=response.status_code)
                raise OAuthInvalidGrantError()
            log.error(
                "discord_oauth_client_rejected",
                status=response.status_code,
                error_code=error_code,
            )
            raise OAuthClientConfigError(response.status_code, error_code)

        body = self._json_body(response, "token")
        try:
            return parse_token(body)
        except MalformedResponseError as error:
            log.warning("discord_oauth_reply_invalid", endpoint="token", reason=str(error))
            raise OAuthUpstreamError() from None

    async def current_user(self, token: OAuthToken) -> DiscordUser:
        """Return the user the access token belongs to (needs the `identify` scope)."""
        response = await self._send("GET", "/users/@me", "users_me", headers=_bearer(token))
        self._raise_for_rejected_token(response, "users_me")

        body = self._json_body(response, "users_me")
        try:
            return parse_user(body)
        except MalformedResponseError as error:
            log.warning("discord_oauth_reply_invalid", endpoint="users_me", reason=str(error))
            raise OAuthUpstreamError() from None

    async def user_guild_ids(self, token: OAuthToken) -> set[int]:
        """Return the IDs of every guild the user is in (needs the `guilds` scope)."""
        guild_ids: set[int] = set()
        after: int | None = None
        for _ in range(_MAX_GUILD_PAGES):
            params: dict[str, str] = {"limit": str(GUILDS_PAGE_SIZE)}
            if after is not None:
                params["after"] = str(after)

            response = await self._send(
                "GET", "/users/@me/guilds", "guilds", headers=_bearer(token), params=params
            )
            self._raise_for_rejected_token(response, "guilds")

            body = self._json_body(response, "guilds")
            try:
                page = parse_guild_ids(body)
            except MalformedResponseError as error:
                log.warning("discord_oauth_reply_invalid", endpoint="guilds", reason=str(error))
                raise OAuthUpstreamError() from None

            guild_ids.update(page)
            if len(page) < GUILDS_PAGE_SIZE:
                return guild_ids
            after = max(page)

        log.warning("discord_oauth_guild_pages_exceeded", pages=_MAX_GUILD_PAGES)
        raise OAuthUpstreamError()

    async def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        url = f"{self._api_base_url}{path}"
        try:
            response = await self._http.request(
                method, url, headers=headers, params=params, data=data, auth=auth
            )
        except httpx.TimeoutException:
            log.warning("discord_oauth_timed_out", endpoint=endpoint)
            raise OAuthUpstreamError() from None
        except httpx.RequestError as error:
            log.warning(
                "discord_oauth_request_failed", endpoint=endpoint, error_type=type(error).__name__
            )
            raise OAuthUpstreamError() from None

        status = response.status_code
        if status == httpx.codes.TOO_MANY_REQUESTS or status >= httpx.codes.INTERNAL_SERVER_ERROR:
            log.warning("discord_oauth_upstream_failed", endpoint=endpoint, status=status)
            raise OAuthUpstreamError()
        return response

    def _raise_for_rejected_token(self, response: httpx.Response, endpoint: str) -> None:
        if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            log.info("discord_oauth_token_rejected", endpoint=endpoint, status=response.status_code)
            raise OAuthTokenRejectedError()

    def _json_body(self, response: httpx.Response, endpoint: str) -> object:
        if response.status_code != httpx.codes.OK:
            log.warning(
                "discord_oauth_status_unexpected", endpoint=endpoint, status=response.status_code
            )
            raise OAuthUpstreamError()
        try:
            return decode_json(response)
        except MalformedResponseError as error:
            log.warning("discord_oauth_reply_invalid", endpoint=endpoint, reason=str(error))
            raise OAuthUpstreamError() from None


def _bearer(token: OAuthToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.access_token.get_secret_value()}"}


def _oauth_error_code(response: httpx.Response) -> str | None:
    try:
        body = decode_json(response)
    except MalformedResponseError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str) and _OAUTH_ERROR_CODE.fullmatch(error):
        return error
    return None


def parse_token(body: object) -> OAuthToken:
    """Return the token from a successful code-exchange reply."""
    reply = expect_object(body, "reply")
    access_token = expect_str(reply.get("access_token"), "access_token")
    if not access_token:
        raise MalformedResponseError("access_token is empty")

    token_type = expect_str(reply.get("token_type"), "token_type")
    if token_type.lower() != "bearer":
        raise MalformedResponseError("token_type is not Bearer")

    expires_in = expect_int(reply.get("expires_in"), "expires_in")
    if expires_in < 0:
        raise MalformedResponseError("expires_in is negative")

    scope = expect_optional_str(reply.get("scope"), "scope") or ""
    refresh_token = expect_optional_str(reply.get("refresh_token"), "refresh_token")

    return OAuthToken(
        access_token=SecretStr(access_token),
        token_type=token_type,
        expires_in=expires_in,
        scopes=frozenset(scope.split()),
        refresh_token=None if refresh_token is None else SecretStr(refresh_token),
    )


def parse_user(body: object) -> DiscordUser:
    """Return the user from a `GET /users/@me` reply."""
    reply = expect_object(body, "reply")
    username = expect_str(reply.get("username"), "username")
    if not username:
        raise MalformedResponseError("username is empty")

    return DiscordUser(
        id=expect_snowflake(reply.get("id"), "id"),
        username=username,
        global_name=expect_optional_str(reply.get("global_name"), "global_name"),
        locale=expect_optional_str(reply.get("locale"), "locale"),
    )


def parse_guild_ids(body: object) -> list[int]:
    """Return the guild IDs from one page of a `GET /users/@me/guilds` reply."""
    guilds = expect_list(body, "reply")
    return [
        expect_snowflake(expect_object(guild, f"[{index}]").get("id"), f"[{index}].id")
        for index, guild in enumerate(guilds)
    ]
