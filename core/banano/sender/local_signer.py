"""Sending payouts by signing blocks here and publishing them with `process` on any node."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from core.banano.address import check_payout_destination
from core.banano.blocks import StateBlock, build_send
from core.banano.errors import (
    InsufficientBalanceError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidBlockError,
)
from core.banano.keys import KeyPair
from core.banano.rpc import NodeClient
from core.banano.rpc_errors import AccountNotFoundError, NodeError
from core.banano.sender.publishing import BlockPublisher, OperatorAccountLock, Sleep
from core.banano.sender.types import (
    OnChainSigned,
    OnSigned,
    SendOutcome,
    SendRequest,
    SendResult,
    SignedBlock,
)
from core.banano.work import WORK_THRESHOLD, work_root
from core.banano.work_providers import (
    DoWorkProvider,
    WorkCache,
    WorkProvider,
    WorkUnavailableError,
)

log = structlog.get_logger(__name__)

# Work requests in flight at once while a chain of blocks gets its work.
CHAIN_WORK_CONCURRENCY = 4


def work_cache_for(
    work_provider: WorkProvider | WorkCache | DoWorkProvider, threshold: int
) -> WorkCache | None:
    """Return the cache to take work from: the one given, a new one, or None for `do_work`.

    A `WorkCache` passed in keeps its own threshold.
    """
    if isinstance(work_provider, DoWorkProvider):
        return None
    if isinstance(work_provider, WorkCache):
        return work_provider
    return WorkCache(work_provider, threshold)


class LocalSigner:
    """Signs sends with the operator key and publishes them with `process`.

    Each send is built from one `account_info` reading, holds the shared
    `OperatorAccountLock` from that reading until the node replies, and is stored through
    `on_signed` before it is submitted. Pass the same `lock` and `WorkCache` to the
    `Receiver` of the account so that receives queue behind sends and reuse their work.
    """

    def __init__(
        self,
        node: NodeClient,
        key: KeyPair,
        representative: str | None,
        work_provider: WorkProvider | WorkCache | DoWorkProvider,
        threshold: int = WORK_THRESHOLD,
        *,
        lock: OperatorAccountLock | None = None,
        submit_attempts: int = 2,
        retry_delay_seconds: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._node = node
        self._key = key
        self.operator_address = key.address
        self._representative = representative
        self.lock = lock if lock is not None else OperatorAccountLock()
        self.work_cache = work_cache_for(work_provider, threshold)
        self._publisher = BlockPublisher(
            node,
            self.lock,
            submit_attempts=submit_attempts,
            retry_delay_seconds=retry_delay_seconds,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"LocalSigner(operator_address={self.operator_address!r})"

    async def send(self, request: SendRequest, on_signed: OnSigned) -> SendResult:
        """Build, sign, store (through `on_signed`) and submit one send of the operator account.

        Failures before signing return REJECTED without a hash: nothing exists that could
        land. After `on_signed` the result always carries the hash.
        """
        try:
            destination = check_payout_destination(request.destination, self.operator_address)
        except InvalidAddressError as error:
            return _not_sent(request, error.safe_message)

        async with self.lock:
            if not await self._publisher.settle_in_doubt():
                return _not_sent(request, "an earlier block of the operator account is in doubt")

            try:
                info = await self._node.account_info(self.operator_address)
            except AccountNotFoundError:
                return _not_sent(request, "the operator account is not opened")
            except NodeError as error:
                return _not_sent(request, f"reading the operator account failed: {error}")
            self._note_external_change(info.frontier)

            representative = self._representative or info.representative
            if representative is None:
                return _not_sent(request, "the operator account has no representative")
            try:
                unsigned = build_send(
                    self._key,
                    info.frontier,
                    representative,
                    info.balance_raw,
                    request.amount_raw,
                    destination,
                )
            except InsufficientBalanceError:
                return _not_sent(request, "the operator balance is below the amount")
            except (InvalidAmountError, InvalidAddressError, InvalidBlockError) as error:
                return _not_sent(request, error.safe_message)

            try:
                block = await self._add_work(unsigned.signed(self._key))
            except WorkUnavailableError as error:
                return _not_sent(request, error.safe_message)

            block_hash = block.hash()
            await on_signed(SignedBlock(block_hash=block_hash, block_json=block.to_json_text()))
            log.info(
                "payout_block_signed",
                payout_id=request.payout_id,
                amount_raw=request.amount_raw,
                block_hash=block_hash,
            )

            result = await self._publisher.submit(block)
            if result.outcome is not SendOutcome.REJECTED and self.work_cache is not None:
                self.work_cache.precompute(block_hash)
            _log_result("payout_block_submitted", request, result)
            return result

    async def send_chain(
        self, requests: Sequence[SendRequest], on_signed: OnChainSigned
    ) -> list[SendResult]:
        """Send several payouts as one chain of blocks; return one result per request, in order.

        The chain is built from one `account_info` reading, each block on the previous one's
        hash, and every block is signed and has its work before `on_signed` stores them all
        in one call. Only then are they submitted, in chain order. The first block the node
        does not accept ends the submissions: the blocks after it are HELD, because they
        follow it and can land only after it does. Requests that fail before signing are
        REJECTED without a hash and left out of the chain.
        """
        results: list[SendResult | None] = [None] * len(requests)
        destinations: dict[int, str] = {}
        for index, request in enumerate(requests):
            try:
                destinations[index] = check_payout_destination(
                    request.destination, self.operator_address
                )
            except InvalidAddressError as error:
                results[index] = _not_sent(request, error.safe_message)
        if not destinations:
            return _filled(results)

        async with self.lock:
            if not await self._publisher.settle_in_doubt():
                return _all_not_sent(
                    requests, results, "an earlier block of the operator account is in doubt"
                )
            try:
                info = await self._node.account_info(self.operator_address)
            except AccountNotFoundError:
                return _all_not_sent(requests, results, "the operator account is not opened")
            except NodeError as error:
                return _all_not_sent(
                    requests, results, f"reading the operator account failed: {error}"
                )
            self._note_external_change(info.frontier)
            representative = self._representative or info.representative
            if representative is None:
                return _all_not_sent(
                    requests, results, "the operator account has no representative"
                )

            chain: list[tuple[int, StateBlock]] = []
            work = _ChainWork(self.work_cache)
            try:
                frontier, balance_raw = info.frontier, info.balance_raw
                for index, destination in destinations.items():
                    request = requests[index]
                    try:
                        unsigned = build_send(
                            self._key,
                            frontier,
                            representative,
                            balance_raw,
                            request.amount_raw,
                            destination,
                        )
                    except InsufficientBalanceError:
                        reason = "the operator balance is below the amount"
                        results[index] = _not_sent(request, reason)
                        continue
                    except (InvalidAmountError, InvalidAddressError, InvalidBlockError) as error:
                        results[index] = _not_sent(request, error.safe_message)
                        continue
                    # The work's root is the previous block's hash, so its search can run
                    # on the work provider while this block and the next ones are signed.
                    await work.start(work_root(unsigned))
                    block = unsigned.signed(self._key)
                    chain.append((index, block))
                    frontier, balance_raw = block.hash(), balance_raw - request.amount_raw
                    # Signing takes about a millisecond; other tasks run between blocks.
                    await asyncio.sleep(0)

                chain = await work.add_to(chain, requests, results)
            finally:
                await work.cancel()
            if not chain:
                return _filled(results)

            signed = [
                (requests[index], SignedBlock(block.hash(), block.to_json_text()))
                for index, block in chain
            ]
            await on_signed(signed)
            log.info(
                "payout_chain_signed",
                blocks=len(signed),
                first_block_hash=signed[0][1].block_hash,
            )

            last_accepted: str | None = None
            blocker: str | None = None
            for index, block in chain:
                request = requests[index]
                if blocker is not None:
                    reason = f"not submitted: it follows block {blocker}, which was not accepted"
                    results[index] = SendResult(SendOutcome.HELD, block.hash(), reason)
                    continue
                result = await self._publisher.submit(block)
                _log_result("payout_block_submitted", request, result)
                results[index] = result
                if result.outcome is SendOutcome.ACCEPTED:
                    last_accepted = result.block_hash
                else:
                    blocker = block.hash()
            if blocker is None and last_accepted is not None and self.work_cache is not None:
                self.work_cache.precompute(last_accepted)
            return _filled(results)

    async def resubmit(self, request: SendRequest, stored: SignedBlock | None) -> SendResult:
        """Submit the stored block exactly as stored; never build another one.

        Without a stored block nothing was signed, so the result is REJECTED. A stored block
        that cannot be read back or does not match its hash stays UNCERTAIN: the block it held
        may have landed, so only reconciliation by the stored hash may settle the payout.
        A block whose place in the chain another block took is REJECTED with a reason that
        names that block.
        """
        if stored is None:
            return _not_sent(request, "no signed block was stored, so nothing was sent")
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

        async with self.lock:
            result = await self._publisher.submit(block)
        _log_result("payout_block_resubmitted", request, result)
        return result

    async def precompute_next_work(self) -> None:
        """Start computing work for the account's current frontier, before the first send."""
        if self.work_cache is None:
            return
        try:
            info = await self._node.account_info(self.operator_address)
        except AccountNotFoundError:
            return
        self.work_cache.precompute(info.frontier)

    async def operator_balance_raw(self) -> int:
        """Return the confirmed balance (the balance if the node omits it), or 0 when unopened."""
        try:
            info = await self._node.account_info(self.operator_address)
        except AccountNotFoundError:
            return 0
        if info.confirmed_balance_raw is not None:
            return info.confirmed_balance_raw
        return info.balance_raw

    async def _add_work(self, block: StateBlock) -> StateBlock:
        if self.work_cache is None:
            return block
        return block.with_work(await self.work_cache.get(work_root(block)))

    def _note_external_change(self, frontier: str) -> None:
        # Another wallet using the same seed, or a node that lags behind the one that took
        # the last block, shows a different frontier. The node's fork check keeps this safe.
        last_frontier = self.lock.last_frontier
        if last_frontier is not None and last_frontier != frontier:
            log.warning(
                "operator_frontier_changed_elsewhere",
                expected_frontier=last_frontier,
                frontier=frontier,
            )


def _not_sent(request: SendRequest, reason: str) -> SendResult:
    log.warning("payout_not_sent", payout_id=request.payout_id, reason=reason)
    return SendResult(SendOutcome.REJECTED, None, reason)


class _ChainWork:
    """Work for the blocks of one chain, asked for while the chain is being built and signed.

    Only a few requests run at a time, because each request in flight opens a pooled
    connection, and httpx, the work server provider's client, scans every idle connection of
    its pool before each later request.
    """

    def __init__(self, cache: WorkCache | None) -> None:
        self._cache = cache
        self._limit = asyncio.Semaphore(CHAIN_WORK_CONCURRENCY)
        self._tasks: list[asyncio.Task[str]] = []

    async def start(self, root: str) -> None:
        """Start getting work for the next block, whose previous block is `root`."""
        if self._cache is None:
            return
        self._tasks.append(asyncio.create_task(self._get(self._cache, root)))
        # Let the request go out before the signing that follows takes the loop.
        await asyncio.sleep(0)

    async def _get(self, cache: WorkCache, root: str) -> str:
        async with self._limit:
            return await cache.get(root)

    async def add_to(
        self,
        chain: list[tuple[int, StateBlock]],
        requests: Sequence[SendRequest],
        results: list[SendResult | None],
    ) -> list[tuple[int, StateBlock]]:
        """Return the chain with its work, cut at the first block whose work never came.

        Nothing is stored yet, so the blocks cut off were never anywhere but in memory.
        """
        if self._cache is None or not chain:
            return chain
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        with_work: list[tuple[int, StateBlock]] = []
        for position, ((index, block), outcome) in enumerate(zip(chain, outcomes, strict=True)):
            if isinstance(outcome, WorkUnavailableError):
                for later_index, _ in chain[position:]:
                    results[later_index] = _not_sent(requests[later_index], outcome.safe_message)
                return with_work
            if isinstance(outcome, BaseException):
                raise outcome
            with_work.append((index, block.with_work(outcome)))
        return with_work

    async def cancel(self) -> None:
        """Stop the requests still running, after an error or once the work was added."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _all_not_sent(
    requests: Sequence[SendRequest], results: list[SendResult | None], reason: str
) -> list[SendResult]:
    for index, request in enumerate(requests):
        if results[index] is None:
            results[index] = _not_sent(request, reason)
    return _filled(results)


def _filled(results: list[SendResult | None]) -> list[SendResult]:
    filled = [result for result in results if result is not None]
    if len(filled) != len(results):
        raise RuntimeError("a request of the chain was left without a result")
    return filled


def _log_result(event: str, request: SendRequest, result: SendResult) -> None:
    log.info(
        event,
        payout_id=request.payout_id,
        amount_raw=request.amount_raw,
        block_hash=result.block_hash,
        outcome=result.outcome.value,
        reason=result.reason,
    )
