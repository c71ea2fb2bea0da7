"""The `/status` card: checklist with what to do, earnings, caps, next run and latest payouts."""

from __future__ import annotations

from datetime import datetime

from core.config.product import ProductSettings
from core.i18n import MessageCatalog
from core.presentation.cards import (
    CHECK_FAILED,
    CHECK_PASSED,
    Card,
    CardField,
    ban_amount,
    branded_card,
    code,
    discord_timestamp,
    localized,
)
from core.presentation.history import payout_line
from core.services.status import CapCount, CapStatus, PlayerStatus

# Maximum length of the freeze reason shown to the player; up to 500 characters are stored.
FREEZE_REASON_SHOWN = 300


def render_status(
    status: PlayerStatus | None,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render a player's status; None (an unknown player) gets how to start."""
    title = catalog.text("status.title", locale)
    if status is None:
        return branded_card(
            catalog=catalog,
            locale=locale,
            product=product,
            dry_run_banner=dry_run_banner,
            title=title,
            description=catalog.text("status.not_registered", locale),
            tone="warning",
        )

    all_passed = all(item.passed for item in status.checks)
    if not status.eligible:
        summary = [catalog.text("status.ineligible", locale)]
    elif all_passed:
        summary = [catalog.text("status.eligible", locale)]
    else:
        summary = [catalog.text("status.eligible_not_counting", locale)]
    if status.paused:
        summary.append(catalog.text("status.paused", locale))

    payouts = [payout_line(p, catalog, locale, explorer_block_url) for p in status.latest_payouts]
    next_settlement = (
        discord_timestamp(status.next_settlement_at, "R")
        if status.next_settlement_at is not None
        else catalog.text("status.next_settlement_unknown", locale)
    )
    fields = [
        CardField(
            catalog.text("status.field.checklist", locale), _checklist(status, catalog, locale)
        ),
        CardField(
            catalog.text("status.field.kills", locale), str(status.kills_counted), inline=True
        ),
        CardField(
            catalog.text("status.field.next_settlement", locale), next_settlement, inline=True
        ),
        CardField(
            catalog.text("status.field.earnings", locale), _earnings(status, catalog, locale)
        ),
        CardField(catalog.text("status.field.caps", locale), _caps(status.caps, catalog, locale)),
        CardField(
            catalog.text("status.field.latest_payouts", locale),
            "\n".join(payouts) if payouts else catalog.text("status.no_payouts", locale),
        ),
    ]
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=title,
        description="\n".join(summary),
        fields=fields,
        tone="success" if all_passed and not status.paused else "warning",
    )


def _checklist(status: PlayerStatus, catalog: MessageCatalog, locale: str | None) -> str:
    reason_text: str | None = status.frozen_reason
    reason = (
        reason_text.strip()[:FREEZE_REASON_SHOWN]
        if reason_text and reason_text.strip()
        else catalog.text("status.no_reason", locale)
    )
    lines: list[str] = []
    for item in status.checks:
        text = localized(
            catalog,
            f"status.check.{item.name.value}.{item.reason.value}",
            locale,
            address=code(status.wallet_address or ""),
            reason=reason,
        )
        lines.append(f"{CHECK_PASSED if item.passed else CHECK_FAILED} {text}")

    if status.last_verified_at is not None:
        lines.append(
            localized(
                catalog,
                "status.last_checked",
                locale,
                when=discord_timestamp(status.last_verified_at, "R"),
            )
        )
    return "\n".join(lines)


def _earnings(status: PlayerStatus, catalog: MessageCatalog, locale: str | None) -> str:
    lines = [localized(catalog, "money.open", locale, amount=ban_amount(status.open_raw))]
    if status.held_raw:
        lines.append(localized(catalog, "money.held", locale, amount=ban_amount(status.held_raw)))
    if status.in_flight_raw:
        lines.append(
            localized(catalog, "money.in_flight", locale, amount=ban_amount(status.in_flight_raw))
        )
    lines.append(localized(catalog, "money.paid", locale, amount=ban_amount(status.paid_total_raw)))
    if status.dry_run_total_raw:
        lines.append(
            localized(catalog, "money.dry_run", locale, amount=ban_amount(status.dry_run_total_raw))
        )
    return "\n".join(lines)


def _caps(caps: CapStatus, catalog: MessageCatalog, locale: str | None) -> str:
    counts: list[tuple[str, CapCount, datetime]] = [
        ("caps.payouts_today", caps.payouts_today, caps.day_ends_at),
        ("caps.payouts_week", caps.payouts_this_week, caps.week_ends_at),
        ("caps.kills_today", caps.kills_today, caps.day_ends_at),
        ("caps.kills_week", caps.kills_this_week, caps.week_ends_at),
    ]
    lines: list[str] = []
    frees_at: datetime | None = None
    for key, count, window_end in counts:
        if count.limit is None:
            continue
        lines.append(catalog.text(key, locale, used=count.used, limit=count.limit))
        if count.left == 0:
            # Open earnings wait until every reached cap's window has ended.
            frees_at = window_end if frees_at is None else max(frees_at, window_end)

    if frees_at is not None:
        lines.append(
            localized(catalog, "caps.reached", locale, when=discord_timestamp(frees_at, "R"))
        )
    lines.append(
        localized(
            catalog,
            "caps.resets",
            locale,
            day=discord_timestamp(caps.day_ends_at, "R"),
            week=discord_timestamp(caps.week_ends_at, "R"),
        )
    )
    return "\n".join(lines)
