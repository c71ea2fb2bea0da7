"""Cards: neutral replies that the cogs turn into Discord embeds and the CLI prints as text.

Card text is Discord markdown. Renderers write catalog text and `Markup` built here
(amounts, timestamps, mentions, links, code spans). Any other text, such as an admin's
freeze reason, goes through `escape_user_text`, so it can neither format the card nor
mention anyone. `build_card` cuts every part to Discord's embed limits without breaking a
timestamp, mention, link or escape in two.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from core.banano.units import format_ban
from core.config.product import ProductSettings
from core.i18n import MessageCatalog

Tone = Literal["info", "success", "warning", "error"]

# Discord's embed limits, in characters.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
FOOTER_LIMIT = 2048
TOTAL_LIMIT = 6000

ELLIPSIS = "…"
EMPTY_VALUE = "—"
CHECK_PASSED = "✅"
CHECK_FAILED = "❌"
WARNING_SIGN = "⚠️"

# Pieces of card text that must never be cut in two, then any single character. A
# backslash escape counts as one piece so a cut never leaves a dangling backslash.
MARKUP_PIECE = re.compile(
    r"<t:-?\d+(?::[tTdDfFR])?>"
    r"|<@[!&]?\d+>"
    r"|<#\d+>"
    r"|\[[^\]\n]*\]\([^)\s]*\)"
    r"|`[^`\n]*`"
    r"|\\."
    r"|.",
    re.DOTALL,
)

_MARKDOWN_SPECIALS = frozenset("\\*_~`|[]()<>#")
_LINE_START_SPECIALS = frozenset("->")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH_SPACE = "\u200b"
_BLOCK_HASH = re.compile(r"[0-9A-Fa-f]{64}")


class Markup(str):
    """Card text built from trusted parts; renderers insert it without escaping."""

    __slots__ = ()


@dataclass(frozen=True)
class CardField:
    """One titled block of a card; `inline` fields may sit side by side."""

    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True)
class Card:
    """A reply: what an embed shows, independent of Discord."""

    title: str
    description: str
    fields: tuple[CardField, ...] = ()
    footer: str | None = None
    tone: Tone = "info"
    banner_url: str | None = None


def escape_user_text(text: str, max_length: int | None = None) -> str:
    """Make untrusted text inert in Discord markdown, on one line.

    Control characters become spaces and bidirectional overrides are dropped, markdown
    characters get a backslash, and every `@` is followed by a zero-width space so that
    `@everyone`, `@here` and user or role mentions cannot ping. `max_length` counts the
    original characters; longer text is cut and ends with an ellipsis.
    """
    if max_length is not None and len(text) > max_length:
        text = text[: max(0, max_length - 1)] + ELLIPSIS

    pieces: list[str] = []
    at_line_start = True
    for char in text:
        if char in _BIDI_CONTROLS:
            continue
        if unicodedata.category(char) == "Cc":
            char = " "
        if char in _MARKDOWN_SPECIALS or (at_line_start and char in _LINE_START_SPECIALS):
            pieces.append("\\" + char)
        elif char == "@":
            pieces.append("@" + _ZERO_WIDTH_SPACE)
        else:
            pieces.append(char)
        if not char.isspace():
            at_line_start = False
    return "".join(pieces)


def user_text(text: str, max_length: int | None = None) -> Markup:
    """Return untrusted text escaped once, marked so that `localized` does not escape it again."""
    return Markup(escape_user_text(text, max_length))


def prepare_params(params: Mapping[str, object]) -> dict[str, object]:
    """Escape the text among catalog parameters; `Markup`, numbers and None pass as they are."""
    prepared: dict[str, object] = {}
    for name, value in params.items():
        if value is None or isinstance(value, Markup | int | float):
            prepared[name] = value
        else:
            prepared[name] = escape_user_text(str(value))
    return prepared


def localized(catalog: MessageCatalog, key: str, locale: str | None, **params: object) -> str:
    """Return catalog text with its parameters escaped unless they are `Markup`."""
    return catalog.text(key, locale, **prepare_params(params))


def mention_user(discord_id: int) -> Markup:
    """Return a user mention; in an embed it shows the name and never pings."""
    return Markup(f"<@{int(discord_id)}>")


def code(text: str) -> Markup:
    """Return `text` as an inline code span, shown literally (backticks are removed)."""
    return Markup("`" + text.replace("`", "").replace("\n", " ") + "`")


def ban_amount(raw: int) -> Markup:
    """Return an exact amount for people: "2.1 BAN"."""
    return Markup(f"{format_ban(raw)} BAN")


def discord_timestamp(at: datetime, style: str = "f") -> Markup:
    """Return a Discord timestamp, shown in each reader's own time zone and language.

    Style `f` is date and time, `R` relative ("in 5 minutes").
    """
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return Markup(f"<t:{int(at.timestamp())}:{style}>")


def explorer_url(explorer_block_url: str, block_hash: str | None) -> str | None:
    """Return the explorer address of a block, or None when there is nothing to link.

    Only a real 64-digit block hash is linked, never a dry-run reference, and only when the
    operator configured an explorer URL.
    """
    if not explorer_block_url or block_hash is None or not _BLOCK_HASH.fullmatch(block_hash):
        return None
    url = explorer_block_url.format(block_hash=block_hash)
    if any(char.isspace() or char in "()<>" for char in url):
        return None
    return url


def link(label: str, url: str) -> Markup:
    """Return a markdown link whose label is escaped."""
    return Markup(f"[{escape_user_text(label)}]({url})")


def show_dry_run_banner(product: ProductSettings, dry_run: bool) -> bool:
    """Return whether replies carry the dry-run notice: dry run on and its feature flag set."""
    return dry_run and product.feature_flags.dry_run_banner


def card_footer(product: ProductSettings) -> str:
    """Return the branding line shown under every card."""
    return f"{product.app_name} · {product.org_name}"


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending with an ellipsis when cut.

    Text of several lines loses whole lines from the end. A single line is cut between
    markup pieces, so a timestamp, mention, link or escape is kept whole or dropped.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text

    if "\n" in text:
        kept_lines: list[str] = []
        length = 0
        for line in text.split("\n"):
            added = len(line) + (1 if kept_lines else 0)
            if length + added + len("\n" + ELLIPSIS) > limit:
                break
            kept_lines.append(line)
            length += added
        if kept_lines:
            return "\n".join(kept_lines) + "\n" + ELLIPSIS

    budget = limit - len(ELLIPSIS)
    pieces: list[str] = []
    length = 0
    for match in MARKUP_PIECE.finditer(text):
        piece = match.group(0)
        if length + len(piece) > budget:
            break
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces).rstrip("\n") + ELLIPSIS


def _filled(text: str | None) -> str:
    return text if text and text.strip() else EMPTY_VALUE


def build_card(
    *,
    title: str,
    description: str,
    fields: Iterable[CardField] = (),
    footer: str | None = None,
    tone: Tone = "info",
    banner_url: str | None = None,
) -> Card:
    """Return a card cut to Discord's limits.

    Each part is truncated to its own limit and at most 25 fields are kept. When the card
    is still over the 6,000 characters Discord allows in total, fields are dropped from the
    end and then the description is shortened.
    """
    title = truncate(_filled(title), TITLE_LIMIT)
    fitted = [
        CardField(
            truncate(_filled(field.name), FIELD_NAME_LIMIT),
            truncate(_filled(field.value), FIELD_VALUE_LIMIT),
            field.inline,
        )
        for field in list(fields)[:FIELD_COUNT_LIMIT]
    ]
    footer = None if footer is None else truncate(footer, FOOTER_LIMIT)
    description = truncate(description, DESCRIPTION_LIMIT) if description else ""

    def total() -> int:
        return (
            len(title)
            + len(description)
            + len(footer or "")
            + sum(len(field.name) + len(field.value) for field in fitted)
        )

    while fitted and total() > TOTAL_LIMIT:
        fitted.pop()
    if total() > TOTAL_LIMIT:
        description = truncate(description, max(1, len(description) - (total() - TOTAL_LIMIT)))

    return Card(
        title=title,
        description=description,
        fields=tuple(fitted),
        footer=footer,
        tone=tone,
        banner_url=banner_url or None,
    )


def branded_card(
    *,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    dry_run_banner: bool,
    title: str,
    description: str,
    fields: Iterable[CardField] = (),
    tone: Tone = "info",
) -> Card:
    """Return a card with the product's footer and banner, and the dry-run notice on top."""
    if dry_run_banner:
        notice = f"{WARNING_SIGN} {catalog.text('dry_run.banner', locale)}"
        description = f"{notice}\n\n{description}" if description else notice
    return build_card(
        title=title,
        description=description,
        fields=fields,
        footer=card_footer(product),
        tone=tone,
        banner_url=product.banner_url or None,
    )
