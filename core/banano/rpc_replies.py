"""Typed replies of the Banano node RPC and their parsing from JSON.

Amounts arrive as decimal strings of raw and become `int` through `parse_raw`, never through
float. A missing or malformed field raises `NodeUnavailableError`, because a reply that cannot
be read is no better than no reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from core.banano.blocks import BLOCK_SUBTYPES, ZERO_HASH, BlockSubtype, StateBlock
from core.banano.errors import InvalidAmountError, InvalidBlockError
from core.banano.rpc_errors import NodeUnavailableError
from core.banano.units import parse_raw

_HASH_TEXT = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
_WORK_TEXT = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_MAX_U64 = 2**64 - 1


@dataclass(frozen=True)
class AccountInfo:
    """One `account_info` reading: frontier and balance always come from the same reply."""

    frontier: str
    balance_raw: int
    representative: str | None
    block_count: int
    open_block: str | None
    confirmed_balance_raw: int | None
    confirmed_frontier: str | None
    confirmed_height: int | None


@dataclass(frozen=True)
class AccountBalance:
    """An account's balance and the total of sends to it that it has not received yet."""

    balance_raw: int
    receivable_raw: int


@dataclass(frozen=True)
class BlockInfo:
    """A block found by hash, with the ledger facts the node adds to its contents."""

    hash: str
    account: str
    confirmed: bool
    block: StateBlock
    subtype: BlockSubtype | None
    amount_raw: int | None
    balance_raw: int
    height: int
    successor: str | None


@dataclass(frozen=True)
class HistoryEntry:
    """One block of `account_history` in raw mode, newest first.

    `counterparty` is the destination of a send or the sender of a receive.
    """

    hash: str
    subtype: str
    counterparty: str | None
    amount_raw: int
    balance_raw: int | None
    height: int
    previous: str | None
    link: str | None
    representative: str | None
    confirmed: bool | None
    local_timestamp: int | None


def parse_account_info(reply: Mapping[str, Any]) -> AccountInfo:
    """Parse an `account_info` reply. Confirmed fields are None when the node omits them."""
    confirmed_balance = reply.get("confirmed_balance")
    confirmed_frontier = reply.get("confirmed_frontier", reply.get("confirmation_height_frontier"))
    confirmed_height = reply.get("confirmed_height", reply.get("confirmation_height"))
    return AccountInfo(
        frontier=_hash_field(reply, "frontier"),
        balance_raw=_raw_field(reply, "balance"),
        representative=_optional_text(reply, "representative"),
        block_count=_int_field(reply, "block_count"),
        open_block=_optional_hash(reply, "open_block"),
        confirmed_balance_raw=(
            None if confirmed_balance is None else _raw_field(reply, "confirmed_balance")
        ),
        confirmed_frontier=(
            None if confirmed_frontier is None else _hash_value(confirmed_frontier, "frontier")
        ),
        confirmed_height=(
            None if confirmed_height is None else _int_value(confirmed_height, "height")
        ),
    )


def parse_account_balance(reply: Mapping[str, Any]) -> AccountBalance:
    """Parse an `account_balance` reply, which older nodes write with `pending`."""
    receivable_key = "receivable" if "receivable" in reply else "pending"
    return AccountBalance(
        balance_raw=_raw_field(reply, "balance"),
        receivable_raw=_raw_field(reply, receivable_key),
    )


def parse_receivable(reply: Mapping[str, Any]) -> dict[str, int]:
    """Parse a `receivable` reply into {send hash: amount_raw}."""
    blocks = reply.get("blocks")
    # Nodes encode an empty map as an empty string.
    if blocks in (None, ""):
        return {}
    if not isinstance(blocks, Mapping):
        raise malformed_reply("receivable", "blocks")

    receivable: dict[str, int] = {}
    for block_hash, details in blocks.items():
        # With "source" each value is {"amount", "source"}. With only "threshold" it is the amount.
        amount = details.get("amount") if isinstance(details, Mapping) else details
        receivable[_hash_value(block_hash, "blocks")] = _raw_field({"amount": amount}, "amount")
    return receivable


def parse_block_info(reply: Mapping[str, Any], block_hash: str) -> BlockInfo:
    """Parse a `block_info` reply, checking that its contents hash to `block_hash`."""
    contents = reply.get("contents")
    if not isinstance(contents, Mapping):
        raise malformed_reply("block_info", "contents")
    subtype_text = _optional_text(reply, "subtype")
    subtype = cast("BlockSubtype", subtype_text) if subtype_text in BLOCK_SUBTYPES else None
    try:
        block = StateBlock.from_rpc_json(contents, subtype=subtype)
    except InvalidBlockError as error:
        # NOTE: legacy (pre-state) blocks also end here. The operator account only ever
        # contains state blocks.
        raise malformed_reply("block_info", "contents") from error
    if block.hash() != block_hash.upper():
        raise malformed_reply("block_info", "contents")

    amount = reply.get("amount")
    successor = _optional_hash(reply, "successor")
    return BlockInfo(
        hash=block.hash(),
        account=_text_field(reply, "block_account"),
        confirmed=_bool_field(reply, "confirmed"),
        block=block,
        subtype=subtype,
        amount_raw=None if amount is None else _raw_field(reply, "amount"),
        balance_raw=_raw_field(reply, "balance"),
        height=_int_field(reply, "height"),
        successor=None if successor == ZERO_HASH else successor,
    )


def parse_account_history(reply: Mapping[str, Any]) -> list[HistoryEntry]:
    """Parse an `account_history` reply made with `raw`."""
    history = reply.get("history")
    # Nodes encode an empty list as an empty string.
    if history in (None, ""):
        return []
    if not isinstance(history, list):
        raise malformed_reply("account_history", "history")
    return [_parse_history_entry(entry) for entry in history]


def parse_hash(reply: Mapping[str, Any], key: str, action: str) -> str:
    """Return the block hash in `reply[key]`, upper case."""
    value = reply.get(key)
    if not isinstance(value, str) or _HASH_TEXT.fullmatch(value) is None:
        raise malformed_reply(action, key)
    return value.upper()


def parse_work(reply: Mapping[str, Any]) -> str:
    """Return the work nonce of a `work_generate` reply, lower case."""
    work = reply.get("work")
    if not isinstance(work, str) or _WORK_TEXT.fullmatch(work) is None:
        raise malformed_reply("work_generate", "work")
    return work.lower()


def malformed_reply(action: str, field_name: str) -> NodeUnavailableError:
    """Build the error for a reply whose field is missing or invalid."""
    return NodeUnavailableError(
        f"The Banano node's {action} reply has a missing or invalid '{field_name}' field."
    )


def _hash_value(value: object, field_name: str) -> str:
    if not isinstance(value, str) or _HASH_TEXT.fullmatch(value) is None:
        raise malformed_reply("RPC", field_name)
    return value.upper()


def _hash_field(reply: Mapping[str, Any], key: str) -> str:
    return _hash_value(reply.get(key), key)


def _optional_hash(reply: Mapping[str, Any], key: str) -> str | None:
    value = reply.get(key)
    return None if value is None else _hash_value(value, key)


def _raw_field(reply: Mapping[str, Any], key: str) -> int:
    value = reply.get(key)
    if not isinstance(value, str):
        raise malformed_reply("RPC", key)
    try:
        return parse_raw(value)
    except InvalidAmountError as error:
        raise malformed_reply("RPC", key) from error


def _int_value(value: object, field_name: str) -> int:
    # Counts, heights and timestamps are unsigned 64-bit numbers on the node. The length check
    # keeps int() far from its digit limit on hostile text.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_U64:
        return value
    raise malformed_reply("RPC", field_name)


def _int_field(reply: Mapping[str, Any], key: str) -> int:
    return _int_value(reply.get(key), key)


def _bool_field(reply: Mapping[str, Any], key: str) -> bool:
    value = reply.get(key)
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise malformed_reply("RPC", key)


def _text_field(reply: Mapping[str, Any], key: str) -> str:
    value = reply.get(key)
    if not isinstance(value, str) or not value:
        raise malformed_reply("RPC", key)
    return value


def _optional_text(reply: Mapping[str, Any], key: str) -> str | None:
    value = reply.get(key)
    return value if isinstance(value, str) and value else None


def _parse_history_entry(entry: object) -> HistoryEntry:
    if not isinstance(entry, Mapping):
        raise malformed_reply("account_history", "history")
    subtype = _optional_text(entry, "subtype") or _text_field(entry, "type")
    balance = entry.get("balance")
    confirmed = entry.get("confirmed")
    timestamp = entry.get("local_timestamp")
    link = entry.get("link")
    return HistoryEntry(
        hash=_hash_field(entry, "hash"),
        subtype=subtype,
        counterparty=_optional_text(entry, "account"),
        amount_raw=_raw_field(entry, "amount"),
        balance_raw=None if balance is None else _raw_field(entry, "balance"),
        height=_int_field(entry, "height"),
        previous=_optional_hash(entry, "previous"),
        link=None if link is None else _hash_value(link, "link"),
        representative=_optional_text(entry, "representative"),
        confirmed=None if confirmed is None else _bool_field(entry, "confirmed"),
        local_timestamp=None if timestamp is None else _int_value(timestamp, "local_timestamp"),
    )
