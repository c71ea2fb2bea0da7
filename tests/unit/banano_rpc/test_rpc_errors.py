"""Mapping of node error texts to typed errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.banano.rpc_errors import (
    AccountNotFoundError,
    BadSignatureError,
    BalanceMismatchError,
    BlockNotFoundError,
    BlockRejectedError,
    ControlDisabledError,
    ForkError,
    GapPreviousError,
    GapSourceError,
    InsufficientWorkError,
    InvalidSubtypeError,
    NegativeSpendError,
    NodeError,
    NodeReplyError,
    OldBlockError,
    SendRefusedError,
    UnknownNodeError,
    UnreceivableError,
    WalletBlockError,
    error_from_text,
)
from core.errors import Pay2SlayError

PROCESS_ERROR_CLASSES: dict[str, type[NodeReplyError]] = {
    "old_block": OldBlockError,
    "fork": ForkError,
    "gap_previous": GapPreviousError,
    "gap_source": GapSourceError,
    "bad_signature": BadSignatureError,
    "insufficient_work": InsufficientWorkError,
    "negative_spend": NegativeSpendError,
    "balance_mismatch": BalanceMismatchError,
    "invalid_subtype_balance": InvalidSubtypeError,
    "invalid_subtype_previous": InvalidSubtypeError,
    "unreceivable": UnreceivableError,
    "control_disabled": ControlDisabledError,
}


def test_every_fixture_error_text_has_a_class(
    load_fixture: Callable[[str], dict[str, Any]],
) -> None:
    bodies = load_fixture("process_errors")
    bodies.pop("_about")

    assert set(bodies) == set(PROCESS_ERROR_CLASSES)
    for name, body in bodies.items():
        error = error_from_text(body["error"])
        assert type(error) is PROCESS_ERROR_CLASSES[name], name
        assert error.node_text == body["error"]


def test_lookup_fixture_errors_map(load_fixture: Callable[[str], dict[str, Any]]) -> None:
    assert type(error_from_text(load_fixture("account_info_unopened")["error"])) is (
        AccountNotFoundError
    )
    assert type(error_from_text(load_fixture("block_info_missing")["error"])) is (
        BlockNotFoundError
    )


@pytest.mark.parametrize(
    "text",
    ["Insufficient work", "Block work is less than threshold", "Block work is insufficient"],
)
def test_both_insufficient_work_texts_map(text: str) -> None:
    assert isinstance(error_from_text(text), InsufficientWorkError)


@pytest.mark.parametrize(
    "text",
    [
        "Insufficient balance",
        "Wallet is locked",
        "Wallet not found",
        "Account not found in wallet",
        "Bad amount number",
        "Invalid amount number",
    ],
)
def test_wallet_send_refusals_map(text: str) -> None:
    assert isinstance(error_from_text(text), SendRefusedError)


def test_wallet_block_failure_gives_no_verdict() -> None:
    error = error_from_text("Error generating block")

    assert type(error) is WalletBlockError
    assert not isinstance(error, SendRefusedError)
    assert not isinstance(error, BlockRejectedError)


def test_unknown_text_keeps_the_text() -> None:
    error = error_from_text("Something new")

    assert type(error) is UnknownNodeError
    assert error.node_text == "Something new"
    assert "Something new" in str(error)
    assert "Something new" not in error.safe_message


def test_matching_is_exact_apart_from_spaces() -> None:
    assert type(error_from_text(" Fork ")) is ForkError
    assert type(error_from_text("fork")) is UnknownNodeError
    assert type(error_from_text("Fork detected")) is UnknownNodeError


def test_rejections_share_a_base_class() -> None:
    for error_class in (
        ForkError,
        GapPreviousError,
        GapSourceError,
        BadSignatureError,
        InsufficientWorkError,
        BalanceMismatchError,
        NegativeSpendError,
        UnreceivableError,
    ):
        assert issubclass(error_class, BlockRejectedError)
    # These give no verdict that the block can never land.
    for no_verdict_class in (OldBlockError, InvalidSubtypeError, UnknownNodeError):
        assert not issubclass(no_verdict_class, BlockRejectedError)


def test_errors_are_project_errors() -> None:
    error = error_from_text("Fork")

    assert isinstance(error, NodeError)
    assert isinstance(error, Pay2SlayError)
    assert error.safe_message


def test_long_node_text_is_shortened() -> None:
    error = error_from_text("x" * 5000)

    assert len(error.node_text) <= 120
