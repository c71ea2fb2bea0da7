"""Player cards: payout history, leaderboard, simple replies, wallet replies and payout DMs."""

from __future__ import annotations

from datetime import date

import pytest

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
from core.db.models import PayoutState
from core.i18n import SUPPORTED_LOCALES, MessageCatalog
from core.presentation.history import render_history
from core.presentation.leaderboard import render_leaderboard
from core.presentation.messages import (
    address_error_key,
    render_address_error,
    render_link_wallet,
    render_message,
    render_payout_dm,
)
from core.services.history import PayoutPage
from core.services.leaderboard import Leaderboard, LeaderboardRow, Metric
from core.services.players import LinkWalletOutcome, LinkWalletResult
from tests.unit.presentation.helpers_models import (
    ADDRESS,
    BLOCK_HASH,
    EXPLORER,
    RAW_PER_BAN,
    assert_fits_discord,
    card_text,
    payout,
)

OTHER_ADDRESS = "ban_3" + "4" * 59
LINK_WALLET_TONES = {
    LinkWalletOutcome.LINKED: "success",
    LinkWalletOutcome.REPLACED: "success",
    LinkWalletOutcome.UNCHANGED: "info",
    LinkWalletOutcome.NEEDS_CONFIRMATION: "warning",
}


def test_history_page_in_spanish(catalog: MessageCatalog, product: ProductSettings) -> None:
    page = PayoutPage(1234, 2, 2, 5, (payout(3), payout(4, state=PayoutState.SUBMITTED)))

    card = render_history(page, catalog, "es-ES", product, EXPLORER, False)

    assert card.title == "Historial de pagos"
    lines = card.description.split("\n")
    assert lines[0].startswith("#3 · 2.1 BAN · confirmado · ")
    assert "enviado, esperando confirmación" in lines[1]
    assert lines[1].endswith(f"[explorador](https://explorer.example/hash/{BLOCK_HASH})")
    assert lines[-1] == "Página 2 de 3 · 5 pagos en total"


def test_empty_history(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_history(PayoutPage(1, 1, 10, 0, ()), catalog, "pt-BR", product, EXPLORER, True)

    assert "Você ainda não tem pagamentos." in card.description
    assert card.description.startswith("⚠️ Modo de teste")


def test_full_history_page_fits(catalog: MessageCatalog, product: ProductSettings) -> None:
    payouts = tuple(payout(n, amount_raw=2**128 - 1) for n in range(1, 26))
    page = PayoutPage(1, 1, 25, 1000, payouts)

    for locale in SUPPORTED_LOCALES:
        card = render_history(page, catalog, locale, product, EXPLORER, True)
        assert_fits_discord(card)


def board(metric: Metric, caller: LeaderboardRow | None, caller_id: int | None) -> Leaderboard:
    rows = (
        LeaderboardRow(1, 111, 40, 84 * RAW_PER_BAN),
        LeaderboardRow(1, 222, 40, 21 * 10**28),
        LeaderboardRow(3, 333, 7, 1),
    )
    return Leaderboard("week", metric, date(2026, 1, 5), rows, caller_id, caller)


def test_leaderboard_kills_in_portuguese(catalog: MessageCatalog, product: ProductSettings) -> None:
    caller = LeaderboardRow(12, 999, 3, 0)

    card = render_leaderboard(board("kills", caller, 999), catalog, "pt-BR", product, "", False)

    assert card.title == "Classificação: eliminações, esta semana"
    assert card.description.split("\n") == [
        "1. <@111>: 40 eliminações",
        "1. <@222>: 40 eliminações",
        "3. <@333>: 7 eliminações",
    ]
    assert card.fields[0].name == "Sua posição"
    assert card.fields[0].value == "#12 com 3 eliminações"


def test_leaderboard_paid_with_unranked_caller(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    card = render_leaderboard(board("paid", None, 5), catalog, "en", product, "", False)

    assert card.description.split("\n")[1] == "1. <@222>: 2.1 BAN"
    assert card.description.split("\n")[2] == "3. <@333>: 0.00000000000000000000000000001 BAN"
    assert card.fields[0].value == "Not ranked in this period yet."


def test_leaderboard_without_caller_or_rows(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    empty = Leaderboard("all", "kills", date(1970, 1, 1), (), None, None)

    card = render_leaderboard(empty, catalog, "es", product, "", False)

    assert card.title == "Clasificación: eliminaciones, desde siempre"
    assert card.description == "Aún no hay nadie en esta clasificación."
    assert card.fields == ()


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_simple_error_reply(catalog: MessageCatalog, product: ProductSettings, locale: str) -> None:
    card = render_message("errors.cooldown", catalog, locale, product, seconds=12)

    assert card.tone == "error"
    assert card.title == catalog.text("title.errors", locale)
    assert "12" in card.description
    assert card.footer == "Pay2Slay Faucet · Example Org"


def test_confirmation_prompt(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_message("pause.confirm", catalog, "es", product)

    assert card.tone == "warning"
    assert card.title == "Confirma, por favor"


def test_error_about_confirmation_is_an_error(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    card = render_message("errors.confirm_not_yours", catalog, "en", product)

    assert card.tone == "error"
    assert card.title == "Request not completed"


def test_cancelled_reply_is_not_a_prompt(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_message("confirm.cancelled", catalog, "pt-BR", product)

    assert card.title == "Pay2Slay Faucet"
    assert card.description == "Cancelado. Nada foi alterado."
    assert card.tone == "info"


def test_wallet_replacement_is_a_prompt(catalog: MessageCatalog, product: ProductSettings) -> None:
    result = LinkWalletResult(LinkWalletOutcome.NEEDS_CONFIRMATION, ADDRESS, OTHER_ADDRESS)

    card = render_link_wallet(result, catalog, "en", product, EXPLORER, False)

    assert card.title == "Please confirm"


def test_message_escapes_text_parameters(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_message("pause.done", catalog, "en", product, reason="@here node _down_")

    assert "@here" not in card.description
    assert "\\_down\\_" in card.description
    assert card.title == "Pause payouts"


def test_message_tone_override(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_message("resume.done", catalog, "en", product, tone="success")

    assert card.tone == "success"


@pytest.mark.parametrize("outcome", list(LinkWalletOutcome))
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_link_wallet_outcomes(
    catalog: MessageCatalog, product: ProductSettings, outcome: LinkWalletOutcome, locale: str
) -> None:
    previous = None if outcome is LinkWalletOutcome.LINKED else OTHER_ADDRESS
    result = LinkWalletResult(outcome, ADDRESS, previous)

    card = render_link_wallet(result, catalog, locale, product, EXPLORER, False)

    assert f"`{ADDRESS}`" in card.description
    if outcome in (LinkWalletOutcome.NEEDS_CONFIRMATION, LinkWalletOutcome.REPLACED):
        assert f"`{OTHER_ADDRESS}`" in card.description
    assert card.tone == LINK_WALLET_TONES[outcome]


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (AddressPrefixError(), "link_wallet.invalid.prefix"),
        (AddressLengthError(), "link_wallet.invalid.length"),
        (AddressAlphabetError(), "link_wallet.invalid.alphabet"),
        (AddressFirstCharacterError(), "link_wallet.invalid.first_character"),
        (AddressChecksumError(), "link_wallet.invalid.checksum"),
        (BurnAddressError(), "link_wallet.invalid.burn"),
        (OperatorAddressError(), "link_wallet.invalid.operator"),
        (InvalidAddressError(), "link_wallet.invalid.generic"),
    ],
)
def test_address_errors_map_to_their_text(
    catalog: MessageCatalog, product: ProductSettings, error: InvalidAddressError, key: str
) -> None:
    assert address_error_key(error) == key

    card = render_address_error(error, catalog, "es", product, EXPLORER, False)

    assert card.description == catalog.text(key, "es")
    assert card.tone == "error"


def test_payout_dm_with_link(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_payout_dm(payout(9), catalog, "en", product, EXPLORER, False)

    assert card.title == "Payout sent"
    assert card.description.startswith("You were paid 2.1 BAN for 1 kills (payout #9).")
    assert f"(https://explorer.example/hash/{BLOCK_HASH})" in card.description
    assert "/notifications" in card.description


def test_payout_dm_dry_run_has_no_link(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_payout_dm(
        payout(9, state=PayoutState.DRY_RUN), catalog, "pt-BR", product, EXPLORER, True
    )

    assert card.title == "Pagamento registrado em modo de teste"
    assert "nada foi enviado" in card.description
    assert "](" not in card_text(card)
