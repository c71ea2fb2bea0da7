"""Work fallback over real providers: the node's work_generate, a work server URL, local CPU."""

from __future__ import annotations

import asyncio
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
    WorkUnavailableError,
)
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import OPERATOR, THRESHOLD, SignedRecorder, request

ROOT = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"


@pytest.fixture
async def work_server_node() -> AsyncIterator[SandboxBananoNode]:
    """A second sandbox node in the role of a work server."""
    sandbox = SandboxBananoNode(work_threshold=THRESHOLD)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def local_provider() -> AsyncIterator[LocalWorkProvider]:
    generator = LocalWorkGenerator(processes=1)
    yield LocalWorkProvider(generator)
    await generator.aclose()


async def test_failing_node_falls_back_to_local(
    node: SandboxBananoNode, client: NodeClient, local_provider: LocalWorkProvider
) -> None:
    node.inject_fault("work_generate", Fault.error("RPC control is disabled"))
    chain = FallbackWorkProvider([NodeWorkProvider(client), local_provider], 120.0)

    work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert node.request_counts["work_generate"] == 1


class StalledProvider:
    """A provider that never returns: it marks that it started and waits until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def generate(self, root_hex: str, threshold: int) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("the stalled provider was woken up")


async def test_stalled_provider_falls_back_to_work_server(node: SandboxBananoNode) -> None:
    stalled = StalledProvider()
    async with httpx.AsyncClient() as http:
        # The sandbox node speaks the work server's work_generate request too. The limit is
        # generous because a busy host can be slow to reply.
        work_server = WorkServerProvider(node.base_url, http, timeout_seconds=120.0)
        chain = FallbackWorkProvider([stalled, work_server], [0.05, 120.0])

        work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert stalled.started.is_set()
    assert stalled.cancelled
    assert node.request_counts["work_generate"] == 1


async def test_slow_node_falls_back_to_work_server(
    node: SandboxBananoNode, client: NodeClient, work_server_node: SandboxBananoNode
) -> None:
    # The node keeps every request waiting far past its limit, whether the request arrives
    # before the limit or not, and the work server is another node without faults.
    node.inject_fault("work_generate", Fault.delay(600.0), times=10)
    async with httpx.AsyncClient() as http:
        work_server = WorkServerProvider(work_server_node.base_url, http, timeout_seconds=120.0)
        chain = FallbackWorkProvider([NodeWorkProvider(client), work_server], [0.05, 120.0])

        work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert work_server_node.request_counts["work_generate"] == 1


@pytest.mark.parametrize(
    "body",
    ['{"work": 1' + "0" * 5000 + "}", "[" * 100_000 + "]" * 100_000, '{"work": ["x"]}'],
)
async def test_unreadable_work_server_reply_falls_back(
    node: SandboxBananoNode, local_provider: LocalWorkProvider, body: str
) -> None:
    node.inject_fault("work_generate", Fault.raw_body(body))
    async with httpx.AsyncClient() as http:
        work_server = WorkServerProvider(node.base_url, http)
        with pytest.raises(WorkUnavailableError):
            await work_server.generate(ROOT, THRESHOLD)

        node.inject_fault("work_generate", Fault.raw_body(body))
        chain = FallbackWorkProvider([work_server, local_provider], 120.0)
        work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)


async def test_trickled_work_server_reply_times_out(node: SandboxBananoNode) -> None:
    # Each byte arrives well within httpx's read timeout, and the whole reply would take
    # about a minute, so only the deadline on the whole request ends it.
    node.inject_fault("work_generate", Fault.trickle(0.5))
    async with httpx.AsyncClient() as http:
        work_server = WorkServerProvider(node.base_url, http, timeout_seconds=1.0)

        with pytest.raises(WorkUnavailableError, match="in time"):
            await work_server.generate(ROOT, THRESHOLD)


async def test_signer_sends_with_fallback(
    funded_node: SandboxBananoNode, client: NodeClient, local_provider: LocalWorkProvider
) -> None:
    funded_node.inject_fault("work_generate", Fault.http_500(), times=10)
    chain = FallbackWorkProvider([NodeWorkProvider(client), local_provider], 120.0)
    signer = LocalSigner(client, OPERATOR, None, chain, THRESHOLD)

    result = await signer.send(request(), SignedRecorder(funded_node))
    assert signer.work_cache is not None
    await signer.work_cache.close()

    assert result.outcome is SendOutcome.ACCEPTED
