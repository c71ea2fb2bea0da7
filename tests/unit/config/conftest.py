"""Fixtures for configuration tests: a writable copy of the shipped configs and live secrets."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.config import ConfigError, ConfigProblem, load_settings
from core.observability import reset_logging

SHIPPED_CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"

# Distinctive values, so a leak shows up in a plain substring search.
OPERATOR_SEED = "5eed" * 16
SESSION_SECRET = "session-SEKRET-4c1d-0a7e-9b3f-5d2e-8f6a"
BOT_TOKEN = "bot-token-SEKRET-91f3e"
YUNITE_KEY = "yunite-SEKRET-5be02"
FORTNITE_KEY = "fortnite-SEKRET-77d1c"
CLIENT_SECRET = "client-SEKRET-0c4aa"
METRICS_TOKEN = "metrics-SEKRET-d3d3"
ALL_SECRETS = (
    OPERATOR_SEED,
    SESSION_SECRET,
    BOT_TOKEN,
    YUNITE_KEY,
    FORTNITE_KEY,
    CLIENT_SECRET,
    METRICS_TOKEN,
)

EditConfig = Callable[[str, str, str], None]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo the logging set-up that `pay2slay config check` installs, after each test."""
    yield
    reset_logging()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped configuration directory that a test may change."""
    target = tmp_path / "configs"
    shutil.copytree(SHIPPED_CONFIG_DIR, target)
    return target


@pytest.fixture
def edit_config(config_dir: Path) -> EditConfig:
    """Replace one exact line fragment in a copied file; fails if the fragment is absent."""

    def edit(file_name: str, old: str, new: str) -> None:
        path = config_dir / file_name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {file_name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


@pytest.fixture
def full_environ() -> dict[str, str]:
    """Every secret and run setting set, so a live configuration loads and passes the run check."""
    return {
        "P2S_OPERATOR_SEED": OPERATOR_SEED,
        "P2S_SESSION_SECRET": SESSION_SECRET,
        "P2S_DISCORD_BOT_TOKEN": BOT_TOKEN,
        "P2S_METRICS_TOKEN": METRICS_TOKEN,
        "YUNITE_API_KEY": YUNITE_KEY,
        "FORTNITE_API_KEY": FORTNITE_KEY,
        "DISCORD_CLIENT_SECRET": CLIENT_SECRET,
        "DISCORD_CLIENT_ID": "123456789012345678",
        "P2S_INTEGRATIONS__DRY_RUN": "false",
        "P2S_INTEGRATIONS__NODE_RPC": "http://127.0.0.1:7072",
        "P2S_INTEGRATIONS__DISCORD_GUILD_ID": "223456789012345678",
        "P2S_INTEGRATIONS__YUNITE_GUILD_ID": "223456789012345678",
        "P2S_INTEGRATIONS__YUNITE_API_URL": "http://127.0.0.1:9001/api/v3",
        "P2S_INTEGRATIONS__FORTNITE_API_URL": "http://127.0.0.1:9002",
        "P2S_INTEGRATIONS__DISCORD_API_URL": "http://127.0.0.1:9003/api/v10",
        "P2S_INTEGRATIONS__DISCORD_AUTHORIZE_URL": "http://127.0.0.1:9003/oauth2/authorize",
    }


@pytest.fixture
def secret_values() -> tuple[str, ...]:
    """Every secret that `full_environ` sets; none may appear in output."""
    return ALL_SECRETS


@pytest.fixture
def shipped_config_dir() -> Path:
    """The configs/ directory of the repository."""
    return SHIPPED_CONFIG_DIR


LoadProblems = Callable[..., list[ConfigProblem]]


@pytest.fixture
def load_problems(config_dir: Path) -> LoadProblems:
    """Load the copied configuration, expect `ConfigError`, and return its problems."""

    def load(environ: dict[str, str] | None = None) -> list[ConfigProblem]:
        with pytest.raises(ConfigError) as caught:
            load_settings(config_dir, environ=environ or {})
        return caught.value.problems

    return load
