"""Typed configuration of Pay2Slay, loaded from configs/*.yaml, the environment and secret files.

Use `load_settings()` to get a validated `Settings`; `ConfigError.problems` lists everything
wrong with the configuration, one `ConfigProblem` per key.
"""

from core.config.errors import ConfigError, ConfigProblem
from core.config.integrations import AbuseHeuristics, IntegrationsSettings, RateLimits
from core.config.loader import load_settings
from core.config.payout import PayoutSettings, ResetRule
from core.config.product import FeatureFlags, ProductSettings
from core.config.render import render_effective
from core.config.secrets import SecretSettings
from core.config.sections import (
    BananoSettings,
    DatabaseSettings,
    DiscordSettings,
    ObservabilitySettings,
    ServerSettings,
)
from core.config.settings import Settings

__all__ = [
    "AbuseHeuristics",
    "BananoSettings",
    "ConfigError",
    "ConfigProblem",
    "DatabaseSettings",
    "DiscordSettings",
    "FeatureFlags",
    "IntegrationsSettings",
    "ObservabilitySettings",
    "PayoutSettings",
    "ProductSettings",
    "RateLimits",
    "ResetRule",
    "SecretSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
    "render_effective",
]
