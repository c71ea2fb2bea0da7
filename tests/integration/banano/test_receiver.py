"""Receiver against the sandbox node: receiving donations once, alongside the local signer."""

from __future__ import annotations

import asyncio

from core.banano.receiver import Receiver
from core.banano.rpc import NodeClient
from core.banano.sender import LocalSigner, OperatorAccountLock, SendOutcome
from core.banano.work_providers import NodeWorkProvider, WorkCache, WorkProvider
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    PAYOUT_RAW,
    PLAYER,
    START_BALANCE_RAW,
    THRESHOLD,
    ReceivedRecorder,
    SignedRecorder,
    request,
)

DONATION_RAW = 50 * 10**29


def make_receiver(
    client: NodeClient,
    recorder: ReceivedRecorder,
    *,
    work_provider: WorkProvider | WorkCache | None = None,
    lock: OperatorAccountLock | None = None,
    min_amount_raw: int = 1,
) -> Receiver:
    return Receiver(
        client,
        OPERATOR,
        work_provider or NodeWorkProvider(client),
        recorder,
        threshold=THRESHOLD,
        lock=lock,
        min_amount_raw=min_amount_raw,
        retry_delay_seconds=0.0,
    )


async def test_opens_account_and_records_once(node: SandboxBananoNode, client: NodeClient) -> None:
    send_hash = node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder)

    first = await receiver.receive_pending()
    second = await receiver.receive_pending()

    assert first.received_count == 1
    assert first.received_raw == DONATION_RAW
    assert first.newly_recorded_count == 1
    assert second.received_count == 0
    assert recorder.recorded == {send_hash: DONATION_RAW}
    assert node.balance_of(OPERATOR.address) == DONATION_RAW
    assert node.receivable_of(OPERATOR.address) == {}


async def test_two_receivers_record_once(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    first_hash = funded_node.fund(OPERATOR.address, DONATION_RAW)
    second_hash = funded_node.fund(OPERATOR.address, 7)
    recorder = ReceivedRecorder()

    await make_receiver(client, recorder).receive_pending()
    again = await make_receiver(client, recorder).receive_pending()

    assert again.received_count == 0
    assert recorder.recorded == {first_hash: DONATION_RAW, second_hash: 7}
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW + DONATION_RAW + 7


async def test_below_minimum_left_alone(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    funded_node.fund(OPERATOR.address, 5)
    recorder = ReceivedRecorder()

    summary = await make_receiver(client, recorder, min_amount_raw=10).receive_pending()

    assert summary.received_count == 0
    assert len(funded_node.receivable_of(OPERATOR.address)) == 1


async def test_lost_reply_recorded_next_run(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    send_hash = funded_node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder)
    funded_node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)

    first = await receiver.receive_pending()
    second = await receiver.receive_pending()

    assert first.stopped_reason == "node unavailable"
    assert first.received_count == 0
    assert second.newly_recorded_count == 1
    assert recorder.recorded == {send_hash: DONATION_RAW}
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW + DONATION_RAW


async def test_rejected_receive_stops_run(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    funded_node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    funded_node.inject_fault("process", Fault.error("Fork"))

    summary = await make_receiver(client, recorder).receive_pending()

    assert summary.stopped_reason == "Fork"
    assert recorder.recorded == {}


async def test_shares_lock_with_signer(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    work_cache = WorkCache(NodeWorkProvider(client), THRESHOLD)
    signer = LocalSigner(client, OPERATOR, None, work_cache, THRESHOLD)
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder, work_provider=work_cache, lock=signer.lock)
    funded_node.fund(OPERATOR.address, DONATION_RAW)
    funded_node.fund(OPERATOR.address, DONATION_RAW)
    signed = SignedRecorder(funded_node)

    results = await asyncio.gather(
        signer.send(request(1), signed),
        receiver.receive_pending(),
        signer.send(request(2), signed),
    )
    await work_cache.close()

    assert results[0].outcome is SendOutcome.ACCEPTED
    assert results[2].outcome is SendOutcome.ACCEPTED
    assert len(recorder.recorded) == 2
    assert funded_node.total_sent_to(PLAYER.address) == 2 * PAYOUT_RAW
    assert funded_node.balance_of(OPERATOR.address) == (
        START_BALANCE_RAW + 2 * DONATION_RAW - 2 * PAYOUT_RAW
    )


async def test_in_doubt_send_blocks_receiving(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    signer = LocalSigner(client, OPERATOR, None, NodeWorkProvider(client), THRESHOLD)
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder, lock=signer.lock)
    funded_node.fund(OPERATOR.address, DONATION_RAW)
    funded_node.inject_fault("process", Fault.http_500(), times=4)
    assert signer.work_cache is not None

    sent = await signer.send(request(), SignedRecorder(funded_node))
    summary = await receiver.receive_pending()
    await signer.work_cache.close()

    assert sent.outcome is SendOutcome.UNCERTAIN
    assert summary.received_count == 0
    assert summary.stopped_reason is not None
    assert recorder.recorded == {}
