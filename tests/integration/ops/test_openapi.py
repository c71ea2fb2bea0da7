"""The OpenAPI document against the running side server, and a /metrics scrape after use.

The server is the one the process runs: OAuth routes against the Discord and Yunite
sandboxes, the request middleware and the health routes. Every documented operation is
called, every status seen must be documented for it, every JSON body must match its schema,
and every route the server has must be documented.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import httpx
import pytest
import yaml
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.web.app import create_web_app
from bot.web.health import HealthRoutesConfig, add_health_routes, openapi_document
from bot.web.middleware import REQUEST_ID_HEADER, add_request_middleware
from bot.web.oauth import BROWSER_COOKIE_NAME, OAuthRoutesConfig, secure_cookies_for
from bot.web.pages import Branding
from bot.web.ratelimit import ClientRateLimiter
from core.clock import utc_now
from core.db import Database
from core.integrations.discord_oauth import DiscordOAuthClient
from core.integrations.yunite import YuniteClient
from core.observability.metrics import METRIC_NAMES, Metrics
from core.sandbox.discord_server import SandboxDiscord
from core.sandbox.yunite_server import SandboxYunite
from core.services.oauth_login import OAuthLoginService
from core.services.regions import RegionResolver, RegionStats
from core.services.sessions import CookieSigner
from core.services.verification import VerificationService
from tests.unit.ops.helpers_web import Switch

GUILD_ID = 500000000000000001
USER = 400000000000000001
CLIENT_ID = "300000000000000001"
CLIENT_SECRET = "sandbox-client-secret-0123456789"
YUNITE_TOKEN = "sandbox-yunite-token-0123456789"
SESSION_SECRET = "session-secret-for-tests-0123456789abcdef"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
REDIRECT = "http://127.0.0.1:3000/auth/discord/callback"
DOCUMENT = yaml.safe_load(openapi_document())
OPERATIONS = ("get", "head", "post", "put", "patch", "delete", "options")


class Members:
    """Every user is a guild member."""

    async def is_member(self, discord_id: int) -> bool | None:
        return True


@dataclass
class Observed:
    """Statuses and bodies seen per (path, method)."""

    statuses: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))

    async def call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        base_url: str,
        path: str,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
        url = f"{base_url}{path}" + (f"?{query}" if query else "")
        async with http.request(
            method.upper(), url, headers=headers or {}, allow_redirects=False
        ) as response:
            body = await response.text()
            status = response.status
            self.statuses[(path, method)].add(status)
            assert response.headers.get(REQUEST_ID_HEADER), (path, method)
            _check_against_document(path, method, status, response.content_type, body)
            return status, body, response.headers.copy()


def _response_spec(path: str, method: str, status: int) -> dict[str, Any]:
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered undocumented {status}"
    spec: dict[str, Any] = responses[str(status)]
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        spec = DOCUMENT["components"]["responses"][name]
    return spec


_REGISTRY: Registry[Any] = Registry().with_resource(
    "urn:pay2slay:openapi", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def _check_against_document(
    path: str, method: str, status: int, content_type: str, body: str
) -> None:
    spec = _response_spec(path, method, status)
    if method == "head":
        assert body == ""
        return
    content = spec.get("content")
    if content is None:
        return
    assert content_type in content, (path, status, content_type)
    schema = content[content_type]["schema"]
    if content_type != "application/json":
        return
    if "$ref" in schema:
        schema = {"$ref": "urn:pay2slay:openapi" + schema["$ref"]}
    instance = yaml.safe_load(body)
    Draft202012Validator(schema, registry=_REGISTRY).validate(instance)


@dataclass
class Server:
    base_url: str
    app: web.Application
    metrics: Metrics
    readiness: Switch
    discord: SandboxDiscord


@pytest.fixture
async def sandboxes() -> AsyncIterator[tuple[SandboxDiscord, SandboxYunite]]:
    discord = SandboxDiscord(CLIENT_ID, CLIENT_SECRET, [REDIRECT], clock=utc_now)
    yunite = SandboxYunite(YUNITE_TOKEN, GUILD_ID, clock=utc_now)
    await discord.start()
    await yunite.start()
    discord.add_user(USER, "slayer_one", global_name="Slayer One", guild_ids=[GUILD_ID])
    discord.consent_as(USER)
    yunite.add_player(USER, "0123456789abcdef0123456789abcdef")
    try:
        yield discord, yunite
    finally:
        await discord.stop()
        await yunite.stop()


async def _serve(
    db: Database,
    discord: SandboxDiscord,
    yunite: SandboxYunite,
    http: httpx.AsyncClient,
    limiter: ClientRateLimiter,
) -> tuple[web.AppRunner, Server]:
    metrics = Metrics(version="test")
    oauth_client = DiscordOAuthClient(
        http,
        discord.api_base_url,
        discord.authorize_url,
        CLIENT_ID,
        SecretStr(CLIENT_SECRET),
        REDIRECT,
        ["identify", "guilds"],
    )
    yunite_client = YuniteClient(
        http, yunite.base_url, SecretStr(YUNITE_TOKEN), GUILD_ID, cache_seconds=0, clock=utc_now
    )
    verification = VerificationService(db, yunite_client, Members(), utc_now, metrics)

    oauth = OAuthRoutesConfig(
        login=OAuthLoginService(db, oauth_client, verification, GUILD_ID, utc_now, metrics),
        signer=CookieSigner(SecretStr(SESSION_SECRET), utc_now),
        branding=Branding("Pay2Slay", "Example Org"),
        regions=RegionResolver("CF-IPCountry"),
        region_stats=RegionStats(db, metrics, utc_now),
        limiter=limiter,
        secure_cookies=secure_cookies_for(REDIRECT),
    )
    readiness = Switch("node down")
    app = create_web_app(oauth=oauth)
    add_request_middleware(app, metrics, https_public_url=False)
    add_health_routes(
        app,
        HealthRoutesConfig(
            metrics=metrics,
            checks={"node": readiness},
            metrics_token=SecretStr(METRICS_TOKEN),
            cache_seconds=0.0,
        ),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, Server(f"http://127.0.0.1:{port}", app, metrics, readiness, discord)


def test_document_is_valid_openapi_3_1() -> None:
    validate_spec(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


async def test_server_matches_document(
    sqlite_database: Database, sandboxes: tuple[SandboxDiscord, SandboxYunite]
) -> None:
    discord, yunite = sandboxes
    observed = Observed()
    async with httpx.AsyncClient(trust_env=False) as outgoing:
        runner, server = await _serve(
            sqlite_database, discord, yunite, outgoing, ClientRateLimiter(capacity=1000)
        )
        limited_runner, limited = await _serve(
            sqlite_database, discord, yunite, outgoing, ClientRateLimiter(capacity=1)
        )
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                await _exercise(http, server, limited, observed)
            scrape = await _scrape(server)
        finally:
            await runner.cleanup()
            await limited_runner.cleanup()

    served = {
        (route.resource.canonical, route.method.lower())
        for route in server.app.router.routes()
        if route.resource is not None
    }
    documented = {
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in OPERATIONS
    }
    assert served == documented
    assert set(observed.statuses) == documented

    assert scrape["pay2slay_oauth_logins_total"][("outcome", "ok")] == 1
    callback_ok = (("method", "GET"), ("route", "/auth/discord/callback"), ("status_class", "2xx"))
    assert scrape["pay2slay_http_requests_total"][callback_ok] == 1


async def _exercise(
    http: aiohttp.ClientSession, server: Server, limited: Server, observed: Observed
) -> None:
    base = server.base_url
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for method in ("get", "head"):
        assert (await observed.call(http, method, base, "/healthz"))[0] == 200
        assert (await observed.call(http, method, base, "/openapi.yaml"))[0] == 200
        assert (await observed.call(http, method, base, "/readyz"))[0] == 200
        server.readiness.ok = False
        assert (await observed.call(http, method, base, "/readyz"))[0] == 503
        server.readiness.ok = True
        assert (await observed.call(http, method, base, "/metrics"))[0] == 401
        assert (await observed.call(http, method, base, "/metrics", headers=bearer))[0] == 200

    # A full sign-in: login, Discord's consent page, then the callback.
    status, _, headers = await observed.call(http, "get", base, "/auth/discord/login")
    assert status == 302
    cookie = _cookie(headers)
    async with http.get(headers["Location"], allow_redirects=False) as consent:
        assert consent.status == 302
        query = parse_qs(urlsplit(consent.headers["Location"]).query)
    params = urlencode({key: values[0] for key, values in query.items()})
    status, _, _ = await observed.call(
        http, "get", base, "/auth/discord/callback", query=params, headers=cookie
    )
    assert status == 200

    # The same state again from another browser, and a callback with no state.
    status, _, _ = await observed.call(http, "get", base, "/auth/discord/callback", query=params)
    assert status in (400, 403)
    status, _, _ = await observed.call(http, "get", base, "/auth/discord/callback")
    assert status == 400

    # A client over its limit: one request is allowed, the next is refused.
    other = limited.base_url
    assert (await observed.call(http, "get", other, "/auth/discord/login"))[0] == 302
    assert (await observed.call(http, "get", other, "/auth/discord/login"))[0] == 429
    assert (await observed.call(http, "get", other, "/auth/discord/callback"))[0] == 429


def _cookie(headers: Any) -> dict[str, str]:
    for header in headers.getall("Set-Cookie"):
        if header.startswith(f"{BROWSER_COOKIE_NAME}="):
            return {"Cookie": header.split(";", 1)[0]}
    raise AssertionError("the login response set no browser cookie")


async def _scrape(server: Server) -> dict[str, dict[Any, float]]:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/metrics", headers=headers) as response,
    ):
        text = await response.text()
    samples: dict[str, dict[Any, float]] = defaultdict(dict)
    families = list(text_string_to_metric_families(text))
    names = {family.name for family in families}
    for name in METRIC_NAMES:
        assert name.removesuffix("_total") in names, name
    for family in families:
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
            if len(sample.labels) == 1:
                samples[sample.name][next(iter(sample.labels.items()))] = sample.value
    return samples
