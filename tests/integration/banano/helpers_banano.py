"""Keys, block builders and recorders shared by the Banano integration tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.banano.blocks import StateBlock, build_send
from core.banano.keys import KeyPair
from core.banano.sender import SendRequest, SignedBlock
from core.banano.units import RAW_PER_BAN
from core.banano.work import generate_work_local, work_root, work_value
from core.sandbox.banano_node import SandboxBananoNode

# One valid nonce in 4096: work takes milliseconds.
THRESHOLD = 0xFFF0000000000000
OPERATOR = KeyPair.from_seed("11" * 32, 0)
PLAYER = KeyPair.from_seed("22" * 32, 0)
OTHER_PLAYER = KeyPair.from_seed("22" * 32, 1)
STRANGER = KeyPair.from_seed("33" * 32, 0)
START_BALANCE_RAW = 1000 * RAW_PER_BAN
PAYOUT_RAW = 21 * RAW_PER_BAN // 10


def request(payout_id: int = 1, amount_raw: int = PAYOUT_RAW, destination: str = "") -> SendRequest:
    """Build a send request to PLAYER (or `destination`) with a key derived from the id."""
    return SendRequest(
        payout_id=payout_id,
        idempotency_key=f"payout-{payout_id}",
        destination=destination or PLAYER.address,
        amount_raw=amount_raw,
    )


def worked(block: StateBlock) -> StateBlock:
    """Return the block with valid work at THRESHOLD."""
    return block.with_work(generate_work_local(work_root(block), THRESHOLD))


def low_work(block: StateBlock) -> StateBlock:
    """Return the block with work below THRESHOLD."""
    root = work_root(block)
    nonce = 0
    while work_value(root, f"{nonce:016x}") >= THRESHOLD:
        nonce += 1
    return block.with_work(f"{nonce:016x}")


def operator_send(
    node: SandboxBananoNode,
    amount_raw: int = PAYOUT_RAW,
    *,
    previous: str | None = None,
    balance_before_raw: int | None = None,
    key: KeyPair = OPERATOR,
) -> StateBlock:
    """Build a signed send from the operator's frontier (or the given previous and balance)."""
    frontier = node.frontier_of(OPERATOR.address)
    assert frontier is not None
    block = build_send(
        OPERATOR,
        previous if previous is not None else frontier,
        OPERATOR.address,
        balance_before_raw if balance_before_raw is not None else node.balance_of(OPERATOR.address),
        amount_raw,
        PLAYER.address,
    )
    return block.signed(key) if key is OPERATOR else _signed_by_other(block, key)


def _signed_by_other(block: StateBlock, key: KeyPair) -> StateBlock:
    signature = key.sign(block.hash_bytes()).hex().upper()
    return StateBlock(
        account=block.account,
        previous=block.previous,
        representative=block.representative,
        balance_raw=block.balance_raw,
        link=block.link,
        signature=signature,
        subtype=block.subtype,
    )


@dataclass
class SignedRecorder:
    """An `on_signed` callback that stores blocks and notes whether the node had them yet."""

    node: SandboxBananoNode
    stored: list[SignedBlock] = field(default_factory=list)
    in_ledger_when_stored: list[bool] = field(default_factory=list)
    process_calls_when_stored: list[int] = field(default_factory=list)

    async def __call__(self, signed: SignedBlock) -> None:
        self.stored.append(signed)
        self.in_ledger_when_stored.append(self.node.block(signed.block_hash) is not None)
        self.process_calls_when_stored.append(self.node.request_counts["process"])


@dataclass
class ReceivedRecorder:
    """An `on_received` callback that records each send hash once, like a unique DB row."""

    recorded: dict[str, int] = field(default_factory=dict)
    calls: int = 0

    async def __call__(self, send_hash: str, amount_raw: int) -> bool:
        self.calls += 1
        if send_hash in self.recorded:
            return False
        self.recorded[send_hash] = amount_raw
        return True
