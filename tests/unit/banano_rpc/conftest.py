"""Fixtures for the node client's unit tests: recorded reply bodies and a client on a fake URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from core.banano.rpc import NodeClient, RetryPolicy
from tests.unit.banano_rpc.helpers_rpc import FIXTURES, NODE_URL, no_sleep


@pytest.fixture
def load_fixture() -> Callable[[str], dict[str, Any]]:
    """Return a loader of a fixture reply body, without its `_request` key."""

    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
        data.pop("_request", None)
        return data

    return load


@pytest.fixture
async def client() -> AsyncIterator[NodeClient]:
    """A node client that retries reads three times without waiting."""
    async with httpx.AsyncClient() as http:
        yield NodeClient(
            NODE_URL,
            http=http,
            timeout_seconds=2.0,
            read_retry=RetryPolicy(attempts=3, base_delay_seconds=0.0),
            sleep=no_sleep,
        )
