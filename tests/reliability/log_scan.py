"""Capturing every log line of a campaign and searching it for configured secrets.

Logging is configured as the product configures it, but with no secrets given to the
redactor, so the search finds every place where code tried to log a secret, not only the
places the redactor would have missed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from core.observability.logging import configure_logging, reset_logging


@contextmanager
def captured_log_lines(level: str = "DEBUG") -> Iterator[io.StringIO]:
    """Send every structlog and stdlib record to a string buffer as JSON lines.

    The previous set-up is restored afterwards: our handler is removed, structlog's defaults
    come back and the root logger gets its old level.
    """
    root = logging.getLogger()
    previous_level = root.level
    stream = io.StringIO()
    configure_logging(log_format="json", level=level, secrets=(), stream=stream)
    try:
        yield stream
    finally:
        reset_logging()
        root.setLevel(previous_level)


def secret_variants(secret: str) -> set[str]:
    """Return the spellings of a secret to search for: as given, upper case and lower case."""
    return {secret, secret.upper(), secret.lower()}


def secret_hits(text: str, secrets: Mapping[str, str]) -> dict[str, int]:
    """Count, for each named secret, the log lines of `text` that contain it."""
    hits: dict[str, int] = {}
    lines = text.splitlines()
    for name, secret in secrets.items():
        variants = secret_variants(secret)
        count = sum(1 for line in lines if any(variant in line for variant in variants))
        if count:
            hits[name] = count
    return hits


def read_logs(paths: Iterable[Path]) -> str:
    """Return the text of every log file that exists, one after the other."""
    parts = [path.read_text(encoding="utf-8") for path in paths if path.exists()]
    return "\n".join(parts)
