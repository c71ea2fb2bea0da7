"""Audit entries for admin actions and every change that moves or releases money."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuditEntry

AuditValue = str | int | bool | None


def record_audit(
    session: AsyncSession,
    *,
    action: str,
    at: datetime,
    actor_discord_id: int | None = None,
    player_id: int | None = None,
    payout_id: int | None = None,
    detail: Mapping[str, AuditValue] | None = None,
) -> AuditEntry:
    """Add an audit entry to the session's transaction; the caller commits it with the change.

    `actor_discord_id` is None for actions the faucet takes by itself. `detail` must never hold
    a secret; amounts go in as int raw, which JSON keeps exact.
    """
    entry = AuditEntry(
        created_at=at,
        actor_discord_id=actor_discord_id,
        action=action,
        player_id=player_id,
        payout_id=payout_id,
        detail=json.dumps(dict(detail or {}), sort_keys=True),
    )
    session.add(entry)
    return entry
