"""Senders of payouts from the operator account, behind the `Sender` interface.

`LocalSigner` signs blocks here and publishes them with `process`; `NodeWalletSender` uses the
node-wallet `send` action with the payout's id. Both report the block hash and whether the
outcome is certain.
"""

from core.banano.sender.local_signer import LocalSigner, work_cache_for
from core.banano.sender.node_wallet import NodeWalletSender
from core.banano.sender.publishing import BlockPublisher, OperatorAccountLock
from core.banano.sender.types import (
    OnChainSigned,
    OnSigned,
    Sender,
    SendOutcome,
    SendRequest,
    SendResult,
    SignedBlock,
)

__all__ = [
    "BlockPublisher",
    "LocalSigner",
    "NodeWalletSender",
    "OnChainSigned",
    "OnSigned",
    "OperatorAccountLock",
    "SendOutcome",
    "SendRequest",
    "SendResult",
    "Sender",
    "SignedBlock",
    "work_cache_for",
]
