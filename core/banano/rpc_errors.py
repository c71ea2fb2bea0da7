"""Typed errors for Banano node RPC replies and for failures to reach the node.

A node reports errors with HTTP status 200 and a body `{"error": "<text>"}`. `error_from_text`
turns the exact texts the money path acts on into their own classes and everything else into
`UnknownNodeError`. Transport failures (`NodeTransportError`) mean the outcome of the request is
unknown: the node may or may not have acted on it.
"""

from __future__ import annotations

from core.banano.errors import shorten_for_message
from core.errors import Pay2SlayError


class NodeError(Pay2SlayError):
    """A Banano node request that did not return a usable result."""

    safe_message = "The Banano node request failed."


class NodeTransportError(NodeError):
    """No usable reply: the node may or may not have acted on the request."""

    safe_message = "The Banano node did not return a usable reply."


class NodeUnavailableError(NodeTransportError):
    """A connection failure, an HTTP status other than 200, or a reply that is not valid JSON."""

    safe_message = "The Banano node is unavailable or returned a malformed reply."


class NodeTimeoutError(NodeTransportError):
    """The node did not reply within the client's timeout."""

    safe_message = "The Banano node did not reply in time."


class NodeReplyError(NodeError):
    """The node returned `{"error": text}`. `node_text` is that text, shortened."""

    safe_message = "The Banano node returned an error."
    # The exact error texts the node sends for this class (none for the catch-all class).
    node_texts: tuple[str, ...] = ()

    def __init__(self, node_text: str, safe_message: str | None = None) -> None:
        self.node_text = shorten_for_message(node_text, max_length=120)
        super().__init__(safe_message)

    def __str__(self) -> str:
        return f"{self.safe_message} Node error: {self.node_text}"


class BlockRejectedError(NodeReplyError):
    """`process` rejected the block itself: as submitted it cannot enter this node's ledger."""

    safe_message = "The Banano node rejected the block."


class OldBlockError(NodeReplyError):
    """The node already has this block (same hash), so submitting it again changed nothing."""

    safe_message = "The Banano node already has this block."
    node_texts = ("Old block",)


class ForkError(BlockRejectedError):
    """Another block already follows the block's `previous`."""

    safe_message = (
        "The Banano node rejected the block: another block already follows its previous (fork)."
    )
    node_texts = ("Fork",)


class GapPreviousError(BlockRejectedError):
    """The node does not know the block's `previous`."""

    safe_message = "The Banano node rejected the block: its previous block is unknown."
    node_texts = ("Gap previous block",)


class GapSourceError(BlockRejectedError):
    """The node does not know the send block that a receive block links to."""

    safe_message = "The Banano node rejected the block: its source block is unknown."
    node_texts = ("Gap source block",)


class BadSignatureError(BlockRejectedError):
    """The block's signature does not verify under its account's key."""

    safe_message = "The Banano node rejected the block: bad signature."
    node_texts = ("Bad signature",)


class InsufficientWorkError(BlockRejectedError):
    """The block's proof of work is below the node's threshold."""

    safe_message = "The Banano node rejected the block: insufficient proof of work."
    node_texts = (
        "Block work is less than threshold",
        "Block work is insufficient",
        "Insufficient work",
    )


class BalanceMismatchError(BlockRejectedError):
    """The block's balance change does not match the amount it sends or receives."""

    safe_message = "The Banano node rejected the block: balance and amount do not match."
    node_texts = ("Balance and amount delta do not match",)


class NegativeSpendError(BlockRejectedError):
    """A send whose balance is higher than the account's previous balance."""

    safe_message = "The Banano node rejected the block: negative spend."
    node_texts = ("Negative spend",)


class UnreceivableError(BlockRejectedError):
    """A receive of a send that is not receivable by this account."""

    safe_message = "The Banano node rejected the block: the source is not receivable."
    node_texts = ("Unreceivable",)


class SendRefusedError(NodeReplyError):
    """The node-wallet `send` was refused before any block was created (nothing was sent)."""

    safe_message = "The Banano node rejected the wallet send, so nothing was sent."
    node_texts = (
        "Insufficient balance",
        "Wallet is locked",
        "Wallet not found",
        "Account not found in wallet",
        "Bad wallet number",
        "Bad source account",
        "Bad destination account",
        "Bad amount number",
        "Invalid amount number",
    )


class WalletBlockError(NodeReplyError):
    """The node wallet `send` built a block but could not publish it, or publishing timed out.

    In nano-node's `wallet::send_action` (nano/node/wallet.cpp), the send id is stored with the
    new block's hash before the block is processed. `json_handler::send` replies "Error
    generating block" when work generation or processing fails or times out and the balance
    read before the send covered the amount. The block may yet land, so this is no refusal.
    A repeat with the same id returns that block once the ledger has it.
    """

    safe_message = "The Banano node wallet may have created the block but did not confirm it."
    node_texts = ("Error generating block",)


class InvalidSubtypeError(NodeReplyError):
    """`process` found the block's balance or previous inconsistent with the given `subtype`.

    Not a `BlockRejectedError`: the node compares against the account's current state, so a
    block that is already in the ledger can get this error when it is submitted again.
    """

    safe_message = "The Banano node found the block inconsistent with its subtype."
    node_texts = (
        "Invalid block balance for given subtype",
        "Invalid previous block for given subtype",
    )


class AccountNotFoundError(NodeReplyError):
    """The account has no blocks on this node (it is unopened)."""

    safe_message = "The Banano account was not found because it has never received anything."
    node_texts = ("Account not found",)


class BlockNotFoundError(NodeReplyError):
    """The node does not have a block with this hash."""

    safe_message = "The Banano block was not found."
    node_texts = ("Block not found",)


class ControlDisabledError(NodeReplyError):
    """The action needs `enable_control` on the node, which this node does not allow."""

    safe_message = "The Banano node does not allow this action (RPC control is disabled)."
    node_texts = ("RPC control is disabled",)


class UnknownNodeError(NodeReplyError):
    """An error text this client has no class for, so it gives no verdict."""

    safe_message = "The Banano node returned an unrecognised error."


_ERROR_CLASSES: tuple[type[NodeReplyError], ...] = (
    OldBlockError,
    ForkError,
    GapPreviousError,
    GapSourceError,
    BadSignatureError,
    InsufficientWorkError,
    BalanceMismatchError,
    NegativeSpendError,
    UnreceivableError,
    InvalidSubtypeError,
    SendRefusedError,
    WalletBlockError,
    AccountNotFoundError,
    BlockNotFoundError,
    ControlDisabledError,
)

_CLASS_BY_TEXT: dict[str, type[NodeReplyError]] = {
    text: error_class for error_class in _ERROR_CLASSES for text in error_class.node_texts
}


def error_from_text(node_text: str) -> NodeReplyError:
    """Return the typed error for a node's error text, matched exactly as the node sends it."""
    error_class = _CLASS_BY_TEXT.get(node_text.strip(), UnknownNodeError)
    return error_class(node_text)
