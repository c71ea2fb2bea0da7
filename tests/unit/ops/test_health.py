"""Health, readiness and metrics routes with injected checks."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.web.health import (
    CheckResult,
    HealthRoutesConfig,
    failed,
    flag_check,
    node_check,
    passed,
    run_checks,
)
from core.banano.rpc_errors import NodeTimeoutError, NodeUnavailableError, SendRefusedError
from core.observability.metrics import METRIC_NAMES, Metrics
from tests.unit.ops.helpers_web import Switch, health_config, serve

CHECK_NAMES = ("database", "migrations", "node", "gateway", "scheduler")
TOKEN = "metrics-token-for-tests-0123456789"


async def test_healthz_ok() -> None:
    async with serve(health_config()) as client:
        response = await client.get("/healthz")
        body = await response.json()

    assert response.status == 200
    assert body == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_readyz_ready_when_all_pass() -> None:
    switches = {name: Switch() for name in CHECK_NAMES}
    async with serve(health_config(switches)) as client:
        response = await client.get("/readyz")
        body = await response.json()

    assert response.status == 200
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert set(body["checks"]) == set(CHECK_NAMES)
    assert all(check == {"ok": True, "detail": ""} for check in body["checks"].values())


@pytest.mark.parametrize("name", CHECK_NAMES)
async def test_readyz_names_failed_check_then_recovers(name: str) -> None:
    switches = {check: Switch(f"{check} is down") for check in CHECK_NAMES}
    async with serve(health_config(switches)) as client:
        switches[name].ok = False
        down = await client.get("/readyz")
        down_body = await down.json()

        switches[name].ok = True
        up = await client.get("/readyz")
        up_body = await up.json()

    assert down.status == 503
    assert down_body["status"] == "not_ready"
    assert down_body["failed"] == [name]
    assert down_body["checks"][name] == {"ok": False, "detail": f"{name} is down"}
    assert up.status == 200
    assert up_body["failed"] == []


async def test_readyz_lists_every_failed_check() -> None:
    switches = {check: Switch() for check in CHECK_NAMES}
    switches["node"].ok = False
    switches["gateway"].ok = False
    async with serve(health_config(switches)) as client:
        body = await (await client.get("/readyz")).json()

    assert body["failed"] == ["node", "gateway"]


async def test_slow_check_times_out() -> None:
    async def hang() -> CheckResult:
        await asyncio.Event().wait()
        return passed()

    config = health_config({"node": hang, "gateway": Switch()}, check_timeout_seconds=0.05)
    async with serve(config) as client:
        response = await client.get("/readyz")
        body = await response.json()

    assert response.status == 503
    assert body["failed"] == ["node"]
    assert body["checks"]["node"]["detail"] == "timed out after 0.05 s"


async def test_crashing_check_fails_without_its_text() -> None:
    async def crash() -> CheckResult:
        raise RuntimeError("password=hunter2")

    async with serve(health_config({"database": crash})) as client:
        text = await (await client.get("/readyz")).text()

    assert "hunter2" not in text
    assert "unexpected error" in text


async def test_results_cached_for_cache_seconds() -> None:
    now = [100.0]
    switch = Switch()
    config = HealthRoutesConfig(
        metrics=Metrics(version="test"),
        checks={"node": switch},
        cache_seconds=2.0,
        monotonic=lambda: now[0],
    )

    await run_checks(config)
    await run_checks(config)
    assert switch.calls == 1

    now[0] += 2.5
    switch.ok = False
    results = await run_checks(config)
    assert switch.calls == 2
    assert results["node"] == CheckResult(False, "down")


def test_config_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="check_timeout_seconds"):
        health_config(check_timeout_seconds=0)
    with pytest.raises(ValueError, match="cache_seconds"):
        health_config(cache_seconds=-1)


async def test_node_check_results() -> None:
    async def unavailable() -> object:
        raise NodeUnavailableError()

    async def timeout() -> object:
        raise NodeTimeoutError()

    async def refused() -> object:
        raise SendRefusedError("Wallet locked")

    async def false() -> bool:
        return False

    async def balance() -> int:
        return 0

    assert (await node_check(unavailable)()).detail.startswith("Banano node unreachable: ")
    assert not (await node_check(timeout)()).ok
    assert (await node_check(refused)()).detail.startswith("Banano node error: ")
    assert await node_check(false)() == failed("Banano node unreachable")
    assert await node_check(balance)() == passed()


async def test_flag_check() -> None:
    state = {"connected": False}
    check = flag_check(lambda: state["connected"], "not connected to the Discord gateway")
    assert await check() == failed("not connected to the Discord gateway")
    state["connected"] = True
    assert await check() == passed()


async def test_metrics_open_without_token() -> None:
    async with serve(health_config()) as client:
        response = await client.get("/metrics")
        text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:
        assert name.removesuffix("_total") in names, name


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
async def test_metrics_rejects_wrong_token(authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    config = health_config(metrics_token=SecretStr(TOKEN))
    async with serve(config) as client:
        response = await client.get("/metrics", headers=headers)
        body = await response.json()

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert body["error"] == "unauthorized"
    assert TOKEN not in repr(body)


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer  {TOKEN} "])
async def test_metrics_accepts_token(authorization: str) -> None:
    config = health_config(metrics_token=SecretStr(TOKEN))
    async with serve(config) as client:
        response = await client.get("/metrics", headers={"Authorization": authorization})
        text = await response.text()

    assert response.status == 200
    assert "pay2slay_build_info" in text
    assert TOKEN not in text


async def test_openapi_served() -> None:
    async with serve(health_config()) as client:
        response = await client.get("/openapi.yaml")
        document = yaml.safe_load(await response.text())

    assert response.status == 200
    assert response.content_type == "application/yaml"
    assert document["openapi"].startswith("3.1")
    assert "/readyz" in document["paths"]
