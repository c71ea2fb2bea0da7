"""Players, accruals and service stacks for the settlement tests, plus the money-rule checks."""

from __future__ import annotations

import hashlib
import os
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.banano.address import encode_address
from core.banano.blocks import StateBlock
from core.banano.keys import KeyPair
from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.sender import LocalSigner, NodeWalletSender, Sender
from core.banano.work import generate_work_local
from core.banano.work_providers import WorkCache
from core.clock import Clock, utc_now
from core.db.models import (
    Accrual,
    AccrualStatus,
    EpicLink,
    Payout,
    PayoutAccrual,
    PayoutState,
    Player,
    Wallet,
)
from core.db.session import Database
from core.observability.metrics import Metrics
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.caps import CapLimits
from core.services.go_live import RELEASE_NOTE
from core.services.payout_processor import PayoutProcessor, StepHook
from core.services.settlement import SettlementPolicy, SettlementService
from core.services.settlement_selection import SettlementOrder

# Work at this threshold takes a few hundred hashes, so blocks are built in milliseconds.
LOW_WORK_THRESHOLD = 0xFF00000000000000
OPERATOR_SEED = "5EED" * 16
WALLET_ID = "A1" * 32
RAW_PER_KILL = 21 * 10**28  # 2.1 BAN
OPERATOR_FUNDS_RAW = 1_000_000 * 10**29
# PostgreSQL advisory locks are shared by every schema of the database, so test runs of other
# processes on the same server must not share this name.
TEST_LOCK_NAME = f"settlement-test-{os.getpid()}"


class SimulatedCrash(BaseException):
    """Simulates the process dying at a step; a BaseException, so no handler catches it."""


class CrashAt:
    """A step hook that raises `SimulatedCrash` the next `times` times `step` is reached."""

    def __init__(self, step: str, times: int = 1) -> None:
        self.step = step
        self.remaining = times
        self.crashed_payout_ids: list[int] = []

    async def __call__(self, step: str, payout_id: int) -> None:
        if step == self.step and self.remaining > 0:
            self.remaining -= 1
            self.crashed_payout_ids.append(payout_id)
            raise SimulatedCrash(f"crash after {step} of payout {payout_id}")


class InlineWorkProvider:
    """Proof of work computed on the loop: fine at the tests' low threshold."""

    async def generate(self, root_hex: str, threshold: int) -> str:
        return generate_work_local(root_hex, threshold)


def operator_key() -> KeyPair:
    return KeyPair.from_seed(OPERATOR_SEED, 0)


def fund_operator(node: SandboxBananoNode, amount_raw: int = OPERATOR_FUNDS_RAW) -> KeyPair:
    key = operator_key()
    node.fund(key.address, amount_raw, key=key)
    node.add_wallet_key(WALLET_ID, key)
    return key


def player_address(index: int, salt: str = "") -> str:
    digest = hashlib.blake2b(f"settlement-test-player-{salt}{index}".encode(), digest_size=32)
    return encode_address(digest.digest())


def make_policy(
    *,
    dry_run: bool = False,
    daily_payouts: int = 100,
    weekly_payouts: int = 1000,
    daily_kills: int = 0,
    weekly_kills: int = 0,
    order: SettlementOrder = "oldest_first",
    batch_size: int = 0,
    floor_raw: int = 0,
    zone: str = "UTC",
    lock_name: str = TEST_LOCK_NAME,
) -> SettlementPolicy:
    return SettlementPolicy(
        caps=CapLimits(
            daily_payouts=daily_payouts,
            weekly_payouts=weekly_payouts,
            daily_kills=daily_kills,
            weekly_kills=weekly_kills,
        ),
        zone=ZoneInfo(zone),
        order=order,
        batch_size=batch_size,
        dry_run=dry_run,
        min_operator_balance_raw=floor_raw,
        lock_name=lock_name,
    )


@dataclass
class Stack:
    """The services of one process; building a new stack simulates a restart."""

    service: SettlementService
    processor: PayoutProcessor | None
    sender: Sender | None
    node_client: NodeClient
    metrics: Metrics

    async def aclose(self) -> None:
        await self.node_client.aclose()


def build_stack(
    db: Database,
    node_url: str,
    policy: SettlementPolicy,
    *,
    step_hook: StepHook | None = None,
    rng: random.Random | None = None,
    clock: Clock = utc_now,
    sender_kind: str = "local",
    confirmation_timeout: timedelta = timedelta(seconds=60),
    rpc_timeout_seconds: float = 2.0,
) -> Stack:
    metrics = Metrics(version="test")
    node_client = NodeClient(
        node_url,
        timeout_seconds=rpc_timeout_seconds,
        read_retry=RetryPolicy(attempts=2, base_delay_seconds=0.01, max_delay_seconds=0.02),
    )
    key = operator_key()
    sender: Sender
    if sender_kind == "local":
        sender = LocalSigner(
            node_client,
            key,
            None,
            WorkCache(InlineWorkProvider(), LOW_WORK_THRESHOLD),
            LOW_WORK_THRESHOLD,
            submit_attempts=2,
            retry_delay_seconds=0.01,
        )
    else:
        sender = NodeWalletSender(
            node_client, WALLET_ID, key.address, attempts=2, retry_delay_seconds=0.01
        )
    processor = PayoutProcessor(
        db,
        sender,
        node_client,
        zone=policy.zone,
        confirmation_timeout=confirmation_timeout,
        metrics=metrics,
        clock=clock,
        step_hook=step_hook,
    )
    service = SettlementService(
        db,
        policy,
        metrics=metrics,
        processor=processor,
        rng=rng if rng is not None else random.Random(7),
        clock=clock,
        step_hook=step_hook,
    )
    return Stack(service, processor, sender, node_client, metrics)


@dataclass
class SeededPlayer:
    id: int
    address: str
    index: int
    next_cursor: int = 0


@dataclass
class World:
    """Players and accruals created for one test on one database."""

    db: Database
    players: list[SeededPlayer] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    # Makes addresses unique when several worlds share one sandbox node.
    address_salt: str = ""

    async def add_player(
        self,
        *,
        guild_member: bool | None = True,
        frozen: bool = False,
        linked: bool = True,
        wallet: bool = True,
    ) -> SeededPlayer:
        index = len(self.players) + 1
        address = player_address(index, self.address_salt)
        async with self.db.write() as session:
            player = Player(
                discord_id=10_000 + index,
                created_at=self.created_at,
                guild_member=guild_member,
                frozen=frozen,
            )
            session.add(player)
            await session.flush()
            if wallet:
                session.add(
                    Wallet(
                        player_id=player.id,
                        address=address,
                        created_at=self.created_at,
                        updated_at=self.created_at,
                    )
                )
            if linked:
                session.add(
                    EpicLink(
                        player_id=player.id,
                        epic_account_id=f"{index:032x}",
                        active=True,
                        linked_at=self.created_at,
                    )
                )
            player_id = player.id
        test_player = SeededPlayer(id=player_id, address=address, index=index)
        self.players.append(test_player)
        return test_player

    async def add_players(self, count: int) -> list[SeededPlayer]:
        return [await self.add_player() for _ in range(count)]

    async def add_accrual(
        self,
        player: SeededPlayer,
        kills: int,
        *,
        at: datetime | None = None,
        raw_per_kill: int = RAW_PER_KILL,
        status: AccrualStatus = AccrualStatus.OPEN,
    ) -> int:
        async with self.db.write() as session:
            accrual = Accrual(
                player_id=player.id,
                epic_account_id=f"{player.index:032x}",
                kills=kills,
                raw_per_kill=raw_per_kill,
                amount_raw=kills * raw_per_kill,
                status=status,
                cursor_from=player.next_cursor,
                cursor_to=player.next_cursor + kills,
                created_at=at or self.created_at,
            )
            session.add(accrual)
            await session.flush()
            accrual_id = accrual.id
        player.next_cursor += kills
        return accrual_id


@dataclass
class Ledger:
    """Every row the money rules talk about, read in one go."""

    accruals: dict[int, Accrual]
    payouts: dict[int, Payout]
    claims: list[tuple[int, int]]


async def read_ledger(db: Database) -> Ledger:
    async with db.read() as session:
        accruals = {a.id: a for a in await session.scalars(select(Accrual))}
        payouts = {p.id: p for p in await session.scalars(select(Payout))}
        claims = [
            (row.payout_id, row.accrual_id) for row in await session.scalars(select(PayoutAccrual))
        ]
    return Ledger(accruals, payouts, claims)


def _moves_money(payout: Payout) -> bool:
    return not payout.dry_run and payout.state is not PayoutState.FAILED


def owed_raw_by_player(ledger: Ledger) -> dict[int, int]:
    """Raw of each player's accruals that are neither held, voided nor split."""
    owed: dict[int, int] = defaultdict(int)
    for accrual in ledger.accruals.values():
        if accrual.status is AccrualStatus.OPEN:
            owed[accrual.player_id] += accrual.amount_raw
    return owed


async def assert_money_rules(
    db: Database,
    node: SandboxBananoNode | None = None,
    addresses: Iterable[tuple[int, str]] = (),
) -> Ledger:
    """Check every money rule against the database and, when given, the sandbox ledger."""
    ledger = await read_ledger(db)

    claimed_by: dict[int, list[int]] = defaultdict(list)
    for accrual in ledger.accruals.values():
        if accrual.payout_id is not None:
            claimed_by[accrual.payout_id].append(accrual.id)

    for payout in ledger.payouts.values():
        claimed = claimed_by.get(payout.id, [])
        released_dry_run = payout.dry_run and payout.failure_reason == RELEASE_NOTE
        if payout.state is PayoutState.FAILED or released_dry_run:
            assert claimed == [], f"payout {payout.id} ({payout.state}) still claims {claimed}"
            continue
        claimed_raw = sum(ledger.accruals[i].amount_raw for i in claimed)
        assert claimed_raw == payout.amount_raw, f"payout {payout.id} pays a different sum"
        claimed_kills = sum(ledger.accruals[i].kills for i in claimed)
        assert claimed_kills == payout.kills, f"payout {payout.id} pays different kills"
        for accrual_id in claimed:
            assert ledger.accruals[accrual_id].status is AccrualStatus.OPEN

    live_claims: dict[int, list[int]] = defaultdict(list)
    for payout_id, accrual_id in ledger.claims:
        if _moves_money(ledger.payouts[payout_id]):
            live_claims[accrual_id].append(payout_id)
    for accrual_id, payout_ids in live_claims.items():
        assert len(payout_ids) == 1, f"accrual {accrual_id} is in live payouts {payout_ids}"

    children: dict[int, list[Accrual]] = defaultdict(list)
    for accrual in ledger.accruals.values():
        assert accrual.amount_raw == accrual.kills * accrual.raw_per_kill
        if accrual.parent_id is not None:
            children[accrual.parent_id].append(accrual)
    for accrual in ledger.accruals.values():
        if accrual.status is AccrualStatus.SPLIT:
            parts = children[accrual.id]
            assert len(parts) == 2, f"split accrual {accrual.id} has {len(parts)} parts"
            assert sum(p.kills for p in parts) == accrual.kills
            assert sum(p.amount_raw for p in parts) == accrual.amount_raw
            assert accrual.payout_id is None

    owed = owed_raw_by_player(ledger)
    sent_by_player: dict[int, int] = defaultdict(int)
    for payout in ledger.payouts.values():
        if _moves_money(payout) and payout.state in (
            PayoutState.SUBMITTED,
            PayoutState.CONFIRMED,
        ):
            sent_by_player[payout.player_id] += payout.amount_raw
    for player_id, sent_raw in sent_by_player.items():
        assert sent_raw <= owed[player_id], f"player {player_id} was paid more than owed"

    if node is not None:
        _assert_node_ledger(ledger, node, owed, dict(addresses))
    return ledger


def _assert_node_ledger(
    ledger: Ledger, node: SandboxBananoNode, owed: dict[int, int], addresses: dict[int, str]
) -> None:
    by_hash = {p.block_hash: p for p in ledger.payouts.values() if p.block_hash is not None}
    for payout in ledger.payouts.values():
        if payout.state is PayoutState.FAILED and payout.block_json:
            # A failed payout's block may land only as the identical block of a later payout.
            failed_hash = StateBlock.from_json_text(payout.block_json).hash()
            if node.block(failed_hash) is not None:
                assert failed_hash in by_hash, f"failed payout {payout.id}'s block landed"
    for player_id, address in addresses.items():
        blocks = node.blocks_sent_to(address)
        # A node-wallet send whose reply was lost has a block but no stored hash yet.
        unsigned = [
            p.amount_raw
            for p in ledger.payouts.values()
            if p.player_id == player_id and p.state is PayoutState.PENDING and not p.dry_run
        ]
        for block in blocks:
            paying = by_hash.get(block.hash)
            if paying is None and block.amount_raw in unsigned:
                unsigned.remove(block.amount_raw)
                continue
            assert paying is not None, f"block {block.hash} to player {player_id} has no payout"
            assert paying.state is not PayoutState.FAILED, (
                f"failed payout {paying.id} has block {block.hash} in the ledger"
            )
            assert paying.amount_raw == block.amount_raw
        assert len({b.hash for b in blocks}) == len(blocks)
        assert sum(b.amount_raw for b in blocks) <= owed[player_id], (
            f"player {player_id} received more than owed"
        )


async def assert_paid_exactly_once(
    db: Database, node: SandboxBananoNode, players: Iterable[SeededPlayer]
) -> None:
    """After a full drain: each player received exactly what they are owed, to the raw."""
    ledger = await assert_money_rules(db, node, [(p.id, p.address) for p in players])
    owed = owed_raw_by_player(ledger)
    for player in players:
        assert node.total_sent_to(player.address) == owed[player.id], (
            f"player {player.id} received {node.total_sent_to(player.address)}, "
            f"owed {owed[player.id]}"
        )
    for accrual in ledger.accruals.values():
        if accrual.status is AccrualStatus.OPEN:
            assert accrual.payout_id is not None, f"accrual {accrual.id} was never paid"
            assert ledger.payouts[accrual.payout_id].state is PayoutState.CONFIRMED


async def drain(
    db: Database,
    node: SandboxBananoNode,
    *,
    node_url: str,
    rounds: int = 6,
    sender_kind: str = "local",
    clock: Clock = utc_now,
) -> None:
    """Restart with fresh services and no faults, then settle until nothing is open."""
    node.clear_faults()
    node.set_auto_confirm(True)
    node.confirm_all()
    stack = build_stack(db, node_url, make_policy(), sender_kind=sender_kind, clock=clock)
    try:
        for _ in range(rounds):
            report = await stack.service.run("test")
            node.confirm_all()
            await stack.service.confirm()
            if not report.payout_ids and not (report.reconcile and report.reconcile.actions):
                break
        await stack.service.confirm()
    finally:
        await stack.aclose()


async def payouts_by_id(db: Database) -> dict[int, Payout]:
    """Read every payout, keyed by id."""
    async with db.read() as session:
        return {payout.id: payout for payout in await session.scalars(select(Payout))}


def pass_through(node: SandboxBananoNode, action: str, times: int) -> None:
    """Let the next `times` requests of `action` through unchanged, before later faults."""
    node.inject_fault(action, Fault.delay(0), times=times)
