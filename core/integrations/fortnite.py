"""Client for lifetime kill counts from the fortnite-api.com BR stats v2 endpoint."""

from __future__ import annotations

import asyncio
import enum
import random
import re
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog
from pydantic import SecretStr

from core.clock import Clock, utc_now
from core.integrations.errors import IntegrationError
from core.integrations.http import (
    MalformedResponseError,
    decode_json,
    expect_int,
    expect_object,
    expect_str,
    seconds_until_reset,
)
from core.integrations.rate_limit import RateLimiter, Sleep

log = structlog.get_logger(__name__)

_EPIC_ACCOUNT_ID = re.compile(r"[0-9a-fA-F]{32}")

# The highest lifetime kill count taken as real. A player with 100 kills every day for 30
# years would have about 1.1 million, so a count above this is a broken reply. It is reported
# as unavailable, and no baseline or accrual is ever made from it.
MAX_PLAUSIBLE_KILLS = 10**9

# Query parameter names are camelCase. The API ignores unknown names and serves its default
# window, and only the lifetime window never restarts, so the kill cursor depends on this.
_STATS_QUERY = {"timeWindow": "lifetime", "image": "none"}


class StatsState(enum.Enum):
    """The outcome of one kill-count reading, as `/status` explains it to the player."""

    OK = "ok"
    PRIVATE = "private"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class StatsReading:
    """One kill-count reading for an Epic account.

    `kills` is the lifetime kill count and is set only when `state` is OK. `reason` is a short
    machine-readable cause for UNAVAILABLE (for example `rate_limited`, `timeout`, `http_503`,
    `invalid_body`, `implausible_kills`), and None otherwise.
    """

    epic_account_id: str
    state: StatsState
    kills: int | None
    read_at: datetime
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.state is StatsState.OK) != (self.kills is not None):
            raise ValueError("kills must be set exactly when the state is OK")
        if self.kills is not None and self.kills < 0:
            raise ValueError("kills must not be negative")


class StatsError(IntegrationError):
    """A stats API failure that only the operator can fix, such as a rejected API key."""


class StatsAuthError(StatsError):
    """The stats API rejected the API key (HTTP 401)."""

    safe_message = (
        "The stats API rejected the API key (HTTP 401). "
        "Set a valid fortnite-api.com key in FORTNITE_API_KEY and restart the faucet."
    )


class StatsRequestError(StatsError):
    """The stats API rejected the request parameters (HTTP 400)."""

    safe_message = (
        "The stats API rejected the request as invalid (HTTP 400). "
        "Check the stats API base URL in the configuration."
    )


def normalize_epic_account_id(value: str) -> str:
    """Return the Epic account ID in lowercase, or raise ValueError unless it is 32 hex digits."""
    if not isinstance(value, str) or not _EPIC_ACCOUNT_ID.fullmatch(value):
        raise ValueError("an Epic account ID is 32 hexadecimal digits")
    return value.lower()


class StatsClient:
    """Read lifetime kill counts, sharing one RateLimiter with every other caller.

    A player's state or an upstream outage comes back as PRIVATE, NOT_FOUND or UNAVAILABLE.
    Only faults the operator must fix raise: a rejected key (401) or rejected parameters (400).

    Retries: 5xx replies, time-outs and connection errors are retried up to `max_attempts`
    requests in all, with jittered exponential backoff. A 429 pauses the shared limiter until
    the reset time the reply gives, but never longer than `MAX_PAUSE_SECONDS`, and is retried
    once if that time is at most `max_rate_limit_wait_seconds` away.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: SecretStr,
        limiter: RateLimiter,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        max_rate_limit_wait_seconds: float = 120.0,
        default_rate_limit_wait_seconds: float = 60.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts!r}")
        if backoff_seconds < 0 or max_backoff_seconds < 0:
            raise ValueError("backoff times must not be negative")

        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._limiter = limiter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._max_rate_limit_wait = max_rate_limit_wait_seconds
        self._default_rate_limit_wait = default_rate_limit_wait_seconds

    async def lifetime_kills(self, epic_account_id: str) -> StatsReading:
        """Read the lifetime kill count of one Epic account.

        Raises ValueError for an ID that is not 32 hex digits, StatsAuthError on HTTP 401 and
        StatsRequestError on HTTP 400.
        """
        account_id = normalize_epic_account_id(epic_account_id)
        url = f"{self._base_url}/v2/stats/br/v2/{account_id}"
        headers = {"Authorization": self._api_key.get_secret_value()}

        failed_attempts = 0
        rate_limit_retried = False
        while True:
            await self._limiter.acquire()
            try:
                response = await self._http.get(url, params=_STATS_QUERY, headers=headers)
            except httpx.TimeoutException:
                failure = "timeout"
            except httpx.RequestError as error:
                failure = "connection_error"
                log.debug("stats_request_failed", error_type=type(error).__name__)
            else:
                status = response.status_code
                if status == httpx.codes.TOO_MANY_REQUESTS:
                    if not self._pause_for_rate_limit(account_id, response, rate_limit_retried):
                        return self._unavailable(account_id, "rate_limited")
                    rate_limit_retried = True
                    continue
                if status < httpx.codes.INTERNAL_SERVER_ERROR:
                    return self._reading_for_reply(account_id, response)
                failure = f"http_{status}"

            failed_attempts += 1
            if failed_attempts >= self._max_attempts:
                return self._unavailable(account_id, failure)

            delay = self._backoff_delay(failed_attempts)
            log.info(
                "stats_read_retrying",
                epic_account_id=account_id,
                reason=failure,
                attempt=failed_attempts,
                delay_seconds=round(delay, 3),
            )
            await self._sleep(delay)

    def _reading_for_reply(self, account_id: str, response: httpx.Response) -> StatsReading:
        """Turn a reply that is neither 429 nor 5xx into a reading, or raise for 400 and 401."""
        status = response.status_code
        if status == httpx.codes.OK:
            return self._reading_from_body(account_id, response)
        if status == httpx.codes.FORBIDDEN:
            log.debug("stats_private", epic_account_id=account_id)
            return self._reading(account_id, StatsState.PRIVATE)
        if status == httpx.codes.NOT_FOUND:
            log.debug("stats_not_found", epic_account_id=account_id)
            return self._reading(account_id, StatsState.NOT_FOUND)
        if status == httpx.codes.UNAUTHORIZED:
            log.error("stats_api_key_rejected", status=status)
            raise StatsAuthError()
        if status == httpx.codes.BAD_REQUEST:
            log.error("stats_request_rejected", epic_account_id=account_id, status=status)
            raise StatsRequestError()

        log.warning("stats_status_unexpected", epic_account_id=account_id, status=status)
        return self._unavailable(account_id, f"http_{status}")

    def _pause_for_rate_limit(
        self, account_id: str, response: httpx.Response, already_retried: bool
    ) -> bool:
        """Pause the shared limiter until the reset time; return whether to retry once."""
        delay = seconds_until_reset(response.headers, self._clock())
        if delay is None:
            delay = self._default_rate_limit_wait

        self._limiter.pause_for(delay)
        will_retry = not already_retried and delay <= self._max_rate_limit_wait
        log.warning(
            "stats_rate_limited",
            epic_account_id=account_id,
            wait_seconds=round(delay, 3),
            will_retry=will_retry,
        )
        return will_retry

    def _backoff_delay(self, failed_attempts: int) -> float:
        ceiling = min(
            self._max_backoff_seconds, self._backoff_seconds * 2.0 ** (failed_attempts - 1)
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _reading_from_body(self, account_id: str, response: httpx.Response) -> StatsReading:
        try:
            kills = extract_lifetime_kills(decode_json(response), account_id)
        except MalformedResponseError as error:
            log.warning("stats_reply_invalid", epic_account_id=account_id, reason=str(error))
            return self._unavailable(account_id, "invalid_body")
        if kills > MAX_PLAUSIBLE_KILLS:
            log.warning(
                "stats_kills_implausible",
                epic_account_id=account_id,
                kills=kills,
                max_kills=MAX_PLAUSIBLE_KILLS,
            )
            return self._unavailable(account_id, "implausible_kills")
        return StatsReading(account_id, StatsState.OK, kills, self._clock())

    def _reading(self, account_id: str, state: StatsState) -> StatsReading:
        return StatsReading(account_id, state, None, self._clock())

    def _unavailable(self, account_id: str, reason: str) -> StatsReading:
        log.warning("stats_read_unavailable", epic_account_id=account_id, reason=reason)
        return StatsReading(account_id, StatsState.UNAVAILABLE, None, self._clock(), reason)


def extract_lifetime_kills(body: object, epic_account_id: str) -> int:
    """Return `data.stats.all.overall.kills` from a BR stats v2 reply.

    A null `all` or `overall` block means the player has no matches, so zero kills. Raises
    MalformedResponseError when the shape is wrong, the kill count is not a non-negative
    integer, or the reply is for a different account.
    """
    reply = expect_object(body, "reply")
    data = expect_object(reply.get("data"), "data")

    account = expect_object(data.get("account"), "data.account")
    reply_account_id = expect_str(account.get("id"), "data.account.id")
    if reply_account_id.lower() != epic_account_id.lower():
        raise MalformedResponseError("data.account.id is not the requested account")

    stats = expect_object(data.get("stats"), "data.stats")
    if "all" not in stats:
        raise MalformedResponseError("data.stats.all is missing")
    # NOTE: the API documents a null block as "no matches", so it reads as 0 kills. If it ever
    # served null for a player who has kills, a first reading would set the baseline at 0 and
    # the next real count would look like new kills. The kill-rate hold catches that jump when
    # an OK reading came shortly before it. After a long run of failed readings the jump is
    # spread over the whole gap, so it can stay under the rate and accrue as open.
    if stats["all"] is None:
        return 0

    all_inputs = expect_object(stats["all"], "data.stats.all")
    if "overall" not in all_inputs:
        raise MalformedResponseError("data.stats.all.overall is missing")
    if all_inputs["overall"] is None:
        return 0

    overall = expect_object(all_inputs["overall"], "data.stats.all.overall")
    kills = expect_int(overall.get("kills"), "data.stats.all.overall.kills")
    if kills < 0:
        raise MalformedResponseError("data.stats.all.overall.kills is negative")
    return kills
