"""Banano state blocks: hashing, signing, verification and their JSON forms.

A state block carries the account's whole state after it: the previous block's hash, the
representative, the balance and a link (the destination public key for a send, the source
block hash for a receive). Its hash covers all of these and is what the account key signs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from core.banano.address import decode_address, encode_address
from core.banano.errors import (
    AmountTypeError,
    InsufficientBalanceError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidBlockError,
)
from core.banano.keys import KeyPair, verify_signature
from core.banano.units import MAX_RAW, parse_raw

BlockSubtype = Literal["send", "receive", "open", "change", "epoch"]
BLOCK_SUBTYPES: frozenset[str] = frozenset(get_args(BlockSubtype))

ZERO_HASH = "0" * 64
BLOCK_TYPE = "state"

# The hash input starts with 32 bytes that hold the block type: 6 for a state block.
_STATE_BLOCK_PREAMBLE = bytes(31) + bytes([6])
_BALANCE_BYTES = 16

_HASH_HEX = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
_SIGNATURE_HEX = re.compile(r"[0-9A-Fa-f]{128}", re.ASCII)
_WORK_HEX = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)


def _check_hex(name: str, value: object, pattern: re.Pattern[str], digits: int) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidBlockError(f"The block field '{name}' must be {digits} hexadecimal digits.")
    return value


def _decode_block_address(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise InvalidBlockError(f"The block field '{name}' must be a ban_ address.")
    try:
        return decode_address(value)
    except InvalidAddressError as error:
        raise InvalidBlockError(
            f"The block field '{name}' is not a valid ban_ address: {error.safe_message}"
        ) from error


@dataclass(frozen=True)
class StateBlock:
    """A state block, signed and worked or not yet.

    Hex fields are normalised on construction: hashes and the signature to upper case, work
    to lower case, as nodes write them. Every field is validated, so an instance is always
    well formed, though not necessarily correctly signed or worked.
    """

    account: str
    previous: str
    representative: str
    balance_raw: int
    link: str
    signature: str | None = None
    work: str | None = None
    subtype: BlockSubtype | None = None
    _account_public_key: bytes = field(init=False, repr=False, compare=False, hash=False)
    _representative_public_key: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        account_public_key = _decode_block_address("account", self.account)
        representative_public_key = _decode_block_address("representative", self.representative)
        previous = _check_hex("previous", self.previous, _HASH_HEX, 64).upper()
        link = _check_hex("link", self.link, _HASH_HEX, 64).upper()

        balance_raw = self.balance_raw
        if isinstance(balance_raw, bool) or not isinstance(balance_raw, int):
            raise InvalidBlockError("The block field 'balance' must be an int number of raw.")
        if not 0 <= balance_raw <= MAX_RAW:
            raise InvalidBlockError("The block field 'balance' must be between 0 and 2**128 - 1.")

        signature = self.signature
        if signature is not None:
            signature = _check_hex("signature", signature, _SIGNATURE_HEX, 128).upper()
        work = self.work
        if work is not None:
            work = _check_hex("work", work, _WORK_HEX, 16).lower()
        _check_subtype(self.subtype)

        object.__setattr__(self, "previous", previous)
        object.__setattr__(self, "link", link)
        object.__setattr__(self, "signature", signature)
        object.__setattr__(self, "work", work)
        object.__setattr__(self, "_account_public_key", account_public_key)
        object.__setattr__(self, "_representative_public_key", representative_public_key)

    @property
    def account_public_key(self) -> bytes:
        """The 32-byte public key of `account`."""
        return self._account_public_key

    @property
    def is_open(self) -> bool:
        """Whether this is the account's first block, which has no previous block."""
        return self.previous == ZERO_HASH

    @property
    def link_as_account(self) -> str:
        """The link read as a public key and encoded as an address (a send's destination)."""
        return encode_address(bytes.fromhex(self.link))

    def hash_bytes(self) -> bytes:
        """Compute the 32-byte Blake2b-256 block hash that the account key signs."""
        digest = hashlib.blake2b(digest_size=32)
        digest.update(_STATE_BLOCK_PREAMBLE)
        digest.update(self._account_public_key)
        digest.update(bytes.fromhex(self.previous))
        digest.update(self._representative_public_key)
        digest.update(self.balance_raw.to_bytes(_BALANCE_BYTES, "big"))
        digest.update(bytes.fromhex(self.link))
        return digest.digest()

    def hash(self) -> str:
        """Compute the block hash as 64 upper-case hex digits."""
        return self.hash_bytes().hex().upper()

    def signed(self, key: KeyPair) -> StateBlock:
        """Return a copy signed by `key`, which must be the key of the block's account."""
        if key.public_key != self._account_public_key:
            raise InvalidBlockError("The signing key does not belong to the block's account.")
        signature = key.sign(self.hash_bytes()).hex().upper()
        return dataclasses.replace(self, signature=signature)

    def with_work(self, work: str) -> StateBlock:
        """Return a copy carrying the proof-of-work nonce `work` (16 hex digits)."""
        return dataclasses.replace(self, work=work)

    def verify_signature(self) -> bool:
        """Return whether the block is signed by its account's key. Unsigned returns False."""
        if self.signature is None:
            return False
        return verify_signature(
            self._account_public_key, self.hash_bytes(), bytes.fromhex(self.signature)
        )

    def to_rpc_json(self) -> dict[str, str]:
        """Return the block object that the node's `process` action takes with `json_block`.

        `signature` and `work` are left out while they are None, and `subtype` is not part
        of the block object but a separate argument of `process`.
        """
        block_json = {
            "type": BLOCK_TYPE,
            "account": self.account,
            "previous": self.previous,
            "representative": self.representative,
            "balance": str(self.balance_raw),
            "link": self.link,
            "link_as_account": self.link_as_account,
        }
        if self.signature is not None:
            block_json["signature"] = self.signature
        if self.work is not None:
            block_json["work"] = self.work
        return block_json

    @classmethod
    def from_rpc_json(
        cls, data: Mapping[str, object], subtype: BlockSubtype | None = None
    ) -> StateBlock:
        """Build a block from a node's JSON block object, validating every field.

        Raises `InvalidBlockError` for a missing, mistyped or malformed field. Keys that a
        state block does not have are ignored, as nodes do.
        """
        return _block_from_mapping(data, subtype, allow_null=False)

    def to_json_text(self) -> str:
        """Serialize the block, with its subtype, as JSON text for storage."""
        stored: dict[str, str | None] = {
            **self.to_rpc_json(),
            "signature": self.signature,
            "work": self.work,
            "subtype": self.subtype,
        }
        return json.dumps(stored, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json_text(cls, text: str) -> StateBlock:
        """Load a block stored by `to_json_text`, validating every field."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError, RecursionError) as error:
            # ValueError also covers integers longer than int() accepts, and RecursionError
            # comes from arrays or objects nested thousands deep.
            raise InvalidBlockError("The stored block is not valid JSON.") from error
        if not isinstance(data, dict):
            raise InvalidBlockError("The stored block must be a JSON object.")
        return _block_from_mapping(data, data.get("subtype"), allow_null=True)


def _required_text(data: Mapping[str, object], name: str) -> str:
    if name not in data:
        raise InvalidBlockError(f"The block field '{name}' is missing.")
    value = data[name]
    if not isinstance(value, str):
        raise InvalidBlockError(f"The block field '{name}' must be a string.")
    return value


def _optional_text(data: Mapping[str, object], name: str, allow_null: bool) -> str | None:
    if name not in data:
        return None
    value = data[name]
    if value is None and allow_null:
        return None
    if not isinstance(value, str):
        raise InvalidBlockError(f"The block field '{name}' must be a string.")
    return value


def _check_subtype(subtype: object) -> None:
    # The type check comes first: a list or dict cannot even be looked up in the set.
    if subtype is not None and (not isinstance(subtype, str) or subtype not in BLOCK_SUBTYPES):
        raise InvalidBlockError(
            f"The block subtype must be one of {', '.join(sorted(BLOCK_SUBTYPES))}."
        )


def _block_from_mapping(data: object, subtype: object, allow_null: bool) -> StateBlock:
    if not isinstance(data, Mapping):
        raise InvalidBlockError("A block must be a JSON object.")
    _check_subtype(subtype)

    block_type = _required_text(data, "type")
    if block_type != BLOCK_TYPE:
        raise InvalidBlockError("Only state blocks are supported: 'type' must be 'state'.")

    balance_text = _required_text(data, "balance")
    try:
        balance_raw = parse_raw(balance_text)
    except InvalidAmountError as error:
        raise InvalidBlockError(
            "The block field 'balance' must be a decimal number of raw up to 2**128 - 1."
        ) from error

    block = StateBlock(
        account=_required_text(data, "account"),
        previous=_required_text(data, "previous"),
        representative=_required_text(data, "representative"),
        balance_raw=balance_raw,
        link=_required_text(data, "link"),
        signature=_optional_text(data, "signature", allow_null),
        work=_optional_text(data, "work", allow_null),
        subtype=cast("BlockSubtype | None", subtype),
    )

    link_as_account = _optional_text(data, "link_as_account", allow_null)
    if link_as_account is not None and link_as_account != block.link_as_account:
        raise InvalidBlockError("The block field 'link_as_account' does not match 'link'.")
    return block


def _check_amount(amount_raw: int, balance_before_raw: int) -> None:
    for name, value in (("amount_raw", amount_raw), ("balance_before_raw", balance_before_raw)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AmountTypeError(f"{name} must be an int number of raw.")
        if not 0 <= value <= MAX_RAW:
            raise InvalidAmountError(f"{name} must be between 0 and 2**128 - 1 raw.")
    if amount_raw <= 0:
        raise InvalidAmountError("The amount to send must be at least 1 raw.")


def build_send(
    account: KeyPair,
    previous: str,
    representative: str,
    balance_before_raw: int,
    amount_raw: int,
    destination: str,
) -> StateBlock:
    """Build an unsigned, unworked send of `amount_raw` from `account` to `destination`.

    `previous` and `balance_before_raw` must come from the same reading of the account's
    frontier. Raises `InvalidAmountError` for an amount of 0 or less, and
    `InsufficientBalanceError` when the amount exceeds the balance.
    """
    _check_amount(amount_raw, balance_before_raw)
    if amount_raw > balance_before_raw:
        raise InsufficientBalanceError()

    destination_public_key = decode_address(destination)
    return StateBlock(
        account=account.address,
        previous=previous,
        representative=representative,
        balance_raw=balance_before_raw - amount_raw,
        link=destination_public_key.hex().upper(),
        subtype="send",
    )


def build_receive(
    account: KeyPair,
    previous: str,
    representative: str,
    balance_before_raw: int,
    amount_raw: int,
    source_hash: str,
) -> StateBlock:
    """Build an unsigned, unworked receive of the send block `source_hash`.

    With `previous` equal to `ZERO_HASH` this is the account's open block, and its subtype is
    "open". Raises `InvalidAmountError` when the new balance would exceed 2**128 - 1 raw.
    """
    _check_amount(amount_raw, balance_before_raw)
    balance_raw = balance_before_raw + amount_raw
    if balance_raw > MAX_RAW:
        raise InvalidAmountError("The balance after the receive would exceed 2**128 - 1 raw.")

    subtype: BlockSubtype = "open" if previous == ZERO_HASH else "receive"
    return StateBlock(
        account=account.address,
        previous=previous,
        representative=representative,
        balance_raw=balance_raw,
        link=_check_hex("source_hash", source_hash, _HASH_HEX, 64),
        subtype=subtype,
    )
