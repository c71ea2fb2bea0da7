"""Encoding, decoding and payout checks of ban_ addresses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.banano.address import (
    ALPHABET,
    BURN_ADDRESS,
    check_payout_destination,
    decode_address,
    encode_address,
    is_valid_address,
)
from core.banano.errors import (
    AddressAlphabetError,
    AddressChecksumError,
    AddressFirstCharacterError,
    AddressLengthError,
    AddressPrefixError,
    BurnAddressError,
    InvalidAddressError,
    OperatorAddressError,
    PayoutDestinationError,
)

GENESIS_ADDRESS = "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr"
PLAYER_ADDRESS = "ban_3i1aq1cchnmbn9x5rsbap8b15akfh7wj7pwskuzi7ahz8oq6cobd99d4r3b7"
OPERATOR_ADDRESS = "ban_1qato4k7z3spc8gq1zyd8xeqfbzsoxwo36a45ozbrxcatut7up8ohyardu1z"

# Characters to substitute: the alphabet, the four base32 characters Banano leaves out,
# upper case, and separators a user might paste.
REPLACEMENT_CHARACTERS = ALPHABET + "02lv" + "ABIO" + "_- .\u00e9"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32))
def test_encode_decode_round_trip(public_key: bytes) -> None:
    address = encode_address(public_key)

    assert address.startswith(("ban_1", "ban_3"))
    assert len(address) == 64
    assert decode_address(address) == public_key


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.data())
def test_single_character_change_rejected(public_key: bytes, data: st.DataObject) -> None:
    address = encode_address(public_key)
    position = data.draw(st.integers(min_value=0, max_value=len(address) - 1))
    replacement = data.draw(
        st.sampled_from([c for c in REPLACEMENT_CHARACTERS if c != address[position]])
    )
    changed = address[:position] + replacement + address[position + 1 :]

    with pytest.raises(InvalidAddressError):
        decode_address(changed)


@pytest.mark.parametrize("address", [PLAYER_ADDRESS, GENESIS_ADDRESS, BURN_ADDRESS])
def test_every_single_character_change_rejected(address: str) -> None:
    accepted = []
    for position in range(len(address)):
        for replacement in REPLACEMENT_CHARACTERS:
            if replacement == address[position]:
                continue
            changed = address[:position] + replacement + address[position + 1 :]
            if is_valid_address(changed):
                accepted.append(changed)

    assert accepted == []


@pytest.mark.parametrize(
    ("address", "error_class"),
    [
        ("xrb_" + PLAYER_ADDRESS[4:], AddressPrefixError),
        ("Ban_" + PLAYER_ADDRESS[4:], AddressPrefixError),
        (" " + PLAYER_ADDRESS, AddressPrefixError),
        ("", AddressPrefixError),
        (PLAYER_ADDRESS + "1", AddressLengthError),
        (PLAYER_ADDRESS[:-1], AddressLengthError),
        (PLAYER_ADDRESS + " ", AddressLengthError),
        ("ban_", AddressLengthError),
        (PLAYER_ADDRESS[:-1] + "l", AddressAlphabetError),
        (PLAYER_ADDRESS[:10] + "I" + PLAYER_ADDRESS[11:], AddressAlphabetError),
        ("ban_4" + PLAYER_ADDRESS[5:], AddressFirstCharacterError),
        ("ban_z" + PLAYER_ADDRESS[5:], AddressFirstCharacterError),
        ("ban_1" + PLAYER_ADDRESS[5:], AddressChecksumError),
    ],
)
def test_decode_error_class(address: str, error_class: type[InvalidAddressError]) -> None:
    with pytest.raises(error_class):
        decode_address(address)


@pytest.mark.parametrize("value", [None, 123, b"ban_1"])
def test_decode_rejects_non_text(value: object) -> None:
    with pytest.raises(InvalidAddressError):
        decode_address(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "expected_words"),
    [
        ("nano_" + PLAYER_ADDRESS[4:], "does not start with ban_"),
        (PLAYER_ADDRESS[:-1], "59 characters"),
        (PLAYER_ADDRESS[:-1] + "0", "0"),
        ("ban_5" + PLAYER_ADDRESS[5:], "only 1 or 3"),
        (PLAYER_ADDRESS[:-1] + "8", "checksum"),
    ],
)
def test_error_message_says_what_is_wrong(address: str, expected_words: str) -> None:
    with pytest.raises(InvalidAddressError) as raised:
        decode_address(address)

    message = raised.value.safe_message
    assert expected_words in message
    assert "ban_ followed by 60" in message
    assert address not in message
    assert str(raised.value) == message


def test_error_message_hides_control_characters() -> None:
    with pytest.raises(AddressPrefixError) as raised:
        decode_address("\x1b[31mhello\n")

    assert "\x1b" not in raised.value.safe_message
    assert "\n" not in raised.value.safe_message


@pytest.mark.parametrize("public_key", [b"", bytes(31), bytes(33)])
def test_encode_rejects_wrong_key_length(public_key: bytes) -> None:
    with pytest.raises(InvalidAddressError):
        encode_address(public_key)


def test_burn_address_is_zero_key() -> None:
    assert decode_address(BURN_ADDRESS) == bytes(32)
    assert encode_address(bytes(32)) == BURN_ADDRESS


def test_payout_destination_accepts_player() -> None:
    assert check_payout_destination(PLAYER_ADDRESS, OPERATOR_ADDRESS) == PLAYER_ADDRESS
    assert check_payout_destination(PLAYER_ADDRESS, None) == PLAYER_ADDRESS


def test_payout_destination_strips_spaces() -> None:
    assert check_payout_destination(f"  {PLAYER_ADDRESS}\n", None) == PLAYER_ADDRESS


def test_payout_destination_rejects_burn() -> None:
    with pytest.raises(BurnAddressError) as raised:
        check_payout_destination(BURN_ADDRESS, OPERATOR_ADDRESS)

    assert isinstance(raised.value, PayoutDestinationError)
    assert isinstance(raised.value, InvalidAddressError)
    assert "burn" in raised.value.safe_message


def test_payout_destination_rejects_operator() -> None:
    with pytest.raises(OperatorAddressError) as raised:
        check_payout_destination(f" {OPERATOR_ADDRESS} ", OPERATOR_ADDRESS)

    assert isinstance(raised.value, PayoutDestinationError)


def test_payout_destination_rejects_invalid() -> None:
    with pytest.raises(AddressChecksumError):
        check_payout_destination(PLAYER_ADDRESS[:-1] + "8", OPERATOR_ADDRESS)
    with pytest.raises(AddressPrefixError):
        check_payout_destination(PLAYER_ADDRESS.upper(), OPERATOR_ADDRESS)
