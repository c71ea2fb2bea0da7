"""State block validation, hashing, signing and JSON forms."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.banano.address import encode_address
from core.banano.blocks import ZERO_HASH, StateBlock, build_receive, build_send
from core.banano.errors import (
    AmountTypeError,
    InsufficientBalanceError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidBlockError,
)
from core.banano.keys import KeyPair
from core.banano.units import MAX_RAW, RAW_PER_BAN

SEED_HEX = "0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0"
OPERATOR = KeyPair.from_seed(SEED_HEX, 0)
PLAYER = KeyPair.from_seed(SEED_HEX, 1)
REPRESENTATIVE = "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr"
PREVIOUS = "6CDDA48608C7843A0AC1122BDD46D9E20E21190986B19EAC23E7F33F2E6A6766"
WORK = "168ed3b6666756bf"


def _send(amount_raw: int = 2 * RAW_PER_BAN) -> StateBlock:
    return build_send(
        OPERATOR,
        previous=PREVIOUS,
        representative=REPRESENTATIVE,
        balance_before_raw=10 * RAW_PER_BAN,
        amount_raw=amount_raw,
        destination=PLAYER.address,
    )


def _complete_rpc_json() -> dict[str, str]:
    return _send().signed(OPERATOR).with_work(WORK).to_rpc_json()


def test_build_send_fields() -> None:
    block = _send()

    assert block.account == OPERATOR.address
    assert block.previous == PREVIOUS
    assert block.balance_raw == 8 * RAW_PER_BAN
    assert block.link == PLAYER.public_key.hex().upper()
    assert block.link_as_account == PLAYER.address
    assert block.subtype == "send"
    assert block.signature is None
    assert block.work is None


def test_build_send_whole_balance() -> None:
    block = build_send(OPERATOR, PREVIOUS, REPRESENTATIVE, 5, 5, PLAYER.address)

    assert block.balance_raw == 0


@pytest.mark.parametrize("amount_raw", [0, -1])
def test_build_send_rejects_non_positive(amount_raw: int) -> None:
    with pytest.raises(InvalidAmountError):
        _send(amount_raw)


def test_build_send_rejects_above_balance() -> None:
    with pytest.raises(InsufficientBalanceError):
        _send(10 * RAW_PER_BAN + 1)


@pytest.mark.parametrize("amount_raw", [1.0, True, "1"])
def test_build_send_rejects_amount_types(amount_raw: object) -> None:
    with pytest.raises(AmountTypeError):
        _send(amount_raw)  # type: ignore[arg-type]


def test_build_send_rejects_bad_destination() -> None:
    with pytest.raises(InvalidAddressError):
        build_send(OPERATOR, PREVIOUS, REPRESENTATIVE, 10, 1, PLAYER.address[:-1] + "1")


def test_build_receive_open_and_receive() -> None:
    opened = build_receive(PLAYER, ZERO_HASH, REPRESENTATIVE, 0, 5, PREVIOUS)
    received = build_receive(PLAYER, opened.hash(), REPRESENTATIVE, 5, 7, PREVIOUS.lower())

    assert opened.subtype == "open"
    assert opened.is_open
    assert opened.balance_raw == 5
    assert received.subtype == "receive"
    assert received.balance_raw == 12
    assert received.link == PREVIOUS


def test_build_receive_rejects_overflow() -> None:
    with pytest.raises(InvalidAmountError):
        build_receive(PLAYER, PREVIOUS, REPRESENTATIVE, MAX_RAW, 1, PREVIOUS)


def test_hash_changes_with_each_field() -> None:
    block = _send()
    changes: list[dict[str, Any]] = [
        {"account": PLAYER.address},
        {"previous": "0" * 63 + "1"},
        {"representative": OPERATOR.address},
        {"balance_raw": block.balance_raw + 1},
        {"link": "F" * 64},
    ]

    for change in changes:
        assert dataclasses.replace(block, **change).hash() != block.hash()


def test_hash_ignores_signature_work_subtype() -> None:
    block = _send()
    complete = dataclasses.replace(block.signed(OPERATOR).with_work(WORK), subtype=None)

    assert complete.hash() == block.hash()


def test_signed_block_verifies() -> None:
    block = _send().signed(OPERATOR)

    assert block.verify_signature()
    assert block.signature is not None
    assert len(block.signature) == 128


def test_unsigned_block_does_not_verify() -> None:
    assert not _send().verify_signature()


def test_tampered_block_does_not_verify() -> None:
    block = _send().signed(OPERATOR)

    assert not dataclasses.replace(block, balance_raw=block.balance_raw - 1).verify_signature()
    assert not dataclasses.replace(block, link=OPERATOR.public_key.hex()).verify_signature()


def test_signed_rejects_other_key() -> None:
    with pytest.raises(InvalidBlockError):
        _send().signed(PLAYER)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=MAX_RAW),
)
def test_signature_never_verifies_under_other_key(
    signer_private_key: bytes, other_private_key: bytes, balance_raw: int
) -> None:
    signer = KeyPair.from_private_key(signer_private_key)
    other = KeyPair.from_private_key(other_private_key)
    if signer.public_key == other.public_key:
        return
    block = StateBlock(
        account=signer.address,
        previous=PREVIOUS,
        representative=REPRESENTATIVE,
        balance_raw=balance_raw,
        link=other.public_key.hex(),
    ).signed(signer)

    as_other = dataclasses.replace(block, account=other.address)

    assert block.verify_signature()
    assert not as_other.verify_signature()


def test_hex_fields_normalised() -> None:
    block = StateBlock(
        account=OPERATOR.address,
        previous=PREVIOUS.lower(),
        representative=REPRESENTATIVE,
        balance_raw=1,
        link=PREVIOUS.lower(),
        signature="ab" * 64,
        work=WORK.upper(),
    )

    assert block.previous == PREVIOUS
    assert block.link == PREVIOUS
    assert block.signature == "AB" * 64
    assert block.work == WORK


@pytest.mark.parametrize(
    "change",
    [
        {"account": "ban_1"},
        {"account": OPERATOR.address.upper()},
        {"representative": "nano_" + REPRESENTATIVE[4:]},
        {"previous": PREVIOUS[:-1]},
        {"previous": PREVIOUS[:-1] + "G"},
        {"link": ""},
        {"balance_raw": -1},
        {"balance_raw": MAX_RAW + 1},
        {"balance_raw": True},
        {"balance_raw": "1"},
        {"signature": "AB" * 63},
        {"work": WORK + "0"},
        {"work": "zz" * 8},
        {"subtype": "bogus"},
    ],
)
def test_constructor_rejects(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidBlockError):
        dataclasses.replace(_send(), **change)


def test_with_work_validates() -> None:
    with pytest.raises(InvalidBlockError):
        _send().with_work("xyz")


def test_rpc_json_shape() -> None:
    block = _send().signed(OPERATOR).with_work(WORK)

    block_json = block.to_rpc_json()

    assert block_json == {
        "type": "state",
        "account": OPERATOR.address,
        "previous": PREVIOUS,
        "representative": REPRESENTATIVE,
        "balance": str(8 * RAW_PER_BAN),
        "link": PLAYER.public_key.hex().upper(),
        "link_as_account": PLAYER.address,
        "signature": block.signature,
        "work": WORK,
    }


def test_rpc_json_omits_missing_signature_and_work() -> None:
    block_json = _send().to_rpc_json()

    assert "signature" not in block_json
    assert "work" not in block_json


def test_rpc_json_round_trip() -> None:
    block = _send().signed(OPERATOR).with_work(WORK)

    loaded = StateBlock.from_rpc_json(block.to_rpc_json(), subtype="send")

    assert loaded == block
    assert loaded.hash() == block.hash()


def test_from_rpc_json_ignores_unknown_keys() -> None:
    block_json: dict[str, object] = {**_complete_rpc_json(), "extra": 1}

    assert StateBlock.from_rpc_json(block_json).signature == block_json["signature"]


def test_json_text_round_trip() -> None:
    for block in (_send(), _send().signed(OPERATOR).with_work(WORK)):
        loaded = StateBlock.from_json_text(block.to_json_text())

        assert loaded == block
        assert loaded.subtype == "send"


@pytest.mark.parametrize(
    "field_name", ["type", "account", "previous", "representative", "balance", "link"]
)
def test_from_rpc_json_missing_field(field_name: str) -> None:
    block_json = _complete_rpc_json()
    del block_json[field_name]

    with pytest.raises(InvalidBlockError, match=field_name):
        StateBlock.from_rpc_json(block_json)


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("type", "send"),
        ("type", None),
        ("account", 5),
        ("account", "ban_1"),
        ("previous", None),
        ("previous", "12"),
        ("representative", ["ban_1"]),
        ("balance", 100),
        ("balance", "-1"),
        ("balance", "1.5"),
        ("balance", "0x10"),
        ("balance", str(MAX_RAW + 1)),
        ("balance", ""),
        ("link", {"a": 1}),
        ("link_as_account", REPRESENTATIVE),
        ("link_as_account", 3),
        ("signature", None),
        ("signature", "00"),
        ("work", None),
        ("work", 12345),
        ("work", ""),
    ],
)
def test_from_rpc_json_malformed_field(field_name: str, value: object) -> None:
    block_json: dict[str, object] = {**_complete_rpc_json(), field_name: value}

    with pytest.raises(InvalidBlockError):
        StateBlock.from_rpc_json(block_json)


@pytest.mark.parametrize("data", [None, [], "text", 5])
def test_from_rpc_json_rejects_non_mapping(data: object) -> None:
    with pytest.raises(InvalidBlockError):
        StateBlock.from_rpc_json(data)  # type: ignore[arg-type]


def test_from_rpc_json_rejects_bad_subtype() -> None:
    with pytest.raises(InvalidBlockError):
        StateBlock.from_rpc_json(_complete_rpc_json(), subtype="bogus")  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "account", "previous", "representative", "balance", "link", "work"]
        ),
        JSON_VALUES,
    )
)
def test_from_rpc_json_raises_only_block_error(data: dict[str, object]) -> None:
    with contextlib.suppress(InvalidBlockError):
        StateBlock.from_rpc_json(data)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(_complete_rpc_json())), JSON_VALUES)
def test_from_rpc_json_any_field_value(field_name: str, value: object) -> None:
    block_json: dict[str, object] = {**_complete_rpc_json(), field_name: value}

    with contextlib.suppress(InvalidBlockError):
        StateBlock.from_rpc_json(block_json)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([*_complete_rpc_json(), "subtype"]), JSON_VALUES)
def test_from_json_text_any_field_value(field_name: str, value: object) -> None:
    stored = {**json.loads(_send().to_json_text()), field_name: value}

    with contextlib.suppress(InvalidBlockError):
        StateBlock.from_json_text(json.dumps(stored))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"state"', '{"type": "state"}'])
def test_from_json_text_rejects(text: str) -> None:
    with pytest.raises(InvalidBlockError):
        StateBlock.from_json_text(text)


def test_from_json_text_rejects_bad_subtype() -> None:
    stored = json.loads(_send().to_json_text())
    stored["subtype"] = "bogus"

    with pytest.raises(InvalidBlockError):
        StateBlock.from_json_text(json.dumps(stored))


@pytest.mark.parametrize("subtype", [["send"], {"send": 1}, 7, True, ""])
def test_from_json_text_rejects_subtype_of_other_type(subtype: object) -> None:
    stored = json.loads(_send().to_json_text())
    stored["subtype"] = subtype

    with pytest.raises(InvalidBlockError):
        StateBlock.from_json_text(json.dumps(stored))


@pytest.mark.parametrize("subtype", [["send"], {"send": 1}, 7])
def test_constructor_rejects_subtype_of_other_type(subtype: object) -> None:
    with pytest.raises(InvalidBlockError):
        dataclasses.replace(_send(), subtype=subtype)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"balance": 1' + "0" * 5000 + "}",
    ],
)
def test_from_json_text_rejects_hostile_json(text: str) -> None:
    with pytest.raises(InvalidBlockError):
        StateBlock.from_json_text(text)


def test_from_json_text_rejects_deep_field() -> None:
    stored = json.loads(_send().to_json_text())
    deep: object = "x"
    for _ in range(500):
        deep = [deep]
    stored["subtype"] = deep

    with pytest.raises(InvalidBlockError):
        StateBlock.from_json_text(json.dumps(stored))


def test_link_as_account_of_receive() -> None:
    block = build_receive(PLAYER, ZERO_HASH, REPRESENTATIVE, 0, 5, PREVIOUS)

    assert block.link_as_account == encode_address(bytes.fromhex(PREVIOUS))
