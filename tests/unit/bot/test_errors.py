"""The error handler: the reply users get, what is logged, and how the reply is sent."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import discord
import pytest
import structlog
from discord import app_commands

from bot.errors import ErrorHandler, ErrorReply, classify, error_key, send_error, unwrap
from cogs.common import LocalizedCheckFailure, ViewError
from core.banano.errors import AddressChecksumError, BurnAddressError, InvalidAddressError
from core.banano.rpc_errors import NodeUnavailableError
from core.db.models import AbuseFlagStatus
from core.errors import Pay2SlayError
from core.i18n import MessageCatalog
from core.integrations import YuniteUnavailableError
from core.services.abuse import AbuseFlagNotFoundError, AbuseFlagResolvedError
from core.services.players import PlayerNotFoundError, WalletInUseError
from tests.unit.cogs.helpers_cogs import make_settings, mock_interaction

INTERACTION_ID = 77


@pytest.fixture
def catalog() -> MessageCatalog:
    return MessageCatalog.load(strict=True)


@pytest.fixture
def handler(catalog: MessageCatalog) -> ErrorHandler:
    return ErrorHandler(catalog, make_settings().product)


def cooldown_error(seconds: float) -> app_commands.CommandOnCooldown:
    return app_commands.CommandOnCooldown(app_commands.Cooldown(1, 10.0), seconds)


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (BurnAddressError(), "link_wallet.invalid.burn"),
        (AddressChecksumError(), "link_wallet.invalid.checksum"),
        (InvalidAddressError(), "link_wallet.invalid.generic"),
        (WalletInUseError(), "link_wallet.in_use"),
        (PlayerNotFoundError(5), "errors.player_unknown"),
        (AbuseFlagNotFoundError(3), "abuse_resolve.not_found"),
        (YuniteUnavailableError(), "errors.service_unavailable"),
        (NodeUnavailableError("down"), "errors.service_unavailable"),
    ],
)
def test_error_key_of_domain_errors(error: Pay2SlayError, key: str) -> None:
    assert error_key(error) == key


def test_error_key_of_unlisted_error() -> None:
    assert error_key(Pay2SlayError("plain")) is None


def test_unwrap_command_and_view_errors() -> None:
    original = KeyError("x")
    command = MagicMock(spec=app_commands.Command)
    command.name = "status"

    assert unwrap(app_commands.CommandInvokeError(command, original)) is original
    assert unwrap(ViewError(original)) is original


def test_check_failure_uses_its_key(catalog: MessageCatalog) -> None:
    reply = classify(LocalizedCheckFailure("errors.not_admin"), catalog, INTERACTION_ID)

    assert reply == ErrorReply("errors.not_admin", {})


def test_cooldown_rounds_seconds_up(catalog: MessageCatalog) -> None:
    reply = classify(cooldown_error(2.2), catalog, INTERACTION_ID)

    assert reply == ErrorReply("errors.cooldown", {"seconds": 3})


def test_domain_error_fills_placeholders(catalog: MessageCatalog) -> None:
    reply = classify(AbuseFlagNotFoundError(12), catalog, INTERACTION_ID)

    assert reply.key == "abuse_resolve.not_found"
    assert reply.params["flag_id"] == 12


def test_domain_error_without_values_uses_safe_message(catalog: MessageCatalog) -> None:
    # The catalog text needs {status}, which the error does not carry.
    error = AbuseFlagResolvedError(12, AbuseFlagStatus.VOIDED)

    reply = classify(error, catalog, INTERACTION_ID)

    assert reply == ErrorReply(text=error.safe_message)


def test_unlisted_domain_error_uses_safe_message(catalog: MessageCatalog) -> None:
    reply = classify(Pay2SlayError("The pool is busy."), catalog, INTERACTION_ID)

    assert reply == ErrorReply(text="The pool is busy.")


def test_unexpected_error_is_logged_with_incident(catalog: MessageCatalog) -> None:
    error = ValueError("connection string with password=hunter2")

    with structlog.testing.capture_logs() as logs:
        reply = classify(error, catalog, INTERACTION_ID)

    assert reply.key == "errors.unexpected"
    incident_id = reply.params["incident_id"]
    assert isinstance(incident_id, str)
    assert len(incident_id) == 8
    logged = [entry for entry in logs if entry["event"] == "command_failed_unexpected"]
    assert logged[0]["incident_id"] == incident_id
    assert logged[0]["exc_info"] is error
    assert logged[0]["log_level"] == "error"


def test_user_mistakes_are_logged_at_debug(catalog: MessageCatalog) -> None:
    with structlog.testing.capture_logs() as logs:
        classify(cooldown_error(1.0), catalog, INTERACTION_ID)
        classify(LocalizedCheckFailure("errors.not_admin"), catalog, INTERACTION_ID)

    assert {entry["log_level"] for entry in logs} == {"debug"}


def test_incident_card_hides_exception_text(handler: ErrorHandler) -> None:
    reply = classify(RuntimeError("SELECT * FROM secrets"), handler.catalog, INTERACTION_ID)

    card = handler.card(reply, "en-US")

    assert "SELECT" not in card.description
    assert str(reply.params["incident_id"]) in card.description
    assert card.tone == "error"


def test_safe_message_is_escaped(handler: ErrorHandler) -> None:
    card = handler.card(ErrorReply(text="@everyone **now**"), "en-US")

    assert "@everyone" not in card.description
    assert card.title == handler.catalog.text("title.errors", "en")


def test_card_in_portuguese(handler: ErrorHandler) -> None:
    card = handler.card(ErrorReply("errors.guild_only"), "pt-BR")

    assert handler.catalog.text("errors.guild_only", "pt-BR") in card.description


async def test_send_before_any_reply() -> None:
    interaction = mock_interaction(1)
    embed = discord.Embed(title="x")

    await send_error(interaction, embed)

    call = interaction.response.send_message.await_args
    assert call.kwargs["ephemeral"] is True
    assert call.kwargs["embed"] is embed
    assert call.kwargs["allowed_mentions"].to_dict() == {"parse": []}


async def test_send_after_deferral_edits_reply() -> None:
    interaction = mock_interaction(1)
    await interaction.response.defer(ephemeral=True, thinking=True)

    await send_error(interaction, discord.Embed(title="x"))

    interaction.response.send_message.assert_not_awaited()
    call = interaction.edit_original_response.await_args
    assert call.kwargs["view"] is None


async def test_send_after_button_uses_followup() -> None:
    interaction = mock_interaction(1)
    interaction.type = discord.InteractionType.component
    await interaction.response.defer()

    await send_error(interaction, discord.Embed(title="x"))

    assert interaction.followup.send.await_args.kwargs["ephemeral"] is True


async def test_send_failure_is_logged_not_raised() -> None:
    interaction: Any = mock_interaction(1)
    interaction.response.send_message.side_effect = discord.NotFound(
        MagicMock(status=404, reason="Not Found"), {"code": 10062, "message": "Unknown interaction"}
    )

    with structlog.testing.capture_logs() as logs:
        await send_error(interaction, discord.Embed(title="x"))

    assert [entry["event"] for entry in logs] == ["error_reply_failed"]
    assert logs[0]["error_code"] == 10062
