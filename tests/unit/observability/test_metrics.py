from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from core.observability import METRIC_NAMES, Metrics, metric_names, raw_to_ban_float, sample_names
from core.observability.labels import PAYOUT_STATES
from tests.unit.observability.conftest import LogOutput

RAW_PER_BAN = 10**29


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    assert sample is not None, f"no sample {name} {labels}"
    return sample


def parsed_names(metrics: Metrics) -> set[str]:
    payload, _ = metrics.render()
    return {
        family.name + "_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(payload.decode("utf-8"))
    }


def test_instances_use_separate_registries() -> None:
    first = Metrics()
    second = Metrics()

    first.count_payout("confirmed")

    assert first.registry is not second.registry
    assert value(first, "pay2slay_payouts_total", state="confirmed") == 1
    assert value(second, "pay2slay_payouts_total", state="confirmed") == 0


def test_default_registry_untouched() -> None:
    Metrics()

    assert prometheus_client.REGISTRY.get_sample_value("pay2slay_payouts_total") is None
    default_names = {family.name for family in prometheus_client.REGISTRY.collect()}
    assert not [name for name in default_names if name.startswith("pay2slay_")]


def test_given_registry_used() -> None:
    registry = CollectorRegistry()

    metrics = Metrics(registry)

    assert metrics.registry is registry
    assert registry.get_sample_value("pay2slay_gateway_connected") == 0


def test_render_parses_with_every_family() -> None:
    metrics = Metrics()

    payload, content_type = metrics.render()

    assert payload.startswith(b"# HELP pay2slay_")
    assert content_type.startswith("text/plain")
    assert metric_names(metrics) <= parsed_names(metrics)
    assert len(metric_names(metrics)) == 26


def test_metric_names_follow_conventions() -> None:
    names = metric_names(Metrics())

    assert tuple(sorted(names)) == METRIC_NAMES
    assert all(name.startswith("pay2slay_") for name in names)
    assert "pay2slay_payouts_total" in names
    assert "pay2slay_settlement_duration_seconds" in names
    assert "pay2slay_operator_balance_ban" in names


def test_sample_names_include_suffixes() -> None:
    names = sample_names(Metrics())

    assert "pay2slay_settlement_duration_seconds_bucket" in names
    assert "pay2slay_settlement_duration_seconds_count" in names
    assert "pay2slay_payouts_total" in names
    assert "pay2slay_gateway_connected" in names
    assert "pay2slay_payouts" not in names


def test_known_label_values_start_at_zero() -> None:
    metrics = Metrics()

    for state in PAYOUT_STATES:
        assert value(metrics, "pay2slay_payouts_total", state=state) == 0
    assert value(metrics, "pay2slay_settlement_runs_total", outcome="skipped_floor") == 0


def test_raw_to_ban_exact_for_payout_amount() -> None:
    assert raw_to_ban_float(21 * RAW_PER_BAN // 10) == 2.1
    assert raw_to_ban_float(1) == 1e-29
    assert raw_to_ban_float(0) == 0.0
    assert raw_to_ban_float(2**128 - 1) == float("3.40282366920938463463374607431768211455e9")


def test_raw_to_ban_rejects_non_int() -> None:
    with pytest.raises(TypeError, match="raw amount must be an int, got float"):
        raw_to_ban_float(2.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bool"):
        raw_to_ban_float(True)


def test_observe_paid_raw() -> None:
    metrics = Metrics()

    metrics.observe_paid_raw(210_000_000_000_000_000_000_000_000_000)

    assert value(metrics, "pay2slay_paid_ban_total") == 2.1


def test_liability_gauges_from_raw() -> None:
    metrics = Metrics()

    metrics.set_operator_balance_raw(50 * RAW_PER_BAN)
    metrics.set_open_liability_raw(21 * RAW_PER_BAN // 10)
    metrics.set_held_liability_raw(0)

    assert value(metrics, "pay2slay_operator_balance_ban") == 50.0
    assert value(metrics, "pay2slay_open_liability_ban") == 2.1
    assert value(metrics, "pay2slay_held_liability_ban") == 0.0


def test_unknown_command_counted_as_other() -> None:
    metrics = Metrics()
    metrics.register_commands(["status", "link-wallet", "admin pause"])

    metrics.observe_command("status", 0.2)
    metrics.observe_command("admin pause", 0.1)
    metrics.observe_command("made-up", 0.3)

    count = "pay2slay_command_duration_seconds_count"
    assert value(metrics, count, command="status") == 1
    assert value(metrics, count, command="admin pause") == 1
    assert value(metrics, count, command="other") == 1
    assert metrics.registry.get_sample_value(count, {"command": "made-up"}) is None


def test_register_commands_rejects_bad_names() -> None:
    metrics = Metrics()

    with pytest.raises(ValueError, match="invalid command name ''"):
        metrics.register_commands([""])
    with pytest.raises(ValueError, match="too many command names"):
        metrics.register_commands(f"command-{index}" for index in range(201))


def test_country_validated() -> None:
    metrics = Metrics()

    metrics.count_region("de")
    metrics.count_region(" US ")
    metrics.count_region("ZZ")
    metrics.count_region("Germany")
    metrics.count_region(None)

    assert value(metrics, "pay2slay_regions_total", country="DE") == 1
    assert value(metrics, "pay2slay_regions_total", country="US") == 1
    assert value(metrics, "pay2slay_regions_total", country="unknown") == 3


def test_http_request_labels_bounded() -> None:
    metrics = Metrics()
    metrics.register_routes(["/healthz", "/auth/discord/callback"])

    metrics.count_http_request("/healthz", "get", 200)
    metrics.count_http_request("/wp-admin/login.php", "GET", 404)
    metrics.count_http_request("/auth/discord/callback", "BREW", 999)

    total = "pay2slay_http_requests_total"
    assert value(metrics, total, route="/healthz", method="GET", status_class="2xx") == 1
    assert value(metrics, total, route="other", method="GET", status_class="4xx") == 1
    assert (
        value(metrics, total, route="/auth/discord/callback", method="other", status_class="other")
        == 1
    )


def test_unknown_state_counted_as_other_and_logged_once(log_output: LogOutput) -> None:
    log_output.configure("json")
    metrics = Metrics()

    metrics.count_payout("reconciling")
    metrics.count_payout("reconciling")

    assert value(metrics, "pay2slay_payouts_total", state="other") == 2
    (record,) = log_output.events("metric_label_value_unknown")
    assert record["metric"] == "payouts"
    assert record["value"] == "reconciling"


def test_node_rpc_labels_bounded() -> None:
    metrics = Metrics()

    metrics.count_node_rpc("account_info", "ok")
    metrics.count_node_rpc("wallet_create", "exploded")

    total = "pay2slay_node_rpc_requests_total"
    assert value(metrics, total, action="account_info", outcome="ok") == 1
    assert value(metrics, total, action="other", outcome="other") == 1


def test_settlement_helpers() -> None:
    metrics = Metrics()

    metrics.observe_settlement_run("completed", 1.5)
    metrics.observe_settlement_run("skipped_floor", 0.01)
    metrics.count_players_skipped("daily_cap", 3)
    metrics.count_reconciler_action("resubmitted")

    assert value(metrics, "pay2slay_settlement_runs_total", outcome="completed") == 1
    assert value(metrics, "pay2slay_settlement_runs_total", outcome="skipped_floor") == 1
    assert value(metrics, "pay2slay_settlement_duration_seconds_count") == 2
    assert value(metrics, "pay2slay_settlement_duration_seconds_sum") == pytest.approx(1.51)
    assert value(metrics, "pay2slay_settlement_players_skipped_total", reason="daily_cap") == 3
    assert value(metrics, "pay2slay_reconciler_actions_total", action="resubmitted") == 1


def test_integration_and_accrual_helpers() -> None:
    metrics = Metrics()

    metrics.count_stats_request("private")
    metrics.add_rate_limit_wait(2.5)
    metrics.count_yunite_request("payment_required")
    metrics.observe_accrual("open", 4)
    metrics.observe_accrual("held", 30)
    metrics.count_abuse_flag("kill_rate")
    metrics.count_oauth_login("invalid_state")
    metrics.set_gateway_connected(True)

    assert value(metrics, "pay2slay_stats_requests_total", outcome="private") == 1
    assert value(metrics, "pay2slay_stats_rate_limit_wait_seconds_total") == 2.5
    assert value(metrics, "pay2slay_yunite_requests_total", outcome="payment_required") == 1
    assert value(metrics, "pay2slay_accruals_total", kind="open") == 1
    assert value(metrics, "pay2slay_accruals_total", kind="held") == 1
    assert value(metrics, "pay2slay_accrued_kills_total") == 34
    assert value(metrics, "pay2slay_abuse_flags_total", kind="kill_rate") == 1
    assert value(metrics, "pay2slay_oauth_logins_total", outcome="invalid_state") == 1
    assert value(metrics, "pay2slay_gateway_connected") == 1


def test_build_info_version() -> None:
    metrics = Metrics(version="1.2.3")

    assert value(metrics, "pay2slay_build_info", version="1.2.3") == 1


def test_rendered_values_match() -> None:
    metrics = Metrics()
    metrics.observe_paid_raw(21 * RAW_PER_BAN // 10)
    metrics.count_region("BR")

    payload, _ = metrics.render()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(payload.decode("utf-8"))
        for sample in family.samples
    }

    assert samples[("pay2slay_paid_ban_total", ())] == 2.1
    assert samples[("pay2slay_regions_total", (("country", "BR"),))] == 1
