"""Replies of the sandbox Banano node to read actions, in the shapes a Nano-protocol node uses.

Amounts, counts and flags are strings, as the node writes them, and an empty list or map is
an empty string. Flags in requests are accepted as `true`/`false` JSON or as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.banano.address import decode_address
from core.banano.errors import InvalidAddressError, InvalidAmountError
from core.banano.units import parse_raw
from core.sandbox.banano_ledger import BananoLedger, LedgerAccount, LedgerBlock, RpcError

_HASH_TEXT = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
# The sandbox's own default for `count` when a request leaves it out.
_DEFAULT_COUNT = 4096


def flag(payload: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """Read a boolean request flag given as JSON true/false or as "true"/"false"."""
    value = payload.get(key)
    if value is None:
        return default
    return value is True or value == "true"


def account_param(payload: Mapping[str, Any], key: str = "account") -> str:
    """Read and validate an address parameter."""
    value = payload.get(key)
    if not isinstance(value, str):
        raise RpcError("Bad account number")
    try:
        decode_address(value)
    except InvalidAddressError as error:
        raise RpcError("Bad account number") from error
    return value


def hash_param(payload: Mapping[str, Any], key: str = "hash") -> str:
    """Read and validate a 64-hex block hash parameter, returned upper case."""
    value = payload.get(key)
    if not isinstance(value, str) or _HASH_TEXT.fullmatch(value) is None:
        raise RpcError("Invalid block hash")
    return value.upper()


def raw_param(payload: Mapping[str, Any], key: str, default: int) -> int:
    """Read an optional amount of raw given as decimal text."""
    value = payload.get(key)
    if value is None:
        return default
    try:
        return parse_raw(str(value))
    except InvalidAmountError as error:
        raise RpcError("Bad amount number") from error


def count_param(payload: Mapping[str, Any]) -> int:
    """Read the optional `count` parameter."""
    value = payload.get("count")
    if value is None:
        return _DEFAULT_COUNT
    text = str(value)
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise RpcError("Invalid count limit")
    return int(text)


def opened_account(ledger: BananoLedger, address: str) -> LedgerAccount:
    """Return the account or raise "Account not found" for an unopened one."""
    account = ledger.accounts.get(address)
    if account is None:
        raise RpcError("Account not found")
    return account


def block_contents(entry: LedgerBlock) -> dict[str, str]:
    """Return the block object as `block_info` and `json_block` replies show it."""
    contents = entry.block.to_rpc_json()
    contents["signature"] = entry.block.signature or ""
    contents["work"] = entry.block.work or ""
    return contents


def account_info(ledger: BananoLedger, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Reply to `account_info`, with `representative` and `include_confirmed` as requested."""
    account = opened_account(ledger, account_param(payload))
    frontier = ledger.blocks[account.frontier]
    confirmed_frontier = (
        account.chain[account.confirmed_height - 1] if account.confirmed_height else ""
    )
    reply: dict[str, Any] = {
        "frontier": account.frontier,
        "open_block": account.chain[0],
        "representative_block": _representative_block(ledger, account),
        "balance": str(account.balance_raw),
        "modified_timestamp": str(frontier.local_timestamp),
        "block_count": str(len(account.chain)),
        "account_version": "2",
        "confirmation_height": str(account.confirmed_height),
        "confirmation_height_frontier": confirmed_frontier,
    }
    if flag(payload, "representative"):
        reply["representative"] = account.representative
    if flag(payload, "include_confirmed"):
        reply["confirmed_balance"] = str(ledger.confirmed_balance_of(account))
        reply["confirmed_height"] = str(account.confirmed_height)
        reply["confirmed_frontier"] = confirmed_frontier
    return reply


def _representative_block(ledger: BananoLedger, account: LedgerAccount) -> str:
    representative_block = account.chain[0]
    previous_representative = None
    for block_hash in account.chain:
        representative = ledger.blocks[block_hash].block.representative
        if representative != previous_representative:
            representative_block = block_hash
            previous_representative = representative
    return representative_block


def account_balance(ledger: BananoLedger, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Reply to `account_balance`: confirmed figures unless `include_only_confirmed` is false.

    An unopened account has balance 0 and may still have receivable sends.
    """
    address = account_param(payload)
    only_confirmed = flag(payload, "include_only_confirmed", default=True)
    account = ledger.accounts.get(address)
    balance_raw = 0
    if account is not None:
        balance_raw = (
            ledger.confirmed_balance_of(account) if only_confirmed else account.balance_raw
        )
    receivable_raw = sum(_receivable_blocks(ledger, address, only_confirmed).values())
    return {
        "balance": str(balance_raw),
        "pending": str(receivable_raw),
        "receivable": str(receivable_raw),
    }


def _receivable_blocks(ledger: BananoLedger, address: str, only_confirmed: bool) -> dict[str, int]:
    return {
        send_hash: amount_raw
        for send_hash, amount_raw in ledger.receivable.get(address, {}).items()
        if ledger.blocks[send_hash].confirmed or not only_confirmed
    }


def receivable(ledger: BananoLedger, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Reply to `receivable` (and its older name `pending`).

    With `source` each block maps to its amount and sender, with only `threshold` to its
    amount, and otherwise the reply lists hashes. Only confirmed sends are listed unless
    `include_only_confirmed` is false.
    """
    address = account_param(payload)
    count = count_param(payload)
    threshold_raw = raw_param(payload, "threshold", 0)
    only_confirmed = flag(payload, "include_only_confirmed", default=True)
    blocks = {
        send_hash: amount_raw
        for send_hash, amount_raw in _receivable_blocks(ledger, address, only_confirmed).items()
        if amount_raw >= threshold_raw
    }
    if flag(payload, "sorting"):
        blocks = dict(sorted(blocks.items(), key=lambda item: item[1], reverse=True))
    selected = list(blocks.items())[:count]
    if not selected:
        return {"blocks": ""}

    if flag(payload, "source"):
        return {
            "blocks": {
                send_hash: {"amount": str(amount_raw), "source": ledger.blocks[send_hash].account}
                for send_hash, amount_raw in selected
            }
        }
    if "threshold" in payload:
        return {"blocks": {send_hash: str(amount_raw) for send_hash, amount_raw in selected}}
    return {"blocks": [send_hash for send_hash, _ in selected]}


def block_info(ledger: BananoLedger, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Reply to `block_info` with the block as a JSON object."""
    entry = ledger.blocks.get(hash_param(payload))
    if entry is None:
        raise RpcError("Block not found")
    return {
        "block_account": entry.account,
        "amount": str(entry.amount_raw),
        "balance": str(entry.block.balance_raw),
        "height": str(entry.height),
        "local_timestamp": str(entry.local_timestamp),
        "successor": entry.successor or "0" * 64,
        "confirmed": "true" if entry.confirmed else "false",
        "contents": block_contents(entry),
        "subtype": entry.subtype,
    }


def account_history(ledger: BananoLedger, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Reply to `account_history`, newest first, from `head` if given.

    Raw mode lists every block with its fields. Otherwise only sends and receives are listed,
    as the node does. `previous` in the reply is where the next page starts.
    """
    address = account_param(payload)
    count = count_param(payload)
    raw_mode = flag(payload, "raw")
    account = ledger.accounts.get(address)
    if account is None:
        return {"account": address, "history": ""}

    head = payload.get("head")
    if head is not None:
        head_entry = ledger.blocks.get(hash_param(payload, "head"))
        if head_entry is None or head_entry.account != address:
            raise RpcError("Invalid block hash")
        head = head_entry.hash

    entries: list[dict[str, Any]] = []
    next_page: str | None = None
    for entry in ledger.history(account, head):
        if len(entries) == count:
            next_page = entry.hash
            break
        if raw_mode:
            entries.append(_raw_history_entry(entry))
        elif entry.subtype != "change":
            entries.append(_history_entry(entry))

    reply: dict[str, Any] = {"account": address, "history": entries or ""}
    if next_page is not None:
        reply["previous"] = next_page
    return reply


def _history_entry(entry: LedgerBlock) -> dict[str, Any]:
    return {
        "type": "send" if entry.subtype == "send" else "receive",
        "account": entry.counterparty or "",
        "amount": str(entry.amount_raw),
        "local_timestamp": str(entry.local_timestamp),
        "height": str(entry.height),
        "hash": entry.hash,
        "confirmed": "true" if entry.confirmed else "false",
    }


def _raw_history_entry(entry: LedgerBlock) -> dict[str, Any]:
    block = entry.block
    raw_entry: dict[str, Any] = {
        "type": "state",
        "representative": block.representative,
        "link": block.link,
        "balance": str(block.balance_raw),
        "previous": block.previous,
        "subtype": entry.subtype,
        "amount": str(entry.amount_raw),
        "local_timestamp": str(entry.local_timestamp),
        "height": str(entry.height),
        "hash": entry.hash,
        "confirmed": "true" if entry.confirmed else "false",
        "work": block.work or "",
        "signature": block.signature or "",
    }
    if entry.counterparty is not None:
        raw_entry["account"] = entry.counterparty
    return raw_entry


def block_count(ledger: BananoLedger) -> dict[str, Any]:
    """Reply to `block_count`: all blocks, none unchecked, and how many are confirmed."""
    confirmed = sum(1 for entry in ledger.blocks.values() if entry.confirmed)
    return {"count": str(len(ledger.blocks)), "unchecked": "0", "cemented": str(confirmed)}
