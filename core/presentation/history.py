"""Payout lines and the payout history card."""

from __future__ import annotations

from core.config.product import ProductSettings
from core.db.models import PayoutState
from core.i18n import MessageCatalog
from core.presentation.cards import (
    Card,
    ban_amount,
    branded_card,
    discord_timestamp,
    explorer_url,
    link,
    localized,
)
from core.services.history import PayoutPage, PayoutSummary

# A block is on the ledger once the node accepted it. A signed block may never be published,
# and a failed one never lands, so neither gets a link.
LINKED_STATES = frozenset({PayoutState.SUBMITTED, PayoutState.CONFIRMED})


def payout_line(
    payout: PayoutSummary, catalog: MessageCatalog, locale: str | None, explorer_block_url: str
) -> str:
    """Return one payout as a line: id, amount, state, time and an explorer link if any.

    Only a live payout the node accepted (submitted or confirmed) gets a link.
    """
    line = localized(
        catalog,
        "payout.line",
        locale,
        payout_id=payout.id,
        amount=ban_amount(payout.amount_raw),
        state=catalog.text(f"payout.state.{payout.state.value}", locale),
        when=discord_timestamp(payout.created_at),
    )
    url = None
    if payout.state in LINKED_STATES and not payout.dry_run:
        url = explorer_url(explorer_block_url, payout.block_hash)
    if url is None:
        return line
    return f"{line} · {link(catalog.text('payout.explorer_link', locale), url)}"


def render_history(
    page: PayoutPage,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render one page of a player's payout history."""
    if not page.payouts:
        description = catalog.text("history.empty", locale)
    else:
        lines = [payout_line(p, catalog, locale, explorer_block_url) for p in page.payouts]
        summary = catalog.text(
            "history.page", locale, page=page.page, pages=page.pages, total=page.total
        )
        description = "\n".join(lines) + "\n\n" + summary
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("history.title", locale),
        description=description,
    )
