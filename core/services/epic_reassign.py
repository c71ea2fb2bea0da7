"""Moving an Epic account from one player to another, an admin action.

An Epic account belongs to one player at a time (`epic_links.epic_account_id` is unique), so
when its owner unlinks it in Yunite and another player links it, that player is refused and
flagged. After review an admin can reassign the account. The link row moves to the new owner,
inactive and with no baseline. The new owner's next verification activates it when Yunite
reports the account for them. Their first OK reading then sets the baseline, so kills made
before that never pay them. The previous owner's accruals are not changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select

from core.clock import Clock, utc_now
from core.db.models import EpicLink, Player
from core.db.session import Database
from core.errors import Pay2SlayError
from core.integrations.fortnite import normalize_epic_account_id
from core.services.audit import record_audit
from core.services.epic_links import reset_cursor
from core.services.players import get_or_create_player

log = structlog.get_logger(__name__)

MAX_REASSIGN_REASON_LENGTH = 500


class InvalidEpicAccountIdError(Pay2SlayError):
    """The value is not an Epic account ID."""

    safe_message = "That is not an Epic account ID. An Epic account ID is 32 hexadecimal digits."


class EpicAccountNotFoundError(Pay2SlayError):
    """No player has ever linked the Epic account."""

    def __init__(self, epic_account_id: str) -> None:
        super().__init__(
            f"No player has linked Epic account {epic_account_id}, so there is nothing to "
            "reassign. It is linked by verifying the player who owns it."
        )
        self.epic_account_id = epic_account_id


class EpicAccountStillLinkedError(Pay2SlayError):
    """The Epic account's current link is active, so it cannot be moved."""

    def __init__(self, epic_account_id: str, owner_discord_id: int) -> None:
        super().__init__(
            f"Epic account {epic_account_id} is still linked to Discord user "
            f"{owner_discord_id}. It can be reassigned once that link is inactive: the owner "
            "unlinks it in Yunite and is verified again."
        )
        self.epic_account_id = epic_account_id
        self.owner_discord_id = owner_discord_id


class EpicAccountAlreadyOwnedError(Pay2SlayError):
    """The Epic account already belongs to the target player."""

    def __init__(self, epic_account_id: str, discord_id: int) -> None:
        super().__init__(
            f"Epic account {epic_account_id} already belongs to Discord user {discord_id}; "
            "nothing was changed."
        )
        self.epic_account_id = epic_account_id


@dataclass(frozen=True, slots=True)
class EpicAccountReassignment:
    """The result of a reassignment: who owned the account before, and who owns it now."""

    epic_account_id: str
    from_player_id: int
    from_discord_id: int
    to_player_id: int
    to_discord_id: int
    previous_cursor_kills: int | None


async def reassign_epic_account(
    db: Database,
    epic_account_id: str,
    to_discord_id: int,
    actor_discord_id: int,
    reason: str,
    *,
    clock: Clock = utc_now,
) -> EpicAccountReassignment:
    """Move an inactive Epic account to the player `to_discord_id` with a fresh baseline; audited.

    Creates the target player when the faucet does not know them yet. Raises
    InvalidEpicAccountIdError, EpicAccountNotFoundError, EpicAccountStillLinkedError (the
    current owner's link is active) or EpicAccountAlreadyOwnedError.
    """
    try:
        account_id = normalize_epic_account_id(epic_account_id)
    except ValueError:
        raise InvalidEpicAccountIdError() from None
    reason = reason.strip()[:MAX_REASSIGN_REASON_LENGTH]

    now = clock()
    async with db.write() as session:
        link = await session.scalar(
            select(EpicLink).where(EpicLink.epic_account_id == account_id).with_for_update()
        )
        if link is None:
            raise EpicAccountNotFoundError(account_id)

        owner = await session.get(Player, link.player_id)
        assert owner is not None, "epic_links.player_id is a foreign key"
        if link.active:
            raise EpicAccountStillLinkedError(account_id, owner.discord_id)

        target = await get_or_create_player(session, to_discord_id, now)
        if target.id == owner.id:
            raise EpicAccountAlreadyOwnedError(account_id, to_discord_id)

        result = EpicAccountReassignment(
            epic_account_id=account_id,
            from_player_id=owner.id,
            from_discord_id=owner.discord_id,
            to_player_id=target.id,
            to_discord_id=to_discord_id,
            previous_cursor_kills=link.cursor_kills,
        )
        record_audit(
            session,
            action="epic_account_reassigned",
            at=now,
            actor_discord_id=actor_discord_id,
            player_id=target.id,
            detail={
                "epic_account_id": account_id,
                "previous_player_id": owner.id,
                "previous_discord_id": owner.discord_id,
                "previous_cursor_kills": link.cursor_kills,
                "previous_baseline_kills": link.baseline_kills,
                "reason": reason,
            },
        )

        link.player_id = target.id
        link.linked_at = now
        link.unlinked_at = now
        link.date_verified = None
        reset_cursor(link)

    log.info(
        "epic_account_reassigned",
        epic_account_id=account_id,
        from_player_id=result.from_player_id,
        to_player_id=result.to_player_id,
        actor_discord_id=actor_discord_id,
    )
    return result
