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
        had it, or rejected it for good. Returns False while an outcome is still unknown.
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
                return await self._judge_by_lookup(block_hash, error.node_text)
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

    async def _judge_by_lookup(self, block_hash: str, node_text: str) -> SendResult:
        try:
            await self._node.block_info(block_hash)
        except BlockNotFoundError:
            log.warning("block_outcome_unknown", block_hash=block_hash, reason=node_text)
            return SendResult(SendOutcome.UNCERTAIN, block_hash, node_text)
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
