"""Pay2Slay's Prometheus metrics, held in a registry of their own and passed to services.

Services call the helper methods rather than `.labels()` on the metric objects, because the
helpers map every label value into a fixed set (see `core.observability.labels`) and convert raw
amounts to BAN. Metrics without labels can also be used directly, for example
`metrics.settlement_duration_seconds.time()`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from decimal import Context, Decimal
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from core.observability import labels
from core.observability.labels import OTHER

log = structlog.get_logger(__name__)

PREFIX = "pay2slay_"

# 1 BAN = 10**29 raw.
_RAW_EXPONENT = 29

# Enough digits for any 128-bit raw amount (39 digits), so the scaling below is exact.
_DECIMAL_CONTEXT = Context(prec=60)

# Registered command names and side-server routes each become label values. These caps stop a
# caller that passes generated names from creating unbounded series.
_MAX_COMMANDS = 200
_MAX_ROUTES = 100
_MAX_NAME_LENGTH = 100

# An unknown label value is logged once per metric and value, up to this many pairs.
_MAX_REPORTED_UNKNOWN = 256

_SETTLEMENT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Discord expects an interaction to be acknowledged within 3 seconds, and deferred commands
# can take longer.
_COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


def raw_to_ban_float(raw: int) -> float:
    """Convert a raw amount to BAN as the nearest float, for metrics only.

    The division is exact in `Decimal`, so the only rounding is the final conversion to float:
    2.1 BAN becomes the same float as the literal `2.1`. Raises TypeError for anything but an int.
    """
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"raw amount must be an int, got {type(raw).__name__}")
    return float(Decimal(raw).scaleb(-_RAW_EXPONENT, context=_DECIMAL_CONTEXT))


class Metrics:
    """Every Pay2Slay metric, registered in `registry` (a new one unless given).

    Never uses prometheus_client's global default registry, so two instances, in tests for
    example, do not collide.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, version: str | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._commands: frozenset[str] = frozenset()
        self._routes: frozenset[str] = frozenset()
        self._reported_unknown: set[tuple[str, str]] = set()
        registry = self.registry

        self.payouts_total = Counter(
            PREFIX + "payouts_total",
            "Payouts that entered each state.",
            ["state"],
            registry=registry,
        )
        self.paid_ban_total = Counter(
            PREFIX + "paid_ban_total",
            "BAN paid in confirmed payouts, summed as a float for monitoring only.",
            registry=registry,
        )
        self.settlement_runs_total = Counter(
            PREFIX + "settlement_runs_total",
            "Settlement runs by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.settlement_duration_seconds = Histogram(
            PREFIX + "settlement_duration_seconds",
            "Duration of settlement runs, skipped runs included.",
            buckets=_SETTLEMENT_BUCKETS,
            registry=registry,
        )
        self.settlement_players_skipped_total = Counter(
            PREFIX + "settlement_players_skipped_total",
            "Players with open accruals that a settlement run did not pay, by reason.",
            ["reason"],
            registry=registry,
        )
        self.operator_balance_ban = Gauge(
            PREFIX + "operator_balance_ban",
            "Confirmed balance of the operator account at its latest reading, in BAN.",
            registry=registry,
        )
        self.open_liability_ban = Gauge(
            PREFIX + "open_liability_ban",
            "Sum of open accruals not yet paid, in BAN.",
            registry=registry,
        )
        self.held_liability_ban = Gauge(
            PREFIX + "held_liability_ban",
            "Sum of accruals held for abuse review, in BAN.",
            registry=registry,
        )
        self.min_operator_balance_ban = Gauge(
            PREFIX + "min_operator_balance_ban",
            "The configured balance floor (min_operator_balance_ban), in BAN.",
            registry=registry,
        )
        self.dry_run = Gauge(
            PREFIX + "dry_run",
            "1 while dry_run is true and payouts are recorded without being sent, else 0.",
            registry=registry,
        )
        self.oldest_unconfirmed_payout_age_seconds = Gauge(
            PREFIX + "oldest_unconfirmed_payout_age_seconds",
            "Age of the oldest live payout that is neither confirmed nor failed, 0 when none is.",
            registry=registry,
        )
        self.reconciler_actions_total = Counter(
            PREFIX + "reconciler_actions_total",
            "Payouts the reconciler checked, by what it did.",
            ["action"],
            registry=registry,
        )
        self.stats_requests_total = Counter(
            PREFIX + "stats_requests_total",
            "Stats API requests by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.stats_rate_limit_wait_seconds_total = Counter(
            PREFIX + "stats_rate_limit_wait_seconds_total",
            "Time spent waiting for the stats API rate limit.",
            registry=registry,
        )
        self.yunite_requests_total = Counter(
            PREFIX + "yunite_requests_total",
            "Yunite API requests by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.node_rpc_requests_total = Counter(
            PREFIX + "node_rpc_requests_total",
            "Banano node RPC requests by action and outcome.",
            ["action", "outcome"],
            registry=registry,
        )
        self.accrued_kills_total = Counter(
            PREFIX + "accrued_kills_total",
            "Kills turned into accruals, held ones included.",
            registry=registry,
        )
        self.accruals_total = Counter(
            PREFIX + "accruals_total",
            "Accruals created, by whether they are open or held for review.",
            ["kind"],
            registry=registry,
        )
        self.abuse_flags_total = Counter(
            PREFIX + "abuse_flags_total",
            "Abuse flags opened, by kind.",
            ["kind"],
            registry=registry,
        )
        self.event_loop_lag_seconds = Histogram(
            PREFIX + "event_loop_lag_seconds",
            "Delay of the event loop in running a timer past its due time.",
            buckets=_LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.command_duration_seconds = Histogram(
            PREFIX + "command_duration_seconds",
            "Duration of slash commands, by command.",
            ["command"],
            buckets=_COMMAND_BUCKETS,
            registry=registry,
        )
        self.gateway_connected = Gauge(
            PREFIX + "gateway_connected",
            "1 while the bot is connected to the Discord gateway, else 0.",
            registry=registry,
        )
        self.oauth_logins_total = Counter(
            PREFIX + "oauth_logins_total",
            "Discord OAuth login callbacks by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.http_requests_total = Counter(
            PREFIX + "http_requests_total",
            "Side server requests by route template, method and status class.",
            ["route", "method", "status_class"],
            registry=registry,
        )
        self.regions_total = Counter(
            PREFIX + "regions_total",
            "Logins by ISO 3166-1 alpha-2 country code, or unknown.",
            ["country"],
            registry=registry,
        )
        self.build_info = Gauge(
            PREFIX + "build_info",
            "Always 1, with the running Pay2Slay version as the version label.",
            ["version"],
            registry=registry,
        )

        self._initialise_label_values()
        self.build_info.labels(version=version or installed_version()).set(1)

    def _initialise_label_values(self) -> None:
        # Series of known label values exist at 0 from the start, so rate() and alert rules see
        # the first increment.
        for state in labels.PAYOUT_STATES:
            self.payouts_total.labels(state=state)
        for outcome in labels.SETTLEMENT_OUTCOMES:
            self.settlement_runs_total.labels(outcome=outcome)
        for reason in labels.SKIP_REASONS:
            self.settlement_players_skipped_total.labels(reason=reason)
        for action in labels.RECONCILER_ACTIONS:
            self.reconciler_actions_total.labels(action=action)
        for outcome in labels.STATS_OUTCOMES:
            self.stats_requests_total.labels(outcome=outcome)
        for outcome in labels.YUNITE_OUTCOMES:
            self.yunite_requests_total.labels(outcome=outcome)
        for kind in labels.ACCRUAL_KINDS:
            self.accruals_total.labels(kind=kind)
        for kind in labels.ABUSE_FLAG_KINDS:
            self.abuse_flags_total.labels(kind=kind)
        for outcome in labels.OAUTH_OUTCOMES:
            self.oauth_logins_total.labels(outcome=outcome)

    # Payouts and settlement

    def count_payout(self, state: str) -> None:
        """Count a payout entering `state` (one of `labels.PAYOUT_STATES`)."""
        self.payouts_total.labels(state=self._bounded("payouts", state, labels.PAYOUT_STATES)).inc()

    def observe_paid_raw(self, raw: int) -> None:
        """Add a confirmed payout's amount, given in raw, to `paid_ban_total`."""
        self.paid_ban_total.inc(raw_to_ban_float(raw))

    def observe_settlement_run(self, outcome: str, duration_seconds: float) -> None:
        """Count a settlement run by outcome and record how long it took."""
        outcome = self._bounded("settlement_runs", outcome, labels.SETTLEMENT_OUTCOMES)
        self.settlement_runs_total.labels(outcome=outcome).inc()
        self.settlement_duration_seconds.observe(duration_seconds)

    def count_players_skipped(self, reason: str, count: int = 1) -> None:
        """Count players a settlement run did not pay for `reason`."""
        reason = self._bounded("settlement_players_skipped", reason, labels.SKIP_REASONS)
        self.settlement_players_skipped_total.labels(reason=reason).inc(count)

    def set_operator_balance_raw(self, raw: int) -> None:
        """Set the operator balance gauge from a raw amount."""
        self.operator_balance_ban.set(raw_to_ban_float(raw))

    def set_open_liability_raw(self, raw: int) -> None:
        """Set the open liability gauge from a raw amount."""
        self.open_liability_ban.set(raw_to_ban_float(raw))

    def set_held_liability_raw(self, raw: int) -> None:
        """Set the held liability gauge from a raw amount."""
        self.held_liability_ban.set(raw_to_ban_float(raw))

    def set_faucet_mode(self, *, dry_run: bool, min_operator_balance_raw: int) -> None:
        """Set the gauges of the configured mode: dry run on or off, and the balance floor."""
        self.dry_run.set(1 if dry_run else 0)
        self.min_operator_balance_ban.set(raw_to_ban_float(min_operator_balance_raw))

    def set_oldest_unconfirmed_payout_age(self, seconds: float) -> None:
        """Set the age of the oldest unconfirmed live payout; 0 when there is none."""
        self.oldest_unconfirmed_payout_age_seconds.set(max(0.0, seconds))

    def count_reconciler_action(self, action: str) -> None:
        """Count one payout the reconciler handled, by what it did."""
        action = self._bounded("reconciler_actions", action, labels.RECONCILER_ACTIONS)
        self.reconciler_actions_total.labels(action=action).inc()

    # Integrations

    def count_stats_request(self, outcome: str) -> None:
        """Count one stats API request by outcome."""
        outcome = self._bounded("stats_requests", outcome, labels.STATS_OUTCOMES)
        self.stats_requests_total.labels(outcome=outcome).inc()

    def add_rate_limit_wait(self, seconds: float) -> None:
        """Add time spent waiting for the stats API rate limit."""
        self.stats_rate_limit_wait_seconds_total.inc(seconds)

    def count_yunite_request(self, outcome: str) -> None:
        """Count one Yunite API request by outcome."""
        outcome = self._bounded("yunite_requests", outcome, labels.YUNITE_OUTCOMES)
        self.yunite_requests_total.labels(outcome=outcome).inc()

    def count_node_rpc(self, action: str, outcome: str) -> None:
        """Count one Banano node RPC request by action and outcome."""
        action = self._bounded("node_rpc_requests.action", action, labels.NODE_RPC_ACTIONS)
        outcome = self._bounded("node_rpc_requests.outcome", outcome, labels.NODE_RPC_OUTCOMES)
        self.node_rpc_requests_total.labels(action=action, outcome=outcome).inc()

    # Accruals and abuse

    def observe_accrual(self, kind: str, kills: int) -> None:
        """Count one new accrual (`open` or `held`) of `kills` kills."""
        kind = self._bounded("accruals", kind, labels.ACCRUAL_KINDS)
        self.accruals_total.labels(kind=kind).inc()
        self.accrued_kills_total.inc(kills)

    def count_abuse_flag(self, kind: str) -> None:
        """Count one abuse flag opened."""
        self.abuse_flags_total.labels(
            kind=self._bounded("abuse_flags", kind, labels.ABUSE_FLAG_KINDS)
        ).inc()

    # Discord and the side server

    def register_commands(self, names: Iterable[str]) -> None:
        """Allow these command names as values of the `command` label.

        Use the qualified name (`"admin pause"` for a subcommand). Names from several calls are
        kept together. Raises ValueError for an empty or overlong name, or past 200 names.
        """
        self._commands = self._registered(self._commands, names, _MAX_COMMANDS, "command")

    def observe_command(self, name: str, seconds: float) -> None:
        """Record a command's duration. A name never registered is recorded as `other`."""
        command = name if name in self._commands else OTHER
        self.command_duration_seconds.labels(command=command).observe(seconds)

    def set_gateway_connected(self, connected: bool) -> None:
        """Set whether the bot is connected to the Discord gateway."""
        self.gateway_connected.set(1 if connected else 0)

    def count_oauth_login(self, outcome: str) -> None:
        """Count one OAuth callback by outcome."""
        outcome = self._bounded("oauth_logins", outcome, labels.OAUTH_OUTCOMES)
        self.oauth_logins_total.labels(outcome=outcome).inc()

    def register_routes(self, routes: Iterable[str]) -> None:
        """Allow these route templates (such as `/auth/discord/callback`) as `route` values.

        Raises ValueError for an empty or overlong template, or past 100 templates.
        """
        self._routes = self._registered(self._routes, routes, _MAX_ROUTES, "route")

    def count_http_request(self, route: str, method: str, status: int) -> None:
        """Count one side server response.

        `route` is the matched route template, never the raw path. A template that was not
        registered, an unmatched path included, is counted as `other`.
        """
        route = route if route in self._routes else OTHER
        method = method.upper()
        if method not in labels.HTTP_METHODS:
            method = OTHER
        status_class = f"{status // 100}xx" if 100 <= status <= 599 else OTHER
        self.http_requests_total.labels(route=route, method=method, status_class=status_class).inc()

    def count_region(self, country: str | None) -> None:
        """Count one login from `country`, an ISO 3166-1 alpha-2 code, or else as unknown."""
        code = (country or "").strip().upper()
        if code not in labels.COUNTRY_CODES:
            code = labels.UNKNOWN_COUNTRY
        self.regions_total.labels(country=code).inc()

    # Exposition

    def render(self) -> tuple[bytes, str]:
        """Return the metrics in the Prometheus text format, with its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _bounded(self, metric: str, value: str, allowed: Collection[str]) -> str:
        if value in allowed:
            return value

        # An unknown value is a bug in the caller, but a metric must never break the code that
        # reports it, so the value is counted as "other" and logged once.
        key = (metric, value[:64])
        if key not in self._reported_unknown and len(self._reported_unknown) < (
            _MAX_REPORTED_UNKNOWN
        ):
            self._reported_unknown.add(key)
            log.warning("metric_label_value_unknown", metric=metric, value=key[1], counted_as=OTHER)
        return OTHER

    @staticmethod
    def _registered(
        current: frozenset[str], names: Iterable[str], limit: int, kind: str
    ) -> frozenset[str]:
        added = set(current)
        for name in names:
            if not name or len(name) > _MAX_NAME_LENGTH:
                raise ValueError(
                    f"invalid {kind} name {name[:_MAX_NAME_LENGTH]!r}: expected 1 to "
                    f"{_MAX_NAME_LENGTH} characters"
                )
            added.add(name)
        if len(added) > limit:
            raise ValueError(f"too many {kind} names for metric labels: {len(added)}, max {limit}")
        return frozenset(added)


def metric_names(metrics: Metrics) -> set[str]:
    """Return the name of every metric family as Prometheus users write it.

    Counters carry their `_total` suffix, for example `pay2slay_payouts_total`. The names come
    from the registry, so they stay in step with the code.
    """
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def sample_names(metrics: Metrics) -> set[str]:
    """Return every sample name a PromQL expression can use, such as `..._seconds_bucket`.

    Includes the `_created` samples that prometheus_client exposes for counters and histograms
    unless they are disabled.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names: set[str] = set()
    for family in metrics.registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def installed_version() -> str:
    """Return the installed Pay2Slay package's version, or "unknown" when it is not installed."""
    try:
        return package_version("pay2slay")
    except PackageNotFoundError:
        return "unknown"


METRIC_NAMES: tuple[str, ...] = tuple(sorted(metric_names(Metrics(version="unknown"))))
