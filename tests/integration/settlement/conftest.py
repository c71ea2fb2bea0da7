"""Fixtures of the settlement tests: a sandbox Banano node with a funded operator account."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.db.session import Database
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.settlement.helpers_world import LOW_WORK_THRESHOLD, World, fund_operator


@pytest.fixture
async def node() -> AsyncIterator[SandboxBananoNode]:
    """A sandbox node on a free loopback port whose operator account is funded and opened."""
    sandbox = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
    await sandbox.start()
    fund_operator(sandbox)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
def world(database: Database) -> World:
    """Players and accruals on the test's database (SQLite and PostgreSQL)."""
    return World(database)
