"""NodeClient against scripted replies over loopback HTTP: parsing, error mapping and retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.banano.blocks import StateBlock
from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.rpc_errors import (
    AccountNotFoundError,
    BlockNotFoundError,
    ControlDisabledError,
    ForkError,
    NodeTimeoutError,
    NodeUnavailableError,
    OldBlockError,
    UnknownNodeError,
)
from tests.unit.banano_rpc.helpers_rpc import Reply, ScriptedNode

Loader = Callable[[str], dict[str, Any]]

ACCOUNT = "ban_1qato4k7z3spc8gq1zyd8xeqfbzsoxwo36a45ozbrxcatut7up8ohyardu1z"
BLOCK_HASH = "E2FB233EF4554077A7BF1AA85851D5BF0B36965D2B0FB504B2BC778AB89917D3"
# Signature and work that fill the fixture's placeholders (the signature is a known answer
# made with another key, which is enough for parsing).
SIGNATURE = (
    "B874254F04647279D01FF89987EE79CC3F5D5A65C885B2BA88BC0A3C34C7E7C3"
    "1203E8D8E04AF3892758AE5CC743A6FD1A37B93A96F690CA53B7BE3195A0740A"
)
WORK = "168ed3b6666756bf"


def block_info_body(load_fixture: Loader) -> dict[str, Any]:
    body = load_fixture("block_info")
    body["contents"]["signature"] = SIGNATURE
    body["contents"]["work"] = WORK
    return body


def fixture_block(load_fixture: Loader) -> StateBlock:
    return StateBlock.from_rpc_json(block_info_body(load_fixture)["contents"], subtype="send")


@pytest.fixture
async def fast_timeout_client(scripted_node: ScriptedNode) -> AsyncIterator[NodeClient]:
    """A client of `scripted_node` whose requests time out after 0.2 seconds."""
    async with NodeClient(
        scripted_node.base_url, timeout_seconds=0.2, read_retry=RetryPolicy(attempts=1)
    ) as client:
        yield client


async def test_account_info_parses_fixture(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("account_info")))

    info = await client.account_info(ACCOUNT)

    assert info.frontier == "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"
    assert info.balance_raw == 40200000002000000000000000000000000
    assert info.confirmed_balance_raw == 40200000002000000000000000000000000
    assert info.confirmed_frontier == info.frontier
    assert info.confirmed_height == 33
    assert info.block_count == 33
    assert info.representative == "ban_3pczxuorp48td8645bs3m6c3xotxd3idskrenmi65rbrga5zmkemzhwkaznh"
    request = scripted_node.requests[-1]
    assert request["action"] == "account_info"
    assert request["representative"] == "true"
    assert request["include_confirmed"] == "true"


async def test_account_info_unopened_raises(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("account_info_unopened")))

    with pytest.raises(AccountNotFoundError):
        await client.account_info(ACCOUNT)


async def test_account_info_without_confirmed_fields(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(
        Reply.json(
            {"frontier": BLOCK_HASH, "balance": "5", "block_count": "2", "open_block": BLOCK_HASH}
        )
    )

    info = await client.account_info(ACCOUNT)

    assert info.balance_raw == 5
    assert info.confirmed_balance_raw is None
    assert info.confirmed_frontier is None
    assert info.representative is None


async def test_amount_beyond_float_precision_is_exact(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(
        Reply.json({"balance": "340282366920938463463374607431768211455", "receivable": "1"})
    )

    balance = await client.account_balance(ACCOUNT)

    assert balance.balance_raw == 2**128 - 1
    assert balance.receivable_raw == 1


async def test_account_balance_reads_older_pending_key(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply.json({"balance": "10", "pending": "3"}))

    balance = await client.account_balance(ACCOUNT)

    assert balance.receivable_raw == 3


async def test_malformed_amount_is_unavailable(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply.json({"balance": "1.5e30", "receivable": "0"}))

    with pytest.raises(NodeUnavailableError):
        await client.account_balance(ACCOUNT)


async def test_block_info_parses_fixture(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(block_info_body(load_fixture)))

    info = await client.block_info(BLOCK_HASH)

    assert info.hash == BLOCK_HASH
    assert info.confirmed is True
    assert info.subtype == "send"
    assert info.amount_raw == 1000000000000000000000000
    assert info.balance_raw == 40200000001000000000000000000000000
    assert info.height == 34
    assert info.successor is None
    assert info.block.signature == SIGNATURE
    assert info.block.work == WORK
    assert scripted_node.requests[-1]["json_block"] == "true"


async def test_block_info_with_other_block_is_rejected(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    body = block_info_body(load_fixture)
    body["contents"]["balance"] = "1"
    scripted_node.respond(Reply.json(body))

    with pytest.raises(NodeUnavailableError):
        await client.block_info(BLOCK_HASH)


async def test_block_info_missing_raises(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("block_info_missing")))

    with pytest.raises(BlockNotFoundError):
        await client.block_info(BLOCK_HASH)


async def test_receivable_parses_fixture(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("receivable")))

    blocks = await client.receivable(ACCOUNT, 50, threshold_raw=1)

    assert blocks == {
        "991CF190094C00F0B68E2E5F75F6BEE95A2E0BD93CEAA4A6734DB9F19B728948": (
            5000000000000000000000000000000
        )
    }
    request = scripted_node.requests[-1]
    assert request["count"] == "50"
    assert request["threshold"] == "1"
    assert request["source"] == "true"


async def test_receivable_empty_string_is_empty(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply.json({"blocks": ""}))

    assert await client.receivable(ACCOUNT, 10) == {}


async def test_receivable_threshold_shape(client: NodeClient, scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json({"blocks": {BLOCK_HASH: "7"}}))

    assert await client.receivable(ACCOUNT, 10) == {BLOCK_HASH: 7}


async def test_receivable_falls_back_to_pending(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.queue(
        Reply.json({"error": "Unknown command"}),
        Reply.json({"blocks": {BLOCK_HASH: {"amount": "9", "source": ACCOUNT}}}),
    )

    assert await client.receivable(ACCOUNT, 10) == {BLOCK_HASH: 9}
    assert [request["action"] for request in scripted_node.requests] == ["receivable", "pending"]


async def test_account_history_parses_raw_entries(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(
        Reply.json(
            {
                "account": ACCOUNT,
                "history": [
                    {
                        "type": "state",
                        "subtype": "send",
                        "account": ACCOUNT,
                        "amount": "100",
                        "balance": "900",
                        "previous": BLOCK_HASH,
                        "link": BLOCK_HASH,
                        "representative": ACCOUNT,
                        "local_timestamp": "1764800400",
                        "height": "2",
                        "hash": BLOCK_HASH,
                        "confirmed": "false",
                    }
                ],
            }
        )
    )

    entries = await client.account_history(ACCOUNT, 5, head=BLOCK_HASH)

    assert len(entries) == 1
    assert entries[0].subtype == "send"
    assert entries[0].amount_raw == 100
    assert entries[0].balance_raw == 900
    assert entries[0].confirmed is False
    assert entries[0].height == 2
    request = scripted_node.requests[-1]
    assert request["raw"] == "true"
    assert request["head"] == BLOCK_HASH


async def test_account_history_empty_string_is_empty(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply.json({"account": ACCOUNT, "history": ""}))

    assert await client.account_history(ACCOUNT, 5) == []


async def test_process_returns_hash(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("process_ok")))
    block = fixture_block(load_fixture)

    assert await client.process(block) == BLOCK_HASH
    request = scripted_node.requests[-1]
    assert request["action"] == "process"
    assert request["subtype"] == "send"
    assert request["json_block"] == "true"
    assert request["block"]["balance"] == "40200000001000000000000000000000000"
    assert "do_work" not in request


async def test_process_do_work_flag(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("process_ok")))
    block = fixture_block(load_fixture)

    await client.process(block, do_work=True)

    assert scripted_node.requests[-1]["do_work"] is True


async def test_process_other_hash_is_unavailable(
    scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json({"hash": "0" * 64}))
    outcomes: list[tuple[str, str]] = []

    async with NodeClient(
        scripted_node.base_url, on_request=lambda *call: outcomes.append(call)
    ) as client:
        with pytest.raises(NodeUnavailableError, match="'hash' field"):
            await client.process(fixture_block(load_fixture))

    assert outcomes == [("process", "invalid_response")]


@pytest.mark.parametrize(
    ("name", "error_class"),
    [("old_block", OldBlockError), ("fork", ForkError), ("control_disabled", ControlDisabledError)],
)
async def test_process_error_bodies_raise(
    client: NodeClient,
    scripted_node: ScriptedNode,
    load_fixture: Loader,
    name: str,
    error_class: type[Exception],
) -> None:
    scripted_node.respond(Reply.json(load_fixture("process_errors")[name]))

    with pytest.raises(error_class):
        await client.process(fixture_block(load_fixture))
    assert scripted_node.call_count == 1


async def test_process_is_not_retried(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply(status=502))

    with pytest.raises(NodeUnavailableError):
        await client.process(fixture_block(load_fixture))
    assert scripted_node.call_count == 1


async def test_read_retried_after_5xx(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.queue(
        Reply(status=503), Reply.dropped(), Reply.json(load_fixture("account_info"))
    )

    info = await client.account_info(ACCOUNT)

    assert info.block_count == 33
    assert scripted_node.call_count == 3


async def test_read_gives_up_after_attempts(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply(status=500))

    with pytest.raises(NodeUnavailableError):
        await client.account_info(ACCOUNT)
    assert scripted_node.call_count == 3


async def test_node_error_reply_not_retried(
    client: NodeClient, scripted_node: ScriptedNode
) -> None:
    scripted_node.respond(Reply.json({"error": "Account not found"}))

    with pytest.raises(AccountNotFoundError):
        await client.account_info(ACCOUNT)
    assert scripted_node.call_count == 1


async def test_timeout_maps_to_timeout_error(
    fast_timeout_client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply(delay_seconds=30.0))

    with pytest.raises(NodeTimeoutError):
        await fast_timeout_client.process(fixture_block(load_fixture))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"<html>proxy error</html>", headers=(("Content-Type", "text/html"),)),
        Reply.json(["not", "an", "object"]),
        Reply(body=b'{"hash": "E2FB'),
    ],
    ids=["html", "array", "truncated"],
)
async def test_malformed_reply_is_unavailable(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader, reply: Reply
) -> None:
    scripted_node.respond(reply)

    with pytest.raises(NodeUnavailableError):
        await client.process(fixture_block(load_fixture))


async def test_work_generate_parses_fixture(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("work_generate")))
    root = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"

    assert await client.work_generate(root, "fffffe0000000000") == "05ffdb3ffe19eaff"
    request = scripted_node.requests[-1]
    assert request["hash"] == root
    assert request["difficulty"] == "fffffe0000000000"


async def test_send_passes_id_and_amount_text(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.respond(Reply.json(load_fixture("send_node_wallet")))
    destination = "ban_33t5by1653nt196hfwm5q3wq7oxtaix97r7bhox5zn8eratrzoqsny49ftsd"

    block_hash = await client.send("wallet-1", ACCOUNT, destination, 21 * 10**28, "payout-1")

    assert block_hash == BLOCK_HASH
    request = scripted_node.requests[-1]
    assert request["amount"] == "210000000000000000000000000000"
    assert request["id"] == "payout-1"
    assert request["wallet"] == "wallet-1"


async def test_unknown_error_text_is_typed(client: NodeClient, scripted_node: ScriptedNode) -> None:
    scripted_node.respond(Reply.json({"error": "Something new"}))

    with pytest.raises(UnknownNodeError) as caught:
        await client.account_info(ACCOUNT)
    assert caught.value.node_text == "Something new"


async def test_logs_omit_block_and_wallet(
    client: NodeClient, scripted_node: ScriptedNode, load_fixture: Loader
) -> None:
    scripted_node.queue(
        Reply.json(load_fixture("process_ok")), Reply.json(load_fixture("send_node_wallet"))
    )
    destination = "ban_33t5by1653nt196hfwm5q3wq7oxtaix97r7bhox5zn8eratrzoqsny49ftsd"

    with capture_logs() as logs:
        await client.process(fixture_block(load_fixture))
        await client.send("secret-wallet-id", ACCOUNT, destination, 5, "payout-1")

    logged = repr(logs)
    assert SIGNATURE not in logged
    assert "secret-wallet-id" not in logged
    assert BLOCK_HASH in logged
