"""A stored block that lands while its place in the chain is being checked is not failed.

Found by the node fault campaign. A late reply let the block land between the slot check's
two reads. The check saw the account's confirmed height move past the place but not the
block in it, so it reported the place taken by a confirmed other block. The payout was
failed while its block was in the ledger, and its accruals were then paid a second time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from core.banano.blocks import StateBlock, build_send
from core.banano.rpc import NodeClient
from core.banano.rpc_replies import AccountInfo, BlockInfo
from core.banano.work import generate_work_local, work_root
from core.sandbox.banano_node import SandboxBananoNode
from core.services.ledger_check import SlotState, inspect_slot
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    fund_operator,
    operator_key,
    player_address,
)


class LandsAfterFirstRead(NodeClient):
    """A node client that lets `land` run right after its first read returns."""

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, land: Callable[[], None]
    ) -> None:
        super().__init__(base_url, session=session, timeout_seconds=5)
        self._land: Callable[[], None] | None = land

    def _after_read(self) -> None:
        if self._land is not None:
            land, self._land = self._land, None
            land()

    async def block_info(self, block_hash: str) -> BlockInfo:
        info = await super().block_info(block_hash)
        self._after_read()
        return info

    async def account_info(self, account: str) -> AccountInfo:
        info = await super().account_info(account)
        self._after_read()
        return info


@pytest.fixture
async def node() -> AsyncIterator[SandboxBananoNode]:
    sandbox = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
    await sandbox.start()
    fund_operator(sandbox)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


def next_send(node: SandboxBananoNode, salt: str) -> StateBlock:
    key = operator_key()
    account = node.ledger.accounts[key.address]
    block = build_send(
        key,
        account.frontier,
        account.representative,
        account.balance_raw,
        10**29,
        player_address(1, salt),
    ).signed(key)
    return block.with_work(generate_work_local(work_root(block), LOW_WORK_THRESHOLD))


def apply_and_confirm(node: SandboxBananoNode, block: StateBlock) -> None:
    entry = node.ledger.apply(block, int(time.time()))
    node.confirm(entry.hash)


async def test_block_landing_mid_check_not_taken(node: SandboxBananoNode) -> None:
    block = next_send(node, "race")

    async with aiohttp.ClientSession() as session:
        client = LandsAfterFirstRead(node.base_url, session, lambda: apply_and_confirm(node, block))
        slot = await inspect_slot(client, block)

    assert node.block(block.hash()) is not None
    assert slot.state is not SlotState.TAKEN_CONFIRMED
    assert slot.state is SlotState.UNKNOWN


async def test_other_block_landing_mid_check_taken(node: SandboxBananoNode) -> None:
    block = next_send(node, "ours")
    other = next_send(node, "theirs")

    async with aiohttp.ClientSession() as session:
        client = LandsAfterFirstRead(node.base_url, session, lambda: apply_and_confirm(node, other))
        first = await inspect_slot(client, block)
        plain = NodeClient(node.base_url, session=session, timeout_seconds=5)
        second = await inspect_slot(plain, block)

    # The first check may have read the chain before the other block landed.
    assert first.state in (SlotState.FREE, SlotState.UNKNOWN, SlotState.TAKEN_CONFIRMED)
    assert second.state is SlotState.TAKEN_CONFIRMED
    assert second.other_hash == other.hash()


async def test_free_slot_reported_free(node: SandboxBananoNode) -> None:
    block = next_send(node, "free")

    async with aiohttp.ClientSession() as session:
        slot = await inspect_slot(
            NodeClient(node.base_url, session=session, timeout_seconds=5), block
        )

    assert slot.state is SlotState.FREE
