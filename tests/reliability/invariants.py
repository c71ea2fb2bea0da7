"""The money rules as checks that return violations instead of raising.

A campaign calls `check_anytime` after every kill or fault round and `check_final` after its
last clean run, and counts what they return. Each violation is one line of text naming the
payout, accrual, player or block involved.

What `check_anytime` checks, in any state a crash or a fault can leave behind:
- accruals: per player, the raw of the accruals that are not split equals what the campaign
  created, so no accrual was lost or invented. Each split's two parts add up to it;
- claims: every claimed accrual is open and claimed by an existing payout that is not
  failed, and no accrual is in two payouts that move money;
- amounts: every payout that is not failed pays exactly the sum of the accruals it claims;
- ledger: every send to a player's wallet belongs to exactly one payout of that player with
  the same amount, found by stored block hash. A node-wallet send whose reply was lost
  belongs to a pending payout without a hash. No payout owns two blocks, no failed payout's
  block is in the ledger, and no player received more than their open accruals.

`check_final` adds, after a clean run: every payout is confirmed or failed, each wallet
received exactly the sum of its player's confirmed payouts and of the accruals they claim,
no open accrual is left unpaid, and every send is confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from core.banano.blocks import StateBlock
from core.banano.errors import InvalidBlockError
from core.db.models import Accrual, AccrualStatus, Payout, PayoutAccrual, PayoutState
from core.db.session import Database
from core.sandbox.banano_ledger import LedgerBlock
from core.sandbox.banano_node import SandboxBananoNode


@dataclass(frozen=True)
class TrackedPlayer:
    """A player the campaign created, and the wallet address their payouts go to."""

    player_id: int
    address: str


@dataclass
class LedgerRows:
    """The rows the money rules talk about, read in one transaction."""

    accruals: dict[int, Accrual]
    payouts: dict[int, Payout]
    claims: list[tuple[int, int]]


async def read_rows(db: Database) -> LedgerRows:
    """Read every accrual, payout and claim history row."""
    async with db.read() as session:
        accruals = {row.id: row for row in await session.scalars(select(Accrual))}
        payouts = {row.id: row for row in await session.scalars(select(Payout))}
        claims = [
            (row.payout_id, row.accrual_id) for row in await session.scalars(select(PayoutAccrual))
        ]
    return LedgerRows(accruals, payouts, claims)


def _moves_money(payout: Payout) -> bool:
    return not payout.dry_run and payout.state is not PayoutState.FAILED


def _open_raw_by_player(rows: LedgerRows) -> dict[int, int]:
    owed: dict[int, int] = defaultdict(int)
    for accrual in rows.accruals.values():
        if accrual.status is AccrualStatus.OPEN:
            owed[accrual.player_id] += accrual.amount_raw
    return owed


def _check_accruals(rows: LedgerRows, created_raw: Mapping[int, int]) -> list[str]:
    violations: list[str] = []
    leaf_raw: dict[int, int] = defaultdict(int)
    children: dict[int, list[Accrual]] = defaultdict(list)
    for accrual in rows.accruals.values():
        if accrual.amount_raw != accrual.kills * accrual.raw_per_kill:
            violations.append(f"accrual {accrual.id} amount is not kills times raw per kill")
        if accrual.parent_id is not None:
            children[accrual.parent_id].append(accrual)
        if accrual.status is not AccrualStatus.SPLIT:
            leaf_raw[accrual.player_id] += accrual.amount_raw

    for accrual in rows.accruals.values():
        if accrual.status is not AccrualStatus.SPLIT:
            continue
        parts = children[accrual.id]
        if len(parts) != 2 or sum(part.amount_raw for part in parts) != accrual.amount_raw:
            violations.append(f"split accrual {accrual.id} does not equal its two parts")
        if accrual.payout_id is not None:
            violations.append(f"split accrual {accrual.id} is claimed by a payout")

    for player_id in set(created_raw) | set(leaf_raw):
        expected = created_raw.get(player_id, 0)
        if leaf_raw.get(player_id, 0) != expected:
            violations.append(
                f"player {player_id} has {leaf_raw.get(player_id, 0)} raw of accruals, "
                f"the campaign created {expected}"
            )
    return violations


def _check_claims(rows: LedgerRows) -> list[str]:
    violations: list[str] = []
    claimed_by: dict[int, list[int]] = defaultdict(list)
    for accrual in rows.accruals.values():
        if accrual.payout_id is None:
            continue
        payout = rows.payouts.get(accrual.payout_id)
        if payout is None:
            violations.append(f"accrual {accrual.id} is claimed by a missing payout")
            continue
        if payout.state is PayoutState.FAILED:
            violations.append(f"accrual {accrual.id} is still claimed by failed payout {payout.id}")
        if accrual.status is not AccrualStatus.OPEN:
            violations.append(f"accrual {accrual.id} is {accrual.status.value} but claimed")
        claimed_by[payout.id].append(accrual.id)

    for payout in rows.payouts.values():
        if payout.state is PayoutState.FAILED:
            continue
        claimed = claimed_by.get(payout.id, [])
        claimed_raw = sum(rows.accruals[accrual_id].amount_raw for accrual_id in claimed)
        if claimed_raw != payout.amount_raw:
            violations.append(
                f"payout {payout.id} pays {payout.amount_raw} raw but claims {claimed_raw}"
            )

    live_payouts_of: dict[int, list[int]] = defaultdict(list)
    for payout_id, accrual_id in rows.claims:
        payout = rows.payouts.get(payout_id)
        if payout is not None and _moves_money(payout):
            live_payouts_of[accrual_id].append(payout_id)
    for accrual_id, payout_ids in live_payouts_of.items():
        if len(payout_ids) > 1:
            violations.append(f"accrual {accrual_id} is in live payouts {sorted(payout_ids)}")
    return violations


def _failed_block_hash(payout: Payout) -> str | None:
    if not payout.block_json:
        return None
    try:
        return StateBlock.from_json_text(payout.block_json).hash()
    except InvalidBlockError:
        return None


def _check_node_ledger(
    rows: LedgerRows, node: SandboxBananoNode, players: list[TrackedPlayer]
) -> list[str]:
    violations: list[str] = []
    by_hash = {
        payout.block_hash.upper(): payout
        for payout in rows.payouts.values()
        if payout.block_hash is not None and not payout.dry_run
    }
    for payout in rows.payouts.values():
        if payout.state is not PayoutState.FAILED:
            continue
        failed_hash = _failed_block_hash(payout)
        # A later payout of the same amount on the same frontier is the very same block.
        landed = failed_hash is not None and node.block(failed_hash) is not None
        if landed and failed_hash not in by_hash:
            violations.append(f"failed payout {payout.id}'s block {failed_hash} landed")

    owed = _open_raw_by_player(rows)
    for player in players:
        blocks = node.blocks_sent_to(player.address)
        violations.extend(_match_blocks(rows, player, blocks, by_hash))
        received_raw = sum(block.amount_raw for block in blocks)
        if received_raw > owed.get(player.player_id, 0):
            violations.append(
                f"player {player.player_id} received {received_raw} raw, more than the "
                f"{owed.get(player.player_id, 0)} raw of their open accruals"
            )
    return violations


def _match_blocks(
    rows: LedgerRows,
    player: TrackedPlayer,
    blocks: list[LedgerBlock],
    by_hash: dict[str, Payout],
) -> list[str]:
    violations: list[str] = []
    # A node-wallet send whose reply was lost leaves a block but no stored hash yet.
    unhashed = [
        payout
        for payout in rows.payouts.values()
        if payout.player_id == player.player_id
        and payout.state is PayoutState.PENDING
        and payout.block_hash is None
        and not payout.dry_run
    ]
    owners: dict[int, str] = {}
    for block in blocks:
        payout = by_hash.get(block.hash.upper())
        if payout is None:
            payout = next((p for p in unhashed if p.amount_raw == block.amount_raw), None)
            if payout is None:
                violations.append(
                    f"block {block.hash} of {block.amount_raw} raw to player "
                    f"{player.player_id} belongs to no payout"
                )
                continue
            unhashed.remove(payout)
        if payout.player_id != player.player_id or payout.destination != player.address:
            violations.append(f"block {block.hash} pays player {player.player_id}, not payout's")
        if payout.state is PayoutState.FAILED:
            violations.append(f"failed payout {payout.id} has block {block.hash} in the ledger")
        if payout.amount_raw != block.amount_raw:
            violations.append(
                f"payout {payout.id} is {payout.amount_raw} raw, its block {block.hash} sends "
                f"{block.amount_raw}"
            )
        if payout.id in owners:
            violations.append(
                f"payout {payout.id} was sent twice: blocks {owners[payout.id]} and {block.hash}"
            )
        owners[payout.id] = block.hash
    return violations


async def check_anytime(
    db: Database,
    node: SandboxBananoNode,
    players: list[TrackedPlayer],
    created_raw: Mapping[int, int],
) -> list[str]:
    """Return the money rules broken right now, in any state a crash or fault can leave."""
    rows = await read_rows(db)
    violations = _check_accruals(rows, created_raw)
    violations.extend(_check_claims(rows))
    violations.extend(_check_node_ledger(rows, node, players))
    return violations


async def check_final(
    db: Database,
    node: SandboxBananoNode,
    players: list[TrackedPlayer],
    created_raw: Mapping[int, int],
) -> list[str]:
    """Return the rules broken after a clean run that should have finished everything."""
    violations = await check_anytime(db, node, players, created_raw)
    rows = await read_rows(db)

    for payout in rows.payouts.values():
        if payout.state not in (PayoutState.CONFIRMED, PayoutState.FAILED):
            violations.append(f"payout {payout.id} is still {payout.state.value}")

    confirmed_raw: dict[int, int] = defaultdict(int)
    for payout in rows.payouts.values():
        if payout.state is PayoutState.CONFIRMED:
            confirmed_raw[payout.player_id] += payout.amount_raw
    claimed_by_confirmed: dict[int, int] = defaultdict(int)
    for accrual in rows.accruals.values():
        if accrual.status is not AccrualStatus.OPEN:
            continue
        claimer = None if accrual.payout_id is None else rows.payouts.get(accrual.payout_id)
        if claimer is None:
            violations.append(f"open accrual {accrual.id} was never paid")
        elif claimer.state is PayoutState.CONFIRMED:
            claimed_by_confirmed[accrual.player_id] += accrual.amount_raw

    for player in players:
        received_raw = node.total_sent_to(player.address)
        paid_raw = confirmed_raw.get(player.player_id, 0)
        if received_raw != paid_raw:
            violations.append(
                f"player {player.player_id} received {received_raw} raw, confirmed payouts "
                f"add up to {paid_raw}"
            )
        if paid_raw != claimed_by_confirmed.get(player.player_id, 0):
            violations.append(
                f"player {player.player_id}'s confirmed payouts do not equal their accruals"
            )
        for block in node.blocks_sent_to(player.address):
            if not block.confirmed:
                violations.append(f"block {block.hash} to player {player.player_id} unconfirmed")
    return violations
