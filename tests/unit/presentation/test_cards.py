"""Card building: escaping, truncation that keeps markup whole, and Discord's limits."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config.product import FeatureFlags, ProductSettings
from core.i18n import MessageCatalog
from core.presentation.cards import (
    DESCRIPTION_LIMIT,
    ELLIPSIS,
    FIELD_COUNT_LIMIT,
    FIELD_VALUE_LIMIT,
    MARKUP_PIECE,
    TITLE_LIMIT,
    CardField,
    Markup,
    ban_amount,
    build_card,
    discord_timestamp,
    escape_user_text,
    explorer_url,
    localized,
    mention_user,
    show_dry_run_banner,
    truncate,
)
from tests.unit.presentation.helpers_models import BLOCK_HASH, EXPLORER, NOW, assert_fits_discord

MENTION = re.compile(r"<@[!&]?\d+>|@everyone|@here")


@pytest.mark.parametrize(
    "text",
    ["@everyone", "hi @here", "<@&123456789012345678>", "<@123456789012345678>", "<@!42>"],
)
def test_escape_breaks_mentions(text: str) -> None:
    assert not MENTION.search(escape_user_text(text))


def test_escape_markdown_and_lines() -> None:
    escaped = escape_user_text("**bold** _it_ [x](http://a) `c`\nnew\tline # h")

    assert "**" not in escaped.replace("\\*", "")
    assert "\\[x\\]\\(http://a\\)" in escaped
    assert "\n" not in escaped
    assert "\t" not in escaped


def test_escape_quotes_and_lists_at_start() -> None:
    assert escape_user_text("> quoted").startswith("\\>")
    assert escape_user_text("- item").startswith("\\-")
    assert escape_user_text("a - b") == "a - b"


def test_escape_drops_direction_overrides() -> None:
    assert escape_user_text("abc\u202edef") == "abcdef"


def test_escape_max_length() -> None:
    escaped = escape_user_text("x" * 50, 10)

    assert escaped == "x" * 9 + ELLIPSIS


def test_localized_escapes_only_plain_text() -> None:
    catalog = MessageCatalog({"en": {"k": "{player}: {reason}"}}, strict=True)

    text = localized(catalog, "k", "en", player=mention_user(5), reason="@everyone **now**")

    assert text.startswith("<@5>: ")
    assert "@everyone" not in text
    assert "\\*\\*now\\*\\*" in text


def test_ban_amount_is_exact() -> None:
    assert ban_amount(21 * 10**28) == "2.1 BAN"
    assert ban_amount(1) == "0.00000000000000000000000000001 BAN"
    assert isinstance(ban_amount(0), Markup)


def test_timestamp_needs_time_zone() -> None:
    assert discord_timestamp(NOW) == "<t:1767798000:f>"
    assert discord_timestamp(NOW, "R") == "<t:1767798000:R>"
    with pytest.raises(ValueError, match="timezone"):
        discord_timestamp(datetime(2026, 1, 1))


def test_explorer_url_only_for_block_hashes() -> None:
    assert explorer_url(EXPLORER, BLOCK_HASH) == f"https://explorer.example/hash/{BLOCK_HASH}"
    assert explorer_url(EXPLORER, "dryrun-" + "0" * 32) is None
    assert explorer_url(EXPLORER, None) is None
    assert explorer_url("", BLOCK_HASH) is None


def test_dry_run_banner_needs_flag_and_dry_run(product: ProductSettings) -> None:
    flag_off = product.model_copy(update={"feature_flags": FeatureFlags(dry_run_banner=False)})

    assert show_dry_run_banner(product, True)
    assert not show_dry_run_banner(product, False)
    assert not show_dry_run_banner(flag_off, True)


def test_truncate_leaves_short_text() -> None:
    assert truncate("short", 10) == "short"


def test_truncate_keeps_whole_lines() -> None:
    text = "\n".join(f"line {n}" for n in range(100))

    cut = truncate(text, 40)

    assert len(cut) <= 40
    assert cut.endswith("\n" + ELLIPSIS)
    assert all(line.startswith("line ") for line in cut.split("\n")[:-1])


def test_truncate_never_splits_markup() -> None:
    stamp = "<t:1767798000:R>"
    text = "x" * 10 + stamp + "y" * 10

    assert truncate(text, 20) == "x" * 10 + ELLIPSIS
    assert truncate(text, 30) == "x" * 10 + stamp + "yyy" + ELLIPSIS


def test_truncate_never_leaves_a_dangling_escape() -> None:
    text = "ab\\*" * 20

    cut = truncate(text, 12)

    assert not cut[:-1].endswith("\\")
    assert len(cut) <= 12


MARKUP_PIECES = st.sampled_from(
    ["<t:1767798000:R>", "<@123>", "[label](https://x.example/a)", "`ban_1abc`", "\\*", "\n"]
)
TEXT_PIECES = st.text(alphabet="abc @<[(`\\", min_size=0, max_size=5)


@given(
    st.lists(st.one_of(MARKUP_PIECES, TEXT_PIECES), max_size=60),
    st.integers(min_value=1, max_value=200),
)
def test_truncate_cuts_between_pieces(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)

    cut = truncate(text, limit)

    assert len(cut) <= limit
    if cut != text:
        assert cut.endswith(ELLIPSIS)
        body = cut[: -len(ELLIPSIS)]
        assert text.startswith(body)
        boundaries = {0} | {match.end() for match in MARKUP_PIECE.finditer(text)}
        assert len(body) in boundaries


def test_build_card_enforces_part_limits() -> None:
    card = build_card(
        title="t" * 300,
        description="d" * 5000,
        fields=[CardField(f"f{n}", "v" * 2000) for n in range(30)],
        footer="footer",
    )

    assert len(card.title) == TITLE_LIMIT
    assert len(card.description) <= DESCRIPTION_LIMIT
    assert len(card.fields) <= FIELD_COUNT_LIMIT
    assert all(len(field.value) <= FIELD_VALUE_LIMIT for field in card.fields)
    assert_fits_discord(card)


def test_build_card_fits_total_limit() -> None:
    card = build_card(
        title="title",
        description="d" * 4000,
        fields=[CardField(f"f{n}", "v" * 1000) for n in range(25)],
    )

    assert_fits_discord(card)
    assert card.fields[0].value == "v" * 1000


def test_build_card_fills_empty_parts() -> None:
    card = build_card(title="", description="", fields=[CardField(" ", "")])

    assert card.title
    assert card.fields[0].name.strip()
    assert card.fields[0].value.strip()
    assert card.banner_url is None
