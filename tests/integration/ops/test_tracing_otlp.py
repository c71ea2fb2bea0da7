"""Spans reach an OTLP/HTTP collector over loopback; needs the optional otel extra."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from core.observability.tracing import configure_tracing, span

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="the optional otel extra is not installed"
)


async def test_spans_exported_to_collector() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[bytes] = []

    async def collect(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]

    handle = configure_tracing(f"http://127.0.0.1:{port}", service_version="1.2.3")
    try:
        with span("settlement.run", run_id=5), span("payout.submit", payout_id=9):
            pass
        # The exporter posts from its own thread; the loop must keep serving meanwhile.
        await asyncio.to_thread(handle.force_flush)
    finally:
        await asyncio.to_thread(handle.shutdown)
        await runner.cleanup()

    names = set()
    for body in received:
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.update(item.name for item in scope_spans.spans)
    assert names == {"settlement.run", "payout.submit"}
