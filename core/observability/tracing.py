"""OpenTelemetry spans around the faucet's main steps, sent to an OTLP collector when configured.

Code marks a step with `with span("settlement.run", run_id=run.id):`. Until
`configure_tracing()` is called with an endpoint, and whenever the optional `otel` extra
(`pip install 'pay2slay[otel]'`) is missing, `span()` does nothing and this module imports no
OpenTelemetry package, so tracing costs nothing when it is off. Work that starts in one
callback and ends in another, a slash command for one, uses `begin_span()` and `end()`.

Span attributes follow the same rules as log fields. A value under a secret-like key (see
`is_sensitive_key`) is dropped, and configured secret values are masked in text. An exception
is recorded by its type name only, because exception text can contain URLs with credentials.

NOTE: OpenTelemetry keeps the current span in a context variable that is global to the process,
so the tracer set by `configure_tracing()` is process-wide as well, like the logging set-up.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import structlog

from core.observability.redaction import SecretRedactor, is_sensitive_key

log = structlog.get_logger(__name__)

AttributeValue = str | int | float | bool

SERVICE_NAME = "pay2slay"

# OTLP/HTTP collectors take traces at this path (OTLP specification 1.x).
TRACES_PATH = "/v1/traces"

# OpenTelemetry attributes hold signed 64-bit integers; larger ints, raw amounts above about
# 0.09 BAN for one, are sent as decimal text instead.
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_MAX_TEXT_LENGTH = 256


class SpanHandle(Protocol):
    """The span of a `with span(...)` block, for attributes known only inside it."""

    def set_attributes(self, **attributes: object) -> None:
        """Add attributes to the span; a no-op when tracing is off."""


class OpenSpan(SpanHandle, Protocol):
    """A span started by `begin_span`, which its owner ends by calling `end` once."""

    def end(self, error_type: str | None = None) -> None:
        """End the span, marked as failed with `error_type` when one is given."""


class _NoSpan:
    def set_attributes(self, **attributes: object) -> None:
        return None

    def end(self, error_type: str | None = None) -> None:
        return None


_NO_SPAN = _NoSpan()


class _OtelSpan:
    def __init__(self, span: Any, tracer: _OtelTracer) -> None:
        self._span = span
        self._tracer = tracer

    def set_attributes(self, **attributes: object) -> None:
        self._span.set_attributes(self._tracer.clean(attributes))


class _OtelOpenSpan:
    """A span started outside a `with` block and current in the task that started it."""

    def __init__(self, span: Any, tracer: _OtelTracer, token: object) -> None:
        self._span = span
        self._tracer = tracer
        self._token = token
        self._owner = _context_owner()
        self._ended = False

    def set_attributes(self, **attributes: object) -> None:
        self._span.set_attributes(self._tracer.clean(attributes))

    def end(self, error_type: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if error_type is not None:
            self._tracer.mark_failed(self._span, error_type)
        self._span.end()
        # Only the task, or the thread outside any task, that attached the span can detach it,
        # because another one's context never held it. A task that ends drops its context.
        if self._owner == _context_owner():
            self._tracer.detach(self._token)


class _OtelTracer:
    """An OpenTelemetry tracer with the status types and context functions `span()` needs."""

    def __init__(
        self,
        tracer: Any,
        status: Any,
        status_code: Any,
        redactor: SecretRedactor,
        context_api: Any,
        set_span_in_context: Any,
    ) -> None:
        self._tracer = tracer
        self._status = status
        self._status_code = status_code
        self._redactor = redactor
        self._context_api = context_api
        self._set_span_in_context = set_span_in_context

    def begin(self, name: str, attributes: Mapping[str, object]) -> OpenSpan:
        current = self._tracer.start_span(name, attributes=self.clean(attributes))
        token = self._context_api.attach(self._set_span_in_context(current))
        return _OtelOpenSpan(current, self, token)

    def detach(self, token: object) -> None:
        self._context_api.detach(token)

    def mark_failed(self, current: Any, error_type: str) -> None:
        current.set_attribute("error.type", error_type)
        current.set_status(self._status(self._status_code.ERROR, error_type))

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, object]) -> Iterator[SpanHandle]:
        with self._tracer.start_as_current_span(
            name,
            attributes=self.clean(attributes),
            record_exception=False,
            set_status_on_exception=False,
        ) as current:
            try:
                yield _OtelSpan(current, self)
            except BaseException as error:
                self.mark_failed(current, type(error).__name__)
                raise

    def clean(self, attributes: Mapping[str, object]) -> dict[str, AttributeValue]:
        cleaned: dict[str, AttributeValue] = {}
        for key, value in attributes.items():
            if value is None or is_sensitive_key(key):
                continue
            cleaned[key] = self._attribute_value(value)
        return cleaned

    def _attribute_value(self, value: object) -> AttributeValue:
        if isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
        if isinstance(value, enum.Enum):
            return self._attribute_value(value.value)
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        text = value if isinstance(value, str) else str(value)
        return self._redactor.redact_text(text)[:_MAX_TEXT_LENGTH]


# Set by configure_tracing() and cleared by Tracing.shutdown(); None means tracing is off.
_tracer: _OtelTracer | None = None


@contextmanager
def span(name: str, **attributes: object) -> Iterator[SpanHandle]:
    """Run the block inside a span named `name`, with `attributes`, when tracing is on.

    Use dotted lower-case names such as `payout.submit`, and ids rather than whole objects as
    attributes. An exception leaving the block marks the span as failed with its type name and
    is re-raised unchanged.
    """
    tracer = _tracer
    if tracer is None:
        yield _NO_SPAN
        return
    with tracer.span(name, attributes) as handle:
        yield handle


def begin_span(name: str, **attributes: object) -> OpenSpan:
    """Start a span that ends later, by `end()`, and make it current in this task.

    Use it for work that starts in one callback and ends in another, such as a slash command
    that the tree's check starts and a completion event ends. Spans that this task starts
    afterwards become its children. `end()` may run in another task, and a second call does
    nothing. A span that is never ended is never exported. Without tracing it returns a no-op.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.begin(name, attributes)


def tracing_enabled() -> bool:
    """Return whether spans are being recorded and exported."""
    return _tracer is not None


class Tracing:
    """The result of `configure_tracing()`: whether tracing is on, and how to stop it."""

    def __init__(self, provider: Any = None) -> None:
        self._provider = provider

    @property
    def enabled(self) -> bool:
        """True when spans are exported."""
        return self._provider is not None

    def force_flush(self) -> None:
        """Export the spans queued so far; blocks like `shutdown`."""
        if self._provider is not None:
            self._provider.force_flush()

    def shutdown(self) -> None:
        """Export the spans still queued and stop tracing; `span()` is a no-op afterwards.

        Blocks for up to the exporter's time-out, so async code runs it with
        `asyncio.to_thread`.
        """
        global _tracer
        if self._provider is None:
            return
        _tracer = None
        provider, self._provider = self._provider, None
        provider.shutdown()
        log.info("tracing_stopped")


def _context_owner() -> tuple[int, asyncio.Task[Any] | None]:
    """Return the thread and the asyncio task, if any, whose context code runs in."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        # No event loop runs in this thread.
        task = None
    return threading.get_ident(), task


def otlp_traces_url(endpoint: str) -> str:
    """Return the OTLP/HTTP traces URL for a collector URL.

    A URL without a path gets `/v1/traces`, so `http://127.0.0.1:4318` and
    `http://127.0.0.1:4318/v1/traces` name the same place. Other paths are kept as given.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid OTLP endpoint {endpoint!r}: expected an http:// or https:// URL")
    path = parts.path if parts.path not in ("", "/") else TRACES_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def configure_tracing(
    endpoint: str,
    *,
    service_version: str = "unknown",
    secrets: Iterable[str] = (),
    exporter: Any = None,
) -> Tracing:
    """Start exporting spans to the OTLP/HTTP collector at `endpoint`, if there is one.

    An empty `endpoint` leaves tracing off and imports nothing. When the `otel` extra is not
    installed, tracing stays off with a warning in the log. `secrets` are masked in text
    attributes as in the logs. `exporter` replaces the OTLP exporter, for tests.

    Raises ValueError for an endpoint that is not an http:// or https:// URL.
    """
    global _tracer
    if not endpoint and exporter is None:
        log.debug("tracing_off")
        return Tracing()

    traces_url = otlp_traces_url(endpoint) if endpoint else ""
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "tracing_unavailable",
            reason="the otel extra is not installed: pip install 'pay2slay[otel]'",
        )
        return Tracing()

    if exporter is None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning(
                "tracing_unavailable",
                reason="opentelemetry-exporter-otlp-proto-http is not installed",
            )
            return Tracing()
        exporter = OTLPSpanExporter(endpoint=traces_url)

    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": service_version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))

    _tracer = _OtelTracer(
        provider.get_tracer(__name__),
        trace.Status,
        trace.StatusCode,
        SecretRedactor(secrets),
        otel_context,
        trace.set_span_in_context,
    )
    # Only the URL's scheme and host are logged, since a collector URL may carry a token.
    parts = urlsplit(traces_url)
    collector = f"{parts.scheme}://{parts.hostname}" if traces_url else "custom exporter"
    log.info("tracing_started", collector=collector)
    return Tracing(provider)
