"""Plain-text rendering of cards for the console."""

from __future__ import annotations

from core.presentation.cards import Card, CardField, escape_user_text
from core.presentation.text import plain_text, render_card_text


def test_plain_text_converts_markup() -> None:
    text = plain_text(
        "<t:1767798000:f> <t:1767798000:R> <@42> <#7> [explorer](https://x.example/h) "
        "`ban_1abc` \\*star\\*"
    )

    assert text == (
        "2026-01-07 15:00 UTC 2026-01-07 15:00 UTC @42 #7 explorer (https://x.example/h) "
        "ban_1abc *star*"
    )


def test_plain_text_undoes_escaping() -> None:
    original = "@everyone [x](y) **bold** \\ back"

    assert plain_text(escape_user_text(original)) == original


def test_render_card_text_layout() -> None:
    card = Card(
        title="Your status",
        description="You are eligible.",
        fields=(CardField("Earnings", "Open: 1 BAN\nPaid: 2 BAN"), CardField("Kills", "3")),
        footer="Pay2Slay Faucet · Example Org",
        tone="success",
    )

    assert render_card_text(card) == (
        "Your status\n"
        "===========\n"
        "You are eligible.\n"
        "\n"
        "Earnings:\n"
        "  Open: 1 BAN\n"
        "  Paid: 2 BAN\n"
        "\n"
        "Kills:\n"
        "  3\n"
        "\n"
        "-- Pay2Slay Faucet · Example Org"
    )


def test_render_card_text_without_footer() -> None:
    text = render_card_text(Card(title="T", description=""))

    assert text == "T\n="
