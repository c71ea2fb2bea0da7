"""Request middleware: correlation ids, security headers, request log lines and metrics."""

from __future__ import annotations

import io
import json

import pytest
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.web.middleware import (
    DEFAULT_SECURITY_HEADERS,
    REQUEST_ID_HEADER,
    STRICT_TRANSPORT_SECURITY,
    request_id_for,
)
from core.observability import configure_logging, reset_logging
from core.observability.metrics import Metrics
from tests.unit.ops.helpers_web import health_config, serve


async def _page(request: web.Request) -> web.Response:
    # A page with its own policy, as the OAuth pages have.
    return web.Response(
        text="<p>hi</p>",
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'none'; img-src https:"},
    )


async def _logs_inside(request: web.Request) -> web.Response:
    structlog.get_logger("tests.handler").info("handler_ran")
    return web.Response(text="ok")


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("secret detail that must not be shown")


async def _gone(request: web.Request) -> web.Response:
    raise web.HTTPGone()


def _extra_routes(app: web.Application) -> None:
    app.router.add_get("/page", _page)
    app.router.add_get("/crash", _crash)
    app.router.add_get("/logs", _logs_inside)
    app.router.add_get("/items/{item_id}", _gone)


def _http_requests(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    payload, _ = metrics.render()
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(payload.decode()):
        if family.name != "pay2slay_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (
                    sample.labels["route"],
                    sample.labels["method"],
                    sample.labels["status_class"],
                )
                counts[key] = sample.value
    return counts


async def test_security_headers_on_every_response() -> None:
    async with serve(health_config(), extra_routes=_extra_routes) as client:
        for path in ("/healthz", "/metrics", "/missing", "/crash", "/items/3"):
            response = await client.get(path)
            for name, value in DEFAULT_SECURITY_HEADERS.items():
                assert response.headers[name] == value, (path, name)
            assert "Strict-Transport-Security" not in response.headers, path


async def test_handler_policy_is_kept() -> None:
    async with serve(health_config(), extra_routes=_extra_routes) as client:
        response = await client.get("/page")

    assert response.headers["Content-Security-Policy"] == "default-src 'none'; img-src https:"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_hsts_when_public_url_is_https() -> None:
    async with serve(health_config(), https_public_url=True) as client:
        response = await client.get("/healthz")
        missing = await client.get("/missing")

    assert response.headers["Strict-Transport-Security"] == STRICT_TRANSPORT_SECURITY
    assert missing.headers["Strict-Transport-Security"] == STRICT_TRANSPORT_SECURITY


async def test_request_id_echoed() -> None:
    async with serve(health_config()) as client:
        response = await client.get("/healthz", headers={REQUEST_ID_HEADER: "req-42.a:b"})

    assert response.headers[REQUEST_ID_HEADER] == "req-42.a:b"


async def test_invalid_request_id_replaced() -> None:
    async with serve(health_config()) as client:
        response = await client.get("/healthz", headers={REQUEST_ID_HEADER: "bad id\twith space"})
        fresh = await client.get("/healthz")

    replaced = response.headers[REQUEST_ID_HEADER]
    assert replaced != "bad id\twith space"
    assert len(replaced) == 32
    assert fresh.headers[REQUEST_ID_HEADER] != replaced


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("a/b", False),
        ("line\nbreak", False),
        (None, False),
    ],
)
def test_request_id_for(incoming: str | None, kept: bool) -> None:
    assert (request_id_for(incoming) == incoming) is kept


async def test_request_logged_with_correlation_id() -> None:
    async with serve(health_config(), extra_routes=_extra_routes) as client:
        with structlog.testing.capture_logs() as logs:
            await client.get(
                "/page?code=oauth-code-value&state=xyz", headers={REQUEST_ID_HEADER: "r1"}
            )

    (line,) = [entry for entry in logs if entry["event"] == "http_request"]
    assert line["route"] == "/page"
    assert line["path"] == "/page"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["log_level"] == "info"
    assert "oauth-code-value" not in repr(logs)


async def test_correlation_id_in_json_log_lines() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="DEBUG", secrets=(), stream=stream)
    try:
        async with serve(health_config(), extra_routes=_extra_routes) as client:
            await client.get("/logs?state=abc", headers={REQUEST_ID_HEADER: "corr-7"})
    finally:
        reset_logging()

    records = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    (inside,) = [record for record in records if record["event"] == "handler_ran"]
    (request_line,) = [record for record in records if record["event"] == "http_request"]
    assert inside["correlation_id"] == "corr-7"
    assert request_line["correlation_id"] == "corr-7"
    assert request_line["path"] == "/logs"
    assert "state=abc" not in stream.getvalue()


async def test_probe_requests_logged_at_debug() -> None:
    async with serve(health_config()) as client:
        with structlog.testing.capture_logs() as logs:
            await client.get("/healthz")

    (line,) = [entry for entry in logs if entry["event"] == "http_request"]
    assert line["log_level"] == "debug"


async def test_unexpected_error_returns_json_500() -> None:
    async with serve(health_config(), extra_routes=_extra_routes) as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.get("/crash", headers={REQUEST_ID_HEADER: "crash-1"})
            body = await response.json()

    assert response.status == 500
    assert body == {"error": "internal_error", "request_id": "crash-1"}
    assert response.headers[REQUEST_ID_HEADER] == "crash-1"
    failures = [entry for entry in logs if entry["event"] == "http_request_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"
    (line,) = [entry for entry in logs if entry["event"] == "http_request"]
    assert line["log_level"] == "warning"
    assert line["status"] == 500


async def test_requests_counted_by_route_template() -> None:
    metrics = Metrics(version="test")
    async with serve(health_config(metrics=metrics), extra_routes=_extra_routes) as client:
        await client.get("/items/1")
        await client.get("/items/2")
        await client.get("/healthz")
        await client.get("/no/such/path")
        await client.post("/healthz")

    counts = _http_requests(metrics)
    assert counts[("/items/{item_id}", "GET", "4xx")] == 2
    assert counts[("/healthz", "GET", "2xx")] == 1
    # An unmatched path and a method the route does not allow have no route template.
    assert counts[("other", "GET", "4xx")] == 1
    assert counts[("other", "POST", "4xx")] == 1
    assert not any(route.startswith("/items/1") for route, _, _ in counts)
