from __future__ import annotations

import asyncio
import io
import logging
import logging.config
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path

import discord.utils
import pytest
import structlog

from core.observability import bind_context, configure_logging, quiet_third_party
from core.observability.logging import _RootHandler
from tests.unit.observability.conftest import LogOutput

log = structlog.get_logger("core.services.example")


class PayoutState(Enum):
    SIGNED = "signed"


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def our_handlers() -> list[logging.Handler]:
    return [
        handler for handler in logging.getLogger().handlers if isinstance(handler, _RootHandler)
    ]


def is_disabled(name: str) -> bool:
    return logging.getLogger(name).disabled


def test_json_structlog_event_fields(log_output: LogOutput) -> None:
    log_output.configure("json")

    log.info("payout_submitted", payout_id=42, amount_raw=10**29, block_hash="AB" * 32)

    (record,) = log_output.events("payout_submitted")
    assert record["level"] == "info"
    assert record["logger"] == "core.services.example"
    assert record["payout_id"] == 42
    assert record["amount_raw"] == 10**29
    assert record["block_hash"] == "AB" * 32
    assert record["timestamp"].endswith("Z")
    parsed = datetime.fromisoformat(record["timestamp"])
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_json_line_starts_with_leading_keys(log_output: LogOutput) -> None:
    log_output.configure("json")

    log.info("payout_submitted", payout_id=1)

    (line,) = log_output.lines()
    assert line.startswith('{"timestamp": ')
    assert list(log_output.records()[0])[:4] == ["timestamp", "level", "logger", "event"]


def test_json_encodes_common_types(log_output: LogOutput) -> None:
    log_output.configure("json")

    log.info(
        "settlement_planned",
        amount_ban=Decimal("2.1"),
        next_run=datetime(2026, 1, 5, 0, 0, tzinfo=UTC),
        state=PayoutState.SIGNED,
        target=object(),
    )

    (record,) = log_output.records()
    assert record["amount_ban"] == "2.1"
    assert record["next_run"] == "2026-01-05T00:00:00+00:00"
    assert record["state"] == "signed"
    assert record["target"].startswith("<object object at ")


def test_json_stdlib_record_rendered_alike(log_output: LogOutput) -> None:
    log_output.configure("json")

    logging.getLogger("discord.client").warning("Shard ID %s has stopped responding", 0)
    logging.getLogger("apscheduler.scheduler").info("Scheduler started")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade -> %s", "0001")

    records = log_output.records()
    assert [record["logger"] for record in records] == [
        "discord.client",
        "apscheduler.scheduler",
        "alembic.runtime.migration",
    ]
    assert records[0]["event"] == "Shard ID 0 has stopped responding"
    assert records[0]["level"] == "warning"
    assert records[1]["level"] == "info"
    assert records[2]["event"] == "Running upgrade -> 0001"
    assert all(record["timestamp"].endswith("Z") for record in records)


def test_json_stdlib_extra_fields_kept(log_output: LogOutput) -> None:
    log_output.configure("json")

    logging.getLogger("aiohttp.server").warning("slow request", extra={"elapsed_ms": 1500})

    (record,) = log_output.records()
    assert record["elapsed_ms"] == 1500


def test_json_structlog_exception_traceback(log_output: LogOutput) -> None:
    log_output.configure("json")

    try:
        raise ValueError("invalid block")
    except ValueError:
        log.exception("settlement_failed", payout_id=3)

    (record,) = log_output.events("settlement_failed")
    assert record["level"] == "error"
    assert record["payout_id"] == 3
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: invalid block" in record["exception"]
    assert "exc_info" not in record


def test_json_stdlib_exception_traceback(log_output: LogOutput) -> None:
    log_output.configure("json")

    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("discord.client").exception("Ignoring exception in on_ready")

    (record,) = log_output.records()
    assert record["event"] == "Ignoring exception in on_ready"
    assert record["level"] == "error"
    assert "Traceback (most recent call last):" in record["exception"]
    assert "KeyError: 'missing'" in record["exception"]


def test_json_stdlib_stack_info(log_output: LogOutput) -> None:
    log_output.configure("json")

    logging.getLogger("asyncio").warning("slow callback", stack_info=True)

    (record,) = log_output.records()
    assert record["stack"].startswith("Stack (most recent call last):")
    assert "test_json_stdlib_stack_info" in record["stack"]


def test_console_mode_readable(log_output: LogOutput) -> None:
    log_output.configure("console")

    log.info("payout_submitted", payout_id=42)
    logging.getLogger("discord.gateway").info("Shard ID %s has connected to Gateway", 0)

    structlog_line, stdlib_line = log_output.lines()
    assert "[info" in structlog_line
    assert "payout_submitted" in structlog_line
    assert "payout_id=42" in structlog_line
    assert "[core.services.example]" in structlog_line
    assert "Shard ID 0 has connected to Gateway" in stdlib_line
    assert "[discord.gateway]" in stdlib_line
    assert not structlog_line.startswith("{")
    assert "\x1b[" not in log_output.text


def test_console_mode_exception_text(log_output: LogOutput) -> None:
    log_output.configure("console")

    try:
        raise RuntimeError("node unreachable")
    except RuntimeError:
        log.exception("reconcile_failed")

    assert "reconcile_failed" in log_output.text
    assert "RuntimeError: node unreachable" in log_output.text


def test_auto_mode_json_when_not_terminal(log_output: LogOutput) -> None:
    log_output.configure("auto")

    log.info("started")

    assert log_output.events("started")


def test_auto_mode_console_on_terminal() -> None:
    stream = TerminalStream()
    configure_logging(log_format="auto", level="INFO", secrets=(), stream=stream)

    log.info("started", port=8080)

    assert "started" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


def test_configure_twice_writes_once(log_output: LogOutput) -> None:
    log_output.configure("console")
    log_output.configure("json")

    log.info("started")
    logging.getLogger("discord.client").info("logging in using static token")

    assert len(our_handlers()) == 1
    assert len(log_output.lines()) == 2
    assert [record["event"] for record in log_output.records()] == [
        "started",
        "logging in using static token",
    ]


def test_configure_again_moves_to_new_stream(log_output: LogOutput) -> None:
    log_output.configure("json")
    second = LogOutput()
    second.configure("json")

    log.info("started")

    assert log_output.lines() == []
    assert len(second.lines()) == 1


def test_level_filters_both_kinds(log_output: LogOutput) -> None:
    log_output.configure("json", level="warning")

    log.info("hidden_structlog_event")
    logging.getLogger("discord.client").info("hidden stdlib record")
    log.warning("shown_structlog_event")
    logging.getLogger("discord.client").error("shown stdlib record")

    events = [record["event"] for record in log_output.records()]
    assert events == ["shown_structlog_event", "shown stdlib record"]


def test_invalid_level_rejected(log_output: LogOutput) -> None:
    with pytest.raises(ValueError, match="invalid log level 'LOUD'"):
        log_output.configure("json", level="LOUD")


def test_invalid_format_rejected() -> None:
    with pytest.raises(ValueError, match="invalid log format 'xml'"):
        configure_logging(
            log_format="xml",  # type: ignore[arg-type]
            level="INFO",
            secrets=(),
            stream=io.StringIO(),
        )


def test_bind_context_adds_and_removes_fields(log_output: LogOutput) -> None:
    log_output.configure("json")

    with bind_context(interaction_id=11, player_id=22):
        log.info("inside")
        logging.getLogger("discord.webhook.async_").warning("webhook rate limited")
    log.info("outside")

    inside, stdlib_record, outside = log_output.records()
    assert inside["interaction_id"] == 11
    assert inside["player_id"] == 22
    assert stdlib_record["interaction_id"] == 11
    assert "interaction_id" not in outside
    assert "player_id" not in outside


def test_bind_context_nested_restores_outer(log_output: LogOutput) -> None:
    log_output.configure("json")

    with bind_context(correlation_id="outer"):
        with bind_context(correlation_id="inner", payout_id=5):
            log.info("inner_event")
        log.info("outer_event")

    (inner,) = log_output.events("inner_event")
    (outer,) = log_output.events("outer_event")
    assert inner["correlation_id"] == "inner"
    assert inner["payout_id"] == 5
    assert outer["correlation_id"] == "outer"
    assert "payout_id" not in outer


async def test_bind_context_separate_per_task(log_output: LogOutput) -> None:
    log_output.configure("json")
    both_bound = asyncio.Barrier(2)

    async def handle(interaction_id: int) -> None:
        with bind_context(interaction_id=interaction_id):
            await both_bound.wait()
            log.info("handled")

    await asyncio.gather(handle(1), handle(2))

    ids = sorted(record["interaction_id"] for record in log_output.events("handled"))
    assert ids == [1, 2]


def test_discord_setup_logging_handler_removed(log_output: LogOutput) -> None:
    log_output.configure("json")
    discord_stream = io.StringIO()

    # What discord.py's Client.run() does unless it is given log_handler=None.
    discord.utils.setup_logging(handler=logging.StreamHandler(discord_stream), root=True)
    quiet_third_party()
    logging.getLogger("discord.client").info("logging in using static token")

    assert discord_stream.getvalue() == ""
    assert len(log_output.records()) == 2
    assert log_output.records()[0]["event"] == "duplicate_root_log_handler_removed"
    assert not [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]


def test_discord_client_run_handler_removed(log_output: LogOutput) -> None:
    log_output.configure("json", level="WARNING")
    discord_stream = io.StringIO()

    # What discord.py's Client.run() does by default: a handler on the "discord" logger.
    discord.utils.setup_logging(handler=logging.StreamHandler(discord_stream), root=False)
    quiet_third_party()
    logging.getLogger("discord.client").info("logging in using static token")
    logging.getLogger("discord.client").warning("gateway disconnected")

    assert discord_stream.getvalue() == ""
    assert logging.getLogger("discord").handlers == []
    assert logging.getLogger("discord").level == logging.NOTSET
    assert [record["event"] for record in log_output.records()] == ["gateway disconnected"]


def test_library_logger_handlers_removed(log_output: LogOutput) -> None:
    library_stream = io.StringIO()
    library_logger = logging.getLogger("sqlalchemy.engine.Engine")
    library_logger.addHandler(logging.StreamHandler(library_stream))
    library_logger.propagate = False

    log_output.configure("json")
    library_logger.warning("pool overflow")

    assert library_stream.getvalue() == ""
    assert library_logger.handlers == []
    assert [record["event"] for record in log_output.records()] == ["pool overflow"]


def test_reconfigure_after_alembic_fileconfig(log_output: LogOutput, tmp_path: Path) -> None:
    log_output.configure("json")
    service_logger = logging.getLogger("core.services.settlement")
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[loggers]\nkeys = root,alembic\n\n"
        "[handlers]\nkeys = console\n\n"
        "[formatters]\nkeys = generic\n\n"
        "[logger_root]\nlevel = WARNING\nhandlers = console\n\n"
        "[logger_alembic]\nlevel = INFO\nhandlers =\nqualname = alembic\n\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\n"
        "formatter = generic\n\n"
        "[formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\n"
    )

    # What the env.py written by `alembic init` does. It removes our handler and disables
    # every logger that already exists.
    logging.config.fileConfig(ini)
    assert is_disabled("core.services.settlement")
    assert our_handlers() == []

    log_output.configure("json")
    service_logger.warning("settlement_skipped")

    assert not is_disabled("core.services.settlement")
    assert len(our_handlers()) == 1
    assert [record["event"] for record in log_output.records()] == [
        "duplicate_root_log_handler_removed",
        "settlement_skipped",
    ]


def test_noisy_library_loggers_raised(log_output: LogOutput) -> None:
    log_output.configure("json", level="DEBUG")

    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /healthz HTTP/1.1" 200')
    logging.getLogger("apscheduler.executors.default").info('Running job "settle"')

    assert logging.getLogger("aiohttp.access").getEffectiveLevel() == logging.WARNING
    assert log_output.lines() == []


def test_short_secret_warning_logged(log_output: LogOutput) -> None:
    redactor = log_output.configure("json", secrets=("abc", "", "long-enough-secret"))

    (record,) = log_output.events("short_secrets_not_redacted")
    assert record["count"] == 2
    assert record["min_length"] == 6
    assert len(redactor) == 1
