"""Async client for the Banano node RPC (the Nano node RPC with `ban_` addresses).

Every request is an HTTP POST of a JSON object with an `action` key. Amounts are decimal
strings of raw on the wire and `int` here. A node reports errors with status 200 and a body
`{"error": text}`, which `rpc_errors.error_from_text` turns into typed errors.

Read actions are retried with backoff after transport errors because repeating them changes
nothing. `process`, `send` and `work_generate` are sent once: the senders decide whether a
repeat is safe (the same stored block, or the same `send` id).

Each request has a deadline for the whole exchange, connecting and reading every byte
included, so a node that trickles its reply cannot hold a caller longer than the timeout.
A reply that cannot be read (not JSON, nested too deeply, numbers too long for `int`, fields
missing or mistyped) raises `NodeUnavailableError`, never a bare `ValueError`. Redirects are
not followed, and proxy environment variables are ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
import structlog

from core.banano.blocks import BlockSubtype, StateBlock
from core.banano.rpc_errors import NodeTransportError, UnknownNodeError
from core.banano.rpc_replies import (
    AccountBalance,
    AccountInfo,
    BlockInfo,
    HistoryEntry,
    malformed_reply,
    parse_account_balance,
    parse_account_history,
    parse_account_info,
    parse_block_info,
    parse_hash,
    parse_receivable,
    parse_work,
)
from core.banano.rpc_transport import NodeTransport, RequestObserver, RequestOutcome

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry schedule of read actions after a transport error: attempts and backoff delays."""

    attempts: int = 3
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 2.0

    def delay_before(self, attempt: int) -> float:
        """Return the wait before `attempt` (2, 3, ...): doubling from the base, capped."""
        delay: float = self.base_delay_seconds * 2.0 ** (attempt - 2)
        return min(delay, self.max_delay_seconds)


class NodeClient:
    """Banano node RPC over aiohttp. Pass an `aiohttp.ClientSession` to share a connection pool.

    `timeout_seconds` bounds each request as a whole (`work_timeout_seconds` for
    `work_generate`). A read retried after transport errors can take `read_retry.attempts`
    times as long, plus the backoff delays. Without `session` the client opens its own on the
    first request and `aclose` closes it. A given session stays open and its own timeouts
    apply as well. `on_request` is called after every HTTP request with its action and outcome.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_seconds: float = 10.0,
        work_timeout_seconds: float = 60.0,
        read_retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        on_request: RequestObserver | None = None,
    ) -> None:
        self._url = base_url
        self._transport = NodeTransport(base_url, session, on_request)
        self._timeout_seconds = timeout_seconds
        self._work_timeout_seconds = work_timeout_seconds
        self._read_retry = read_retry if read_retry is not None else RetryPolicy()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"NodeClient(url={self._url!r})"

    async def aclose(self) -> None:
        """Close the HTTP session if this object opened it. Later requests raise errors."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def account_info(self, account: str) -> AccountInfo:
        """Read frontier, balance, representative and confirmed state in one reply.

        Raises `AccountNotFoundError` for an account that has never received anything.
        """
        return await self._read(
            "account_info",
            {"account": account, "representative": "true", "include_confirmed": "true"},
            parse_account_info,
        )

    async def account_balance(self, account: str) -> AccountBalance:
        """Read the balance and the receivable total. An unopened account has balance 0.

        Whether unconfirmed blocks count depends on the node; the sandbox node counts only
        confirmed ones unless asked otherwise.
        """
        return await self._read("account_balance", {"account": account}, parse_account_balance)

    async def receivable(self, account: str, count: int, threshold_raw: int = 1) -> dict[str, int]:
        """Return confirmed sends to `account` not yet received, as {send hash: amount_raw}.

        Only sends of at least `threshold_raw` are listed, at most `count` of them. Nodes from
        before the `receivable` action was added return "Unknown command", and this client then
        asks with the older name, `pending`.
        """
        payload = {
            "account": account,
            "count": str(count),
            "threshold": str(threshold_raw),
            "source": "true",
            "include_only_confirmed": "true",
        }
        try:
            return await self._read("receivable", payload, parse_receivable)
        except UnknownNodeError as error:
            if error.node_text != "Unknown command":
                raise
            return await self._read("pending", payload, parse_receivable)

    async def block_info(self, block_hash: str) -> BlockInfo:
        """Read a block by hash. Raises `BlockNotFoundError` when the node does not have it."""
        return await self._read(
            "block_info",
            {"hash": block_hash, "json_block": "true"},
            lambda data: parse_block_info(data, block_hash),
        )

    async def account_history(
        self, account: str, count: int, head: str | None = None
    ) -> list[HistoryEntry]:
        """Return up to `count` blocks of the account, newest first, from `head` if given.

        To read further back, call again with `head` set to the last entry's `previous`, until
        that is `ZERO_HASH` (the open block's previous).
        """
        payload = {"account": account, "count": str(count), "raw": "true"}
        if head is not None:
            payload["head"] = head
        return await self._read("account_history", payload, parse_account_history)

    async def process(
        self, block: StateBlock, subtype: BlockSubtype | None = None, *, do_work: bool = False
    ) -> str:
        """Publish a signed block once and return its hash.

        `subtype` defaults to the block's own. With `do_work` the node computes the proof of
        work (public APIs offer this). Raises the typed error for the node's verdict, or a
        `NodeTransportError` when the outcome is unknown. The caller decides whether to
        submit the same block again.
        """
        payload: dict[str, Any] = {"json_block": "true", "block": block.to_rpc_json()}
        subtype = subtype if subtype is not None else block.subtype
        if subtype is not None:
            payload["subtype"] = subtype
        if do_work:
            payload["do_work"] = True
        expected_hash = block.hash()

        def parse_processed_hash(reply: dict[str, Any]) -> str:
            block_hash = parse_hash(reply, "hash", "process")
            if block_hash != expected_hash:
                log.error(
                    "node_process_hash_mismatch", block_hash=expected_hash, node_hash=block_hash
                )
                raise malformed_reply("process", "hash")
            return block_hash

        block_hash = await self._transport.post(
            "process", payload, self._timeout_seconds, parse_processed_hash
        )
        log.info("node_block_processed", block_hash=block_hash, subtype=subtype)
        return block_hash

    async def work_generate(self, root: str, difficulty_hex: str) -> str:
        """Ask the node to compute proof of work for `root` at `difficulty_hex` (16 hex digits).

        Needs `enable_control` on the node. Public nodes reject it, which raises
        `ControlDisabledError`.
        """
        return await self._transport.post(
            "work_generate",
            {"hash": root, "difficulty": difficulty_hex},
            self._work_timeout_seconds,
            parse_work,
        )

    async def send(
        self, wallet: str, source: str, destination: str, amount_raw: int, send_id: str
    ) -> str:
        """Send from an account of a node wallet and return the block hash.

        The node stores `send_id` with the block it creates, so repeating the call with the
        same id returns that block instead of sending again. The wallet id is never logged.
        """
        block_hash = await self._transport.post(
            "send",
            {
                "wallet": wallet,
                "source": source,
                "destination": destination,
                "amount": str(amount_raw),
                "id": send_id,
            },
            self._timeout_seconds,
            lambda data: parse_hash(data, "block", "send"),
        )
        log.info("node_wallet_send_replied", block_hash=block_hash, amount_raw=amount_raw)
        return block_hash

    async def _read(
        self, action: str, payload: Mapping[str, Any], parse: Callable[[dict[str, Any]], T]
    ) -> T:
        attempt = 1
        while True:
            try:
                return await self._transport.post(action, payload, self._timeout_seconds, parse)
            except NodeTransportError as error:
                if attempt >= self._read_retry.attempts:
                    raise
                attempt += 1
                delay = self._read_retry.delay_before(attempt)
                log.info(
                    "node_rpc_retry",
                    action=action,
                    attempt=attempt,
                    delay_seconds=delay,
                    error=type(error).__name__,
                )
                await self._sleep(delay)


__all__ = [
    "AccountBalance",
    "AccountInfo",
    "BlockInfo",
    "HistoryEntry",
    "NodeClient",
    "RequestObserver",
    "RequestOutcome",
    "RetryPolicy",
]
