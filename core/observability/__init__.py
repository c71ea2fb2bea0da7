"""Structured logging, secret redaction, Prometheus metrics and event loop lag for Pay2Slay.

Start-up calls `configure_logging()` once, creates one `Metrics` and passes it to the services,
and runs `monitor_event_loop_lag()` as a task.
"""

from core.observability.logging import (
    LogFormat,
    bind_context,
    configure_logging,
    quiet_third_party,
    reset_logging,
)
from core.observability.loop_lag import RecentLag, monitor_event_loop_lag
from core.observability.metrics import (
    METRIC_NAMES,
    Metrics,
    metric_names,
    raw_to_ban_float,
    sample_names,
)
from core.observability.redaction import MASK, MIN_SECRET_LENGTH, SecretRedactor, is_sensitive_key

__all__ = [
    "MASK",
    "METRIC_NAMES",
    "MIN_SECRET_LENGTH",
    "LogFormat",
    "Metrics",
    "RecentLag",
    "SecretRedactor",
    "bind_context",
    "configure_logging",
    "is_sensitive_key",
    "metric_names",
    "monitor_event_loop_lag",
    "quiet_third_party",
    "raw_to_ban_float",
    "reset_logging",
    "sample_names",
]
