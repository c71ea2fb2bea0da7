"""The Dockerfile read as text: stages, user, volume, health check and the install command.

Docker is not needed: the health check's command runs here against a real side server, and
tests/integration/ops/test_image_install.py repeats the build stage's install.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from bot.web.health import add_health_routes
from tests.unit.ops.helpers_web import health_config

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """Return (instruction, arguments) pairs with continuation lines joined."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    pairs = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def stages() -> dict[str, list[tuple[str, str]]]:
    """Split the instructions by stage name; ARG lines before the first FROM go under ''."""
    found: dict[str, list[tuple[str, str]]] = {"": []}
    name = ""
    for instruction, arguments in instructions():
        if instruction == "FROM":
            name = arguments.split(" AS ")[-1].strip()
            found[name] = []
        found[name].append((instruction, arguments))
    return found


def _only(stage: list[tuple[str, str]], instruction: str) -> str:
    (value,) = [arguments for name, arguments in stage if name == instruction]
    return value


def test_multi_stage_slim_python() -> None:
    found = stages()
    assert list(found) == ["", "build", "runtime"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in found[""]
    assert _only(found["build"], "FROM") == "${PYTHON_IMAGE} AS build"
    assert _only(found["runtime"], "FROM") == "${PYTHON_IMAGE} AS runtime"


def test_build_installs_with_constraints() -> None:
    build = stages()["build"]
    runs = [arguments for name, arguments in build if name == "RUN"]
    install = [command for command in runs if "pip install" in command]
    assert len(install) == 1
    assert "-c constraints.txt" in install[0]
    copied = [arguments.split()[0] for name, arguments in build if name == "COPY"]
    assert copied == ["pyproject.toml", "bot", "cogs", "core"]
    first_copy = next(arguments for name, arguments in build if name == "COPY")
    assert first_copy.split() == ["pyproject.toml", "constraints.txt", "README.md", "./"]


def test_runtime_runs_as_non_root_with_data_volume() -> None:
    runtime = stages()["runtime"]
    user = _only(runtime, "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert json.loads(_only(runtime, "VOLUME")) == ["/data"]
    assert json.loads(_only(runtime, "ENTRYPOINT")) == ["pay2slay"]
    assert json.loads(_only(runtime, "CMD")) == ["run"]
    environment = _only(runtime, "ENV")
    assert "P2S_INTEGRATIONS__DATABASE__URL=sqlite+aiosqlite:////data/pay2slay.db" in environment
    assert "P2S_CONFIG_DIR=/app/configs" in environment
    copies = [arguments for name, arguments in runtime if name == "COPY"]
    assert "configs /app/configs" in copies


def test_copied_paths_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for name in (
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "bot",
        "cogs",
        "core",
        "configs",
    ):
        assert (ROOT / name).exists(), name
        assert name not in ignored, name
    for name in (".venv", ".git", "tests", "*.db", ".env*"):
        assert name in ignored, name


def _healthcheck_command() -> list[str]:
    runtime = stages()["runtime"]
    arguments = _only(runtime, "HEALTHCHECK")
    options, _, command = arguments.partition(" CMD ")
    assert "--interval=" in options
    parsed: list[str] = json.loads(command)
    return parsed


async def test_healthcheck_command_against_server() -> None:
    command = _healthcheck_command()
    assert command[:2] == ["python", "-c"]

    app = web.Application()
    add_health_routes(app, health_config())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    environ = {**os.environ, "P2S_INTEGRATIONS__SERVER__PORT": str(port)}
    try:
        healthy = await _run([sys.executable, *command[1:]], environ)
    finally:
        await runner.cleanup()
    stopped = await _run([sys.executable, *command[1:]], environ)

    assert healthy.returncode == 0, healthy.stderr
    assert stopped.returncode != 0


async def _run(argv: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # In a thread, so that the server on this event loop can handle the request.
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, env=environ, timeout=30, check=False
        )

    return await asyncio.to_thread(run)


def test_healthcheck_targets_loopback() -> None:
    command = _healthcheck_command()
    assert "http://127.0.0.1:" in command[2]
    assert "/healthz" in command[2]
