"""HTTP transport of the Banano node RPC: one JSON POST under a deadline, checked and counted.

`NodeClient` builds the requests and parses the replies. This module sends them with aiohttp
and turns what comes back into a JSON object, a typed error, or an outcome for the observer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import aiohttp
import structlog

from core.banano.rpc_errors import NodeTimeoutError, NodeUnavailableError, error_from_text
from core.banano.rpc_replies import malformed_reply

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Errors that parsing a hostile or buggy reply can raise besides the typed ones: int() beyond
# its digit limit, nesting past the recursion limit, and values of unexpected types.
_PARSE_ERRORS = (
    ArithmeticError,
    AttributeError,
    LookupError,
    RecursionError,
    TypeError,
    ValueError,
)

# Outcome of one HTTP request to the node.
# ok: status 200 with a JSON object without an `error` key, whose fields were read.
# error: such an object whose `error` is text, or a 4xx status.
# unavailable: no connection, a connection lost before the whole reply came, a closed session,
# or a 5xx status.
# timeout: the deadline passed.
# invalid_response: status 200 with a body that is not a JSON object or whose fields cannot be
# read (a `process` reply naming another block included), or a status other than 200 below 400.
RequestOutcome = Literal["ok", "error", "timeout", "unavailable", "invalid_response"]
# Called once per HTTP request (each retry of a read is one) with the action and the outcome.
RequestObserver = Callable[[str, RequestOutcome], None]

_JSON_HEADERS = {"Content-Type": "application/json"}
# The largest reply body read. The biggest replies the bot requests, pages of account
# history and receivable blocks, are far smaller.
MAX_REPLY_BYTES = 8 * 1024 * 1024


class _ReplyTooLargeError(Exception):
    """A reply body longer than `MAX_REPLY_BYTES`."""


class NodeTransport:
    """POSTs JSON requests to the node URL over an aiohttp session, its own or a given one.

    Without `session` the transport opens its own on the first request and `aclose` closes
    it. A given session must not trust the environment, and it stays open.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession | None = None,
        on_request: RequestObserver | None = None,
    ) -> None:
        if session is not None and session.trust_env:
            raise ValueError(
                "NodeClient needs a session with trust_env=False, so that proxy environment "
                "variables cannot send node requests elsewhere."
            )
        self._url = url
        self._owns_session = session is None
        self._session = session
        self._closed = False
        self._on_request = on_request

    async def aclose(self) -> None:
        """Close the session if this object opened it. Later requests raise errors."""
        if not self._owns_session:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        action: str,
        payload: Mapping[str, Any],
        timeout_seconds: float,
        parse: Callable[[dict[str, Any]], T],
    ) -> T:
        """Send `{"action": action, **payload}` and return the node's reply as read by `parse`.

        Raises `NodeTimeoutError` when `timeout_seconds` pass, `NodeUnavailableError` when no
        usable reply comes or `parse` cannot read it, and the typed `NodeReplyError` of a
        reply with an `error` key.
        """
        session = self._usable_session()
        if session is None:
            self._count(action, "unavailable")
            log.warning("node_rpc_session_closed", action=action)
            raise NodeUnavailableError("The node client's HTTP session is closed.")

        body = json.dumps({"action": action, **payload}, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            # The deadline covers the whole request, reading the body included, so a node
            # that sends a byte now and then cannot hold the caller past it.
            async with (
                asyncio.timeout(timeout_seconds),
                session.post(
                    self._url, data=body, headers=_JSON_HEADERS, allow_redirects=False
                ) as response,
            ):
                status = response.status
                # The body of a reply with another status is not read.
                content = await _read_limited(response) if status == 200 else b""
        except _ReplyTooLargeError as error:
            self._count(action, "invalid_response")
            log.warning("node_rpc_reply_too_large", action=action, limit_bytes=MAX_REPLY_BYTES)
            raise NodeUnavailableError(
                f"The Banano node's {action} reply is larger than {MAX_REPLY_BYTES} bytes; "
                "check that integrations.node_rpc points at a Banano node."
            ) from error
        except TimeoutError as error:
            # Also aiohttp's own timeouts (`ServerTimeoutError`), which are `TimeoutError`s.
            self._count(action, "timeout")
            log.warning("node_rpc_timeout", action=action, timeout_seconds=timeout_seconds)
            raise NodeTimeoutError() from error
        except aiohttp.ClientError as error:
            self._count(action, "unavailable")
            log.warning("node_rpc_unreachable", action=action, error=type(error).__name__)
            raise NodeUnavailableError() from error

        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        if status != 200:
            self._count(action, _status_outcome(status))
            log.warning("node_rpc_http_error", action=action, status=status, elapsed_ms=elapsed_ms)
            raise NodeUnavailableError(f"The Banano node replied with HTTP status {status}.")
        try:
            reply = json.loads(content)
        except (ValueError, RecursionError) as error:
            # ValueError covers invalid JSON, invalid UTF-8 and integers longer than int()
            # accepts. RecursionError comes from arrays or objects nested thousands deep.
            self._count(action, "invalid_response")
            log.warning(
                "node_rpc_malformed_reply",
                action=action,
                error=type(error).__name__,
                elapsed_ms=elapsed_ms,
            )
            raise NodeUnavailableError(
                "The Banano node returned a reply that is not readable JSON."
            ) from error
        if not isinstance(reply, dict):
            self._count(action, "invalid_response")
            log.warning("node_rpc_malformed_reply", action=action, elapsed_ms=elapsed_ms)
            raise NodeUnavailableError(
                "The Banano node returned a reply that is not a JSON object."
            )

        node_text = reply.get("error")
        if node_text is not None:
            if not isinstance(node_text, str):
                self._count(action, "invalid_response")
                log.warning("node_rpc_malformed_reply", action=action, elapsed_ms=elapsed_ms)
                raise malformed_reply(action, "error")
            self._count(action, "error")
            reply_error = error_from_text(node_text)
            log.debug(
                "node_rpc_error_reply",
                action=action,
                error=type(reply_error).__name__,
                node_text=reply_error.node_text,
                elapsed_ms=elapsed_ms,
            )
            raise reply_error

        try:
            parsed = parse(reply)
        except (NodeUnavailableError, *_PARSE_ERRORS) as error:
            # NodeUnavailableError here is a parser's own "missing or invalid field" error.
            self._count(action, "invalid_response")
            log.warning(
                "node_rpc_malformed_reply",
                action=action,
                error=type(error).__name__,
                elapsed_ms=elapsed_ms,
            )
            if isinstance(error, NodeUnavailableError):
                raise
            raise NodeUnavailableError(
                f"The Banano node's {action} reply has invalid fields; check that "
                "integrations.node_rpc points at a Banano node."
            ) from error
        self._count(action, "ok")
        log.debug("node_rpc_ok", action=action, elapsed_ms=elapsed_ms)
        return parsed

    def _usable_session(self) -> aiohttp.ClientSession | None:
        """Return the session for a request, opening an owned one at first. None once closed."""
        if self._session is None and not self._closed:
            self._session = aiohttp.ClientSession(
                # The deadline in `post` is the only time limit of an owned session.
                timeout=aiohttp.ClientTimeout(),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        if self._session is None or self._session.closed:
            return None
        return self._session

    def _count(self, action: str, outcome: RequestOutcome) -> None:
        if self._on_request is not None:
            self._on_request(action, outcome)


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    """Read the body, or raise `_ReplyTooLargeError` once it passes `MAX_REPLY_BYTES`."""
    if response.content_length is not None and response.content_length > MAX_REPLY_BYTES:
        raise _ReplyTooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _ReplyTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


def _status_outcome(status: int) -> RequestOutcome:
    """Return the outcome of a reply whose HTTP status is not 200."""
    if status >= 500:
        return "unavailable"
    if status >= 400:
        return "error"
    return "invalid_response"
