"""Plain-text rendering of cards for a console, such as `pay2slay sandbox` output."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.presentation.cards import MARKUP_PIECE, Card

_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::[tTdDfFR])?>")
_MENTION = re.compile(r"<@[!&]?(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]*)\)")
_ZERO_WIDTH_SPACE = "\u200b"


def plain_text(markdown: str) -> str:
    """Turn card markdown into plain text.

    Timestamps become UTC date and time, mentions `@<id>`, links "label (url)" and code
    spans their content, and backslash escapes are removed.
    """
    pieces: list[str] = []
    for match in MARKUP_PIECE.finditer(markdown):
        piece = match.group(0)
        if timestamp := _TIMESTAMP.fullmatch(piece):
            at = datetime.fromtimestamp(int(timestamp.group(1)), UTC)
            pieces.append(at.strftime("%Y-%m-%d %H:%M UTC"))
        elif mention := _MENTION.fullmatch(piece):
            pieces.append(f"@{mention.group(1)}")
        elif channel := _CHANNEL.fullmatch(piece):
            pieces.append(f"#{channel.group(1)}")
        elif markdown_link := _LINK.fullmatch(piece):
            label = plain_text(markdown_link.group(1))
            pieces.append(f"{label} ({markdown_link.group(2)})")
        elif len(piece) >= 2 and piece.startswith("`") and piece.endswith("`"):
            pieces.append(piece[1:-1])
        elif len(piece) == 2 and piece.startswith("\\"):
            pieces.append(piece[1])
        elif piece != _ZERO_WIDTH_SPACE:
            pieces.append(piece)
    return "".join(pieces)


def render_card_text(card: Card) -> str:
    """Render a card as plain text: title, description, each field, then the footer."""
    title = plain_text(card.title)
    lines = [title, "=" * len(title)]
    if card.description:
        lines.append(plain_text(card.description))
    for field in card.fields:
        lines.append("")
        lines.append(f"{plain_text(field.name)}:")
        lines.extend(f"  {line}" for line in plain_text(field.value).split("\n"))
    if card.footer:
        lines.extend(["", f"-- {plain_text(card.footer)}"])
    return "\n".join(lines)
