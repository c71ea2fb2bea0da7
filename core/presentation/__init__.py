"""Rendering of service results into neutral cards, for Discord embeds and console text.

Every renderer takes the model, then `(catalog, locale, product, explorer_block_url,
dry_run_banner)`, and returns a `Card`. Text from users is escaped; amounts, times, mentions
and links are built as `Markup`.
"""

from core.presentation.admin import render_abuse_flags, render_health, render_lookup
from core.presentation.cards import (
    Card,
    CardField,
    Markup,
    Tone,
    ban_amount,
    build_card,
    code,
    discord_timestamp,
    escape_user_text,
    explorer_url,
    mention_user,
    show_dry_run_banner,
    truncate,
    user_text,
)
from core.presentation.history import payout_line, render_history
from core.presentation.leaderboard import render_leaderboard
from core.presentation.messages import (
    address_error_key,
    render_address_error,
    render_link_wallet,
    render_message,
    render_payout_dm,
)
from core.presentation.outcomes import (
    render_flag_resolution,
    render_retry_outcome,
    render_settlement_report,
    render_verification,
)
from core.presentation.status import render_status
from core.presentation.text import plain_text, render_card_text

__all__ = [
    "Card",
    "CardField",
    "Markup",
    "Tone",
    "address_error_key",
    "ban_amount",
    "build_card",
    "code",
    "discord_timestamp",
    "escape_user_text",
    "explorer_url",
    "mention_user",
    "payout_line",
    "plain_text",
    "render_abuse_flags",
    "render_address_error",
    "render_card_text",
    "render_flag_resolution",
    "render_health",
    "render_history",
    "render_leaderboard",
    "render_link_wallet",
    "render_lookup",
    "render_message",
    "render_payout_dm",
    "render_retry_outcome",
    "render_settlement_report",
    "render_status",
    "render_verification",
    "show_dry_run_banner",
    "truncate",
    "user_text",
]
