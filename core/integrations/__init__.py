"""Clients for Yunite, the fortnite-api.com stats API and Discord OAuth2."""

from core.integrations.discord_oauth import (
    DiscordOAuthClient,
    DiscordUser,
    OAuthClientConfigError,
    OAuthError,
    OAuthInvalidGrantError,
    OAuthToken,
    OAuthTokenRejectedError,
    OAuthUpstreamError,
)
from core.integrations.errors import IntegrationError
from core.integrations.fortnite import (
    StatsAuthError,
    StatsClient,
    StatsError,
    StatsReading,
    StatsRequestError,
    StatsState,
    normalize_epic_account_id,
)
from core.integrations.http import create_http_client
from core.integrations.rate_limit import RateLimiter
from core.integrations.yunite import (
    LinkStatus,
    YuniteAuthError,
    YuniteClient,
    YuniteError,
    YuniteLink,
    YuniteNotAuthorizedError,
    YunitePremiumRequiredError,
    YuniteRateLimitedError,
    YuniteRequestError,
    YuniteUnavailableError,
)

__all__ = [
    "DiscordOAuthClient",
    "DiscordUser",
    "IntegrationError",
    "LinkStatus",
    "OAuthClientConfigError",
    "OAuthError",
    "OAuthInvalidGrantError",
    "OAuthToken",
    "OAuthTokenRejectedError",
    "OAuthUpstreamError",
    "RateLimiter",
    "StatsAuthError",
    "StatsClient",
    "StatsError",
    "StatsReading",
    "StatsRequestError",
    "StatsState",
    "YuniteAuthError",
    "YuniteClient",
    "YuniteError",
    "YuniteLink",
    "YuniteNotAuthorizedError",
    "YunitePremiumRequiredError",
    "YuniteRateLimitedError",
    "YuniteRequestError",
    "YuniteUnavailableError",
    "create_http_client",
    "normalize_epic_account_id",
]
