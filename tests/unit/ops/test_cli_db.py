"""The `pay2slay db backup|restore|prune` commands: arguments and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import build_parser, main


def test_db_group_has_backup_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["db", "backup", "/tmp/x.db", "--overwrite"])
    assert args.path == Path("/tmp/x.db")
    assert args.overwrite is True
    args = parser.parse_args(["db", "restore", "b.db", "--yes", "--no-keep-previous"])
    assert args.keep_previous is False
    args = parser.parse_args(["db", "prune", "--dry-run"])
    assert args.dry_run is True


def test_restore_requires_yes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "restore", "backup.db", "--database-url", "sqlite:///x.db"]) == 2
    assert "--yes" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["backup", "out.db"], ["restore", "in.db", "--yes"]])
def test_backup_commands_reject_postgresql(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    assert main(["db", *command, "--database-url", url]) == 2
    assert "pg_dump" in capsys.readouterr().err


def test_backup_rejects_invalid_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "backup", "out.db", "--database-url", "mysql://127.0.0.1/x"]) == 2
    assert "not supported" in capsys.readouterr().err


def test_backup_of_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}"
    assert main(["db", "backup", str(tmp_path / "out.db"), "--database-url", url]) == 1
    assert "was not found" in capsys.readouterr().err
    assert not (tmp_path / "out.db").exists()
