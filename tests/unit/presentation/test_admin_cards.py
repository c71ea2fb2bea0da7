"""Admin cards: player lookup, faucet health, abuse flags and the results of admin actions."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from core.config.product import ProductSettings
from core.db.models import AbuseFlagStatus, AccrualStatus, PayoutState, StatsState
from core.i18n import SUPPORTED_LOCALES, MessageCatalog
from core.presentation.admin import render_abuse_flags, render_health, render_lookup
from core.presentation.outcomes import (
    render_flag_resolution,
    render_retry_outcome,
    render_settlement_report,
    render_verification,
)
from core.services.abuse import AbuseFlagView, FlagResolution
from core.services.health import FaucetHealth, SettlementRunSummary
from core.services.lookup import EpicAccount, PlayerLookup
from core.services.payout_retry import RetryKind, RetryOutcome
from core.services.settlement import RunOutcome, SettlementReport
from core.services.verification import (
    IneligibleReason,
    VerificationOutcome,
    VerificationResult,
)
from tests.unit.presentation.helpers_models import (
    BLOCK_HASH,
    EXPLORER,
    NOW,
    RAW_PER_BAN,
    assert_fits_discord,
    card_text,
    payout,
    player_status,
)

EPIC_ACTIVE = "a" * 32
EPIC_OLD = "b" * 32


def lookup(*, frozen: bool = False, frozen_reason: str | None = None) -> PlayerLookup:
    return PlayerLookup(
        discord_id=1234,
        player_id=1,
        created_at=NOW - timedelta(days=30),
        guild_member=True,
        status=player_status(
            frozen=frozen, stats_state=StatsState.PRIVATE, payouts=(payout(1), payout(2))
        ),
        epic_accounts=(
            EpicAccount(EPIC_ACTIVE, True, NOW, None, StatsState.PRIVATE, 10, 15, NOW),
            EpicAccount(
                EPIC_OLD,
                False,
                NOW - timedelta(days=9),
                NOW - timedelta(days=2),
                StatsState.OK,
                None,
                None,
                None,
            ),
        ),
        frozen=frozen,
        frozen_reason=frozen_reason,
        frozen_at=NOW if frozen else None,
        frozen_by=77 if frozen else None,
        open_flags=3,
    )


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_lookup_shows_accounts_and_state(
    catalog: MessageCatalog, product: ProductSettings, locale: str
) -> None:
    card = render_lookup(lookup(), catalog, locale, product, EXPLORER, False)

    text = card_text(card)
    assert card.title == catalog.text("lookup.title", locale)
    assert "<@1234>" in card.description
    assert f"`{EPIC_ACTIVE}`" in text
    assert f"`{EPIC_OLD}`" in text
    assert catalog.text("lookup.cursor_unset", locale) in text
    assert catalog.text("stats.private", locale) in text
    assert "3" in [field.value for field in card.fields]
    assert BLOCK_HASH in text
    assert_fits_discord(card)


def test_lookup_in_spanish_labels(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_lookup(lookup(), catalog, "es", product, EXPLORER, False)

    eligibility = card.fields[0].value.split("\n")
    assert eligibility[0] == "Elegible"
    assert eligibility[3] == "❌ Estadísticas legibles: estadísticas privadas"
    assert card.fields[1].name == "Cuentas de Epic"


def test_lookup_frozen_reason_escaped(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_lookup(
        lookup(frozen=True, frozen_reason="@everyone see [ticket](http://x)"),
        catalog,
        "en",
        product,
        EXPLORER,
        False,
    )

    frozen = card.fields[4].value
    assert frozen.startswith("Yes, by <@77> <t:")
    assert "@everyone" not in frozen
    assert "[ticket](" not in frozen
    assert card.tone == "warning"


def test_lookup_of_unknown_player(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_lookup(None, catalog, "pt-BR", product, EXPLORER, False)

    assert card.description == catalog.text("errors.player_unknown", "pt-BR")


def health(**changes: object) -> FaucetHealth:
    values: dict[str, object] = {
        "checked_at": NOW,
        "operator_balance_raw": 120 * RAW_PER_BAN,
        "floor_raw": 50 * RAW_PER_BAN,
        "in_flight_raw": 20 * RAW_PER_BAN,
        "node_reachable": True,
        "last_run": SettlementRunSummary(
            7, NOW - timedelta(minutes=5), NOW, "completed", None, "schedule", False, 3, RAW_PER_BAN
        ),
        "next_settlement_at": NOW + timedelta(minutes=15),
        "open_liability_raw": 9 * RAW_PER_BAN,
        "held_liability_raw": 0,
        "dry_run": False,
        "paused": False,
    }
    values.update(changes)
    return FaucetHealth(**values)  # type: ignore[arg-type]


def test_healthy_faucet(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_health(health(), catalog, "en", product, EXPLORER, False)

    assert card.tone == "success"
    assert card.description == "Everything looks fine."
    balance = card.fields[0].value
    assert balance == (
        "120 BAN, of which 100 BAN is available after payouts in flight. Floor: 50 BAN."
    )
    assert card.fields[1].value == "Reachable"
    assert "completed. Payouts: 3, 1 BAN" in card.fields[4].value
    assert card.fields[6].value.split("\n") == ["Open: 9 BAN", "Held for review: 0 BAN"]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_payouts_not_final_need_attention(
    catalog: MessageCatalog, product: ProductSettings, locale: str
) -> None:
    card = render_health(health(), catalog, locale, product, EXPLORER, False, unfinished_payouts=2)

    text = card_text(card)
    assert card.tone == "warning"
    assert card.description == catalog.text("health.attention", locale)
    assert catalog.text("health.unfinished", locale, count=2) in text


def test_run_stopped_on_unknown_send_needs_attention(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    stopped = SettlementRunSummary(
        9,
        NOW,
        NOW,
        "completed",
        "The outcome of payout 4 is unknown; the next run reconciles it before sending more.",
        "schedule",
        False,
        1,
        RAW_PER_BAN,
    )

    card = render_health(health(last_run=stopped), catalog, "en", product, EXPLORER, False)

    assert card.tone == "warning"
    assert card.description == "Something needs attention; see the items below."
    assert "The run stopped before paying everyone." in card_text(card)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_unhealthy_faucet(catalog: MessageCatalog, product: ProductSettings, locale: str) -> None:
    failed_run = SettlementRunSummary(
        8, NOW, NOW, "failed", "The balance could not be read @here", "admin", False, 0, 0
    )
    card = render_health(
        health(
            operator_balance_raw=None,
            node_reachable=False,
            paused=True,
            last_run=failed_run,
            next_settlement_at=None,
        ),
        catalog,
        locale,
        product,
        EXPLORER,
        False,
    )

    text = card_text(card)
    assert card.tone == "warning"
    assert card.description == catalog.text("health.attention", locale)
    assert catalog.text("health.balance_unknown", locale, floor="50 BAN") in text
    assert catalog.text("health.node_down", locale) in text
    assert catalog.text("health.paused", locale) in text
    assert catalog.text("health.outcome.failed", locale) in text
    assert catalog.text("health.not_scheduled", locale) in text
    assert "@here" not in text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_paused_with_reason(catalog: MessageCatalog, product: ProductSettings, locale: str) -> None:
    card = render_health(
        health(paused=True, paused_reason="restored from a backup @everyone"),
        catalog,
        locale,
        product,
        EXPLORER,
        False,
    )

    text = card_text(card)
    assert "restored from a backup" in text
    assert catalog.text("health.paused", locale) not in text
    assert "@everyone" not in text


def test_balance_below_floor(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_health(
        health(operator_balance_raw=60 * RAW_PER_BAN), catalog, "en", product, EXPLORER, False
    )

    assert card.fields[0].value.endswith(
        "Below the floor: settlement skips until the operator account is topped up."
    )
    assert card.tone == "warning"


def flag(flag_id: int, **changes: object) -> AbuseFlagView:
    values: dict[str, object] = {
        "id": flag_id,
        "player_id": 1,
        "discord_id": 555,
        "kind": "kill_rate",
        "status": AbuseFlagStatus.OPEN,
        "detail": {"kills": 90, "window_seconds": 60, "note": "@everyone"},
        "created_at": NOW,
        "accrual_id": 3,
        "accrual_kills": 90,
        "accrual_amount_raw": 189 * RAW_PER_BAN,
        "accrual_status": AccrualStatus.HELD,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_note": None,
    }
    values.update(changes)
    return AbuseFlagView(**values)  # type: ignore[arg-type]


def test_abuse_flags_list(catalog: MessageCatalog, product: ProductSettings) -> None:
    resolved = flag(
        2,
        kind="wallet_in_use",
        status=AbuseFlagStatus.VOIDED,
        resolved_by=77,
        resolution_note="alt **account**",
        accrual_id=None,
        accrual_kills=None,
        accrual_amount_raw=None,
    )

    card = render_abuse_flags([flag(1), resolved], "all", catalog, "en", product, EXPLORER, False)

    lines = card.description.split("\n")
    assert card.title == "Abuse flags: all"
    assert lines[0].startswith("#1 · Kill rate too high · <@555> · <t:")
    assert lines[1] == "> Held accrual: 90 kills, 189 BAN"
    assert "@everyone" not in card.description
    assert "#2 · Wallet of another player" in card.description
    assert "> voided by <@77>: alt \\*\\*account\\*\\*" in card.description
    assert card.tone == "warning"


def test_long_flag_list_says_how_many_more(
    catalog: MessageCatalog, product: ProductSettings
) -> None:
    flags = [flag(n, detail={"address": "ban_1" + "x" * 59}) for n in range(1, 40)]

    card = render_abuse_flags(flags, "open", catalog, "pt-BR", product, EXPLORER, True)

    assert_fits_discord(card)
    assert card.description.split("\n")[-1].startswith("Não mostrados: mais ")
    assert card.description.split("\n")[-1][len("Não mostrados: mais ") : -1].isdigit()


def test_no_flags(catalog: MessageCatalog, product: ProductSettings) -> None:
    card = render_abuse_flags([], "open", catalog, "es", product, EXPLORER, False)

    assert card.title == "Alertas de abuso: abiertas"
    assert card.description == "No hay alertas que mostrar."
    assert card.tone == "info"


def report(outcome: RunOutcome, **changes: object) -> SettlementReport:
    result = SettlementReport(outcome=outcome, trigger="admin", dry_run=False)
    for name, value in changes.items():
        setattr(result, name, value)
    return result


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("outcome", list(RunOutcome))
def test_every_settlement_outcome_renders(
    catalog: MessageCatalog, product: ProductSettings, outcome: RunOutcome, locale: str
) -> None:
    card = render_settlement_report(
        report(outcome, skip_reason="Reason."), catalog, locale, product, EXPLORER, False
    )

    assert card.title == catalog.text("title.settle_now", locale)
    assert card.description


def test_completed_settlement_details(catalog: MessageCatalog, product: ProductSettings) -> None:
    done = report(
        RunOutcome.COMPLETED,
        payout_ids=[4, 5],
        paid_raw=42 * 10**28,
        stop_reason="The balance floor was reached.",
        skipped=Counter({"daily_cap": 3, "ineligible": 1}),
    )

    card = render_settlement_report(done, catalog, "en", product, EXPLORER, False)

    assert card.description.split("\n") == [
        "Settlement finished. Payouts: 2, 4.2 BAN in total.",
        "It stopped early: The balance floor was reached.",
        "Players not paid in this run: 3 at the daily payout cap, 1 not eligible",
    ]
    assert card.tone == "success"


def test_dry_run_settlement(catalog: MessageCatalog, product: ProductSettings) -> None:
    done = report(RunOutcome.COMPLETED, dry_run=True, payout_ids=[1], paid_raw=RAW_PER_BAN)

    card = render_settlement_report(done, catalog, "es", product, EXPLORER, True)

    assert "Pagos registrados: 1, 1 BAN en total." in card.description


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", list(RetryKind))
def test_every_retry_outcome_renders(
    catalog: MessageCatalog, product: ProductSettings, kind: RetryKind, locale: str
) -> None:
    outcome = RetryOutcome(
        kind,
        12,
        "The player is frozen.",
        state=PayoutState.CONFIRMED if kind is RetryKind.CONFIRMED else PayoutState.FAILED,
        block_hash=BLOCK_HASH,
        new_payout_id=13,
        other_payout_id=14,
    )

    card = render_retry_outcome(outcome, catalog, locale, product, EXPLORER, False)

    assert "12" in card.description
    linked = f"(https://explorer.example/hash/{BLOCK_HASH})" in card.description
    assert linked is (kind is RetryKind.CONFIRMED)


def test_retry_refusal_keeps_reason(catalog: MessageCatalog, product: ProductSettings) -> None:
    outcome = RetryOutcome(RetryKind.REFUSED, 12, "The player is frozen.")

    card = render_retry_outcome(outcome, catalog, "en", product, EXPLORER, False)

    assert card.description == "Payout #12 was not retried: The player is frozen."
    assert card.tone == "warning"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("outcome", list(VerificationOutcome))
def test_every_verification_outcome_renders(
    catalog: MessageCatalog,
    product: ProductSettings,
    outcome: VerificationOutcome,
    locale: str,
) -> None:
    result = VerificationResult(
        discord_id=321,
        player_id=1,
        outcome=outcome,
        link_status="linked",
        guild_member=True,
        epic_account_id=EPIC_ACTIVE,
        eligible=False,
        reasons=(IneligibleReason.NO_WALLET, IneligibleReason.FROZEN),
        error_message="Yunite timed out." if outcome is VerificationOutcome.ERROR else None,
    )

    card = render_verification(result, catalog, locale, product, EXPLORER, False)

    lines = card.description.split("\n")
    assert lines[-1] == catalog.text(
        "reverify.ineligible",
        locale,
        player="<@321>",
        reasons=", ".join(
            [catalog.text("reason.no_wallet", locale), catalog.text("reason.frozen", locale)]
        ),
    )
    assert card.tone == ("error" if outcome is VerificationOutcome.ERROR else "warning")


def test_eligible_after_verification(catalog: MessageCatalog, product: ProductSettings) -> None:
    result = VerificationResult(
        321, 1, VerificationOutcome.RELINKED, "linked", True, EPIC_ACTIVE, True, ()
    )

    card = render_verification(result, catalog, "en", product, EXPLORER, False)

    assert card.description.split("\n") == [
        f"<@321> switched to Epic account `{EPIC_ACTIVE}`, which starts from a fresh baseline.",
        "<@321> is eligible.",
    ]
    assert card.tone == "success"


@pytest.mark.parametrize(
    ("resolution", "key"),
    [
        (FlagResolution(5, AbuseFlagStatus.RELEASED, 9, AccrualStatus.OPEN), "released"),
        (FlagResolution(5, AbuseFlagStatus.VOIDED, 9, AccrualStatus.VOIDED), "voided"),
        (FlagResolution(5, AbuseFlagStatus.VOIDED, None, None), "closed"),
        (FlagResolution(5, AbuseFlagStatus.VOIDED, 9, AccrualStatus.OPEN), "closed"),
    ],
)
def test_flag_resolution(
    catalog: MessageCatalog, product: ProductSettings, resolution: FlagResolution, key: str
) -> None:
    card = render_flag_resolution(resolution, catalog, "pt-BR", product, EXPLORER, False)

    assert card.description == catalog.text(f"abuse_resolve.{key}", "pt-BR", flag_id=5)
