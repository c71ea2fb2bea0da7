"""Check raw amounts and kill counts in the database, and store block hashes in upper case.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

- Every raw amount column gets `ck_<table>_<column>_valid`. On SQLite, where raw is text, the
  value must be exactly 39 ASCII digits, so a row written with plain SQL cannot hold '1e+29',
  a sign or a short number that would sort wrongly. On PostgreSQL, NUMERIC(39, 0) already
  rejects fractions and larger numbers, and the check rejects negative amounts.
- The kill counts of accruals, payouts and period totals get `ck_<table>_kills_non_negative`.
- Block hashes already stored (64 hexadecimal digits) are converted to upper case, the
  spelling the application now writes, so that a lookup finds them in either case. Other
  references, such as a dry-run payout's `dryrun-...`, are left as they are.

The conditions are written out here instead of imported from `core.db.types`, so that this
revision keeps creating the same schema if the application's helpers change.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAW_COLUMNS = {
    "accruals": ("raw_per_kill", "amount_raw"),
    "payouts": ("amount_raw",),
    "settlement_runs": ("paid_raw",),
    "received_blocks": ("amount_raw",),
    "period_totals": ("paid_raw",),
}
KILL_TABLES = ("accruals", "payouts", "period_totals")
BLOCK_HASH_COLUMNS = {
    "payouts": ("block_hash",),
    "received_blocks": ("block_hash", "source_block_hash"),
}


def _raw_condition(column: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"length({column}) = 39 AND {column} NOT GLOB '*[^0-9]*'"
    return f"{column} >= 0"


def _is_hex_hash(column: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"length({column}) = 64 AND {column} NOT GLOB '*[^0-9A-Fa-f]*'"
    return f"{column} ~ '^[0-9A-Fa-f]{{64}}$'"


def upgrade() -> None:
    for table, columns in BLOCK_HASH_COLUMNS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = UPPER({column}) "  # noqa: S608
                f"WHERE {column} <> UPPER({column}) AND {_is_hex_hash(column)}"
            )

    for table, columns in RAW_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.create_check_constraint(
                    op.f(f"ck_{table}_{column}_valid"), _raw_condition(column)
                )
            if table in KILL_TABLES:
                batch.create_check_constraint(op.f(f"ck_{table}_kills_non_negative"), "kills >= 0")


def downgrade() -> None:
    # Upper-case block hashes stay as they are: the earlier schema accepts them.
    for table, columns in RAW_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            if table in KILL_TABLES:
                batch.drop_constraint(op.f(f"ck_{table}_kills_non_negative"), type_="check")
            for column in reversed(columns):
                batch.drop_constraint(op.f(f"ck_{table}_{column}_valid"), type_="check")
