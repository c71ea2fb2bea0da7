"""The Discord OAuth sign-in over real HTTP: our side server, the Discord and Yunite sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
import structlog
from aiohttp import web
from multidict import CIMultiDict
from pydantic import SecretStr
from sqlalchemy import select

from bot.web.app import create_web_app
from bot.web.oauth import BROWSER_COOKIE_NAME, OAuthRoutesConfig, secure_cookies_for
from bot.web.pages import Branding
from bot.web.ratelimit import ClientRateLimiter
from core.db.models import OAuthState, Player, RegionCount, VerificationRecord
from core.integrations.discord_oauth import DiscordOAuthClient
from core.sandbox.discord_server import DiscordEndpoint, SandboxDiscord
from core.services.oauth_login import OAuthLoginService
from core.services.regions import RegionResolver, RegionStats
from core.services.sessions import SESSION_COOKIE_NAME, CookieSigner, read_session
from tests.integration.identity.helpers_identity import (
    GUILD_ID,
    IdentityEnv,
    discord_id,
    epic_id,
)

CLIENT_ID = "300000000000000001"
CLIENT_SECRET = "sandbox-client-secret-0123456789"
SESSION_SECRET = "session-secret-for-tests-0123456789abcdef"
REDIRECT_HTTP = "http://127.0.0.1:3000/auth/discord/callback"
REDIRECT_HTTPS = "https://127.0.0.1:3443/auth/discord/callback"
USER = discord_id(1)


@dataclass
class BrowserResponse:
    status_code: int
    headers: CIMultiDict[str]
    text: str
    set_cookies: list[str]
    cookies: dict[str, str]


@dataclass
class WebEnv:
    env: IdentityEnv
    discord: SandboxDiscord
    signer: CookieSigner
    base_url: str

    async def get(
        self, url: str, *, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> BrowserResponse:
        # aiohttp plays the browser because it does not log request URLs, so the captured logs
        # hold only what the faucet and its outgoing clients log. No cookie jar is kept.
        request_headers = dict(headers or {})
        if cookie is not None:
            request_headers["Cookie"] = f"{BROWSER_COOKIE_NAME}={cookie}"
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client,
            client.get(url, headers=request_headers, allow_redirects=False) as response,
        ):
            return BrowserResponse(
                status_code=response.status,
                headers=response.headers.copy(),
                text=await response.text(),
                set_cookies=response.headers.getall("Set-Cookie", []),
                cookies={name: morsel.value for name, morsel in response.cookies.items()},
            )

    async def start_login(self, cookie: str | None = None) -> tuple[str, str]:
        response = await self.get(f"{self.base_url}/auth/discord/login", cookie=cookie)
        assert response.status_code == 302
        return response.headers["location"], response.cookies[BROWSER_COOKIE_NAME]

    async def authorize(self, authorize_url: str) -> dict[str, str]:
        response = await self.get(authorize_url)
        assert response.status_code == 302
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return {key: values[0] for key, values in query.items()}

    async def callback(
        self, params: dict[str, str], cookie: str | None, headers: dict[str, str] | None = None
    ) -> BrowserResponse:
        url = f"{self.base_url}/auth/discord/callback?{urlencode(params)}"
        return await self.get(url, cookie=cookie, headers=headers)

    async def sign_in(self) -> tuple[BrowserResponse, dict[str, str], str]:
        authorize_url, cookie = await self.start_login()
        params = await self.authorize(authorize_url)
        response = await self.callback(params, cookie, headers={"CF-IPCountry": "de"})
        return response, params, cookie

    def token_requests(self) -> int:
        return sum(1 for request in self.discord.requests if request.path.endswith("/token"))


async def _serve(
    env: IdentityEnv,
    discord: SandboxDiscord,
    redirect_uri: str,
    limiter: ClientRateLimiter | None = None,
) -> tuple[web.AppRunner, str, CookieSigner]:
    oauth_client = DiscordOAuthClient(
        env.http,
        discord.api_base_url,
        discord.authorize_url,
        CLIENT_ID,
        SecretStr(CLIENT_SECRET),
        redirect_uri,
        ["identify", "guilds"],
    )
    signer = CookieSigner(SecretStr(SESSION_SECRET), env.clock.now)
    config = OAuthRoutesConfig(
        login=OAuthLoginService(
            env.db, oauth_client, env.verification, GUILD_ID, env.clock.now, env.metrics
        ),
        signer=signer,
        branding=Branding("Pay<2>Slay", "Org & Co", "https://127.0.0.1/banner.png?a=1&b=2"),
        regions=RegionResolver("CF-IPCountry"),
        region_stats=RegionStats(env.db, env.metrics, env.clock.now),
        limiter=limiter if limiter is not None else ClientRateLimiter(capacity=1000),
        secure_cookies=secure_cookies_for(redirect_uri),
    )
    runner = web.AppRunner(create_web_app(oauth=config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", signer


@pytest.fixture
async def discord(env: IdentityEnv) -> AsyncIterator[SandboxDiscord]:
    sandbox = SandboxDiscord(
        CLIENT_ID, CLIENT_SECRET, [REDIRECT_HTTP, REDIRECT_HTTPS], clock=env.clock.now
    )
    await sandbox.start()
    sandbox.add_user(USER, "slayer_one", global_name="Slayer <One>", guild_ids=[GUILD_ID, 7])
    sandbox.consent_as(USER)
    env.yunite.add_player(USER, epic_id("one"))
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def web_env(env: IdentityEnv, discord: SandboxDiscord) -> AsyncIterator[WebEnv]:
    runner, base_url, signer = await _serve(env, discord, REDIRECT_HTTP)
    try:
        yield WebEnv(env, discord, signer, base_url)
    finally:
        await runner.cleanup()


def _set_cookie(response: BrowserResponse, name: str) -> str:
    (header,) = [h for h in response.set_cookies if h.startswith(f"{name}=")]
    return header


async def test_login_redirects_with_bound_state(web_env: WebEnv) -> None:
    response = await web_env.get(f"{web_env.base_url}/auth/discord/login")

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert query["redirect_uri"] == [REDIRECT_HTTP]
    assert query["scope"] == ["identify guilds"]
    state = query["state"][0]
    assert len(state) >= 40
    header = _set_cookie(response, BROWSER_COOKIE_NAME)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header

    async with web_env.env.db.read() as session:
        (stored,) = list(await session.scalars(select(OAuthState)))
    assert stored.state_hash != state
    assert state not in stored.browser_hash


async def test_sign_in_success_sets_session(web_env: WebEnv) -> None:
    response, _, _ = await web_env.sign_in()

    assert response.status_code == 200
    assert "You are signed in" in response.text
    assert "Pay&lt;2&gt;Slay" in response.text
    assert "Org &amp; Co" in response.text
    assert "Slayer &lt;One&gt;" in response.text
    assert "banner.png?a=1&amp;b=2" in response.text
    assert response.headers["Referrer-Policy"] == "no-referrer"
    header = _set_cookie(response, SESSION_COOKIE_NAME)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    session = read_session(web_env.signer, response.cookies[SESSION_COOKIE_NAME])
    assert session is not None
    assert session.discord_id == USER

    db = web_env.env.db
    async with db.read() as read:
        player = await read.scalar(select(Player).where(Player.discord_id == USER))
        record = await read.scalar(select(VerificationRecord))
        regions = [(r.country, r.count) for r in await read.scalars(select(RegionCount))]
        state = await read.scalar(select(OAuthState))
    assert player is not None
    assert player.guild_member is True
    assert player.locale == "en-US"
    assert record is not None
    assert record.source == "oauth"
    assert regions == [("DE", 1)]
    assert state is not None
    assert (state.outcome, state.discord_id) == ("ok", USER)


async def test_token_exchange_is_form_encoded(web_env: WebEnv) -> None:
    await web_env.sign_in()

    (token_request,) = [r for r in web_env.discord.requests if r.path.endswith("/token")]
    assert token_request.content_type == "application/x-www-form-urlencoded"
    assert token_request.form["redirect_uri"] == REDIRECT_HTTP
    assert token_request.form["grant_type"] == "authorization_code"
    assert token_request.client_auth == "basic"


async def test_double_callback_exchanges_once(web_env: WebEnv) -> None:
    first, params, cookie = await web_env.sign_in()
    second = await web_env.callback(params, cookie)

    assert first.status_code == 200
    assert second.status_code == 200
    assert "You are signed in" in second.text
    assert web_env.token_requests() == 1
    assert await web_env.env.count(Player) == 1
    assert await web_env.env.count(VerificationRecord) == 1


async def test_replay_from_other_browser_rejected(web_env: WebEnv) -> None:
    _, params, _ = await web_env.sign_in()
    _, other_cookie = await web_env.start_login()

    without_cookie = await web_env.callback(params, None)
    other_browser = await web_env.callback(params, other_cookie)

    assert without_cookie.status_code == 403
    assert other_browser.status_code == 403
    assert SESSION_COOKIE_NAME not in other_browser.cookies
    assert web_env.token_requests() == 1


async def test_tampered_state_or_cookie_rejected(web_env: WebEnv) -> None:
    authorize_url, cookie = await web_env.start_login()
    params = await web_env.authorize(authorize_url)
    state = params["state"]
    tampered_state = dict(params, state=("A" if state[0] != "A" else "B") + state[1:])
    tampered_cookie = ("A" if cookie[0] != "A" else "B") + cookie[1:]

    unknown = await web_env.callback(tampered_state, cookie)
    mismatch = await web_env.callback(params, tampered_cookie)
    missing = await web_env.callback({"code": params["code"]}, cookie)

    assert unknown.status_code == 400
    assert mismatch.status_code == 403
    assert missing.status_code == 400
    assert web_env.token_requests() == 0

    # The untouched pair still works, so none of the attempts used the state up.
    assert (await web_env.callback(params, cookie)).status_code == 200


async def test_expired_state_rejected(web_env: WebEnv) -> None:
    authorize_url, cookie = await web_env.start_login()
    params = await web_env.authorize(authorize_url)
    web_env.env.clock.advance(minutes=11)

    response = await web_env.callback(params, cookie)

    assert response.status_code == 410
    assert "Sign-in expired" in response.text
    assert web_env.token_requests() == 0


async def test_denied_consent_page(web_env: WebEnv) -> None:
    web_env.discord.deny_consent()
    authorize_url, cookie = await web_env.start_login()
    params = await web_env.authorize(authorize_url)

    response = await web_env.callback(params, cookie)
    repeat = await web_env.callback(params, cookie)

    assert params["error"] == "access_denied"
    assert response.status_code == 403
    assert "Sign-in cancelled" in response.text
    assert repeat.status_code == 403
    assert web_env.token_requests() == 0


async def test_non_member_rejected(web_env: WebEnv) -> None:
    web_env.discord.set_user_guilds(USER, [7])

    response, _, _ = await web_env.sign_in()

    assert response.status_code == 403
    assert "Not a member" in response.text
    assert SESSION_COOKIE_NAME not in response.cookies
    assert await web_env.env.count(Player) == 0


async def test_missing_yunite_link_rejected(web_env: WebEnv) -> None:
    web_env.env.yunite.relink(USER, None)

    response, _, _ = await web_env.sign_in()

    assert response.status_code == 403
    assert "No Epic account linked" in response.text
    assert SESSION_COOKIE_NAME not in response.cookies


@pytest.mark.parametrize(
    ("endpoint", "status", "body", "expected"),
    [
        (DiscordEndpoint.TOKEN, 500, None, 503),
        (DiscordEndpoint.TOKEN, 400, {"error": "invalid_grant"}, 400),
        (DiscordEndpoint.TOKEN, 401, {"error": "invalid_client"}, 502),
        (DiscordEndpoint.USERS_ME, 503, None, 503),
        (DiscordEndpoint.GUILDS, 401, None, 502),
    ],
)
async def test_discord_failures_have_own_pages(
    web_env: WebEnv, endpoint: DiscordEndpoint, status: int, body: object, expected: int
) -> None:
    web_env.discord.inject_status(endpoint, status, body=body)

    response, _, _ = await web_env.sign_in()

    assert response.status_code == expected
    assert SESSION_COOKIE_NAME not in response.cookies


async def test_yunite_failure_page(web_env: WebEnv) -> None:
    web_env.env.yunite.inject_status(503)

    response, _, _ = await web_env.sign_in()

    assert response.status_code == 503
    assert "Yunite is not responding" in response.text


async def test_https_redirect_sets_secure_cookies(
    env: IdentityEnv, discord: SandboxDiscord
) -> None:
    runner, base_url, signer = await _serve(env, discord, REDIRECT_HTTPS)
    try:
        web_env = WebEnv(env, discord, signer, base_url)
        authorize_url, cookie = await web_env.start_login()
        login = await web_env.get(f"{base_url}/auth/discord/login")
        params = await web_env.authorize(authorize_url)
        response = await web_env.callback(params, cookie)
    finally:
        await runner.cleanup()

    assert "Secure" in _set_cookie(login, BROWSER_COOKIE_NAME)
    assert response.status_code == 200
    assert "Secure" in _set_cookie(response, SESSION_COOKIE_NAME)


async def test_rate_limited_per_client(env: IdentityEnv, discord: SandboxDiscord) -> None:
    limiter = ClientRateLimiter(capacity=2, refill_per_minute=1, monotonic=env.clock.monotonic)
    runner, base_url, signer = await _serve(env, discord, REDIRECT_HTTP, limiter)
    try:
        web_env = WebEnv(env, discord, signer, base_url)
        responses = [await web_env.get(f"{base_url}/auth/discord/login") for _ in range(3)]
    finally:
        await runner.cleanup()

    assert [response.status_code for response in responses] == [302, 302, 429]
    assert int(responses[2].headers["Retry-After"]) >= 1
    assert await env.count(OAuthState) == 2


async def test_no_secret_in_logs(web_env: WebEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with structlog.testing.capture_logs() as events:
        response, params, cookie = await web_env.sign_in()
        web_env.discord.inject_status(
            DiscordEndpoint.TOKEN,
            200,
            body={
                "access_token": "injected-access-token-value-42",
                "token_type": "Bearer",
                "expires_in": 600,
                "refresh_token": "injected-refresh-token-value-42",
                "scope": "identify guilds",
            },
        )
        rejected, _, _ = await web_env.sign_in()

    assert rejected.status_code == 502
    logged = repr(events) + caplog.text
    secrets = [
        CLIENT_SECRET,
        SESSION_SECRET,
        params["code"],
        params["state"],
        cookie,
        response.cookies[SESSION_COOKIE_NAME],
        "injected-access-token-value-42",
        "injected-refresh-token-value-42",
    ]
    for secret in secrets:
        assert secret not in logged
    assert any(event["event"] == "oauth_login_finished" for event in events)


async def test_old_states_pruned(web_env: WebEnv) -> None:
    await web_env.start_login()
    web_env.env.clock.advance(minutes=60 * 24 + 11)
    await web_env.start_login()

    assert await web_env.env.count(OAuthState) == 1


async def test_authorize_error_page(web_env: WebEnv) -> None:
    authorize_url, cookie = await web_env.start_login()
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]

    response = await web_env.callback({"state": state, "error": "invalid_scope"}, cookie)

    assert response.status_code == 502
    assert "Discord refused" in response.text
    assert web_env.token_requests() == 0


async def test_head_of_login_creates_nothing(web_env: WebEnv) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.head(f"{web_env.base_url}/auth/discord/login") as response,
    ):
        status = response.status

    assert status == 405
    assert await web_env.env.count(OAuthState) == 0
