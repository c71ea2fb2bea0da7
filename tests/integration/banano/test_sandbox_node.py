"""The sandbox node validates blocks like a node, over real HTTP with NodeClient."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from core.banano.blocks import ZERO_HASH, StateBlock, build_receive
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import (
    AccountNotFoundError,
    BadSignatureError,
    BalanceMismatchError,
    BlockNotFoundError,
    ControlDisabledError,
    ForkError,
    GapPreviousError,
    GapSourceError,
    InsufficientWorkError,
    InvalidSubtypeError,
    OldBlockError,
    SendRefusedError,
    UnknownNodeError,
    UnreceivableError,
)
from core.banano.work import is_valid_work
from core.sandbox.banano_node import SandboxBananoNode
from tests.integration.banano.helpers_banano import (
    OPERATOR,
    OTHER_PLAYER,
    PAYOUT_RAW,
    PLAYER,
    START_BALANCE_RAW,
    STRANGER,
    THRESHOLD,
    low_work,
    operator_send,
    worked,
)


async def test_valid_send_applied_and_confirmed(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    block = worked(operator_send(funded_node))

    block_hash = await client.process(block)

    assert block_hash == block.hash()
    assert funded_node.balance_of(OPERATOR.address) == START_BALANCE_RAW - PAYOUT_RAW
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW
    info = await client.block_info(block_hash)
    assert info.confirmed is True
    assert info.subtype == "send"
    assert info.amount_raw == PAYOUT_RAW
    assert info.block == block.with_work(block.work or "")


async def test_bad_signature_rejected(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    block = worked(operator_send(funded_node, key=STRANGER))

    with pytest.raises(BadSignatureError):
        await client.process(block)
    assert funded_node.total_sent_to(PLAYER.address) == 0


async def test_low_work_rejected(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    block = low_work(operator_send(funded_node))

    with pytest.raises(InsufficientWorkError):
        await client.process(block)
    assert funded_node.total_sent_to(PLAYER.address) == 0


async def test_known_previous_not_frontier_is_fork(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    old_frontier = funded_node.frontier_of(OPERATOR.address)
    await client.process(worked(operator_send(funded_node)))
    fork = worked(
        operator_send(
            funded_node, 2 * PAYOUT_RAW, previous=old_frontier, balance_before_raw=START_BALANCE_RAW
        )
    )

    with pytest.raises(ForkError):
        await client.process(fork)
    assert funded_node.total_sent_to(PLAYER.address) == PAYOUT_RAW


async def test_unknown_previous_is_gap(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    block = worked(operator_send(funded_node, previous="AB" * 32))

    with pytest.raises(GapPreviousError):
        await client.process(block)


async def test_open_with_previous_is_gap(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    send_hash = funded_node.fund(STRANGER.address, PAYOUT_RAW)
    block = worked(
        build_receive(STRANGER, "CD" * 32, STRANGER.address, 0, PAYOUT_RAW, send_hash).signed(
            STRANGER
        )
    )

    with pytest.raises(GapPreviousError):
        await client.process(block)


async def test_receive_wrong_amount_is_mismatch(
    node: SandboxBananoNode, client: NodeClient
) -> None:
    send_hash = node.fund(STRANGER.address, PAYOUT_RAW)
    block = worked(
        build_receive(STRANGER, ZERO_HASH, STRANGER.address, 0, PAYOUT_RAW + 1, send_hash).signed(
            STRANGER
        )
    )

    with pytest.raises(BalanceMismatchError):
        await client.process(block)
    assert node.balance_of(STRANGER.address) == 0


async def test_balance_rise_without_link_is_mismatch(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    frontier = funded_node.frontier_of(OPERATOR.address)
    assert frontier is not None
    block = StateBlock(
        account=OPERATOR.address,
        previous=frontier,
        representative=OPERATOR.address,
        balance_raw=START_BALANCE_RAW + 1,
        link=ZERO_HASH,
    ).signed(OPERATOR)

    with pytest.raises(BalanceMismatchError):
        await client.process(worked(block))


async def test_send_subtype_with_rising_balance(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    block = worked(operator_send(funded_node))
    rising = StateBlock(
        account=block.account,
        previous=block.previous,
        representative=block.representative,
        balance_raw=START_BALANCE_RAW + 1,
        link=block.link,
        subtype="send",
    ).signed(OPERATOR)

    with pytest.raises(InvalidSubtypeError):
        await client.process(worked(rising))


async def test_receive_of_unknown_source_is_gap_source(
    node: SandboxBananoNode, client: NodeClient
) -> None:
    block = worked(
        build_receive(STRANGER, ZERO_HASH, STRANGER.address, 0, PAYOUT_RAW, "EF" * 32).signed(
            STRANGER
        )
    )

    with pytest.raises(GapSourceError):
        await client.process(block)


async def test_receive_of_other_accounts_send(node: SandboxBananoNode, client: NodeClient) -> None:
    send_hash = node.fund(PLAYER.address, PAYOUT_RAW)
    block = worked(
        build_receive(STRANGER, ZERO_HASH, STRANGER.address, 0, PAYOUT_RAW, send_hash).signed(
            STRANGER
        )
    )

    with pytest.raises(UnreceivableError):
        await client.process(block)


async def test_receive_opens_account(node: SandboxBananoNode, client: NodeClient) -> None:
    send_hash = node.fund(STRANGER.address, PAYOUT_RAW)
    block = worked(
        build_receive(STRANGER, ZERO_HASH, STRANGER.address, 0, PAYOUT_RAW, send_hash).signed(
            STRANGER
        )
    )

    await client.process(block)

    assert node.balance_of(STRANGER.address) == PAYOUT_RAW
    assert node.receivable_of(STRANGER.address) == {}
    with pytest.raises(UnreceivableError):
        await client.process(
            worked(
                build_receive(
                    STRANGER, block.hash(), STRANGER.address, PAYOUT_RAW, PAYOUT_RAW, send_hash
                ).signed(STRANGER)
            )
        )


async def test_duplicate_is_old_block(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    block = worked(operator_send(funded_node))
    await client.process(block)

    with pytest.raises(OldBlockError):
        await client.process(block)
    assert len(funded_node.blocks_sent_to(PLAYER.address)) == 1


async def test_subtype_check_first_mode(client: NodeClient) -> None:
    strict = SandboxBananoNode(work_threshold=THRESHOLD, subtype_check_first=True)
    url = await strict.start()
    try:
        strict.fund(OPERATOR.address, START_BALANCE_RAW, key=OPERATOR)
        async with NodeClient(url) as strict_client:
            block = worked(operator_send(strict))
            await strict_client.process(block)

            with pytest.raises(InvalidSubtypeError):
                await strict_client.process(block)
            # Without a subtype the node skips that check and finds the duplicate.
            with pytest.raises(OldBlockError):
                await strict_client.process(dataclasses.replace(block, subtype=None))
    finally:
        await strict.stop()


async def test_missing_work_is_invalid_block(
    funded_node: SandboxBananoNode, client: NodeClient
) -> None:
    with pytest.raises(UnknownNodeError) as caught:
        await client.process(operator_send(funded_node))
    assert caught.value.node_text == "Block is invalid"


async def test_do_work_adds_work(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    block = operator_send(funded_node)

    block_hash = await client.process(block, do_work=True)

    stored = (await client.block_info(block_hash)).block
    assert stored.work is not None
    assert is_valid_work(block.previous, stored.work, THRESHOLD)


async def test_confirmation_waits_for_delay(client: NodeClient) -> None:
    # The delay is far longer than the test, so nothing can be confirmed by accident.
    slow = SandboxBananoNode(work_threshold=THRESHOLD, confirmation_delay=600.0)
    url = await slow.start()
    try:
        slow.fund(OPERATOR.address, START_BALANCE_RAW, key=OPERATOR)
        async with NodeClient(url) as slow_client:
            block_hash = await slow_client.process(worked(operator_send(slow)))

            assert (await slow_client.block_info(block_hash)).confirmed is False
            info = await slow_client.account_info(OPERATOR.address)
            assert info.balance_raw == START_BALANCE_RAW - PAYOUT_RAW
            assert info.confirmed_balance_raw == START_BALANCE_RAW
            assert info.confirmed_frontier != block_hash
    finally:
        await slow.stop()


async def test_confirmation_after_delay(client: NodeClient) -> None:
    delayed = SandboxBananoNode(work_threshold=THRESHOLD, confirmation_delay=0.05)
    url = await delayed.start()
    try:
        delayed.fund(OPERATOR.address, START_BALANCE_RAW, key=OPERATOR)
        async with NodeClient(url) as delayed_client:
            block_hash = await delayed_client.process(worked(operator_send(delayed)))

            # Wait up to a minute: the timer may run late on a busy host.
            for _ in range(1200):
                if (await delayed_client.block_info(block_hash)).confirmed:
                    break
                await asyncio.sleep(0.05)
            info = await delayed_client.account_info(OPERATOR.address)
            assert info.confirmed_frontier == block_hash
            assert info.confirmed_balance_raw == START_BALANCE_RAW - PAYOUT_RAW
    finally:
        await delayed.stop()


async def test_manual_confirmation(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    funded_node.set_auto_confirm(False)
    first = await client.process(worked(operator_send(funded_node)))
    second = await client.process(worked(operator_send(funded_node)))

    assert (await client.block_info(first)).confirmed is False
    funded_node.confirm(second)
    assert (await client.block_info(first)).confirmed is True
    assert (await client.block_info(second)).confirmed is True


async def test_receivable_lists_confirmed_sends(
    node: SandboxBananoNode, client: NodeClient
) -> None:
    first = node.fund(PLAYER.address, PAYOUT_RAW)
    second = node.fund(PLAYER.address, 5)

    assert await client.receivable(PLAYER.address, 10) == {first: PAYOUT_RAW, second: 5}
    assert await client.receivable(PLAYER.address, 10, threshold_raw=6) == {first: PAYOUT_RAW}
    assert await client.receivable(OTHER_PLAYER.address, 10) == {}
    balance = await client.account_balance(PLAYER.address)
    assert balance.balance_raw == 0
    assert balance.receivable_raw == PAYOUT_RAW + 5


async def test_account_history_pages(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    hashes = [await client.process(worked(operator_send(funded_node))) for _ in range(3)]

    newest = await client.account_history(OPERATOR.address, 2)
    older = await client.account_history(OPERATOR.address, 5, head=newest[-1].previous)

    assert [entry.hash for entry in newest] == [hashes[2], hashes[1]]
    assert [entry.hash for entry in older][:1] == [hashes[0]]
    assert older[-1].subtype == "open"
    assert newest[0].counterparty == PLAYER.address
    assert newest[0].amount_raw == PAYOUT_RAW
    assert newest[0].balance_raw == START_BALANCE_RAW - 3 * PAYOUT_RAW


async def test_unopened_account_reads(node: SandboxBananoNode, client: NodeClient) -> None:
    with pytest.raises(AccountNotFoundError):
        await client.account_info(STRANGER.address)
    assert await client.account_history(STRANGER.address, 5) == []
    with pytest.raises(BlockNotFoundError):
        await client.block_info("AB" * 32)


async def test_work_generate_meets_threshold(node: SandboxBananoNode, client: NodeClient) -> None:
    root = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"

    work = await client.work_generate(root, f"{THRESHOLD:016x}")

    assert is_valid_work(root, work, THRESHOLD)


async def test_control_disabled_node(client: NodeClient) -> None:
    public = SandboxBananoNode(work_threshold=THRESHOLD, enable_control=False)
    url = await public.start()
    try:
        async with NodeClient(url) as public_client:
            with pytest.raises(ControlDisabledError):
                await public_client.work_generate("AB" * 32, f"{THRESHOLD:016x}")
            with pytest.raises(ControlDisabledError):
                await public_client.send("w", OPERATOR.address, PLAYER.address, 1, "id")
    finally:
        await public.stop()


async def test_wallet_send_id_pays_once(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    funded_node.add_wallet_key("wallet-1", OPERATOR)

    first = await client.send("wallet-1", OPERATOR.address, PLAYER.address, PAYOUT_RAW, "p-1")
    again = await client.send("wallet-1", OPERATOR.address, PLAYER.address, PAYOUT_RAW, "p-1")
    other = await client.send("wallet-1", OPERATOR.address, PLAYER.address, PAYOUT_RAW, "p-2")

    assert again == first
    assert other != first
    assert funded_node.total_sent_to(PLAYER.address) == 2 * PAYOUT_RAW


async def test_wallet_send_refusals(funded_node: SandboxBananoNode, client: NodeClient) -> None:
    funded_node.add_wallet_key("wallet-1", OPERATOR)

    with pytest.raises(SendRefusedError, match="Insufficient balance"):
        await client.send(
            "wallet-1", OPERATOR.address, PLAYER.address, START_BALANCE_RAW + 1, "p-1"
        )
    with pytest.raises(SendRefusedError, match="Wallet not found"):
        await client.send("wallet-2", OPERATOR.address, PLAYER.address, 1, "p-2")
    with pytest.raises(SendRefusedError, match="Account not found in wallet"):
        await client.send("wallet-1", PLAYER.address, OPERATOR.address, 1, "p-3")


async def test_requests_counted_by_action(node: SandboxBananoNode, client: NodeClient) -> None:
    await client.account_balance(PLAYER.address)
    await client.account_balance(PLAYER.address)
    await client.receivable(PLAYER.address, 1)

    assert node.request_counts["account_balance"] == 2
    assert node.request_counts["receivable"] == 1


async def test_unparsable_request(node: SandboxBananoNode) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(node.base_url, content=b"{not json")
        unknown = await http.post(node.base_url, json={"action": "bootstrap_any"})

    assert reply.json() == {"error": "Unable to parse JSON"}
    assert unknown.json() == {"error": "Unknown command"}


async def test_start_rejects_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await SandboxBananoNode().start(host="0.0.0.0")  # noqa: S104
