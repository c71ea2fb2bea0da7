"""Fixtures for the database tests: logging is restored after each test that ran the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.observability import reset_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo the logging set-up that `pay2slay db` commands install, after each test."""
    yield
    reset_logging()
