"""Rows of the benchmark data sets: players with realistic histories, a batch at a time.

Each player gets a Discord account, usually a wallet and an active Epic link, and a few also
get an older, inactive link. Each has one verification record and about 20 accruals. One to
five confirmed payouts claim the older accruals, with four audit entries each, and period
totals feed the leaderboard. One to four accruals newer than the last payout stay open, so a
settlement run finds almost every player payable. Payouts are at least a day old and at
least three days apart, so the default caps (one a day, three a week) never stop a run.
Rows carry explicit ids, so batches can be loaded in any way without reading ids back.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table

from core.banano.address import encode_address
from core.banano.units import RAW_PER_BAN
from core.db.models import (
    Accrual,
    AccrualStatus,
    AuditEntry,
    EpicLink,
    Payout,
    PayoutAccrual,
    PayoutState,
    PeriodTotal,
    Player,
    SettlementRun,
    StatsState,
    VerificationRecord,
    Wallet,
)
from core.services.totals import ALL_TIME_START, period_starts

# Bump when the generated rows change, so cached files are rebuilt.
GENERATOR_VERSION = 2

FIRST_DISCORD_ID = 410_000_000_000_000_000
RAW_PER_KILL = 21 * RAW_PER_BAN // 10
HISTORY_DAYS = 90
SETTLEMENT_INTERVAL = timedelta(minutes=20)
# The poller budget the `last_read_at` spread assumes: every link read once per N / 60 minutes.
READINGS_PER_MINUTE = 60
LOCALES = ("en-US", "en-US", "en-US", "de", "fr", "pt-BR", "es-ES", None)


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


# Tables in an order that satisfies the foreign keys, with the columns each row fills.
TABLE_COLUMNS: dict[Table, tuple[str, ...]] = {
    SettlementRun.__table__: _columns(
        "id started_at finished_at outcome skip_reason trigger dry_run payouts_created paid_raw"
    ),
    Player.__table__: _columns(
        "id discord_id created_at guild_member last_verified_at frozen frozen_reason "
        "frozen_at frozen_by locale payout_dms"
    ),
    Wallet.__table__: _columns("id player_id address created_at updated_at"),
    EpicLink.__table__: _columns(
        "id player_id epic_account_id active linked_at unlinked_at date_verified "
        "baseline_kills baseline_at cursor_kills last_read_at last_reading_kills "
        "stats_state stats_state_at lower_reading_count last_ok_read_at"
    ),
    VerificationRecord.__table__: _columns(
        "id player_id checked_at source guild_member link_status epic_account_id eligible detail"
    ),
    Payout.__table__: _columns(
        "id player_id destination amount_raw kills state dry_run idempotency_key "
        "block_hash block_json failure_reason attempts settlement_run_id created_at "
        "updated_at signed_at submitted_at confirmed_at"
    ),
    Accrual.__table__: _columns(
        "id player_id epic_account_id kills raw_per_kill amount_raw status payout_id "
        "parent_id cursor_from cursor_to created_at"
    ),
    PayoutAccrual.__table__: _columns("payout_id accrual_id"),
    PeriodTotal.__table__: _columns("period period_start player_id kills paid_raw"),
    AuditEntry.__table__: _columns(
        "id created_at actor_discord_id action player_id payout_id detail"
    ),
}


def wallet_address(index: int) -> str:
    """Return the deterministic wallet address of player `index`."""
    digest = hashlib.blake2b(f"benchmark-player-{index}".encode(), digest_size=32).digest()
    return encode_address(digest)


def epic_account_id(index: int, *, old: bool = False) -> str:
    """Return the Epic account ID of player `index`: the active one, or the older one."""
    return f"{(1 << 124) + index if old else index:032x}"


def _block_json(rng: random.Random, destination: str, balance_raw: int, block_hash: str) -> str:
    # The shape and size of a stored send block; its signature and work are not valid.
    return json.dumps(
        {
            "type": "state",
            "account": "ban_1operator1111111111111111111111111111111111111111111111111ab",
            "previous": f"{rng.getrandbits(256):064X}",
            "representative": "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr",
            "balance": str(balance_raw),
            "link": destination,
            "link_as_account": destination,
            "signature": f"{rng.getrandbits(512):0128X}",
            "work": f"{rng.getrandbits(64):016x}",
            "hash": block_hash,
        },
        separators=(",", ":"),
    )


@dataclass
class _Ids:
    wallet: int = 0
    link: int = 0
    record: int = 0
    payout: int = 0
    accrual: int = 0
    audit: int = 0


class RowGenerator:
    """Builds the rows of a batch of players; ids continue across batches."""

    def __init__(self, players: int, anchor: datetime, seed: int) -> None:
        self.players = players
        self.anchor = anchor
        self.seed = seed
        self.ids = _Ids()
        self.history_start = anchor - timedelta(days=HISTORY_DAYS)
        self.run_count = int((anchor - self.history_start) / SETTLEMENT_INTERVAL)
        self.starts = period_starts(anchor, UTC)
        self.poll_cycle = timedelta(minutes=players / READINGS_PER_MINUTE)

    def settlement_runs(self) -> list[tuple[Any, ...]]:
        rows = []
        for run_id in range(1, self.run_count + 1):
            started = self.history_start + (run_id - 1) * SETTLEMENT_INTERVAL
            rows.append(
                (
                    run_id,
                    started,
                    started + timedelta(seconds=30),
                    "completed",
                    None,
                    "schedule",
                    False,
                    0,
                    0,
                )
            )
        return rows

    def _run_for(self, at: datetime) -> tuple[int, datetime]:
        run_id = min(self.run_count, int((at - self.history_start) / SETTLEMENT_INTERVAL) + 1)
        return run_id, self.history_start + (run_id - 1) * SETTLEMENT_INTERVAL

    def batch(self, first: int, last: int) -> dict[Table, list[tuple[Any, ...]]]:
        """Return every row of players `first`..`last` (inclusive, 1-based), by table."""
        rng = random.Random(self.seed * 1_000_003 + first)
        rows: dict[Table, list[tuple[Any, ...]]] = {table: [] for table in TABLE_COLUMNS}
        for index in range(first, last + 1):
            self._player(index, rng, rows)
        return rows

    def _player(
        self, index: int, rng: random.Random, rows: dict[Table, list[tuple[Any, ...]]]
    ) -> None:
        anchor = self.anchor
        ids = self.ids
        created_at = self.history_start + timedelta(minutes=rng.randrange(0, 24 * 60))
        draw = rng.random()
        guild_member: bool | None = None
        if draw < 0.98:
            guild_member = True
        elif draw < 0.99:
            guild_member = False
        frozen = rng.random() < 0.003
        verified_at = anchor - timedelta(seconds=rng.randrange(0, 86_400))
        rows[Player.__table__].append(
            (
                index,
                FIRST_DISCORD_ID + index,
                created_at,
                guild_member,
                verified_at,
                frozen,
                "Benchmark: frozen for review." if frozen else None,
                verified_at if frozen else None,
                FIRST_DISCORD_ID if frozen else None,
                rng.choice(LOCALES),
                True,
            )
        )

        has_wallet = rng.random() < 0.97
        address = wallet_address(index)
        if has_wallet:
            ids.wallet += 1
            rows[Wallet.__table__].append((ids.wallet, index, address, created_at, created_at))

        active_account_id = epic_account_id(index)
        if rng.random() < 0.03:
            ids.link += 1
            rows[EpicLink.__table__].append(
                (
                    ids.link,
                    index,
                    epic_account_id(index, old=True),
                    False,
                    created_at,
                    created_at + timedelta(days=5),
                    created_at,
                    10,
                    created_at,
                    25,
                    created_at + timedelta(days=5),
                    25,
                    StatsState.OK,
                    created_at + timedelta(days=5),
                    0,
                    created_at + timedelta(days=5),
                )
            )

        # Claimed accruals before the last payout, open ones after it.
        payout_count = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5)) if has_wallet else 0
        spacing_days = max(3.0, (HISTORY_DAYS - 10) / max(payout_count, 1))
        payout_times = [
            anchor - timedelta(days=1 + spacing_days * age, seconds=rng.randrange(0, 72_000))
            for age in range(payout_count - 1, -1, -1)
        ]
        claimed_count = rng.randint(12, 24) if payout_count else 0
        open_count = rng.randint(1, 4)
        accrual_start = created_at + timedelta(days=1)
        last_payout = payout_times[-1] if payout_times else accrual_start
        claimed_times = sorted(
            accrual_start + (last_payout - accrual_start) * rng.random() * 0.999
            for _ in range(claimed_count)
        )
        open_times = sorted(
            last_payout + (anchor - last_payout) * (0.01 + 0.98 * rng.random())
            for _ in range(open_count)
        )

        baseline = rng.randint(100, 5_000)
        cursor = baseline
        accruals: list[tuple[int, int, datetime]] = []
        for at in claimed_times + open_times:
            kills = rng.randint(1, 8)
            ids.accrual += 1
            accruals.append((ids.accrual, kills, at))

        # Assign claimed accruals to the first payout at or after them.
        claims: dict[int, list[tuple[int, int, datetime]]] = {}
        slot = 0
        for accrual in accruals[:claimed_count]:
            while slot < payout_count - 1 and accrual[2] > payout_times[slot]:
                slot += 1
            claims.setdefault(slot, []).append(accrual)

        payout_of: dict[int, int] = {}
        paid_total = 0
        paid_week = 0
        paid_day = 0
        operator_balance = 10**9 * RAW_PER_BAN
        for slot_index, claimed in sorted(claims.items()):
            payout_at = payout_times[slot_index]
            run_id, run_started = self._run_for(payout_at)
            payout_at = max(run_started + timedelta(seconds=rng.randrange(1, 25)), claimed[-1][2])
            ids.payout += 1
            payout_id = ids.payout
            kills = sum(item[1] for item in claimed)
            amount_raw = kills * RAW_PER_KILL
            operator_balance -= amount_raw
            block_hash = f"{rng.getrandbits(256):064X}"
            confirmed_at = payout_at + timedelta(seconds=60)
            rows[Payout.__table__].append(
                (
                    payout_id,
                    index,
                    address,
                    amount_raw,
                    kills,
                    PayoutState.CONFIRMED,
                    False,
                    uuid.UUID(int=rng.getrandbits(128)).hex,
                    block_hash,
                    _block_json(rng, address, operator_balance, block_hash),
                    None,
                    1,
                    run_id,
                    payout_at,
                    confirmed_at,
                    payout_at + timedelta(milliseconds=200),
                    payout_at + timedelta(milliseconds=300),
                    confirmed_at,
                )
            )
            for accrual_id, _, _ in claimed:
                payout_of[accrual_id] = payout_id
                rows[PayoutAccrual.__table__].append((payout_id, accrual_id))
            detail = json.dumps({"amount_raw": amount_raw, "block_hash": block_hash})
            for action, offset in (
                ("payout_created", 0),
                ("payout_signed", 200),
                ("payout_submitted", 300),
                ("payout_confirmed", 60_000),
            ):
                ids.audit += 1
                rows[AuditEntry.__table__].append(
                    (
                        ids.audit,
                        payout_at + timedelta(milliseconds=offset),
                        None,
                        action,
                        index,
                        payout_id,
                        detail,
                    )
                )
            paid_total += amount_raw
            if confirmed_at.date() >= self.starts["week"]:
                paid_week += amount_raw
            if confirmed_at.date() >= self.starts["day"]:
                paid_day += amount_raw

        kills_total = kills_week = kills_day = 0
        for accrual_id, kills, at in accruals:
            held = accrual_id not in payout_of and rng.random() < 0.01
            rows[Accrual.__table__].append(
                (
                    accrual_id,
                    index,
                    active_account_id,
                    kills,
                    RAW_PER_KILL,
                    kills * RAW_PER_KILL,
                    AccrualStatus.HELD if held else AccrualStatus.OPEN,
                    payout_of.get(accrual_id),
                    None,
                    cursor,
                    cursor + kills,
                    at,
                )
            )
            cursor += kills
            if held:
                continue
            kills_total += kills
            if at.date() >= self.starts["week"]:
                kills_week += kills
            if at.date() >= self.starts["day"]:
                kills_day += kills

        ids.link += 1
        draw = rng.random()
        stats_state = (
            StatsState.OK
            if draw < 0.96
            else StatsState.PRIVATE
            if draw < 0.98
            else StatsState.NOT_FOUND
            if draw < 0.99
            else StatsState.UNAVAILABLE
        )
        last_read_at = anchor - self.poll_cycle * rng.random()
        rows[EpicLink.__table__].append(
            (
                ids.link,
                index,
                active_account_id,
                True,
                created_at,
                None,
                verified_at,
                baseline,
                created_at,
                cursor,
                last_read_at,
                cursor,
                stats_state,
                last_read_at,
                0,
                last_read_at if stats_state is StatsState.OK else None,
            )
        )

        ids.record += 1
        rows[VerificationRecord.__table__].append(
            (
                ids.record,
                index,
                verified_at,
                "scheduled",
                guild_member,
                "linked",
                active_account_id,
                bool(guild_member) and has_wallet and not frozen,
                "linked",
            )
        )

        totals = rows[PeriodTotal.__table__]
        totals.append(("all", ALL_TIME_START, index, kills_total, paid_total))
        if kills_week or paid_week:
            totals.append(("week", self.starts["week"], index, kills_week, paid_week))
        if kills_day or paid_day:
            totals.append(("day", self.starts["day"], index, kills_day, paid_day))
