"""Admin cards: player lookup, faucet health and the abuse flag list."""

from __future__ import annotations

from collections.abc import Sequence

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
    escape_user_text,
    localized,
    mention_user,
    user_text,
)
from core.presentation.history import payout_line
from core.services.abuse import AbuseFlagView
from core.services.health import FaucetHealth
from core.services.lookup import EpicAccount, PlayerLookup

# Maximum length of admin-written text (freeze reasons, notes) and of flag detail shown.
NOTE_SHOWN = 200
# Characters of flag lines in one card, leaving room for the dry-run notice and the
# "more not shown" line within the 4,096-character description.
FLAG_LIST_BUDGET = 3600


def render_lookup(
    lookup: PlayerLookup | None,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render a player for admins; None (an unknown player) gets the unknown-player text."""
    title = catalog.text("lookup.title", locale)
    if lookup is None:
        return branded_card(
            catalog=catalog,
            locale=locale,
            product=product,
            dry_run_banner=dry_run_banner,
            title=title,
            description=catalog.text("errors.player_unknown", locale),
            tone="warning",
        )

    status = lookup.status
    description = localized(
        catalog,
        "lookup.summary",
        locale,
        player=mention_user(lookup.discord_id),
        discord_id=lookup.discord_id,
        created=discord_timestamp(lookup.created_at),
    )
    checks = [catalog.text("lookup.eligible" if lookup.eligible else "lookup.ineligible", locale)]
    for item in lookup.checks:
        line = catalog.text(
            "lookup.check_line",
            locale,
            check=catalog.text(f"check.{item.name.value}", locale),
            reason=catalog.text(f"reason.{item.reason.value}", locale),
        )
        checks.append(f"{CHECK_PASSED if item.passed else CHECK_FAILED} {line}")

    stats = (
        catalog.text(f"stats.{lookup.stats_state.value}", locale)
        if lookup.stats_state is not None
        else catalog.text("lookup.none", locale)
    )
    epic_lines = [_epic_line(account, catalog, locale) for account in lookup.epic_accounts]
    payouts = [payout_line(p, catalog, locale, explorer_block_url) for p in lookup.latest_payouts]
    earnings = [
        localized(catalog, "money.open", locale, amount=ban_amount(status.open_raw)),
        localized(catalog, "money.held", locale, amount=ban_amount(status.held_raw)),
        localized(catalog, "money.in_flight", locale, amount=ban_amount(status.in_flight_raw)),
        localized(catalog, "money.paid", locale, amount=ban_amount(status.paid_total_raw)),
        localized(catalog, "money.dry_run", locale, amount=ban_amount(status.dry_run_total_raw)),
    ]
    none = catalog.text("lookup.none", locale)
    fields = [
        CardField(catalog.text("lookup.field.eligibility", locale), "\n".join(checks)),
        CardField(catalog.text("lookup.field.epic", locale), "\n".join(epic_lines) or none),
        CardField(
            catalog.text("lookup.field.wallet", locale),
            code(lookup.wallet_address) if lookup.wallet_address else none,
        ),
        CardField(catalog.text("lookup.field.stats", locale), stats, inline=True),
        CardField(
            catalog.text("lookup.field.frozen", locale),
            _frozen(lookup, catalog, locale),
            inline=True,
        ),
        CardField(catalog.text("lookup.field.flags", locale), str(lookup.open_flags), inline=True),
        CardField(
            catalog.text("status.field.kills", locale), str(status.kills_counted), inline=True
        ),
        CardField(catalog.text("status.field.earnings", locale), "\n".join(earnings)),
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
        description=description,
        fields=fields,
        tone="info" if lookup.eligible else "warning",
    )


def _epic_line(account: EpicAccount, catalog: MessageCatalog, locale: str | None) -> str:
    cursor = (
        str(account.cursor_kills)
        if account.cursor_kills is not None
        else catalog.text("lookup.cursor_unset", locale)
    )
    if account.active:
        return localized(
            catalog,
            "lookup.epic.active",
            locale,
            epic_account_id=code(account.epic_account_id),
            stats=catalog.text(f"stats.{account.stats_state.value}", locale),
            cursor=cursor,
        )
    when = account.unlinked_at or account.linked_at
    return localized(
        catalog,
        "lookup.epic.old",
        locale,
        epic_account_id=code(account.epic_account_id),
        when=discord_timestamp(when),
        cursor=cursor,
    )


def _frozen(lookup: PlayerLookup, catalog: MessageCatalog, locale: str | None) -> str:
    if not lookup.frozen:
        return catalog.text("lookup.not_frozen", locale)
    reason = (lookup.frozen_reason or "").strip() or catalog.text("status.no_reason", locale)
    return localized(
        catalog,
        "lookup.frozen",
        locale,
        by=mention_user(lookup.frozen_by) if lookup.frozen_by is not None else "?",
        when=discord_timestamp(lookup.frozen_at) if lookup.frozen_at is not None else "",
        reason=user_text(reason, NOTE_SHOWN),
    )


def render_health(
    health: FaucetHealth,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
    *,
    unfinished_payouts: int = 0,
) -> Card:
    """Render the faucet's health for admins.

    `unfinished_payouts` counts payouts still pending, signed or submitted a while after they
    were created. The card says everything is fine only when none are and the last run did
    not fail or stop early.
    """
    floor = ban_amount(health.floor_raw)
    if health.operator_balance_raw is None:
        balance = localized(catalog, "health.balance_unknown", locale, floor=floor)
    else:
        balance = localized(
            catalog,
            "health.balance",
            locale,
            balance=ban_amount(health.operator_balance_raw),
            available=ban_amount(max(0, health.available_raw or 0)),
            floor=floor,
        )
        if health.below_floor:
            balance += "\n" + catalog.text("health.below_floor", locale)

    if health.next_settlement_at is None:
        next_run = catalog.text("health.not_scheduled", locale)
    else:
        next_run = discord_timestamp(health.next_settlement_at, "R")

    liability = "\n".join(
        [
            localized(catalog, "money.open", locale, amount=ban_amount(health.open_liability_raw)),
            localized(catalog, "money.held", locale, amount=ban_amount(health.held_liability_raw)),
        ]
    )
    fields = [
        CardField(catalog.text("health.field.balance", locale), balance),
        CardField(
            catalog.text("health.field.node", locale),
            catalog.text("health.node_ok" if health.node_reachable else "health.node_down", locale),
            inline=True,
        ),
        CardField(
            catalog.text("health.field.payouts", locale),
            _payouts_state(health, catalog, locale),
            inline=True,
        ),
        CardField(
            catalog.text("health.field.mode", locale),
            catalog.text("health.dry_run_on" if health.dry_run else "health.dry_run_off", locale),
            inline=True,
        ),
        CardField(
            catalog.text("health.field.last_run", locale), _last_run(health, catalog, locale)
        ),
        CardField(catalog.text("health.field.next_run", locale), next_run, inline=True),
        CardField(catalog.text("health.field.liability", locale), liability, inline=True),
    ]
    if unfinished_payouts > 0:
        fields.append(
            CardField(
                catalog.text("health.field.unfinished", locale),
                localized(catalog, "health.unfinished", locale, count=unfinished_payouts),
            )
        )
    healthy = health.healthy and unfinished_payouts == 0 and not _last_run_stopped(health)
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=catalog.text("health.title", locale),
        description=catalog.text("health.ok" if healthy else "health.attention", locale),
        fields=fields,
        tone="success" if healthy else "warning",
    )


def _last_run_stopped(health: FaucetHealth) -> bool:
    """Return whether the last run failed, or stopped part-way (completed with a reason)."""
    run = health.last_run
    if run is None:
        return False
    return run.outcome == "failed" or (run.outcome == "completed" and bool(run.skip_reason))


def _last_run(health: FaucetHealth, catalog: MessageCatalog, locale: str | None) -> str:
    run = health.last_run
    if run is None:
        return catalog.text("health.no_runs", locale)
    outcome_key = f"health.outcome.{run.outcome}"
    outcome = catalog.text(outcome_key, locale) if catalog.has(outcome_key) else run.outcome
    text = localized(
        catalog,
        "health.last_run",
        locale,
        when=discord_timestamp(run.started_at),
        outcome=outcome,
        payouts=run.payouts_created,
        amount=ban_amount(run.paid_raw),
    )
    if _last_run_stopped(health) and run.outcome == "completed":
        text += "\n" + catalog.text("health.last_run_stopped", locale)
    if run.skip_reason:
        # NOTE: settlement stores this reason as English text, so it is not translated.
        reason = user_text(run.skip_reason, NOTE_SHOWN)
        text += "\n" + localized(catalog, "health.last_run_reason", locale, reason=reason)
    return text


def render_abuse_flags(
    flags: Sequence[AbuseFlagView],
    status_filter: str,
    catalog: MessageCatalog,
    locale: str | None,
    product: ProductSettings,
    explorer_block_url: str,
    dry_run_banner: bool,
) -> Card:
    """Render a list of abuse flags; `status_filter` is open, released, voided or all."""
    status_key = f"abuse.status.{status_filter}"
    status_name = catalog.text(status_key, locale) if catalog.has(status_key) else status_filter
    blocks: list[str] = []
    length = 0
    for index, flag in enumerate(flags):
        block = _flag_block(flag, catalog, locale)
        if length + len(block) + 1 > FLAG_LIST_BUDGET:
            blocks.append(catalog.text("abuse_flags.more", locale, count=len(flags) - index))
            break
        blocks.append(block)
        length += len(block) + 1
    return branded_card(
        catalog=catalog,
        locale=locale,
        product=product,
        dry_run_banner=dry_run_banner,
        title=localized(catalog, "abuse_flags.title", locale, status=status_name),
        description="\n".join(blocks) if blocks else catalog.text("abuse_flags.empty", locale),
        tone="warning" if any(flag.status.value == "open" for flag in flags) else "info",
    )


def _flag_block(flag: AbuseFlagView, catalog: MessageCatalog, locale: str | None) -> str:
    kind_key = f"abuse.kind.{flag.kind}"
    kind = catalog.text(kind_key, locale) if catalog.has(kind_key) else flag.kind
    lines = [
        localized(
            catalog,
            "abuse_flags.item",
            locale,
            flag_id=flag.id,
            kind=kind,
            player=mention_user(flag.discord_id),
            when=discord_timestamp(flag.created_at),
        )
    ]
    if flag.accrual_kills is not None and flag.accrual_amount_raw is not None:
        lines.append(
            localized(
                catalog,
                "abuse_flags.held",
                locale,
                kills=flag.accrual_kills,
                amount=ban_amount(flag.accrual_amount_raw),
            )
        )
    details = ", ".join(f"{key}={value}" for key, value in flag.detail.items() if value is not None)
    if details:
        lines.append(escape_user_text(details, NOTE_SHOWN))
    if flag.resolved_by is not None:
        lines.append(
            localized(
                catalog,
                "abuse_flags.resolved",
                locale,
                status=catalog.text(f"abuse.status.{flag.status.value}", locale),
                by=mention_user(flag.resolved_by),
                note=user_text(flag.resolution_note or "", NOTE_SHOWN),
            )
        )
    return "\n".join(f"> {line}" if index else line for index, line in enumerate(lines))


def _payouts_state(health: FaucetHealth, catalog: MessageCatalog, locale: str | None) -> str:
    if not health.paused:
        return catalog.text("health.running", locale)
    if health.paused_reason is None:
        return catalog.text("health.paused", locale)
    return catalog.text(
        "health.paused_reason", locale, reason=user_text(health.paused_reason, NOTE_SHOWN)
    )
