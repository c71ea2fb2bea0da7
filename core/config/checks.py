"""Checks across keys: a consistent configuration, one that may go live, and one that can run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.config.errors import ConfigProblem
from core.config.secrets import secret_sources_text

if TYPE_CHECKING:
    from core.config.settings import Settings

# Public services, named in messages only: nothing points at them by default.
PUBLIC_URLS = {
    "yunite_api_url": "https://yunite.xyz/api/v3",
    "fortnite_api_url": "https://fortnite-api.com",
    "discord_api_url": "https://discord.com/api/v10",
    "discord_authorize_url": "https://discord.com/oauth2/authorize",
}
_YAML_SECRETS = {"yunite_api_key": "Yunite API token", "fortnite_api_key": "stats API key"}


def consistency_problems(settings: Settings) -> list[ConfigProblem]:
    """List keys that contradict each other, whatever the mode."""
    banano = settings.integrations.banano
    problems = []
    if "work_server" in banano.work_sources and banano.work_server_url == "":
        key = "integrations.banano.work_server_url"
        message = "empty while banano.work_sources lists work_server"
        expected = "the work server's URL, or work_sources without work_server"
        problems.append(ConfigProblem(key, settings.source_of(key), expected, message))
    return problems


def live_problems(settings: Settings) -> list[ConfigProblem]:
    """List what a live configuration (dry_run false) lacks to send payouts safely."""
    integrations = settings.integrations
    secrets = settings.secrets
    if integrations.dry_run:
        return []

    problems = []

    def add(key: str, expected: str, message: str) -> None:
        problems.append(ConfigProblem(key, settings.source_of(key), expected, message))

    if integrations.node_rpc == "":
        add(
            "integrations.node_rpc",
            "the RPC URL of a Banano node, or dry_run: true",
            "empty while dry_run is false",
        )
    if integrations.banano.signer == "local" and secrets.operator_seed is None:
        add(
            "secrets.operator_seed",
            "the operator seed (64 hexadecimal digits) in "
            + secret_sources_text("P2S_OPERATOR_SEED", "operator_seed"),
            "missing while dry_run is false and banano.signer is local",
        )
    if integrations.banano.signer == "node_wallet" and integrations.banano.node_wallet_id == "":
        add(
            "integrations.banano.node_wallet_id",
            "the ID of the node wallet that holds the operator account",
            "empty while dry_run is false and banano.signer is node_wallet",
        )
    if secrets.session_secret is None:
        add(
            "secrets.session_secret",
            "a random key of at least 32 characters in "
            + secret_sources_text("P2S_SESSION_SECRET", "session_secret"),
            "missing while dry_run is false",
        )
    return problems


def run_problems(settings: Settings) -> list[ConfigProblem]:
    """List what `pay2slay run` needs beyond a valid configuration: credentials and API URLs."""
    integrations = settings.integrations
    problems = []

    def add(key: str, expected: str, message: str) -> None:
        problems.append(ConfigProblem(key, settings.source_of(key), expected, message))

    if settings.secrets.discord_bot_token is None:
        add(
            "secrets.discord_bot_token",
            "the bot token in " + secret_sources_text("P2S_DISCORD_BOT_TOKEN", "discord_bot_token"),
            "missing Discord bot token",
        )
    for name in ("discord_guild_id", "yunite_guild_id"):
        if getattr(integrations, name) == "":
            add(f"integrations.{name}", "the ID of the operator's Discord guild", "empty")
    for name, label in _YAML_SECRETS.items():
        if getattr(integrations, name) is None:
            key = f"integrations.{name}"
            variable = settings.reference_of(key) or name.upper()
            add(key, f"the {label} in " + secret_sources_text(variable, name), f"missing {label}")
    for name, public_url in PUBLIC_URLS.items():
        if getattr(integrations, name) == "":
            add(
                f"integrations.{name}",
                f"the public URL {public_url}, or a local imitation's URL for testing",
                "empty",
            )
    return problems
