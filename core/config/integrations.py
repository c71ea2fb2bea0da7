"""Settings from integrations.yaml: chain, Banano node, Yunite, stats API, Discord and services."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.banano.units import parse_ban
from core.config.base import ConfigModel
from core.config.fields import (
    BanBalance,
    DiscordIdOrEmpty,
    Expected,
    Flag,
    HttpUrl,
    HttpUrlOrEmpty,
    NonNegativeSeconds,
    OptionalDiscordId,
    PositiveDecimal,
    PositiveInt,
    RequiredText,
    YamlSecret,
)
from core.config.sections import (
    BananoSettings,
    DatabaseSettings,
    DiscordSettings,
    ObservabilitySettings,
    ServerSettings,
)


class RateLimits(ConfigModel):
    """Request budgets for outside APIs."""

    fortnite_per_min: PositiveInt = Field(
        description="Stats API requests per minute, shared by every kill count reading."
    )


class AbuseHeuristics(ConfigModel):
    """Thresholds that hold an accrual for admin review instead of paying it."""

    kill_rate_per_min: PositiveDecimal = Field(
        description="Kills per minute between two readings above which the accrual is held."
    )


class IntegrationsSettings(ConfigModel):
    """Contents of integrations.yaml."""

    chain_env: Annotated[Literal["testnet", "mainnet"], Expected("testnet or mainnet")] = Field(
        description="Banano network the operator account is on."
    )
    node_rpc: HttpUrlOrEmpty = Field(
        description="Banano node RPC URL; required when dry_run is false."
    )
    min_operator_balance_ban: BanBalance = Field(
        description="Settlement is skipped while the operator account has less BAN than this."
    )
    dry_run: Flag = Field(
        description=(
            "Record payouts as a live run would, with synthetic references and no ledger calls."
        )
    )
    yunite_api_key: YamlSecret = Field(description="Yunite API token (secret).")
    yunite_guild_id: DiscordIdOrEmpty = Field(
        description="Guild ID used in Yunite API routes; normally the same as discord_guild_id."
    )
    discord_guild_id: DiscordIdOrEmpty = Field(
        description="The operator's Discord guild; only its members are eligible."
    )
    discord_oauth_client_id: OptionalDiscordId = Field(
        description="Discord application (client) ID for the OAuth web flow."
    )
    discord_oauth_client_secret: YamlSecret = Field(
        description="Discord application client secret for the OAuth web flow (secret)."
    )
    discord_redirect_uri: HttpUrl = Field(
        description="OAuth callback URL registered on the Discord application, byte for byte."
    )
    oauth_scopes: Annotated[
        list[RequiredText],
        Field(min_length=1),
        Expected("a non-empty list of Discord OAuth2 scope names"),
    ] = Field(description="Scopes requested in the OAuth web flow.")
    fortnite_api_key: YamlSecret = Field(description="fortnite-api.com API key (secret).")
    rate_limits: RateLimits = Field(description="Request budgets for outside APIs.")
    abuse_heuristics: AbuseHeuristics = Field(description="Thresholds for holding accruals.")
    yunite_api_url: HttpUrlOrEmpty = Field(
        description="Base URL of the Yunite API; the public one is https://yunite.xyz/api/v3."
    )
    fortnite_api_url: HttpUrlOrEmpty = Field(
        description="Base URL of the stats API; the public one is https://fortnite-api.com."
    )
    discord_api_url: HttpUrlOrEmpty = Field(
        description="Base URL of the Discord API; the public one is https://discord.com/api/v10."
    )
    discord_authorize_url: HttpUrlOrEmpty = Field(
        description=(
            "Discord OAuth2 authorization page; the public one is "
            "https://discord.com/oauth2/authorize."
        )
    )
    yunite_cache_seconds: NonNegativeSeconds = Field(
        description="Seconds an Epic link read from Yunite is reused; 0 turns the cache off."
    )
    banano: BananoSettings = Field(description="Banano sending and proof of work.")
    discord: DiscordSettings = Field(description="Discord admin rights and messages.")
    database: DatabaseSettings = Field(description="Ledger database.")
    server: ServerSettings = Field(description="Side web server.")
    observability: ObservabilitySettings = Field(description="Logs and traces.")

    @property
    def min_operator_balance_raw(self) -> int:
        """Balance floor of the operator account, in raw."""
        return parse_ban(self.min_operator_balance_ban)
