"""The Discord OAuth sign-in: a second way into the faucet that also proves guild membership.

`start_login` stores a random `state` for one browser and returns Discord's authorize URL.
`complete_login` handles the callback. It checks the state before anything else: the state
must be known, unexpired, issued to this browser and unused. It then claims the state in its
own committed transaction before the code is exchanged. A repeated callback therefore never
exchanges a code twice, and it gets the outcome that the first one recorded. Only hashes of
the state and of the browser nonce are stored.

The sign-in succeeds when the user is a member of the guild and Yunite reports an Epic link
that no other player owns. The player is then created or updated and verified with the
membership proof.
"""

from __future__ import annotations

import enum
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db.models import OAuthState, Player
from core.db.session import Database
from core.integrations.discord_oauth import (
    DiscordOAuthClient,
    OAuthClientConfigError,
    OAuthInvalidGrantError,
    OAuthToken,
    OAuthTokenRejectedError,
    OAuthUpstreamError,
)
from core.observability.metrics import Metrics
from core.services.sessions import sha256_hex
from core.services.verification import (
    IneligibleReason,
    VerificationOutcome,
    VerificationService,
)

log = structlog.get_logger(__name__)

STATE_TTL = timedelta(minutes=10)

# Used and expired states are kept this long after they expire, so a late repeated callback
# still shows the recorded outcome, and then deleted.
STATE_RETENTION = timedelta(days=1)

# A state is 32 random bytes in URL-safe base64 (43 characters); longer input is not a state.
MAX_STATE_LENGTH = 128
MAX_CODE_LENGTH = 512

# OAuth2 error codes (RFC 6749, section 4.1.2.1) are short lower-case words.
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


class LoginOutcome(enum.StrEnum):
    """The result of a callback, stored in `oauth_states.outcome` for repeated callbacks."""

    OK = "ok"
    MISSING_STATE = "missing_state"
    UNKNOWN_STATE = "unknown_state"
    BROWSER_MISMATCH = "browser_mismatch"
    EXPIRED_STATE = "expired_state"
    STATE_IN_PROGRESS = "state_in_progress"
    DENIED = "denied"
    AUTHORIZE_ERROR = "authorize_error"
    MISSING_CODE = "missing_code"
    INVALID_GRANT = "invalid_grant"
    DISCORD_REJECTED_CLIENT = "discord_rejected_client"
    DISCORD_REJECTED_TOKEN = "discord_rejected_token"  # noqa: S105 (an outcome name)
    DISCORD_UNAVAILABLE = "discord_unavailable"
    NOT_MEMBER = "not_member"
    NOT_LINKED = "not_linked"
    EPIC_ACCOUNT_CONFLICT = "epic_account_conflict"
    YUNITE_UNAVAILABLE = "yunite_unavailable"
    INTERNAL_ERROR = "internal_error"

    @property
    def http_status(self) -> int:
        """The HTTP status of the page that reports this outcome."""
        return _HTTP_STATUS[self]

    @property
    def metric_label(self) -> str:
        """The `oauth_logins_total` outcome label."""
        return _METRIC_LABEL.get(self, "upstream_error")


_HTTP_STATUS = {
    LoginOutcome.OK: 200,
    LoginOutcome.MISSING_STATE: 400,
    LoginOutcome.UNKNOWN_STATE: 400,
    LoginOutcome.BROWSER_MISMATCH: 403,
    LoginOutcome.EXPIRED_STATE: 410,
    LoginOutcome.STATE_IN_PROGRESS: 409,
    LoginOutcome.DENIED: 403,
    LoginOutcome.AUTHORIZE_ERROR: 502,
    LoginOutcome.MISSING_CODE: 400,
    LoginOutcome.INVALID_GRANT: 400,
    LoginOutcome.DISCORD_REJECTED_CLIENT: 502,
    LoginOutcome.DISCORD_REJECTED_TOKEN: 502,
    LoginOutcome.DISCORD_UNAVAILABLE: 503,
    LoginOutcome.NOT_MEMBER: 403,
    LoginOutcome.NOT_LINKED: 403,
    LoginOutcome.EPIC_ACCOUNT_CONFLICT: 409,
    LoginOutcome.YUNITE_UNAVAILABLE: 503,
    LoginOutcome.INTERNAL_ERROR: 500,
}

_METRIC_LABEL = {
    LoginOutcome.OK: "ok",
    LoginOutcome.MISSING_STATE: "invalid_state",
    LoginOutcome.UNKNOWN_STATE: "invalid_state",
    LoginOutcome.BROWSER_MISMATCH: "invalid_state",
    LoginOutcome.STATE_IN_PROGRESS: "invalid_state",
    LoginOutcome.MISSING_CODE: "invalid_state",
    LoginOutcome.EXPIRED_STATE: "expired_state",
    LoginOutcome.DENIED: "denied",
    LoginOutcome.NOT_MEMBER: "not_member",
    LoginOutcome.NOT_LINKED: "not_linked",
    # The player has no Epic link the faucet can use, as with no link at all.
    LoginOutcome.EPIC_ACCOUNT_CONFLICT: "not_linked",
}


@dataclass(frozen=True, slots=True)
class LoginStart:
    """The authorize URL to send the browser to, and when its state expires."""

    authorize_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of a callback.

    `repeated` is True when the state was used before and this is the recorded outcome.
    `reasons` lists what still keeps a signed-in player from being paid (a wallet, say).
    """

    outcome: LoginOutcome
    discord_id: int | None = None
    display_name: str | None = None
    repeated: bool = False
    reasons: tuple[IneligibleReason, ...] = ()


class OAuthLoginService:
    """Run the server side of the Discord sign-in."""

    def __init__(
        self,
        db: Database,
        discord: DiscordOAuthClient,
        verification: VerificationService,
        guild_id: int,
        clock: Clock,
        metrics: Metrics,
        *,
        state_ttl: timedelta = STATE_TTL,
    ) -> None:
        if guild_id <= 0:
            raise ValueError("guild_id must be the Discord ID of the guild")
        self._db = db
        self._discord = discord
        self._verification = verification
        self._guild_id = guild_id
        self._clock = clock
        self._metrics = metrics
        self._state_ttl = state_ttl

    @property
    def state_ttl(self) -> timedelta:
        """How long a login may take from redirect to callback."""
        return self._state_ttl

    def count_rate_limited(self) -> None:
        """Count a sign-in request refused by the side server's per-client limit."""
        self._metrics.count_oauth_login("rate_limited")

    async def start_login(self, browser_nonce: str) -> LoginStart:
        """Store a new state bound to `browser_nonce` and return the authorize URL.

        Also deletes states that expired more than `STATE_RETENTION` ago.
        """
        if not browser_nonce:
            raise ValueError("browser_nonce must not be empty")

        state = secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + self._state_ttl
        async with self._db.write() as session:
            await _delete_old_states(session, now)
            session.add(
                OAuthState(
                    state_hash=sha256_hex(state),
                    browser_hash=sha256_hex(browser_nonce),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return LoginStart(self._discord.authorize_redirect_url(state), expires_at)

    async def prune_states(self) -> int:
        """Delete states that expired more than `STATE_RETENTION` ago; return how many."""
        async with self._db.write() as session:
            return await _delete_old_states(session, self._clock())

    async def complete_login(
        self,
        *,
        state: str | None,
        browser_nonce: str | None,
        code: str | None,
        error: str | None,
    ) -> LoginResult:
        """Handle the callback's query values and return the outcome; see the module docstring."""
        if not state or len(state) > MAX_STATE_LENGTH:
            return self._finish(LoginResult(LoginOutcome.MISSING_STATE))

        claimed = await self._claim_state(state, browser_nonce, code, error)
        if isinstance(claimed, LoginResult):
            return self._finish(claimed)

        state_id, valid_code = claimed
        try:
            result = await self._sign_in(valid_code)
        except Exception:
            await self._record_outcome(state_id, LoginResult(LoginOutcome.INTERNAL_ERROR))
            self._metrics.count_oauth_login("upstream_error")
            raise
        await self._record_outcome(state_id, result)
        return self._finish(result)

    async def _claim_state(
        self, state: str, browser_nonce: str | None, code: str | None, error: str | None
    ) -> LoginResult | tuple[int, str]:
        """Check the state and mark it used; return the state id and code to exchange."""
        now = self._clock()
        async with self._db.write() as session:
            row = await session.scalar(
                select(OAuthState)
                .where(OAuthState.state_hash == sha256_hex(state))
                .with_for_update()
            )
            if row is None:
                return LoginResult(LoginOutcome.UNKNOWN_STATE)

            # An expired state is reported as such to any browser; it reveals nothing.
            if row.expires_at <= now:
                return LoginResult(LoginOutcome.EXPIRED_STATE)

            # The browser check comes before the recorded outcome, so another browser that
            # replays a used state never gets the first browser's result or session.
            if not browser_nonce or not hmac.compare_digest(
                sha256_hex(browser_nonce), row.browser_hash
            ):
                return LoginResult(LoginOutcome.BROWSER_MISMATCH)

            if row.used_at is not None:
                if row.outcome is None:
                    return LoginResult(LoginOutcome.STATE_IN_PROGRESS, repeated=True)
                return LoginResult(
                    _stored_outcome(row.outcome), discord_id=row.discord_id, repeated=True
                )

            # The claim commits before the code exchange, so a second callback with the same
            # state finds it used and never exchanges the code again.
            row.used_at = now
            if error:
                outcome = (
                    LoginOutcome.DENIED
                    if error == "access_denied"
                    else LoginOutcome.AUTHORIZE_ERROR
                )
                row.outcome = outcome.value
                if outcome is LoginOutcome.AUTHORIZE_ERROR:
                    # The query is user-controlled, so only a plain OAuth error code is logged.
                    error_code = error if _OAUTH_ERROR_CODE.fullmatch(error) else "other"
                    log.warning("discord_oauth_authorize_failed", error_code=error_code)
                return LoginResult(outcome)
            if not code or len(code) > MAX_CODE_LENGTH:
                row.outcome = LoginOutcome.MISSING_CODE.value
                return LoginResult(LoginOutcome.MISSING_CODE)
            return row.id, code

    async def _sign_in(self, code: str) -> LoginResult:
        try:
            token = await self._discord.exchange_code(code)
            user = await self._discord.current_user(token)
            is_member = await self._is_member(token)
        except OAuthInvalidGrantError:
            return LoginResult(LoginOutcome.INVALID_GRANT)
        except OAuthClientConfigError:
            return LoginResult(LoginOutcome.DISCORD_REJECTED_CLIENT)
        except OAuthTokenRejectedError:
            return LoginResult(LoginOutcome.DISCORD_REJECTED_TOKEN)
        except OAuthUpstreamError:
            return LoginResult(LoginOutcome.DISCORD_UNAVAILABLE)

        display_name = user.global_name or user.username
        if not is_member:
            log.debug("oauth_login_not_member", discord_id=user.id)
            return LoginResult(LoginOutcome.NOT_MEMBER, user.id, display_name)

        verification = await self._verification.verify(
            user.id, "oauth", guild_member=True, refresh=True
        )
        if user.locale:
            await self._set_locale_if_missing(user.id, user.locale)

        outcome = {
            VerificationOutcome.ERROR: LoginOutcome.YUNITE_UNAVAILABLE,
            VerificationOutcome.NOT_LINKED: LoginOutcome.NOT_LINKED,
            VerificationOutcome.NOT_IN_GUILD: LoginOutcome.NOT_LINKED,
            VerificationOutcome.CONFLICT: LoginOutcome.EPIC_ACCOUNT_CONFLICT,
        }.get(verification.outcome, LoginOutcome.OK)
        return LoginResult(outcome, user.id, display_name, reasons=verification.reasons)

    async def _is_member(self, token: OAuthToken) -> bool:
        return self._guild_id in await self._discord.user_guild_ids(token)

    async def _set_locale_if_missing(self, discord_id: int, locale: str) -> None:
        async with self._db.write() as session:
            await session.execute(
                update(Player)
                .where(Player.discord_id == discord_id, Player.locale.is_(None))
                .values(locale=locale[:16])
            )

    async def _record_outcome(self, state_id: int, result: LoginResult) -> None:
        async with self._db.write() as session:
            await session.execute(
                update(OAuthState)
                .where(OAuthState.id == state_id)
                .values(outcome=result.outcome.value, discord_id=result.discord_id)
            )

    def _finish(self, result: LoginResult) -> LoginResult:
        self._metrics.count_oauth_login(result.outcome.metric_label)
        log.info(
            "oauth_login_finished",
            outcome=result.outcome.value,
            discord_id=result.discord_id,
            repeated=result.repeated,
        )
        return result


async def _delete_old_states(session: AsyncSession, now: datetime) -> int:
    outcome = await session.execute(
        delete(OAuthState).where(OAuthState.expires_at < now - STATE_RETENTION)
    )
    return int(getattr(outcome, "rowcount", 0) or 0)


def _stored_outcome(text: str) -> LoginOutcome:
    try:
        return LoginOutcome(text)
    except ValueError:
        return LoginOutcome.INTERNAL_ERROR
