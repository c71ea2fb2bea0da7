"""Receiving sends that wait for the operator account (donations and top-ups)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from core.banano.blocks import ZERO_HASH, StateBlock, build_receive
from core.banano.errors import InvalidAmountError
from core.banano.keys import KeyPair
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import AccountNotFoundError, BlockNotFoundError, NodeError
from core.banano.sender.local_signer import work_cache_for
from core.banano.sender.publishing import BlockPublisher, OperatorAccountLock, Sleep
from core.banano.sender.types import SendOutcome
from core.banano.work import WORK_THRESHOLD, work_root
from core.banano.work_providers import (
    DoWorkProvider,
    WorkCache,
    WorkProvider,
    WorkUnavailableError,
)

log = structlog.get_logger(__name__)

# Records one received send by its hash and returns False when it was already recorded.
OnReceived = Callable[[str, int], Awaitable[bool]]


@dataclass(frozen=True)
class ReceiveSummary:
    """Summary of one receiving run. `stopped_reason` is set when the run ended early."""

    received_count: int
    received_raw: int
    newly_recorded_count: int
    stopped_reason: str | None = None


@dataclass(frozen=True)
class _AccountState:
    frontier: str
    balance_raw: int
    representative: str


class Receiver:
    """Receives the operator account's receivable sends and records each once by its hash.

    The hash recorded is the send's (the receivable block's) hash, which stays the same
    however often receiving is tried. Pass the local signer's `lock` and work cache so
    receives queue behind sends and no block is built while another is in doubt.
    """

    def __init__(
        self,
        node: NodeClient,
        key: KeyPair,
        work_provider: WorkProvider | WorkCache | DoWorkProvider,
        on_received: OnReceived,
        *,
        threshold: int = WORK_THRESHOLD,
        representative: str | None = None,
        lock: OperatorAccountLock | None = None,
        batch_size: int = 20,
        min_amount_raw: int = 1,
        submit_attempts: int = 2,
        retry_delay_seconds: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._node = node
        self._key = key
        self._on_received = on_received
        # Used to open the account. Once it is open, receives keep its current representative.
        self._representative = representative or key.address
        self._lock = lock if lock is not None else OperatorAccountLock()
        self._work_cache = work_cache_for(work_provider, threshold)
        self._batch_size = batch_size
        self._min_amount_raw = min_amount_raw
        self._publisher = BlockPublisher(
            node,
            self._lock,
            submit_attempts=submit_attempts,
            retry_delay_seconds=retry_delay_seconds,
            sleep=sleep,
        )
        # Receives whose outcome was unknown: receive block hash -> (send hash, amount_raw).
        self._unrecorded: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"Receiver(account={self._key.address!r})"

    async def receive_pending(self) -> ReceiveSummary:
        """Receive up to `batch_size` receivable sends, one block at a time under the lock.

        Raises `NodeError` when the receivable list or the account cannot be read.
        """
        received_count = 0
        received_raw = 0
        newly_recorded = 0

        async with self._lock:
            if not await self._publisher.settle_in_doubt():
                return ReceiveSummary(0, 0, 0, "an earlier block of the account is in doubt")
            newly_recorded += await self._record_settled_receives()

            receivable = await self._node.receivable(
                self._key.address, self._batch_size, self._min_amount_raw
            )
            if not receivable:
                return ReceiveSummary(0, 0, newly_recorded)
            state = await self._read_state()

            for send_hash, amount_raw in receivable.items():
                try:
                    block = await self._build_receive(state, send_hash, amount_raw)
                except (WorkUnavailableError, InvalidAmountError) as error:
                    log.warning("receive_not_built", send_hash=send_hash, reason=error.safe_message)
                    return ReceiveSummary(
                        received_count, received_raw, newly_recorded, error.safe_message
                    )

                result = await self._publisher.submit(block)
                block_hash = block.hash()
                if result.outcome is SendOutcome.UNCERTAIN:
                    self._unrecorded[block_hash] = (send_hash, amount_raw)
                    return ReceiveSummary(
                        received_count, received_raw, newly_recorded, result.reason
                    )
                if result.outcome is SendOutcome.REJECTED:
                    log.warning("receive_rejected", send_hash=send_hash, reason=result.reason)
                    return ReceiveSummary(
                        received_count, received_raw, newly_recorded, result.reason
                    )

                received_count += 1
                received_raw += amount_raw
                if await self._record(send_hash, amount_raw, block_hash):
                    newly_recorded += 1
                state = _AccountState(block_hash, block.balance_raw, state.representative)
                if self._work_cache is not None:
                    self._work_cache.precompute(block_hash)

        return ReceiveSummary(received_count, received_raw, newly_recorded)

    async def _read_state(self) -> _AccountState:
        try:
            info = await self._node.account_info(self._key.address)
        except AccountNotFoundError:
            return _AccountState(ZERO_HASH, 0, self._representative)
        return _AccountState(
            info.frontier, info.balance_raw, info.representative or self._representative
        )

    async def _build_receive(
        self, state: _AccountState, send_hash: str, amount_raw: int
    ) -> StateBlock:
        block = build_receive(
            self._key,
            state.frontier,
            state.representative,
            state.balance_raw,
            amount_raw,
            send_hash,
        ).signed(self._key)
        if self._work_cache is None:
            return block
        return block.with_work(await self._work_cache.get(work_root(block)))

    async def _record(self, send_hash: str, amount_raw: int, block_hash: str) -> bool:
        recorded = await self._on_received(send_hash, amount_raw)
        log.info(
            "operator_receive_accepted",
            send_hash=send_hash,
            block_hash=block_hash,
            amount_raw=amount_raw,
            newly_recorded=recorded,
        )
        return recorded

    async def _record_settled_receives(self) -> int:
        # A receive whose reply was lost may have landed since. If the ledger has it, record it
        # now, because its send no longer shows as receivable.
        newly_recorded = 0
        for block_hash, (send_hash, amount_raw) in list(self._unrecorded.items()):
            try:
                await self._node.block_info(block_hash)
            except BlockNotFoundError:
                del self._unrecorded[block_hash]
                continue
            except NodeError as error:
                log.info("receive_lookup_failed", block_hash=block_hash, error=type(error).__name__)
                continue
            del self._unrecorded[block_hash]
            if await self._record(send_hash, amount_raw, block_hash):
                newly_recorded += 1
        return newly_recorded
