"""Abuse flags: opening them when a heuristic fires, and the admin review that resolves them.

Kinds of flag:

- `kill_rate`: an accrual whose kills came faster than `abuse_heuristics.kill_rate_per_min`.
  The accrual is held until an admin releases or voids it.
- `kill_count_drop`: kill counts stayed below the cursor long enough to count as a reset, so
  the cursor moved down. The flag without an accrual records the drop. Accruals that cover
  kill counts below the old cursor are held, each with its own flag of this kind. The stats
  API may have served stale numbers, so those kills may have been paid already.
- `epic_account_conflict`: a player's Yunite link names an Epic account that belongs to
  another player. The link is refused; the flag has no accrual.
- `wallet_in_use`: a player tried to register a wallet that another player has, which is how
  one person farms with several Discord accounts. The wallet is refused; the flag has no
  accrual.
- `implausible_kills`: a reading's kill count was above the plausible maximum, or its new
  kills were worth more than 2**128 - 1 raw. Nothing accrued and the cursor stayed; the flag
  has no accrual. One open flag per Epic account.

Resolving a flag with an accrual releases it (held to open) or voids it; a flag without one
is only closed. Every resolution is audited.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock, utc_now
from core.db.models import AbuseFlag, AbuseFlagStatus, Accrual, AccrualStatus, Player
from core.db.session import Database
from core.errors import Pay2SlayError
from core.observability.metrics import Metrics
from core.services.audit import record_audit
from core.services.totals import add_to_period_totals

log = structlog.get_logger(__name__)

KILL_RATE = "kill_rate"
KILL_COUNT_DROP = "kill_count_drop"
EPIC_ACCOUNT_CONFLICT = "epic_account_conflict"
WALLET_IN_USE = "wallet_in_use"
IMPLAUSIBLE_KILLS = "implausible_kills"

FlagDetailValue = str | int | bool | None


class ResolveAction(enum.StrEnum):
    """What an admin decides for a flag: pay its held accrual or never pay it."""

    RELEASE = "release"
    VOID = "void"


class AbuseFlagNotFoundError(Pay2SlayError):
    """No abuse flag has the given ID."""

    def __init__(self, flag_id: int) -> None:
        super().__init__(f"There is no abuse flag #{flag_id}. Check the ID in the open flag list.")
        self.flag_id = flag_id


class AbuseFlagResolvedError(Pay2SlayError):
    """The abuse flag was resolved already."""

    def __init__(self, flag_id: int, status: AbuseFlagStatus) -> None:
        super().__init__(f"Abuse flag #{flag_id} is already {status.value}; nothing was changed.")
        self.flag_id = flag_id


@dataclass(frozen=True, slots=True)
class AbuseFlagView:
    """An abuse flag as admins see it, with the player's Discord ID and the held amount."""

    id: int
    player_id: int
    discord_id: int
    kind: str
    status: AbuseFlagStatus
    detail: dict[str, FlagDetailValue]
    created_at: datetime
    accrual_id: int | None
    accrual_kills: int | None
    accrual_amount_raw: int | None
    accrual_status: AccrualStatus | None
    resolved_at: datetime | None
    resolved_by: int | None
    resolution_note: str | None


@dataclass(frozen=True, slots=True)
class FlagResolution:
    """The result of resolving one flag."""

    flag_id: int
    status: AbuseFlagStatus
    accrual_id: int | None
    accrual_status: AccrualStatus | None


def open_flag(
    session: AsyncSession,
    *,
    player_id: int,
    kind: str,
    now: datetime,
    metrics: Metrics | None,
    accrual_id: int | None = None,
    detail: Mapping[str, FlagDetailValue] | None = None,
) -> AbuseFlag:
    """Add an open abuse flag to the session's transaction and count it when metrics are given."""
    flag = AbuseFlag(
        player_id=player_id,
        accrual_id=accrual_id,
        kind=kind,
        detail=json.dumps(dict(detail or {}), sort_keys=True),
        status=AbuseFlagStatus.OPEN,
        created_at=now,
    )
    session.add(flag)
    if metrics is not None:
        metrics.count_abuse_flag(kind)
    log.info("abuse_flag_opened", player_id=player_id, kind=kind, accrual_id=accrual_id)
    return flag


async def find_open_flag(
    session: AsyncSession, *, player_id: int, kind: str, subject_key: str, subject: str
) -> AbuseFlag | None:
    """Return the player's open flag of `kind` without an accrual whose detail names `subject`.

    Used so a repeated check opens one flag, not one per check.
    """
    flags = await session.scalars(
        select(AbuseFlag).where(
            AbuseFlag.player_id == player_id,
            AbuseFlag.kind == kind,
            AbuseFlag.status == AbuseFlagStatus.OPEN,
            AbuseFlag.accrual_id.is_(None),
        )
    )
    for flag in flags:
        if parse_detail(flag.detail).get(subject_key) == subject:
            return flag
    return None


def parse_detail(text: str) -> dict[str, FlagDetailValue]:
    """Return a flag's detail JSON as a dict, or an empty dict if it is not a JSON object."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(key): item
        for key, item in value.items()
        if item is None or isinstance(item, str | int | bool)
    }


class AbuseService:
    """Admin review of abuse flags."""

    def __init__(self, db: Database, zone: ZoneInfo, clock: Clock = utc_now) -> None:
        self._db = db
        self._zone = zone
        self._clock = clock

    async def list_flags(
        self, status: AbuseFlagStatus | None = AbuseFlagStatus.OPEN, limit: int = 25
    ) -> list[AbuseFlagView]:
        """Return flags with this status (all flags for None), oldest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")

        query = (
            select(AbuseFlag, Player.discord_id, Accrual)
            .join(Player, Player.id == AbuseFlag.player_id)
            .outerjoin(Accrual, Accrual.id == AbuseFlag.accrual_id)
            .order_by(AbuseFlag.created_at, AbuseFlag.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(AbuseFlag.status == status)

        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        return [_view(flag, discord_id, accrual) for flag, discord_id, accrual in rows]

    async def resolve_flag(
        self, flag_id: int, action: ResolveAction, actor_discord_id: int, note: str = ""
    ) -> FlagResolution:
        """Release or void the flag's held accrual, close the flag and audit it.

        Raises AbuseFlagNotFoundError or AbuseFlagResolvedError. An accrual that is no longer
        held (another flag resolved it) keeps its status; the flag is still closed.
        """
        now = self._clock()
        async with self._db.write() as session:
            flag = await session.scalar(
                select(AbuseFlag).where(AbuseFlag.id == flag_id).with_for_update()
            )
            if flag is None:
                raise AbuseFlagNotFoundError(flag_id)
            if flag.status is not AbuseFlagStatus.OPEN:
                raise AbuseFlagResolvedError(flag_id, flag.status)

            accrual = None
            if flag.accrual_id is not None:
                accrual = await session.scalar(
                    select(Accrual).where(Accrual.id == flag.accrual_id).with_for_update()
                )

            released = False
            if accrual is not None and accrual.status is AccrualStatus.HELD:
                if action is ResolveAction.RELEASE:
                    accrual.status = AccrualStatus.OPEN
                    released = True
                    # Held kills join the leaderboard only once they are released, in the
                    # period they were earned.
                    await add_to_period_totals(
                        session,
                        player_id=accrual.player_id,
                        at=accrual.created_at,
                        zone=self._zone,
                        kills=accrual.kills,
                    )
                else:
                    accrual.status = AccrualStatus.VOIDED

            flag.status = (
                AbuseFlagStatus.RELEASED
                if action is ResolveAction.RELEASE
                else AbuseFlagStatus.VOIDED
            )
            flag.resolved_at = now
            flag.resolved_by = actor_discord_id
            flag.resolution_note = note or None

            record_audit(
                session,
                action=f"abuse_flag_{flag.status.value}",
                at=now,
                actor_discord_id=actor_discord_id,
                player_id=flag.player_id,
                detail={
                    "flag_id": flag.id,
                    "kind": flag.kind,
                    "accrual_id": flag.accrual_id,
                    "accrual_status": None if accrual is None else accrual.status.value,
                    "kills": None if accrual is None else accrual.kills,
                    "amount_raw": None if accrual is None else accrual.amount_raw,
                    "note": note,
                },
            )
            result = FlagResolution(
                flag_id=flag.id,
                status=flag.status,
                accrual_id=flag.accrual_id,
                accrual_status=None if accrual is None else accrual.status,
            )

        log.info(
            "abuse_flag_resolved",
            flag_id=flag_id,
            action=action.value,
            actor_discord_id=actor_discord_id,
            accrual_id=result.accrual_id,
            released=released,
        )
        return result


def _view(flag: AbuseFlag, discord_id: int, accrual: Accrual | None) -> AbuseFlagView:
    return AbuseFlagView(
        id=flag.id,
        player_id=flag.player_id,
        discord_id=discord_id,
        kind=flag.kind,
        status=flag.status,
        detail=parse_detail(flag.detail),
        created_at=flag.created_at,
        accrual_id=flag.accrual_id,
        accrual_kills=None if accrual is None else accrual.kills,
        accrual_amount_raw=None if accrual is None else accrual.amount_raw,
        accrual_status=None if accrual is None else accrual.status,
        resolved_at=flag.resolved_at,
        resolved_by=flag.resolved_by,
        resolution_note=flag.resolution_note,
    )
