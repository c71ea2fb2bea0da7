"""Requests the side server cannot parse leave no OAuth code, state or client address in logs.

aiohttp logs such a request with the raw request line and the peer address, and the logging
set-up of `core.observability` rewrites that record. Raw bytes go over a loopback socket,
because no HTTP client sends a request line this malformed.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from bot.web.app import create_web_app
from core.observability import configure_logging, reset_logging

CODE = "c0debeefc0debeefc0debeefc0debeef"
STATE = "5ta7e5ta7e5ta7e5ta7e5ta7e5ta7e00"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Route all logging to a stream in JSON, and put the previous set-up back afterwards."""
    root = logging.getLogger()
    level = root.level
    handlers = root.handlers[:]
    stream = io.StringIO()
    configure_logging(log_format="json", level="INFO", secrets=(), stream=stream)
    try:
        yield stream
    finally:
        reset_logging()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
async def server_port() -> AsyncIterator[int]:
    runner = web.AppRunner(create_web_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _send_raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


def _callback_request(query: bytes) -> bytes:
    return b"GET /auth/discord/callback?" + query + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        (
            f"code={CODE}&state={STATE}&pad=".encode() + b"A" * 9000,
            "LineTooLong",
        ),
        (f"code={CODE}\x01&state={STATE}".encode(), "InvalidURLError"),
    ],
)
async def test_unparsable_callback_logged_without_secrets(
    log_stream: io.StringIO, server_port: int, query: bytes, error_type: str
) -> None:
    reply = await _send_raw(server_port, _callback_request(query))

    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")
    text = log_stream.getvalue()
    assert CODE not in text
    assert STATE not in text
    assert "127.0.0.1" not in text
    records = [json.loads(line) for line in text.splitlines() if line]
    rejected = [record for record in records if record["event"] == "http_request_rejected"]
    assert len(rejected) == 1
    assert rejected[0]["error_type"] == error_type
    assert rejected[0]["status"] == 400
    assert rejected[0]["level"] == "warning"
    assert "exception" not in rejected[0]


async def test_server_error_record_loses_address(log_stream: io.StringIO) -> None:
    logger = logging.getLogger("aiohttp.server")
    try:
        raise RuntimeError("handler bug")
    except RuntimeError:
        logger.exception("Error handling request from %s", "127.0.0.1")

    (record,) = [json.loads(line) for line in log_stream.getvalue().splitlines() if line]
    assert record["event"] == "Error handling request"
    assert record["level"] == "error"
    assert "handler bug" in record["exception"]
    assert "127.0.0.1" not in log_stream.getvalue()
