"""Account keys: derivation from a seed, ed25519-blake2b signing and verification.

Banano derives the private key of account `index` as Blake2b-256 of the 32-byte seed followed
by the index as 4 bytes big-endian, and signs with Ed25519 using Blake2b-512 in place of
SHA-512.

Signing, public key derivation and verification run on libsodium's group and scalar
operations (through PyNaCl) with the hashing in hashlib, because libsodium's own Ed25519
functions hash with SHA-512. Ed25519 signatures are deterministic, so the tests compare these
byte for byte with the slower `ed25519_blake2b` reference package.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import NoReturn

from nacl import bindings as sodium

from core.banano.address import encode_address
from core.banano.errors import InvalidKeyError

PRIVATE_KEY_LENGTH = 32
PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64
MAX_ACCOUNT_INDEX = 2**32 - 1
# L, the order of the ed25519 base point.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493

_SEED_HEX = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_DIGEST_LENGTH = 64

# A minimal libsodium build lacks these operations, so fail at import, not at the first payout.
if not (sodium.has_crypto_core_ed25519 and sodium.has_crypto_scalarmult_ed25519):
    raise ImportError(
        "PyNaCl's libsodium is missing the ed25519 group and scalar operations. Install a "
        "PyNaCl wheel, or build PyNaCl against a full (not minimal) libsodium."
    )


def private_key_from_seed(seed_hex: str, index: int) -> bytes:
    """Derive the private key of account `index` (0 to 2**32 - 1) from a 64-hex-digit seed."""
    if not isinstance(seed_hex, str) or _SEED_HEX.fullmatch(seed_hex) is None:
        raise InvalidKeyError("The seed must be 64 hexadecimal digits.")
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidKeyError("The account index must be an int.")
    if not 0 <= index <= MAX_ACCOUNT_INDEX:
        raise InvalidKeyError(f"The account index must be between 0 and {MAX_ACCOUNT_INDEX}.")

    message = bytes.fromhex(seed_hex) + index.to_bytes(4, "big")
    return hashlib.blake2b(message, digest_size=PRIVATE_KEY_LENGTH).digest()


def _check_private_key(private_key: bytes) -> None:
    if not isinstance(private_key, bytes) or len(private_key) != PRIVATE_KEY_LENGTH:
        raise InvalidKeyError("A private key must be 32 bytes.")


def _reduce(digest: bytes) -> bytes:
    """Reduce a 64-byte little-endian number modulo L to a 32-byte scalar."""
    return sodium.crypto_core_ed25519_scalar_reduce(digest)


def _expand(private_key: bytes) -> tuple[bytes, bytes]:
    """Expand a private key into its secret scalar (reduced modulo L) and nonce prefix."""
    digest = hashlib.blake2b(private_key, digest_size=_DIGEST_LENGTH).digest()
    clamped = bytearray(digest[:32])
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    # The clamped scalar is at least 2**254, above L. Reducing it gives the same point, because L is
    # the base point's order, and the same S, which is computed modulo L.
    return _reduce(bytes(clamped) + bytes(32)), digest[32:]


def _public_key_of_scalar(scalar: bytes) -> bytes:
    return sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)


def _sign(scalar: bytes, nonce_prefix: bytes, public_key: bytes, message: bytes) -> bytes:
    # The secret scalar and the nonce stay out of Python ints, whose arithmetic takes time
    # that depends on the values, and go only through libsodium's scalar functions.
    nonce_hash = hashlib.blake2b(nonce_prefix, digest_size=_DIGEST_LENGTH)
    nonce_hash.update(message)
    nonce = _reduce(nonce_hash.digest())
    # NOTE: a nonce of 0 modulo L (probability 2**-252) makes libsodium raise RuntimeError
    # where the reference implementation would sign with the identity point.
    commitment = sodium.crypto_scalarmult_ed25519_base_noclamp(nonce)

    challenge_hash = hashlib.blake2b(commitment, digest_size=_DIGEST_LENGTH)
    challenge_hash.update(public_key)
    challenge_hash.update(message)
    challenge = _reduce(challenge_hash.digest())

    s_value = sodium.crypto_core_ed25519_scalar_add(
        nonce, sodium.crypto_core_ed25519_scalar_mul(challenge, scalar)
    )
    return commitment + s_value


def public_key_from_private(private_key: bytes) -> bytes:
    """Derive the 32-byte public key of a 32-byte private key."""
    _check_private_key(private_key)
    scalar, _ = _expand(private_key)
    return _public_key_of_scalar(scalar)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is a valid signature of `message` by `public_key`.

    Malformed input (wrong lengths, a key that is not a curve point) returns False. So does a
    signature whose S is not below the group order L, because S + L passes the verification
    equation too and would give one block a second valid signature, and a key of small order
    or outside the prime-order subgroup, which no private key derives.
    """
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_LENGTH:
        return False
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_LENGTH:
        return False
    commitment, s_value = signature[:32], signature[32:]
    if int.from_bytes(s_value, "little") >= GROUP_ORDER:
        return False
    if not sodium.crypto_core_ed25519_is_valid_point(public_key):
        return False
    challenge_hash = hashlib.blake2b(commitment, digest_size=_DIGEST_LENGTH)
    challenge_hash.update(public_key)
    challenge_hash.update(message)
    challenge = _reduce(challenge_hash.digest())
    try:
        # [S]B - [k]A must encode to R. libsodium raises when a product is the identity
        # point (S or k is 0 modulo L), which no honest signature gives.
        expected = sodium.crypto_core_ed25519_sub(
            sodium.crypto_scalarmult_ed25519_base_noclamp(s_value),
            sodium.crypto_scalarmult_ed25519_noclamp(challenge, public_key),
        )
    except RuntimeError:
        return False
    return expected == commitment


@dataclass(frozen=True)
class KeyPair:
    """The keys and address of one account. Its repr and str never show the private key."""

    private_key: bytes = field(repr=False)
    public_key: bytes
    address: str
    _scalar: bytes = field(init=False, repr=False, compare=False, hash=False)
    _nonce_prefix: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_private_key(self.private_key)
        scalar, nonce_prefix = _expand(self.private_key)
        if _public_key_of_scalar(scalar) != self.public_key:
            raise InvalidKeyError("The public key does not belong to the private key.")
        if encode_address(self.public_key) != self.address:
            raise InvalidKeyError("The address does not belong to the public key.")
        object.__setattr__(self, "_scalar", scalar)
        object.__setattr__(self, "_nonce_prefix", nonce_prefix)

    @classmethod
    def from_private_key(cls, private_key: bytes) -> KeyPair:
        """Build the key pair of a 32-byte private key."""
        public_key = public_key_from_private(private_key)
        return cls(
            private_key=private_key, public_key=public_key, address=encode_address(public_key)
        )

    @classmethod
    def from_seed(cls, seed_hex: str, index: int) -> KeyPair:
        """Build the key pair of account `index` of a 64-hex-digit seed."""
        return cls.from_private_key(private_key_from_seed(seed_hex, index))

    def __repr__(self) -> str:
        return f"KeyPair(address={self.address!r})"

    def __reduce__(self) -> NoReturn:
        # Pickling (and copy, which uses the same protocol) would write the private key out.
        raise TypeError("A KeyPair cannot be pickled or copied because it contains a private key.")

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte ed25519-blake2b signature of `message`."""
        if not isinstance(message, bytes):
            raise TypeError("Only bytes can be signed.")
        return _sign(self._scalar, self._nonce_prefix, self.public_key, message)
