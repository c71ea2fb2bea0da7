"""NodeWalletSender against the sandbox node's wallet `send` with ids, over real HTTP."""

from __future__ import annotations

import pytest

from core.banano.address import BURN_ADDRESS
from core.banano.rpc import NodeClient
from core.banano.sender import NodeWalletSender, Sender, SendOutcome, SignedBlock
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.conftest import no_sleep
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    PAYOUT_RAW,
    PLAYER,
    START_BALANCE_RAW,
    SignedRecorder,
    request,
)

WALLET_ID = "sandbox-wallet-0001"


@pytest.fixture
def wallet_node(funded_node: SandboxBananoNode) -> SandboxBananoNode:
    funded_node.add_wallet_key(WALLET_ID, OPERATOR)
    return funded_node


@pytest.fixture
def sender(wallet_node: SandboxBananoNode, client: NodeClient) -> NodeWalletSender:
    return NodeWalletSender(client, WALLET_ID, OPERATOR.address, attempts=3, sleep=no_sleep)


async def test_send_pays_and_stores_hash(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    recorder = SignedRecorder(wallet_node)

    result = await sender.send(request(), recorder)

    assert result.outcome is SendOutcome.ACCEPTED
    assert [signed.block_hash for signed in recorder.stored] == [result.block_hash]
    assert recorder.stored[0].block_json == ""
    assert wallet_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_same_id_pays_once(wallet_node: SandboxBananoNode, sender: NodeWalletSender) -> None:
    recorder = SignedRecorder(wallet_node)

    first = await sender.send(request(), recorder)
    second = await sender.send(request(), recorder)

    assert second.block_hash == first.block_hash
    assert len(wallet_node.blocks_sent_to(PLAYER.address)) == 1
    assert wallet_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_lost_reply_retried_with_same_id(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    recorder = SignedRecorder(wallet_node)
    wallet_node.inject_fault("send", Fault.reply_lost_after_apply())

    result = await sender.send(request(), recorder)

    assert result.outcome is SendOutcome.ACCEPTED
    assert wallet_node.request_counts["send"] == 2
    assert len(wallet_node.blocks_sent_to(PLAYER.address)) == 1


async def test_all_replies_lost_then_resubmit(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    recorder = SignedRecorder(wallet_node)
    wallet_node.inject_fault("send", Fault.reply_lost_after_apply(), times=3)

    result = await sender.send(request(), recorder)

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.block_hash is None
    assert recorder.stored == []

    settled = await sender.resubmit(request(), None)

    assert settled.outcome is SendOutcome.ACCEPTED
    assert settled.block_hash == wallet_node.blocks_sent_to(PLAYER.address)[0].hash
    assert len(wallet_node.blocks_sent_to(PLAYER.address)) == 1


async def test_resubmit_finds_stored_hash(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    recorder = SignedRecorder(wallet_node)
    await sender.send(request(), recorder)
    sends_before = wallet_node.request_counts["send"]

    result = await sender.resubmit(request(), recorder.stored[0])

    assert result.outcome is SendOutcome.ACCEPTED
    assert result.block_hash == recorder.stored[0].block_hash
    assert wallet_node.request_counts["send"] == sends_before


async def test_resubmit_missing_hash_repeats_id(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    unknown = SignedBlock(block_hash="AB" * 32, block_json="")

    result = await sender.resubmit(request(), unknown)

    assert result.outcome is SendOutcome.ACCEPTED
    assert wallet_node.request_counts["send"] == 1
    assert len(wallet_node.blocks_sent_to(PLAYER.address)) == 1


async def test_http_500_retried(wallet_node: SandboxBananoNode, sender: NodeWalletSender) -> None:
    wallet_node.inject_fault("send", Fault.http_500(), times=2)

    result = await sender.send(request(), SignedRecorder(wallet_node))

    assert result.outcome is SendOutcome.ACCEPTED
    assert wallet_node.request_counts["send"] == 3


async def test_insufficient_balance_rejected(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    recorder = SignedRecorder(wallet_node)

    result = await sender.send(request(amount_raw=START_BALANCE_RAW + 1), recorder)

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason == "Insufficient balance"
    assert result.block_hash is None
    assert recorder.stored == []


@pytest.mark.parametrize("destination", [BURN_ADDRESS, OPERATOR.address])
async def test_bad_destination_not_sent(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender, destination: str
) -> None:
    recorder = SignedRecorder(wallet_node)

    result = await sender.send(request(destination=destination), recorder)
    again = await sender.resubmit(request(destination=destination), None)

    assert result.outcome is SendOutcome.REJECTED
    assert result.block_hash is None
    assert result.reason is not None
    assert again.outcome is SendOutcome.REJECTED
    assert recorder.stored == []
    assert wallet_node.request_counts["send"] == 0
    assert wallet_node.balance_of(OPERATOR.address) == START_BALANCE_RAW


async def test_unknown_wallet_rejected(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    sender = NodeWalletSender(client, "no-such-wallet", OPERATOR.address)

    result = await sender.send(request(), SignedRecorder(funded_node))

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason == "Wallet not found"


async def test_unknown_error_text_uncertain(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    wallet_node.inject_fault("send", Fault.error("Something new"))

    result = await sender.send(request(), SignedRecorder(wallet_node))

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.reason == "Something new"


async def test_invalid_amount_text_rejected(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    wallet_node.inject_fault("send", Fault.error("Invalid amount number"))

    result = await sender.send(request(), SignedRecorder(wallet_node))

    assert result.outcome is SendOutcome.REJECTED
    assert result.reason == "Invalid amount number"
    assert result.block_hash is None


async def test_error_generating_block_uncertain(
    wallet_node: SandboxBananoNode, sender: NodeWalletSender
) -> None:
    # The node stores the id with its block before it publishes it, and replies with this
    # text when publishing fails or times out. The block may still land, so the id decides.
    wallet_node.inject_fault(
        "send", Fault.raw_body('{"error": "Error generating block"}', apply_first=True)
    )

    result = await sender.send(request(), SignedRecorder(wallet_node))

    assert result.outcome is SendOutcome.UNCERTAIN
    assert result.reason == "Error generating block"
    assert wallet_node.request_counts["send"] == 1

    settled = await sender.resubmit(request(), None)

    assert settled.outcome is SendOutcome.ACCEPTED
    assert len(wallet_node.blocks_sent_to(PLAYER.address)) == 1


async def test_operator_balance(wallet_node: SandboxBananoNode, sender: NodeWalletSender) -> None:
    await sender.send(request(), SignedRecorder(wallet_node))

    assert await sender.operator_balance_raw() == START_BALANCE_RAW - PAYOUT_RAW


def test_repr_hides_wallet_id(sender: NodeWalletSender) -> None:
    assert WALLET_ID not in repr(sender)


def test_matches_sender_protocol(sender: NodeWalletSender) -> None:
    protocol_view: Sender = sender

    assert protocol_view.operator_address == OPERATOR.address
