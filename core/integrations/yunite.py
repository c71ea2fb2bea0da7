"""Client for Yunite's registration links: which Epic account each Discord member linked."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from pydantic import SecretStr

from core.clock import Clock, utc_now
from core.integrations.errors import IntegrationError
from core.integrations.http import (
    MAX_SNOWFLAKE,
    MalformedResponseError,
    decode_json,
    expect_list,
    expect_object,
    expect_optional_str,
    expect_snowflake,
    expect_str,
    seconds_until_reset,
)

log = structlog.get_logger(__name__)

# Yunite publishes no maximum number of IDs per call, so requests stay at a modest size.
MAX_IDS_PER_REQUEST = 100

_EPIC_ACCOUNT_ID = re.compile(r"[0-9a-fA-F]{32}")


class LinkStatus(enum.Enum):
    """Outcome of a Yunite lookup for one Discord user of the guild."""

    LINKED = "linked"
    NOT_LINKED = "not_linked"
    NOT_IN_GUILD = "not_in_guild"


@dataclass(frozen=True, slots=True)
class YuniteLink:
    """One Discord user's Epic link as Yunite reported it.

    `epic_account_id` (32 lowercase hex) and `date_verified` are set only for LINKED.
    `date_verified` changes when the player relinks, and may be None if Yunite omits it.
    """

    status: LinkStatus
    epic_account_id: str | None = None
    date_verified: datetime | None = None

    def __post_init__(self) -> None:
        if (self.status is LinkStatus.LINKED) != (self.epic_account_id is not None):
            raise ValueError("epic_account_id must be set exactly when the status is LINKED")
        if self.status is not LinkStatus.LINKED and self.date_verified is not None:
            raise ValueError("date_verified is only set when the status is LINKED")


class YuniteError(IntegrationError):
    """A Yunite request failed."""

    safe_message = "Yunite could not complete the request. Try again later."


class YuniteAuthError(YuniteError):
    """Yunite rejected the API token (HTTP 401)."""

    safe_message = (
        "Yunite rejected the API token (HTTP 401). "
        "Set a valid Yunite API token in YUNITE_API_KEY and restart the faucet."
    )


class YunitePremiumRequiredError(YuniteError):
    """The guild has no Yunite Premium, which the registration API requires (HTTP 402)."""

    safe_message = (
        "Yunite requires Premium for this guild (HTTP 402). "
        "Upgrade the guild to Yunite Premium to use the registration API."
    )


class YuniteNotAuthorizedError(YuniteError):
    """The Yunite app is not authorised for the guild (HTTP 403)."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(
            f"Yunite refused access to guild {guild_id} (HTTP 403). A guild admin must "
            "authorise the Yunite app for this guild in the Yunite dashboard."
        )
        self.guild_id = guild_id


class YuniteRateLimitedError(YuniteError):
    """Yunite rate-limited the faucet (HTTP 429); `retry_after` is in seconds when known."""

    def __init__(self, retry_after: float | None) -> None:
        if retry_after is None:
            message = "Yunite rate-limited the faucet (HTTP 429). Try again in a minute."
        else:
            message = (
                "Yunite rate-limited the faucet (HTTP 429). "
                f"Try again in {max(1, round(retry_after))} seconds."
            )
        super().__init__(message)
        self.retry_after = retry_after


class YuniteUnavailableError(YuniteError):
    """Yunite failed, timed out or sent a reply of the wrong shape."""

    safe_message = "Yunite is unavailable right now. Try again in a few minutes."


class YuniteRequestError(YuniteError):
    """Yunite rejected the request as invalid (HTTP 400, 404 or another 4xx)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(
            f"Yunite rejected the request (HTTP {status_code}). "
            "Check the Yunite base URL and guild ID in the configuration."
        )
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class _CacheEntry:
    link: YuniteLink
    expires_at: datetime


class YuniteClient:
    """Read Epic links for Discord users of one guild from Yunite's registration API.

    Results are cached per Discord ID for `cache_seconds`, so commands can ask on every call.
    The client never retries by itself, because Yunite may ban apps that repeat
    rate-limited calls.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: SecretStr,
        guild_id: int,
        cache_seconds: float = 60.0,
        clock: Clock = utc_now,
    ) -> None:
        if cache_seconds < 0:
            raise ValueError(f"cache_seconds must not be negative, got {cache_seconds!r}")
        if not 0 < guild_id <= MAX_SNOWFLAKE:
            raise ValueError(f"guild_id must be a Discord snowflake, got {guild_id!r}")

        self._http = http
        self._links_url = f"{base_url.rstrip('/')}/guild/{guild_id}/registration/links"
        self._api_key = api_key
        self._guild_id = guild_id
        self._cache_ttl = timedelta(seconds=cache_seconds)
        self._clock = clock
        self._cache: dict[int, _CacheEntry] = {}

    async def links_for(self, discord_ids: Sequence[int]) -> dict[int, YuniteLink]:
        """Return the Epic link of every given Discord ID, from the cache when it is fresh.

        IDs missing from the cache are requested in batches of at most 100. Raises a
        YuniteError subclass when Yunite refuses or fails; batches fetched before the failure
        stay cached.
        """
        wanted = list(dict.fromkeys(discord_ids))
        for discord_id in wanted:
            if isinstance(discord_id, bool) or not isinstance(discord_id, int):
                raise TypeError(f"Discord IDs must be int, got {type(discord_id).__name__}")
            if not 0 < discord_id <= MAX_SNOWFLAKE:
                raise ValueError(f"{discord_id} is not a Discord snowflake")

        now = self._clock()
        found: dict[int, YuniteLink] = {}
        missing: list[int] = []
        for discord_id in wanted:
            entry = self._cache.get(discord_id)
            if entry is not None and entry.expires_at > now:
                found[discord_id] = entry.link
            else:
                missing.append(discord_id)

        if missing:
            self._drop_expired(now)
        for start in range(0, len(missing), MAX_IDS_PER_REQUEST):
            batch = missing[start : start + MAX_IDS_PER_REQUEST]
            links = await self._fetch(batch)
            expires_at = self._clock() + self._cache_ttl
            for discord_id, link in links.items():
                if self._cache_ttl > timedelta(0):
                    self._cache[discord_id] = _CacheEntry(link, expires_at)
                found[discord_id] = link

        return {discord_id: found[discord_id] for discord_id in wanted}

    def invalidate(self, discord_id: int) -> None:
        """Forget the cached link of one Discord ID so the next call requests it from Yunite."""
        self._cache.pop(discord_id, None)

    def clear_cache(self) -> None:
        """Forget every cached link."""
        self._cache.clear()

    def _drop_expired(self, now: datetime) -> None:
        expired = [key for key, entry in self._cache.items() if entry.expires_at <= now]
        for key in expired:
            del self._cache[key]

    async def _fetch(self, batch: Sequence[int]) -> dict[int, YuniteLink]:
        body = {"type": "DISCORD", "userIds": [str(discord_id) for discord_id in batch]}
        headers = {"Y-Api-Token": self._api_key.get_secret_value()}
        try:
            response = await self._http.post(self._links_url, json=body, headers=headers)
        except httpx.TimeoutException:
            log.warning("yunite_request_timed_out", guild_id=self._guild_id, batch_size=len(batch))
            raise YuniteUnavailableError("Yunite did not reply in time. Try again later.") from None
        except httpx.RequestError as error:
            log.warning(
                "yunite_request_failed",
                guild_id=self._guild_id,
                batch_size=len(batch),
                error_type=type(error).__name__,
            )
            raise YuniteUnavailableError() from None

        status = response.status_code
        if status != httpx.codes.OK:
            raise self._error_for_status(response, len(batch))

        try:
            links = parse_links_response(decode_json(response), batch)
        except MalformedResponseError as error:
            log.warning(
                "yunite_reply_invalid",
                guild_id=self._guild_id,
                batch_size=len(batch),
                reason=str(error),
            )
            raise YuniteUnavailableError() from None

        log.debug("yunite_links_read", guild_id=self._guild_id, batch_size=len(batch))
        return links

    def _error_for_status(self, response: httpx.Response, batch_size: int) -> YuniteError:
        status = response.status_code
        log.warning(
            "yunite_request_rejected",
            guild_id=self._guild_id,
            batch_size=batch_size,
            status=status,
        )
        if status == httpx.codes.UNAUTHORIZED:
            return YuniteAuthError()
        if status == httpx.codes.PAYMENT_REQUIRED:
            return YunitePremiumRequiredError()
        if status == httpx.codes.FORBIDDEN:
            return YuniteNotAuthorizedError(self._guild_id)
        if status == httpx.codes.TOO_MANY_REQUESTS:
            return YuniteRateLimitedError(seconds_until_reset(response.headers, self._clock()))
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or status == httpx.codes.REQUEST_TIMEOUT:
            return YuniteUnavailableError()
        return YuniteRequestError(status)


def parse_links_response(body: object, requested: Sequence[int]) -> dict[int, YuniteLink]:
    """Return the link of every requested Discord ID from a registration-links reply.

    Raises MalformedResponseError when the reply has the wrong shape, puts one ID in two
    outcomes, or leaves out a requested ID. IDs that were not requested are ignored.
    Missing `users`, `notLinked` or `notFound` arrays count as empty.
    """
    reply = expect_object(body, "reply")
    wanted = set(requested)
    links: dict[int, YuniteLink] = {}

    def record(discord_id: int, link: YuniteLink) -> None:
        if discord_id in links:
            raise MalformedResponseError("a Discord ID appears in more than one outcome")
        if discord_id in wanted:
            links[discord_id] = link

    for index, item in enumerate(expect_list(reply.get("users", []), "users")):
        discord_id, link = _parse_linked_user(item, f"users[{index}]")
        record(discord_id, link)

    for index, item in enumerate(expect_list(reply.get("notLinked", []), "notLinked")):
        record(expect_snowflake(item, f"notLinked[{index}]"), YuniteLink(LinkStatus.NOT_LINKED))

    for index, item in enumerate(expect_list(reply.get("notFound", []), "notFound")):
        record(expect_snowflake(item, f"notFound[{index}]"), YuniteLink(LinkStatus.NOT_IN_GUILD))

    absent = wanted - links.keys()
    if absent:
        raise MalformedResponseError(f"{len(absent)} requested Discord IDs are in no outcome")
    return links


def _parse_linked_user(item: object, field: str) -> tuple[int, YuniteLink]:
    user = expect_object(item, field)
    discord = expect_object(user.get("discord"), f"{field}.discord")
    discord_id = expect_snowflake(discord.get("id"), f"{field}.discord.id")

    epic = expect_object(user.get("epic"), f"{field}.epic")
    epic_account_id = expect_str(epic.get("epicID"), f"{field}.epic.epicID")
    if not _EPIC_ACCOUNT_ID.fullmatch(epic_account_id):
        raise MalformedResponseError(f"{field}.epic.epicID is not 32 hexadecimal digits")

    date_text = expect_optional_str(user.get("dateVerified"), f"{field}.dateVerified")
    date_verified = None if date_text is None else _parse_timestamp(date_text, field)

    link = YuniteLink(LinkStatus.LINKED, epic_account_id.lower(), date_verified)
    return discord_id, link


def _parse_timestamp(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedResponseError(f"{field}.dateVerified is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
