"""Store when an Epic link last had a successful reading and when it came back after a break.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

- `last_ok_read_at`: the time of the last successful (ok) reading, so the kill rate is
  measured from it even when later readings failed. Filled from `last_read_at` for links
  whose last reading was ok; unknown (NULL) for the others until their next ok reading.
- `resumed_at`: when the link or its player last became eligible again after a break (back
  in the guild, unfrozen, link restored). Readings fetched before it are ignored.
- `rebaseline_pending`: true from such a return until the next ok reading, which moves the
  cursor to that reading without accruing, so kills made while ineligible never pay.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("epic_links") as batch:
        batch.add_column(sa.Column("last_ok_read_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("rebaseline_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE epic_links SET last_ok_read_at = last_read_at "
        "WHERE stats_state = 'ok' AND last_read_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("epic_links") as batch:
        batch.drop_column("rebaseline_pending")
        batch.drop_column("resumed_at")
        batch.drop_column("last_ok_read_at")
