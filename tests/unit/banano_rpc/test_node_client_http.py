"""NodeClient's HTTP layer over loopback: deadline, failures, session handling and outcomes."""

from __future__ import annotations

import contextlib
import socket
import time

import aiohttp
import pytest

from core.banano import rpc_transport
from core.banano.rpc import NodeClient, RequestOutcome, RetryPolicy
from core.banano.rpc_errors import NodeError, NodeTimeoutError, NodeUnavailableError
from tests.unit.banano_rpc.helpers_rpc import Reply, ScriptedNode, no_sleep

ACCOUNT = "ban_1qato4k7z3spc8gq1zyd8xeqfbzsoxwo36a45ozbrxcatut7up8ohyardu1z"
ROOT = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"
BALANCE = {"balance": "10", "receivable": "0"}


class OutcomeLog:
    """A `RequestObserver` that records every (action, outcome) it is called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, RequestOutcome]] = []

    def __call__(self, action: str, outcome: RequestOutcome) -> None:
        self.calls.append((action, outcome))


def closed_port_url() -> str:
    """Return a loopback URL whose port was free a moment ago, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def test_trickled_reply_stopped_at_deadline(scripted_node: ScriptedNode) -> None:
    # 200 bytes at 0.05 seconds each take 10 seconds, and every byte arrives well within
    # any per-read timeout. Only a deadline on the whole request ends the wait.
    scripted_node.queue(Reply(body=b" " * 190 + b'{"a": "b"}', seconds_per_byte=0.05))
    scripted_node.respond(Reply.json(BALANCE))
    outcomes = OutcomeLog()

    async with NodeClient(
        scripted_node.base_url,
        timeout_seconds=0.3,
        read_retry=RetryPolicy(attempts=1),
        on_request=outcomes,
    ) as client:
        started = time.monotonic()
        with pytest.raises(NodeTimeoutError):
            await client.account_balance(ACCOUNT)
        elapsed = time.monotonic() - started

        balance = await client.account_balance(ACCOUNT)

    assert elapsed < 5.0
    assert balance.balance_raw == 10
    assert outcomes.calls == [("account_balance", "timeout"), ("account_balance", "ok")]


async def test_refused_connection_is_unavailable() -> None:
    outcomes = OutcomeLog()

    async with NodeClient(
        closed_port_url(),
        read_retry=RetryPolicy(attempts=3, base_delay_seconds=0.0),
        sleep=no_sleep,
        on_request=outcomes,
    ) as client:
        with pytest.raises(NodeUnavailableError):
            await client.account_balance(ACCOUNT)
        with pytest.raises(NodeUnavailableError):
            await client.work_generate(ROOT, "fff0000000000000")

    assert outcomes.calls == [("account_balance", "unavailable")] * 3 + [
        ("work_generate", "unavailable")
    ]


async def test_closed_session_is_unavailable(scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json(BALANCE))
    outcomes = OutcomeLog()
    session = aiohttp.ClientSession()
    await session.close()
    client = NodeClient(
        scripted_node.base_url,
        session=session,
        read_retry=RetryPolicy(attempts=1),
        on_request=outcomes,
    )

    with pytest.raises(NodeUnavailableError, match="session is closed"):
        await client.account_balance(ACCOUNT)

    assert scripted_node.call_count == 0
    assert outcomes.calls == [("account_balance", "unavailable")]


async def test_closed_own_session_is_unavailable(scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json(BALANCE))
    client = NodeClient(scripted_node.base_url, read_retry=RetryPolicy(attempts=1))
    assert (await client.account_balance(ACCOUNT)).balance_raw == 10

    await client.aclose()

    with pytest.raises(NodeUnavailableError, match="session is closed"):
        await client.account_balance(ACCOUNT)
    assert scripted_node.call_count == 1


async def test_closed_before_first_request(scripted_node: ScriptedNode) -> None:
    client = NodeClient(scripted_node.base_url, read_retry=RetryPolicy(attempts=1))
    await client.aclose()

    with pytest.raises(NodeUnavailableError, match="session is closed"):
        await client.account_balance(ACCOUNT)
    assert scripted_node.call_count == 0


async def test_given_session_left_open(scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json(BALANCE))

    async with aiohttp.ClientSession() as session:
        async with NodeClient(scripted_node.base_url, session=session) as client:
            await client.account_balance(ACCOUNT)

        assert not session.closed
        second = NodeClient(scripted_node.base_url, session=session)
        assert (await second.account_balance(ACCOUNT)).balance_raw == 10


async def test_session_trusting_environment_rejected() -> None:
    async with aiohttp.ClientSession(trust_env=True) as session:
        with pytest.raises(ValueError, match="trust_env=False"):
            NodeClient("http://127.0.0.1:9/", session=session)


async def test_redirect_not_followed(scripted_node: ScriptedNode) -> None:
    scripted_node.queue(Reply(status=307, headers=(("Location", "/elsewhere"),)))
    scripted_node.respond(Reply.json({"work": "05ffdb3ffe19eaff", "hash": ROOT}))

    async with NodeClient(scripted_node.base_url) as client:
        with pytest.raises(NodeUnavailableError, match="HTTP status 307"):
            await client.work_generate(ROOT, "fff0000000000000")

    assert scripted_node.call_count == 1


async def test_proxy_variables_ignored(
    scripted_node: ScriptedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that honoured these would send the request to a closed port and fail.
    proxy_url = closed_port_url()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    scripted_node.respond(Reply.json(BALANCE))

    async with NodeClient(scripted_node.base_url, read_retry=RetryPolicy(attempts=1)) as client:
        balance = await client.account_balance(ACCOUNT)

    assert balance.balance_raw == 10
    assert scripted_node.call_count == 1


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply.json({"work": "05ffdb3ffe19eaff", "hash": ROOT}), "ok"),
        (Reply.json({"error": "RPC control is disabled"}), "error"),
        (Reply.json({"error": 5}), "invalid_response"),
        (Reply(status=404), "error"),
        (Reply(status=500), "unavailable"),
        (Reply(status=503), "unavailable"),
        (Reply(status=204), "invalid_response"),
        (Reply(body=b"<html>proxy error</html>"), "invalid_response"),
        (Reply.json(["not", "an", "object"]), "invalid_response"),
        (Reply(body=b'{"hash": ' + b"1" * 5000 + b"}"), "invalid_response"),
        (Reply.json({"hash": ROOT}), "invalid_response"),
        (Reply.json({"work": 5, "hash": ROOT}), "invalid_response"),
        (Reply.dropped(), "unavailable"),
    ],
    ids=[
        "ok",
        "node-error",
        "node-error-not-text",
        "status-404",
        "status-500",
        "status-503",
        "status-204",
        "not-json",
        "not-object",
        "huge-integer",
        "field-missing",
        "field-mistyped",
        "dropped",
    ],
)
async def test_request_outcome_reported(
    scripted_node: ScriptedNode, reply: Reply, outcome: RequestOutcome
) -> None:
    scripted_node.respond(reply)
    outcomes = OutcomeLog()

    async with NodeClient(scripted_node.base_url, on_request=outcomes) as client:
        # Which typed error each reply raises is tested with the client's replies.
        with contextlib.suppress(NodeError):
            await client.work_generate(ROOT, "fff0000000000000")

    assert outcomes.calls == [("work_generate", outcome)]


async def test_timeout_outcome_reported(scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply(delay_seconds=30.0))
    outcomes = OutcomeLog()

    async with NodeClient(
        scripted_node.base_url, work_timeout_seconds=0.2, on_request=outcomes
    ) as client:
        with pytest.raises(NodeTimeoutError):
            await client.work_generate(ROOT, "fff0000000000000")

    assert outcomes.calls == [("work_generate", "timeout")]


async def test_reply_over_limit_with_length(scripted_node: ScriptedNode) -> None:
    body = b'{"hash": "' + b"A" * rpc_transport.MAX_REPLY_BYTES + b'"}'
    scripted_node.respond(Reply(body=body, headers=(("Content-Type", "application/json"),)))
    outcomes = OutcomeLog()

    async with NodeClient(scripted_node.base_url, on_request=outcomes) as client:
        with pytest.raises(NodeUnavailableError, match="larger than"):
            await client.work_generate(ROOT, "fff0000000000000")

    assert outcomes.calls == [("work_generate", "invalid_response")]


async def test_streamed_reply_over_limit(
    scripted_node: ScriptedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trickled reply has no Content-Length, so the limit is applied while reading.
    monkeypatch.setattr(rpc_transport, "MAX_REPLY_BYTES", 40)
    scripted_node.respond(Reply(body=b"[" + b"1," * 40 + b"1]", seconds_per_byte=0.001))
    outcomes = OutcomeLog()

    async with NodeClient(scripted_node.base_url, on_request=outcomes) as client:
        with pytest.raises(NodeUnavailableError, match="larger than 40 bytes"):
            await client.work_generate(ROOT, "fff0000000000000")

    assert outcomes.calls == [("work_generate", "invalid_response")]


async def test_reply_at_limit_is_read(
    scripted_node: ScriptedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = b'{"work": "05ffdb3ffe19eaff", "hash": "' + ROOT.encode() + b'"}'
    monkeypatch.setattr(rpc_transport, "MAX_REPLY_BYTES", len(reply))
    scripted_node.respond(Reply(body=reply, seconds_per_byte=0.0001))

    async with NodeClient(scripted_node.base_url) as client:
        work = await client.work_generate(ROOT, "fff0000000000000")

    assert work == "05ffdb3ffe19eaff"
