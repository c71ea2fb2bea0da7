"""Environment variables that change how the test suite runs.

Every name starts with `PAY2SLAY_TEST_`. The configuration loader rejects unknown `P2S_`
variables but never reads this prefix, so exporting a test variable can neither change nor
stop the faucet's configuration, and the loader keeps no list of test names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TEST_VARIABLE_PREFIX = "PAY2SLAY_TEST_"

# URL of the PostgreSQL test database, which must be on this machine.
POSTGRES_URL_VARIABLE = "PAY2SLAY_TEST_POSTGRES_URL"
# `1` also runs the long campaigns, the tests marked `slow` in tests/integration/reliability.
SLOW_VARIABLE = "PAY2SLAY_TEST_SLOW"
# Number of examples of the money-rules state machine test, for a deeper local search.
MONEY_MACHINE_EXAMPLES_VARIABLE = "PAY2SLAY_TEST_MONEY_MACHINE_EXAMPLES"

TEST_VARIABLES = (POSTGRES_URL_VARIABLE, SLOW_VARIABLE, MONEY_MACHINE_EXAMPLES_VARIABLE)

# Earlier names of the test variables. Nothing reads them now, and the configuration loader
# rejects them as unknown `P2S_` variables.
RENAMED_VARIABLES = {
    "P2S_TEST_POSTGRES_URL": POSTGRES_URL_VARIABLE,
    "P2S_SLOW": SLOW_VARIABLE,
    "P2S_MONEY_MACHINE_EXAMPLES": MONEY_MACHINE_EXAMPLES_VARIABLE,
}

POSTGRES_URL = os.environ.get(
    POSTGRES_URL_VARIABLE, "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def renamed_variable_errors(environ: Mapping[str, str]) -> list[str]:
    """Return one line per test variable set under its earlier name, naming the new one."""
    return [
        f"{old} is no longer read; set {new} instead"
        for old, new in RENAMED_VARIABLES.items()
        if old in environ
    ]
