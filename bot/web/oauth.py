"""Routes of the Discord OAuth sign-in: `GET /auth/discord/login` and `/auth/discord/callback`.

The login route stores a fresh state and binds it to this browser with a signed cookie
(`p2s_oauth`, HttpOnly, SameSite=Lax, Secure when the redirect URI is https, 10 minutes).
The callback route checks that state before anything else, and on success sets the signed
`p2s_session` cookie. Both routes are limited per client address, in memory only. They have
no side effects beyond the sign-in's own: states, the player and their verification record,
and the regional login count.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from bot.web.pages import SECURITY_HEADERS, Branding, render_login_result, render_rate_limited
from bot.web.ratelimit import ClientRateLimiter, retry_after_header
from core.services.oauth_login import LoginOutcome, LoginResult, OAuthLoginService
from core.services.regions import RegionResolver, RegionStats
from core.services.sessions import (
    SESSION_COOKIE_NAME,
    SESSION_MAX_AGE,
    CookieSigner,
    issue_session,
    new_browser_nonce,
)

log = structlog.get_logger(__name__)

LOGIN_ROUTE = "/auth/discord/login"
CALLBACK_ROUTE = "/auth/discord/callback"
BROWSER_COOKIE_NAME = "p2s_oauth"
BROWSER_PURPOSE = "oauth_browser"


@dataclass(frozen=True, slots=True)
class OAuthRoutesConfig:
    """Collaborators and settings of the OAuth routes, built once at start-up.

    `secure_cookies` is True when the redirect URI is https; `secure_cookies_for` computes it.
    """

    login: OAuthLoginService
    signer: CookieSigner
    branding: Branding
    regions: RegionResolver
    region_stats: RegionStats
    limiter: ClientRateLimiter
    secure_cookies: bool


def secure_cookies_for(redirect_uri: str) -> bool:
    """Return whether cookies must be Secure: when the redirect URI is https."""
    return urlsplit(redirect_uri).scheme == "https"


OAUTH_CONFIG_KEY = web.AppKey("pay2slay_oauth_routes", OAuthRoutesConfig)


def add_oauth_routes(app: web.Application, config: OAuthRoutesConfig) -> None:
    """Mount the login and callback routes on `app`."""
    app[OAUTH_CONFIG_KEY] = config
    # HEAD is left out: a HEAD of the login route would create a state.
    app.router.add_get(LOGIN_ROUTE, _handle_login, allow_head=False)
    app.router.add_get(CALLBACK_ROUTE, _handle_callback, allow_head=False)


async def _handle_login(request: web.Request) -> web.StreamResponse:
    config = request.app[OAUTH_CONFIG_KEY]
    limited = _rate_limited(config, request)
    if limited is not None:
        return limited

    existing = config.signer.verify(BROWSER_PURPOSE, request.cookies.get(BROWSER_COOKIE_NAME))
    browser_nonce = existing.subject if existing is not None else new_browser_nonce()

    try:
        start = await config.login.start_login(browser_nonce)
    except Exception:
        log.exception("oauth_login_start_failed")
        return render_login_result(config.branding, LoginResult(LoginOutcome.INTERNAL_ERROR))

    response = web.Response(
        status=302, headers={**SECURITY_HEADERS, "Location": start.authorize_url}
    )
    ttl = config.login.state_ttl
    response.set_cookie(
        BROWSER_COOKIE_NAME,
        config.signer.sign(BROWSER_PURPOSE, browser_nonce, ttl),
        max_age=int(ttl.total_seconds()),
        path="/auth/discord",
        httponly=True,
        samesite="Lax",
        secure=config.secure_cookies,
    )
    return response


async def _handle_callback(request: web.Request) -> web.StreamResponse:
    config = request.app[OAUTH_CONFIG_KEY]
    limited = _rate_limited(config, request)
    if limited is not None:
        return limited

    browser = config.signer.verify(BROWSER_PURPOSE, request.cookies.get(BROWSER_COOKIE_NAME))
    query = request.query
    try:
        result = await config.login.complete_login(
            state=query.get("state"),
            browser_nonce=None if browser is None else browser.subject,
            code=query.get("code"),
            error=query.get("error"),
        )
    except Exception:
        log.exception("oauth_callback_failed")
        result = LoginResult(LoginOutcome.INTERNAL_ERROR)

    response = render_login_result(config.branding, result)
    if result.outcome is LoginOutcome.OK and result.discord_id is not None:
        response.set_cookie(
            SESSION_COOKIE_NAME,
            issue_session(config.signer, result.discord_id),
            max_age=int(SESSION_MAX_AGE.total_seconds()),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=config.secure_cookies,
        )
        if not result.repeated:
            await _count_region(config, request)
    return response


def _rate_limited(config: OAuthRoutesConfig, request: web.Request) -> web.Response | None:
    # NOTE: behind a reverse proxy every client has the proxy's address and so shares one
    # bucket. The limit then protects the faucet but does not keep clients apart.
    wait = config.limiter.check(request.remote)
    if wait is None:
        return None
    config.login.count_rate_limited()
    log.debug("oauth_rate_limited", route=request.path)
    return render_rate_limited(config.branding, retry_after_header(wait))


async def _count_region(config: OAuthRoutesConfig, request: web.Request) -> None:
    country = config.regions.country_for(request.headers, request.remote)
    try:
        await config.region_stats.record_login(country)
    except Exception:
        # The count is for statistics only; the sign-in itself already succeeded.
        log.exception("region_count_failed")
