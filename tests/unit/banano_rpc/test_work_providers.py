"""Work providers, the fallback chain and the precomputing cache."""

from __future__ import annotations

import asyncio

import pytest

from core.banano.rpc import NodeClient
from core.banano.rpc_errors import NodeUnavailableError
from core.banano.work import LocalWorkGenerator, generate_work_local, is_valid_work, work_value
from core.banano.work_providers import (
    FallbackWorkProvider,
    LocalWorkProvider,
    NodeWorkProvider,
    WorkCache,
    WorkServerProvider,
    WorkUnavailableError,
    difficulty_hex,
)
from core.integrations import create_http_client
from tests.unit.banano_rpc.helpers_rpc import Reply, ScriptedNode

THRESHOLD = 0xFFF0000000000000
ROOT = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"
OTHER_ROOT = "E2FB233EF4554077A7BF1AA85851D5BF0B36965D2B0FB504B2BC778AB89917D3"


def valid_work(root: str) -> str:
    return generate_work_local(root, THRESHOLD)


def invalid_work(root: str) -> str:
    nonce = 0
    while work_value(root, f"{nonce:016x}") >= THRESHOLD:
        nonce += 1
    return f"{nonce:016x}"


class FakeProvider:
    """Returns valid work, or fails in the configured way, and records each root asked for."""

    def __init__(
        self,
        *,
        error: Exception | None = None,
        delay_seconds: float = 0.0,
        bad_work: bool = False,
    ) -> None:
        self.error = error
        self.delay_seconds = delay_seconds
        self.bad_work = bad_work
        self.roots: list[str] = []

    async def generate(self, root_hex: str, threshold: int) -> str:
        self.roots.append(root_hex)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.error is not None:
            raise self.error
        return invalid_work(root_hex) if self.bad_work else valid_work(root_hex)


async def test_fallback_uses_next_after_failure() -> None:
    failing = FakeProvider(error=NodeUnavailableError())
    working = FakeProvider()

    work = await FallbackWorkProvider([failing, working], 5.0).generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert failing.roots == [ROOT]
    assert working.roots == [ROOT]


async def test_fallback_uses_next_after_timeout() -> None:
    slow = FakeProvider(delay_seconds=30.0)
    working = FakeProvider()

    work = await FallbackWorkProvider([slow, working], 0.05).generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert working.roots == [ROOT]


@pytest.mark.parametrize(
    "error", [ValueError("bad work text"), KeyError("work"), TypeError("not a string")]
)
async def test_fallback_untyped_error_tries_next(error: Exception) -> None:
    broken = FakeProvider(error=error)
    working = FakeProvider()

    work = await FallbackWorkProvider([broken, working], 5.0).generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert broken.roots == [ROOT]
    assert working.roots == [ROOT]


@pytest.mark.parametrize(
    "error", [ValueError("bad work text"), KeyError("work"), TypeError("not a string")]
)
async def test_cache_wraps_untyped_errors(error: Exception) -> None:
    cache = WorkCache(FakeProvider(error=error), THRESHOLD)

    with pytest.raises(WorkUnavailableError):
        await cache.get(ROOT)


async def test_fallback_timeout_per_provider() -> None:
    slow = FakeProvider(delay_seconds=30.0)
    patient = FakeProvider(delay_seconds=0.01)

    chain = FallbackWorkProvider([slow, patient], [0.001, 30.0])
    work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert patient.roots == [ROOT]


def test_fallback_timeouts_match_providers() -> None:
    with pytest.raises(ValueError, match="one timeout per provider"):
        FallbackWorkProvider([FakeProvider(), FakeProvider()], [1.0])


async def test_fallback_skips_invalid_work() -> None:
    wrong = FakeProvider(bad_work=True)
    working = FakeProvider()

    work = await FallbackWorkProvider([wrong, working], 5.0).generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert wrong.roots == [ROOT]


async def test_fallback_stops_at_first_success() -> None:
    first = FakeProvider()
    second = FakeProvider()

    await FallbackWorkProvider([first, second], 5.0).generate(ROOT, THRESHOLD)

    assert second.roots == []


async def test_fallback_all_failing_raises() -> None:
    providers = [FakeProvider(error=NodeUnavailableError()), FakeProvider(bad_work=True)]

    with pytest.raises(WorkUnavailableError):
        await FallbackWorkProvider(providers, 5.0).generate(ROOT, THRESHOLD)


def test_fallback_needs_providers() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FallbackWorkProvider([], 1.0)


async def test_cache_precompute_then_get() -> None:
    provider = FakeProvider()
    cache = WorkCache(provider, THRESHOLD)

    cache.precompute(ROOT)
    cache.precompute(ROOT)
    work = await cache.get(ROOT.lower())

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert provider.roots == [ROOT]


async def test_cache_get_without_precompute() -> None:
    provider = FakeProvider()
    cache = WorkCache(provider, THRESHOLD)

    work = await cache.get(ROOT)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert provider.roots == [ROOT]


async def test_cache_recomputes_failed_precompute() -> None:
    provider = FakeProvider(error=NodeUnavailableError())
    cache = WorkCache(provider, THRESHOLD)
    cache.precompute(ROOT)
    await asyncio.sleep(0)
    provider.error = None

    work = await cache.get(ROOT)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert provider.roots == [ROOT, ROOT]


async def test_cache_rejects_invalid_work() -> None:
    cache = WorkCache(FakeProvider(bad_work=True), THRESHOLD)

    with pytest.raises(WorkUnavailableError):
        await cache.get(ROOT)


async def test_cache_wraps_provider_errors() -> None:
    cache = WorkCache(FakeProvider(error=NodeUnavailableError()), THRESHOLD)

    with pytest.raises(WorkUnavailableError):
        await cache.get(ROOT)


async def test_cache_evicts_oldest_root() -> None:
    provider = FakeProvider(delay_seconds=30.0)
    cache = WorkCache(provider, THRESHOLD, max_entries=1)

    cache.precompute(ROOT)
    cache.precompute(OTHER_ROOT)
    await asyncio.sleep(0)

    # The first task was cancelled before it started.
    assert provider.roots == [OTHER_ROOT]
    await cache.close()


async def test_cache_close_cancels_tasks() -> None:
    provider = FakeProvider(delay_seconds=30.0)
    cache = WorkCache(provider, THRESHOLD)
    cache.precompute(ROOT)
    await asyncio.sleep(0)

    await cache.close()
    provider.delay_seconds = 0.0

    assert is_valid_work(ROOT, await cache.get(ROOT), THRESHOLD)
    assert provider.roots == [ROOT, ROOT]


async def test_work_server_request_and_reply(scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json({"work": valid_work(ROOT).upper()}))

    async with create_http_client() as http:
        work = await WorkServerProvider(scripted_node.base_url, http).generate(ROOT, THRESHOLD)

    assert work == work.lower()
    assert is_valid_work(ROOT, work, THRESHOLD)
    request = scripted_node.requests[0]
    assert request == {"action": "work_generate", "hash": ROOT, "difficulty": "fff0000000000000"}


@pytest.mark.parametrize(
    "reply",
    [
        Reply.json({"error": "Cancelled"}),
        Reply.json({"work": "xyz"}),
        Reply(status=500),
        Reply(body=b"not json"),
    ],
    ids=["error", "bad-work", "status-500", "not-json"],
)
async def test_work_server_failures_raise(scripted_node: ScriptedNode, reply: Reply) -> None:
    scripted_node.respond(reply)

    async with create_http_client() as http:
        with pytest.raises(WorkUnavailableError):
            await WorkServerProvider(scripted_node.base_url, http).generate(ROOT, THRESHOLD)


async def test_node_provider_sends_difficulty(scripted_node: ScriptedNode) -> None:
    work = valid_work(ROOT)
    scripted_node.respond(Reply.json({"work": work, "hash": ROOT}))

    async with NodeClient(scripted_node.base_url) as node:
        assert await NodeWorkProvider(node).generate(ROOT, THRESHOLD) == work

    assert scripted_node.requests[0]["difficulty"] == "fff0000000000000"


@pytest.mark.parametrize(
    "reply",
    [Reply(status=503), Reply.dropped(), Reply(body=b"not json"), Reply(delay_seconds=30.0)],
    ids=["status-503", "dropped", "not-json", "slow"],
)
async def test_fallback_passes_node_failures(scripted_node: ScriptedNode, reply: Reply) -> None:
    scripted_node.respond(reply)
    working = FakeProvider()

    async with NodeClient(scripted_node.base_url, work_timeout_seconds=0.2) as node:
        chain = FallbackWorkProvider([NodeWorkProvider(node), working], 5.0)
        work = await chain.generate(ROOT, THRESHOLD)

    assert is_valid_work(ROOT, work, THRESHOLD)
    assert working.roots == [ROOT]
    assert scripted_node.call_count == 1


def test_difficulty_hex_pads() -> None:
    assert difficulty_hex(0xFFFFFE0000000000) == "fffffe0000000000"
    assert difficulty_hex(1) == "0000000000000001"


async def test_local_provider_finds_valid_work() -> None:
    generator = LocalWorkGenerator(processes=1)
    try:
        work = await LocalWorkProvider(generator).generate(ROOT, THRESHOLD)
    finally:
        await generator.aclose()

    assert is_valid_work(ROOT, work, THRESHOLD)
