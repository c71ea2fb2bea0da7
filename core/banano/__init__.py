"""Banano primitives: amounts, addresses, keys, state blocks and proof of work."""

from core.banano.address import (
    BURN_ADDRESS,
    check_payout_destination,
    decode_address,
    encode_address,
    is_valid_address,
)
from core.banano.blocks import (
    ZERO_HASH,
    BlockSubtype,
    StateBlock,
    build_receive,
    build_send,
)
from core.banano.keys import (
    KeyPair,
    private_key_from_seed,
    public_key_from_private,
    verify_signature,
)
from core.banano.units import MAX_RAW, RAW_PER_BAN, format_ban, parse_ban, parse_raw, raw_to_ban
from core.banano.work import (
    WORK_THRESHOLD,
    LocalWorkGenerator,
    generate_work_local,
    is_valid_work,
    work_root,
    work_value,
)

__all__ = [
    "BURN_ADDRESS",
    "MAX_RAW",
    "RAW_PER_BAN",
    "WORK_THRESHOLD",
    "ZERO_HASH",
    "BlockSubtype",
    "KeyPair",
    "LocalWorkGenerator",
    "StateBlock",
    "build_receive",
    "build_send",
    "check_payout_destination",
    "decode_address",
    "encode_address",
    "format_ban",
    "generate_work_local",
    "is_valid_address",
    "is_valid_work",
    "parse_ban",
    "parse_raw",
    "private_key_from_seed",
    "public_key_from_private",
    "raw_to_ban",
    "verify_signature",
    "work_root",
    "work_value",
]
