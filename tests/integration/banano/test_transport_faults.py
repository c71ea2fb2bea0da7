"""Each sandbox fault reaches NodeClient over real HTTP as the matching typed error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.rpc_errors import (
    ForkError,
    NodeTimeoutError,
    NodeUnavailableError,
    OldBlockError,
)
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.conftest import no_sleep
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    PLAYER,
    START_BALANCE_RAW,
    operator_send,
    worked,
)


@pytest.fixture
async def single_try_client(node: SandboxBananoNode) -> AsyncIterator[NodeClient]:
    async with aiohttp.ClientSession() as session:
        yield NodeClient(
            node.base_url,
            session=session,
            timeout_seconds=2.0,
            read_retry=RetryPolicy(attempts=1),
            sleep=no_sleep,
        )


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        (Fault.http_500(), NodeUnavailableError),
        (Fault.malformed_json(), NodeUnavailableError),
        (Fault.reply_lost_after_apply(), NodeUnavailableError),
        # The node keeps the request waiting until it stops, far past the client's deadline.
        (Fault.delay(600.0), NodeTimeoutError),
        (Fault.error("Fork"), ForkError),
    ],
)
async def test_read_fault_mapped(
    funded_node: SandboxBananoNode,
    single_try_client: NodeClient,
    fault: Fault,
    error_class: type[Exception],
) -> None:
    funded_node.inject_fault("account_info", fault)

    with pytest.raises(error_class):
        await single_try_client.account_info(OPERATOR.address)


async def test_read_retried_past_faults(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    funded_node.inject_fault("account_info", Fault.http_500())
    funded_node.inject_fault("account_info", Fault.malformed_json())

    info = await client.account_info(OPERATOR.address)

    assert info.balance_raw == START_BALANCE_RAW
    assert funded_node.request_counts["account_info"] == 3


async def test_lost_process_reply_applied(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    block = worked(operator_send(funded_node))
    funded_node.inject_fault("process", Fault.reply_lost_after_apply())

    with pytest.raises(NodeUnavailableError):
        await client.process(block)

    assert funded_node.block(block.hash()) is not None
    with pytest.raises(OldBlockError):
        await client.process(block)
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1


async def test_error_fault_changes_nothing(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    block = worked(operator_send(funded_node))
    funded_node.inject_fault("process", Fault.error("Fork"))

    with pytest.raises(ForkError):
        await client.process(block)

    assert funded_node.block(block.hash()) is None


async def test_faults_apply_in_order(
    funded_node: SandboxBananoNode, single_try_client: NodeClient
) -> None:
    funded_node.inject_fault("account_info", Fault.error("Fork"))
    funded_node.inject_fault("account_info", Fault.http_500())

    with pytest.raises(ForkError):
        await single_try_client.account_info(OPERATOR.address)
    with pytest.raises(NodeUnavailableError):
        await single_try_client.account_info(OPERATOR.address)
    assert (await single_try_client.account_info(OPERATOR.address)).balance_raw == (
        START_BALANCE_RAW
    )


async def test_clear_faults_empties_queue(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    funded_node.inject_fault("account_balance", Fault.http_500(), times=2)
    funded_node.clear_faults()

    balance = await client.account_balance(OPERATOR.address)

    assert balance.balance_raw == START_BALANCE_RAW
    assert funded_node.request_counts["account_balance"] == 1


async def test_unreachable_node_is_unavailable() -> None:
    stopped = SandboxBananoNode()
    url = await stopped.start()
    await stopped.stop()

    async with NodeClient(url, read_retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(NodeUnavailableError):
            await client.account_info(OPERATOR.address)
