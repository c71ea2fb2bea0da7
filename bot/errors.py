"""The one error path of every slash command and button: the command tree's `on_error`.

- A check that rejected the call states why (`LocalizedCheckFailure` carries its catalog key);
  a cooldown says how many seconds to wait.
- An option value that does not convert (Discord's copy of the commands is out of date) or a
  check that gives no reason is treated as unexpected, below.
- A `Pay2SlayError` shows its catalog text in the user's locale when `ERROR_KEYS` (or the
  address error table) names a key for its class and the error carries every value the
  text needs; otherwise its English `safe_message`.
- Anything else is logged with its traceback and a short incident id, and the user gets the
  generic `errors.unexpected` text with that id. Raw exception text never reaches a user.

Every reply is an ephemeral embed that mentions nobody, whether or not the interaction was
already deferred or answered.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import discord
import structlog
from discord import app_commands

from cogs.common import NO_MENTIONS, LocalizedCheckFailure, ViewError, card_embed
from core.banano.errors import InvalidAddressError
from core.banano.rpc_errors import NodeError
from core.banano.work_providers import WorkUnavailableError
from core.config import ProductSettings
from core.errors import Pay2SlayError
from core.i18n import REFERENCE_LOCALE, MessageCatalog, placeholders
from core.integrations import IntegrationError
from core.presentation import Card, address_error_key, render_message, user_text
from core.presentation.cards import branded_card
from core.services.abuse import AbuseFlagNotFoundError, AbuseFlagResolvedError
from core.services.players import PlayerNotFoundError, WalletInUseError

log = structlog.get_logger(__name__)

# Catalog text for domain errors, most specific class first. Address errors have their own
# table in core.presentation.
ERROR_KEYS: tuple[tuple[type[Pay2SlayError], str], ...] = (
    (WalletInUseError, "link_wallet.in_use"),
    (PlayerNotFoundError, "errors.player_unknown"),
    (AbuseFlagNotFoundError, "abuse_resolve.not_found"),
    (AbuseFlagResolvedError, "abuse_resolve.already_resolved"),
    (IntegrationError, "errors.service_unavailable"),
    (NodeError, "errors.service_unavailable"),
    (WorkUnavailableError, "errors.service_unavailable"),
)


@dataclass(frozen=True)
class ErrorReply:
    """The reply to the user: catalog text by `key`, or `text` that is already safe to show."""

    key: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    text: str | None = None


def error_key(error: Pay2SlayError) -> str | None:
    """Return the catalog key that explains `error`, or None when no text is specific to it."""
    if isinstance(error, InvalidAddressError):
        return address_error_key(error)
    for error_class, key in ERROR_KEYS:
        if isinstance(error, error_class):
            return key
    return None


def new_incident_id() -> str:
    """Return a short random id that ties a user's report to one logged traceback."""
    return uuid.uuid4().hex[:8]


def unwrap(error: BaseException) -> BaseException:
    """Return the exception a command or button raised, without discord.py's wrapper."""
    if isinstance(error, app_commands.CommandInvokeError | ViewError):
        return error.original
    return error


def _domain_reply(error: Pay2SlayError, catalog: MessageCatalog) -> ErrorReply:
    key = error_key(error)
    if key is not None and catalog.has(key):
        # Public attributes of plain types fill the text's placeholders. When the text needs a
        # value the error does not carry, the error's own message is shown instead.
        params: dict[str, object] = {
            name: value
            for name, value in vars(error).items()
            if not name.startswith("_") and isinstance(value, str | int)
        }
        template = catalog.lookup(key, REFERENCE_LOCALE) or ""
        if placeholders(template) <= params.keys():
            return ErrorReply(key, params)
    return ErrorReply(text=error.safe_message)


def classify(error: BaseException, catalog: MessageCatalog, interaction_id: int) -> ErrorReply:
    """Return the reply for `error`, and log the error at the matching level."""
    original = unwrap(error)

    if isinstance(original, LocalizedCheckFailure):
        log.debug("command_refused", reason=original.key, interaction_id=interaction_id)
        return ErrorReply(original.key, dict(original.params))
    if isinstance(original, app_commands.CommandOnCooldown):
        seconds = max(1, math.ceil(original.retry_after))
        log.debug("command_on_cooldown", seconds=seconds, interaction_id=interaction_id)
        return ErrorReply("errors.cooldown", {"seconds": seconds})
    if isinstance(original, app_commands.NoPrivateMessage):
        return ErrorReply("errors.guild_only")
    if isinstance(original, Pay2SlayError):
        log.info(
            "command_failed_expected",
            error_type=type(original).__name__,
            interaction_id=interaction_id,
        )
        return _domain_reply(original, catalog)

    incident_id = new_incident_id()
    if isinstance(original, app_commands.TransformerError):
        # Discord checks option types and choices before sending a command, so a value that
        # does not convert means the commands Discord has differ from this version's.
        log.warning(
            "command_option_invalid",
            incident_id=incident_id,
            interaction_id=interaction_id,
            option_type=original.type.name,
            hint="run pay2slay sync-commands after an upgrade",
        )
    elif isinstance(original, app_commands.CheckFailure):
        # Every check of this bot raises LocalizedCheckFailure with its reason, so a check
        # failure without one is a bug.
        log.error(
            "command_check_failed_without_reason",
            incident_id=incident_id,
            interaction_id=interaction_id,
            check=type(original).__name__,
        )
    else:
        log.error(
            "command_failed_unexpected",
            incident_id=incident_id,
            interaction_id=interaction_id,
            error_type=type(original).__name__,
            exc_info=original,
        )
    return ErrorReply("errors.unexpected", {"incident_id": incident_id})


class ErrorHandler:
    """Turns errors into ephemeral replies in the user's locale; see the module docstring."""

    def __init__(self, catalog: MessageCatalog, product: ProductSettings) -> None:
        self.catalog = catalog
        self.product = product

    def card(self, reply: ErrorReply, locale: str) -> Card:
        """Return the reply as an error card in `locale`."""
        if reply.key is not None:
            params: dict[str, Any] = dict(reply.params)
            return render_message(
                reply.key, self.catalog, locale, self.product, tone="error", **params
            )
        return branded_card(
            catalog=self.catalog,
            locale=locale,
            product=self.product,
            dry_run_banner=False,
            title=self.catalog.text("title.errors", locale),
            description=user_text(reply.text or ""),
            tone="error",
        )

    async def handle(self, interaction: discord.Interaction[Any], error: BaseException) -> None:
        """Log `error` and tell the user what happened."""
        reply = classify(error, self.catalog, interaction.id)
        embed = card_embed(self.card(reply, interaction.locale.value))
        await send_error(interaction, embed)


async def send_error(interaction: discord.Interaction[Any], embed: discord.Embed) -> None:
    """Show the error, in place of the command's reply if it already had one."""
    response = interaction.response
    try:
        if not response.is_done():
            await response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)
        elif interaction.type is discord.InteractionType.application_command:
            await interaction.edit_original_response(
                content=None, embed=embed, view=None, allowed_mentions=NO_MENTIONS
            )
        else:
            await interaction.followup.send(
                embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
    except discord.HTTPException as failure:
        # The interaction expired or Discord is unreachable; the error itself is logged.
        log.warning(
            "error_reply_failed",
            interaction_id=interaction.id,
            status=failure.status,
            error_code=failure.code,
        )
