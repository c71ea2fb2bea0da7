"""Publishing blocks of the operator account one at a time, and judging what the node replied.

Both the local signer and the receiver add blocks to the operator account. They share one
`OperatorAccountLock` so that every block is built on the previous one's hash, and so that no
new block is built while an earlier one may still land in the same place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog

from core.banano.blocks import StateBlock
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import (
    AccountNotFoundError,
    BlockNotFoundError,
    BlockRejectedError,
    NodeError,
    NodeReplyError,
    NodeTimeoutError,
    NodeTransportError,
    OldBlockError,
)
from core.banano.sender.types import SendOutcome, SendResult

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class OperatorAccountLock:
    """Serializes the blocks of one account within this process.

    It also carries what holders must know between blocks: `in_doubt`, the blocks whose
    outcome is unknown by hash (no new block is built until they are settled), and
    `last_frontier`, the hash of the last block this process published.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.in_doubt: dict[str, StateBlock] = {}
        self.last_frontier: str | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()

    def locked(self) -> bool:
        """Return whether a holder is building or submitting a block right now."""
        return self._lock.locked()


class BlockPublisher:
    """Submits signed blocks with `process` and turns the reply into a `SendResult`.

    A transport error is followed by up to `submit_attempts - 1` repeats of the same block,
    which is safe because a node that already has the block returns "Old block".
    """

    def __init__(
        self,
        node: NodeClient,
        lock: OperatorAccountLock,
        *,
        submit_attempts: int = 2,
        retry_delay_seconds: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if submit_attempts < 1:
            raise ValueError("submit_attempts must be at least 1")
        self._node = node
        self.lock = lock
        self._submit_attempts = submit_attempts
        self._retry_delay = retry_delay_seconds
        self._sleep = sleep

    async def submit(self, block: StateBlock) -> SendResult:
        """Process `block` (the caller holds the lock) and record it as in doubt if unsettled.

        A block without work is sent with `do_work`, so the node adds the work.
        """
        block_hash = block.hash()
        try:
            result = await self._process_with_retries(block, block_hash)
        except asyncio.CancelledError:
            # The request may have reached the node before the caller was cancelled.
            self.lock.in_doubt[block_hash] = block
            raise
        except Exception:
            # A bug below this point must not hide that the block may have landed.
            log.exception("block_submit_failed_unexpectedly", block_hash=block_hash)
            result = SendResult(SendOutcome.UNCERTAIN, block_hash, "unexpected error")

        if result.outcome is SendOutcome.UNCERTAIN:
            self.lock.in_doubt[block_hash] = block
        else:
            self.lock.in_doubt.pop(block_hash, None)
        if result.outcome is SendOutcome.ACCEPTED:
            self.lock.last_frontier = block_hash
        return result

    async def settle_in_doubt(self) -> bool:
        """Submit every in-doubt block again, oldest first (the caller holds the lock).

        Returns True when no block is in doubt any more: the node accepted each one, already
        had it, rejected it for good, or has another block in its place. Returns False
        while an outcome is still unknown.
        """
        for block_hash, block in list(self.lock.in_doubt.items()):
            log.info("in_doubt_block_resubmitting", block_hash=block_hash)
            result = await self.submit(block)
            if result.outcome is SendOutcome.UNCERTAIN:
                log.warning("in_doubt_block_unsettled", block_hash=block_hash, reason=result.reason)
                return False
            log.info("in_doubt_block_settled", block_hash=block_hash, outcome=result.outcome.value)
        return True

    async def _process_with_retries(self, block: StateBlock, block_hash: str) -> SendResult:
        do_work = block.work is None
        attempt = 1
        while True:
            try:
                await self._node.process(block, do_work=do_work)
            except OldBlockError:
                log.info("block_already_known", block_hash=block_hash)
                return SendResult(SendOutcome.ACCEPTED, block_hash)
            except BlockRejectedError as error:
                log.warning("block_rejected", block_hash=block_hash, node_text=error.node_text)
                return SendResult(SendOutcome.REJECTED, block_hash, error.node_text)
            except NodeReplyError as error:
                # No verdict on the block itself (an unknown text, or a subtype check against
                # the account's current state): the ledger decides.
                return await self._judge_by_lookup(block, block_hash, error.node_text)
            except NodeTransportError as error:
                reason = "timeout" if isinstance(error, NodeTimeoutError) else "node unavailable"
                if attempt >= self._submit_attempts:
                    log.warning("block_outcome_unknown", block_hash=block_hash, reason=reason)
                    return SendResult(SendOutcome.UNCERTAIN, block_hash, reason)
                attempt += 1
                log.info(
                    "block_submit_retry", block_hash=block_hash, attempt=attempt, reason=reason
                )
                await self._sleep(self._retry_delay)
            else:
                return SendResult(SendOutcome.ACCEPTED, block_hash)

    async def _judge_by_lookup(
        self, block: StateBlock, block_hash: str, node_text: str
    ) -> SendResult:
        try:
            await self._node.block_info(block_hash)
        except BlockNotFoundError:
            return await self._judge_missing_block(block, block_hash, node_text)
        except NodeError as error:
            log.warning(
                "block_lookup_failed",
                block_hash=block_hash,
                reason=node_text,
                error=type(error).__name__,
            )
            return SendResult(SendOutcome.UNCERTAIN, block_hash, node_text)
        log.info("block_found_after_error_reply", block_hash=block_hash, node_text=node_text)
        return SendResult(SendOutcome.ACCEPTED, block_hash)

    async def _judge_missing_block(
        self, block: StateBlock, block_hash: str, node_text: str
    ) -> SendResult:
        # A node compares a resubmitted block with the account's current state, so a block
        # whose place another block took gets a subtype error instead of "Fork". So the place
        # decides: while another block is there, this block cannot enter the ledger.
        try:
            other_hash = await find_replacement(self._node, block)
        except NodeError as error:
            log.warning(
                "block_place_lookup_failed",
                block_hash=block_hash,
                reason=node_text,
                error=type(error).__name__,
            )
            return SendResult(SendOutcome.UNCERTAIN, block_hash, node_text)

        if other_hash is None:
            log.warning("block_outcome_unknown", block_hash=block_hash, reason=node_text)
            return SendResult(SendOutcome.UNCERTAIN, block_hash, node_text)
        log.warning(
            "block_replaced",
            block_hash=block_hash,
            other_hash=other_hash,
            node_text=node_text,
        )
        reason = f"block {other_hash} already follows this block's previous ({node_text})"
        return SendResult(SendOutcome.REJECTED, block_hash, reason)


async def find_replacement(node: NodeClient, block: StateBlock) -> str | None:
    """Return the hash of another block that took `block`'s place in its chain, or None.

    The place is taken when the block's `previous` has a successor other than `block`, or,
    for an account's first block, when the account is already open with another block.
    None means the place is free or the node does not know the previous block yet. Raises
    `NodeError` when the node cannot be read.
    """
    block_hash = block.hash()
    if block.is_open:
        try:
            info = await node.account_info(block.account)
        except AccountNotFoundError:
            return None
        return info.open_block if info.open_block not in (None, block_hash) else None

    try:
        previous = await node.block_info(block.previous)
    except BlockNotFoundError:
        return None
    if previous.successor is not None and previous.successor != block_hash:
        return previous.successor
    return None
