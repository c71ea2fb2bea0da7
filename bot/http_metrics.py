"""Request counting for the Yunite API client and the Banano node client.

The Yunite client is an httpx client whose response event hook sets the outcome from the
status code, and a transport wrapper counts the requests that fail before any response. The
node client reports each request's action and outcome itself, through `node_rpc_counter`.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from core.banano.rpc import RequestObserver, RequestOutcome
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


def yunite_outcome(status_code: int) -> str:
    """Return the Yunite outcome label of a reply's status code."""
    if 200 <= status_code < 300:
        return "ok"
    if status_code >= 500:
        return "unavailable"
    return _YUNITE_STATUS_OUTCOMES.get(status_code, "error")


def node_rpc_counter(metrics: Metrics) -> RequestObserver:
    """Return the `NodeClient` observer that counts `node_rpc_requests_total`.

    Actions outside the known set, such as the older `pending`, are counted as `other`.
    """

    def count(action: str, outcome: RequestOutcome) -> None:
        metrics.count_node_rpc(action if action in NODE_RPC_ACTIONS else OTHER, outcome)

    return count


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
