"""Work fallback over real providers: the node's work_generate, a work server URL, local CPU."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.banano.rpc import NodeClient
from core.banano.sender import LocalSigner, SendOutcome
from core.banano.work import LocalWorkGenerator, is_valid_work
from core.banano.work_providers import (
    FallbackWorkProvider,
    LocalWorkProvider,
    NodeWorkProvider,
    WorkServerProvider,
)
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import OPERATOR, THRESHOLD, SignedRecorder, request

ROOT = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"


@pytest.fixture
async def local_provider() -> AsyncIterator[LocalWorkProvider]:
    generator = LocalWorkGenerator(processes=1)
    yield LocalWorkProvider(generator)
    await generator.aclose()


async def test_failing_node_falls_back_to_local(
    node: SandboxBananoNode, client: NodeClient, local_provider: LocalWorkProvider
) -> None:
    node.inject_fault("work_generate", Fault.error("RPC control is disabled"))
    chain = FallbackWorkProvider([NodeWorkProvider(client), local_provider], 5.0)

    work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert node.request_counts["work_generate"] == 1


async def test_slow_node_falls_back_to_work_server(
    node: SandboxBananoNode, client: NodeClient
) -> None:
    node.inject_fault("work_generate", Fault.delay(5.0))
    async with httpx.AsyncClient() as http:
        # The sandbox node speaks the work server's work_generate request too.
        work_server = WorkServerProvider(node.base_url, http)
        chain = FallbackWorkProvider([NodeWorkProvider(client), work_server], 0.3)

        work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert node.request_counts["work_generate"] == 2


async def test_signer_sends_with_fallback(
    funded_node: SandboxBananoNode, client: NodeClient, local_provider: LocalWorkProvider
) -> None:
    funded_node.inject_fault("work_generate", Fault.http_500(), times=10)
    chain = FallbackWorkProvider([NodeWorkProvider(client), local_provider], 5.0)
    signer = LocalSigner(client, OPERATOR, None, chain, THRESHOLD)

    result = await signer.send(request(), SignedRecorder(funded_node))
    assert signer.work_cache is not None
    await signer.work_cache.close()

    assert result.outcome is SendOutcome.ACCEPTED
