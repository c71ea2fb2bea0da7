"""Key derivation, signing and the secrecy of private keys."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from core.banano.errors import InvalidKeyError
from core.banano.keys import (
    MAX_ACCOUNT_INDEX,
    KeyPair,
    private_key_from_seed,
    public_key_from_private,
    verify_signature,
)

SEED_HEX = "5A0E2A5F8C3D7B1E9F4A6C2D8B0E1F3A5C7D9E0F2A4B6C8D0E1F3A5B7C9D0E2F"


def test_keypair_repr_hides_private_key() -> None:
    key = KeyPair.from_seed(SEED_HEX, 7)
    private_hex = key.private_key.hex()

    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert private_hex not in text.lower()
        assert repr(key.private_key) not in text
        assert key.address in text


def test_keypair_private_key_field_not_in_repr() -> None:
    private_field = next(f for f in dataclasses.fields(KeyPair) if f.name == "private_key")

    assert private_field.repr is False


def test_keypair_is_frozen() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)

    with pytest.raises(dataclasses.FrozenInstanceError):
        key.address = "ban_1"  # type: ignore[misc]


def test_seed_case_does_not_matter() -> None:
    assert private_key_from_seed(SEED_HEX.lower(), 3) == private_key_from_seed(SEED_HEX, 3)


def test_indexes_give_distinct_keys() -> None:
    keys = {private_key_from_seed(SEED_HEX, index) for index in (0, 1, 2, MAX_ACCOUNT_INDEX)}

    assert len(keys) == 4


@pytest.mark.parametrize(
    "seed_hex", ["", SEED_HEX[:-1], SEED_HEX + "0", "g" * 64, " " + SEED_HEX[1:], None]
)
def test_seed_rejected_without_echo(seed_hex: object) -> None:
    with pytest.raises(InvalidKeyError) as raised:
        private_key_from_seed(seed_hex, 0)  # type: ignore[arg-type]

    if isinstance(seed_hex, str) and seed_hex:
        assert seed_hex not in raised.value.safe_message
        assert seed_hex[:16] not in raised.value.safe_message


@pytest.mark.parametrize("index", [-1, MAX_ACCOUNT_INDEX + 1, True, 1.0, "0"])
def test_index_rejected(index: object) -> None:
    with pytest.raises(InvalidKeyError):
        private_key_from_seed(SEED_HEX, index)  # type: ignore[arg-type]


@pytest.mark.parametrize("private_key", [b"", bytes(31), bytes(33), "00" * 32])
def test_private_key_length_rejected(private_key: object) -> None:
    with pytest.raises(InvalidKeyError):
        public_key_from_private(private_key)  # type: ignore[arg-type]


def test_keypair_rejects_mismatched_public_key() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    other = KeyPair.from_seed(SEED_HEX, 1)

    with pytest.raises(InvalidKeyError):
        KeyPair(private_key=key.private_key, public_key=other.public_key, address=other.address)


def test_keypair_rejects_mismatched_address() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    other = KeyPair.from_seed(SEED_HEX, 1)

    with pytest.raises(InvalidKeyError):
        KeyPair(private_key=key.private_key, public_key=key.public_key, address=other.address)


def test_sign_and_verify() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    other = KeyPair.from_seed(SEED_HEX, 1)
    message = b"block hash bytes"

    signature = key.sign(message)

    assert len(signature) == 64
    assert verify_signature(key.public_key, message, signature)
    assert not verify_signature(other.public_key, message, signature)
    assert not verify_signature(key.public_key, message + b"!", signature)


def test_sign_rejects_text() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)

    with pytest.raises(TypeError):
        key.sign("text")  # type: ignore[arg-type]


def test_verify_malformed_returns_false() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    message = b"message"
    signature = key.sign(message)

    assert not verify_signature(key.public_key[:31], message, signature)
    assert not verify_signature(key.public_key, message, signature[:63])
    assert not verify_signature(key.public_key, message, signature + b"\x00")
    assert not verify_signature(b"\xff" * 32, message, signature)
    assert not verify_signature(key.public_key, message, b"\xff" * 64)
    assert not verify_signature(key.public_key, message, signature.hex())  # type: ignore[arg-type]


# The order of the ed25519 base point.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493


def test_verify_rejects_malleated_signature() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    message = b"block hash bytes"
    signature = key.sign(message)
    s_value = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s_value + GROUP_ORDER).to_bytes(32, "little")

    assert verify_signature(key.public_key, message, signature)
    assert not verify_signature(key.public_key, message, malleated)


def test_verify_rejects_s_equal_to_order() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)
    signature = key.sign(b"message")

    forged = signature[:32] + GROUP_ORDER.to_bytes(32, "little")

    assert not verify_signature(key.public_key, b"message", forged)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_keypair_refuses_pickling(protocol: int) -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)

    with pytest.raises(TypeError, match="cannot be pickled") as raised:
        pickle.dumps(key, protocol=protocol)
    assert key.private_key.hex() not in str(raised.value).lower()


def test_keypair_refuses_copying() -> None:
    key = KeyPair.from_seed(SEED_HEX, 0)

    with pytest.raises(TypeError):
        copy.deepcopy(key)
    with pytest.raises(TypeError):
        copy.copy(key)


def test_keypair_inside_object_refuses_pickling() -> None:
    holder = {"operator": KeyPair.from_seed(SEED_HEX, 0)}

    with pytest.raises(TypeError):
        pickle.dumps(holder)
