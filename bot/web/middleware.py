"""Request logging, correlation ids, request metrics and security headers for the side server.

`add_request_middleware(app, metrics)` installs all of it. Call it before any other
`add_*_routes` or middleware, so that its middleware is the outermost one and handles every
response, errors included.

- Correlation id: a request's `X-Request-ID` is kept when it is 1 to 128 characters of letters,
  digits and `._:-`, else a new random one is made. It is bound to every log line written while
  the request runs (`correlation_id`) and sent back in the response's `X-Request-ID`.
- Log: one `http_request` line per request with method, route template, path (never the query,
  which carries OAuth codes and states), status and duration. The client address is not logged.
- Metrics: `pay2slay_http_requests_total` by route template, method and status class.
- Headers: every response gets Content-Security-Policy, X-Content-Type-Options,
  Referrer-Policy and X-Frame-Options unless its handler set them itself, and
  Strict-Transport-Security when the request came over https or the server's public URL is
  https.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from core.observability.logging import bind_context
from core.observability.metrics import Metrics

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"

_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# A page that sets no policy of its own loads nothing, and no page may be framed.
DEFAULT_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# One year, the minimum that the HSTS preload list requires. includeSubDomains is left out because
# the operator's other hosts under the same domain may not all serve https.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

# Probes and scrapers call these every few seconds; their lines are logged at debug.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

# Longest path written to the log; an unmatched path is whatever the client sent.
_MAX_LOGGED_PATH = 200

# The status logged and counted when the client went away before a response was sent,
# as nginx records it.
CLIENT_CLOSED_REQUEST = 499

REQUEST_ID_KEY = web.RequestKey("pay2slay_request_id", str)


@dataclass(frozen=True, slots=True)
class _MiddlewareConfig:
    metrics: Metrics
    https_public_url: bool


_CONFIG_KEY = web.AppKey("pay2slay_request_middleware", _MiddlewareConfig)


def add_request_middleware(
    app: web.Application, metrics: Metrics, *, https_public_url: bool = False
) -> None:
    """Install the request middleware, the response headers and route registration on `app`.

    `https_public_url` is True when clients reach the server over https through a proxy that
    terminates TLS (the OAuth redirect URI is https), so Strict-Transport-Security is sent
    although the request reaches this process over plain http.
    """
    app[_CONFIG_KEY] = _MiddlewareConfig(metrics, https_public_url)
    app.middlewares.append(_observe_request)
    app.on_response_prepare.append(_add_response_headers)
    app.on_startup.append(_register_routes)


def request_id_for(incoming: str | None) -> str:
    """Return the incoming request id when it is safe to log and echo, else a new one."""
    if incoming is not None and _REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return secrets.token_hex(16)


def route_template(request: web.Request) -> str | None:
    """Return the matched route's template, such as `/auth/discord/callback`, or None."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


@web.middleware
async def _observe_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    config = request.app[_CONFIG_KEY]
    request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID_KEY] = request_id
    started = time.perf_counter()
    status = CLIENT_CLOSED_REQUEST

    with bind_context(correlation_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            log.exception("http_request_failed", method=request.method, path=_path(request))
            return web.json_response(
                {"error": "internal_error", "request_id": request_id}, status=status
            )
        finally:
            _record(config, request, status, time.perf_counter() - started)


def _record(config: _MiddlewareConfig, request: web.Request, status: int, seconds: float) -> None:
    route = route_template(request)
    config.metrics.count_http_request(route or "", request.method, status)

    if status >= 500:
        write = log.warning
    elif route in QUIET_ROUTES:
        write = log.debug
    else:
        write = log.info
    write(
        "http_request",
        method=request.method,
        route=route,
        path=_path(request),
        status=status,
        duration_ms=round(seconds * 1000, 1),
    )


def _path(request: web.Request) -> str:
    return request.path[:_MAX_LOGGED_PATH]


async def _add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    for name, value in DEFAULT_SECURITY_HEADERS.items():
        headers.setdefault(name, value)

    config = request.app.get(_CONFIG_KEY)
    if request.secure or (config is not None and config.https_public_url):
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)

    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id


async def _register_routes(app: web.Application) -> None:
    # Route templates become label values only once registered; anything else counts as other.
    templates = {resource.canonical for resource in app.router.resources()}
    app[_CONFIG_KEY].metrics.register_routes(sorted(templates))
