"""Model builders and card checks for the renderer tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.db.models import PayoutState, StatsState
from core.presentation.cards import (
    DESCRIPTION_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    TOTAL_LIMIT,
    Card,
)
from core.services.history import PayoutSummary
from core.services.status import (
    CapCount,
    CapStatus,
    PlayerStatus,
    eligibility_checks,
    is_eligible,
)

NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)
RAW_PER_BAN = 10**29
BLOCK_HASH = "A" * 64
EXPLORER = "https://explorer.example/hash/{block_hash}"
ADDRESS = "ban_1" + "3" * 59


def payout(
    payout_id: int = 1,
    *,
    state: PayoutState = PayoutState.CONFIRMED,
    amount_raw: int = 21 * 10**28,
    block_hash: str | None = BLOCK_HASH,
) -> PayoutSummary:
    """Return a payout summary; a dry-run state gets a dry-run reference."""
    dry_run = state is PayoutState.DRY_RUN
    return PayoutSummary(
        id=payout_id,
        amount_raw=amount_raw,
        kills=1,
        state=state,
        block_hash=f"dryrun-{payout_id:032x}" if dry_run else block_hash,
        dry_run=dry_run,
        created_at=NOW - timedelta(hours=payout_id),
    )


def player_status(
    *,
    guild_member: bool | None = True,
    has_epic_link: bool = True,
    epic_account_conflict: bool = False,
    stats_state: StatsState | None = StatsState.OK,
    wallet_address: str | None = ADDRESS,
    frozen_reason: str | None = None,
    frozen: bool = False,
    payouts: tuple[PayoutSummary, ...] = (),
    caps: CapStatus | None = None,
    paused: bool = False,
    dry_run: bool = False,
) -> PlayerStatus:
    """Return an eligible player's status unless a keyword changes it."""
    checks = eligibility_checks(
        guild_member=guild_member,
        has_epic_link=has_epic_link,
        epic_account_conflict=epic_account_conflict,
        stats_state=stats_state if has_epic_link else None,
        has_wallet=wallet_address is not None,
        frozen=frozen,
    )
    return PlayerStatus(
        discord_id=1234,
        player_id=1,
        checks=checks,
        eligible=is_eligible(checks),
        stats_state=stats_state if has_epic_link else None,
        wallet_address=wallet_address,
        frozen_reason=frozen_reason,
        kills_counted=17,
        open_raw=5 * RAW_PER_BAN,
        held_raw=2 * RAW_PER_BAN,
        in_flight_raw=RAW_PER_BAN,
        paid_total_raw=21 * 10**28,
        dry_run_total_raw=0,
        caps=caps
        or CapStatus(
            payouts_today=CapCount(0, 1),
            payouts_this_week=CapCount(2, 3),
            kills_today=CapCount(0, None),
            kills_this_week=CapCount(0, None),
            day_ends_at=NOW.replace(hour=0) + timedelta(days=1),
            week_ends_at=NOW.replace(hour=0) + timedelta(days=5),
        ),
        next_settlement_at=NOW + timedelta(minutes=20),
        latest_payouts=payouts,
        dry_run=dry_run,
        paused=paused,
        last_verified_at=NOW - timedelta(hours=2),
        checked_at=NOW,
    )


def card_text(card: Card) -> str:
    """Return every piece of text of a card joined, for substring checks."""
    parts = [card.title, card.description, card.footer or ""]
    for field in card.fields:
        parts.extend([field.name, field.value])
    return "\n".join(parts)


def assert_fits_discord(card: Card) -> None:
    """Fail when any part of the card is over Discord's embed limits."""
    assert 0 < len(card.title) <= TITLE_LIMIT
    assert len(card.description) <= DESCRIPTION_LIMIT
    assert len(card.footer or "") <= FOOTER_LIMIT
    assert len(card.fields) <= FIELD_COUNT_LIMIT
    for field in card.fields:
        assert 0 < len(field.name) <= FIELD_NAME_LIMIT
        assert 0 < len(field.value) <= FIELD_VALUE_LIMIT
    total = len(card.title) + len(card.description) + len(card.footer or "")
    total += sum(len(field.name) + len(field.value) for field in card.fields)
    assert total <= TOTAL_LIMIT
