"""A side server with the request middleware and health routes, served on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.web.health import CheckResult, HealthRoutesConfig, ReadinessCheck, add_health_routes
from bot.web.middleware import add_request_middleware
from core.observability.metrics import Metrics


class Switch:
    """A readiness check whose result a test sets."""

    def __init__(self, detail: str = "down") -> None:
        self.ok = True
        self.detail = detail
        self.calls = 0

    async def __call__(self) -> CheckResult:
        self.calls += 1
        return CheckResult(self.ok, "" if self.ok else self.detail)


@asynccontextmanager
async def serve(
    config: HealthRoutesConfig,
    *,
    https_public_url: bool = False,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """Serve an app with the middleware, the health routes and `extra_routes` on loopback."""
    app = web.Application()
    add_request_middleware(app, config.metrics, https_public_url=https_public_url)
    add_health_routes(app, config)
    if extra_routes is not None:
        extra_routes(app)
    server = TestServer(app, host="127.0.0.1", port=0)
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def health_config(
    checks: Mapping[str, ReadinessCheck] | None = None,
    *,
    metrics: Metrics | None = None,
    **options: object,
) -> HealthRoutesConfig:
    """Build a config with no caching, so every /readyz runs the checks."""
    values: dict[str, object] = {"cache_seconds": 0.0, **options}
    return HealthRoutesConfig(
        metrics=metrics if metrics is not None else Metrics(version="test"),
        checks=dict(checks or {}),
        **values,  # type: ignore[arg-type]
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
