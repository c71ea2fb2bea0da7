"""Fixtures that give each test a fresh logging set-up and put the previous one back after it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from core.observability import SecretRedactor, configure_logging, reset_logging
from core.observability.logging import LogFormat

LoggerState = tuple[int, bool, bool, list[logging.Handler]]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo every change configure_logging and the tests make to stdlib logging and structlog."""
    root = logging.getLogger()
    root_level = root.level
    root_handlers = root.handlers[:]
    loggers: dict[str, LoggerState] = {
        name: (logger.level, logger.disabled, logger.propagate, logger.handlers[:])
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }

    yield

    reset_logging()
    for handler in root.handlers[:]:
        if handler not in root_handlers:
            root.removeHandler(handler)
    for handler in root_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(root_level)

    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        level, disabled, propagate, handlers = loggers.get(name, (logging.NOTSET, False, True, []))
        logger.setLevel(level)
        logger.disabled = disabled
        logger.propagate = propagate
        logger.handlers = handlers


class LogOutput:
    """A stream that configure_logging writes to, with helpers to read what it wrote."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(
        self, log_format: LogFormat = "json", level: str = "DEBUG", secrets: tuple[str, ...] = ()
    ) -> SecretRedactor:
        return configure_logging(
            log_format=log_format, level=level, secrets=secrets, stream=self.stream
        )

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line]

    def records(self) -> list[dict[str, Any]]:
        """Parse every line as JSON, failing the test on a line that is not a JSON object."""
        parsed = [json.loads(line) for line in self.lines()]
        assert all(isinstance(item, dict) for item in parsed)
        return parsed

    def events(self, event: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["event"] == event]


@pytest.fixture
def log_output() -> LogOutput:
    return LogOutput()
