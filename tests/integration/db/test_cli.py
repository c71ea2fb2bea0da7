"""`pay2slay db` commands on a SQLite file, and `--schema` on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.cli import main
from core.db import Database
from core.db.migrate import head_revision, is_at_head
from tests.conftest import POSTGRES_URL

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


async def migrated(url: str) -> bool:
    db = Database.from_url(url)
    try:
        return await is_at_head(db)
    finally:
        await db.dispose()


def test_db_upgrade_creates_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data" / "pay2slay.db"
    url = f"sqlite+aiosqlite:///{path}"

    assert main(["db", "upgrade", "--database-url", url]) == 0

    assert path.is_file()
    assert f"upgraded from base to {head_revision()} (head)" in capsys.readouterr().out


def test_db_upgrade_schema_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"

    assert main(["db", "upgrade", "--database-url", url]) == 0

    assert asyncio.run(migrated(url))


def test_db_upgrade_uses_configured_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "configured.db"
    monkeypatch.setenv("P2S_INTEGRATIONS__DATABASE__URL", f"sqlite+aiosqlite:///{path}")

    assert main(["db", "upgrade", "--config-dir", str(CONFIG_DIR)]) == 0
    assert main(["db", "upgrade", "--config-dir", str(CONFIG_DIR)]) == 0

    assert path.is_file()
    assert f"already at revision {head_revision()}" in capsys.readouterr().out


def test_db_current_reports_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pay2slay.db"
    path.touch()
    url = f"sqlite:///{path}"

    assert main(["db", "current", "--database-url", url]) == 0
    assert "at base" in capsys.readouterr().out

    main(["db", "upgrade", "--database-url", url])
    capsys.readouterr()
    assert main(["db", "current", "--database-url", url]) == 0
    assert f"at revision {head_revision()} (head)" in capsys.readouterr().out


def test_db_downgrade_requires_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"
    main(["db", "upgrade", "--database-url", url])

    assert main(["db", "downgrade", "base", "--database-url", url]) == 2

    assert "--yes" in capsys.readouterr().err


def test_db_downgrade_to_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"
    main(["db", "upgrade", "--database-url", url])

    assert main(["db", "downgrade", "base", "--yes", "--database-url", url]) == 0

    assert f"downgraded from {head_revision()} to base" in capsys.readouterr().out


def test_db_downgrade_unknown_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"
    main(["db", "upgrade", "--database-url", url])

    assert main(["db", "downgrade", "nope", "--yes", "--database-url", url]) == 1

    assert "db downgrade failed" in capsys.readouterr().err


def test_db_upgrade_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["db", "upgrade", "--database-url", "mysql://user:hunter2@127.0.0.1/x"])

    assert exit_code == 1
    error = capsys.readouterr().err
    assert "not supported" in error
    assert "hunter2" not in error


def test_db_upgrade_unopenable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'pay2slay.db'}"

    assert main(["db", "upgrade", "--database-url", url]) == 1

    assert "db upgrade failed" in capsys.readouterr().err


def test_db_upgrade_malformed_url_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["db", "upgrade", "--database-url", "postgresql+asyncpg://u:S3CRET@[::1/x"])

    output = capsys.readouterr()
    assert exit_code == 1
    assert "db upgrade failed: The database URL is invalid" in output.err
    assert "S3CRET" not in output.out + output.err


def test_db_upgrade_log_masks_query_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_FORMAT", "json")
    # Port 1 on loopback refuses the connection, after the engine has been created.
    url = "postgresql+asyncpg://u@127.0.0.1:1/x?password=S3CRET-91"

    exit_code = main(["db", "upgrade", "--database-url", url])

    output = capsys.readouterr()
    assert exit_code == 1
    assert "database_engine_created" in output.err
    assert "?password=**********" in output.err
    assert "S3CRET-91" not in output.out + output.err


def test_db_logs_follow_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_LEVEL", "ERROR")

    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert main(["db", "current", "--database-url", url]) == 0

    output = capsys.readouterr()
    assert output.out.splitlines() == [
        f"database upgraded from base to {head_revision()} (head)",
        f"database at revision {head_revision()} (head)",
    ]
    assert output.err == ""


def test_db_logs_go_to_stderr_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("P2S_INTEGRATIONS__OBSERVABILITY__LOG_FORMAT", "json")

    assert main(["db", "upgrade", "--database-url", url]) == 0

    output = capsys.readouterr()
    assert output.out == f"database upgraded from base to {head_revision()} (head)\n"
    events = [json.loads(line)["event"] for line in output.err.splitlines()]
    assert "database_engine_created" in events
    assert "database_migrated" in events


def test_db_command_reports_config_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2S_DRY_RUN", "false")
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"

    assert main(["db", "upgrade", "--database-url", url]) == 2

    output = capsys.readouterr()
    assert "did you mean P2S_INTEGRATIONS__DRY_RUN?" in output.err
    assert "db upgrade failed: the configuration has problems" in output.err
    assert not (tmp_path / "pay2slay.db").exists()


def test_concurrent_upgrades_report_one_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda _: main(["db", "upgrade", "--database-url", url]), range(6)))

    lines = capsys.readouterr().out.splitlines()
    assert codes == [0] * 6
    assert len(lines) == 6
    assert lines.count(f"database upgraded from base to {head_revision()} (head)") == 1
    assert lines.count(f"database already at revision {head_revision()} (head)") == 5


@pytest.mark.parametrize("command", ["current", "downgrade", "prune"])
def test_db_command_on_missing_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "absent" / "pay2slay.db"
    extra = ["base", "--yes"] if command == "downgrade" else []

    code = main(["db", command, *extra, "--database-url", f"sqlite:///{path}"])

    assert code == 1
    assert f"db {command} failed: no database at {path}" in capsys.readouterr().err
    assert not path.parent.exists()


def test_db_current_at_unknown_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pay2slay.db"
    url = f"sqlite:///{path}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    capsys.readouterr()

    assert main(["db", "current", "--database-url", url]) == 0
    current = capsys.readouterr().out
    assert main(["db", "upgrade", "--database-url", url]) == 1
    upgrade = capsys.readouterr().err

    assert "revision 9999, which this release does not have" in current
    assert "newer release of Pay2Slay" in current
    assert "run `pay2slay db upgrade`" not in current
    assert "db upgrade failed: The database is at revision 9999" in upgrade


def test_db_schema_rejected_for_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"

    assert main(["db", "upgrade", "--database-url", url, "--schema", "ledger"]) == 1

    assert "PostgreSQL only" in capsys.readouterr().err


@pytest.mark.postgres
def test_db_schema_targets_postgresql_schema(
    postgres_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = f"p2s_cli_{secrets.token_hex(4)}"
    asyncio.run(run_admin_statement(f'CREATE SCHEMA "{schema}"'))
    capsys.readouterr()
    try:
        arguments = ["--database-url", POSTGRES_URL, "--schema", schema]
        assert main(["db", "current", *arguments]) == 0
        assert main(["db", "upgrade", *arguments]) == 0
        assert main(["db", "current", *arguments]) == 0
        lines = capsys.readouterr().out.splitlines()
        tables = asyncio.run(run_admin_scalar(schema))
    finally:
        asyncio.run(run_admin_statement(f'DROP SCHEMA "{schema}" CASCADE'))

    assert lines[0].startswith("database at base")
    assert lines[1] == f"database upgraded from base to {head_revision()} (head)"
    assert lines[2] == f"database at revision {head_revision()} (head)"
    assert tables == 1


async def run_admin_statement(statement: str) -> None:
    admin = Database.from_url(POSTGRES_URL)
    try:
        async with admin.engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


async def run_admin_scalar(schema: str) -> object:
    """Count the payouts tables in `schema`."""
    admin = Database.from_url(POSTGRES_URL)
    try:
        async with admin.engine.connect() as connection:
            return await connection.scalar(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = :schema AND table_name = 'payouts'"
                ),
                {"schema": schema},
            )
    finally:
        await admin.dispose()
