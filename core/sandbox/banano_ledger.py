"""The ledger behind the sandbox Banano node: account chains that validate like a node's.

Blocks are checked in the order the Nano node's ledger processor uses for state blocks:
duplicate, signature, previous (fork or gap), proof of work, then the balance rules of sends,
receives and representative changes. A rejection carries the node's exact error text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.banano.blocks import ZERO_HASH, BlockSubtype, StateBlock, build_receive, build_send
from core.banano.keys import KeyPair
from core.banano.units import MAX_RAW
from core.banano.work import is_valid_work, work_root

# The sandbox's genesis account starts with the maximum balance (2**128 - 1 raw) and funds the
# accounts that tests use. Its seed is public on purpose because no real money is involved.
GENESIS_SEED = "5A" * 32
# Funding blocks are applied without a work check, so they carry this nonce.
UNCHECKED_WORK = "0" * 16
_BURN_PUBLIC_KEY = bytes(32)


class RpcError(Exception):
    """A rejected block or request. The node replies `{"error": node_text}`."""

    def __init__(self, node_text: str) -> None:
        super().__init__(node_text)
        self.node_text = node_text


@dataclass
class LedgerBlock:
    """A block in the ledger with what the node derives from it."""

    block: StateBlock
    hash: str
    subtype: BlockSubtype
    amount_raw: int
    height: int
    local_timestamp: int
    # The destination of a send, the sending account of a receive, None for a change.
    counterparty: str | None
    confirmed: bool = False
    successor: str | None = None

    @property
    def account(self) -> str:
        """The address of the account whose chain contains this block."""
        return self.block.account


@dataclass
class LedgerAccount:
    """One account's chain, oldest block first."""

    address: str
    chain: list[str] = field(default_factory=list)
    balance_raw: int = 0
    representative: str = ""
    confirmed_height: int = 0

    @property
    def frontier(self) -> str:
        """The hash of the newest block."""
        return self.chain[-1]


class BananoLedger:
    """Accounts, blocks and receivable sends, validated and applied one block at a time."""

    def __init__(self, work_threshold: int) -> None:
        self.work_threshold = work_threshold
        self.blocks: dict[str, LedgerBlock] = {}
        self.accounts: dict[str, LedgerAccount] = {}
        # Destination address -> {send hash: amount_raw} for sends not received yet.
        self.receivable: dict[str, dict[str, int]] = {}
        self.genesis = KeyPair.from_seed(GENESIS_SEED, 0)
        self._open_genesis()

    def _open_genesis(self) -> None:
        block = StateBlock(
            account=self.genesis.address,
            previous=ZERO_HASH,
            representative=self.genesis.address,
            balance_raw=MAX_RAW,
            link=self.genesis.public_key.hex().upper(),
            subtype="open",
        ).signed(self.genesis)
        block = block.with_work(UNCHECKED_WORK)
        block_hash = block.hash()
        self.blocks[block_hash] = LedgerBlock(
            block=block,
            hash=block_hash,
            subtype="open",
            amount_raw=MAX_RAW,
            height=1,
            local_timestamp=0,
            counterparty=self.genesis.address,
            confirmed=True,
        )
        self.accounts[self.genesis.address] = LedgerAccount(
            address=self.genesis.address,
            chain=[block_hash],
            balance_raw=MAX_RAW,
            representative=self.genesis.address,
            confirmed_height=1,
        )

    def check_subtype(self, block: StateBlock, subtype: str) -> None:
        """Apply the node's `process` pre-check of a given subtype against the account's state.

        Like the node, this compares with the account's current balance, so a block already
        in the ledger can fail it.
        """
        if block.previous != ZERO_HASH and block.previous not in self.blocks:
            raise RpcError("Gap previous block")
        account = self.accounts.get(block.account)
        balance_raw = account.balance_raw if account is not None else 0
        if subtype == "send":
            if balance_raw <= block.balance_raw:
                raise RpcError("Invalid block balance for given subtype")
        elif subtype == "receive":
            if balance_raw > block.balance_raw:
                raise RpcError("Invalid block balance for given subtype")
        elif subtype == "open":
            if block.previous != ZERO_HASH:
                raise RpcError("Invalid previous block for given subtype")
        elif subtype == "change":
            if balance_raw != block.balance_raw:
                raise RpcError("Invalid block balance for given subtype")
            if block.previous == ZERO_HASH:
                raise RpcError("Invalid previous block for given subtype")
        else:
            raise RpcError("Invalid block subtype")

    def apply(
        self, block: StateBlock, local_timestamp: int, *, check_work: bool = True
    ) -> LedgerBlock:
        """Validate `block` and add it to its account's chain, or raise `RpcError`."""
        entry = self._validate(block, local_timestamp, check_work=check_work)
        account = self.accounts.get(block.account)
        if account is None:
            account = LedgerAccount(address=block.account)
            self.accounts[block.account] = account
        else:
            self.blocks[account.frontier].successor = entry.hash

        account.chain.append(entry.hash)
        account.balance_raw = block.balance_raw
        account.representative = block.representative
        self.blocks[entry.hash] = entry

        if entry.subtype == "send":
            destination = block.link_as_account
            self.receivable.setdefault(destination, {})[entry.hash] = entry.amount_raw
        elif entry.subtype in ("receive", "open"):
            del self.receivable[block.account][block.link]
        return entry

    def _validate(
        self, block: StateBlock, local_timestamp: int, *, check_work: bool
    ) -> LedgerBlock:
        block_hash = block.hash()
        if block_hash in self.blocks:
            raise RpcError("Old block")
        if not block.verify_signature():
            raise RpcError("Bad signature")
        if block.account_public_key == _BURN_PUBLIC_KEY:
            raise RpcError("Opened burn account")

        account = self.accounts.get(block.account)
        if account is not None:
            if block.previous == ZERO_HASH:
                raise RpcError("Fork")
            if block.previous not in self.blocks:
                raise RpcError("Gap previous block")
            if block.previous != account.frontier:
                raise RpcError("Fork")
            previous_balance = account.balance_raw
        else:
            if block.previous != ZERO_HASH:
                raise RpcError("Gap previous block")
            if block.link == ZERO_HASH:
                raise RpcError("Gap source block")
            previous_balance = 0

        if check_work and (
            block.work is None
            or not is_valid_work(work_root(block), block.work, self.work_threshold)
        ):
            raise RpcError("Block work is less than threshold")

        subtype: BlockSubtype
        counterparty: str | None
        if block.balance_raw < previous_balance:
            subtype = "send"
            amount_raw = previous_balance - block.balance_raw
            counterparty = block.link_as_account
        elif block.link != ZERO_HASH:
            subtype = "open" if account is None else "receive"
            amount_raw = block.balance_raw - previous_balance
            counterparty = self._check_receivable(block, amount_raw)
        else:
            subtype = "change"
            amount_raw = 0
            counterparty = None
            if block.balance_raw != previous_balance:
                raise RpcError("Balance and amount delta do not match")

        return LedgerBlock(
            block=dataclasses.replace(block, subtype=subtype),
            hash=block_hash,
            subtype=subtype,
            amount_raw=amount_raw,
            height=1 if account is None else len(account.chain) + 1,
            local_timestamp=local_timestamp,
            counterparty=counterparty,
        )

    def _check_receivable(self, block: StateBlock, amount_raw: int) -> str:
        source = self.blocks.get(block.link)
        if source is None:
            raise RpcError("Gap source block")
        receivable_raw = self.receivable.get(block.account, {}).get(block.link)
        if receivable_raw is None:
            raise RpcError("Unreceivable")
        if amount_raw != receivable_raw:
            raise RpcError("Balance and amount delta do not match")
        return source.account

    def confirm(self, block_hash: str) -> None:
        """Confirm a block and every block before it in its account's chain."""
        entry = self.blocks.get(block_hash)
        if entry is None or entry.confirmed:
            return
        account = self.accounts[entry.account]
        for earlier_hash in account.chain[account.confirmed_height : entry.height]:
            self.blocks[earlier_hash].confirmed = True
        account.confirmed_height = max(account.confirmed_height, entry.height)

    def confirm_all(self) -> None:
        """Confirm every block in the ledger."""
        for account in self.accounts.values():
            self.confirm(account.frontier)

    def confirmed_balance_of(self, account: LedgerAccount) -> int:
        """Return the balance after the account's highest confirmed block (0 if none)."""
        if account.confirmed_height == 0:
            return 0
        return self.blocks[account.chain[account.confirmed_height - 1]].block.balance_raw

    def history(self, account: LedgerAccount, head: str | None) -> Iterator[LedgerBlock]:
        """Yield the account's blocks newest first, from `head` if given."""
        end = len(account.chain) if head is None else self.blocks[head].height
        for block_hash in reversed(account.chain[:end]):
            yield self.blocks[block_hash]

    def fund(
        self, address: str, amount_raw: int, local_timestamp: int, key: KeyPair | None
    ) -> tuple[LedgerBlock, LedgerBlock | None]:
        """Send `amount_raw` from genesis to `address`, and receive it too when `key` is given.

        Both blocks are signed by their account's key but carry `UNCHECKED_WORK`, so tests can
        fund accounts at any work threshold without computing work.
        """
        genesis_account = self.accounts[self.genesis.address]
        send = build_send(
            self.genesis,
            genesis_account.frontier,
            self.genesis.address,
            genesis_account.balance_raw,
            amount_raw,
            address,
        ).signed(self.genesis)
        send_entry = self.apply(send.with_work(UNCHECKED_WORK), local_timestamp, check_work=False)
        if key is None:
            return send_entry, None

        if key.address != address:
            raise ValueError("the key does not belong to the funded address")
        account = self.accounts.get(address)
        if account is None:
            previous, representative, balance_raw = ZERO_HASH, address, 0
        else:
            previous = account.frontier
            representative = account.representative
            balance_raw = account.balance_raw
        receive = build_receive(
            key, previous, representative, balance_raw, amount_raw, send_entry.hash
        ).signed(key)
        receive_entry = self.apply(
            receive.with_work(UNCHECKED_WORK), local_timestamp, check_work=False
        )
        return send_entry, receive_entry
