"""The shipped configuration files load and hold the documented defaults."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.banano.address import BURN_ADDRESS
from core.config import ConfigError, Settings, load_settings


@pytest.fixture
def defaults(shipped_config_dir: Path) -> Settings:
    return load_settings(shipped_config_dir, environ={})


def test_payout_defaults(defaults: Settings) -> None:
    payout = defaults.payout
    assert payout.payout_amount_ban_per_kill == Decimal("2.1")
    assert str(payout.payout_amount_ban_per_kill) == "2.1"
    assert payout.payout_amount_raw_per_kill == 21 * 10**28
    assert payout.scheduler_minutes == 20
    assert payout.daily_payout_cap == 1
    assert payout.weekly_payout_cap == 3
    assert payout.reset_tz == "UTC"
    assert payout.zone == ZoneInfo("UTC")
    assert payout.settlement_order == "random"
    assert payout.batch_size == 0
    assert payout.daily_kill_cap == 0
    assert payout.weekly_kill_cap == 0
    assert payout.confirmation_timeout_seconds == 600
    assert payout.reset_rule.lower_readings == 3


def test_integrations_defaults(defaults: Settings) -> None:
    integrations = defaults.integrations
    assert integrations.chain_env == "testnet"
    assert integrations.node_rpc == ""
    assert integrations.min_operator_balance_ban == Decimal(50)
    assert integrations.min_operator_balance_raw == 50 * 10**29
    assert integrations.dry_run is True
    assert integrations.yunite_api_key is None
    assert integrations.yunite_guild_id == ""
    assert integrations.discord_guild_id == ""
    assert integrations.discord_oauth_client_id is None
    assert integrations.discord_oauth_client_secret is None
    assert integrations.discord_redirect_uri == "http://localhost:3000/auth/discord/callback"
    assert integrations.oauth_scopes == ["identify", "guilds"]
    assert integrations.fortnite_api_key is None
    assert integrations.rate_limits.fortnite_per_min == 60
    assert integrations.abuse_heuristics.kill_rate_per_min == Decimal(10)
    assert integrations.yunite_api_url == ""
    assert integrations.fortnite_api_url == ""
    assert integrations.discord_api_url == ""
    assert integrations.discord_authorize_url == ""
    assert integrations.yunite_cache_seconds == 60


def test_integrations_nested_defaults(defaults: Settings) -> None:
    banano = defaults.integrations.banano
    assert banano.signer == "local"
    assert banano.node_wallet_id == ""
    assert banano.representative == ""
    assert banano.work_sources == ["node", "local"]
    assert banano.work_server_url == ""
    assert banano.work_threshold == "fffffe0000000000"
    assert banano.rpc_timeout_seconds == 10
    assert banano.explorer_block_url == "https://creeper.banano.cc/hash/{block_hash}"

    discord = defaults.integrations.discord
    assert discord.admin_role_ids == []
    assert discord.admin_user_ids == []
    assert discord.payout_dms is True

    database = defaults.integrations.database
    assert database.url == "sqlite+aiosqlite:///data/pay2slay.db"
    assert database.migrate_on_start is True

    server = defaults.integrations.server
    assert server.host == "127.0.0.1"
    assert server.port == 8000
    assert server.trusted_region_header == ""
    assert server.geoip_database == ""

    observability = defaults.integrations.observability
    assert observability.log_format == "auto"
    assert observability.log_level == "INFO"
    assert observability.otlp_endpoint == ""


def test_product_defaults(defaults: Settings) -> None:
    product = defaults.product
    assert product.app_name == "Pay2Slay Faucet"
    assert product.org_name == "Example Org"
    assert product.banner_url == ""
    assert product.media_kit_url == ""
    assert product.default_locale == "en"
    assert product.feature_flags.dry_run_banner is True


def test_secrets_default_to_unset(defaults: Settings) -> None:
    secrets = defaults.secrets
    assert secrets.discord_bot_token is None
    assert secrets.operator_seed is None
    assert secrets.session_secret is None
    assert secrets.metrics_token is None


def test_defaults_point_at_no_other_host(defaults: Settings) -> None:
    integrations = defaults.integrations
    for url in (
        integrations.node_rpc,
        integrations.yunite_api_url,
        integrations.fortnite_api_url,
        integrations.discord_api_url,
        integrations.discord_authorize_url,
        integrations.banano.work_server_url,
        integrations.observability.otlp_endpoint,
    ):
        assert url == ""
    assert defaults.integrations.server.host == "127.0.0.1"


def test_config_dir_from_environment(shipped_config_dir: Path) -> None:
    settings = load_settings(environ={"P2S_CONFIG_DIR": str(shipped_config_dir)})
    assert settings.config_dir == shipped_config_dir


def test_config_dir_argument_wins(shipped_config_dir: Path, tmp_path: Path) -> None:
    environ = {"P2S_CONFIG_DIR": str(tmp_path / "elsewhere")}
    settings = load_settings(shipped_config_dir, environ=environ)
    assert settings.config_dir == shipped_config_dir


def test_config_dir_defaults_to_configs(
    shipped_config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shipped_config_dir.parent)
    settings = load_settings(environ={})
    assert settings.config_dir == Path("configs")


def test_settings_are_frozen(defaults: Settings) -> None:
    with pytest.raises(ValueError, match="frozen"):
        defaults.payout.scheduler_minutes = 5  # type: ignore[misc]


def test_live_configuration_loads(config_dir: Path, full_environ: dict[str, str]) -> None:
    settings = load_settings(config_dir, environ=full_environ)
    assert settings.integrations.dry_run is False
    assert settings.secrets.operator_seed is not None
    settings.check_for_run()


def test_empty_file_lists_missing_keys(shipped_config_dir: Path, tmp_path: Path) -> None:
    # Every key is required, so an empty file lists each missing key of its section.
    empty = tmp_path / "configs"
    empty.mkdir()
    for name in ("payout.yaml", "integrations.yaml", "product.yaml"):
        (empty / name).write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(empty, environ={})
    missing = {problem.key for problem in caught.value.problems}
    assert "payout.scheduler_minutes" in missing
    assert "integrations.banano" in missing
    assert "product.feature_flags" in missing
    assert all(problem.message == "missing key" for problem in caught.value.problems)


def test_unquoted_discord_id_becomes_text(config_dir: Path) -> None:
    path = config_dir / "integrations.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('discord_guild_id: ""', "discord_guild_id: 123456789012345678"),
        encoding="utf-8",
    )
    settings = load_settings(config_dir, environ={})
    assert settings.integrations.discord_guild_id == "123456789012345678"


def test_valid_representative_accepted(config_dir: Path) -> None:
    environ = {"P2S_INTEGRATIONS__BANANO__REPRESENTATIVE": BURN_ADDRESS}
    settings = load_settings(config_dir, environ=environ)
    assert settings.integrations.banano.representative == BURN_ADDRESS


def test_work_threshold_value(defaults: Settings) -> None:
    assert defaults.integrations.banano.work_threshold_value == 0xFFFFFE0000000000
