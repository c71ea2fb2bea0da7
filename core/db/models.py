"""ORM models for players, their links, the ledger of accruals and payouts, and faucet state.

The database itself enforces the uniqueness the money rules depend on. Each player has one
wallet and each wallet one player, each Epic account one player, and each player one active
Epic link. An accrual has one live payout, because the claim is the single column
`accruals.payout_id`. Payout idempotency keys and block hashes are unique.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnClause,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import (
    BlockHash,
    RawAmount,
    UtcDateTime,
    non_negative_check,
    raw_amount_check,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(enum_class: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint so SQLite and PostgreSQL agree and new
    # members only need a migration of the constraint.
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class StatsState(enum.StrEnum):
    UNREAD = "unread"
    OK = "ok"
    PRIVATE = "private"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"


class AccrualStatus(enum.StrEnum):
    OPEN = "open"
    HELD = "held"
    VOIDED = "voided"
    SPLIT = "split"


class PayoutState(enum.StrEnum):
    PENDING = "pending"
    SIGNED = "signed"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    DRY_RUN = "dry_run"


FINAL_PAYOUT_STATES = frozenset({PayoutState.CONFIRMED, PayoutState.FAILED, PayoutState.DRY_RUN})


class AbuseFlagStatus(enum.StrEnum):
    OPEN = "open"
    RELEASED = "released"
    VOIDED = "voided"


class Player(Base):
    __tablename__ = "players"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    discord_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # None until the first membership check.
    guild_member: Mapped[bool | None] = mapped_column(Boolean, default=None)
    last_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen_reason: Mapped[str | None] = mapped_column(Text, default=None)
    frozen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    frozen_by: Mapped[int | None] = mapped_column(BigInteger, default=None)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    payout_dms: Mapped[bool] = mapped_column(Boolean, default=True)


class Wallet(Base):
    __tablename__ = "wallets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="RESTRICT"), unique=True
    )
    address: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EpicLink(Base):
    """A player's Epic account as Yunite reported it, with the kill cursor for that account.

    A relink deactivates the old row (its cursor is frozen) and adds a new one with a fresh
    baseline. `epic_account_id` is unique across all rows, so an Epic account belongs to one
    player at a time. Only an admin can move it to another player, and only while it is
    inactive (`reassign_epic_account`).
    """

    __tablename__ = "epic_links"
    __table_args__ = (
        Index(
            "uq_epic_links_active_player",
            "player_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index("ix_epic_links_poll_order", "active", "last_read_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="RESTRICT"))
    epic_account_id: Mapped[str] = mapped_column(String(32), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    unlinked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    date_verified: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # Set together by the first successful reading and never by a failed one.
    baseline_kills: Mapped[int | None] = mapped_column(BigInteger, default=None)
    baseline_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    cursor_kills: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_reading_kills: Mapped[int | None] = mapped_column(BigInteger, default=None)
    stats_state: Mapped[StatsState] = mapped_column(
        _enum(StatsState, "stats_state"), default=StatsState.UNREAD
    )
    stats_state_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # Consecutive readings below the cursor; a reset is accepted only past a threshold.
    lower_reading_count: Mapped[int] = mapped_column(Integer, default=0)
    # Time of the last successful reading. The kill rate is measured from it and from
    # `last_reading_kills`.
    last_ok_read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # When the link or its player last became eligible again after a break (back in the
    # guild, unfrozen, link restored). Readings fetched before it are ignored.
    resumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # True from such a return until the next successful reading. That reading moves the cursor
    # without accruing, so kills made while ineligible never pay.
    rebaseline_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# Filter for active Epic links, written as the bare column so that SQLite matches the
# predicate of the partial index `uq_epic_links_active_player` (WHERE active) and finds a
# player's active link with one index lookup. A typed Boolean renders as `active = 1` (and
# `is_(True)` as `active IS 1`), and with either SQLite walks every active link instead.
ACTIVE_EPIC_LINK: ColumnClause[Any] = literal_column("epic_links.active")


class VerificationRecord(Base):
    __tablename__ = "verification_records"
    __table_args__ = (Index("ix_verification_records_player", "player_id", "checked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="RESTRICT"))
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Where the check came from: command, button, oauth, scheduled or admin.
    source: Mapped[str] = mapped_column(String(16))
    guild_member: Mapped[bool | None] = mapped_column(Boolean)
    # linked, not_linked, not_in_guild or error.
    link_status: Mapped[str] = mapped_column(String(16))
    epic_account_id: Mapped[str | None] = mapped_column(String(32))
    eligible: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")


class Accrual(Base):
    """Kills turned into an amount owed to one player.

    Amount and kills never change. `status` moves only through admin review (held to open or
    voided) or a cap split (open to split, with two children pointing at it). `payout_id` is
    the one live payout that claims it, cleared only when that payout can never be confirmed.
    """

    __tablename__ = "accruals"
    __table_args__ = (
        Index("ix_accruals_open_by_player", "player_id", "status", "payout_id"),
        Index("ix_accruals_payout", "payout_id"),
        Index("ix_accruals_status_created", "status", "payout_id", "created_at"),
        non_negative_check("kills"),
        raw_amount_check("raw_per_kill"),
        raw_amount_check("amount_raw"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="RESTRICT"))
    epic_account_id: Mapped[str] = mapped_column(String(32))
    kills: Mapped[int] = mapped_column(BigInteger)
    raw_per_kill: Mapped[int] = mapped_column(RawAmount)
    amount_raw: Mapped[int] = mapped_column(RawAmount)
    status: Mapped[AccrualStatus] = mapped_column(
        _enum(AccrualStatus, "accrual_status"), default=AccrualStatus.OPEN
    )
    payout_id: Mapped[int | None] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), default=None
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("accruals.id", ondelete="RESTRICT"), default=None
    )
    # The kill counts this accrual covers: (cursor_from, cursor_to].
    cursor_from: Mapped[int] = mapped_column(BigInteger)
    cursor_to: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        Index("ix_payouts_player_created", "player_id", "created_at"),
        Index("ix_payouts_state", "state"),
        # Settlement reads this week's payouts of every player for the caps.
        Index("ix_payouts_created", "created_at"),
        non_negative_check("kills"),
        raw_amount_check("amount_raw"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="RESTRICT"))
    destination: Mapped[str] = mapped_column(String(64))
    amount_raw: Mapped[int] = mapped_column(RawAmount)
    kills: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[PayoutState] = mapped_column(_enum(PayoutState, "payout_state"))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    # Sent as the node-wallet `send` id, so a repeated call returns the first block.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    block_hash: Mapped[str | None] = mapped_column(BlockHash, unique=True, default=None)
    block_json: Mapped[str | None] = mapped_column(Text, default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    settlement_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_runs.id", ondelete="RESTRICT"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class PayoutAccrual(Base):
    """Every accrual a payout ever claimed, kept after a failed payout releases its claim."""

    __tablename__ = "payout_accruals"
    __table_args__ = (Index("ix_payout_accruals_accrual", "accrual_id"),)

    payout_id: Mapped[int] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), primary_key=True
    )
    accrual_id: Mapped[int] = mapped_column(
        ForeignKey("accruals.id", ondelete="RESTRICT"), primary_key=True
    )


class SettlementRun(Base):
    __tablename__ = "settlement_runs"
    __table_args__ = (
        Index("ix_settlement_runs_started", "started_at"),
        raw_amount_check("paid_raw"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # completed, skipped or failed; `skip_reason` says why a run paid nothing.
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    skip_reason: Mapped[str | None] = mapped_column(Text, default=None)
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")
    dry_run: Mapped[bool] = mapped_column(Boolean)
    payouts_created: Mapped[int] = mapped_column(Integer, default=0)
    paid_raw: Mapped[int] = mapped_column(RawAmount, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created", "created_at"),
        Index("ix_audit_log_player", "player_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The admin's or player's Discord ID; None for the faucet itself.
    actor_discord_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    action: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[int | None] = mapped_column(
        ForeignKey("players.id", ondelete="RESTRICT"), default=None
    )
    payout_id: Mapped[int | None] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), default=None
    )
    # JSON object with the action's details; never a secret.
    detail: Mapped[str] = mapped_column(Text, default="{}")


class AbuseFlag(Base):
    __tablename__ = "abuse_flags"
    __table_args__ = (Index("ix_abuse_flags_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="RESTRICT"))
    accrual_id: Mapped[int | None] = mapped_column(
        ForeignKey("accruals.id", ondelete="RESTRICT"), default=None
    )
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[AbuseFlagStatus] = mapped_column(
        _enum(AbuseFlagStatus, "abuse_flag_status"), default=AbuseFlagStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    resolved_by: Mapped[int | None] = mapped_column(BigInteger, default=None)
    resolution_note: Mapped[str | None] = mapped_column(Text, default=None)


class OAuthState(Base):
    """A pending Discord OAuth login: single-use, expiring, bound to one browser."""

    __tablename__ = "oauth_states"
    __table_args__ = (Index("ix_oauth_states_expires", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the state and of the browser binding; the raw values are never stored.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The Discord user the callback resolved, so a repeated callback shows the same result.
    discord_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)


# Keys of `faucet_flags` rows: the pause switch ("true" or "false") and the reason of the pause.
PAYOUTS_PAUSED = "payouts_paused"
PAYOUTS_PAUSED_REASON = "payouts_paused_reason"


class FaucetFlag(Base):
    """Faucet-wide switches such as `payouts_paused`, changed by admins at run time."""

    __tablename__ = "faucet_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Lease(Base):
    """A named lock with an expiry, so one settlement runs at a time across processes."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReceivedBlock(Base):
    """A block received into the operator account (donation or top-up), recorded once."""

    __tablename__ = "received_blocks"
    __table_args__ = (raw_amount_check("amount_raw"),)

    block_hash: Mapped[str] = mapped_column(BlockHash, primary_key=True)
    source_block_hash: Mapped[str] = mapped_column(BlockHash, unique=True)
    amount_raw: Mapped[int] = mapped_column(RawAmount)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PeriodTotal(Base):
    """Kills and BAN paid per player and period, kept current for the leaderboard.

    `period` is day, week or all; `period_start` is the first day of the period in the
    configured reset time zone (1970-01-01 for all).
    """

    __tablename__ = "period_totals"
    __table_args__ = (
        Index("ix_period_totals_kills", "period", "period_start", "kills"),
        Index("ix_period_totals_paid", "period", "period_start", "paid_raw"),
        non_negative_check("kills"),
        raw_amount_check("paid_raw"),
    )

    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="RESTRICT"), primary_key=True
    )
    kills: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_raw: Mapped[int] = mapped_column(RawAmount, default=0)


class RegionCount(Base):
    """Logins per day and coarse country code; no IP address is ever stored."""

    __tablename__ = "region_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    country: Mapped[str] = mapped_column(String(8), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
