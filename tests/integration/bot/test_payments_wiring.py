"""`open_payments` builds the top-up receiver only for the live local signer."""

from __future__ import annotations

from contextlib import AsyncExitStack

from bot.payments import open_payments
from core.banano.sender import LocalSigner
from core.db import Database
from core.observability import Metrics
from tests.unit.cogs.helpers_cogs import make_settings

LIVE_LOCAL = {
    "P2S_INTEGRATIONS__DRY_RUN": "false",
    "P2S_INTEGRATIONS__NODE_RPC": "http://127.0.0.1:9",
    "P2S_INTEGRATIONS__BANANO__SIGNER": "local",
    "P2S_INTEGRATIONS__BANANO__WORK_SOURCES": '["node"]',
    "P2S_OPERATOR_SEED": "22" * 32,
    "P2S_SESSION_SECRET": "s" * 40,
}


async def test_live_local_signer_gets_receiver(sqlite_database: Database) -> None:
    settings = make_settings(LIVE_LOCAL)
    async with AsyncExitStack() as stack:
        payments = await open_payments(settings, stack, metrics=Metrics(), db=sqlite_database)

    assert isinstance(payments.sender, LocalSigner)
    assert payments.receiver is not None
    # The receiver must take the signer's lock so receives and sends do not interleave.
    assert payments.receiver._lock is payments.sender.lock


async def test_dry_run_has_no_receiver(sqlite_database: Database) -> None:
    settings = make_settings({**LIVE_LOCAL, "P2S_INTEGRATIONS__DRY_RUN": "true"})
    async with AsyncExitStack() as stack:
        payments = await open_payments(settings, stack, metrics=Metrics(), db=sqlite_database)

    assert payments.sender is None
    assert payments.receiver is None
