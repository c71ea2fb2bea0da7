"""Spans of a live settlement against the sandbox node; needs the optional otel extra."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from core.db.session import Database
from core.observability.tracing import configure_tracing
from core.sandbox.banano_node import SandboxBananoNode
from core.services.settlement import RunOutcome
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    RAW_PER_KILL,
    World,
    build_stack,
    fund_operator,
    make_policy,
)

pytest.importorskip("opentelemetry.sdk", reason="the optional otel extra is not installed")


class Recorded:
    """Spans exported to memory; `spans()` flushes the queue first."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self._memory = InMemorySpanExporter()
        self.handle = configure_tracing("", exporter=self._memory)

    def spans(self) -> list[Any]:
        self.handle.force_flush()
        return list(self._memory.get_finished_spans())


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = Recorded()
    try:
        yield spans
    finally:
        spans.handle.shutdown()


@pytest.fixture
async def node() -> AsyncIterator[SandboxBananoNode]:
    sandbox = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
    await sandbox.start()
    fund_operator(sandbox)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


def by_name(spans: list[Any]) -> dict[str, list[Any]]:
    named: dict[str, list[Any]] = {}
    for item in spans:
        named.setdefault(item.name, []).append(item)
    return named


async def test_live_run_traces_each_payout_step(
    sqlite_database: Database, node: SandboxBananoNode, recorded: Recorded
) -> None:
    """A batch of one is sent alone; the batch of two after it is sent as one chain."""
    world = World(sqlite_database)
    players = await world.add_players(3)
    for player in players:
        await world.add_accrual(player, 3)
    stack = build_stack(sqlite_database, node.base_url, make_policy())
    try:
        report = await stack.service.run("test")
        await stack.service.confirm()
    finally:
        await stack.aclose()

    assert report.outcome is RunOutcome.COMPLETED
    spans = by_name(recorded.spans())
    (run,) = spans["settlement.run"]
    assert run.attributes["outcome"] == "completed"
    assert run.attributes["payouts"] == 3
    assert run.attributes["paid_raw"] == str(9 * RAW_PER_KILL)
    assert run.attributes["trigger"] == "test"

    run_id = run.context.span_id
    batches = spans["payout.create_batch"]
    assert sorted(item.attributes["created"] for item in batches) == [1, 2]
    for batch in batches:
        assert batch.parent.span_id == run_id

    (sent,) = spans["payout.send"]
    assert sent.parent.span_id == run_id
    assert sent.attributes["action"] == "submitted"
    assert sent.attributes["payout_id"] == report.payout_ids[0]
    for step in ("payout.record_signed", "payout.record_submitted"):
        (recorded_step,) = spans[step]
        assert recorded_step.parent.span_id == sent.context.span_id, step

    (chain,) = spans["payout.send_chain"]
    assert chain.parent.span_id == run_id
    assert chain.attributes["payouts"] == 2
    assert chain.attributes["submitted"] == 2
    for step in ("payout.record_signed_chain", "payout.record_submitted_chain"):
        (recorded_step,) = spans[step]
        assert recorded_step.parent.span_id == chain.context.span_id, step
        assert recorded_step.attributes["payouts"] == 2, step

    (confirm,) = spans["settlement.confirm"]
    assert confirm.attributes["lock_acquired"] is True
    reconciled = spans["payout.reconcile"]
    assert len(reconciled) == 3
    assert {item.attributes["action"] for item in reconciled} == {"confirmed"}
    for item in spans["payout.record_confirmed"]:
        assert item.parent.span_id in {span.context.span_id for span in reconciled}
