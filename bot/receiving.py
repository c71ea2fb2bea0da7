"""Receiving operator top-ups with the local signer and recording each in `received_blocks`."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import select

from core.banano.receiver import OnReceived, Receiver
from core.banano.rpc import NodeClient
from core.clock import Clock
from core.db import Database
from core.db.models import ReceivedBlock
from core.services.audit import record_audit

log = structlog.get_logger(__name__)

RECEIVE_INTERVAL = timedelta(seconds=60)

# How far back the operator account's history is searched for the receive block of a send.
RECEIVE_BLOCK_SEARCH_LIMIT = 1_000
_HISTORY_PAGE_SIZE = 100


class ReceiveBlockNotFoundError(LookupError):
    """The operator account's history has no receive block for a send, within the search limit."""


async def record_received_block(
    db: Database,
    clock: Clock,
    *,
    source_block_hash: str,
    block_hash: str,
    amount_raw: int,
) -> bool:
    """Insert a `ReceivedBlock` row with its audit entry, unless the send is recorded already.

    Returns whether a row was inserted.
    """
    async with db.write() as session:
        existing = await session.scalar(
            select(ReceivedBlock.block_hash).where(
                ReceivedBlock.source_block_hash == source_block_hash
            )
        )
        if existing is not None:
            return False
        now = clock()
        session.add(
            ReceivedBlock(
                block_hash=block_hash,
                source_block_hash=source_block_hash,
                amount_raw=amount_raw,
                received_at=now,
            )
        )
        record_audit(
            session,
            action="operator_topup_received",
            at=now,
            detail={
                "block_hash": block_hash,
                "source_block_hash": source_block_hash,
                "amount_raw": amount_raw,
            },
        )
    log.info(
        "operator_topup_received",
        block_hash=block_hash,
        source_block_hash=source_block_hash,
        amount_raw=amount_raw,
    )
    return True


async def find_receive_block(node: NodeClient, account: str, source_block_hash: str) -> str:
    """Return the hash of the block of `account` that received `source_block_hash`.

    Searches the newest `RECEIVE_BLOCK_SEARCH_LIMIT` blocks, newest first, and raises
    `ReceiveBlockNotFoundError` when none of them received it.
    """
    head: str | None = None
    scanned = 0
    while scanned < RECEIVE_BLOCK_SEARCH_LIMIT:
        entries = await node.account_history(account, _HISTORY_PAGE_SIZE, head=head)
        for entry in entries:
            if entry.subtype in ("receive", "open") and entry.link == source_block_hash:
                return entry.hash
        scanned += len(entries)
        if not entries or entries[-1].previous is None:
            break
        head = entries[-1].previous
        if int(head, 16) == 0:
            break
    raise ReceiveBlockNotFoundError(source_block_hash)


def topup_recorder(db: Database, node: NodeClient, account: str, clock: Clock) -> OnReceived:
    """Build the `Receiver` callback that records each received send in `received_blocks`.

    The callback gets only the send's hash, so the receive block's hash is read back from the
    account's history.
    """

    async def on_received(source_block_hash: str, amount_raw: int) -> bool:
        block_hash = await find_receive_block(node, account, source_block_hash)
        return await record_received_block(
            db,
            clock,
            source_block_hash=source_block_hash,
            block_hash=block_hash,
            amount_raw=amount_raw,
        )

    return on_received


async def receive_topups(receiver: Receiver) -> None:
    """Run one receiving pass and log its summary."""
    # NOTE: `Metrics` has no counter for received top-ups yet, so receives are only logged.
    summary = await receiver.receive_pending()
    if summary.received_count or summary.newly_recorded_count or summary.stopped_reason:
        log.info(
            "operator_receive_run",
            received_count=summary.received_count,
            received_raw=summary.received_raw,
            newly_recorded_count=summary.newly_recorded_count,
            stopped_reason=summary.stopped_reason,
        )
