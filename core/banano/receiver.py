"""Receiving sends that wait for the operator account (donations and top-ups).

Every run first reads the account's history for receive blocks not recorded yet, so a receive
whose reply was lost, or one made by another wallet with the same seed, is recorded even after
a restart. Recording is idempotent by the send's hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from core.banano.blocks import ZERO_HASH, StateBlock, build_receive
from core.banano.errors import InvalidAmountError
from core.banano.keys import KeyPair
from core.banano.rpc import HistoryEntry, NodeClient
from core.banano.rpc_errors import AccountNotFoundError
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

    The first scan of a process starts at the frontier and may reach the open block. Later
    scans stop at the frontier of the previous one. Each reads at most `max_history_blocks`
    blocks, or has no limit when it is None.
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
        history_page_size: int = 500,
        max_history_blocks: int | None = 10_000,
    ) -> None:
        if history_page_size < 1:
            raise ValueError("history_page_size must be at least 1")
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
        self._history_page_size = history_page_size
        self._max_history_blocks = max_history_blocks
        # The frontier at the end of the last history scan: the next scan stops there.
        self._scanned_frontier: str | None = None
        # Send hashes already passed to `on_received`, so each is passed once per process.
        self._recorded_sends: set[str] = set()

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
            newly_recorded += await self._record_receives_in_history()

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
                    # If the block landed, the history scan of a later run records it.
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
        self._recorded_sends.add(send_hash)
        log.info(
            "operator_receive_recorded",
            send_hash=send_hash,
            block_hash=block_hash,
            amount_raw=amount_raw,
            newly_recorded=recorded,
        )
        return recorded

    async def _record_receives_in_history(self) -> int:
        """Record the receive blocks in the chain since the last scan that are not recorded."""
        try:
            info = await self._node.account_info(self._key.address)
        except AccountNotFoundError:
            return 0
        if info.frontier == self._scanned_frontier:
            return 0

        unrecorded = await self._unrecorded_receives(info.frontier)
        newly_recorded = 0
        # Oldest first, the order in which the account received them.
        for entry in reversed(unrecorded):
            assert entry.link is not None
            if await self._record(entry.link, entry.amount_raw, entry.hash):
                newly_recorded += 1
        self._scanned_frontier = info.frontier
        return newly_recorded

    async def _unrecorded_receives(self, frontier: str) -> list[HistoryEntry]:
        unrecorded: list[HistoryEntry] = []
        scanned = 0
        head = frontier
        while True:
            entries = await self._node.account_history(
                self._key.address, self._history_page_size, head=head
            )
            for entry in entries:
                if entry.hash == self._scanned_frontier:
                    return unrecorded
                scanned += 1
                if _is_receive(entry) and entry.link not in self._recorded_sends:
                    unrecorded.append(entry)

            if not entries:
                return unrecorded
            previous = entries[-1].previous
            if previous is None or previous == ZERO_HASH:
                return unrecorded
            if self._max_history_blocks is not None and scanned >= self._max_history_blocks:
                # NOTE: receives older than this are not looked at, so one whose reply was
                # lost that long ago stays unrecorded. Pass None to scan the whole chain.
                log.info("receive_history_scan_limited", scanned_blocks=scanned, head=head)
                return unrecorded
            head = previous


def _is_receive(entry: HistoryEntry) -> bool:
    return entry.subtype in ("receive", "open") and entry.link is not None
