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
    history_page_size: int = 100,
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
        history_page_size=history_page_size,
    )


def received_in_ledger(node: SandboxBananoNode) -> dict[str, int]:
    """Return {send hash: amount_raw} of every receive in the operator's chain."""
    account = node.ledger.accounts[OPERATOR.address]
    entries = [node.ledger.blocks[block_hash] for block_hash in account.chain]
    return {
        entry.block.link: entry.amount_raw
        for entry in entries
        if entry.subtype in ("receive", "open")
    }


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
    funding = received_in_ledger(funded_node)
    first_hash = funded_node.fund(OPERATOR.address, DONATION_RAW)
    second_hash = funded_node.fund(OPERATOR.address, 7)
    recorder = ReceivedRecorder()

    await make_receiver(client, recorder).receive_pending()
    again = await make_receiver(client, recorder).receive_pending()

    assert again.received_count == 0
    assert again.newly_recorded_count == 0
    assert recorder.recorded == {**funding, first_hash: DONATION_RAW, second_hash: 7}
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
    funding = received_in_ledger(funded_node)
    send_hash = funded_node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder)
    funded_node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)

    first = await receiver.receive_pending()
    second = await receiver.receive_pending()

    assert first.stopped_reason == "node unavailable"
    assert first.received_count == 0
    assert second.newly_recorded_count == 1
    assert recorder.recorded == {**funding, send_hash: DONATION_RAW}
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW + DONATION_RAW


async def test_restarted_receiver_records_lost_receive(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    send_hash = funded_node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    already_received = received_in_ledger(funded_node)
    recorder.recorded.update(already_received)
    funded_node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)
    first = await make_receiver(client, recorder).receive_pending()
    assert first.stopped_reason == "node unavailable"
    assert send_hash not in recorder.recorded

    # A new process: new lock, nothing in memory, and the send is no longer receivable.
    restarted = make_receiver(client, recorder)
    summary = await restarted.receive_pending()

    assert summary.newly_recorded_count == 1
    assert recorder.recorded == {**already_received, send_hash: DONATION_RAW}
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW + DONATION_RAW


async def test_history_scan_records_each_once(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder)

    first = await receiver.receive_pending()
    calls_after_first = recorder.calls
    second = await receiver.receive_pending()

    # The funding receive was made by another wallet, and the history shows it.
    assert recorder.recorded == received_in_ledger(funded_node)
    assert first.newly_recorded_count == 1
    assert second.newly_recorded_count == 0
    assert recorder.calls == calls_after_first


async def test_history_scan_reads_new_blocks_only(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    recorder = ReceivedRecorder()
    receiver = make_receiver(client, recorder, history_page_size=2)
    await receiver.receive_pending()
    funded_node.fund(OPERATOR.address, DONATION_RAW, key=OPERATOR)
    history_reads = funded_node.request_counts["account_history"]

    summary = await receiver.receive_pending()

    assert summary.newly_recorded_count == 1
    assert recorder.recorded == received_in_ledger(funded_node)
    # One page from the new frontier reaches the frontier of the last scan.
    assert funded_node.request_counts["account_history"] == history_reads + 1


async def test_history_scan_pages_back_to_open(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    for amount_raw in range(1, 6):
        funded_node.fund(OPERATOR.address, amount_raw, key=OPERATOR)
    recorder = ReceivedRecorder()

    summary = await make_receiver(client, recorder, history_page_size=2).receive_pending()

    assert summary.newly_recorded_count == 6
    assert recorder.recorded == received_in_ledger(funded_node)


async def test_rejected_receive_stops_run(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    funding = received_in_ledger(funded_node)
    funded_node.fund(OPERATOR.address, DONATION_RAW)
    recorder = ReceivedRecorder()
    funded_node.inject_fault("process", Fault.error("Fork"))

    summary = await make_receiver(client, recorder).receive_pending()

    assert summary.stopped_reason == "Fork"
    assert recorder.recorded == funding


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
    # The two donations and the funding receive, which the history shows.
    assert recorder.recorded == received_in_ledger(funded_node)
    assert len(recorder.recorded) == 3
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
