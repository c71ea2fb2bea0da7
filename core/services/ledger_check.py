"""Ledger checks that decide whether a stored block the node does not have can still land.

A send block names the block it follows (`previous`). While the operator account's chain
still ends at `previous`, the stored block can be submitted again. Once another block follows
`previous` and is confirmed, the stored block can never be confirmed, and only then may its
payout release its accruals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import structlog

from core.banano.blocks import StateBlock
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import (
    BadSignatureError,
    BalanceMismatchError,
    BlockNotFoundError,
    InsufficientWorkError,
    NegativeSpendError,
    NodeError,
    UnreceivableError,
    error_from_text,
)

log = structlog.get_logger(__name__)

# Verdicts on the block itself: the same signed block can never be accepted by any node.
# Insufficient work is one because retries resubmit the stored block with its stored work.
_FINAL_REJECTIONS = (
    BadSignatureError,
    BalanceMismatchError,
    NegativeSpendError,
    UnreceivableError,
    InsufficientWorkError,
)


class SlotState(enum.Enum):
    """State of the chain at the place a stored block would take."""

    # The chain still ends at the block's previous: it can be submitted again.
    FREE = "free"
    # A confirmed other block follows the previous: the stored block can never confirm.
    TAKEN_CONFIRMED = "taken_confirmed"
    # Another block follows the previous but is not confirmed yet: wait.
    TAKEN_UNCONFIRMED = "taken_unconfirmed"
    # The node does not know the previous block: wait for it to catch up.
    GAP = "gap"
    # The node could not be read: wait.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SlotCheck:
    """The result of `inspect_slot`; `other_hash` is the block that took the place, if known."""

    state: SlotState
    other_hash: str | None = None


def is_final_rejection(reason: str | None) -> bool:
    """Return whether a node's rejection text means the signed block can never be accepted."""
    if reason is None:
        return False
    return isinstance(error_from_text(reason), _FINAL_REJECTIONS)


async def block_state(node: NodeClient, block_hash: str) -> bool | None:
    """Return True if the node has the block confirmed, False if unconfirmed, None if missing.

    Raises `NodeError` when the node cannot be read.
    """
    try:
        info = await node.block_info(block_hash)
    except BlockNotFoundError:
        return None
    return info.confirmed


async def inspect_slot(node: NodeClient, block: StateBlock) -> SlotCheck:
    """Find out whether another block took the place of `block`, which the node does not have.

    Reads the account's `account_info` (frontier and confirmed height), then `block_info` of
    the block's previous (its `successor`). A confirmed height at or past the place means a
    confirmed block holds it, and when that block is not `block`, `block` can never land.

    The account is read first because `block` itself may land between the two reads. Read
    the other way round, the confirmed height could already count `block` while the
    successor was read before it existed, and `block` would look replaced by a block that is
    `block` itself.
    """
    block_hash = block.hash()
    try:
        account = await node.account_info(block.account)
    except NodeError as error:
        log.info("slot_check_failed", block_hash=block_hash, error=type(error).__name__)
        return SlotCheck(SlotState.UNKNOWN)

    try:
        previous = await node.block_info(block.previous)
    except BlockNotFoundError:
        return SlotCheck(SlotState.GAP)
    except NodeError as error:
        log.info("slot_check_failed", block_hash=block_hash, error=type(error).__name__)
        return SlotCheck(SlotState.UNKNOWN)

    if account.frontier == block.previous and previous.successor is None:
        return SlotCheck(SlotState.FREE)

    other_hash = previous.successor
    if other_hash == block_hash:
        # The previous block points at this block, yet the node did not find it: a node in
        # the middle of an update. Ask again later.
        return SlotCheck(SlotState.UNKNOWN)
    if other_hash is None:
        # The frontier moved past the previous block, yet the previous block shows no
        # successor: the two replies disagree (a node behind a load balancer, for one).
        # Which block holds the place is unknown, so ask again later.
        log.info("slot_check_inconsistent", block_hash=block_hash, frontier=account.frontier)
        return SlotCheck(SlotState.UNKNOWN)

    place_height = previous.height + 1
    confirmed_height = account.confirmed_height
    height_confirmed = confirmed_height is not None and confirmed_height >= place_height
    if height_confirmed:
        log.info(
            "slot_taken_confirmed",
            block_hash=block_hash,
            other_hash=other_hash,
            height=place_height,
        )
        return SlotCheck(SlotState.TAKEN_CONFIRMED, other_hash)

    try:
        other_confirmed = await block_state(node, other_hash)
    except NodeError as error:
        log.info("slot_check_failed", block_hash=block_hash, error=type(error).__name__)
        return SlotCheck(SlotState.UNKNOWN, other_hash)
    if other_confirmed:
        log.info("slot_taken_confirmed", block_hash=block_hash, other_hash=other_hash)
        return SlotCheck(SlotState.TAKEN_CONFIRMED, other_hash)
    return SlotCheck(SlotState.TAKEN_UNCONFIRMED, other_hash)
