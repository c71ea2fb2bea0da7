"""The Dockerfile's build stage, run without Docker: the same COPY and pip install in a clean venv.

This needs the package index that pip is configured with, and takes about half a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.ops.test_dockerfile import stages

ROOT = Path(__file__).resolve().parents[3]
VENV_PLACEHOLDER = "/opt/pay2slay"

pytestmark = pytest.mark.slow


def _copy_context(build: list[tuple[str, str]], destination: Path) -> None:
    for instruction, arguments in build:
        if instruction != "COPY":
            continue
        *sources, target = arguments.split()
        for source in sources:
            origin = ROOT / source
            place = destination / (source if target in ("./", ".") else target.removeprefix("./"))
            if origin.is_dir():
                shutil.copytree(
                    origin, place, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(origin, place)


def test_build_stage_installs_into_clean_venv(tmp_path: Path) -> None:
    build = stages()["build"]
    source = tmp_path / "src"
    source.mkdir()
    _copy_context(build, source)
    venv = tmp_path / "venv"

    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTHON"))
    }
    environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    environ["EXTRAS"] = ""
    for instruction, arguments in build:
        if instruction != "RUN":
            continue
        command = arguments.replace("python -m venv", f"{sys.executable} -m venv")
        command = command.replace(VENV_PLACEHOLDER, str(venv))
        result = subprocess.run(  # noqa: S602 - the Dockerfile's own shell command
            command,
            shell=True,
            cwd=source,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"

    # Run the installed package from outside the source tree, as the image does.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    program = (
        "import bot.cli, bot.web.health as health, core.db.migrate as migrate\n"
        "assert 'openapi: 3.1.0' in health.openapi_document()\n"
        "print(migrate.head_revision())\n"
        "print(bot.cli.__file__)\n"
    )
    result = subprocess.run(
        [str(venv / "bin/python"), "-c", program],
        cwd=outside,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    revision, location = result.stdout.split()
    assert revision
    assert location.startswith(str(venv))

    check = subprocess.run(
        [str(venv / "bin/pay2slay"), "config", "check", "--config-dir", str(ROOT / "configs")],
        cwd=outside,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "dry_run: true" in check.stdout

    frozen = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = {
        line.split("==")[0].lower(): line
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    for line in frozen.splitlines():
        name = line.split("==")[0].lower()
        if name in pins:
            assert line == pins[name], f"{line} does not match constraints.txt"
