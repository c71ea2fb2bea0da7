"""Passwords and tokens in URLs: masked wherever shown, rejected when written into a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.config import load_settings, render_effective
from core.config.urls import MASK, mask_url_secrets, url_has_secret

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems

SECRET = "S3CRET-a1b2"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql+asyncpg://u:{SECRET}@127.0.0.1/x",
            f"postgresql+asyncpg://u:{MASK}@127.0.0.1/x",
        ),
        (
            f"postgresql+asyncpg://u@127.0.0.1/x?password={SECRET}",
            f"postgresql+asyncpg://u@127.0.0.1/x?password={MASK}",
        ),
        (
            f"postgresql://u@h/x?sslmode=require&sslpassword={SECRET}",
            f"postgresql://u@h/x?sslmode=require&sslpassword={MASK}",
        ),
        (
            f"https://h/x?Access_Token={SECRET}&client_secret={SECRET}&PWD={SECRET}",
            f"https://h/x?Access_Token={MASK}&client_secret={MASK}&PWD={MASK}",
        ),
        (f"postgresql://u@h/x?pass%77ord={SECRET}", f"postgresql://u@h/x?pass%77ord={MASK}"),
        # Unparseable by urllib and SQLAlchemy, yet still masked.
        (f"postgresql+asyncpg://u:{SECRET}@[::1/x", f"postgresql+asyncpg://u:{MASK}@[::1/x"),
        # SQLAlchemy reads "/" and "?" as part of the password; urllib reads "@".
        (f"postgresql://u:a/b?{SECRET}@h/x", f"postgresql://u:{MASK}@h/x"),
        (f"http://u:a@{SECRET}@h/x", f"http://u:{MASK}@h/x"),
        (f"http://h/x?token={SECRET}@y", f"http://h/x?token={MASK}"),
    ],
)
def test_url_secrets_masked(url: str, masked: str) -> None:
    assert mask_url_secrets(url) == masked
    assert url_has_secret(url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///data/pay2slay.db",
        "postgresql+asyncpg://u@127.0.0.1:5432/x?sslmode=require",
        "postgresql://u:@h/x?password=",
        "https://creeper.banano.cc/hash/{block_hash}",
        "not a url?password=x",
    ],
)
def test_url_without_secret_unchanged(url: str) -> None:
    assert mask_url_secrets(url) == url
    assert not url_has_secret(url)


def test_query_password_masked_in_output(config_dir: Path) -> None:
    url = f"postgresql+asyncpg://u@127.0.0.1/x?password={SECRET}"

    settings = load_settings(config_dir, environ={"P2S_INTEGRATIONS__DATABASE__URL": url})

    assert settings.integrations.database.url == url
    assert SECRET not in render_effective(settings)
    assert SECRET not in repr(settings)
    assert f"?password={MASK}" in render_effective(settings)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://u@127.0.0.1/x?password={SECRET}",
        f"postgresql+asyncpg://u@127.0.0.1/x?sslpassword={SECRET}",
        f"postgresql+asyncpg://u:{SECRET}@127.0.0.1/x",
    ],
)
def test_literal_url_secret_rejected(
    edit_config: EditConfig, load_problems: LoadProblems, url: str
) -> None:
    edit_config("integrations.yaml", '"sqlite+aiosqlite:///data/pay2slay.db"', f'"{url}"')

    [problem] = load_problems()

    assert problem.key == "integrations.database.url"
    assert problem.message == "contains a URL with a password or token"
    assert SECRET not in str(problem)


def test_url_password_from_reference_accepted(edit_config: EditConfig, config_dir: Path) -> None:
    edit_config(
        "integrations.yaml",
        '"sqlite+aiosqlite:///data/pay2slay.db"',
        '"postgresql+asyncpg://u@127.0.0.1/x?password=${DB_PASSWORD}"',
    )

    settings = load_settings(config_dir, environ={"DB_PASSWORD": SECRET})

    assert settings.integrations.database.url.endswith(f"?password={SECRET}")
    assert SECRET not in render_effective(settings)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://u:{SECRET}@[::1/x",
        f"postgresql+asyncpg://u:{SECRET}@127.0.0.1:port/x",
    ],
)
def test_unparseable_database_url_is_problem(load_problems: LoadProblems, url: str) -> None:
    [problem] = load_problems({"P2S_INTEGRATIONS__DATABASE__URL": url})

    assert problem.key == "integrations.database.url"
    assert problem.source == "P2S_INTEGRATIONS__DATABASE__URL"
    assert problem.message.startswith("the database URL is invalid")
    assert SECRET not in str(problem)


def test_unsupported_database_driver_is_problem(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_INTEGRATIONS__DATABASE__URL": "mysql://u@127.0.0.1/x"})

    assert problem.key == "integrations.database.url"
    assert "'mysql' is not supported" in problem.message


def test_secret_values_include_url_secrets(
    config_dir: Path, full_environ: dict[str, str], secret_values: tuple[str, ...]
) -> None:
    url = f"postgresql+asyncpg://u:pass%2Fword@127.0.0.1/x?sslpassword={SECRET}"
    environ = {**full_environ, "P2S_INTEGRATIONS__DATABASE__URL": url}

    found = load_settings(config_dir, environ=environ).secret_values()

    assert set(secret_values) <= set(found)
    assert {SECRET, "pass%2Fword", "pass/word"} <= set(found)
