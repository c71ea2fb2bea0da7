"""Fixtures for the node client's unit tests: recorded reply bodies, a scripted node, a client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from core.banano.rpc import NodeClient, RetryPolicy
from tests.unit.banano_rpc.helpers_rpc import FIXTURES, ScriptedNode, no_sleep


@pytest.fixture
def load_fixture() -> Callable[[str], dict[str, Any]]:
    """Return a loader of a fixture reply body, without its `_request` key."""

    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
        data.pop("_request", None)
        return data

    return load


@pytest.fixture
async def scripted_node() -> AsyncIterator[ScriptedNode]:
    """A node on a free loopback port that sends the replies a test scripts."""
    node = ScriptedNode()
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@pytest.fixture
async def client(scripted_node: ScriptedNode) -> AsyncIterator[NodeClient]:
    """A node client of `scripted_node` that retries reads three times without waiting."""
    async with aiohttp.ClientSession() as session:
        yield NodeClient(
            scripted_node.base_url,
            session=session,
            timeout_seconds=2.0,
            read_retry=RetryPolicy(attempts=3, base_delay_seconds=0.0),
            sleep=no_sleep,
        )
