"""A stored block whose place in the chain another block took: rejected, never left in doubt."""

from __future__ import annotations

import asyncio

import pytest

from core.banano.rpc import NodeClient
from core.banano.sender import LocalSigner, SendOutcome, SignedBlock
from core.banano.work_providers import NodeWorkProvider
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    OTHER_PLAYER,
    PAYOUT_RAW,
    PLAYER,
    THRESHOLD,
    SignedRecorder,
    request,
)


def new_signer(client: NodeClient) -> LocalSigner:
    """Build a signer with its own lock, as a restarted process would have."""
    return LocalSigner(
        client, OPERATOR, None, NodeWorkProvider(client), THRESHOLD, retry_delay_seconds=0.0
    )


async def close_work(*signers: LocalSigner) -> None:
    for signer in signers:
        if signer.work_cache is not None:
            await signer.work_cache.close()


async def lost_send(node: SandboxBananoNode, client: NodeClient) -> SignedBlock:
    """Sign and store a send that never lands, because every submission got HTTP 500."""
    signer = new_signer(client)
    recorder = SignedRecorder(node)
    node.inject_fault("process", Fault.http_500(), times=2)
    result = await signer.send(request(1), recorder)
    await close_work(signer)
    assert result.outcome is SendOutcome.UNCERTAIN
    assert node.block(recorder.stored[0].block_hash) is None
    return recorder.stored[0]


@pytest.mark.parametrize(
    ("replacement_raw", "names_replacement"),
    # A send at least as large gets the subtype check's balance error, which does not name
    # the other block, so the signer looks the place up. A smaller one gets "Fork".
    [(PAYOUT_RAW, True), (2 * PAYOUT_RAW, True), (PAYOUT_RAW // 2, False)],
)
async def test_replaced_send_rejected_on_resubmit(
    funded_node: SandboxBananoNode,
    client: NodeClient,
    replacement_raw: int,
    names_replacement: bool,
) -> None:
    stored = await lost_send(funded_node, client)
    restarted = new_signer(client)
    replacement = await restarted.send(
        request(2, amount_raw=replacement_raw, destination=OTHER_PLAYER.address),
        SignedRecorder(funded_node),
    )
    assert replacement.outcome is SendOutcome.ACCEPTED

    result = await restarted.resubmit(request(1), stored)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash == stored.block_hash
    assert result.reason is not None
    if names_replacement:
        assert str(replacement.block_hash) in result.reason
    assert restarted.lock.in_doubt == {}
    assert funded_node.total_sent_to(PLAYER.address) == 0
    await close_work(restarted)


async def test_sends_continue_after_replaced_resubmit(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    stored = await lost_send(funded_node, client)
    restarted = new_signer(client)
    await restarted.send(
        request(2, amount_raw=2 * PAYOUT_RAW, destination=OTHER_PLAYER.address),
        SignedRecorder(funded_node),
    )
    await restarted.resubmit(request(1), stored)

    later = await restarted.send(request(3), SignedRecorder(funded_node))

    assert later.outcome is SendOutcome.ACCEPTED
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    await close_work(restarted)


async def test_replaced_by_unconfirmed_block_rejected(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    stored = await lost_send(funded_node, client)
    funded_node.set_auto_confirm(False)
    restarted = new_signer(client)
    replacement = await restarted.send(
        request(2, amount_raw=2 * PAYOUT_RAW), SignedRecorder(funded_node)
    )

    result = await restarted.resubmit(request(1), stored)

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason is not None
    assert str(replacement.block_hash) in result.reason
    assert restarted.lock.in_doubt == {}
    await close_work(restarted)


async def test_in_doubt_replaced_block_cleared_by_next_send(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    # The signer that lost the reply keeps the block in doubt. Another process (sharing the
    # seed) takes the place meanwhile. The next send must clear the slot, not stall.
    signer = new_signer(client)
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.http_500(), times=2)
    lost = await signer.send(request(1), recorder)
    assert lost.outcome is SendOutcome.UNCERTAIN
    other_process = new_signer(client)
    await other_process.send(
        request(2, amount_raw=2 * PAYOUT_RAW, destination=OTHER_PLAYER.address),
        SignedRecorder(funded_node),
    )

    later = await signer.send(request(3), recorder)

    assert later.outcome is SendOutcome.ACCEPTED
    assert signer.lock.in_doubt == {}
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    await close_work(signer, other_process)


async def test_cancelled_before_process_then_replaced(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    signer = new_signer(client)
    stored: list[SignedBlock] = []
    was_stored = asyncio.Event()
    never = asyncio.Event()

    async def store_then_stall(signed: SignedBlock) -> None:
        stored.append(signed)
        was_stored.set()
        await never.wait()

    task = asyncio.create_task(signer.send(request(1), store_then_stall))
    await was_stored.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert funded_node.request_counts["process"] == 0

    replacement = await signer.send(
        request(2, amount_raw=2 * PAYOUT_RAW, destination=OTHER_PLAYER.address),
        SignedRecorder(funded_node),
    )
    resubmitted = await signer.resubmit(request(1), stored[0])
    later = await signer.send(request(3), SignedRecorder(funded_node))

    assert replacement.outcome is SendOutcome.ACCEPTED
    assert resubmitted.outcome is SendOutcome.REJECTED
    assert later.outcome is SendOutcome.ACCEPTED
    assert signer.lock.in_doubt == {}
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    await close_work(signer)


async def test_free_slot_resubmit_still_lands(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    stored = await lost_send(funded_node, client)
    restarted = new_signer(client)

    result = await restarted.resubmit(request(1), stored)

    assert result.outcome is SendOutcome.ACCEPTED
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    await close_work(restarted)
