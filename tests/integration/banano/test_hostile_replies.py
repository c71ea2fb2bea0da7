"""Replies a buggy or hostile node can send: JSON the parser chokes on, and trickled bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import pytest

from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.rpc_errors import NodeTimeoutError, NodeUnavailableError
from core.banano.sender import LocalSigner, NodeWalletSender, SendOutcome
from core.banano.work_providers import NodeWorkProvider
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.conftest import no_sleep
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    PAYOUT_RAW,
    PLAYER,
    THRESHOLD,
    SignedRecorder,
    operator_send,
    request,
    worked,
)

# Python's int() refuses more than 4300 digits, and its JSON parser recurses per nesting level.
HUGE_NUMBER = "1" + "0" * 5000
HOSTILE_BODIES = {
    "huge_integer": '{"hash": ' + HUGE_NUMBER + "}",
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "huge_error_integer": '{"error": ' + HUGE_NUMBER + "}",
}
ROOT = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"
WALLET_ID = "sandbox-wallet-0001"

Call = Callable[[NodeClient, SandboxBananoNode], Awaitable[object]]


async def call_process(client: NodeClient, node: SandboxBananoNode) -> object:
    return await client.process(worked(operator_send(node)))


CALLS: dict[str, tuple[str, Call]] = {
    "account_info": ("account_info", lambda c, _n: c.account_info(OPERATOR.address)),
    "account_balance": ("account_balance", lambda c, _n: c.account_balance(OPERATOR.address)),
    "receivable": ("receivable", lambda c, _n: c.receivable(OPERATOR.address, 10)),
    "block_info": ("block_info", lambda c, _n: c.block_info(ROOT)),
    "account_history": ("account_history", lambda c, _n: c.account_history(OPERATOR.address, 5)),
    "process": ("process", call_process),
    "work_generate": ("work_generate", lambda c, _n: c.work_generate(ROOT, "fff0000000000000")),
    "send": (
        "send",
        lambda c, _n: c.send(WALLET_ID, OPERATOR.address, PLAYER.address, 1, "payout-1"),
    ),
}


@pytest.fixture
async def single_try_client(node: SandboxBananoNode) -> AsyncIterator[NodeClient]:
    async with aiohttp.ClientSession() as session:
        yield NodeClient(
            node.base_url,
            session=session,
            timeout_seconds=10.0,
            read_retry=RetryPolicy(attempts=1),
            sleep=no_sleep,
        )


async def raw_reply(node: SandboxBananoNode, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the sandbox's real reply to `payload`, to be altered and injected."""
    async with httpx.AsyncClient() as http:
        response = await http.post(node.base_url, json=payload)
    reply: dict[str, Any] = response.json()
    return reply


@pytest.mark.parametrize("body_name", sorted(HOSTILE_BODIES))
@pytest.mark.parametrize("call_name", sorted(CALLS))
async def test_hostile_body_is_unavailable(
    funded_node: SandboxBananoNode,
    single_try_client: NodeClient,
    call_name: str,
    body_name: str,
) -> None:
    action, call = CALLS[call_name]
    funded_node.inject_fault(action, Fault.raw_body(HOSTILE_BODIES[body_name]))

    with pytest.raises(NodeUnavailableError):
        await call(single_try_client, funded_node)


@pytest.mark.parametrize(
    ("action", "payload", "field_name"),
    [
        ("account_info", {"account": OPERATOR.address}, "block_count"),
        (
            "account_info",
            {"account": OPERATOR.address, "include_confirmed": "true"},
            "confirmed_height",
        ),
        ("account_history", {"account": OPERATOR.address, "count": "5", "raw": "true"}, "height"),
        ("block_info", {"hash": ""}, "height"),
    ],
)
async def test_huge_numeric_field_is_unavailable(
    funded_node: SandboxBananoNode,
    single_try_client: NodeClient,
    action: str,
    payload: dict[str, Any],
    field_name: str,
) -> None:
    frontier = funded_node.frontier_of(OPERATOR.address)
    assert frontier is not None
    if action == "block_info":
        payload = {"hash": frontier, "json_block": "true"}
    reply = await raw_reply(funded_node, {"action": action, **payload})
    if action == "account_history":
        reply["history"][0][field_name] = "9" * 5000
    else:
        reply[field_name] = "9" * 5000
    funded_node.inject_fault(action, Fault.raw_body(json.dumps(reply)))

    reads = {
        "account_info": lambda: single_try_client.account_info(OPERATOR.address),
        "account_history": lambda: single_try_client.account_history(OPERATOR.address, 5),
        "block_info": lambda: single_try_client.block_info(frontier),
    }

    with pytest.raises(NodeUnavailableError):
        await reads[action]()


@pytest.mark.parametrize("body_name", sorted(HOSTILE_BODIES))
async def test_signer_hostile_process_reply_uncertain(
    funded_node: SandboxBananoNode, signer: LocalSigner, body_name: str
) -> None:
    recorder = SignedRecorder(funded_node)
    # The first reply comes after the block landed, so the outcome is unknown to the signer.
    funded_node.inject_fault(
        "process", Fault.raw_body(HOSTILE_BODIES[body_name], apply_first=True), times=2
    )

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.block_hash == recorder.stored[0].block_hash
    assert result.block_hash in signer.lock.in_doubt
    assert funded_node.block(str(result.block_hash)) is not None

    settled = await signer.resubmit(request(), recorder.stored[0])

    assert settled.outcome is SendOutcome.ACCEPTED
    assert signer.lock.in_doubt == {}
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


@pytest.mark.parametrize("body_name", sorted(HOSTILE_BODIES))
async def test_wallet_hostile_send_reply_uncertain(
    funded_node: SandboxBananoNode, client: NodeClient, body_name: str
) -> None:
    funded_node.add_wallet_key(WALLET_ID, OPERATOR)
    sender = NodeWalletSender(client, WALLET_ID, OPERATOR.address, attempts=2, sleep=no_sleep)
    funded_node.inject_fault(
        "send", Fault.raw_body(HOSTILE_BODIES[body_name], apply_first=True), times=2
    )

    result = await sender.send(request(), SignedRecorder(funded_node))

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.block_hash is None
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_trickled_reply_hits_total_deadline(funded_node: SandboxBananoNode) -> None:
    # One byte every second beats any per-read timeout, and the whole reply would take more
    # than a minute. Only a deadline on the whole request ends it.
    funded_node.inject_fault("account_balance", Fault.trickle(1.0))
    async with NodeClient(
        funded_node.base_url, timeout_seconds=2.0, read_retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(NodeTimeoutError):
            await client.account_balance(OPERATOR.address)

        # The connection pool still works for the next request.
        balance = await client.account_balance(OPERATOR.address)
    assert balance.balance_raw == funded_node.confirmed_balance_of(OPERATOR.address)


async def test_trickled_account_info_frees_signer(funded_node: SandboxBananoNode) -> None:
    funded_node.inject_fault("account_info", Fault.trickle(1.0))
    async with NodeClient(
        funded_node.base_url, timeout_seconds=2.0, read_retry=RetryPolicy(attempts=1)
    ) as client:
        signer = LocalSigner(client, OPERATOR, None, NodeWorkProvider(client), THRESHOLD)
        recorder = SignedRecorder(funded_node)

        result = await signer.send(request(), recorder)

        assert result.outcome is SendOutcome.REJECTED
        assert result.block_hash is None
        assert recorder.stored == []
        assert not signer.lock.locked()
        assert signer.work_cache is not None
        await signer.work_cache.close()


async def test_trickle_applies_the_request(
    funded_node: SandboxBananoNode, single_try_client: NodeClient
) -> None:
    block = worked(operator_send(funded_node))
    funded_node.inject_fault("process", Fault.trickle(0.001))

    assert await single_try_client.process(block) == block.hash()
    assert funded_node.block(block.hash()) is not None
