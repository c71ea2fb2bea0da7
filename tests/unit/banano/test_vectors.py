"""Known-answer vectors for keys, addresses, block hash, signature and work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.banano.address import BURN_ADDRESS, decode_address, encode_address, is_valid_address
from core.banano.blocks import StateBlock
from core.banano.errors import (
    AddressAlphabetError,
    AddressChecksumError,
    AddressFirstCharacterError,
    AddressLengthError,
    AddressPrefixError,
    InvalidAddressError,
)
from core.banano.keys import (
    KeyPair,
    private_key_from_seed,
    public_key_from_private,
    verify_signature,
)
from core.banano.units import MAX_RAW, RAW_PER_BAN
from core.banano.work import WORK_THRESHOLD, is_valid_work, work_value

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "banano.json").read_text(encoding="utf-8")
)

# The expected error for each entry of "addresses_invalid", in file order.
INVALID_ADDRESS_ERRORS: list[type[InvalidAddressError]] = [
    AddressChecksumError,
    AddressChecksumError,
    AddressPrefixError,
    AddressLengthError,
    AddressFirstCharacterError,
    AddressAlphabetError,
    AddressPrefixError,
]


def test_units_match_vectors() -> None:
    units = VECTORS["units"]

    assert int(units["raw_per_ban"]) == RAW_PER_BAN
    assert int(units["max_balance_raw"]) == MAX_RAW


def test_threshold_matches_vectors() -> None:
    assert int(VECTORS["work_threshold"], 16) == WORK_THRESHOLD


@pytest.mark.parametrize("vector", VECTORS["keys"], ids=lambda vector: vector["address"][:12])
def test_key_vector(vector: dict[str, Any]) -> None:
    if "seed" in vector:
        private_key = private_key_from_seed(vector["seed"], vector["index"])
        assert private_key.hex().upper() == vector["private_key"]
        key = KeyPair.from_seed(vector["seed"], vector["index"])
    else:
        key = KeyPair.from_private_key(bytes.fromhex(vector["private_key"]))

    assert key.private_key.hex().upper() == vector["private_key"]
    assert key.address == vector["address"]
    assert encode_address(key.public_key) == vector["address"]
    if "public_key" in vector:
        assert key.public_key.hex().upper() == vector["public_key"]
        assert public_key_from_private(key.private_key).hex().upper() == vector["public_key"]


@pytest.mark.parametrize(
    "vector", VECTORS["addresses_valid"], ids=lambda vector: vector["address"][:12]
)
def test_valid_address_vector(vector: dict[str, str]) -> None:
    public_key = bytes.fromhex(vector["public_key"])

    assert decode_address(vector["address"]) == public_key
    assert encode_address(public_key) == vector["address"]
    assert is_valid_address(vector["address"])


def test_burn_address_vector() -> None:
    burn_vectors = [v for v in VECTORS["addresses_valid"] if v["public_key"] == "0" * 64]

    assert [v["address"] for v in burn_vectors] == [BURN_ADDRESS]


def test_invalid_address_vectors_all_mapped() -> None:
    assert len(INVALID_ADDRESS_ERRORS) == len(VECTORS["addresses_invalid"])


@pytest.mark.parametrize(
    ("vector", "error_class"),
    list(zip(VECTORS["addresses_invalid"], INVALID_ADDRESS_ERRORS, strict=True)),
    ids=lambda value: value["why"] if isinstance(value, dict) else value.__name__,
)
def test_invalid_address_vector(
    vector: dict[str, str], error_class: type[InvalidAddressError]
) -> None:
    with pytest.raises(error_class):
        decode_address(vector["address"])

    assert not is_valid_address(vector["address"])


def _vector_block() -> StateBlock:
    vector = VECTORS["state_block"]
    return StateBlock(
        account=vector["account"],
        previous=vector["previous"],
        representative=vector["representative"],
        balance_raw=int(vector["balance_raw"]),
        link=vector["link"],
    )


def test_block_hash_vector() -> None:
    vector = VECTORS["state_block"]

    assert decode_address(vector["account"]).hex().upper() == vector["account_public_key"]
    assert _vector_block().hash() == vector["hash"]


def test_block_signature_vector() -> None:
    vector = VECTORS["state_block"]
    signing_key = KeyPair.from_private_key(bytes.fromhex(vector["signing_private_key"]))
    block_hash = bytes.fromhex(vector["hash"])

    signature = signing_key.sign(block_hash)

    assert signature.hex().upper() == vector["signature"]
    assert verify_signature(signing_key.public_key, block_hash, signature)


def test_block_signature_vector_rejected_for_account() -> None:
    # The vector signs with a key that is not the account's, as a node would see it.
    vector = VECTORS["state_block"]
    block = StateBlock(
        account=vector["account"],
        previous=vector["previous"],
        representative=vector["representative"],
        balance_raw=int(vector["balance_raw"]),
        link=vector["link"],
        signature=vector["signature"],
    )

    assert not block.verify_signature()


@pytest.mark.parametrize(
    "vector", VECTORS["work"], ids=lambda vector: f"{vector['work']}-{vector['valid']}"
)
def test_work_vector(vector: dict[str, Any]) -> None:
    assert work_value(vector["root"], vector["work"]) == int(vector["value"], 16)
    assert is_valid_work(vector["root"], vector["work"]) is vector["valid"]
    assert is_valid_work(vector["root"], vector["work"].upper()) is vector["valid"]
