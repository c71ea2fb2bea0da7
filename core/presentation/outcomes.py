"""Cards for the results of admin actions: settle now, payout retry, re-verify, flag resolution."""

from __future__ import annotations

from core.config.product import ProductSettings
from core.db.models import AbuseFlagStatus, AccrualStatus, PayoutState
from core.i18n import MessageCatalog
from core.presentation.cards import (
    Card,
    Markup,
    Tone,
    ban_amount,
    branded_card,
    code,
    explorer_url,
    link,
    localized,
    mention_user,
    user_text,
)
from core.services.abuse import FlagResolution
from core.services.payout_retry import RetryKind, RetryOutcome
from core.services.settlement import RunOutcome, SettlementReport
from core.services.verification import VerificationOutcome, VerificationResult

_RETRY_TONES: dict[RetryKind, Tone] = {
    RetryKind.CONFIRMED: "success",
    RetryKind.RETRIED: "success",
    RetryKind.IN_FLIGHT: "info",
    RetryKind.ALREADY_CLAIMED: "info",
    RetryKind.NOTHING_TO_RETRY: "info",
    RetryKind.DRY_RUN: "info",
    RetryKind.NOT_FOUND: "warning",
    RetryKind.BUSY: "warning",
    RetryKind.REFUSED: "warning",
}

_SKIPPED_RUN_KEYS = {
    RunOutcome.SKIPPED_PAUSED: "settle_now.skipped_paused",
    RunOutcome.SKIPPED_FLOOR: "settle_now.skipped_floor",
    RunOutcome.SKIPPED_LOCKED: "settle_now.skipped_locked",
}


def render_settlement_report(
    report: SettlementReport,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render what a settlement run that an admin started did."""
    tone: Tone
    if report.outcome is RunOutcome.COMPLETED:
        key = "settle_now.completed_dry_run" if report.dry_run else "settle_now.completed"
        lines = [
            localized(
                catalog,
                key,
                locale,
                payouts=len(report.payout_ids),
                amount=ban_amount(report.paid_raw),
            )
        ]
        if report.stop_reason:
            # NOTE: settlement writes stop and skip reasons in English.
            lines.append(
                localized(catalog, "settle_now.stopped", locale, reason=report.stop_reason)
            )
        counts = [
            catalog.text(f"skip.{reason}", locale, count=count)
            for reason, count in sorted(report.skipped.items())
            if count and catalog.has(f"skip.{reason}")
        ]
        if counts:
            lines.append(
                catalog.text("settle_now.skipped_players", locale, counts=", ".join(counts))
            )
        description = "\n".join(lines)
        tone = "success"
    elif report.outcome in _SKIPPED_RUN_KEYS:
        description = catalog.text(_SKIPPED_RUN_KEYS[report.outcome], locale)
        tone = "warning"
    else:
        description = localized(
            catalog, "settle_now.failed", locale, reason=report.skip_reason or ""
        )
        tone = "error"

    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("title.settle_now", locale),
        description=description,
        tone=tone,
    )


def render_retry_outcome(
    outcome: RetryOutcome,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the result of `/payout-retry`, with an explorer link for a block on the ledger."""
    state = (
        catalog.text(f"payout.state.{outcome.state.value}", locale)
        if outcome.state is not None
        else ""
    )
    description = localized(
        catalog,
        f"payout_retry.{outcome.kind.value}",
        locale,
        payout_id=outcome.payout_id,
        new_payout_id=outcome.new_payout_id if outcome.new_payout_id is not None else "",
        other_payout_id=outcome.other_payout_id if outcome.other_payout_id is not None else "",
        state=state,
        # NOTE: the retry service explains a refusal in English.
        reason=outcome.message,
    )
    url = None
    if outcome.state in (PayoutState.CONFIRMED, PayoutState.SUBMITTED):
        url = explorer_url(explorer_block_url, outcome.block_hash)
    if url is not None:
        description += "\n" + link(catalog.text("payout.explorer_link", locale), url)

    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("title.payout_retry", locale),
        description=description,
        tone=_RETRY_TONES.get(outcome.kind, "info"),
    )


def render_verification(
    result: VerificationResult,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the result of `/reverify` for the admin who ran it."""
    player = mention_user(result.discord_id)
    epic_account_id: Markup | str = (
        code(result.epic_account_id) if result.epic_account_id is not None else ""
    )
    lines = [
        localized(
            catalog,
            f"reverify.{result.outcome.value}",
            locale,
            player=player,
            epic_account_id=epic_account_id,
        )
    ]
    if result.outcome is VerificationOutcome.ERROR and result.error_message:
        lines.append(user_text(result.error_message))
    if result.eligible:
        lines.append(localized(catalog, "reverify.eligible", locale, player=player))
    else:
        reasons = ", ".join(
            catalog.text(f"reason.{reason.value}", locale) for reason in result.reasons
        )
        lines.append(
            localized(catalog, "reverify.ineligible", locale, player=player, reasons=reasons)
        )

    tone: Tone = "success" if result.eligible else "warning"
    if result.outcome is VerificationOutcome.ERROR:
        tone = "error"
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("title.reverify", locale),
        description="\n".join(lines),
        tone=tone,
    )


def render_flag_resolution(
    resolution: FlagResolution,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render the result of `/abuse-resolve`.

    A flag whose accrual another flag already resolved, or that never held one, is only
    closed, and the reply states that no amount changed.
    """
    if resolution.status is AbuseFlagStatus.RELEASED and (
        resolution.accrual_status is AccrualStatus.OPEN
    ):
        key = "abuse_resolve.released"
    elif resolution.status is AbuseFlagStatus.VOIDED and (
        resolution.accrual_status is AccrualStatus.VOIDED
    ):
        key = "abuse_resolve.voided"
    else:
        key = "abuse_resolve.closed"
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("title.abuse_resolve", locale),
        description=catalog.text(key, locale, flag_id=resolution.flag_id),
        tone="success",
    )
