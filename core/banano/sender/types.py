"""The interface both senders share: a payout's send request and what became of it."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendRequest:
    """One payout to send: `idempotency_key` is unique per payout and never reused."""

    payout_id: int
    idempotency_key: str
    destination: str
    amount_raw: int


@dataclass(frozen=True)
class SignedBlock:
    """A block to store with its payout before it is submitted.

    `block_json` is the text of `StateBlock.to_json_text()` for the local signer, and empty
    for the node-wallet sender, whose node builds the block and whose retries use the send id.
    """

    block_hash: str
    block_json: str


class SendOutcome(enum.Enum):
    """Whether a send is known to have reached the ledger."""

    # The node accepted the block or already had it.
    ACCEPTED = "accepted"
    # Rejected for good, nothing was signed, or another block already follows the block's
    # previous. That other block may be unconfirmed, so check it before releasing the payout.
    # `reason` gives the cause.
    REJECTED = "rejected"
    # A timeout, a lost reply, a 5xx or an error text with no verdict: reconcile by hash.
    UNCERTAIN = "uncertain"
    # Stored but not submitted: an earlier block of the same chain was not accepted, and
    # this block follows it, so it can land only after that block does.
    HELD = "held"


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send or resubmission.

    `block_hash` is set whenever a block was stored, UNCERTAIN results included. A REJECTED
    result without a hash means that nothing was signed, so nothing can ever land.
    """

    outcome: SendOutcome
    block_hash: str | None
    reason: str | None = None


OnSigned = Callable[[SignedBlock], Awaitable[None]]
# Stores the signed blocks of a chain, in chain order, before any of them is submitted.
OnChainSigned = Callable[[Sequence[tuple[SendRequest, SignedBlock]]], Awaitable[None]]


class Sender(Protocol):
    """Sender of payouts from the operator account. Implementations serialize their sends."""

    @property
    def operator_address(self) -> str:
        """The `ban_` address payouts are sent from."""
        ...

    async def send(self, request: SendRequest, on_signed: OnSigned) -> SendResult:
        """Send once: `on_signed` stores the block and hash, and must finish before submission.

        An exception from `on_signed` propagates and nothing is submitted.
        """
        ...

    async def resubmit(self, request: SendRequest, stored: SignedBlock | None) -> SendResult:
        """Submit the stored block again (or repeat the same send id), never a new send."""
        ...

    async def operator_balance_raw(self) -> int:
        """Return the operator account's confirmed balance, or its balance if the node omits it."""
        ...
