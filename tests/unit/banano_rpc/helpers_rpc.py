"""Constants and helpers shared by the node client's unit tests, and a node of scripted replies."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "banano"


async def no_sleep(_seconds: float) -> None:
    """Stand in for asyncio.sleep so retries do not wait."""


@dataclass(frozen=True)
class Reply:
    """One HTTP reply of a `ScriptedNode`: a status and body, sent whole, late or slowly.

    `delay_seconds` waits before replying, `seconds_per_byte` sends the body one byte at a time
    with that pause before each, and `drop` closes the connection without any reply. The waits
    end early when the node stops.
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0
    seconds_per_byte: float = 0.0
    drop: bool = False

    @classmethod
    def json(cls, data: object, status: int = 200) -> Reply:
        """Reply with `data` as a JSON body."""
        return cls(status, json.dumps(data).encode(), (("Content-Type", "application/json"),))

    @classmethod
    def dropped(cls) -> Reply:
        """Close the connection after reading the request, so the client sees no reply."""
        return cls(drop=True)


class ScriptedNode:
    """An HTTP server on 127.0.0.1 that replies to each request with a scripted reply.

    Replies queued with `queue` are sent once each, in order. When the queue is empty, the
    reply set with `respond` is sent; without one the node replies 599, which no test expects.
    `requests` contains the JSON body of every request received, in order.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._queued: deque[Reply] = deque()
        self._default: Reply | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """The URL that requests are POSTed to."""
        if self._base_url is None:
            raise RuntimeError("the scripted node is not running")
        return self._base_url

    @property
    def call_count(self) -> int:
        """The number of requests received."""
        return len(self.requests)

    def respond(self, reply: Reply) -> None:
        """Send `reply` to every request that finds the queue empty."""
        self._default = reply

    def queue(self, *replies: Reply) -> None:
        """Send each of `replies` once, in order, before the reply set with `respond`."""
        self._queued.extend(replies)

    async def start(self) -> str:
        """Listen on a free loopback port and return the URL."""
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        return self._base_url

    async def stop(self) -> None:
        """End waiting replies and stop listening."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._base_url = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            self.requests.append(json.loads(body))
        except ValueError:
            self.requests.append({"_unreadable": body.decode(errors="replace")})

        reply = self._queued.popleft() if self._queued else self._default
        if reply is None:
            return web.Response(status=599, text="no scripted reply")
        if reply.delay_seconds and await self._stopped_within(reply.delay_seconds):
            return web.Response(status=503)
        if reply.drop:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)
        if reply.seconds_per_byte:
            return await self._trickle(request, reply)
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))

    async def _trickle(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        await response.prepare(request)
        try:
            for byte in reply.body:
                if await self._stopped_within(reply.seconds_per_byte):
                    return response
                await response.write(bytes([byte]))
            await response.write_eof()
        except ConnectionError:
            # The client gave up and closed the connection.
            pass
        return response

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`, returning True at once if the node stops first."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True
