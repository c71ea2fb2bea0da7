"""Prometheus alert rules and the Grafana dashboard reference only metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.observability.metrics import Metrics, metric_names, sample_names

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy/monitoring/alerts.yaml"
DASHBOARD = ROOT / "deploy/monitoring/grafana-dashboard.json"

# Series that Prometheus itself adds to every scrape.
PROMETHEUS_SERIES = frozenset({"up"})

_PAY2SLAY_NAME = re.compile(r"\bpay2slay_[a-z0-9_]+")
_SERIES_NAME = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\{")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _referenced(expression: str) -> set[str]:
    names = set(_PAY2SLAY_NAME.findall(expression))
    names.update(name for name in _SERIES_NAME.findall(expression) if name in PROMETHEUS_SERIES)
    return names


def test_alert_rules_are_well_formed() -> None:
    rules = _rules()
    assert len(rules) >= 10
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_alert_rules_cover_required_conditions() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in _rules()}
    required = {
        "Pay2SlayOperatorBalanceLow": (
            "pay2slay_operator_balance_ban",
            "pay2slay_min_operator_balance_ban",
            "pay2slay_dry_run == 0",
        ),
        "Pay2SlayOperatorBalanceBelowFloor": ('outcome="skipped_floor"',),
        "Pay2SlaySettlementFailing": ('outcome="failed"',),
        "Pay2SlaySettlementSkipped": ("skipped_paused",),
        "Pay2SlayPayoutsStuckUnconfirmed": ("pay2slay_oldest_unconfirmed_payout_age_seconds",),
        "Pay2SlayStatsApiErrors": ("pay2slay_stats_requests_total",),
        "Pay2SlayDryRunInProduction": ("pay2slay_dry_run == 1",),
    }
    for alert, fragments in required.items():
        for fragment in fragments:
            assert fragment in expressions[alert], (alert, fragment)


def test_balance_alert_has_no_fixed_threshold() -> None:
    expression = {rule["alert"]: rule["expr"] for rule in _rules()}["Pay2SlayOperatorBalanceLow"]
    # Only the factor applied to the floor gauge is a literal number.
    assert re.findall(r"\d+(?:\.\d+)?", expression.replace("pay2slay_", "")) == ["2", "0"]


def test_alert_metrics_exist() -> None:
    known = sample_names(Metrics(version="test")) | PROMETHEUS_SERIES
    for rule in _rules():
        referenced = _referenced(rule["expr"])
        assert referenced, rule["alert"]
        assert referenced <= known, (rule["alert"], referenced - known)


def test_dashboard_metrics_exist() -> None:
    known = sample_names(Metrics(version="test"))
    expressions = _dashboard_expressions()
    assert expressions
    for expression in expressions:
        referenced = _referenced(expression)
        assert referenced, expression
        assert referenced <= known, (expression, referenced - known)


def test_dashboard_shows_every_metric() -> None:
    shown = set().union(*(_referenced(expression) for expression in _dashboard_expressions()))
    families = {name.removesuffix("_bucket") for name in shown}
    for name in metric_names(Metrics(version="test")):
        assert name in families, name


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "pay2slay"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_rule_unit_tests() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yaml"],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
