"""Sending payouts through the node-wallet `send` action of a Banano node or a Pippin server."""

from __future__ import annotations

import asyncio

import structlog

from core.banano.address import check_payout_destination
from core.banano.blocks import StateBlock
from core.banano.errors import InvalidAddressError, InvalidBlockError
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import (
    AccountNotFoundError,
    BlockNotFoundError,
    ControlDisabledError,
    NodeError,
    NodeReplyError,
    NodeTimeoutError,
    NodeTransportError,
    SendRefusedError,
)
from core.banano.sender.publishing import BlockPublisher, OperatorAccountLock, Sleep
from core.banano.sender.types import OnSigned, SendOutcome, SendRequest, SendResult, SignedBlock

log = structlog.get_logger(__name__)

# Replies that mean the node created no block for the id, so nothing was sent.
_REFUSALS = (SendRefusedError, ControlDisabledError, AccountNotFoundError)


class NodeWalletSender:
    """Sends with the node's wallet, passing each payout's idempotency key as `send`'s `id`.

    The node stores the id with the block it creates, in the same wallet transaction, so a
    repeat with the same id returns the first block. That makes repeats after transport
    errors safe. The node builds, signs and works the block and serializes the wallet's sends.
    """

    def __init__(
        self,
        node: NodeClient,
        wallet_id: str,
        source_address: str,
        *,
        attempts: int = 3,
        retry_delay_seconds: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._node = node
        self._wallet_id = wallet_id
        self.operator_address = source_address
        self._attempts = attempts
        self._retry_delay = retry_delay_seconds
        self._sleep = sleep
        # Publishes blocks that the local signer stored before the sender was switched.
        self._publisher = BlockPublisher(
            node,
            OperatorAccountLock(),
            submit_attempts=attempts,
            retry_delay_seconds=retry_delay_seconds,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        # The wallet id lets anyone with RPC access spend from the wallet, so it stays out.
        return f"NodeWalletSender(operator_address={self.operator_address!r})"

    async def send(self, request: SendRequest, on_signed: OnSigned) -> SendResult:
        """Send with the payout's id, then store the hash through `on_signed`.

        The node creates the block, so the hash is known only after it replies. `block_json`
        is stored empty because retries repeat the id instead of a stored block.
        """
        result = await self._send_with_id(request)
        if result.block_hash is not None:
            await on_signed(SignedBlock(block_hash=result.block_hash, block_json=""))
        _log_result("payout_wallet_send", request, result)
        return result

    async def resubmit(self, request: SendRequest, stored: SignedBlock | None) -> SendResult:
        """Look the stored hash up first, then repeat `send` with the same id if needed.

        A stored block with contents was signed by the local signer before the operator
        switched senders. The wallet would build another block for it, which pays a second
        time if the stored one lands too, so that exact block is submitted instead.
        """
        if stored is not None and stored.block_json:
            return await self._publish_stored(request, stored)
        if stored is not None:
            try:
                await self._node.block_info(stored.block_hash)
            except BlockNotFoundError:
                log.info(
                    "wallet_send_block_missing",
                    payout_id=request.payout_id,
                    block_hash=stored.block_hash,
                )
            except NodeError as error:
                log.info(
                    "wallet_send_lookup_failed",
                    payout_id=request.payout_id,
                    error=type(error).__name__,
                )
            else:
                result = SendResult(SendOutcome.ACCEPTED, stored.block_hash.upper())
                _log_result("payout_wallet_resend", request, result)
                return result

        result = await self._send_with_id(request)
        if (
            stored is not None
            and result.block_hash is not None
            and result.block_hash != stored.block_hash.upper()
        ):
            # The node did not remember the id (another node, or a rebuilt wallet), so it may
            # have paid twice. Only the ledger can tell now.
            log.error(
                "wallet_send_id_returned_new_block",
                payout_id=request.payout_id,
                stored_block_hash=stored.block_hash,
                block_hash=result.block_hash,
            )
        _log_result("payout_wallet_resend", request, result)
        return result

    async def _publish_stored(self, request: SendRequest, stored: SignedBlock) -> SendResult:
        try:
            block = StateBlock.from_json_text(stored.block_json)
        except InvalidBlockError:
            log.error("stored_block_unreadable", payout_id=request.payout_id)
            return SendResult(SendOutcome.UNCERTAIN, stored.block_hash, "stored block unreadable")
        if block.hash() != stored.block_hash.upper() or block.account != self.operator_address:
            log.error(
                "stored_block_mismatch", payout_id=request.payout_id, block_hash=stored.block_hash
            )
            return SendResult(
                SendOutcome.UNCERTAIN,
                stored.block_hash,
                "stored block does not match its hash or the operator account",
            )
        async with self._publisher.lock:
            result = await self._publisher.submit(block)
        _log_result("payout_stored_block_resubmitted", request, result)
        return result

    async def operator_balance_raw(self) -> int:
        """Return the confirmed balance (the balance if the node omits it), or 0 when unopened."""
        try:
            info = await self._node.account_info(self.operator_address)
        except AccountNotFoundError:
            return 0
        if info.confirmed_balance_raw is not None:
            return info.confirmed_balance_raw
        return info.balance_raw

    async def _send_with_id(self, request: SendRequest) -> SendResult:
        try:
            destination = check_payout_destination(request.destination, self.operator_address)
        except InvalidAddressError as error:
            log.warning("payout_not_sent", payout_id=request.payout_id, reason=error.safe_message)
            return SendResult(SendOutcome.REJECTED, None, error.safe_message)

        attempt = 1
        while True:
            try:
                block_hash = await self._node.send(
                    self._wallet_id,
                    self.operator_address,
                    destination,
                    request.amount_raw,
                    request.idempotency_key,
                )
            except _REFUSALS as error:
                return SendResult(SendOutcome.REJECTED, None, error.node_text)
            except NodeReplyError as error:
                # A wallet block error (the block may still land) or an error text this client
                # does not know gives no verdict. Repeating the same id later is safe, so leave
                # the payout for reconciliation.
                log.warning(
                    "wallet_send_outcome_unknown",
                    payout_id=request.payout_id,
                    error=type(error).__name__,
                    node_text=error.node_text,
                )
                return SendResult(SendOutcome.UNCERTAIN, None, error.node_text)
            except NodeTransportError as error:
                reason = "timeout" if isinstance(error, NodeTimeoutError) else "node unavailable"
                if attempt >= self._attempts:
                    return SendResult(SendOutcome.UNCERTAIN, None, reason)
                attempt += 1
                log.info(
                    "wallet_send_retry",
                    payout_id=request.payout_id,
                    attempt=attempt,
                    reason=reason,
                )
                await self._sleep(self._retry_delay)
            except Exception:
                # The node may have sent already, so an unexpected failure is no refusal.
                log.exception("wallet_send_failed_unexpectedly", payout_id=request.payout_id)
                return SendResult(SendOutcome.UNCERTAIN, None, "unexpected error")
            else:
                return SendResult(SendOutcome.ACCEPTED, block_hash)


def _log_result(event: str, request: SendRequest, result: SendResult) -> None:
    log.info(
        event,
        payout_id=request.payout_id,
        amount_raw=request.amount_raw,
        block_hash=result.block_hash,
        outcome=result.outcome.value,
        reason=result.reason,
    )
