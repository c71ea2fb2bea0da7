"""HTTP clients that count Yunite and Banano node requests in `Metrics`.

Response event hooks set the outcome from the status code, and for the node from the JSON
`error` key. A transport wrapper counts the requests that fail before any response. Bodies are
read to find the outcome and the node action but never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from core.integrations.http import DEFAULT_TIMEOUT
from core.observability import Metrics
from core.observability.labels import NODE_RPC_ACTIONS, OTHER

_YUNITE_STATUS_OUTCOMES = {
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    429: "rate_limited",
}


class _ErrorCountingTransport(httpx.AsyncBaseTransport):
    """Transport wrapper that reports each transport error to `on_error` before re-raising it."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        on_error: Callable[[httpx.Request, httpx.TransportError], None],
    ) -> None:
        self._inner = inner
        self._on_error = on_error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.TransportError as error:
            self._on_error(request, error)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def node_rpc_action(request: httpx.Request) -> str:
    """Return the RPC action named in the request body, or `other` when it is not a known one."""
    try:
        payload = json.loads(request.content)
    except (ValueError, RecursionError, httpx.RequestNotRead):
        return OTHER
    action = payload.get("action") if isinstance(payload, dict) else None
    return action if action in NODE_RPC_ACTIONS else OTHER


def node_rpc_outcome(status_code: int, body: bytes) -> str:
    """Return the node RPC outcome label of a reply."""
    if status_code >= 500:
        return "unavailable"
    if status_code >= 400:
        return "error"
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):
        return "invalid_response"
    if not isinstance(reply, dict):
        return "invalid_response"
    return "error" if "error" in reply else "ok"


def yunite_outcome(status_code: int) -> str:
    """Return the Yunite outcome label of a reply's status code."""
    if 200 <= status_code < 300:
        return "ok"
    if status_code >= 500:
        return "unavailable"
    return _YUNITE_STATUS_OUTCOMES.get(status_code, "error")


def create_node_http_client(
    metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Create the node RPC client that counts `node_rpc_requests_total` by action and outcome."""

    async def on_response(response: httpx.Response) -> None:
        body = await response.aread()
        metrics.count_node_rpc(
            node_rpc_action(response.request), node_rpc_outcome(response.status_code, body)
        )

    def on_error(request: httpx.Request, error: httpx.TransportError) -> None:
        # NOTE: NodeClient's overall deadline cancels the request instead of raising a
        # transport error, so a request stopped by that deadline is not counted.
        outcome = "timeout" if isinstance(error, httpx.TimeoutException) else "unavailable"
        metrics.count_node_rpc(node_rpc_action(request), outcome)

    return _counting_client(transport, on_error, on_response)


def create_yunite_http_client(
    metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Create the Yunite API client that counts `yunite_requests_total` by outcome.

    Time-outs and connection failures count as `unavailable`.
    """

    async def on_response(response: httpx.Response) -> None:
        metrics.count_yunite_request(yunite_outcome(response.status_code))

    def on_error(request: httpx.Request, error: httpx.TransportError) -> None:
        metrics.count_yunite_request("unavailable")

    return _counting_client(transport, on_error, on_response)


def _counting_client(
    transport: httpx.AsyncBaseTransport | None,
    on_error: Callable[[httpx.Request, httpx.TransportError], None],
    on_response: Callable[[httpx.Response], object],
) -> httpx.AsyncClient:
    # The same settings as `core.integrations.create_http_client`, plus the counting.
    inner = transport if transport is not None else httpx.AsyncHTTPTransport(trust_env=False)
    return httpx.AsyncClient(
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        transport=_ErrorCountingTransport(inner, on_error),
        event_hooks={"response": [on_response]},
    )
