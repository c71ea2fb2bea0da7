"""Database URLs: driver selection, SQLite file paths, and no password in errors or repr."""

from __future__ import annotations

import pytest
import structlog
from sqlalchemy.engine import make_url

from core.db import Database, DatabaseUrlError
from core.db.session import masked_url, normalize_url, sqlite_file_path


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///data/pay2slay.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///data/pay2slay.db", "sqlite+aiosqlite"),
        ("postgresql://user@localhost/pay2slay", "postgresql+asyncpg"),
        ("postgres://user@localhost/pay2slay", "postgresql+asyncpg"),
        ("postgresql+asyncpg://user@localhost/pay2slay", "postgresql+asyncpg"),
    ],
)
def test_normalize_url_selects_async_driver(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize(
    "given",
    ["mysql://user:hunter2@localhost/db", "postgresql+psycopg2://user:hunter2@localhost/db"],
)
def test_normalize_url_rejects_other_drivers(given: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_url(given)

    assert "not supported" in raised.value.safe_message
    assert "hunter2" not in str(raised.value)


def test_normalize_url_rejects_garbage() -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_url("not a url hunter2")

    assert "invalid" in raised.value.safe_message
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "path"),
    [
        ("sqlite+aiosqlite:///data/pay2slay.db", "data/pay2slay.db"),
        ("sqlite+aiosqlite:////var/lib/pay2slay.db", "/var/lib/pay2slay.db"),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("postgresql+asyncpg://user@localhost/pay2slay", None),
    ],
)
def test_sqlite_file_path(given: str, path: str | None) -> None:
    found = sqlite_file_path(make_url(given))

    assert (None if found is None else str(found)) == path


async def test_repr_hides_password() -> None:
    db = Database.from_url("postgresql://user:hunter2@127.0.0.1:5432/pay2slay")
    try:
        assert "hunter2" not in repr(db)
        assert "127.0.0.1" in repr(db)
    finally:
        await db.dispose()


def test_search_path_rejected_for_sqlite() -> None:
    with pytest.raises(DatabaseUrlError, match="PostgreSQL only"):
        Database.from_url("sqlite:///data/pay2slay.db", search_path="pay2slay")


@pytest.mark.parametrize("schema", ["Pay2Slay", "a-b", "x; DROP TABLE players", "1abc", ""])
def test_search_path_rejects_invalid_names(schema: str) -> None:
    with pytest.raises(DatabaseUrlError, match="schema name"):
        Database.from_url("postgresql://user@127.0.0.1/pay2slay", search_path=schema)


@pytest.mark.parametrize(
    "given",
    [
        "postgresql+asyncpg://u:hunter2@[::1/x",
        "postgresql+asyncpg://u:hunter2@127.0.0.1:port/x",
    ],
)
def test_normalize_url_rejects_malformed_host(given: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_url(given)

    assert "invalid" in raised.value.safe_message
    assert "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1/pay2slay?password=hunter2",
        "postgresql://u@127.0.0.1/pay2slay?sslpassword=hunter2&sslmode=require",
        "postgresql://u:hunter2@127.0.0.1/pay2slay?application_token=hunter2",
    ],
)
def test_masked_url_hides_query_secrets(url: str) -> None:
    shown = masked_url(make_url(url))

    assert "hunter2" not in shown
    assert shown.startswith("postgresql://u")
    assert "127.0.0.1/pay2slay?" in shown


async def test_repr_and_log_hide_query_password() -> None:
    url = "postgresql+asyncpg://u@127.0.0.1/pay2slay?password=hunter2"
    with structlog.testing.capture_logs() as logs:
        db = Database.from_url(url)
    try:
        assert "hunter2" not in repr(db)
        [created] = [entry for entry in logs if entry["event"] == "database_engine_created"]
        assert "hunter2" not in str(created)
        assert created["url"].endswith("?password=**********")
    finally:
        await db.dispose()
