"""Simple replies from one catalog key, wallet registration replies and the payout message."""

from __future__ import annotations

from core.banano.errors import (
    AddressAlphabetError,
    AddressChecksumError,
    AddressFirstCharacterError,
    AddressLengthError,
    AddressPrefixError,
    BurnAddressError,
    InvalidAddressError,
    OperatorAddressError,
)
from core.config.product import ProductSettings
from core.i18n import MessageCatalog
from core.presentation.cards import (
    Card,
    Tone,
    ban_amount,
    branded_card,
    code,
    explorer_url,
    link,
    localized,
)
from core.presentation.history import LINKED_STATES
from core.services.history import PayoutSummary
from core.services.players import LinkWalletOutcome, LinkWalletResult

# Most specific first: the burn and operator errors subclass the destination error, which
# subclasses InvalidAddressError like the rest.
_ADDRESS_ERROR_KEYS: tuple[tuple[type[InvalidAddressError], str], ...] = (
    (BurnAddressError, "link_wallet.invalid.burn"),
    (OperatorAddressError, "link_wallet.invalid.operator"),
    (AddressPrefixError, "link_wallet.invalid.prefix"),
    (AddressLengthError, "link_wallet.invalid.length"),
    (AddressAlphabetError, "link_wallet.invalid.alphabet"),
    (AddressFirstCharacterError, "link_wallet.invalid.first_character"),
    (AddressChecksumError, "link_wallet.invalid.checksum"),
)

_LINK_WALLET_TONES: dict[LinkWalletOutcome, Tone] = {
    LinkWalletOutcome.LINKED: "success",
    LinkWalletOutcome.REPLACED: "success",
    LinkWalletOutcome.UNCHANGED: "info",
    LinkWalletOutcome.NEEDS_CONFIRMATION: "warning",
}


def _is_prompt(key: str) -> bool:
    if key.startswith("errors."):
        return False
    return key.endswith((".confirm", ".needs_confirmation")) or ".confirm_" in key


def _default_tone(key: str) -> Tone:
    if key.startswith("errors."):
        return "error"
    if _is_prompt(key):
        return "warning"
    return "info"


def _title_for(
    key: str, catalog: MessageCatalog, locale: str | None, product: ProductSettings
) -> str:
    if _is_prompt(key):
        return catalog.text("title.confirm", locale)
    if key.startswith("confirm."):
        # The reply after a confirmation button, such as "Cancelled", is not a prompt.
        return product.app_name
    title_key = f"title.{key.split('.', 1)[0]}"
    if catalog.has(title_key):
        return catalog.text(title_key, locale)
    return product.app_name


def render_message(
    key: str,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    /,
    *,
    dry_run_banner: bool = False,
    tone: Tone | None = None,
    **params: object,
) -> Card:
    """Render a reply made of one catalog text, such as `errors.cooldown` or `freeze.done`.

    Text parameters are escaped, so pass `mention_user(...)`, `ban_amount(...)` and other
    `Markup` for formatted parts. The title comes from `title.<first part of the key>`, or
    is "Please confirm" for a confirmation prompt. Unless `tone` is given, the tone is
    `error` for `errors.*`, `warning` for a confirmation prompt and `info` otherwise.
    """
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=_title_for(key, catalog, locale, product),
        description=localized(catalog, key, locale, **params),
        tone=_default_tone(key) if tone is None else tone,
    )


def address_error_key(error: InvalidAddressError) -> str:
    """Return the catalog key that explains why `error`'s address was rejected."""
    for error_class, key in _ADDRESS_ERROR_KEYS:
        if isinstance(error, error_class):
            return key
    return "link_wallet.invalid.generic"


def render_address_error(
    error: InvalidAddressError,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render why `/link-wallet` rejected an address, in the player's language."""
    return render_message(
        address_error_key(error),
        catalog,
        locale,
        product,
        dry_run_banner=dry_run_banner,
        tone="error",
    )


def render_link_wallet(
    result: LinkWalletResult,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the outcome of `/link-wallet`; NEEDS_CONFIRMATION becomes a replacement prompt."""
    return render_message(
        f"link_wallet.{result.outcome.value}",
        catalog,
        locale,
        product,
        dry_run_banner=dry_run_banner,
        tone=_LINK_WALLET_TONES[result.outcome],
        address=code(result.address),
        previous_address=code(result.previous_address or ""),
    )


def render_payout_dm(
    payout: PayoutSummary,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the direct message about one payout: amount, kills and the explorer link."""
    suffix = "_dry_run" if payout.dry_run else ""
    lines = [
        localized(
            catalog,
            f"payout_dm.body{suffix}",
            locale,
            amount=ban_amount(payout.amount_raw),
            kills=payout.kills,
            payout_id=payout.id,
        )
    ]
    url = None
    if payout.state in LINKED_STATES and not payout.dry_run:
        url = explorer_url(explorer_block_url, payout.block_hash)
    if url is not None:
        lines.append(link(catalog.text("payout_dm.explorer", locale), url))
    lines.extend(["", catalog.text("payout_dm.footer", locale)])
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text(f"payout_dm.title{suffix}", locale),
        description="\n".join(lines),
        tone="info" if payout.dry_run else "success",
    )
