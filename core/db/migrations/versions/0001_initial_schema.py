"""Create the initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-04

Types are spelled out rather than imported from core.db.types, so this revision keeps
creating the same schema if those types change: raw amounts are zero-padded VARCHAR(39) on
SQLite and NUMERIC(39, 0) on PostgreSQL, and timestamps are timezone-aware. Enumerations are
VARCHAR(16) columns with a named CHECK constraint listing the allowed values.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATS_STATES = ("unread", "ok", "private", "not_found", "unavailable")
ACCRUAL_STATUSES = ("open", "held", "voided", "split")
PAYOUT_STATES = ("pending", "signed", "submitted", "confirmed", "failed", "dry_run")
ABUSE_FLAG_STATUSES = ("open", "released", "voided")


def _raw() -> sa.String:
    return sa.String(39).with_variant(sa.Numeric(39, 0), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _one_of(column: str, values: Sequence[str], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(name))


def upgrade() -> None:
    op.create_table(
        "faucet_flags",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_faucet_flags")),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )

    op.create_table(
        "oauth_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        sa.Column("discord_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
    )
    op.create_index("ix_oauth_states_expires", "oauth_states", ["expires_at"])

    op.create_table(
        "players",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("discord_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("guild_member", sa.Boolean(), nullable=True),
        sa.Column("last_verified_at", _utc(), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("frozen_reason", sa.Text(), nullable=True),
        sa.Column("frozen_at", _utc(), nullable=True),
        sa.Column("frozen_by", sa.BigInteger(), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("payout_dms", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_players")),
        sa.UniqueConstraint("discord_id", name=op.f("uq_players_discord_id")),
    )

    op.create_table(
        "received_blocks",
        sa.Column("block_hash", sa.String(64), nullable=False),
        sa.Column("source_block_hash", sa.String(64), nullable=False),
        sa.Column("amount_raw", _raw(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("block_hash", name=op.f("pk_received_blocks")),
        sa.UniqueConstraint("source_block_hash", name=op.f("uq_received_blocks_source_block_hash")),
    )

    op.create_table(
        "region_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("country", sa.String(8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "country", name=op.f("pk_region_counts")),
    )

    op.create_table(
        "settlement_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("payouts_created", sa.Integer(), nullable=False),
        sa.Column("paid_raw", _raw(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_runs")),
    )
    op.create_index("ix_settlement_runs_started", "settlement_runs", ["started_at"])

    op.create_table(
        "epic_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("epic_account_id", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("linked_at", _utc(), nullable=False),
        sa.Column("unlinked_at", _utc(), nullable=True),
        sa.Column("date_verified", _utc(), nullable=True),
        sa.Column("baseline_kills", sa.BigInteger(), nullable=True),
        sa.Column("baseline_at", _utc(), nullable=True),
        sa.Column("cursor_kills", sa.BigInteger(), nullable=True),
        sa.Column("last_read_at", _utc(), nullable=True),
        sa.Column("last_reading_kills", sa.BigInteger(), nullable=True),
        sa.Column("stats_state", sa.String(16), nullable=False),
        sa.Column("stats_state_at", _utc(), nullable=True),
        sa.Column("lower_reading_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epic_links")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_epic_links_player_id_players"),
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("epic_account_id", name=op.f("uq_epic_links_epic_account_id")),
        _one_of("stats_state", STATS_STATES, "ck_epic_links_stats_state"),
    )
    op.create_index("ix_epic_links_poll_order", "epic_links", ["active", "last_read_at", "id"])
    # At most one active Epic link per player; deactivated links may pile up.
    op.create_index(
        "uq_epic_links_active_player",
        "epic_links",
        ["player_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("amount_raw", _raw(), nullable=False),
        sa.Column("kills", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("block_hash", sa.String(64), nullable=True),
        sa.Column("block_json", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("settlement_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("signed_at", _utc(), nullable=True),
        sa.Column("submitted_at", _utc(), nullable=True),
        sa.Column("confirmed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_payouts_player_id_players"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["settlement_run_id"],
            ["settlement_runs.id"],
            name=op.f("fk_payouts_settlement_run_id_settlement_runs"),
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payouts_idempotency_key")),
        sa.UniqueConstraint("block_hash", name=op.f("uq_payouts_block_hash")),
        _one_of("state", PAYOUT_STATES, "ck_payouts_payout_state"),
    )
    op.create_index("ix_payouts_player_created", "payouts", ["player_id", "created_at"])
    op.create_index("ix_payouts_state", "payouts", ["state"])

    op.create_table(
        "period_totals",
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("kills", sa.BigInteger(), nullable=False),
        sa.Column("paid_raw", _raw(), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "period_start", "player_id", name=op.f("pk_period_totals")
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_period_totals_player_id_players"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_period_totals_kills", "period_totals", ["period", "period_start", "kills"])
    op.create_index(
        "ix_period_totals_paid", "period_totals", ["period", "period_start", "paid_raw"]
    )

    op.create_table(
        "verification_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", _utc(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("guild_member", sa.Boolean(), nullable=True),
        sa.Column("link_status", sa.String(16), nullable=False),
        sa.Column("epic_account_id", sa.String(32), nullable=True),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_records")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_verification_records_player_id_players"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index(
        "ix_verification_records_player", "verification_records", ["player_id", "checked_at"]
    )

    op.create_table(
        "wallets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_wallets_player_id_players"),
            ondelete="RESTRICT",
        ),
        # One wallet per player and one player per wallet.
        sa.UniqueConstraint("player_id", name=op.f("uq_wallets_player_id")),
        sa.UniqueConstraint("address", name=op.f("uq_wallets_address")),
    )

    op.create_table(
        "accruals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("epic_account_id", sa.String(32), nullable=False),
        sa.Column("kills", sa.BigInteger(), nullable=False),
        sa.Column("raw_per_kill", _raw(), nullable=False),
        sa.Column("amount_raw", _raw(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        # The one live payout that claims this accrual.
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("cursor_from", sa.BigInteger(), nullable=False),
        sa.Column("cursor_to", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accruals")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_accruals_player_id_players"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["payouts.id"],
            name=op.f("fk_accruals_payout_id_payouts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["accruals.id"],
            name=op.f("fk_accruals_parent_id_accruals"),
            ondelete="RESTRICT",
        ),
        _one_of("status", ACCRUAL_STATUSES, "ck_accruals_accrual_status"),
    )
    op.create_index("ix_accruals_open_by_player", "accruals", ["player_id", "status", "payout_id"])
    op.create_index("ix_accruals_payout", "accruals", ["payout_id"])
    op.create_index("ix_accruals_status_created", "accruals", ["status", "payout_id", "created_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("actor_discord_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=True),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_audit_log_player_id_players"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["payouts.id"],
            name=op.f("fk_audit_log_payout_id_payouts"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_audit_log_created", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_player", "audit_log", ["player_id", "created_at"])

    op.create_table(
        "abuse_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("accrual_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_abuse_flags")),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name=op.f("fk_abuse_flags_player_id_players"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["accrual_id"],
            ["accruals.id"],
            name=op.f("fk_abuse_flags_accrual_id_accruals"),
            ondelete="RESTRICT",
        ),
        _one_of("status", ABUSE_FLAG_STATUSES, "ck_abuse_flags_abuse_flag_status"),
    )
    op.create_index("ix_abuse_flags_status", "abuse_flags", ["status", "created_at"])

    op.create_table(
        "payout_accruals",
        sa.Column("payout_id", sa.Integer(), nullable=False),
        sa.Column("accrual_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("payout_id", "accrual_id", name=op.f("pk_payout_accruals")),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["payouts.id"],
            name=op.f("fk_payout_accruals_payout_id_payouts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["accrual_id"],
            ["accruals.id"],
            name=op.f("fk_payout_accruals_accrual_id_accruals"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_payout_accruals_accrual", "payout_accruals", ["accrual_id"])


def downgrade() -> None:
    # Dependents first; dropping a table drops its indexes and constraints with it.
    for table in (
        "payout_accruals",
        "abuse_flags",
        "audit_log",
        "accruals",
        "wallets",
        "verification_records",
        "period_totals",
        "payouts",
        "epic_links",
        "settlement_runs",
        "region_counts",
        "received_blocks",
        "players",
        "oauth_states",
        "leases",
        "faucet_flags",
    ):
        op.drop_table(table)
