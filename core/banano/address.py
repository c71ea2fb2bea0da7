"""Encoding and validation of `ban_` account addresses.

An address is "ban_", then the 256-bit public key as 52 base32 characters (padded with four
zero bits at the front, so the first character is 1 or 3), then a 40-bit checksum as 8 base32
characters. The checksum is the 5-byte Blake2b digest of the public key in reversed byte
order. Banano shares this format with Nano, whose addresses use the "nano_" prefix instead.
"""

from __future__ import annotations

import hashlib

from core.banano.errors import (
    ADDRESS_FORMAT_HINT,
    AddressAlphabetError,
    AddressChecksumError,
    AddressFirstCharacterError,
    AddressLengthError,
    AddressPrefixError,
    BurnAddressError,
    InvalidAddressError,
    OperatorAddressError,
    shorten_for_message,
)

ADDRESS_PREFIX = "ban_"
ALPHABET = "13456789abcdefghijkmnopqrstuwxyz"
PUBLIC_KEY_LENGTH = 32
KEY_CHARACTERS = 52
CHECKSUM_CHARACTERS = 8
ADDRESS_LENGTH = len(ADDRESS_PREFIX) + KEY_CHARACTERS + CHECKSUM_CHARACTERS

# The account whose public key is all zeros: no private key is known for it, so anything
# sent there can never be spent.
BURN_ADDRESS = "ban_1111111111111111111111111111111111111111111111111111hifc8npp"

_CHARACTER_VALUES = {character: value for value, character in enumerate(ALPHABET)}
_CHECKSUM_BYTES = 5


def _encode_base32(number: int, length: int) -> str:
    characters = []
    for _ in range(length):
        characters.append(ALPHABET[number & 0x1F])
        number >>= 5
    return "".join(reversed(characters))


def _decode_base32(text: str) -> int:
    number = 0
    for character in text:
        number = (number << 5) | _CHARACTER_VALUES[character]
    return number


def _checksum(public_key: bytes) -> bytes:
    return hashlib.blake2b(public_key, digest_size=_CHECKSUM_BYTES).digest()[::-1]


def encode_address(public_key: bytes) -> str:
    """Encode a 32-byte public key as a `ban_` address."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_LENGTH:
        raise InvalidAddressError("A public key must be 32 bytes to be encoded as an address.")
    key_part = _encode_base32(int.from_bytes(public_key, "big"), KEY_CHARACTERS)
    checksum_part = _encode_base32(
        int.from_bytes(_checksum(public_key), "big"), CHECKSUM_CHARACTERS
    )
    return f"{ADDRESS_PREFIX}{key_part}{checksum_part}"


def decode_address(address: str) -> bytes:
    """Return the 32-byte public key of a `ban_` address after checking every part of it.

    Raises a distinct subclass of `InvalidAddressError` for a wrong prefix, length, character,
    first character or checksum. Only the canonical lower-case form is accepted.
    """
    if not isinstance(address, str):
        raise InvalidAddressError(f"The address must be text. {ADDRESS_FORMAT_HINT}")

    display_text = shorten_for_message(address)
    if not address.startswith(ADDRESS_PREFIX):
        raise AddressPrefixError(
            f"The address '{display_text}' does not start with ban_, "
            f"so it is not a Banano address. {ADDRESS_FORMAT_HINT}"
        )

    encoded = address[len(ADDRESS_PREFIX) :]
    if len(encoded) != KEY_CHARACTERS + CHECKSUM_CHARACTERS:
        raise AddressLengthError(
            f"The address '{display_text}' has {len(encoded)} characters after ban_ "
            f"instead of {KEY_CHARACTERS + CHECKSUM_CHARACTERS}; part of it may be missing. "
            f"{ADDRESS_FORMAT_HINT}"
        )

    invalid_characters = sorted({c for c in encoded if c not in _CHARACTER_VALUES})
    if invalid_characters:
        listed = shorten_for_message(" ".join(invalid_characters))
        raise AddressAlphabetError(
            f"The address '{display_text}' contains characters that Banano addresses never use: "
            f"{listed}. The characters 0, 2, l, v and upper-case letters are not allowed. "
            f"{ADDRESS_FORMAT_HINT}"
        )

    if encoded[0] not in "13":
        raise AddressFirstCharacterError(
            f"The address '{display_text}' has '{encoded[0]}' right after ban_, "
            f"but only 1 or 3 can appear there. {ADDRESS_FORMAT_HINT}"
        )

    public_key = _decode_base32(encoded[:KEY_CHARACTERS]).to_bytes(PUBLIC_KEY_LENGTH, "big")
    checksum = _decode_base32(encoded[KEY_CHARACTERS:]).to_bytes(_CHECKSUM_BYTES, "big")
    if checksum != _checksum(public_key):
        raise AddressChecksumError(
            f"The address '{display_text}' has a checksum that does not match, so a character was "
            f"probably mistyped. Copy the address from your wallet instead of typing it. "
            f"{ADDRESS_FORMAT_HINT}"
        )
    return public_key


def is_valid_address(address: str) -> bool:
    """Return whether `address` is a valid, canonical `ban_` address."""
    try:
        decode_address(address)
    except InvalidAddressError:
        return False
    return True


def check_payout_destination(address: str, operator_address: str | None) -> str:
    """Validate an address a player registers as their wallet and return its canonical form.

    Surrounding spaces are removed. Beyond `decode_address`, this rejects the burn address
    (`BurnAddressError`) and the operator account (`OperatorAddressError`), because a payout
    sent to either would be lost to the player.
    """
    if not isinstance(address, str):
        raise InvalidAddressError(f"The address must be text. {ADDRESS_FORMAT_HINT}")

    public_key = decode_address(address.strip())
    canonical_address = encode_address(public_key)
    if canonical_address == BURN_ADDRESS:
        raise BurnAddressError()
    # The operator address comes from validated configuration, so it is already canonical.
    if operator_address is not None and canonical_address == operator_address.strip():
        raise OperatorAddressError()
    return canonical_address
