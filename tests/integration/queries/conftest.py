"""Settings and a fixed clock for the query service tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings, load_settings
from tests.integration.queries.helpers_seed import FixedClock

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The shipped default configuration: dry run, 1 payout a day and 3 a week, UTC."""
    return load_settings(CONFIG_DIR, environ={})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()
