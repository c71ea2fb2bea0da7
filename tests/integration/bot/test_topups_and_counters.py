"""Top-up receiving and the node and Yunite request counters against the sandbox servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.http_metrics import create_yunite_http_client, node_rpc_counter
from bot.receiving import receive_topups, topup_recorder
from core.banano.keys import KeyPair
from core.banano.receiver import Receiver
from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.rpc_errors import (
    AccountNotFoundError,
    NodeTimeoutError,
    NodeUnavailableError,
)
from core.banano.work_providers import NodeWorkProvider
from core.clock import utc_now
from core.db import Database
from core.db.models import AuditEntry, ReceivedBlock
from core.integrations import YuniteClient, YuniteError
from core.observability import Metrics
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.yunite_server import SandboxYunite

LOW_THRESHOLD = 0xFFF0000000000000
OPERATOR_SEED = "11" * 32
GUILD_ID = 4242


@pytest.fixture
async def sandbox_node() -> AsyncIterator[SandboxBananoNode]:
    node = SandboxBananoNode(work_threshold=LOW_THRESHOLD)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def counter_value(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    text = metrics.render()[0].decode()
    expected_labels = "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(f"pay2slay_{name}{expected_labels} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_receive_job_records_topup_once(
    sandbox_node: SandboxBananoNode, sqlite_database: Database
) -> None:
    key = KeyPair.from_seed(OPERATOR_SEED, 0)
    send_hash = sandbox_node.fund(key.address, 5 * 10**29)
    assert sandbox_node.receivable_of(key.address) == {send_hash: 5 * 10**29}
    metrics = Metrics()
    node = NodeClient(sandbox_node.base_url, on_request=node_rpc_counter(metrics))
    try:
        receiver = Receiver(
            node,
            key,
            NodeWorkProvider(node),
            topup_recorder(sqlite_database, node, key.address, utc_now),
            threshold=LOW_THRESHOLD,
        )
        await receive_topups(receiver)
        await receive_topups(receiver)
    finally:
        await node.aclose()

    assert sandbox_node.balance_of(key.address) == 5 * 10**29
    async with sqlite_database.read() as session:
        rows = (await session.scalars(select(ReceivedBlock))).all()
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "operator_topup_received")
        )
    assert [(row.source_block_hash, row.amount_raw) for row in rows] == [(send_hash, 5 * 10**29)]
    assert rows[0].block_hash == sandbox_node.frontier_of(key.address)
    assert audits == 1
    assert (
        counter_value(metrics, "node_rpc_requests_total", {"action": "process", "outcome": "ok"})
        == 1
    )
    assert (
        counter_value(metrics, "node_rpc_requests_total", {"action": "receivable", "outcome": "ok"})
        == 2
    )


async def test_node_counter_errors_and_unreachable(
    sandbox_node: SandboxBananoNode,
) -> None:
    metrics = Metrics()
    key = KeyPair.from_seed(OPERATOR_SEED, 0)
    async with NodeClient(sandbox_node.base_url, on_request=node_rpc_counter(metrics)) as node:
        with pytest.raises(AccountNotFoundError):
            await node.account_info(key.address)
        await sandbox_node.stop()
        with pytest.raises(NodeUnavailableError):
            await node.account_balance(key.address)

    assert (
        counter_value(
            metrics, "node_rpc_requests_total", {"action": "account_info", "outcome": "error"}
        )
        == 1
    )
    assert (
        counter_value(
            metrics,
            "node_rpc_requests_total",
            {"action": "account_balance", "outcome": "unavailable"},
        )
        == 3
    )  # NodeClient tries a read three times.


async def test_node_counter_timeout_and_malformed(sandbox_node: SandboxBananoNode) -> None:
    metrics = Metrics()
    key = KeyPair.from_seed(OPERATOR_SEED, 0)
    sandbox_node.inject_fault("account_balance", Fault.delay(600.0))
    sandbox_node.inject_fault("account_info", Fault.malformed_json())
    sandbox_node.inject_fault("block_info", Fault.http_500())

    async with NodeClient(
        sandbox_node.base_url,
        timeout_seconds=0.5,
        read_retry=RetryPolicy(attempts=1),
        on_request=node_rpc_counter(metrics),
    ) as node:
        with pytest.raises(NodeTimeoutError):
            await node.account_balance(key.address)
        with pytest.raises(NodeUnavailableError):
            await node.account_info(key.address)
        with pytest.raises(NodeUnavailableError):
            await node.block_info("0" * 64)

    requests = "node_rpc_requests_total"
    timeout = {"action": "account_balance", "outcome": "timeout"}
    invalid = {"action": "account_info", "outcome": "invalid_response"}
    unavailable = {"action": "block_info", "outcome": "unavailable"}
    assert counter_value(metrics, requests, timeout) == 1
    assert counter_value(metrics, requests, invalid) == 1
    assert counter_value(metrics, requests, unavailable) == 1


def test_node_counter_unknown_action_is_other() -> None:
    metrics = Metrics()
    count = node_rpc_counter(metrics)

    count("pending", "ok")
    count("receivable", "error")

    requests = "node_rpc_requests_total"
    assert counter_value(metrics, requests, {"action": "other", "outcome": "ok"}) == 1
    assert counter_value(metrics, requests, {"action": "pending", "outcome": "ok"}) == 0
    assert counter_value(metrics, requests, {"action": "receivable", "outcome": "error"}) == 1


async def test_yunite_counter_by_outcome() -> None:
    metrics = Metrics()
    sandbox = SandboxYunite("yunite-token", GUILD_ID)
    sandbox.add_player(1001, "ab" * 16)
    await sandbox.start()
    try:
        async with create_yunite_http_client(metrics) as http:
            client = YuniteClient(
                http, sandbox.base_url, SecretStr("yunite-token"), GUILD_ID, cache_seconds=0
            )
            links = await client.links_for([1001])
            assert links[1001].epic_account_id == "ab" * 16
            sandbox.inject_status(402)
            with pytest.raises(YuniteError):
                await client.links_for([1001])
    finally:
        await sandbox.stop()

    assert counter_value(metrics, "yunite_requests_total", {"outcome": "ok"}) == 1
    assert counter_value(metrics, "yunite_requests_total", {"outcome": "payment_required"}) == 1
