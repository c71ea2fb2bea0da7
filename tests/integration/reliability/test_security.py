"""Security campaign against the whole faucet process: OAuth, session cookies, /metrics, logs.

The faucet runs as `pay2slay run` builds it (`tests.reliability.side_server`), with every
secret set to a distinctive value and every log line captured at DEBUG with no redaction.
Each test ends by searching the captured lines for every configured secret.
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from pydantic import SecretStr

from bot.web.oauth import BROWSER_COOKIE_NAME, BROWSER_PURPOSE
from core.services.oauth_login import STATE_TTL
from core.services.sessions import (
    SESSION_COOKIE_NAME,
    SESSION_MAX_AGE,
    CookieSigner,
    issue_session,
    read_session,
)
from tests.reliability.hostile import HOSTILE_FRAGMENTS
from tests.reliability.log_scan import captured_log_lines, secret_hits
from tests.reliability.side_server import Browser, BrowserResponse, FullFaucet, full_faucet

LOGIN = "/auth/discord/login"
CALLBACK = "/auth/discord/callback"
# Source addresses in 127.0.0.0/8 for the browsers; every request still goes to 127.0.0.1.
_addresses = (f"127.0.{high}.{low}" for high in range(1, 250) for low in range(2, 250))


def new_browser() -> Browser:
    return Browser(next(_addresses))


@dataclass
class SecurityRun:
    faucet: FullFaucet
    logs: io.StringIO

    def url(self, path: str) -> str:
        return f"{self.faucet.base_url}{path}"

    def secret_hits(self) -> dict[str, int]:
        return secret_hits(self.logs.getvalue(), self.faucet.secrets.named())

    def token_exchanges(self) -> int:
        return sum(1 for request in self.faucet.discord.requests if request.path.endswith("/token"))

    def log_errors(self) -> list[str]:
        return [
            line
            for line in self.logs.getvalue().splitlines()
            if '"level": "error"' in line or '"level": "critical"' in line
        ]


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[SecurityRun]:
    with captured_log_lines() as logs:
        async with full_faucet(tmp_path) as faucet:
            yield SecurityRun(faucet, logs)


async def start_login(run: SecurityRun, browser: Browser) -> str:
    """Start a sign-in in `browser` and return Discord's authorize URL."""
    response = await browser.get(run.url(LOGIN))
    assert response.status == 302
    browser.keep(response)
    return response.headers["Location"]


async def authorize(
    run: SecurityRun, browser: Browser, authorize_url: str, user_id: int
) -> dict[str, str]:
    """Consent at the Discord sandbox as `user_id`; return the callback's query values."""
    run.faucet.discord.consent_as(user_id)
    response = await browser.get(authorize_url, cookies={})
    assert response.status == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return {name: values[0] for name, values in query.items()}


async def callback(
    run: SecurityRun,
    browser: Browser,
    params: dict[str, str],
    cookies: dict[str, str] | None = None,
) -> BrowserResponse:
    return await browser.get(f"{run.url(CALLBACK)}?{urlencode(params)}", cookies=cookies)


async def sign_in(
    run: SecurityRun, browser: Browser, user_id: int
) -> tuple[BrowserResponse, dict[str, str]]:
    params = await authorize(run, browser, await start_login(run, browser), user_id)
    return await callback(run, browser, params), params


# /metrics


async def test_metrics_refuses_wrong_token(run: SecurityRun) -> None:
    token = run.faucet.secrets.metrics_token
    browser = new_browser()
    refused = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"X-Metrics-Token": token},
    ]

    for headers in refused:
        response = await browser.get(run.url("/metrics"), headers=headers)
        assert response.status == 401, headers
        assert token not in response.text
    in_query = await browser.get(run.url(f"/metrics?token={token}"))
    allowed = await browser.get(run.url("/metrics"), headers={"Authorization": f"Bearer {token}"})

    assert in_query.status == 401
    assert allowed.status == 200
    assert "pay2slay_" in allowed.text
    for secret in run.faucet.secrets.named().values():
        assert secret not in allowed.text
    assert run.secret_hits() == {}


# OAuth state


async def test_oauth_sign_in_then_replay(run: SecurityRun) -> None:
    player_id = run.faucet.player_ids[0]
    browser = new_browser()

    first, params = await sign_in(run, browser, player_id)
    exchanges = run.token_exchanges()
    same_browser = await callback(run, browser, params)
    no_cookie = await callback(run, new_browser(), params, cookies={})
    other = new_browser()
    await start_login(run, other)
    other_browser = await callback(run, other, params)

    assert first.status == 200
    assert SESSION_COOKIE_NAME in first.cookies
    # A reload in the same browser shows the recorded outcome and never exchanges again.
    assert run.token_exchanges() == exchanges
    assert same_browser.status == 200
    for response in (no_cookie, other_browser):
        assert response.status == 403
        assert SESSION_COOKIE_NAME not in response.cookies
    assert run.secret_hits() == {}


async def test_oauth_tampered_state_refused(run: SecurityRun) -> None:
    player_id = run.faucet.player_ids[1]
    browser = new_browser()
    params = await authorize(run, browser, await start_login(run, browser), player_id)
    state = params["state"]
    flipped = state[:-1] + ("A" if state[-1] != "A" else "B")
    browser_cookie = browser.cookies[BROWSER_COOKIE_NAME]
    tampered_cookie = browser_cookie[:-2] + ("AA" if not browser_cookie.endswith("AA") else "BB")

    cases = [
        ({**params, "state": flipped}, None, 400),
        ({**params, "state": state[:10]}, None, 400),
        ({**params, "state": ""}, None, 400),
        ({**params, "state": state * 4}, None, 400),
        ({"code": params["code"]}, None, 400),
        (params, {BROWSER_COOKIE_NAME: tampered_cookie}, 403),
        (params, {}, 403),
    ]
    for query, cookies, status in cases:
        response = await callback(run, browser, query, cookies)
        assert response.status == status, (query, cookies)
        assert SESSION_COOKIE_NAME not in response.cookies
    assert run.token_exchanges() == 0

    tampered_code = await callback(run, browser, {**params, "code": params["code"] + "x"})
    assert tampered_code.status == 400
    assert SESSION_COOKIE_NAME not in tampered_code.cookies
    assert run.secret_hits() == {}


async def test_oauth_expired_state_refused(run: SecurityRun) -> None:
    browser = new_browser()
    params = await authorize(
        run, browser, await start_login(run, browser), run.faucet.player_ids[2]
    )

    run.faucet.clock.now += STATE_TTL + timedelta(seconds=1)
    response = await callback(run, browser, params)

    assert response.status == 410
    assert SESSION_COOKIE_NAME not in response.cookies
    assert run.token_exchanges() == 0
    assert run.secret_hits() == {}


async def test_oauth_fixation_refused(run: SecurityRun) -> None:
    attacker = new_browser()
    victim = new_browser()
    await start_login(run, victim)
    # The attacker signs in with their own account and stops before the callback.
    stolen = await authorize(
        run, attacker, await start_login(run, attacker), run.faucet.player_ids[3]
    )

    # The victim's browser is made to open the attacker's callback URL.
    response = await callback(run, victim, stolen)

    assert response.status == 403
    assert SESSION_COOKIE_NAME not in response.cookies
    assert run.token_exchanges() == 0
    assert run.secret_hits() == {}


# Session cookies


async def test_session_cookie_tampered_or_expired_refused(run: SecurityRun) -> None:
    player_id = run.faucet.player_ids[4]
    browser = new_browser()
    response, _ = await sign_in(run, browser, player_id)
    cookie = response.cookies[SESSION_COOKIE_NAME]
    oauth = run.faucet.services.oauth
    assert oauth is not None
    signer = oauth.signer

    session = read_session(signer, cookie)
    assert session is not None
    assert session.discord_id == player_id

    for index in range(len(cookie)):
        replacement = "A" if cookie[index] != "A" else "B"
        tampered = read_session(signer, cookie[:index] + replacement + cookie[index + 1 :])
        # Unused bits in the last base64 character can decode to the very same session.
        assert tampered is None or tampered == session
    assert read_session(signer, cookie + "A") is None
    assert read_session(signer, cookie[:-1]) is None
    assert read_session(signer, browser.cookies[BROWSER_COOKIE_NAME]) is None
    other_signer = CookieSigner(SecretStr("another-session-secret-0123456789abcdef"))
    assert read_session(signer, issue_session(other_signer, player_id)) is None
    assert (
        read_session(signer, signer.sign(BROWSER_PURPOSE, str(player_id), SESSION_MAX_AGE)) is None
    )

    run.faucet.clock.now += SESSION_MAX_AGE + timedelta(seconds=1)
    assert read_session(signer, cookie) is None
    assert run.secret_hits() == {}


# Rate limits


async def test_oauth_routes_rate_limited_per_client(run: SecurityRun) -> None:
    busy = new_browser()
    statuses = [(await busy.get(run.url(LOGIN))).status for _ in range(12)]
    limited = await busy.get(run.url(CALLBACK))
    other = await new_browser().get(run.url(LOGIN))
    health = [(await busy.get(run.url("/healthz"))).status for _ in range(20)]

    assert statuses[:10] == [302] * 10
    assert statuses[10:] == [429, 429]
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status == 302
    assert health == [200] * 20
    assert run.secret_hits() == {}


# Hostile query strings


def hostile_queries() -> list[str]:
    rng = random.Random(51)
    fixed = [
        "",
        "state",
        "state=&code=",
        "state=%FF%FE&code=%00",
        "state=" + "A" * 8000,
        "code=" + "B" * 8000 + "&state=x",
        "state=a&state=b&code=c&code=d",
        "error=access_denied",
        "error=" + quote("<script>alert(1)</script>") + "&state=x",
        "error_description=" + quote("\r\nSet-Cookie: p2s_session=evil") + "&state=x",
        "state=" + quote("' OR 1=1 --") + "&code=x",
        "%%%&&&===",
        "state=x;code=y",
    ]
    generated = []
    for _ in range(30):
        pairs = [
            (rng.choice(["state", "code", "error", "x", ""]), rng.choice(HOSTILE_FRAGMENTS)[:300])
            for _ in range(rng.randint(1, 4))
        ]
        generated.append(urlencode(pairs))
    return fixed + generated


async def test_callback_survives_hostile_queries(run: SecurityRun) -> None:
    statuses: list[int] = []
    for query in hostile_queries():
        browser = new_browser()
        await start_login(run, browser)
        response = await browser.get(f"{run.url(CALLBACK)}?{query}", encoded=True)
        statuses.append(response.status)
        assert response.status < 500, query[:80]
        assert "<script>" not in response.text
        assert "Traceback" not in response.text
        assert SESSION_COOKIE_NAME not in response.cookies
        assert "p2s_session=evil" not in response.headers.get("Set-Cookie", "")

    assert set(statuses) <= {400, 403}
    assert run.log_errors() == []
    assert run.secret_hits() == {}


def test_secret_values_are_distinct() -> None:
    # The log search is only meaningful when no secret is a substring of common text.
    from tests.reliability.side_server import FaucetSecrets

    values = list(FaucetSecrets.generate().named().values())
    assert len(set(values)) == len(values)
    assert all(len(value) >= 20 for value in values)
    assert dataclasses.fields(FaucetSecrets)
