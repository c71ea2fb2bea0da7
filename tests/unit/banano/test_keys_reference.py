"""Signing, public keys and verification agree with the ed25519_blake2b reference package."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ed25519_blake2b
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.banano.keys import GROUP_ORDER, KeyPair, public_key_from_private, verify_signature

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "banano.json").read_text(encoding="utf-8")
)
BLOCK_HASH = bytes.fromhex(VECTORS["state_block"]["hash"])
VECTOR_PRIVATE_KEY = bytes.fromhex(VECTORS["state_block"]["signing_private_key"])


def _assert_matches_reference(private_key: bytes, message: bytes) -> None:
    reference = ed25519_blake2b.SigningKey(private_key)
    reference_public_key = reference.get_verifying_key().to_bytes()
    key = KeyPair.from_private_key(private_key)

    signature = key.sign(message)

    assert public_key_from_private(private_key) == reference_public_key
    assert key.public_key == reference_public_key
    assert signature == reference.sign(message)
    # verify() raises BadSignatureError on a bad signature.
    ed25519_blake2b.VerifyingKey(key.public_key).verify(signature, message)
    assert verify_signature(key.public_key, message, signature)


def _clamped_scalar(private_key: bytes) -> int:
    digest = hashlib.blake2b(private_key, digest_size=64).digest()
    scalar = int.from_bytes(digest[:32], "little")
    return (scalar & ~7 & ((1 << 255) - 1)) | (1 << 254)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=400))
def test_random_messages_match_reference(private_key: bytes, message: bytes) -> None:
    _assert_matches_reference(private_key, message)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_random_block_hashes_match_reference(private_key: bytes, block_hash: bytes) -> None:
    _assert_matches_reference(private_key, block_hash)


@pytest.mark.parametrize(
    "private_key",
    [bytes(32), b"\xff" * 32, VECTOR_PRIVATE_KEY],
    ids=["zeros", "ones", "vector"],
)
def test_clamped_scalar_above_order(private_key: bytes) -> None:
    # Clamping sets bit 254, so every clamped scalar is above L (about 2**252) and the signer
    # has to reduce it. These keys make that case explicit.
    assert _clamped_scalar(private_key) >= GROUP_ORDER

    _assert_matches_reference(private_key, BLOCK_HASH)


@pytest.mark.parametrize(
    "private_key", [bytes(32), b"\xff" * 32, VECTOR_PRIVATE_KEY], ids=["zeros", "ones", "vector"]
)
def test_empty_message_matches_reference(private_key: bytes) -> None:
    _assert_matches_reference(private_key, b"")


def test_vector_signature_matches_reference() -> None:
    _assert_matches_reference(VECTOR_PRIVATE_KEY, BLOCK_HASH)

    signature = KeyPair.from_private_key(VECTOR_PRIVATE_KEY).sign(BLOCK_HASH)
    assert signature.hex().upper() == VECTORS["state_block"]["signature"]


@pytest.mark.parametrize("vector", VECTORS["keys"], ids=lambda vector: vector["address"][:12])
def test_key_vectors_match_reference(vector: dict[str, str]) -> None:
    private_key = bytes.fromhex(vector["private_key"])

    _assert_matches_reference(private_key, BLOCK_HASH)
    assert KeyPair.from_private_key(private_key).address == vector["address"]


def test_repeated_signing_matches_reference() -> None:
    # A KeyPair keeps its expanded key between signatures, and each one must still match.
    key = KeyPair.from_private_key(VECTOR_PRIVATE_KEY)
    reference = ed25519_blake2b.SigningKey(VECTOR_PRIVATE_KEY)

    for length in range(0, 300, 7):
        message = bytes(index % 256 for index in range(length))
        assert key.sign(message) == reference.sign(message)


def _reference_accepts(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519_blake2b.VerifyingKey(public_key).verify(signature, message)
    except (ed25519_blake2b.BadSignatureError, ValueError, AssertionError):
        return False
    return True


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=200),
    st.sampled_from(["signature", "message", "key"]),
    st.integers(min_value=0, max_value=8 * 64 - 1),
)
def test_verification_matches_reference(
    private_key: bytes, message: bytes, corrupted: str, bit: int
) -> None:
    key = KeyPair.from_private_key(private_key)
    signature = key.sign(message)
    assert verify_signature(key.public_key, message, signature)
    assert _reference_accepts(key.public_key, message, signature)

    public_key = key.public_key
    if corrupted == "signature":
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        signature = bytes(flipped)
    elif corrupted == "message":
        message = message + bytes([bit % 256])
    else:
        flipped = bytearray(public_key)
        flipped[(bit // 8) % 32] ^= 1 << (bit % 8)
        public_key = bytes(flipped)

    assert not verify_signature(public_key, message, signature)
    assert not _reference_accepts(public_key, message, signature)


def test_small_order_key_rejected() -> None:
    # For the identity point as the key, [S]B - [k]A = [S]B whatever the message, so R = B
    # and S = 1 pass for any message. The reference package accepts this forgery.
    identity = (1).to_bytes(32, "little")
    message = b"anything"
    base_point = bytes.fromhex("58" + "66" * 31)
    signature = base_point + (1).to_bytes(32, "little")

    assert _reference_accepts(identity, message, signature)
    assert not verify_signature(identity, message, signature)
