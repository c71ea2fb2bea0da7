"""The hot queries read through indexes on SQLite and PostgreSQL, never whole large tables.

Each test calls a service on a small data set shaped like the benchmark ones, records every
statement the service sends (a `before_cursor_execute` listener), and reads the plan of each
from the database: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (FORMAT JSON)` on PostgreSQL with
sequential scans disabled, so a sequential scan in the plan means no index can serve it.

A plan fails when it reads a whole large table: `SCAN <table>` on SQLite (with or without an
index), a sequential scan or an index scan without an index condition on PostgreSQL. It also
fails when a correlated subquery searches an index on unselective columns only (such as
`active`), and when a query with LIMIT sorts its rows instead of reading them in index order.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from core.config import Settings, load_settings
from core.db import Database
from core.integrations.fortnite import StatsReading, StatsState
from core.observability.metrics import Metrics
from core.services.caps import CapLimits
from core.services.history import HistoryService
from core.services.leaderboard import LeaderboardService
from core.services.liability import load_liability
from core.services.payouts import in_flight_raw, unfinished_payout_ids
from core.services.poller import Poller, PollerSettings
from core.services.settlement import SettlementPolicy, SettlementService
from core.services.status import StatusService
from tests.benchmarks.datasets import DatasetInfo, load_small

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
ANCHOR = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
PLAYERS = 120

# Tables that grow with players or history; reading one whole is a defect on a hot path.
LARGE_TABLES = frozenset(
    {
        "accruals",
        "audit_log",
        "epic_links",
        "payout_accruals",
        "payouts",
        "period_totals",
        "players",
        "verification_records",
        "wallets",
    }
)

# Columns with a handful of values; an index search on them alone reads most of a table.
UNSELECTIVE_COLUMNS = frozenset({"active", "status", "state", "dry_run", "frozen", "guild_member"})

# Sets the statements whose plans are not checked: transaction control, and inserts.
_UNPLANNED_PREFIXES = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "INSERT")


@dataclass(frozen=True)
class Statement:
    """One statement a service sent, with its driver-level parameters."""

    sql: str
    parameters: Any

    @property
    def short(self) -> str:
        """The statement on one line, cut to a readable length."""
        return " ".join(self.sql.split())[:200]


@pytest.fixture(scope="module")
def settings() -> Settings:
    """The shipped default configuration."""
    return load_settings(CONFIG_DIR, environ={})


@pytest.fixture
async def seeded(database: Database) -> tuple[Database, DatasetInfo]:
    """A database with a small data set: players with wallets, links, accruals and payouts."""
    info = await load_small(database, PLAYERS, anchor=ANCHOR)
    if database.dialect_name == "postgresql":
        async with database.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    return database, info


@contextmanager
def captured(db: Database) -> Iterator[list[Statement]]:
    """Record every statement sent on `db`'s engines inside the block."""
    statements: list[Statement] = []

    def record(
        connection: Connection,
        cursor: DBAPICursor,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        if not executemany and not statement.lstrip().upper().startswith(_UNPLANNED_PREFIXES):
            statements.append(Statement(statement, parameters))

    for engine in db.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in db.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


async def plan_lines(db: Database, statement: Statement) -> list[str]:
    """Return the plan of `statement` as readable lines, one per plan node."""
    async with db.engine.connect() as connection:
        if db.dialect_name == "sqlite":
            rows = await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters
            )
            depth_of: dict[int, int] = {0: -1}
            sqlite_lines = []
            for node_id, parent_id, _, detail in rows:
                depth_of[node_id] = depth_of.get(parent_id, -1) + 1
                sqlite_lines.append("  " * depth_of[node_id] + str(detail))
            return sqlite_lines

        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        result = await connection.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + statement.sql, statement.parameters
        )
        document = result.scalar_one()
        plan = json.loads(document) if isinstance(document, str) else document
        lines: list[str] = []
        _flatten(plan[0]["Plan"], lines, 0)
        await connection.rollback()
        return lines


def _flatten(node: dict[str, Any], lines: list[str], depth: int) -> None:
    parts = [node["Node Type"]]
    for key in ("Relation Name", "Index Name", "Index Cond", "Sort Key", "Parent Relationship"):
        if key in node:
            parts.append(f"{key}: {node[key]}")
    lines.append("  " * depth + " | ".join(parts))
    for child in node.get("Plans", []):
        _flatten(child, lines, depth + 1)


def whole_table_reads(dialect: str, lines: Sequence[str], tables: frozenset[str]) -> list[str]:
    """Return the plan lines that read the whole of one of `tables`."""
    found = []
    for line in lines:
        node = line.strip()
        if dialect == "sqlite":
            words = node.split(" ")
            if words[0] == "SCAN" and len(words) > 1 and words[1] in tables:
                found.append(node)
            continue
        fields = dict(part.split(": ", 1) for part in node.split(" | ")[1:])
        if fields.get("Relation Name") not in tables:
            continue
        node_type = node.split(" | ")[0]
        unconditioned_index_scan = node_type.startswith("Index") and "Index Cond" not in fields
        if node_type == "Seq Scan" or unconditioned_index_scan:
            found.append(node)
    return found


def unselective_correlated_searches(dialect: str, lines: Sequence[str]) -> list[str]:
    """Return index searches in a correlated subquery that only match on unselective columns.

    Such a subquery runs once per outer row, and each run walks every row with, say,
    `active = 1`, which makes the query quadratic in the number of players.
    """
    found = []
    subquery_depth: int | None = None
    for line in lines:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        node = line.strip()
        if subquery_depth is not None and depth <= subquery_depth:
            subquery_depth = None
        if dialect == "sqlite" and node.startswith("CORRELATED"):
            subquery_depth = depth
            continue
        if dialect != "sqlite" and "Parent Relationship: SubPlan" in node:
            subquery_depth = depth - 1
        if subquery_depth is None:
            continue
        if dialect == "sqlite":
            match = re.fullmatch(r"SEARCH (\w+) USING .*INDEX \w+ \((.*)\)", node)
            condition = match.group(2) if match and match.group(1) in LARGE_TABLES else None
        else:
            condition = node.split("Index Cond: ", 1)[1] if "Index Cond: " in node else None
        if condition is None:
            continue
        columns = set(re.findall(r"(\w+) ?(?:=|>|<|IS)", condition))
        if columns <= UNSELECTIVE_COLUMNS:
            found.append(node)
    return found


def sorts_for_limit(dialect: str, statement: Statement, lines: Sequence[str]) -> list[str]:
    """Return the plan lines that sort a LIMIT query's rows instead of reading them in order."""
    if " LIMIT " not in f" {' '.join(statement.sql.split())} ":
        return []
    if dialect == "sqlite":
        return [line for line in lines if line.strip() == "USE TEMP B-TREE FOR ORDER BY"]
    # A top-level Sort (not an incremental one) under the Limit reads every matching row.
    return [line for line in lines[:3] if line.strip().startswith("Sort |")]


async def assert_indexed(
    db: Database, statements: Sequence[Statement], tables: frozenset[str] = LARGE_TABLES
) -> None:
    """Assert that no statement reads the whole of one of `tables` or sorts for a LIMIT."""
    assert statements, "the service sent no statements"
    problems = []
    for statement in statements:
        lines = await plan_lines(db, statement)
        bad = (
            whole_table_reads(db.dialect_name, lines, tables)
            + unselective_correlated_searches(db.dialect_name, lines)
            + sorts_for_limit(db.dialect_name, statement, lines)
        )
        if bad:
            problems.append(f"{statement.short}\n  " + "\n  ".join(lines))
    assert not problems, "\n\n".join(problems)


def _settlement_policy(settings: Settings) -> SettlementPolicy:
    payout = settings.payout
    return SettlementPolicy(
        caps=CapLimits(
            daily_payouts=payout.daily_payout_cap, weekly_payouts=payout.weekly_payout_cap
        ),
        zone=ZoneInfo("UTC"),
        order="random",
        batch_size=0,
        dry_run=True,
        min_operator_balance_raw=0,
        lock_name=f"query-plan-test-{random.randrange(10**9)}",
    )


class _GrowingKills:
    """A stats reader whose every reading is 3 kills above the previous one."""

    def __init__(self) -> None:
        self.kills: dict[str, int] = {}

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        kills = self.kills.get(epic_account_id, 10_000) + 3
        self.kills[epic_account_id] = kills
        return StatsReading(epic_account_id, StatsState.OK, kills, ANCHOR)


async def test_status_queries_use_indexes(
    seeded: tuple[Database, DatasetInfo], settings: Settings
) -> None:
    db, info = seeded
    service = StatusService(db, settings.payout, settings.integrations, lambda: ANCHOR)

    with captured(db) as statements:
        status = await service.player_status(info.discord_id(7), None)

    assert status is not None
    await assert_indexed(db, statements)


async def test_history_and_leaderboard_use_indexes(
    seeded: tuple[Database, DatasetInfo], settings: Settings
) -> None:
    db, info = seeded
    history = HistoryService(db)
    leaderboard = LeaderboardService(db, settings.payout, lambda: ANCHOR)

    with captured(db) as statements:
        page = await history.page(info.discord_id(7), 1)
        kills = await leaderboard.top("all", "kills", caller_discord_id=info.discord_id(PLAYERS))
        paid = await leaderboard.top("week", "paid", caller_discord_id=info.discord_id(3))

    assert page.total > 0
    assert kills.rows
    assert paid.rows
    await assert_indexed(db, statements)


async def test_settlement_queries_use_indexes(
    seeded: tuple[Database, DatasetInfo], settings: Settings
) -> None:
    db, _ = seeded
    service = SettlementService(
        db, _settlement_policy(settings), metrics=Metrics(version="test"), clock=lambda: ANCHOR
    )

    with captured(db) as statements:
        report = await service.run("test")
        async with db.read() as session:
            await unfinished_payout_ids(session)
            await in_flight_raw(session)
            await load_liability(session)

    assert report.payout_ids, report
    # A run pays nearly every player, so reading all players and wallets once in a hash join
    # is the right plan. The ledger tables must still be read through their indexes.
    await assert_indexed(db, statements, LARGE_TABLES - {"players", "wallets"})


async def test_poller_queries_use_indexes(
    seeded: tuple[Database, DatasetInfo], settings: Settings
) -> None:
    db, _ = seeded
    poller = Poller(
        db,
        _GrowingKills(),
        PollerSettings.from_config(settings.payout, settings.integrations),
        lambda: ANCHOR,
        Metrics(version="test"),
    )

    with captured(db) as statements:
        report = await poller.poll_batch(5)

    assert report.readings == 5
    await assert_indexed(db, statements)
