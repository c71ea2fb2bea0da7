"""The leaderboard card."""

from __future__ import annotations

from core.config.product import ProductSettings
from core.i18n import MessageCatalog
from core.presentation.cards import (
    Card,
    CardField,
    ban_amount,
    branded_card,
    localized,
    mention_user,
)
from core.services.leaderboard import Leaderboard, LeaderboardRow


def render_leaderboard(
    board: Leaderboard,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the top of a leaderboard and, when the caller asked, their own rank.

    `explorer_block_url` is unused; every renderer takes the same arguments.
    """
    title = catalog.text(
        "leaderboard.title",
        locale,
        metric=catalog.text(f"leaderboard.metric.{board.metric}", locale),
        period=catalog.text(f"leaderboard.period.{board.period}", locale),
    )
    if board.rows:
        description = "\n".join(_row(board, row, catalog, locale) for row in board.rows)
    else:
        description = catalog.text("leaderboard.empty", locale)

    fields: list[CardField] = []
    if board.caller_discord_id is not None:
        fields.append(
            CardField(catalog.text("leaderboard.field.you", locale), _you(board, catalog, locale))
        )

    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=title,
        description=description,
        fields=fields,
    )


def _row(
    board: Leaderboard, row: LeaderboardRow, catalog: MessageCatalog, locale: str | None
) -> str:
    if board.metric == "kills":
        return localized(
            catalog,
            "leaderboard.row.kills",
            locale,
            rank=row.rank,
            player=mention_user(row.discord_id),
            kills=row.kills,
        )
    return localized(
        catalog,
        "leaderboard.row.paid",
        locale,
        rank=row.rank,
        player=mention_user(row.discord_id),
        amount=ban_amount(row.paid_raw),
    )


def _you(board: Leaderboard, catalog: MessageCatalog, locale: str | None) -> str:
    caller = board.caller
    if caller is None:
        return catalog.text("leaderboard.you.unranked", locale)
    if board.metric == "kills":
        return catalog.text("leaderboard.you.kills", locale, rank=caller.rank, kills=caller.kills)
    return localized(
        catalog,
        "leaderboard.you.paid",
        locale,
        rank=caller.rank,
        amount=ban_amount(caller.paid_raw),
    )
