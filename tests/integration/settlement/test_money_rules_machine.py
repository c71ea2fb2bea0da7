"""A hypothesis state machine over accruals, settlements, faults, crashes and admin actions.

After every step the money rules must hold against the database and the sandbox ledger. At
the end of each example the faults are cleared and everything still open is settled, and
then every player must have received exactly what they are owed, to the raw.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, update

from core.clock import utc_now
from core.db.models import Accrual, AccrualStatus, Base
from core.db.session import Database
from core.sandbox.banano_faults import Fault
from core.sandbox.banano_node import SandboxBananoNode
from core.services.payout_retry import retry_payout
from tests.environment import MONEY_MACHINE_EXAMPLES_VARIABLE, POSTGRES_URL
from tests.integration.settlement.helpers_world import (
    LOW_WORK_THRESHOLD,
    CrashAt,
    SimulatedCrash,
    Stack,
    World,
    assert_money_rules,
    assert_paid_exactly_once,
    build_stack,
    drain,
    fund_operator,
    make_policy,
)

T = TypeVar("T")

PLAYERS = 3
FAULTS: dict[str, Fault] = {
    "timeout": Fault.delay(0.25),
    "lost_reply": Fault.reply_lost_after_apply(),
    "fork": Fault.error("Fork"),
    "gap_previous": Fault.error("Gap previous block"),
    "old_block": Fault.error("Old block"),
    "insufficient_work": Fault.error("Block work is less than threshold"),
    "http_500": Fault.http_500(),
    "unknown_error": Fault.error("Something unexpected happened"),
}
STEPS = ["created", "signed", "replied", "submitted", "confirmed", "failed"]
# New accruals before a step: (player index, kills).
ACCRUALS = st.lists(st.tuples(st.integers(0, PLAYERS - 1), st.integers(1, 6)), max_size=3)


class Harness:
    """What every example shares: one event loop, one sandbox node, a database factory."""

    def __init__(self, make_database: Callable[[], Coroutine[Any, Any, Database]]) -> None:
        self.runner = asyncio.Runner()
        self.make_database = make_database
        self.node = SandboxBananoNode(work_threshold=LOW_WORK_THRESHOLD)
        self.examples = count(1)
        self.run(self.node.start())
        fund_operator(self.node)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def close(self) -> None:
        self.run(self.node.stop())
        self.runner.close()


class MoneyRulesMachine(RuleBasedStateMachine):
    harness: ClassVar[Harness]

    def __init__(self) -> None:
        super().__init__()
        harness = self.harness
        self.node = harness.node
        self.node.clear_faults()
        self.node.set_auto_confirm(True)
        self.db = harness.run(harness.make_database())
        self.world = World(self.db, address_salt=f"example-{next(harness.examples)}-")
        self.players = harness.run(self.world.add_players(PLAYERS))
        for player in self.players:
            harness.run(self.world.add_accrual(player, 3))
        self.offset = timedelta(0)
        self.stack = self.new_stack()

    def now(self) -> datetime:
        return utc_now() + self.offset

    def new_stack(self, crash: CrashAt | None = None) -> Stack:
        policy = make_policy(daily_payouts=2, weekly_payouts=6, daily_kills=8)
        return build_stack(
            self.db,
            self.node.base_url,
            policy,
            step_hook=crash,
            clock=self.now,
            confirmation_timeout=timedelta(minutes=5),
            rpc_timeout_seconds=0.2,
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.harness.run(coroutine)

    def accrue(self, accruals: list[tuple[int, int]]) -> None:
        for player, kills in accruals:
            self.run(self.world.add_accrual(self.players[player], kills, at=self.now()))

    @rule(accruals=ACCRUALS)
    def settle(self, accruals: list[tuple[int, int]]) -> None:
        self.accrue(accruals)
        self.run(self.stack.service.run("test"))

    @rule(
        accruals=ACCRUALS,
        fault=st.sampled_from(sorted(FAULTS)),
        action=st.sampled_from(["process", "process", "block_info", "account_info"]),
        times=st.integers(1, 3),
    )
    def settle_with_fault(
        self, accruals: list[tuple[int, int]], fault: str, action: str, times: int
    ) -> None:
        self.accrue(accruals)
        self.node.inject_fault(action, FAULTS[fault], times=times)
        self.run(self.stack.service.run("test"))

    @rule()
    def confirm(self) -> None:
        self.run(self.stack.service.confirm())

    @rule(accruals=ACCRUALS, step=st.sampled_from(STEPS))
    def crash_and_restart(self, accruals: list[tuple[int, int]], step: str) -> None:
        self.accrue(accruals)
        crashing = self.new_stack(CrashAt(step))

        async def settle_then_confirm() -> None:
            try:
                await crashing.service.run("test")
                await crashing.service.confirm()
            except SimulatedCrash:
                pass
            finally:
                await crashing.aclose()

        self.run(settle_then_confirm())
        self.run(self.stack.aclose())
        self.stack = self.new_stack()

    @rule(auto=st.booleans())
    def node_confirmation(self, auto: bool) -> None:
        self.node.set_auto_confirm(auto)
        if auto:
            self.node.confirm_all()

    @rule(hours=st.integers(1, 40))
    def advance_time(self, hours: int) -> None:
        self.offset += timedelta(hours=hours)

    @rule(payout_id=st.integers(1, 12))
    def admin_retry(self, payout_id: int) -> None:
        self.run(retry_payout(self.stack.service, payout_id, 99))

    @rule(player=st.integers(0, PLAYERS - 1), release=st.booleans())
    def admin_review(self, player: int, release: bool) -> None:
        """Hold an unclaimed open accrual for review, or end a review (release or void)."""
        player_id = self.players[player].id

        async def review() -> None:
            async with self.db.write() as session:
                held = await session.scalar(
                    select(Accrual.id).where(
                        Accrual.player_id == player_id, Accrual.status == AccrualStatus.HELD
                    )
                )
                if held is not None:
                    status = AccrualStatus.OPEN if release else AccrualStatus.VOIDED
                    await session.execute(
                        update(Accrual).where(Accrual.id == held).values(status=status)
                    )
                    return
                await session.execute(
                    update(Accrual)
                    .where(
                        Accrual.id
                        == select(Accrual.id)
                        .where(
                            Accrual.player_id == player_id,
                            Accrual.status == AccrualStatus.OPEN,
                            Accrual.payout_id.is_(None),
                        )
                        .limit(1)
                        .scalar_subquery()
                    )
                    .values(status=AccrualStatus.HELD)
                )

        self.run(review())

    @invariant()
    def money_rules_hold(self) -> None:
        self.run(assert_money_rules(self.db, self.node, [(p.id, p.address) for p in self.players]))

    def teardown(self) -> None:
        try:
            self.run(self.stack.aclose())
            self.run(drain(self.db, self.node, node_url=self.node.base_url, clock=self.now))
            self.run(assert_paid_exactly_once(self.db, self.node, self.players))
        finally:
            self.run(self.db.dispose())


def run_machine(harness: Harness, max_examples: int) -> None:
    MoneyRulesMachine.harness = harness
    # The suite keeps the example count small; raise it for a deeper local search.
    max_examples = int(os.environ.get(MONEY_MACHINE_EXAMPLES_VARIABLE, max_examples))
    try:
        run_state_machine_as_test(
            MoneyRulesMachine,
            settings=settings(
                max_examples=max_examples,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        harness.close()


def test_money_rules_machine_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    files = count(1)

    async def make_database() -> Database:
        path = tmp_path / f"machine-{next(files)}.db"
        shutil.copyfile(sqlite_template, path)
        return Database.from_url(f"sqlite:///{path}")

    run_machine(Harness(make_database), max_examples=8)


@pytest.mark.postgres
def test_money_rules_machine_postgres(postgres_schema: str) -> None:
    async def make_database() -> Database:
        db = Database.from_url(POSTGRES_URL, search_path=postgres_schema)
        async with db.engine.begin() as connection:
            # A split accrual's parts reference it, so the references go first.
            await connection.execute(update(Accrual).values(parent_id=None))
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        return db

    run_machine(Harness(make_database), max_examples=4)
