"""Index payouts by creation time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Settlement reads every player's cap usage from the payouts created since the start of the
week. Without this index that query reads every payout ever made, on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_payouts_created", "payouts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_payouts_created", table_name="payouts")
