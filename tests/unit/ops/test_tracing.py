"""Tracing: a no-op without an endpoint or the otel extra, cleaned attributes when it is on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import structlog

from core.observability.tracing import (
    Tracing,
    configure_tracing,
    otlp_traces_url,
    span,
    tracing_enabled,
)


def _otel_installed() -> bool:
    # find_spec of a submodule imports its parent, which raises when the parent is missing.
    if importlib.util.find_spec("opentelemetry") is None:
        return False
    return importlib.util.find_spec("opentelemetry.sdk") is not None


OTEL_INSTALLED = _otel_installed()


def test_span_without_configuration_imports_nothing() -> None:
    # A fresh interpreter, because this test process may have imported OpenTelemetry already.
    program = (
        "import sys\n"
        "from core.observability.tracing import configure_tracing, span\n"
        "configure_tracing('')\n"
        "with span('settlement.run', run_id=1) as handle:\n"
        "    handle.set_attributes(payouts=2)\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('opentelemetry'))\n"
        "print('LOADED:' + ','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd="."
    )
    assert result.stdout.splitlines()[-1] == "LOADED:"


def test_span_is_noop_by_default() -> None:
    assert not tracing_enabled()
    with span("payout.submit", payout_id=7) as handle:
        handle.set_attributes(block_hash="AB" * 32)


def test_span_reraises_unchanged_when_off() -> None:
    with pytest.raises(KeyError, match="missing"), span("poller.read"):
        raise KeyError("missing")


def test_empty_endpoint_leaves_tracing_off() -> None:
    handle = configure_tracing("")
    assert not handle.enabled
    assert not tracing_enabled()
    handle.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
        ("https://127.0.0.1/collector/traces", "https://127.0.0.1/collector/traces"),
    ],
)
def test_otlp_traces_url(endpoint: str, expected: str) -> None:
    assert otlp_traces_url(endpoint) == expected


@pytest.mark.parametrize("endpoint", ["127.0.0.1:4318", "ftp://127.0.0.1/", "http://"])
def test_otlp_traces_url_rejects_non_http(endpoint: str) -> None:
    with pytest.raises(ValueError, match="invalid OTLP endpoint"):
        otlp_traces_url(endpoint)


@pytest.mark.skipif(OTEL_INSTALLED, reason="the otel extra is installed here")
def test_missing_extra_warns_and_stays_off() -> None:
    with structlog.testing.capture_logs() as logs:
        handle = configure_tracing("http://127.0.0.1:4318")

    assert not handle.enabled
    assert not tracing_enabled()
    warnings = [entry for entry in logs if entry["event"] == "tracing_unavailable"]
    assert len(warnings) == 1
    assert "pay2slay[otel]" in warnings[0]["reason"]


# The tests below need the optional `otel` extra, which CI does not install.


@dataclass
class Exported:
    exporter: Any
    handle: Tracing

    def spans(self) -> list[Any]:
        self.handle.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def exported() -> Iterator[Exported]:
    pytest.importorskip("opentelemetry.sdk", reason="the optional otel extra is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    handle = configure_tracing(
        "", exporter=exporter, service_version="9.9.9", secrets=["very-secret-token-value"]
    )
    try:
        yield Exported(exporter, handle)
    finally:
        handle.shutdown()
    assert not tracing_enabled()


def test_span_records_cleaned_attributes(exported: Exported) -> None:
    with span(
        "payout.sign",
        payout_id=42,
        amount_raw=21 * 10**28,
        api_key="abc123456789",
        note="token very-secret-token-value inside",
        state=None,
        fee=Decimal("0.01"),
    ) as handle:
        handle.set_attributes(block_hash="CD" * 32, seed="0" * 64)

    (recorded,) = exported.spans()
    attributes = dict(recorded.attributes)
    assert recorded.name == "payout.sign"
    assert attributes["payout_id"] == 42
    assert attributes["amount_raw"] == str(21 * 10**28)
    assert attributes["fee"] == "0.01"
    assert attributes["block_hash"] == "CD" * 32
    assert "api_key" not in attributes
    assert "seed" not in attributes
    assert "state" not in attributes
    assert "very-secret-token-value" not in attributes["note"]
    assert recorded.resource.attributes["service.name"] == "pay2slay"
    assert recorded.resource.attributes["service.version"] == "9.9.9"


def test_span_marks_error_by_type_only(exported: Exported) -> None:
    with pytest.raises(RuntimeError), span("settlement.run"):
        raise RuntimeError("node at http://user:password@127.0.0.1 failed")

    (recorded,) = exported.spans()
    assert recorded.status.status_code.name == "ERROR"
    assert recorded.status.description == "RuntimeError"
    assert recorded.attributes["error.type"] == "RuntimeError"
    assert not recorded.events


def test_nested_spans_share_a_trace(exported: Exported) -> None:
    with span("settlement.run"), span("payout.submit", payout_id=1):
        pass

    inner, outer = exported.spans()
    assert inner.name == "payout.submit"
    assert inner.context.trace_id == outer.context.trace_id
    assert inner.parent.span_id == outer.context.span_id
