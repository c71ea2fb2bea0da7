"""/readyz against a real SQLite file and a real sandbox Banano node, failing and recovering."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.web.health import (
    HealthRoutesConfig,
    database_check,
    flag_check,
    migrations_check,
    node_check,
)
from core.banano.rpc import NodeClient, RetryPolicy
from core.db import Database
from core.db.migrate import downgrade, head_revision, upgrade_to_head
from core.observability.metrics import Metrics
from core.sandbox.banano_node import SandboxBananoNode
from tests.unit.ops.helpers_web import serve


@dataclass
class Flags:
    gateway: bool = True
    scheduler: bool = True


@dataclass
class ReadyEnv:
    path: Path
    db: Database
    node: SandboxBananoNode
    node_port: int
    flags: Flags
    base_url: str

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with ClientSession() as http, http.get(f"{self.base_url}/readyz") as response:
            return response.status, await response.json()


@pytest.fixture
async def ready_env(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[ReadyEnv]:
    path = tmp_path / "pay2slay.db"
    shutil.copyfile(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    node = SandboxBananoNode()
    url = await node.start()
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    client = NodeClient(url, timeout_seconds=2.0, read_retry=RetryPolicy(attempts=1))
    flags = Flags()
    genesis = node.genesis.address

    config = HealthRoutesConfig(
        metrics=Metrics(version="test"),
        checks={
            "database": database_check(db),
            "migrations": migrations_check(db),
            "node": node_check(lambda: client.account_balance(genesis)),
            "gateway": flag_check(lambda: flags.gateway, "not connected to the Discord gateway"),
            "scheduler": flag_check(lambda: flags.scheduler, "the scheduler is not running"),
        },
        cache_seconds=0.0,
        check_timeout_seconds=5.0,
    )
    try:
        async with serve(config) as server:
            yield ReadyEnv(path, db, node, port, flags, str(server.make_url("")).rstrip("/"))
    finally:
        await client.aclose()
        await node.stop()
        await db.dispose()


async def test_ready_with_everything_up(ready_env: ReadyEnv) -> None:
    status, body = await ready_env.readyz()

    assert status == 200
    assert body["failed"] == []
    assert body["checks"]["migrations"]["detail"] == f"at revision {head_revision()}"


async def test_database_file_removed_then_restored(ready_env: ReadyEnv) -> None:
    moved = ready_env.path.with_name("moved.db")
    await ready_env.db.dispose()
    ready_env.path.rename(moved)
    # A directory where the file was makes every new connection fail to open it.
    ready_env.path.mkdir()
    try:
        status, body = await ready_env.readyz()
    finally:
        ready_env.path.rmdir()
        moved.rename(ready_env.path)

    assert status == 503
    assert body["failed"] == ["database", "migrations"]
    assert body["checks"]["database"]["detail"] == "database unreachable (OperationalError)"
    assert body["checks"]["node"]["ok"] is True

    status, body = await ready_env.readyz()
    assert status == 200


async def test_database_behind_head_then_upgraded(ready_env: ReadyEnv) -> None:
    await downgrade(ready_env.db, "base")

    status, body = await ready_env.readyz()
    assert status == 503
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"]["detail"] == (
        f"database at revision none, expected {head_revision()}; run pay2slay db upgrade"
    )

    await upgrade_to_head(ready_env.db)
    status, _ = await ready_env.readyz()
    assert status == 200


async def test_node_stopped_then_restarted(ready_env: ReadyEnv) -> None:
    await ready_env.node.stop()

    status, body = await ready_env.readyz()
    assert status == 503
    assert body["failed"] == ["node"]
    assert body["checks"]["node"]["detail"].startswith("Banano node unreachable")

    await ready_env.node.start(port=ready_env.node_port)
    status, body = await ready_env.readyz()
    assert status == 200, body


async def test_gateway_and_scheduler_flags(ready_env: ReadyEnv) -> None:
    ready_env.flags.gateway = False
    ready_env.flags.scheduler = False

    status, body = await ready_env.readyz()
    assert status == 503
    assert body["failed"] == ["gateway", "scheduler"]
    assert body["checks"]["gateway"]["detail"] == "not connected to the Discord gateway"

    ready_env.flags.gateway = True
    ready_env.flags.scheduler = True
    status, _ = await ready_env.readyz()
    assert status == 200
