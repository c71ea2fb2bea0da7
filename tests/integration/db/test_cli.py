"""`pay2slay db upgrade`, `db downgrade` and `db current` on a SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from core.db import Database
from core.db.migrate import head_revision, is_at_head

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
    url = f"sqlite:///{tmp_path / 'pay2slay.db'}"

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
