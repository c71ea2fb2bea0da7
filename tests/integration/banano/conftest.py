"""A sandbox Banano node on a free loopback port, a client for it and a funded operator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.sender import LocalSigner
from core.banano.work_providers import NodeWorkProvider
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import OPERATOR, START_BALANCE_RAW, THRESHOLD


async def no_sleep(_seconds: float) -> None:
    """Stand in for asyncio.sleep so retries do not wait."""


@pytest.fixture
async def node() -> AsyncIterator[SandboxBananoNode]:
    sandbox = SandboxBananoNode(work_threshold=THRESHOLD)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def client(node: SandboxBananoNode) -> AsyncIterator[NodeClient]:
    async with aiohttp.ClientSession() as session:
        yield NodeClient(
            node.base_url,
            session=session,
            timeout_seconds=10.0,
            read_retry=RetryPolicy(attempts=3, base_delay_seconds=0.0),
            sleep=no_sleep,
        )


@pytest.fixture
def funded_node(node: SandboxBananoNode) -> SandboxBananoNode:
    """The node with the operator account opened at START_BALANCE_RAW."""
    node.fund(OPERATOR.address, START_BALANCE_RAW, key=OPERATOR)
    return node


@pytest.fixture
async def signer(funded_node: SandboxBananoNode, client: NodeClient) -> AsyncIterator[LocalSigner]:
    local_signer = LocalSigner(
        client,
        OPERATOR,
        OPERATOR.address,
        NodeWorkProvider(client),
        THRESHOLD,
        retry_delay_seconds=0.0,
    )
    yield local_signer
    if local_signer.work_cache is not None:
        await local_signer.work_cache.close()
