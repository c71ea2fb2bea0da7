"""Process-wide logging set-up: structlog events and stdlib records rendered by one handler.

Every record goes through one handler on the root logger and one
`structlog.stdlib.ProcessorFormatter`, whether it comes from `structlog.get_logger(__name__)` or
from a stdlib logger (discord.py, aiohttp, APScheduler, Alembic, SQLAlchemy, asyncio). So both
kinds get the same fields, the same secret redaction and the same renderer: JSON lines or
console text.

Libraries that would add their own handlers or disable ours:

- discord.py 2.7: `Client.run()` calls `discord.utils.setup_logging()` unless it is given
  `log_handler=None`. That adds a handler and sets level INFO on the `discord` logger (on the
  root logger with `root_logger=True`), so every discord.py line would be written twice. The bot
  must pass `log_handler=None`, or use `Client.start()`, which configures no logging.
- Alembic: the `env.py` that `alembic init` writes calls `logging.config.fileConfig()`, which
  closes and removes the root handlers and disables every logger that already exists. The
  project's `env.py` must not call it. When some code did, calling `configure_logging()` again
  restores the handler and re-enables the loggers.
- SQLAlchemy: `create_engine(echo=True)` adds a handler to the `sqlalchemy.engine.Engine`
  logger. `quiet_third_party()` removes it only if the engine already exists, so create engines
  with `echo=False`.

`quiet_third_party()` undoes what these do where it can, and `configure_logging()` calls it.
It also puts a filter on the `aiohttp.server` logger that removes the client address and the
raw request text from its records (see `_AiohttpServerFilter`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal, TextIO
from uuid import UUID

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from structlog.typing import EventDict, WrappedLogger

from core.observability.redaction import MIN_SECRET_LENGTH, SecretRedactor

LogFormat = Literal["auto", "json", "console"]

# Fields that lead every JSON line, in this order. The other fields follow in the order added.
_LEADING_KEYS = ("timestamp", "level", "logger", "event")

# Loggers of libraries whose records are handled by our root handler only.
_THIRD_PARTY_PREFIXES = (
    "alembic",
    "aiohttp",
    "aiosqlite",
    "apscheduler",
    "asyncio",
    "discord",
    "httpcore",
    "httpx",
    "sqlalchemy",
)

# Minimum levels for library loggers that are too verbose, or record too much, at INFO or DEBUG.
_THIRD_PARTY_LEVELS = {
    # One line per request that includes the client IP address, which the faucet does not keep.
    # The side server logs its own request lines with a correlation id.
    "aiohttp.access": logging.WARNING,
    # "Running job" and "executed successfully" for every run of every job.
    "apscheduler.executors.default": logging.WARNING,
    # SQL statements with their parameters at INFO.
    "sqlalchemy.engine": logging.WARNING,
    # Two lines per database call at DEBUG, with the SQL parameters in the call's repr.
    "aiosqlite": logging.WARNING,
    # One INFO line per request with its full URL and query string; the integration
    # clients log failures as events of their own.
    "httpx": logging.WARNING,
    # Ten DEBUG lines per request, one for each step of the transport.
    "httpcore": logging.WARNING,
    # Mapper set-up (one INFO line per mapped column at the first query) and pool events.
    "sqlalchemy.orm": logging.WARNING,
    "sqlalchemy.pool": logging.WARNING,
}

_VALID_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# aiohttp 3.x logs a request it failed to handle with this message and the client address.
_AIOHTTP_PEER_MESSAGE = "Error handling request from %s"

log = structlog.get_logger(__name__)


class _RootHandler(logging.StreamHandler[TextIO]):
    """The one root handler that `configure_logging` installs, recognised by its class."""

    def handleError(self, record: logging.LogRecord) -> None:
        # The stdlib default prints the record's message and arguments, unredacted, to stderr.
        # This writes one line that names the logger and the error type only.
        error = sys.exc_info()[1]
        line = json.dumps(
            {
                "level": "error",
                "logger": record.name,
                "event": "log_record_render_failed",
                "error_type": type(error).__name__,
            }
        )
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except (OSError, ValueError):
            # The stream itself failed, and there is nowhere left to report it.
            pass


class _AiohttpServerFilter(logging.Filter):
    """Remove the client address and the raw request text from `aiohttp.server` records.

    aiohttp (3.14) logs a request it cannot parse, such as a request line over 8190 bytes or a
    URL with control characters, as "Error handling request from <address>" at ERROR, with the
    parser's exception, whose message quotes the request line. For the OAuth callback that
    line contains the code and the state. Such a record becomes `http_request_rejected` at
    WARNING (or its own level when lower) with the exception class and status code, without
    the traceback. Other records with the address keep their traceback and lose the address.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "http_request_rejected"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.error_type = type(error).__name__
            record.status = error.code
            if record.levelno > logging.WARNING:
                record.levelno = logging.WARNING
                record.levelname = logging.getLevelName(logging.WARNING)
            # The logger checked the original level; this one may be below its threshold.
            return logging.getLogger(record.name).isEnabledFor(record.levelno)

        if record.msg == _AIOHTTP_PEER_MESSAGE:
            record.msg = "Error handling request"
            record.args = ()
        return True


class _BoundLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, except that `exception()` leaves no `exc_info` on the record.

    The traceback is already formatted and redacted into the event's `exception` field, and a
    record without `exc_info` gives other handlers no unredacted traceback to print.
    """

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        kw.setdefault("exc_info", True)
        return self._proxy_to_logger("error", event, *args, **kw)


def configure_logging(
    *,
    log_format: LogFormat,
    level: str,
    secrets: Iterable[str],
    stream: TextIO | None = None,
) -> SecretRedactor:
    """Configure structlog and the stdlib root logger to write every record to `stream`.

    `log_format` "json" writes one JSON object per line, "console" writes aligned text, and
    "auto" chooses JSON unless `stream` is a terminal. `level` is a stdlib level name such as
    "INFO". Each value in `secrets` of at least `MIN_SECRET_LENGTH` characters is replaced by
    `**********` wherever it appears, and the returned `SecretRedactor` takes more with `add()`.
    `stream` defaults to standard error. Calling this again replaces the previous set-up, so
    there is never more than one of our handlers.

    Raises ValueError for an unknown level or format.
    """
    level_number = _parse_level(level)
    output = stream if stream is not None else sys.stderr
    use_json = _use_json(log_format, output)
    redactor = SecretRedactor(secrets)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ExtraAdder(),
            _rename_foreign_stack_info,
        ],
        processors=[
            _add_record_timestamp,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # The redactor runs after every processor that adds text and right before rendering,
            # so the exception and stack text of stdlib records are covered as well.
            redactor,
            _render_json if use_json else _console_renderer(output),
        ],
    )

    handler = _RootHandler(output)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in root.handlers[:]:
        if isinstance(existing, _RootHandler):
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)
    root.setLevel(level_number)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            # Redacting here as well means the event dict that reaches any other handler on the
            # root logger, pytest's capture handler for one, is already redacted.
            redactor,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=_BoundLogger,
        # Not cached: a cached logger keeps the processor list it was first used with, so a later
        # configure_logging() call or structlog.testing.capture_logs() would miss it.
        cache_logger_on_first_use=False,
    )

    quiet_third_party()

    if redactor.ignored_count:
        log.warning(
            "short_secrets_not_redacted",
            count=redactor.ignored_count,
            min_length=MIN_SECRET_LENGTH,
        )
    return redactor


def quiet_third_party() -> None:
    """Route library loggers through the root handler only, and lower the noisy ones.

    Removes the handlers of library loggers and the plain `logging.StreamHandler` instances on
    the root logger (what `discord.utils.setup_logging()`, `logging.basicConfig()` and Alembic's
    `fileConfig()` add), and re-enables the loggers that `fileConfig()` disabled. Library loggers
    then follow the root level, except those in `_THIRD_PARTY_LEVELS`, which get that minimum.
    Handlers of other classes on the root logger, such as pytest's capture handlers, are left in
    place. Adds `_AiohttpServerFilter` to the `aiohttp.server` logger once. Safe to call any
    number of times.
    """
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue

        # fileConfig(disable_existing_loggers=True) disables every logger that exists when it
        # runs, ours included.
        logger.disabled = False

        if name.split(".", 1)[0] in _THIRD_PARTY_PREFIXES:
            for handler in logger.handlers[:]:
                logger.removeHandler(handler)
            logger.propagate = True
            logger.setLevel(logging.NOTSET)

    # After the loop above, so this module's logger is enabled again when it reports a removal.
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
            log.warning("duplicate_root_log_handler_removed", handler=repr(handler))

    for name, minimum in _THIRD_PARTY_LEVELS.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < minimum:
            logger.setLevel(minimum)

    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(item, _AiohttpServerFilter) for item in server_logger.filters):
        server_logger.addFilter(_AiohttpServerFilter())


def reset_logging() -> None:
    """Remove the handler that `configure_logging` installed and restore structlog's defaults."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if isinstance(handler, _RootHandler):
            root.removeHandler(handler)
            handler.close()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def bind_context(**values: Any) -> AbstractContextManager[None]:
    """Add fields to every log line written inside the `with` block, in this task or thread.

    Use the names `interaction_id`, `player_id`, `payout_id` and `correlation_id` for those ids.
    Values bound by an outer block with the same names come back when the block exits. Built on
    `structlog.contextvars`, so each asyncio task reads the values bound in its own context.
    """
    return structlog.contextvars.bound_contextvars(**values)


def _parse_level(level: str) -> int:
    name = level.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in _VALID_LEVELS:
        raise ValueError(f"invalid log level {level!r}: expected one of {', '.join(_VALID_LEVELS)}")
    return logging.getLevelNamesMapping()[name]


def _use_json(log_format: str, stream: TextIO) -> bool:
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    if log_format == "auto":
        return not _is_terminal(stream)
    raise ValueError(f"invalid log format {log_format!r}: expected auto, json or console")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        # A closed or file-like stream without a terminal behind it.
        return False


def _console_renderer(stream: TextIO) -> structlog.dev.ConsoleRenderer:
    return structlog.dev.ConsoleRenderer(colors=_is_terminal(stream))


def _add_record_timestamp(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    # The record's creation time is used for structlog events and stdlib records alike, so
    # lines from both are stamped the same way, in UTC with microseconds.
    record = event_dict.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else None
    moment = datetime.now(UTC) if created is None else datetime.fromtimestamp(created, UTC)
    event_dict["timestamp"] = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return event_dict


def _rename_foreign_stack_info(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    # A stdlib record carries its stack already formatted, and structlog's StackInfoRenderer
    # would replace it with the formatter's own stack.
    stack = event_dict.pop("stack_info", None)
    if isinstance(stack, str):
        event_dict["stack"] = stack
    return event_dict


def _json_default(value: object) -> object:
    # Values the json module cannot encode: dates and times in ISO 8601, Decimal amounts and
    # enums by their value, everything else by repr() as structlog's JSONRenderer does.
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | PurePath):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return repr(value)


_json_renderer = structlog.processors.JSONRenderer(default=_json_default)


def _render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    rendered = _json_renderer(logger, method_name, ordered)
    return rendered if isinstance(rendered, str) else rendered.decode("utf-8")
