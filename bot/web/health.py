"""Health, readiness, metrics and API description routes of the side server.

- `GET /healthz`: 200 while the process serves requests. It checks nothing else, so an
  orchestrator restarts the container only when the process is stuck or gone.
- `GET /readyz`: 200 when every readiness check passes, else 503; the JSON body names each
  check with its result, and lists the failed ones under `failed`.
- `GET /metrics`: the Prometheus text format. With `secrets.metrics_token` set it requires
  `Authorization: Bearer <token>` and returns 401 without it.
- `GET /openapi.yaml`: the OpenAPI 3.1 description of these routes and the OAuth routes.

Readiness checks are injected as coroutine functions, so the process wiring decides what is
checked and tests can make any check fail. `database_check`, `migrations_check`,
`node_check` and `flag_check` build the usual ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import structlog
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.banano.rpc_errors import NodeTransportError
from core.db.migrate import current_revision, head_revision
from core.db.session import Database
from core.errors import Pay2SlayError
from core.observability.metrics import Metrics

log = structlog.get_logger(__name__)

HEALTHZ_ROUTE = "/healthz"
READYZ_ROUTE = "/readyz"
METRICS_ROUTE = "/metrics"
OPENAPI_ROUTE = "/openapi.yaml"

OPENAPI_CONTENT_TYPE = "application/yaml"

DEFAULT_CHECK_TIMEOUT_SECONDS = 5.0

# Readiness results are reused for this long, so a flood of /readyz requests from the
# internet costs at most one database query and one node request per interval.
DEFAULT_READINESS_CACHE_SECONDS = 2.0

_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one readiness check; `detail` is public, shown to every client."""

    ok: bool
    detail: str = ""


ReadinessCheck = Callable[[], Awaitable[CheckResult]]
Monotonic = Callable[[], float]


def passed(detail: str = "") -> CheckResult:
    """Return a passing result."""
    return CheckResult(True, detail)


def failed(detail: str) -> CheckResult:
    """Return a failing result; `detail` names the problem without secrets or raw errors."""
    return CheckResult(False, detail)


@dataclass(slots=True)
class HealthRoutesConfig:
    """Collaborators and limits of the health routes.

    `checks` maps each readiness check's name (`database`, `migrations`, `node`, `gateway`,
    `scheduler`) to its coroutine function. They run concurrently, each limited to
    `check_timeout_seconds`.
    """

    metrics: Metrics
    checks: Mapping[str, ReadinessCheck]
    metrics_token: SecretStr | None = None
    check_timeout_seconds: float = DEFAULT_CHECK_TIMEOUT_SECONDS
    cache_seconds: float = DEFAULT_READINESS_CACHE_SECONDS
    monotonic: Monotonic = time.monotonic
    _cached: tuple[float, dict[str, CheckResult]] | None = field(
        default=None, init=False, repr=False
    )
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.check_timeout_seconds <= 0:
            raise ValueError("check_timeout_seconds must be positive")
        if self.cache_seconds < 0:
            raise ValueError("cache_seconds must be 0 or more")


HEALTH_CONFIG_KEY = web.AppKey("pay2slay_health_routes", HealthRoutesConfig)


def add_health_routes(app: web.Application, config: HealthRoutesConfig) -> None:
    """Mount `/healthz`, `/readyz`, `/metrics` and `/openapi.yaml` on `app`."""
    app[HEALTH_CONFIG_KEY] = config
    app.router.add_get(HEALTHZ_ROUTE, _handle_healthz)
    app.router.add_get(READYZ_ROUTE, _handle_readyz)
    app.router.add_get(METRICS_ROUTE, _handle_metrics)
    app.router.add_get(OPENAPI_ROUTE, _handle_openapi)


def openapi_document() -> str:
    """Return the packaged OpenAPI document of the side server."""
    return files("bot.web").joinpath("openapi.yaml").read_text(encoding="utf-8")


async def run_checks(config: HealthRoutesConfig) -> dict[str, CheckResult]:
    """Run every readiness check, or reuse results younger than `cache_seconds`."""
    async with config._lock:
        now = config.monotonic()
        cached = config._cached
        if cached is not None and now - cached[0] < config.cache_seconds:
            return cached[1]

        names = list(config.checks)
        outcomes = await asyncio.gather(
            *(_run_check(name, config.checks[name], config.check_timeout_seconds) for name in names)
        )
        results = dict(zip(names, outcomes, strict=True))
        config._cached = (config.monotonic(), results)
        return results


async def _run_check(name: str, check: ReadinessCheck, limit_seconds: float) -> CheckResult:
    try:
        async with asyncio.timeout(limit_seconds):
            return await check()
    except TimeoutError:
        log.warning("readiness_check_timed_out", check=name, timeout_seconds=limit_seconds)
        return failed(f"timed out after {limit_seconds:g} s")
    except Exception:
        log.exception("readiness_check_crashed", check=name)
        return failed("the check raised an unexpected error; see the log")


async def _handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers=_NO_STORE)


async def _handle_readyz(request: web.Request) -> web.Response:
    config = request.app[HEALTH_CONFIG_KEY]
    results = await run_checks(config)
    failing = [name for name, result in results.items() if not result.ok]
    body: dict[str, Any] = {
        "status": "not_ready" if failing else "ready",
        "failed": failing,
        "checks": {
            name: {"ok": result.ok, "detail": result.detail} for name, result in results.items()
        },
    }
    if failing:
        log.info("not_ready", failed=failing)
    return web.json_response(body, status=503 if failing else 200, headers=_NO_STORE)


async def _handle_metrics(request: web.Request) -> web.Response:
    config = request.app[HEALTH_CONFIG_KEY]
    if config.metrics_token is not None and not _authorized(
        request.headers.get("Authorization"), config.metrics_token
    ):
        log.debug("metrics_unauthorized")
        return web.json_response(
            {"error": "unauthorized", "detail": "send Authorization: Bearer <metrics token>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"', **_NO_STORE},
        )

    payload, content_type = config.metrics.render()
    # The content type carries parameters (version, charset), which aiohttp's content_type
    # argument does not take, so it goes in as a header.
    return web.Response(body=payload, headers={"Content-Type": content_type, **_NO_STORE})


async def _handle_openapi(request: web.Request) -> web.Response:
    return web.Response(text=openapi_document(), content_type=OPENAPI_CONTENT_TYPE)


def _authorized(header: str | None, token: SecretStr) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Comparing fixed-length digests keeps the comparison's time independent of the token,
    # its length included.
    expected = hashlib.sha256(token.get_secret_value().encode()).digest()
    actual = hashlib.sha256(given.strip().encode()).digest()
    return hmac.compare_digest(expected, actual)


# Readiness checks for the usual dependencies.


def database_check(db: Database) -> ReadinessCheck:
    """Check that a query on the database succeeds."""

    async def check() -> CheckResult:
        try:
            async with db.read() as session:
                await session.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as error:
            log.warning("readiness_database_unreachable", error_type=type(error).__name__)
            return failed(f"database unreachable ({type(error).__name__})")
        return passed()

    return check


def migrations_check(db: Database) -> ReadinessCheck:
    """Check that the database is at the newest migration the installed package has."""
    head = head_revision()

    async def check() -> CheckResult:
        try:
            current = await current_revision(db)
        except (SQLAlchemyError, OSError) as error:
            log.warning("readiness_migrations_unreadable", error_type=type(error).__name__)
            return failed(f"database unreachable ({type(error).__name__})")
        if current != head:
            return failed(
                f"database at revision {current or 'none'}, expected {head}; "
                "run pay2slay db upgrade"
            )
        return passed(f"at revision {head}")

    return check


def node_check(probe: Callable[[], Awaitable[object]]) -> ReadinessCheck:
    """Check that `probe`, a cheap node read such as `account_balance`, succeeds.

    The check fails when `probe` returns False or raises a `Pay2SlayError`. A node error
    reply (`NodeReplyError`) fails it too, since the faucet cannot use that node.
    """

    async def check() -> CheckResult:
        try:
            answer = await probe()
        except NodeTransportError as error:
            log.warning("readiness_node_unreachable", error_type=type(error).__name__)
            return failed(f"Banano node unreachable: {error.safe_message}")
        except Pay2SlayError as error:
            log.warning("readiness_node_error", error_type=type(error).__name__)
            return failed(f"Banano node error: {error.safe_message}")
        if answer is False:
            return failed("Banano node unreachable")
        return passed()

    return check


def flag_check(is_ok: Callable[[], bool], failure_detail: str) -> ReadinessCheck:
    """Check a flag the process keeps, such as whether the gateway is connected."""

    async def check() -> CheckResult:
        return passed() if is_ok() else failed(failure_detail)

    return check
