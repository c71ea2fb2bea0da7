"""The Akash SDL: one container, persistent /data, every variable once, no inline secret.

Its placeholders start with AKASH_, so a deployer's environment file cannot collide with the
variables the configuration loader reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from core.config import load_settings
from core.config.docs import render_configuration_markdown
from core.config.expansion import REFERENCE_PATTERN
from core.config.loader import CONFIG_DIR_VARIABLE
from core.config.overrides import override_variable
from core.config.schema import SECTION_MODELS, leaf_fields, secret_keys
from core.config.secrets import SECRETS_DIR_VARIABLE, SecretSettings, secret_variable
from core.config.yaml_source import read_yaml_file

ROOT = Path(__file__).resolve().parents[3]
SDL = ROOT / "deploy/akash/deploy.yaml"
CONFIGS = ROOT / "configs"
OPERATIONS = ROOT / "docs/operations.md"

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
PLACEHOLDER_PREFIX = "AKASH_"

# A valid value for each placeholder that needs one. The URL placeholders get a loopback URL.
SAMPLES = {
    "AKASH_CHAIN_ENV": "testnet",
    "AKASH_DRY_RUN": "true",
    "AKASH_NODE_RPC": "http://127.0.0.1:7072",
    "AKASH_DISCORD_GUILD_ID": "500000000000000001",
    "AKASH_YUNITE_GUILD_ID": "500000000000000001",
    "AKASH_DISCORD_REDIRECT_URI": "https://127.0.0.1/auth/discord/callback",
    "AKASH_ADMIN_ROLE_IDS": "[500000000000000002]",
    "AKASH_DISCORD_CLIENT_ID": "300000000000000001",
    "AKASH_OPERATOR_SEED": "0" * 64,
    "AKASH_SESSION_SECRET": "s" * 40,
}


def _placeholders() -> set[str]:
    """Every ${NAME} in the SDL outside comments, the image included."""
    lines = SDL.read_text(encoding="utf-8").splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return set(_PLACEHOLDER.findall(code))


def _sample(placeholder: str) -> str:
    return SAMPLES.get(placeholder, "http://127.0.0.1:9")


def _sdl() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SDL.read_text(encoding="utf-8"))
    return document


def _env() -> list[tuple[str, str]]:
    (service,) = _sdl()["services"].values()
    pairs = []
    for entry in service["env"]:
        name, separator, value = entry.partition("=")
        assert separator, entry
        pairs.append((name, value))
    return pairs


def _yaml_references() -> dict[str, bool]:
    """Variables named by ${NAME} in the shipped YAML files, and whether each is a secret."""
    secrets = secret_keys()
    found: dict[str, bool] = {}
    for section in SECTION_MODELS:
        data = read_yaml_file(CONFIGS / f"{section}.yaml", section)
        for key, value in _flatten(data, section):
            for match in REFERENCE_PATTERN.finditer(str(value)):
                found[match.group("name")] = key in secrets
    return found


def _flatten(data: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items.extend(_flatten(value, f"{prefix}.{key}"))
        return items
    return [(prefix, data)]


def _secret_variables() -> set[str]:
    names = {secret_variable(name) for name in SecretSettings.model_fields}
    names.update(name for name, secret in _yaml_references().items() if secret)
    return names


def _known_variables() -> set[str]:
    names = {CONFIG_DIR_VARIABLE, SECRETS_DIR_VARIABLE}
    names.update(secret_variable(name) for name in SecretSettings.model_fields)
    names.update(_yaml_references())
    for section, model in SECTION_MODELS.items():
        names.update(override_variable(key) for key, _ in leaf_fields(model, section))
    return names


def test_sdl_version_and_single_service() -> None:
    sdl = _sdl()
    assert sdl["version"] == "2.0"
    assert list(sdl["services"]) == ["pay2slay"]
    deployment = sdl["deployment"]["pay2slay"]
    (placement,) = deployment.values()
    assert placement["count"] == 1
    assert placement["profile"] == "pay2slay"


def test_sdl_persistent_data_volume() -> None:
    sdl = _sdl()
    storage = sdl["services"]["pay2slay"]["params"]["storage"]
    assert storage == {"data": {"mount": "/data", "readOnly": False}}
    volumes = sdl["profiles"]["compute"]["pay2slay"]["resources"]["storage"]
    (data,) = [volume for volume in volumes if volume.get("name") == "data"]
    assert data["attributes"]["persistent"] is True


def test_sdl_variables_listed_once() -> None:
    names = [name for name, _ in _env()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_sdl_variables_known_to_config_loader() -> None:
    unknown = {name for name, _ in _env()} - _known_variables()
    assert not unknown


def test_sdl_secrets_are_placeholders() -> None:
    env = dict(_env())
    for name in _secret_variables():
        assert name in env, f"{name} missing from the SDL"
        # P2S_OPERATOR_SEED is filled from AKASH_OPERATOR_SEED, YUNITE_API_KEY from
        # AKASH_YUNITE_API_KEY.
        expected = PLACEHOLDER_PREFIX + name.removeprefix("P2S_")
        assert env[name] == f"${{{expected}}}", f"{name} must be the placeholder {expected}"


def test_sdl_placeholders_outside_loader_names() -> None:
    placeholders = _placeholders()
    known = _known_variables()

    assert "AKASH_IMAGE" in placeholders
    for placeholder in placeholders:
        assert placeholder.startswith(PLACEHOLDER_PREFIX), placeholder
        assert placeholder not in known, placeholder


def test_exported_placeholders_leave_configuration_unchanged() -> None:
    # A deployer exports the filled-in placeholders to run envsubst. A pay2slay command in
    # the same shell must load exactly what it loads without them.
    exported = {placeholder: _sample(placeholder) for placeholder in _placeholders()}

    assert load_settings(CONFIGS, exported) == load_settings(CONFIGS, {})


def test_sdl_literal_values_are_valid_configuration() -> None:
    # Fill every placeholder with a valid value and load the configuration as the bot would.
    environ = {"P2S_CONFIG_DIR": str(CONFIGS)}
    for name, value in _env():
        if name == CONFIG_DIR_VARIABLE:
            continue
        placeholder = _PLACEHOLDER.fullmatch(value)
        if placeholder is None:
            environ[name] = value
        else:
            environ[name] = _sample(placeholder.group(1))

    settings = load_settings(CONFIGS, environ)

    assert settings.integrations.database.url == "sqlite+aiosqlite:////data/pay2slay.db"
    assert settings.integrations.server.host == "0.0.0.0"  # noqa: S104
    assert settings.integrations.server.port == 8000
    assert settings.integrations.observability.log_format == "json"


def test_sdl_variables_documented() -> None:
    operations = OPERATIONS.read_text(encoding="utf-8")
    configuration = render_configuration_markdown(CONFIGS)
    for name, _ in _env():
        assert f"`{name}`" in operations or f"`{name}`" in configuration, name
    for placeholder in _placeholders():
        assert f"`{placeholder}`" in operations, placeholder


def test_sdl_has_no_secret_looking_literal() -> None:
    for name, value in _env():
        if _PLACEHOLDER.fullmatch(value):
            continue
        assert not re.fullmatch(r"[0-9A-Fa-f]{64}", value), name
        assert "token" not in name.lower(), name
        assert "secret" not in name.lower(), name
