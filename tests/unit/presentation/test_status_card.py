"""The /status card in every language: checklist texts, amounts, caps, links and escaping."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.config.product import ProductSettings
from core.db.models import PayoutState, StatsState
from core.i18n import SUPPORTED_LOCALES, MessageCatalog
from core.presentation.status import render_status
from core.presentation.text import render_card_text
from core.services.status import CapCount, CapStatus
from tests.unit.presentation.helpers_models import (
    BLOCK_HASH,
    EXPLORER,
    NOW,
    assert_fits_discord,
    card_text,
    payout,
    player_status,
)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", "You are eligible: new kills earn BAN."),
        ("es-419", "Eres elegible: las nuevas eliminaciones ganan BAN."),
        ("pt-BR", "Você está elegível: novas eliminações rendem BAN."),
    ],
)
def test_eligible_status_in_each_language(
    catalog: MessageCatalog, product: ProductSettings, locale: str, expected: str
) -> None:
    card = render_status(player_status(), catalog, locale, product, EXPLORER, False)

    assert expected in card.description
    assert card.tone == "success"
    assert card.banner_url == "https://media.example/banner.png"
    assert card.footer == "Pay2Slay Faucet · Example Org"
    assert_fits_discord(card)


def test_spanish_card_has_no_english_labels(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    card = render_status(player_status(), catalog, "es", product, EXPLORER, False)

    names = [field.name for field in card.fields]
    assert names == [
        "Elegibilidad",
        "Eliminaciones contadas",
        "Próxima liquidación",
        "Ganancias",
        "Límites",
        "Últimos pagos",
    ]
    assert card.title == "Tu estado"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"guild_member": False}, "status.check.guild_member.not_member"),
        ({"guild_member": None}, "status.check.guild_member.membership_unknown"),
        ({"has_epic_link": False}, "status.check.epic_link.no_epic_link"),
        (
            {"has_epic_link": False, "epic_account_conflict": True},
            "status.check.epic_link.epic_account_conflict",
        ),
        ({"stats_state": StatsState.PRIVATE}, "status.check.stats_readable.private"),
        ({"stats_state": StatsState.NOT_FOUND}, "status.check.stats_readable.not_found"),
        ({"stats_state": StatsState.UNAVAILABLE}, "status.check.stats_readable.unavailable"),
        ({"stats_state": StatsState.UNREAD}, "status.check.stats_readable.unread"),
        ({"wallet_address": None}, "status.check.wallet_linked.no_wallet"),
    ],
)
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_failed_check_says_what_to_do(
    catalog: MessageCatalog,
    product: ProductSettings,
    options: dict[str, Any],
    key: str,
    locale: str,
) -> None:
    card = render_status(player_status(**options), catalog, locale, product, EXPLORER, False)

    checklist = card.fields[0].value
    assert f"❌ {catalog.text(key, locale)}" in checklist
    assert card.tone == "warning"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_frozen_reason_is_escaped(
    catalog: MessageCatalog, product: ProductSettings, locale: str
) -> None:
    status = player_status(frozen=True, frozen_reason="@everyone <@&99> **alt** account")

    card = render_status(status, catalog, locale, product, EXPLORER, False)

    checklist = card.fields[0].value
    assert "@everyone" not in checklist
    assert "<@&99>" not in checklist
    assert "**alt**" not in checklist
    assert "alt" in checklist
    assert not re.search(r"<@[!&]?\d+>|@everyone|@here", card_text(card))


def test_frozen_without_reason(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(player_status(frozen=True), catalog, "en", product, EXPLORER, False)

    assert "Frozen by an admin: no reason given." in card.fields[0].value


def test_amounts_and_wallet_shown(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(player_status(), catalog, "en", product, EXPLORER, False)

    earnings = card.fields[3].value
    assert earnings.split("\n") == [
        "Open: 5 BAN",
        "Held for review: 2 BAN",
        "Being sent: 1 BAN",
        "Paid in total: 2.1 BAN",
    ]
    assert "Wallet registered: `ban_1" in card.fields[0].value
    assert card.fields[1].value == "17"


def test_latest_payouts_link_only_live_blocks(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    payouts = (
        payout(1),
        payout(2, state=PayoutState.DRY_RUN),
        payout(3, state=PayoutState.PENDING, block_hash=None),
        payout(4, state=PayoutState.FAILED),
    )
    card = render_status(player_status(payouts=payouts), catalog, "en", product, EXPLORER, False)

    lines = card.fields[5].value.split("\n")
    assert lines[0].endswith(f"[explorer](https://explorer.example/hash/{BLOCK_HASH})")
    assert lines[0].startswith("#1 · 2.1 BAN · confirmed · <t:")
    assert "dry run, not sent" in lines[1]
    assert "explorer" not in lines[1]
    assert "explorer" not in lines[2]
    assert "explorer" not in lines[3]


def test_no_links_without_explorer(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(player_status(payouts=(payout(1),)), catalog, "en", product, "", False)

    assert "](" not in card.fields[5].value


def test_no_payouts_yet(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(player_status(), catalog, "pt-BR", product, EXPLORER, False)

    assert card.fields[5].value == "Ainda não há pagamentos."


def test_caps_reached_says_when(catalog: MessageCatalog, product: ProductSettings) -> None:
    caps = CapStatus(
        payouts_today=CapCount(1, 1),
        payouts_this_week=CapCount(3, 3),
        kills_today=CapCount(4, 10),
        kills_this_week=CapCount(4, None),
        day_ends_at=NOW.replace(hour=0).replace(day=8),
        week_ends_at=NOW.replace(hour=0).replace(day=12),
    )

    card = render_status(player_status(caps=caps), catalog, "en", product, EXPLORER, False)

    lines = card.fields[4].value.split("\n")
    assert lines[:3] == [
        "Payouts today: 1 of 1",
        "Payouts this week: 3 of 3",
        "Kills paid today: 4 of 10",
    ]
    week_end = int(caps.week_ends_at.timestamp())
    assert lines[3] == f"A cap is reached: open earnings are paid after <t:{week_end}:R>."
    assert lines[4].startswith("The day resets <t:")


def test_paused_and_dry_run_banner(catalog: MessageCatalog, product: ProductSettings) -> None:
    status = player_status(paused=True, dry_run=True)

    card = render_status(status, catalog, "es", product, EXPLORER, True)

    assert card.description.startswith("⚠️ Modo de prueba: los pagos se registran")
    assert "Un admin pausó los pagos." in card.description
    assert card.tone == "warning"


def test_unknown_player_gets_next_step(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(None, catalog, "pt-BR", product, EXPLORER, False)

    assert "/link-wallet" in card.description
    assert card.description.startswith("Você ainda não está registrado.")
    assert card.fields == ()


def test_status_prints_as_text(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_status(
        player_status(payouts=(payout(1),)), catalog, "en", product, EXPLORER, True
    )

    text = render_card_text(card)

    assert text.startswith("Your status\n===========\n⚠️ Dry run:")
    assert f"explorer (https://explorer.example/hash/{BLOCK_HASH})" in text
    assert "2026-01-07 14:00 UTC" in text
    assert "<t:" not in text
    assert "`" not in text
