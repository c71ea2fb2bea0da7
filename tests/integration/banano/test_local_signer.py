"""LocalSigner against the sandbox node over real HTTP: sends, faults and resubmission."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from core.banano.address import BURN_ADDRESS
from core.banano.blocks import StateBlock
from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.sender import LocalSigner, Sender, SendOutcome, SignedBlock
from core.banano.work import is_valid_work, work_root, work_value
from core.banano.work_providers import DoWorkProvider, NodeWorkProvider, WorkProvider
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.conftest import no_sleep
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    OTHER_PLAYER,
    PAYOUT_RAW,
    PLAYER,
    START_BALANCE_RAW,
    STRANGER,
    THRESHOLD,
    SignedRecorder,
    request,
)


class CountingProvider:
    """Passes work requests on and records the roots asked for."""

    def __init__(self, inner: WorkProvider) -> None:
        self.inner = inner
        self.roots: list[str] = []

    async def generate(self, root_hex: str, threshold: int) -> str:
        self.roots.append(root_hex)
        return await self.inner.generate(root_hex, threshold)


@pytest.fixture
async def short_timeout_client(node: SandboxBananoNode) -> AsyncIterator[NodeClient]:
    async with aiohttp.ClientSession() as session:
        yield NodeClient(
            node.base_url,
            session=session,
            timeout_seconds=2.0,
            read_retry=RetryPolicy(attempts=2, base_delay_seconds=0.0),
            sleep=no_sleep,
        )


async def test_send_accepted_and_confirmed(
    funded_node: SandboxBananoNode, signer: LocalSigner, client: NodeClient
) -> None:
    recorder = SignedRecorder(funded_node)

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.ACCEPTED
    assert result.block_hash == recorder.stored[0].block_hash
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW - PAYOUT_RAW
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    assert (await client.block_info(result.block_hash)).confirmed is True
    assert await signer.operator_balance_raw() == START_BALANCE_RAW - PAYOUT_RAW


async def test_block_stored_before_process(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    process_calls_before = funded_node.request_counts["process"]

    await signer.send(request(), recorder)

    assert recorder.in_ledger_when_stored == [False]
    assert recorder.process_calls_when_stored == [process_calls_before]
    assert funded_node.request_counts["process"] == process_calls_before + 1


async def test_stored_json_is_the_ledger_block(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)

    await signer.send(request(), recorder)

    stored = StateBlock.from_json_text(recorder.stored[0].block_json)
    entry = funded_node.block(recorder.stored[0].block_hash)
    assert entry is not None
    assert stored == entry.block
    assert stored.verify_signature()


async def test_sends_chain_on_previous_hash(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)

    results = [await signer.send(request(payout_id), recorder) for payout_id in range(1, 6)]

    hashes = [result.block_hash for result in results]
    assert all(result.outcome is SendOutcome.ACCEPTED for result in results)
    for previous_hash, block_hash in itertools.pairwise(hashes):
        entry = funded_node.block(str(block_hash))
        assert entry is not None
        assert entry.block.previous == previous_hash
    assert funded_node.total_sent_to(PLAYER.address) == 5 * PAYOUT_RAW


async def test_concurrent_sends_are_serialized(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)

    results = await asyncio.gather(
        *(signer.send(request(payout_id), recorder) for payout_id in range(1, 11))
    )

    assert [result.outcome for result in results] == [SendOutcome.ACCEPTED] * 10
    assert funded_node.total_sent_to(PLAYER.address) == 10 * PAYOUT_RAW
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW - 10 * PAYOUT_RAW


async def test_work_precomputed_for_next_root(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    provider = CountingProvider(NodeWorkProvider(client))
    signer = LocalSigner(client, OPERATOR, None, provider, THRESHOLD)
    recorder = SignedRecorder(funded_node)
    first_frontier = funded_node.frontier_of(OPERATOR.address)

    await signer.precompute_next_work()
    first = await signer.send(request(1), recorder)
    second = await signer.send(request(2), recorder)
    await asyncio.sleep(0)
    assert signer.work_cache is not None
    await signer.work_cache.close()

    # One computation per root, started before the send that needed it.
    assert provider.roots[:3] == [first_frontier, first.block_hash, second.block_hash]
    assert len(provider.roots) == 3


async def test_resubmit_is_harmless(funded_node: SandboxBananoNode, signer: LocalSigner) -> None:
    recorder = SignedRecorder(funded_node)
    sent = await signer.send(request(), recorder)

    again = await signer.resubmit(request(), recorder.stored[0])

    assert again.outcome is SendOutcome.ACCEPTED
    assert again.block_hash == sent.block_hash
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_lost_reply_uncertain_then_resubmit(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.reply_lost_after_apply(), times=2)

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.block_hash == recorder.stored[0].block_hash
    assert recorder.in_ledger_when_stored == [False]
    # The block landed although the reply was lost.
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1

    settled = await signer.resubmit(request(), recorder.stored[0])

    assert settled.outcome is SendOutcome.ACCEPTED
    assert settled.block_hash == result.block_hash
    assert len(recorder.stored) == 1
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_lost_reply_retried_within_send(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.reply_lost_after_apply())

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.ACCEPTED
    assert funded_node.request_counts["process"] == 2
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.http_500(), "node unavailable"),
        (Fault.malformed_json(), "node unavailable"),
        (Fault.reply_lost_after_apply(), "node unavailable"),
    ],
)
async def test_transport_faults_uncertain(
    funded_node: SandboxBananoNode, signer: LocalSigner, fault: Fault, reason: str
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", fault, times=2)

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.reason == reason
    assert result.block_hash == recorder.stored[0].block_hash


async def test_timeout_uncertain_then_lands(
    funded_node: SandboxBananoNode, short_timeout_client: NodeClient
) -> None:
    signer = LocalSigner(
        short_timeout_client,
        OPERATOR,
        None,
        NodeWorkProvider(short_timeout_client),
        THRESHOLD,
        submit_attempts=1,
    )
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.delay(3.0))

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.reason == "timeout"
    assert result.block_hash == recorder.stored[0].block_hash
    # The slow node applies the block after the client gave up; resubmitting finds it. Had
    # the resubmission come first, it would land the block itself, with the same result.
    for _ in range(3000):
        if funded_node.block(recorder.stored[0].block_hash) is not None:
            break
        await asyncio.sleep(0.01)
    settled = await signer.resubmit(request(), recorder.stored[0])
    assert settled.outcome is SendOutcome.ACCEPTED
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1
    assert signer.work_cache is not None
    await signer.work_cache.close()


@pytest.mark.parametrize(
    "node_text",
    [
        "Fork",
        "Gap previous block",
        "Bad signature",
        "Block work is less than threshold",
        "Block work is insufficient",
        "Balance and amount delta do not match",
    ],
)
async def test_rejections_carry_reason(
    funded_node: SandboxBananoNode, signer: LocalSigner, node_text: str
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.error(node_text))

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason == node_text
    assert result.block_hash == recorder.stored[0].block_hash
    assert funded_node.total_sent_to(PLAYER.address) == 0


async def test_old_block_reply_is_accepted(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    funded_node.inject_fault("process", Fault.error("Old block"))

    result = await signer.send(request(), SignedRecorder(funded_node))

    assert result.outcome is SendOutcome.ACCEPTED


async def test_unknown_error_text_uncertain(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.error("Something new"))

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.reason == "Something new"
    assert result.block_hash == recorder.stored[0].block_hash


async def test_subtype_answer_on_resubmit_found_by_hash(client: NodeClient) -> None:
    strict = SandboxBananoNode(work_threshold=THRESHOLD, subtype_check_first=True)
    url = await strict.start()
    try:
        strict.fund(OPERATOR.address, START_BALANCE_RAW, key=OPERATOR)
        async with NodeClient(url) as strict_client:
            signer = LocalSigner(
                strict_client, OPERATOR, None, NodeWorkProvider(strict_client), THRESHOLD
            )
            recorder = SignedRecorder(strict)
            await signer.send(request(), recorder)

            again = await signer.resubmit(request(), recorder.stored[0])

            assert again.outcome is SendOutcome.ACCEPTED
            assert strict.request_counts["block_info"] == 1
            assert signer.work_cache is not None
            await signer.work_cache.close()
    finally:
        await strict.stop()


async def test_in_doubt_block_settled_before_next(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.http_500(), times=2)
    first = await signer.send(request(1), recorder)
    assert first.outcome is SendOutcome.UNCERTAIN
    assert funded_node.total_sent_to(PLAYER.address) == 0

    second = await signer.send(request(2, destination=OTHER_PLAYER.address), recorder)

    # The first block was submitted again before the second was built on top of it.
    assert second.outcome is SendOutcome.ACCEPTED
    second_entry = funded_node.block(str(second.block_hash))
    assert second_entry is not None
    assert second_entry.block.previous == first.block_hash
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    assert funded_node.total_sent_to(OTHER_PLAYER.address) == PAYOUT_RAW


async def test_unsettled_in_doubt_blocks_new_sends(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.http_500(), times=4)
    await signer.send(request(1), recorder)

    second = await signer.send(request(2), recorder)

    assert second.outcome is SendOutcome.REJECTED
    assert second.block_hash is None
    assert len(recorder.stored) == 1
    assert funded_node.total_sent_to(PLAYER.address) == 0


async def test_insufficient_balance_not_signed(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)

    result = await signer.send(request(amount_raw=START_BALANCE_RAW + 1), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None
    assert recorder.stored == []
    assert funded_node.request_counts["process"] == 0


@pytest.mark.parametrize("destination", [BURN_ADDRESS, OPERATOR.address, " " + PLAYER.address[:-1]])
async def test_bad_destination_not_signed(
    funded_node: SandboxBananoNode, signer: LocalSigner, destination: str
) -> None:
    recorder = SignedRecorder(funded_node)

    result = await signer.send(request(destination=destination), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None
    assert result.reason is not None
    assert recorder.stored == []
    assert funded_node.request_counts["process"] == 0
    assert funded_node.request_counts["account_info"] == 0
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW


async def test_unopened_operator_not_signed(node: SandboxBananoNode, client: NodeClient) -> None:
    signer = LocalSigner(client, STRANGER, None, NodeWorkProvider(client), THRESHOLD)
    recorder = SignedRecorder(node)

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None
    assert recorder.stored == []
    assert await signer.operator_balance_raw() == 0


async def test_unreachable_node_not_signed(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("account_info", Fault.http_500(), times=3)

    result = await signer.send(request(), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None
    assert recorder.stored == []


async def test_failing_store_stops_submission(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    async def failing_store(_signed: SignedBlock) -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError, match="database is down"):
        await signer.send(request(), failing_store)

    assert funded_node.request_counts["process"] == 0
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW


async def test_operator_balance_is_confirmed(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    funded_node.set_auto_confirm(False)

    await signer.send(request(), SignedRecorder(funded_node))

    assert await signer.operator_balance_raw() == START_BALANCE_RAW
    funded_node.confirm_all()
    assert await signer.operator_balance_raw() == START_BALANCE_RAW - PAYOUT_RAW


async def test_do_work_provider(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    signer = LocalSigner(client, OPERATOR, None, DoWorkProvider(), THRESHOLD)
    recorder = SignedRecorder(funded_node)

    result = await signer.send(request(), recorder)
    again = await signer.resubmit(request(), recorder.stored[0])

    assert result.outcome is SendOutcome.ACCEPTED
    assert again.outcome is SendOutcome.ACCEPTED
    assert json.loads(recorder.stored[0].block_json)["work"] is None
    entry = funded_node.block(str(result.block_hash))
    assert entry is not None
    assert entry.block.work is not None
    assert is_valid_work(work_root(entry.block), entry.block.work, THRESHOLD)
    assert funded_node.request_counts["work_generate"] == 0


async def test_resubmit_without_stored_block(signer: LocalSigner) -> None:
    result = await signer.resubmit(request(), None)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None


async def test_resubmit_with_mismatched_hash(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    await signer.send(request(), recorder)
    tampered = SignedBlock(block_hash="AB" * 32, block_json=recorder.stored[0].block_json)
    process_calls = funded_node.request_counts["process"]

    result = await signer.resubmit(request(), tampered)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.block_hash == "AB" * 32
    assert funded_node.request_counts["process"] == process_calls


def _corrupted_rows(block_json: str) -> list[str]:
    stored = json.loads(block_json)
    return [
        "not json",
        "",
        "[" * 100_000 + "]" * 100_000,
        json.dumps({**stored, "subtype": ["send"]}),
        json.dumps({**stored, "subtype": {"send": True}}),
        json.dumps({**stored, "balance": None}),
        block_json.replace('"balance":"', '"balance":1' + "0" * 5000 + ',"x":"'),
    ]


async def test_resubmit_unreadable_row_uncertain(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    # An unreadable row cannot be resubmitted, and the block it held may have landed, so the
    # payout waits for reconciliation by hash. A new block is never built for it.
    recorder = SignedRecorder(funded_node)
    funded_node.inject_fault("process", Fault.http_500(), times=2)
    await signer.send(request(), recorder)
    signer.lock.in_doubt.clear()
    stored = recorder.stored[0]
    process_calls = funded_node.request_counts["process"]

    for row in _corrupted_rows(stored.block_json):
        result = await signer.resubmit(request(), SignedBlock(stored.block_hash, row))

        assert result.outcome is SendOutcome.UNCERTAIN
        assert result.block_hash == stored.block_hash
        assert result.reason == "stored block unreadable"
    assert funded_node.request_counts["process"] == process_calls
    assert signer.lock.in_doubt == {}
    assert len(recorder.stored) == 1


async def test_logs_hold_no_secrets(funded_node: SandboxBananoNode, signer: LocalSigner) -> None:
    recorder = SignedRecorder(funded_node)

    with capture_logs() as logs:
        await signer.send(request(), recorder)
        await signer.resubmit(request(), recorder.stored[0])

    logged = repr(logs)
    signature = json.loads(recorder.stored[0].block_json)["signature"]
    assert OPERATOR.private_key.hex() not in logged.lower()
    assert signature not in logged
    assert recorder.stored[0].block_json not in logged
    assert recorder.stored[0].block_hash in logged
    assert "private_key" not in repr(signer)


class LowWorkProvider:
    """Returns work that passes threshold 0 but not the node's threshold."""

    async def generate(self, root_hex: str, threshold: int) -> str:
        nonce = 0
        while work_value(root_hex, f"{nonce:016x}") >= THRESHOLD:
            nonce += 1
        return f"{nonce:016x}"


async def test_node_rejects_low_work(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    lenient = LocalSigner(client, OPERATOR, None, LowWorkProvider(), 0)
    recorder = SignedRecorder(funded_node)

    result = await lenient.send(request(), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason == "Block work is less than threshold"
    assert result.block_hash == recorder.stored[0].block_hash
    assert funded_node.total_sent_to(PLAYER.address) == 0


async def test_cancelled_send_stays_in_doubt(
    funded_node: SandboxBananoNode, signer: LocalSigner
) -> None:
    recorder = SignedRecorder(funded_node)
    # The node keeps the request waiting until it stops, so the cancel always comes first.
    funded_node.inject_fault("process", Fault.delay(600.0))
    task = asyncio.create_task(signer.send(request(1), recorder))
    for _ in range(3000):
        if funded_node.request_counts["process"] == 1:
            break
        await asyncio.sleep(0.01)
    assert funded_node.request_counts["process"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    second = await signer.send(request(2, destination=OTHER_PLAYER.address), recorder)

    # The cancelled block was submitted again first, and the second send follows it.
    assert second.outcome is SendOutcome.ACCEPTED
    second_entry = funded_node.block(str(second.block_hash))
    assert second_entry is not None
    assert second_entry.block.previous == recorder.stored[0].block_hash
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


def test_signers_match_protocol(signer: LocalSigner) -> None:
    sender: Sender = signer

    assert sender.operator_address == OPERATOR.address
